#include <chrono>
#include <random>

#include <catch2/catch.hpp>

#include <peerlite/crdt/hlc.hpp>

using namespace peerlite;
using namespace peerlite::crdt;
using std::chrono::milliseconds;

namespace {
// A wall clock the test sets by hand.
struct ManualWall {
    std::int64_t ms = 1'700'000'000'000;
    WallClock clock() {
        return [this] {
            return milliseconds(ms);
        };
    }
};

NodeId node(std::uint8_t n) {
    NodeId::Bytes b{};
    b[15] = n;
    return NodeId::from_bytes(b);
}
} // namespace

TEST_CASE("an hlc packs 48 bits of milliseconds above a 16-bit logical counter") {
    auto h = Hlc::from_parts(1234, 7);
    CHECK(h.physical_ms() == 1234);
    CHECK(h.logical() == 7);
    CHECK(h.raw() == (1234u << 16 | 7u));
    CHECK(Hlc::from_parts(1, 0) > Hlc::from_parts(0, Hlc::kMaxLogical));
}

TEST_CASE("local events follow the wall clock when it moves forward") {
    ManualWall wall;
    HlcClock clock(wall.clock());
    auto a = clock.now();
    CHECK(a == Hlc::from_parts(wall.ms, 0));
    wall.ms += 5;
    auto b = clock.now();
    CHECK(b == Hlc::from_parts(wall.ms, 0));
}

TEST_CASE("events within one millisecond advance the logical counter") {
    ManualWall wall;
    HlcClock clock(wall.clock());
    auto a = clock.now();
    auto b = clock.now();
    CHECK(b.physical_ms() == a.physical_ms());
    CHECK(b.logical() == a.logical() + 1);
}

TEST_CASE("the clock stays monotonic when the wall clock steps back") {
    ManualWall wall;
    HlcClock clock(wall.clock());
    auto before = clock.now();
    wall.ms -= 60'000; // NTP stepped the clock back a minute
    auto after = clock.now();
    CHECK(after > before);
    CHECK(after.physical_ms() == before.physical_ms());
    CHECK(after.logical() == before.logical() + 1);
}

TEST_CASE("logical counter overflow carries into the physical part") {
    ManualWall wall;
    HlcClock clock(wall.clock());
    clock.restore(Hlc::from_parts(wall.ms, Hlc::kMaxLogical));
    auto next = clock.now();
    CHECK(next == Hlc::from_parts(wall.ms + 1, 0));
    CHECK(next > Hlc::from_parts(wall.ms, Hlc::kMaxLogical));
}

TEST_CASE("a receive event is later than both the local and the remote clock") {
    ManualWall wall;
    HlcClock clock(wall.clock());
    auto local = clock.now();
    auto remote = Hlc::from_parts(wall.ms + 200, 3); // ahead, within the 1 s bound
    auto r = clock.receive(remote, node(2));
    REQUIRE(r.ok());
    CHECK(*r == Hlc::from_parts(wall.ms + 200, 4));
    CHECK(*r > local);
    // The next local event stays ahead of what was received.
    CHECK(clock.now() > remote);
}

TEST_CASE("receiving an equal clock still moves strictly past it") {
    ManualWall wall;
    HlcClock clock(wall.clock());
    auto local = clock.now();
    auto r = clock.receive(local, node(2));
    REQUIRE(r.ok());
    CHECK(*r == Hlc::from_raw(local.raw() + 1));
}

TEST_CASE("a remote clock beyond the drift bound is refused and does not move ours") {
    ManualWall wall;
    HlcClock clock(wall.clock(), milliseconds(500));
    auto before = clock.now();
    auto remote = Hlc::from_parts(wall.ms + 120'000, 0); // two minutes ahead
    auto r = clock.receive(remote, node(9));
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == Code::clock_drift);
    CHECK_THAT(r.status().message(), Catch::Contains(node(9).to_string()));
    CHECK_THAT(r.status().message(), Catch::Contains("120000 ms ahead"));
    CHECK(clock.last() == before);
    CHECK(clock.observe(remote, node(9)).code() == Code::clock_drift);
    CHECK(clock.last() == before);
}

TEST_CASE("a remote clock exactly at the drift bound is accepted") {
    ManualWall wall;
    HlcClock clock(wall.clock(), milliseconds(500));
    CHECK(clock.receive(Hlc::from_parts(wall.ms + 500, 0), node(3)).ok());
    CHECK_FALSE(clock.receive(Hlc::from_parts(wall.ms + 501, 0), node(3)).ok());
}

TEST_CASE("a refused clock is accepted once the wall clock catches up") {
    ManualWall wall;
    HlcClock clock(wall.clock(), milliseconds(500));
    auto remote = Hlc::from_parts(wall.ms + 2'000, 0);
    CHECK_FALSE(clock.receive(remote, node(3)).ok());
    wall.ms += 1'600;
    CHECK(clock.receive(remote, node(3)).ok());
}

TEST_CASE("a restored clock never issues at or below the persisted value") {
    ManualWall wall;
    Hlc persisted;
    {
        HlcClock clock(wall.clock());
        wall.ms += 10'000;
        clock.now();
        persisted = clock.now();
    }
    wall.ms -= 20'000; // the machine comes back with its clock behind
    HlcClock clock(wall.clock());
    clock.restore(persisted);
    CHECK(clock.now() > persisted);
    // Restoring an older value cannot move it back.
    clock.restore(Hlc::from_parts(1, 0));
    CHECK(clock.last() > persisted);
}

TEST_CASE("a wall clock before 1970 is clamped and the clock still advances") {
    std::int64_t ms = -5;
    HlcClock clock([&] { return milliseconds(ms); });
    auto a = clock.now();
    auto b = clock.now();
    CHECK(a.physical_ms() == 0);
    CHECK(b > a);
}

TEST_CASE("stamps order by clock, then by node id") {
    auto h = Hlc::from_parts(100, 0);
    CHECK(Stamp{h, node(1)} < Stamp{h, node(2)});
    CHECK(Stamp{Hlc::from_parts(100, 1), node(1)} > Stamp{h, node(2)});
    CHECK(Stamp{h, node(1)} == Stamp{h, node(1)});
}

TEST_CASE("an hlc prints as UTC time plus its logical counter") {
    // 2023-11-14T22:13:20.000Z is 1700000000000 ms.
    CHECK(Hlc::from_parts(1'700'000'000'123, 42).to_string() == "2023-11-14T22:13:20.123Z+42");
}

TEST_CASE("hlc order respects causality across message chains") {
    auto seed = Catch::rngSeed();
    CAPTURE(seed);
    std::mt19937_64 rng(seed);
    // Five nodes whose wall clocks are up to 400 ms apart and jump around; a random chain
    // of local events and messages. Every event must be later than every event that
    // happened before it.
    std::int64_t base = 1'700'000'000'000;
    std::vector<std::int64_t> offset(5);
    std::vector<std::unique_ptr<HlcClock>> clocks;
    for (int i = 0; i < 5; ++i) {
        offset[i] = static_cast<std::int64_t>(rng() % 400);
        clocks.push_back(std::make_unique<HlcClock>(
            [&, i] { return milliseconds(base + offset[i]); }, milliseconds(1000)));
    }
    std::vector<Hlc> latest(5); // each node's latest event
    for (int step = 0; step < 20'000; ++step) {
        base += static_cast<std::int64_t>(rng() % 4) - 1; // time stalls, advances, steps back
        int from = static_cast<int>(rng() % 5);
        int to = static_cast<int>(rng() % 5);
        auto sent = clocks[from]->now();
        REQUIRE(sent > latest[from]);
        latest[from] = sent;
        auto received = clocks[to]->receive(sent, node(static_cast<std::uint8_t>(from)));
        REQUIRE(received.ok());
        REQUIRE(*received > sent);
        REQUIRE(*received > latest[to]);
        latest[to] = *received;
    }
}
