// A decided conflict: two writes to the same cell made without either writer having seen
// the other, and which one the merge kept. Recorded by Store::apply() and by capture when
// a local write loses (max/min rules), kept for StoreOptions::conflict_retention.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <peerlite/crdt/merge.hpp>

namespace peerlite::store {

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
    std::string reason; // one sentence: why the winner won
};

struct ConflictQuery {
    std::optional<std::string> table;
    std::int64_t since_ms = 0; // decided at or after
    std::size_t limit = 1000;
};

} // namespace peerlite::store
