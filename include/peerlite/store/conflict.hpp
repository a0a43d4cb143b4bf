// A decided conflict: two writes to the same cell made without either writer having seen
// the other, and which one the merge kept. Recorded by Store::apply() and by capture when
// a local write loses (max/min rules), kept for StoreOptions::conflict_retention. An
// operator may later settle one with Store::resolve(), which marks it resolved.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <peerlite/crdt/merge.hpp>

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
    std::string rule;   // "lww", "max", "min", or "delete-wins"
    crdt::Value winner_value;
    crdt::Stamp winner;
    crdt::Value loser_value;
    crdt::Stamp loser;
    std::string reason;                      // one sentence: why the winner won
    std::optional<Resolution> resolved = {}; // set once an operator resolved the cell
};

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
