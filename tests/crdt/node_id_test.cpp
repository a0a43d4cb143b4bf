#include <random>
#include <set>

#include <catch2/catch.hpp>

#include <peerlite/crdt/node_id.hpp>

using namespace peerlite;
using namespace peerlite::crdt;

TEST_CASE("a node id round-trips through its printed form") {
    std::mt19937_64 rng(42);
    auto id = NodeId::random(rng);
    auto text = id.to_string();
    CHECK(text.size() == 36);
    auto parsed = NodeId::parse(text);
    REQUIRE(parsed.ok());
    CHECK(*parsed == id);
    CHECK(id.short_string() == text.substr(0, 8));
}

TEST_CASE("parsing accepts upper case and rejects anything but the canonical form") {
    CHECK(NodeId::parse("0B9E4C3A-1F2D-4E5F-8A6B-7C8D9E0F1A2B").ok());
    for (const char* bad :
         {"", "0b9e4c3a1f2d4e5f8a6b7c8d9e0f1a2b", "{0b9e4c3a-1f2d-4e5f-8a6b-7c8d9e0f1a2b}",
          "0b9e4c3a-1f2d-4e5f-8a6b-7c8d9e0f1a2g", "0b9e4c3a-1f2d-4e5f-8a6b+7c8d9e0f1a2b"}) {
        auto r = NodeId::parse(bad);
        CAPTURE(bad);
        CHECK(r.status().code() == Code::invalid_argument);
    }
}

TEST_CASE("node ids order bytewise, the same on every node") {
    NodeId::Bytes a{}, b{};
    a[0] = 1;
    b[15] = 0xff;
    CHECK(NodeId::from_bytes(b) < NodeId::from_bytes(a));
    CHECK(NodeId() < NodeId::from_bytes(b));
    CHECK(NodeId().is_nil());
}

TEST_CASE("node ids from raw bytes must be exactly 16 bytes") {
    std::vector<std::uint8_t> short_bytes(15, 1);
    CHECK(NodeId::from_bytes(std::span<const std::uint8_t>(short_bytes)).status().code() ==
          Code::corruption);
}

TEST_CASE("random node ids are distinct version-4 ids") {
    std::mt19937_64 rng(7);
    std::set<NodeId> seen;
    for (int i = 0; i < 1000; ++i) {
        auto id = NodeId::random(rng);
        CHECK(id.to_string()[14] == '4');
        seen.insert(id);
    }
    CHECK(seen.size() == 1000);
}

TEST_CASE("a derived id is fixed by its key and salt, and changes with either") {
    std::mt19937_64 rng(5);
    auto salt = NodeId::random(rng);
    auto id = NodeId::derive("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7", salt);
    CHECK(id == NodeId::derive("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7", salt));
    CHECK(id != NodeId::derive("Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID", salt));
    CHECK(id != NodeId::derive("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7", NodeId::random(rng)));
    CHECK_FALSE(id.is_nil());
    CHECK(id.bytes()[6] >> 4 == 5); // a version-5 (name-based, SHA-1) UUID
}
