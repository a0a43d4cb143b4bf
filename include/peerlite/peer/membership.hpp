// Who is in the mesh and who is alive: the member table and its failure detector.
//
// SWIM family, simplified: each probe interval the node pings one member (round robin);
// a member that does not answer within the probe timeout is probed indirectly through a
// few others; a member not heard from for suspect_after is suspect (still gossiped to,
// not yet given up), and after dead_after it is dead (pinged only now and then, so its
// return is noticed). Any message from a member proves it alive. Members are learned
// from seeds and from other members' gossip; nobody needs the full list.
//
// Pure logic: time is passed in. Not thread-safe.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <peerlite/transport/message.hpp>

namespace peerlite::peer {

using Clock = std::chrono::steady_clock;

enum class MemberState { alive, suspect, dead };
std::string_view state_name(MemberState state);

struct MembershipOptions {
    std::chrono::milliseconds suspect_after{1500};
    std::chrono::milliseconds dead_after{5000};
    // A member known only from others' gossip, never heard from itself, is forgotten after
    // this (a real member that comes back, even days later, is learned again from its own
    // hello). Shorter bounds what forged gossip makes a node hold and probe; longer keeps
    // a real member that is slow to reach this node.
    std::chrono::milliseconds forget_unheard_after{std::chrono::hours(1)};
};

struct MemberInfo {
    transport::Member member;
    MemberState state = MemberState::alive;
    Clock::time_point last_heard{};
    Clock::time_point learned{};
    bool heard = false; // a message came from it (not only gossip about it)
};

class Membership {
public:
    Membership(transport::Member self, MembershipOptions options);

    const transport::Member& self() const { return self_; }

    // Where an entry comes from: the member itself (the `self` entry of its hello, over a
    // connection authenticated by its key), or another member's word (gossip).
    enum class Source { itself, gossip };
    // Adds or updates a member. Returns true if it was unknown, or its endpoint or key
    // changed (the caller then (re)connects to it). Gossip about a known member changes
    // it only with a greater incarnation and the same public key: a member's key changes
    // only by operator action (the config, at a restart), and a stale or forged entry
    // (lower or equal incarnation) changes nothing. The member's own word always counts.
    bool learn(const transport::Member& member, Clock::time_point now,
               Source source = Source::gossip);
    // A message arrived from `id`: it is alive.
    void heard_from(const crdt::NodeId& id, Clock::time_point now);
    // Forgets members known only from gossip for longer than forget_unheard_after; returns
    // them (the caller drops its connections to them).
    std::vector<crdt::NodeId> forget_unheard(Clock::time_point now);
    // Re-evaluates states; returns members whose state changed, with the new state.
    std::vector<std::pair<crdt::NodeId, MemberState>> update(Clock::time_point now);

    const MemberInfo* find(const crdt::NodeId& id) const;
    std::vector<MemberInfo> all() const;
    // Members not dead (alive or suspect), in a random order.
    std::vector<crdt::NodeId> reachable(std::mt19937_64& rng) const;
    // The next member to probe, round robin over everyone (dead ones included, so a
    // returning node is noticed).
    std::optional<crdt::NodeId> next_probe();
    std::vector<transport::Member> gossip() const;

private:
    transport::Member self_;
    MembershipOptions options_;
    std::map<crdt::NodeId, MemberInfo> members_;
    crdt::NodeId last_probed_;
};

} // namespace peerlite::peer
