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

Winner decide_row(const RowWrite& existing, const RowWrite& incoming) {
    return from_order(std::tie(incoming.life, incoming.stamp) <=>
                      std::tie(existing.life, existing.stamp));
}

Winner decide_cell(MergeRule rule, const CellWrite& existing, const CellWrite& incoming) {
    const auto& in = incoming;
    const auto& ex = existing;
    switch (rule) {
    case MergeRule::max_wins:
        return from_order(std::tie(in.life, in.value, in.stamp) <=>
                          std::tie(ex.life, ex.value, ex.stamp));
    case MergeRule::min_wins:
        // Smaller value ranks higher: compare the values the other way round.
        if (in.life != ex.life) {
            return from_order(in.life <=> ex.life);
        }
        if (in.value != ex.value) {
            return from_order(ex.value <=> in.value);
        }
        return from_order(in.stamp <=> ex.stamp);
    case MergeRule::last_writer_wins:
    case MergeRule::counter: // not a register; treated as lww rather than trusting input
        break;
    }
    return from_order(std::tie(in.life, in.stamp, in.value) <=>
                      std::tie(ex.life, ex.stamp, ex.value));
}

bool concurrent(const CellWrite& a, const CellWrite& b) {
    if (a.life != b.life || a.stamp.node == b.stamp.node) {
        return false;
    }
    // A writer whose replaced clock is at least the other's clock had seen it (or
    // something newer that beat it) when it wrote.
    return a.replaced < b.stamp.hlc && b.replaced < a.stamp.hlc;
}

Winner decide_counter(const CounterWrite& existing, const CounterWrite& incoming) {
    return from_order(std::tie(incoming.life, incoming.stamp.hlc, incoming.total) <=>
                      std::tie(existing.life, existing.stamp.hlc, existing.total));
}

} // namespace peerlite::crdt
