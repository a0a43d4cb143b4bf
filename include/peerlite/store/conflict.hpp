// A decided conflict: two writes to the same cell made without either writer having seen
// the other, and which one the merge kept. Recorded by Store::apply() and by capture when
// a local write loses (max/min rules), kept for StoreOptions::conflict_retention. An
// operator may later settle one with Store::resolve(), which marks it resolved.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <peerlite/crdt/merge.hpp>
#include <peerlite/status.hpp>

namespace peerlite::store {

// Who settled a conflict and when (Store::resolve()).
struct Resolution {
    std::int64_t at_ms = 0; // local wall time of the resolution
    std::string by;         // the operator's name as given
    friend bool operator==(const Resolution&, const Resolution&) = default;
};

struct Conflict {
    std::int64_t id = 0;            // increasing; stable within one database
    std::int64_t decided_at_ms = 0; // local wall time of the decision
    std::string table;
    std::vector<crdt::Value> key;
    std::string column; // empty for a row-level conflict
    // The rule that decided: the column's merge rule, or nothing for delete-wins (a row's
    // delete against a concurrent update of one of its cells).
    std::optional<crdt::MergeRule> rule;
    crdt::Value winner_value;
    crdt::Stamp winner;
    crdt::Value loser_value;
    crdt::Stamp loser;
    crdt::Reason reason = crdt::Reason::later_clock; // why the winner won (the merge's own)
    bool incoming_won = true; // the write that arrived won, else the one held was kept
    std::optional<Resolution> resolved = {}; // set once an operator resolved the cell
};

// How a conflict is printed and stored (`_peerlite_conflicts`, docs/metadata-format.md):
// the rule as "lww", "max", "min" or "delete-wins", and the reason as one sentence, e.g.
// "lww: the later clock wins (incoming write won)".
std::string rule_text(const Conflict& c);
std::string reason_text(const Conflict& c);
// Reads the stored texts back into `c`; Code::corruption for a text no version wrote.
Status parse_conflict_texts(std::string_view rule, std::string_view reason, Conflict& c);

// Every field narrows the result; unset fields match everything.
struct ConflictQuery {
    std::optional<std::string> table;
    std::int64_t since_ms = 0; // decided at or after
    std::size_t limit = 1000;
    std::optional<std::int64_t> id;
    std::optional<std::vector<crdt::Value>> key; // exact key values (storage class matters)
    std::optional<std::string> column;
};

} // namespace peerlite::store
