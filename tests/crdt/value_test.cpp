#include <cmath>
#include <limits>
#include <random>

#include <catch2/catch.hpp>

#include <peerlite/crdt/value.hpp>

using namespace peerlite::crdt;

TEST_CASE("values order NULL, numbers, TEXT, BLOB as SQLite does") {
    CHECK(Value::null() < Value::integer(std::numeric_limits<std::int64_t>::min()));
    CHECK(Value::real(1e300) < Value::text(""));
    CHECK(Value::text("\xff\xff") < Value::blob({}));
}

TEST_CASE("integers and reals compare by exact numeric value") {
    CHECK(Value::integer(1) < Value::real(1.5));
    CHECK(Value::real(0.5) < Value::integer(1));
    CHECK(Value::integer(-1) > Value::real(-1.5));
    // 2^53 + 1 is not representable as a double; a lossy comparison would call them equal.
    auto big = std::int64_t{1} << 53;
    CHECK(Value::integer(big + 1) > Value::real(static_cast<double>(big)));
    CHECK(Value::integer(std::numeric_limits<std::int64_t>::max()) < Value::real(9.3e18));
    CHECK(Value::integer(std::numeric_limits<std::int64_t>::min()) > Value::real(-9.3e18));
    CHECK(Value::integer(0) < Value::real(INFINITY));
    CHECK(Value::integer(0) > Value::real(-INFINITY));
}

TEST_CASE("equal numbers of different classes still have a fixed order") {
    CHECK(Value::integer(1) < Value::real(1.0));
    CHECK(Value::real(1.0) > Value::integer(1));
    CHECK(Value::integer(1) != Value::real(1.0));
    CHECK(Value::real(-0.0) < Value::real(0.0));
}

TEST_CASE("NaN is stored as NULL, as SQLite does") {
    CHECK(Value::real(std::nan("")).is_null());
}

TEST_CASE("text and blobs compare bytewise, shorter prefix first") {
    CHECK(Value::text("abc") < Value::text("abd"));
    CHECK(Value::text("ab") < Value::text("abc"));
    CHECK(Value::text("Z") < Value::text("a"));
    CHECK(Value::blob({1, 2}) < Value::blob({1, 2, 0}));
    CHECK(Value::blob({0x80}) > Value::blob({0x7f, 0xff}));
}

TEST_CASE("values print like SQL literals") {
    CHECK(Value::null().to_string() == "NULL");
    CHECK(Value::integer(-3).to_string() == "-3");
    CHECK(Value::real(1.5).to_string() == "1.5");
    CHECK(Value::text("it's").to_string() == "'it''s'");
    CHECK(Value::blob({0x00, 0xab}).to_string() == "x'00ab'");
}

namespace {
Value random_value(std::mt19937_64& rng) {
    switch (rng() % 5) {
    case 0: return Value::null();
    case 1: return Value::integer(static_cast<std::int64_t>(rng() % 7) - 3);
    case 2: {
        static const double reals[] = {-1.5, -0.0, 0.0, 1.0, 2.0, 2.5, -3.0, 1e19};
        return Value::real(reals[rng() % 8]);
    }
    case 3: {
        std::string text(rng() % 3, 'a');
        for (auto& c : text) {
            c = static_cast<char>('a' + rng() % 2);
        }
        return Value::text(std::move(text));
    }
    default: {
        std::vector<std::uint8_t> bytes(rng() % 3);
        for (auto& b : bytes) {
            b = static_cast<std::uint8_t>(rng() % 2);
        }
        return Value::blob(bytes);
    }
    }
}
} // namespace

TEST_CASE("the value order is a total order") {
    auto seed = Catch::rngSeed();
    CAPTURE(seed);
    std::mt19937_64 rng(seed);
    for (int i = 0; i < 20'000; ++i) {
        auto a = random_value(rng);
        auto b = random_value(rng);
        auto c = random_value(rng);
        CAPTURE(a.to_string(), b.to_string(), c.to_string());
        // Antisymmetric, and equal only when the same class and content.
        REQUIRE((a <=> b) == (0 <=> (b <=> a)));
        if (a == b) {
            REQUIRE(a.storage_class() == b.storage_class());
            REQUIRE(a.to_string() == b.to_string());
        }
        // Transitive.
        if (a < b && b < c) {
            REQUIRE(a < c);
        }
        if (a == b && b == c) {
            REQUIRE(a == c);
        }
    }
}
