// Reading and annotating _peerlite_conflicts, shared by Store and Inspector. Internal.
//
// Resolutions live in two columns added to _peerlite_conflicts after format 1 shipped:
// resolved_at (ms since epoch, NULL while unresolved) and resolved_by (TEXT). Files made
// before them lack the columns until a Store opens them (ALTER TABLE ... ADD COLUMN, run
// once, harmless to older readers that name their columns); readers treat a missing
// column as "unresolved".
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <sqlite3.h>

#include <peerlite/status.hpp>
#include <peerlite/store/conflict.hpp>

namespace peerlite::store {

// Adds the resolution columns if missing; call inside a write transaction.
Status ensure_resolution_columns(sqlite3* db);

// Newest first, filtered by `query`.
Result<std::vector<Conflict>> read_conflicts(sqlite3* db, const ConflictQuery& query);

// Marks the cell's unresolved conflicts resolved; returns how many. Needs the columns.
Result<std::size_t> mark_resolved(sqlite3* db, const std::string& table,
                                  const std::vector<crdt::Value>& key, const std::string& column,
                                  const Resolution& resolution);

} // namespace peerlite::store
