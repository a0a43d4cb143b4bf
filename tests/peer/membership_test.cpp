// The member table alone (pure logic, time passed in): who may change a member's entry.
#include <random>

#include <catch2/catch.hpp>

#include <peerlite/peer/membership.hpp>

using namespace peerlite;
using peer::Membership;

namespace {

crdt::NodeId id(std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    return crdt::NodeId::random(rng);
}

struct Table {
    peer::Clock::time_point now{};
    Membership members{{id(1), "tcp://127.0.0.1:1000", "key-self", 100, {}}, {}};
    transport::Member b{id(2), "tcp://127.0.0.1:2000", "key-b", 500, {}};
    Table() { REQUIRE(members.learn(b, now)); }
    const transport::Member& entry() const { return members.find(b.id)->member; }
};

} // namespace

TEST_CASE("gossip with a lower or equal incarnation changes nothing about a known member") {
    Table t;
    auto stale = t.b;
    stale.endpoint = "tcp://127.0.0.1:9999";
    stale.incarnation = 400;
    CHECK_FALSE(t.members.learn(stale, t.now));
    stale.incarnation = 500;
    CHECK_FALSE(t.members.learn(stale, t.now));
    CHECK(t.entry() == t.b);
}

TEST_CASE("gossip never re-binds a known member's public key, whatever its incarnation") {
    Table t;
    auto forged = t.b;
    forged.public_key = "key-attacker";
    forged.incarnation = 1'000'000;
    CHECK_FALSE(t.members.learn(forged, t.now));
    CHECK(t.entry().public_key == "key-b");
}

TEST_CASE("a restarted member's new address spreads by gossip with its greater incarnation") {
    Table t;
    auto moved = t.b;
    moved.endpoint = "tcp://127.0.0.1:2001";
    moved.incarnation = 600;
    CHECK(t.members.learn(moved, t.now));
    CHECK(t.entry() == moved);
}

TEST_CASE("a member's own word counts even against a forged entry with a greater incarnation") {
    Table t;
    auto forged = t.b;
    forged.endpoint = "tcp://127.0.0.1:1"; // nothing listens there
    forged.incarnation = 900;
    REQUIRE(t.members.learn(forged, t.now));
    CHECK(t.members.learn(t.b, t.now, Membership::Source::itself));
    CHECK(t.entry() == t.b);
}

TEST_CASE("a member known only from gossip is forgotten after the expiry; one heard from stays, "
          "and a forgotten one that comes back is learned again from its own word") {
    peer::Clock::time_point now{};
    peer::MembershipOptions options;
    options.forget_unheard_after = std::chrono::hours(1);
    Membership members({id(1), "tcp://127.0.0.1:1000", "key-self", 100, {}}, options);
    transport::Member rumour{id(3), "tcp://127.0.0.1:3000", "key-c", 500, {}};
    transport::Member real{id(4), "tcp://127.0.0.1:4000", "key-d", 500, {}};
    REQUIRE(members.learn(rumour, now));
    REQUIRE(members.learn(real, now));
    members.heard_from(real.id, now + std::chrono::minutes(5));
    CHECK(members.forget_unheard(now + std::chrono::minutes(59)).empty());
    auto forgotten = members.forget_unheard(now + std::chrono::hours(1));
    CHECK(forgotten == std::vector<crdt::NodeId>{rumour.id});
    CHECK(members.find(rumour.id) == nullptr);
    CHECK(members.find(real.id) != nullptr);
    // Days later it says hello itself.
    CHECK(members.learn(rumour, now + std::chrono::hours(72), Membership::Source::itself));
    CHECK(members.forget_unheard(now + std::chrono::hours(200)).empty());
}
