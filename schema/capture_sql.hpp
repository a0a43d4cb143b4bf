// SQL text for the capture log and triggers of one synced table. Internal to peerlite;
// the layout is documented in docs/metadata-format.md.
//
// The triggers only use built-in SQL, so every connection (the sqlite3 shell, Python,
// the app) is captured with nothing loaded. Each captured write appends one narrow row
// to the table's log, in the writer's own transaction; clocks are assigned later, off
// the writer's path, when peerlite picks the log up.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "table_schema.hpp"

namespace peerlite::schema {

// Fixed values: stored in the log tables' `op` column.
// batch: a transaction's writes from a store::Writer packed in k0 (see store/capture.cpp).
// maybe_removed: a row a statement may delete through a UNIQUE constraint (INSERT or
// UPDATE OR REPLACE deletes it without firing the delete trigger); a delete if the row is
// gone when it is picked up (docs/design/constraints.md).
enum class LogOp : std::uint8_t {
    insert = 1,
    update = 2,
    remove = 3,
    batch = 4,
    maybe_removed = 5
};

std::string log_table(const std::string& table);   // "_peerlite_log_<table>"
std::string rows_table(const std::string& table);  // "_peerlite_rows_<table>"
std::string aside_table(const std::string& table); // "_peerlite_aside_<table>"

// CREATE TABLE IF NOT EXISTS for the rows kept out of the table because they break one of
// its constraints (docs/design/constraints.md): keyed like the records, with the row's
// values encoded in `vals` and the constraint it broke in `reason`.
std::string create_aside_sql(const TableSchema& table);
// The names of the table's capture triggers, as create_triggers_sql() makes them.
std::vector<std::string> trigger_names(const TableSchema& table);

// CREATE TABLE IF NOT EXISTS statements for the table's log and row records.
std::string create_table_metadata_sql(const TableSchema& table);
// DROP + CREATE of the capture triggers (run again after the table gains a column).
std::string create_triggers_sql(const TableSchema& table);
std::string drop_triggers_sql(const std::string& table);

// "k0 = ?1 AND k1 = ?2 ..." over the key columns, parameters starting at `first`.
std::string key_match(const TableSchema& table, int first = 1);
// Comma-separated quoted key column names.
std::string key_list(const TableSchema& table);
// Comma-separated quoted value column names.
std::string value_list(const TableSchema& table);

} // namespace peerlite::schema
