// Finding the rows that hold a row's UNIQUE values: used where rows are set aside
// (constraints.cpp) and where an operator settles one (set_aside.cpp).
#pragma once

#include <vector>

#include <sqlite3.h>

#include <peerlite/crdt/value.hpp>
#include <peerlite/status.hpp>

#include "../schema/table_schema.hpp"

namespace peerlite::store {

// The keys of the rows of table `s`, other than `key`, holding any of the UNIQUE index
// values of the row (`key`, `values` in `s.values` order). A NULL in an index's columns
// meets no row, as in SQLite.
Result<std::vector<std::vector<crdt::Value>>>
unique_holders(sqlite3* db, const schema::TableSchema& s, const std::vector<crdt::Value>& key,
               const std::vector<crdt::Value>& values);

} // namespace peerlite::store
