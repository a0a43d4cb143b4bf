// Per-column merge rules and row existence: the decisions that make replicas converge.
//
// Every decision here is a pure function of the two writes it compares, never of arrival
// order or of which node decides, so any set of changes delivered in any order, with
// duplicates, leaves every node with the same winners.
//
// Rows: existence is a causal length (a "CL-set"). A row's life starts at 0 (never
// seen); an insert moves an even life to the next odd number, a delete moves an odd life
// to the next even number, and merge keeps the greatest. So:
//   * insert, delete and re-insert work any number of times;
//   * DELETE RACING A CONCURRENT UPDATE: THE DELETE WINS. An update does not change the
//     life, so the concurrent delete (life 2) beats it; the row stays deleted everywhere.
//   * a re-insert made after seeing the delete (life 3) beats that delete.
// Every cell write carries the life of the row it was made in, and a write from an
// earlier life always loses to one from a later life: an update that raced a delete
// never resurfaces in the row's next life.
//
// Cells, within one life:
//   * last_writer_wins: the greater clock wins, then the greater node id, then the
//     greater value. The number of times a side edited the cell plays no part.
//   * max_wins / min_wins: the greater (smaller) value wins; clock, then node id, break
//     ties between equal values so the kept metadata is deterministic too.
//   * counter: each node owns one contribution per cell (its running total of
//     increments); a node's newer contribution replaces its older one, and the cell's
//     value is the sum of the contributions made in the row's current life. Concurrent
//     increments on different nodes therefore all survive. A value written by INSERT
//     counts as the inserting node's contribution (two nodes inserting the same key
//     with qty=10 yield 20). The sum wraps around at 64 bits (two's complement, see
//     counter_add()): overflow is not an error, and any order of adding the same
//     contributions gives the same sum on every node.
//     A counter holds 64-bit integers only (counter_value()). A local write of anything
//     else (a fractional or out-of-range REAL, NULL, TEXT, BLOB) changes no contribution:
//     capture puts the cell back to the sum and reports a warning, so no node rounds or
//     converts the value its own way.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string_view>

#include <peerlite/crdt/hlc.hpp>
#include <peerlite/crdt/value.hpp>
#include <peerlite/status.hpp>

namespace peerlite::crdt {

// Fixed values: stored in the metadata tables and on the wire.
enum class MergeRule : std::uint8_t {
    last_writer_wins = 0,
    counter = 1,
    max_wins = 2,
    min_wins = 3,
};

// "lww", "counter", "max", "min": the names used in configs and by the CLI.
std::string_view rule_name(MergeRule rule);
Result<MergeRule> parse_rule(std::string_view name);

// A row's causal length: odd while the row exists, even once deleted, 0 before any write.
class CausalLength {
public:
    constexpr CausalLength() = default;
    constexpr explicit CausalLength(std::uint64_t n) : n_(n) {}
    constexpr std::uint64_t value() const { return n_; }
    constexpr bool exists() const { return n_ % 2 == 1; }
    // The life an insert moves to (this one if the row already exists).
    constexpr CausalLength inserted() const { return exists() ? *this : CausalLength(n_ + 1); }
    // The life a delete moves to (this one if the row is already deleted).
    constexpr CausalLength deleted() const { return exists() ? CausalLength(n_ + 1) : *this; }
    friend constexpr auto operator<=>(CausalLength, CausalLength) = default;

private:
    std::uint64_t n_ = 0;
};

// Which of two writes a merge keeps. `same` means the two are one write seen twice.
enum class Winner : std::uint8_t { existing, incoming, same };

// Why a merge kept the write it kept: the first thing that told the two apart.
enum class Reason : std::uint8_t {
    same_write,    // nothing: one write seen twice
    later_life,    // the row's later life (a delete, or an insert after one)
    later_clock,   // the later clock
    greater_node,  // equal clocks: the greater node id
    greater_value, // last-writer-wins with equal stamps: the greater value
    max_value,     // max: the greater value
    min_value,     // min: the smaller value
    greater_total, // a counter contribution at the same clock: the greater running total
};

// The sentence people read for a reason, as `peerlite conflicts` prints it, e.g.
// "lww: the later clock wins".
std::string_view reason_text(Reason reason);

// A merge's decision: who won, and why. Compares equal to its Winner.
struct Decision {
    Winner winner = Winner::same;
    Reason reason = Reason::same_write;
    friend bool operator==(const Decision& d, Winner w) { return d.winner == w; }
};

// A row insert or delete: the life it moved the row to, and when.
struct RowWrite {
    CausalLength life;
    Stamp stamp;
    friend bool operator==(const RowWrite&, const RowWrite&) = default;
};

Decision decide_row(const RowWrite& existing, const RowWrite& incoming);

// A write to a last_writer_wins, max_wins or min_wins cell.
struct CellWrite {
    CausalLength life;
    Stamp stamp;
    Value value;
    // The clock of the cell's write that this one replaced on its origin node (zero if
    // none): what its writer had already seen, used only to tell conflicts from
    // ordinary overwrites, never to pick a winner.
    Hlc replaced;
    friend bool operator==(const CellWrite&, const CellWrite&) = default;
};

// Precondition: rule != MergeRule::counter.
Decision decide_cell(MergeRule rule, const CellWrite& existing, const CellWrite& incoming);

// Whether two writes to one cell were made without either writer having seen the other
// (as far as the `replaced` clocks tell): such a decision is a conflict worth recording.
// A write that knowingly overwrote the other, or a stale write arriving late, is not.
bool concurrent(const CellWrite& a, const CellWrite& b);

// One node's contribution to a counter cell; stamp.node is the contributing node.
struct CounterWrite {
    CausalLength life;
    Stamp stamp;
    std::int64_t total = 0; // the node's running sum of increments in this life
    friend bool operator==(const CounterWrite&, const CounterWrite&) = default;
};

// Precondition: both contributions come from the same node (stamp.node equal).
Decision decide_counter(const CounterWrite& existing, const CounterWrite& incoming);

// The integer a counter cell takes for a value written to it, or nothing if the counter
// cannot hold it exactly: an INTEGER is itself; a REAL that is a whole number from -2^63
// to 2^63-1 is that integer (SQLite keeps 3.0 as REAL in a column without INTEGER
// affinity); a fractional, infinite or out-of-range REAL, NULL, TEXT and BLOB are refused.
std::optional<std::int64_t> counter_value(const Value& value);

// Adds `delta` to a sum of contributions the same way on every node (wrapping at 64 bits).
constexpr std::int64_t counter_add(std::int64_t sum, std::int64_t delta) {
    return static_cast<std::int64_t>(static_cast<std::uint64_t>(sum) +
                                     static_cast<std::uint64_t>(delta));
}

// `value - sum` the same way: the delta that moves `sum` to `value`, wrapping at 64 bits.
constexpr std::int64_t counter_sub(std::int64_t value, std::int64_t sum) {
    return static_cast<std::int64_t>(static_cast<std::uint64_t>(value) -
                                     static_cast<std::uint64_t>(sum));
}

} // namespace peerlite::crdt
