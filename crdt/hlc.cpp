#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <ctime>

#include <peerlite/crdt/hlc.hpp>

namespace peerlite::crdt {

std::string Hlc::to_string() const {
    auto ms = physical_ms();
    std::time_t seconds = static_cast<std::time_t>(ms / 1000);
    std::tm utc{};
    gmtime_r(&seconds, &utc);
    char buffer[64];
    std::snprintf(buffer, sizeof buffer, "%04d-%02d-%02dT%02d:%02d:%02d.%03" PRIu64 "Z+%" PRIu64,
                  utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min,
                  utc.tm_sec, ms % 1000, logical());
    return buffer;
}

std::string Stamp::to_string() const {
    return hlc.to_string() + " @" + node.short_string();
}

HlcClock::HlcClock(WallClock wall, std::chrono::milliseconds max_drift)
    : wall_(std::move(wall)), max_drift_(max_drift) {}

std::uint64_t HlcClock::wall_raw() const {
    auto ms = wall_().count();
    // A wall clock before 1970 is treated as 1970: the logical counter carries on.
    auto physical = static_cast<std::uint64_t>(std::max<std::int64_t>(ms, 0));
    return Hlc::from_parts(std::min(physical, Hlc::kMaxPhysicalMs), 0).raw();
}

namespace {
// The raw successor, saturating at the top: reaching it needs a clock in the year 10889,
// which the drift bound refuses long before.
std::uint64_t next(std::uint64_t raw) {
    return raw == UINT64_MAX ? raw : raw + 1;
}
} // namespace

Hlc HlcClock::now() {
    auto wall = wall_raw();
    std::lock_guard lock(mutex_);
    last_ = Hlc::from_raw(std::max(next(last_.raw()), wall));
    return last_;
}

Hlc HlcClock::now_at(std::chrono::milliseconds write_time) {
    auto wall = wall_raw();
    auto at = Hlc::from_parts(
        std::min(static_cast<std::uint64_t>(std::max<std::int64_t>(write_time.count(), 0)),
                 Hlc::kMaxPhysicalMs),
        0);
    std::lock_guard lock(mutex_);
    last_ = Hlc::from_raw(std::max(next(last_.raw()), std::min(at.raw(), wall)));
    return last_;
}

Status HlcClock::check_drift(Hlc remote, const NodeId& peer) const {
    auto wall_ms = static_cast<std::int64_t>(Hlc::from_raw(wall_raw()).physical_ms());
    auto remote_ms = static_cast<std::int64_t>(remote.physical_ms());
    auto skew = remote_ms - wall_ms;
    if (skew > max_drift_.count()) {
        return Status(Code::clock_drift,
                      "peer " + peer.to_string() + " sent clock " + remote.to_string() + ", " +
                          std::to_string(skew) + " ms ahead of our wall clock (bound " +
                          std::to_string(max_drift_.count()) +
                          " ms); refused until our clock catches up: check NTP on both "
                          "nodes or raise max_clock_drift");
    }
    return Status::success();
}

Result<Hlc> HlcClock::receive(Hlc remote, const NodeId& peer) {
    if (auto status = check_drift(remote, peer); !status.ok()) {
        return status;
    }
    auto wall = wall_raw();
    std::lock_guard lock(mutex_);
    last_ = Hlc::from_raw(std::max({next(last_.raw()), next(remote.raw()), wall}));
    return last_;
}

Status HlcClock::observe(Hlc remote, const NodeId& peer) {
    if (auto status = check_drift(remote, peer); !status.ok()) {
        return status;
    }
    std::lock_guard lock(mutex_);
    last_ = std::max(last_, remote);
    return Status::success();
}

void HlcClock::restore(Hlc persisted) {
    std::lock_guard lock(mutex_);
    last_ = std::max(last_, persisted);
}

Hlc HlcClock::last() const {
    std::lock_guard lock(mutex_);
    return last_;
}

} // namespace peerlite::crdt
