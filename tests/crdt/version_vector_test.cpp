#include <random>
#include <set>

#include <catch2/catch.hpp>

#include <peerlite/crdt/version_vector.hpp>

#include "test_nodes.hpp"

using namespace peerlite::crdt;
using namespace peerlite::crdt::testing;

namespace {
Hlc h(std::uint64_t raw) {
    return Hlc::from_raw(raw);
}
ClockRange r(std::uint64_t a, std::uint64_t b) {
    return {h(a), h(b)};
}
} // namespace

TEST_CASE("adjacent and overlapping ranges merge into one") {
    ClockRanges set;
    set.add(r(1, 3));
    set.add(r(7, 9));
    CHECK(set.ranges().size() == 2);
    set.add(r(4, 6)); // fills the gap exactly
    REQUIRE(set.ranges().size() == 1);
    CHECK(set.ranges()[0] == r(1, 9));
    CHECK(set.contiguous_through() == h(9));
}

TEST_CASE("contiguous_through stops at the first gap") {
    ClockRanges set;
    set.add(r(1, 5));
    set.add(r(8, 10));
    CHECK(set.contiguous_through() == h(5));
    CHECK(set.highest() == h(10));
    ClockRanges late;
    late.add(r(3, 4));
    CHECK(late.contiguous_through() == Hlc());
}

TEST_CASE("minus returns exactly what the other side lacks") {
    ClockRanges mine, theirs;
    mine.add(r(1, 100));
    theirs.add(r(1, 10));
    theirs.add(r(20, 30));
    theirs.add(r(90, 200));
    auto missing = mine.minus(theirs);
    REQUIRE(missing.ranges().size() == 2);
    CHECK(missing.ranges()[0] == r(11, 19));
    CHECK(missing.ranges()[1] == r(31, 89));
}

TEST_CASE("a version vector answers what do you lack per origin") {
    VersionVector a, b;
    a.add(node(1), r(1, 50));
    a.add(node(2), r(1, 5));
    b.add(node(1), r(1, 40));
    b.add(node(3), r(1, 7));
    auto a_sends_b = a.minus(b);
    CHECK(a_sends_b.of(node(1)).ranges() == std::vector{r(41, 50)});
    CHECK(a_sends_b.of(node(2)).ranges() == std::vector{r(1, 5)});
    CHECK(a_sends_b.of(node(3)).empty());
    auto b_sends_a = b.minus(a);
    CHECK(b_sends_a.origins().size() == 1);
    CHECK(b_sends_a.of(node(3)).ranges() == std::vector{r(1, 7)});
    a.merge(b_sends_a);
    b.merge(a_sends_b);
    CHECK(a == b);
}

TEST_CASE("covering a range closes gaps left by superseded changes") {
    // The receiver got clocks 3 and 9 of node 1 by push; 4..8 were superseded on the
    // sender before they reached it. The sender's coverage claim closes the gap.
    VersionVector receiver;
    receiver.add(node(1), h(3));
    receiver.add(node(1), h(9));
    CHECK(receiver.of(node(1)).ranges().size() == 2);
    receiver.add(node(1), r(1, 9));
    CHECK(receiver.of(node(1)).contiguous_through() == h(9));
}

TEST_CASE("clock range sets agree with a plain set on random operations") {
    auto seed = Catch::rngSeed();
    CAPTURE(seed);
    std::mt19937_64 rng(seed);
    for (int round = 0; round < 300; ++round) {
        ClockRanges a, b;
        std::set<std::uint64_t> sa, sb;
        for (int i = 0; i < 30; ++i) {
            auto lo = rng() % 60 + 1;
            auto hi = lo + rng() % 5;
            bool to_a = rng() % 2 == 0;
            auto& set = to_a ? a : b;
            auto& plain = to_a ? sa : sb;
            set.add(r(lo, hi));
            for (auto v = lo; v <= hi; ++v) {
                plain.insert(v);
            }
        }
        auto diff = a.minus(b);
        for (std::uint64_t v = 0; v < 70; ++v) {
            CAPTURE(round, v);
            REQUIRE(a.contains(h(v)) == (sa.count(v) == 1));
            REQUIRE(diff.contains(h(v)) == (sa.count(v) == 1 && sb.count(v) == 0));
        }
        // Ranges stay sorted, disjoint and non-adjacent.
        const auto& ranges = a.ranges();
        for (std::size_t i = 1; i < ranges.size(); ++i) {
            REQUIRE(ranges[i - 1].last.raw() + 1 < ranges[i].first.raw());
        }
    }
}
