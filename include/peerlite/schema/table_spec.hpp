// What a user declares to sync a table: its name and, per column, the merge rule.
//
// Requirements peerlite checks when sync is enabled (sync_table refuses otherwise, with a
// message naming the table and what to change):
//   * an explicit PRIMARY KEY whose columns are NOT NULL (or a single INTEGER PRIMARY
//     KEY): rows are matched across nodes by key, never by rowid, which differs per node;
//   * no AUTOINCREMENT: every node would hand out the same next id;
//   * at most 63 non-key columns; key columns cannot carry a merge rule;
//   * a table name not starting with "_peerlite" or "sqlite_".
// An INTEGER PRIMARY KEY is accepted with a warning: two nodes inserting the same id
// write the same row (their cells merge like concurrent updates). For new keys prefer
// peerlite's time-ordered 16-byte ids (see peerlite/store/row_ids.hpp).
#pragma once

#include <string>
#include <vector>

#include <peerlite/crdt/merge.hpp>

namespace peerlite::schema {

struct ColumnRule {
    std::string column;
    crdt::MergeRule rule = crdt::MergeRule::last_writer_wins;
};

struct TableSpec {
    std::string table;
    // Columns not listed use last_writer_wins.
    std::vector<ColumnRule> rules;
};

} // namespace peerlite::schema
