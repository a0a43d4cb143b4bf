// Version vectors: which changes a node holds, per origin node, exactly.
//
// A change's version is the pair (origin node, origin clock): each node's HLC is strictly
// increasing, so the clock numbers that node's changes in order without a second counter.
// For each origin a VersionVector keeps the set of clock ranges the holder has COVERED:
// for every clock in a covered range, the holder has applied that origin's change with
// that clock, or the change never existed, or it was superseded by a change the holder
// also has. Covering is what makes "what do you lack?" exact: a sender that covers
// [a, b] of origin O sends every change of O in [a, b] it still holds, plus the claim
// "[a, b] is covered"; changes of O in that range that were superseded before they
// reached the sender cannot be sent but need not be, and the receiver covers the whole
// range afterwards. So no gap stays open forever.
//
// Not thread-safe; copy freely.
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include <peerlite/crdt/hlc.hpp>
#include <peerlite/crdt/node_id.hpp>

namespace peerlite::crdt {

// An inclusive range of one origin's clocks.
struct ClockRange {
    Hlc first;
    Hlc last; // invariant: first <= last
    friend bool operator==(const ClockRange&, const ClockRange&) = default;
};

// A set of clocks kept as sorted, disjoint, non-adjacent inclusive ranges.
class ClockRanges {
public:
    ClockRanges() = default;

    void add(Hlc clock) { add(ClockRange{clock, clock}); }
    // Precondition: range.first <= range.last.
    void add(ClockRange range);
    void add(const ClockRanges& other);

    bool contains(Hlc clock) const;
    // Whether every clock of `range` is in the set.
    bool covers(ClockRange range) const;
    // The clocks in this set and not in `other`.
    ClockRanges minus(const ClockRanges& other) const;

    // The greatest clock c such that every clock in [1, c] is covered (0 if none):
    // everything this origin did up to c is here.
    Hlc contiguous_through() const;
    // The greatest clock covered (0 if empty).
    Hlc highest() const;

    bool empty() const { return ranges_.empty(); }
    const std::vector<ClockRange>& ranges() const { return ranges_; }
    friend bool operator==(const ClockRanges&, const ClockRanges&) = default;

private:
    std::vector<ClockRange> ranges_;
};

class VersionVector {
public:
    void add(const NodeId& origin, Hlc clock) { by_origin_[origin].add(clock); }
    void add(const NodeId& origin, ClockRange range) { by_origin_[origin].add(range); }
    void add(const NodeId& origin, const ClockRanges& ranges);
    void merge(const VersionVector& other);

    bool contains(const NodeId& origin, Hlc clock) const;
    // For each origin: the clocks this vector covers and `other` does not, i.e. exactly
    // what a holder of `this` must send a holder of `other`. Origins with nothing missing
    // are absent.
    VersionVector minus(const VersionVector& other) const;
    // Ranges covered for one origin (empty if the origin is unknown).
    const ClockRanges& of(const NodeId& origin) const;

    bool empty() const { return by_origin_.empty(); }
    const std::map<NodeId, ClockRanges>& origins() const { return by_origin_; }
    friend bool operator==(const VersionVector&, const VersionVector&) = default;

private:
    std::map<NodeId, ClockRanges> by_origin_;
};

} // namespace peerlite::crdt
