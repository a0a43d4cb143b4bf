// Hybrid logical clock (Kulkarni et al., "Logical Physical Clocks", 2014).
//
// An Hlc is one 64-bit number: the upper 48 bits are physical milliseconds since the Unix
// epoch, the lower 16 bits a logical counter. Comparing the raw numbers compares
// (physical, logical) lexicographically, and adding one to the raw number is the paper's
// "logical + 1" including its overflow: after 65,535 events in one millisecond the carry
// moves the clock one millisecond ahead of the wall clock, which keeps it strictly
// monotonic at the price of running ahead until the wall clock catches up.
//
// A Stamp is an Hlc plus the id of the node that issued it. Stamps are totally ordered
// (clock first, node id as tie-break), so two distinct writes never compare equal.
#pragma once

#include <chrono>
#include <compare>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>

#include <peerlite/crdt/node_id.hpp>
#include <peerlite/status.hpp>

namespace peerlite::crdt {

class Hlc {
public:
    static constexpr int kLogicalBits = 16;
    static constexpr std::uint64_t kMaxLogical = (std::uint64_t{1} << kLogicalBits) - 1;
    static constexpr std::uint64_t kMaxPhysicalMs = (std::uint64_t{1} << (64 - kLogicalBits)) - 1;

    // Zero: earlier than any clock a node issues.
    constexpr Hlc() = default;
    static constexpr Hlc from_raw(std::uint64_t raw) { return Hlc(raw); }
    // Precondition: physical_ms <= kMaxPhysicalMs (the year 10889), logical <= kMaxLogical.
    static constexpr Hlc from_parts(std::uint64_t physical_ms, std::uint64_t logical) {
        return Hlc((physical_ms << kLogicalBits) | (logical & kMaxLogical));
    }

    constexpr std::uint64_t raw() const { return raw_; }
    constexpr std::uint64_t physical_ms() const { return raw_ >> kLogicalBits; }
    constexpr std::uint64_t logical() const { return raw_ & kMaxLogical; }

    // "2026-11-23T13:43:04.123Z+5": UTC wall time, then the logical counter.
    std::string to_string() const;

    friend constexpr auto operator<=>(Hlc, Hlc) = default;

private:
    constexpr explicit Hlc(std::uint64_t raw) : raw_(raw) {}
    std::uint64_t raw_ = 0;
};

struct Stamp {
    Hlc hlc;
    NodeId node;

    friend auto operator<=>(const Stamp&, const Stamp&) = default;
    std::string to_string() const; // "<hlc> @<node short id>"
};

// The physical time source, injected so tests control time. Returns milliseconds since
// the Unix epoch; it may step backwards (NTP) and the clock stays monotonic regardless.
using WallClock = std::function<std::chrono::milliseconds()>;

// How far ahead of our wall clock a remote clock may be before its changes are refused.
// Larger tolerates worse-synchronized nodes; smaller limits how far a fast node's writes
// can jump ahead of everyone else's under last-writer-wins.
inline constexpr std::chrono::milliseconds kDefaultMaxDrift{1000};

// One node's clock. Thread-safe: every method may be called from any thread.
class HlcClock {
public:
    HlcClock(WallClock wall, std::chrono::milliseconds max_drift = kDefaultMaxDrift);

    // Send/local-event rule: a clock greater than every clock issued or received so far
    // and at least the current wall time.
    Hlc now();

    // A local event for a write made earlier at `write_time` (e.g. one captured while no
    // peerlite process ran): at or after that time, never later than the wall clock
    // needs, and greater than everything issued or received so far.
    Hlc now_at(std::chrono::milliseconds write_time);

    // Receive rule: merges a clock seen on a change from `peer` and returns a local event
    // clock greater than both. A clock whose physical part is more than the drift bound
    // ahead of our wall clock is refused with Code::clock_drift naming the peer and the
    // skew, and leaves this clock untouched, so one bad peer cannot drag the mesh's time
    // forward.
    Result<Hlc> receive(Hlc remote, const NodeId& peer);

    // Like receive(), without issuing an event: only checks the bound and raises the
    // clock to at least `remote`.
    Status observe(Hlc remote, const NodeId& peer);

    // Checks `remote` against the drift bound without changing the clock.
    Status check_drift(Hlc remote, const NodeId& peer) const;

    // Restores persisted state after a restart: the clock never issues anything at or
    // below `persisted` afterwards, even if the wall clock is now behind it.
    void restore(Hlc persisted);

    // The greatest clock issued or received; persist it to make restarts monotonic.
    Hlc last() const;

    std::chrono::milliseconds max_drift() const { return max_drift_; }

private:
    std::uint64_t wall_raw() const;

    WallClock wall_;
    std::chrono::milliseconds max_drift_;
    mutable std::mutex mutex_;
    Hlc last_;
};

} // namespace peerlite::crdt
