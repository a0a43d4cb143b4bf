#include <catch2/catch.hpp>

#include <peerlite/crdt/merge.hpp>

#include "test_nodes.hpp"

using namespace peerlite;
using namespace peerlite::crdt;
using namespace peerlite::crdt::testing;

namespace {
const CausalLength kLive{1};

CellWrite cell(std::uint64_t ms, std::uint8_t n, Value v, CausalLength life = kLive) {
    return CellWrite{life, Stamp{at(ms), node(n)}, std::move(v), Hlc()};
}
} // namespace

TEST_CASE("last writer wins: the later clock wins") {
    auto older = cell(100, 2, Value::text("old"));
    auto newer = cell(200, 1, Value::text("new"));
    CHECK(decide_cell(MergeRule::last_writer_wins, older, newer) == Winner::incoming);
    CHECK(decide_cell(MergeRule::last_writer_wins, newer, older) == Winner::existing);
}

TEST_CASE("last writer wins: equal clocks are decided by node id") {
    auto from1 = cell(100, 1, Value::text("zzz"));
    auto from2 = cell(100, 2, Value::text("aaa"));
    CHECK(decide_cell(MergeRule::last_writer_wins, from1, from2) == Winner::incoming);
    CHECK(decide_cell(MergeRule::last_writer_wins, from2, from1) == Winner::existing);
}

TEST_CASE("last writer wins: equal clock and node fall back to the value") {
    // Only a copied node id or corruption can produce this; the result must still be
    // the same everywhere.
    auto a = cell(100, 1, Value::integer(1));
    auto b = cell(100, 1, Value::integer(2));
    CHECK(decide_cell(MergeRule::last_writer_wins, a, b) == Winner::incoming);
    CHECK(decide_cell(MergeRule::last_writer_wins, b, a) == Winner::existing);
}

TEST_CASE("last writer wins: the same write seen twice is recognised") {
    auto a = cell(100, 1, Value::integer(1));
    CHECK(decide_cell(MergeRule::last_writer_wins, a, a) == Winner::same);
}

TEST_CASE("last writer wins: many edits on one side do not beat one later edit") {
    // Node 1 edits the cell 50 times between t=100 and t=149; node 2 edits it once at t=150.
    auto busy = cell(100, 1, Value::integer(0));
    for (std::uint64_t t = 101; t < 150; ++t) {
        auto next = cell(t, 1, Value::integer(static_cast<std::int64_t>(t)));
        next.replaced = busy.stamp.hlc;
        REQUIRE(decide_cell(MergeRule::last_writer_wins, busy, next) == Winner::incoming);
        busy = next;
    }
    auto once = cell(150, 2, Value::integer(-1));
    CHECK(decide_cell(MergeRule::last_writer_wins, busy, once) == Winner::incoming);
}

TEST_CASE("a write from a later life of the row beats any write from an earlier life") {
    auto before_delete = cell(900, 2, Value::text("late update"), CausalLength(1));
    auto after_reinsert = cell(100, 1, Value::text("reinserted"), CausalLength(3));
    CHECK(decide_cell(MergeRule::last_writer_wins, before_delete, after_reinsert) ==
          Winner::incoming);
    CHECK(decide_cell(MergeRule::max_wins, after_reinsert, before_delete) == Winner::existing);
}

TEST_CASE("max wins keeps the greater value whatever the clocks") {
    auto big_old = cell(100, 1, Value::integer(10));
    auto small_new = cell(200, 2, Value::integer(3));
    CHECK(decide_cell(MergeRule::max_wins, big_old, small_new) == Winner::existing);
    CHECK(decide_cell(MergeRule::max_wins, small_new, big_old) == Winner::incoming);
}

TEST_CASE("min wins keeps the smaller value whatever the clocks") {
    auto big_old = cell(100, 1, Value::integer(10));
    auto small_new = cell(200, 2, Value::integer(3));
    CHECK(decide_cell(MergeRule::min_wins, big_old, small_new) == Winner::incoming);
    CHECK(decide_cell(MergeRule::min_wins, small_new, big_old) == Winner::existing);
}

TEST_CASE("max and min wins break equal values by clock then node") {
    auto a = cell(100, 1, Value::integer(5));
    auto b = cell(100, 2, Value::integer(5));
    CHECK(decide_cell(MergeRule::max_wins, a, b) == Winner::incoming);
    CHECK(decide_cell(MergeRule::min_wins, a, b) == Winner::incoming);
    CHECK(decide_cell(MergeRule::min_wins, b, a) == Winner::existing);
}

TEST_CASE("a counter contribution is replaced only by a newer one from the same node") {
    CounterWrite old_total{kLive, Stamp{at(100), node(1)}, 5};
    CounterWrite new_total{kLive, Stamp{at(200), node(1)}, 8};
    CHECK(decide_counter(old_total, new_total) == Winner::incoming);
    CHECK(decide_counter(new_total, old_total) == Winner::existing);
    CHECK(decide_counter(new_total, new_total) == Winner::same);
    CounterWrite next_life{CausalLength(3), Stamp{at(50), node(1)}, 1};
    CHECK(decide_counter(new_total, next_life) == Winner::incoming);
}

TEST_CASE("counter sums wrap at 64 bits so every order agrees") {
    auto max = std::numeric_limits<std::int64_t>::max();
    CHECK(counter_add(max, 1) == std::numeric_limits<std::int64_t>::min());
    CHECK(counter_add(counter_add(max, 1), -1) == max);
}

TEST_CASE("a counter takes integers and whole reals in range, and refuses every other value") {
    auto max = std::numeric_limits<std::int64_t>::max();
    auto min = std::numeric_limits<std::int64_t>::min();
    CHECK(counter_value(Value::integer(max)) == max);
    CHECK(counter_value(Value::integer(-7)) == -7);
    CHECK(counter_value(Value::real(3.0)) == 3);
    CHECK(counter_value(Value::real(-0.0)) == 0);
    CHECK(counter_value(Value::real(-9223372036854775808.0)) == min);          // -2^63 fits
    CHECK(counter_value(Value::real(9007199254740993.0)) == 9007199254740992); // as stored
    CHECK_FALSE(counter_value(Value::real(2.5)));
    CHECK_FALSE(counter_value(Value::real(9223372036854775808.0))); // 2^63 does not
    CHECK_FALSE(counter_value(Value::real(1e300)));
    CHECK_FALSE(counter_value(Value::real(-1e300)));
    CHECK_FALSE(counter_value(Value::real(std::numeric_limits<double>::infinity())));
    CHECK_FALSE(counter_value(Value::null()));
    CHECK_FALSE(counter_value(Value::text("5")));
    CHECK_FALSE(counter_value(Value::blob({5})));
}

TEST_CASE("delete beats a concurrent update; a later re-insert beats the delete") {
    RowWrite inserted{CausalLength(1), Stamp{at(100), node(1)}};
    RowWrite deleted{inserted.life.deleted(), Stamp{at(150), node(2)}};
    CHECK(deleted.life == CausalLength(2));
    CHECK_FALSE(deleted.life.exists());
    // The concurrent update (t=300 on node 1) was made in life 1 and loses to life 2 even
    // with a later clock.
    CHECK(decide_row(inserted, deleted) == Winner::incoming);
    auto update = cell(300, 1, Value::text("edited"), CausalLength(1));
    CHECK(update.life < deleted.life);
    RowWrite reinserted{deleted.life.inserted(), Stamp{at(160), node(3)}};
    CHECK(reinserted.life == CausalLength(3));
    CHECK(decide_row(deleted, reinserted) == Winner::incoming);
    CHECK(decide_row(reinserted, deleted) == Winner::existing);
}

TEST_CASE("inserting an existing row or deleting a deleted row keeps its life") {
    CHECK(CausalLength(1).inserted() == CausalLength(1));
    CHECK(CausalLength(2).deleted() == CausalLength(2));
    CHECK(CausalLength(0).inserted() == CausalLength(1));
}

TEST_CASE("concurrent writes are told apart from knowing overwrites") {
    auto a = cell(100, 1, Value::text("a"));
    auto b = cell(110, 2, Value::text("b"));
    CHECK(concurrent(a, b)); // neither writer had seen the other
    auto overwrite = b;
    overwrite.replaced = a.stamp.hlc; // node 2 had seen node 1's write
    CHECK_FALSE(concurrent(a, overwrite));
    CHECK_FALSE(concurrent(overwrite, a));
    auto same_node = cell(120, 1, Value::text("c"));
    CHECK_FALSE(concurrent(a, same_node));
}

TEST_CASE("merge rules parse from their config names") {
    CHECK(*parse_rule("lww") == MergeRule::last_writer_wins);
    CHECK(*parse_rule("counter") == MergeRule::counter);
    CHECK(*parse_rule("max") == MergeRule::max_wins);
    CHECK(*parse_rule("min") == MergeRule::min_wins);
    auto bad = parse_rule("sum");
    CHECK(bad.status().code() == Code::invalid_argument);
    CHECK_THAT(bad.status().message(), Catch::Contains("'sum'"));
}

TEST_CASE("every decision says why, the first thing that told the writes apart") {
    auto reason = [](Decision d) {
        return d.reason;
    };
    // Cells.
    CHECK(reason(decide_cell(MergeRule::last_writer_wins, cell(100, 2, Value::integer(1)),
                             cell(200, 1, Value::integer(1)))) == Reason::later_clock);
    CHECK(reason(decide_cell(MergeRule::last_writer_wins, cell(100, 1, Value::integer(9)),
                             cell(100, 2, Value::integer(1)))) == Reason::greater_node);
    CHECK(reason(decide_cell(MergeRule::last_writer_wins, cell(100, 1, Value::integer(1)),
                             cell(100, 1, Value::integer(2)))) == Reason::greater_value);
    CHECK(reason(decide_cell(MergeRule::max_wins, cell(200, 1, Value::integer(1)),
                             cell(100, 2, Value::integer(5)))) == Reason::max_value);
    CHECK(reason(decide_cell(MergeRule::min_wins, cell(200, 1, Value::integer(1)),
                             cell(100, 2, Value::integer(5)))) == Reason::min_value);
    CHECK(reason(decide_cell(MergeRule::max_wins, cell(100, 1, Value::integer(5)),
                             cell(200, 2, Value::integer(5)))) == Reason::later_clock);
    CHECK(reason(decide_cell(MergeRule::max_wins, cell(100, 1, Value::integer(9)),
                             cell(50, 2, Value::integer(1), CausalLength(3)))) ==
          Reason::later_life);
    auto same = decide_cell(MergeRule::last_writer_wins, cell(100, 1, Value::integer(1)),
                            cell(100, 1, Value::integer(1)));
    CHECK(same.winner == Winner::same);
    CHECK(same.reason == Reason::same_write);
    // Rows and counters.
    CHECK(reason(decide_row({CausalLength(1), {at(200), node(1)}},
                            {CausalLength(2), {at(100), node(1)}})) == Reason::later_life);
    CHECK(reason(decide_row({CausalLength(1), {at(100), node(2)}},
                            {CausalLength(1), {at(100), node(3)}})) == Reason::greater_node);
    CHECK(reason(decide_counter({kLive, {at(100), node(1)}, 5}, {kLive, {at(100), node(1)}, 7})) ==
          Reason::greater_total);
    CHECK(reason(decide_counter({kLive, {at(100), node(1)}, 5}, {kLive, {at(200), node(1)}, 1})) ==
          Reason::later_clock);
    // Each reads as a sentence; the ones `peerlite conflicts` has always printed are kept.
    CHECK(reason_text(Reason::later_clock) == "lww: the later clock wins");
    CHECK(reason_text(Reason::greater_node) == "lww: equal clocks, the greater node id wins");
    CHECK(reason_text(Reason::max_value) == "max: the greater value wins");
    CHECK(reason_text(Reason::min_value) == "min: the smaller value wins");
}
