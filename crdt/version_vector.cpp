#include <algorithm>
#include <cstdint>

#include <peerlite/crdt/version_vector.hpp>

namespace peerlite::crdt {

namespace {
std::uint64_t raw(Hlc h) {
    return h.raw();
}
Hlc hlc(std::uint64_t r) {
    return Hlc::from_raw(r);
}
} // namespace

void ClockRanges::add(ClockRange range) {
    // Find the first range that could touch [first, last] (ends at or after first - 1),
    // swallow every range that overlaps or is adjacent, and insert the union.
    auto lo = raw(range.first);
    auto hi = raw(range.last);
    auto it = std::lower_bound(ranges_.begin(), ranges_.end(), lo, [](const ClockRange& r, auto v) {
        return raw(r.last) != UINT64_MAX && raw(r.last) + 1 < v;
    });
    auto end = it;
    while (end != ranges_.end() && (hi == UINT64_MAX || raw(end->first) <= hi + 1)) {
        lo = std::min(lo, raw(end->first));
        hi = std::max(hi, raw(end->last));
        ++end;
    }
    it = ranges_.erase(it, end);
    ranges_.insert(it, ClockRange{hlc(lo), hlc(hi)});
}

void ClockRanges::add(const ClockRanges& other) {
    for (const auto& r : other.ranges_) {
        add(r);
    }
}

bool ClockRanges::contains(Hlc clock) const {
    return covers(ClockRange{clock, clock});
}

bool ClockRanges::covers(ClockRange range) const {
    auto it = std::lower_bound(ranges_.begin(), ranges_.end(), range.first,
                               [](const ClockRange& r, Hlc v) { return r.last < v; });
    return it != ranges_.end() && it->first <= range.first && range.last <= it->last;
}

ClockRanges ClockRanges::minus(const ClockRanges& other) const {
    ClockRanges out;
    auto theirs = other.ranges_.begin();
    for (const auto& mine : ranges_) {
        auto lo = raw(mine.first);
        auto hi = raw(mine.last);
        // Skip their ranges that end before this one starts.
        while (theirs != other.ranges_.end() && raw(theirs->last) < lo) {
            ++theirs;
        }
        auto t = theirs;
        bool done = false;
        while (t != other.ranges_.end() && raw(t->first) <= hi) {
            if (raw(t->first) > lo) {
                out.ranges_.push_back({hlc(lo), hlc(raw(t->first) - 1)});
            }
            if (raw(t->last) >= hi) {
                done = true;
                break;
            }
            lo = raw(t->last) + 1;
            ++t;
        }
        if (!done) {
            out.ranges_.push_back({hlc(lo), hlc(hi)});
        }
    }
    return out;
}

Hlc ClockRanges::contiguous_through() const {
    if (ranges_.empty() || raw(ranges_.front().first) > 1) {
        return Hlc();
    }
    return ranges_.front().last;
}

Hlc ClockRanges::highest() const {
    return ranges_.empty() ? Hlc() : ranges_.back().last;
}

void VersionVector::add(const NodeId& origin, const ClockRanges& ranges) {
    if (!ranges.empty()) {
        by_origin_[origin].add(ranges);
    }
}

void VersionVector::merge(const VersionVector& other) {
    for (const auto& [origin, ranges] : other.by_origin_) {
        add(origin, ranges);
    }
}

bool VersionVector::contains(const NodeId& origin, Hlc clock) const {
    auto it = by_origin_.find(origin);
    return it != by_origin_.end() && it->second.contains(clock);
}

VersionVector VersionVector::minus(const VersionVector& other) const {
    VersionVector out;
    for (const auto& [origin, ranges] : by_origin_) {
        auto missing = ranges.minus(other.of(origin));
        if (!missing.empty()) {
            out.by_origin_.emplace(origin, std::move(missing));
        }
    }
    return out;
}

const ClockRanges& VersionVector::of(const NodeId& origin) const {
    static const ClockRanges kEmpty;
    auto it = by_origin_.find(origin);
    return it == by_origin_.end() ? kEmpty : it->second;
}

} // namespace peerlite::crdt
