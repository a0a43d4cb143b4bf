// Renames followed on one node. A synced table or value column renamed in this file keeps,
// on the wire, the name it had when it was first synced here (its mesh name): peers that
// have not renamed it, or never will, go on exchanging changes with this node, and every
// peer's changes under the old name apply to the renamed table. _peerlite_names holds
// the names that differ (docs/metadata-format.md); SQL always uses the file's names.
//
// A rename is recognised by what it leaves, not by how it was made (ALTER TABLE ... RENAME,
// or a rebuild that renamed): a registered table whose capture triggers now sit on another,
// unsynced table was renamed to it; a registered value column missing from the table, with
// an unregistered column in its place among the value columns, was renamed to that one.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <sqlite3.h>

#include <peerlite/status.hpp>

namespace peerlite::store {

struct TableState;

// Fills t.mesh_name and t.mesh_columns for t.schema (the file's names where none differ).
Status load_mesh_names(sqlite3* db, TableState& t);

// If registered table `name` was renamed, the name it has now: its metadata tables,
// registry entries and mesh names are moved to that name, and its old capture triggers
// dropped (the caller creates them anew). `triggers_kept`: all three had moved with it,
// so no write went uncaptured. Nothing when it was not renamed.
struct TableRename {
    std::string to;
    bool triggers_kept = false;
};
Result<std::optional<TableRename>> follow_table_rename(sqlite3* db, const std::string& name);

// Renamed value columns of registered table `table` whose registered names are
// `registered` (by index): each found is recorded (registry and mesh names) and its entry
// in `registered` updated. Returns how many were renamed.
Result<std::size_t> follow_column_renames(sqlite3* db, const std::string& table,
                                          std::vector<std::string>& registered);

// The file's name of the table known on the wire as `mesh_name`, if it was renamed here.
Result<std::optional<std::string>> local_table_of(sqlite3* db, const std::string& mesh_name);
// The file's name of the column of `table` known on the wire as `mesh_column` (itself when
// it was not renamed).
Result<std::string> local_column_of(sqlite3* db, const std::string& table,
                                    const std::string& mesh_column);

} // namespace peerlite::store
