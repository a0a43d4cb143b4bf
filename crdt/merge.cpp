#include <cmath>
#include <tuple>

#include <peerlite/crdt/merge.hpp>

namespace peerlite::crdt {

std::string_view rule_name(MergeRule rule) {
    switch (rule) {
    case MergeRule::last_writer_wins: return "lww";
    case MergeRule::counter: return "counter";
    case MergeRule::max_wins: return "max";
    case MergeRule::min_wins: return "min";
    }
    return "unknown";
}

Result<MergeRule> parse_rule(std::string_view name) {
    for (auto rule : {MergeRule::last_writer_wins, MergeRule::counter, MergeRule::max_wins,
                      MergeRule::min_wins}) {
        if (name == rule_name(rule)) {
            return rule;
        }
    }
    return Status(Code::invalid_argument, "unknown merge rule '" + std::string(name) +
                                              "' (expected one of: lww, counter, max, min)");
}

std::optional<std::int64_t> counter_value(const Value& value) {
    switch (value.storage_class()) {
    case StorageClass::integer: return value.as_integer();
    case StorageClass::real: {
        // Both bounds are powers of two, so exact as doubles: every double in [lo, hi)
        // converts without undefined behaviour. NaN fails both comparisons.
        constexpr double lo = -9223372036854775808.0; // -2^63
        constexpr double hi = 9223372036854775808.0;  // 2^63
        double v = value.as_real();
        if (v >= lo && v < hi && std::trunc(v) == v) {
            return static_cast<std::int64_t>(v);
        }
        return std::nullopt;
    }
    default: return std::nullopt;
    }
}

namespace {
Winner from_order(std::strong_ordering order) {
    if (order > 0) {
        return Winner::incoming;
    }
    if (order < 0) {
        return Winner::existing;
    }
    return Winner::same;
}
} // namespace

std::string_view reason_text(Reason reason) {
    switch (reason) {
    case Reason::same_write: return "one write seen twice";
    case Reason::later_life: return "the row's later life wins (a delete, or an insert after one)";
    case Reason::later_clock: return "lww: the later clock wins";
    case Reason::greater_node: return "lww: equal clocks, the greater node id wins";
    case Reason::greater_value: return "lww: equal stamps, the greater value wins";
    case Reason::max_value: return "max: the greater value wins";
    case Reason::min_value: return "min: the smaller value wins";
    case Reason::greater_total: return "counter: equal clocks, the greater total wins";
    }
    return "unknown";
}

namespace {
Decision decided(std::strong_ordering order, Reason reason) {
    return {from_order(order), reason};
}

// Later clock first, then the greater node id.
Decision by_stamp(const Stamp& ex, const Stamp& in) {
    if (auto o = in.hlc <=> ex.hlc; o != 0) {
        return decided(o, Reason::later_clock);
    }
    if (auto o = in.node <=> ex.node; o != 0) {
        return decided(o, Reason::greater_node);
    }
    return {};
}
} // namespace

Decision decide_row(const RowWrite& existing, const RowWrite& incoming) {
    if (auto o = incoming.life <=> existing.life; o != 0) {
        return decided(o, Reason::later_life);
    }
    return by_stamp(existing.stamp, incoming.stamp);
}

Decision decide_cell(MergeRule rule, const CellWrite& existing, const CellWrite& incoming) {
    const auto& in = incoming;
    const auto& ex = existing;
    if (auto o = in.life <=> ex.life; o != 0) {
        return decided(o, Reason::later_life);
    }
    switch (rule) {
    case MergeRule::max_wins:
        if (auto o = in.value <=> ex.value; o != 0) {
            return decided(o, Reason::max_value);
        }
        return by_stamp(ex.stamp, in.stamp);
    case MergeRule::min_wins:
        // Smaller value ranks higher: compare the values the other way round.
        if (auto o = ex.value <=> in.value; o != 0) {
            return decided(o, Reason::min_value);
        }
        return by_stamp(ex.stamp, in.stamp);
    case MergeRule::last_writer_wins:
    case MergeRule::counter: // not a register; treated as lww rather than trusting input
        break;
    }
    if (auto d = by_stamp(ex.stamp, in.stamp); d.winner != Winner::same) {
        return d;
    }
    if (auto o = in.value <=> ex.value; o != 0) {
        return decided(o, Reason::greater_value);
    }
    return {};
}

bool concurrent(const CellWrite& a, const CellWrite& b) {
    if (a.life != b.life || a.stamp.node == b.stamp.node) {
        return false;
    }
    // A writer whose replaced clock is at least the other's clock had seen it (or
    // something newer that beat it) when it wrote.
    return a.replaced < b.stamp.hlc && b.replaced < a.stamp.hlc;
}

Decision decide_counter(const CounterWrite& existing, const CounterWrite& incoming) {
    if (auto o = incoming.life <=> existing.life; o != 0) {
        return decided(o, Reason::later_life);
    }
    if (auto o = incoming.stamp.hlc <=> existing.stamp.hlc; o != 0) {
        return decided(o, Reason::later_clock);
    }
    if (auto o = incoming.total <=> existing.total; o != 0) {
        return decided(o, Reason::greater_total);
    }
    return {};
}

} // namespace peerlite::crdt
