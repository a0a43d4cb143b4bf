// The row-record codec (store/row_record.hpp, docs/metadata-format.md) on its own: what
// goes in comes out, a cell written with its row costs the few bytes the format promises,
// and damaged bytes are refused, never read past.
#include <random>

#include <catch2/catch.hpp>

#include "../../store/row_record.hpp"
#include "store_fixture.hpp"

using namespace peerlite;
using namespace peerlite::store;
using namespace peerlite::testing;

namespace {

struct Codec {
    ScratchDir dir;
    sqlite3* db = nullptr;
    NodeIndex nodes;
    Codec() {
        auto path = dir.file("a.db");
        PlainDb(path).exec("CREATE TABLE t(id TEXT PRIMARY KEY NOT NULL, v TEXT)");
        open_store(path); // creates the metadata, _peerlite_nodes among it
        REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
        REQUIRE(nodes.load(db).ok());
    }
    ~Codec() { sqlite3_close_v2(db); } // closes once `nodes` finalizes its statement
};

crdt::NodeId node(std::uint8_t n) {
    crdt::NodeId::Bytes b{};
    b[15] = n;
    return crdt::NodeId::from_bytes(b);
}

crdt::Stamp at(std::uint64_t ms, std::uint8_t n) {
    return {crdt::Hlc::from_parts(ms, 0), node(n)};
}

// A row inserted by node 1, one cell then overwritten by node 2 with a kept value (a max
// column), a cell of another life, and counter contributions from two nodes.
RowRecord sample() {
    RowRecord r;
    r.life = {crdt::CausalLength(3), at(1000, 1)};
    r.cells.push_back({0, {crdt::CausalLength(3), at(1000, 1), {}, {}}, false});
    r.cells.push_back({1,
                       {crdt::CausalLength(3), at(1500, 2), crdt::Value::integer(42),
                        crdt::Hlc::from_parts(1000, 0)},
                       true});
    r.cells.push_back({2, {crdt::CausalLength(1), at(900, 1), {}, {}}, false});
    r.counters.push_back({3, {crdt::CausalLength(3), at(1200, 1), 5}});
    r.counters.push_back({3, {crdt::CausalLength(3), at(1300, 2), -7}});
    return r;
}

void require_same(const RowRecord& a, const RowRecord& b) {
    CHECK(a.life == b.life);
    REQUIRE(a.cells.size() == b.cells.size());
    for (std::size_t i = 0; i < a.cells.size(); ++i) {
        CHECK(a.cells[i].column == b.cells[i].column);
        CHECK(a.cells[i].has_value == b.cells[i].has_value);
        CHECK(a.cells[i].write.life == b.cells[i].write.life);
        CHECK(a.cells[i].write.stamp == b.cells[i].write.stamp);
        CHECK(a.cells[i].write.replaced == b.cells[i].write.replaced);
        if (a.cells[i].has_value) {
            CHECK(a.cells[i].write.value == b.cells[i].write.value);
        }
    }
    REQUIRE(a.counters.size() == b.counters.size());
    for (std::size_t i = 0; i < a.counters.size(); ++i) {
        CHECK(a.counters[i].column == b.counters[i].column);
        CHECK(a.counters[i].write == b.counters[i].write);
    }
}

} // namespace

TEST_CASE("a row record comes back as it went in") {
    Codec c;
    auto record = sample();
    auto bytes = encode_record(record, c.nodes);
    REQUIRE(bytes.ok());
    auto decoded = decode_record(*bytes, record.max_clock(), c.nodes);
    INFO(decoded.status().to_string());
    REQUIRE(decoded.ok());
    require_same(record, *decoded);
    CHECK(decoded->max_clock() == crdt::Hlc::from_parts(1500, 0));
    CHECK(decoded->counter_sum(3) == -2);
}

TEST_CASE("a cell written with its row costs at most four bytes") {
    Codec c;
    RowRecord one;
    one.life = {crdt::CausalLength(1), at(1000, 1)};
    one.cells.push_back({0, {crdt::CausalLength(1), at(1000, 1), {}, {}}, false});
    auto five = one;
    for (int col = 1; col < 5; ++col) {
        five.cells.push_back({col, {crdt::CausalLength(1), at(1000, 1), {}, {}}, false});
    }
    auto a = encode_record(one, c.nodes);
    auto b = encode_record(five, c.nodes);
    REQUIRE(a.ok());
    REQUIRE(b.ok());
    CHECK(b->size() - a->size() <= 4 * 4); // four cells more
}

TEST_CASE("a damaged row record is refused as corrupt, never read past its end") {
    Codec c;
    auto record = sample();
    auto bytes = encode_record(record, c.nodes);
    REQUIRE(bytes.ok());
    for (std::size_t n = 0; n < bytes->size(); ++n) {
        auto cut =
            decode_record(std::string_view(*bytes).substr(0, n), record.max_clock(), c.nodes);
        INFO("cut at " << n);
        REQUIRE_FALSE(cut.ok());
        CHECK(cut.status().code() == Code::corruption);
    }
    auto longer = decode_record(*bytes + "x", record.max_clock(), c.nodes);
    CHECK_FALSE(longer.ok());
    // Flipped bytes: refused or read as some record, never a crash (AddressSanitizer
    // watches every read).
    std::mt19937_64 rng(Catch::rngSeed());
    for (int i = 0; i < 2000; ++i) {
        auto damaged = *bytes;
        damaged[rng() % damaged.size()] = static_cast<char>(rng());
        (void)decode_record(damaged, record.max_clock(), c.nodes);
    }
    // An unknown format byte.
    auto other = *bytes;
    other[0] = 0x02;
    CHECK_FALSE(decode_record(other, record.max_clock(), c.nodes).ok());
}
