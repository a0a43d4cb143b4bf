// A synced table as peerlite sees it: the user's declaration checked against the real
// table. Internal to peerlite.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <sqlite3.h>

#include <peerlite/crdt/merge.hpp>
#include <peerlite/schema/table_spec.hpp>
#include <peerlite/status.hpp>

namespace peerlite::schema {

struct Column {
    std::string name;
    crdt::MergeRule rule = crdt::MergeRule::last_writer_wins;
};

struct TableSchema {
    std::string name;
    std::vector<std::string> key; // primary key columns, in key order
    // Declared types of the key columns: metadata tables declare their key copies the
    // same way, so SQLite's type affinity converts key values identically in both (a key
    // 5 arriving for a TEXT key must become '5' in both places, or one row gets two
    // records).
    std::vector<std::string> key_types;
    // Collation of each key column, upper case: BINARY, NOCASE or RTRIM (others are
    // refused). Keys travel and are recorded in their canonical form (canonical_key()).
    std::vector<std::string> key_collations;
    bool collated_key = false; // some key column is not BINARY
    bool real_key = false;     // some key column may hold a REAL (REAL or no affinity)
    // Whether a key can have another spelling than canonical_key()'s.
    bool key_has_spellings() const { return collated_key || real_key; }
    std::vector<Column> values; // every other column, in table order
    bool integer_key = false;   // a single INTEGER PRIMARY KEY (rowid alias)
    // The columns of each UNIQUE index or constraint other than the primary key, in index
    // order (docs/design/constraints.md).
    std::vector<std::vector<std::string>> unique;
    std::vector<std::string> warnings;

    // Index of a value column by name, or -1.
    int value_index(std::string_view column) const;
    // A 64-bit FNV-1a hash of name, key and (column, rule) list: the schema identity sent
    // with change sets so a receiver can tell a mismatch from corruption.
    std::uint64_t identity() const;
};

// The one spelling of a key among those SQLite takes for equal in the table's key:
// ASCII letters in lower case in a NOCASE column, trailing spaces dropped in an RTRIM
// one, and REAL -0.0 as 0.0 in any key (docs/design/constraints.md). Other values are left
// as they are. True if it changed.
bool canonical_key(const TableSchema& table, std::vector<crdt::Value>& key);

// Reads the table's definition and checks `spec` against it.
Result<TableSchema> inspect_table(sqlite3* db, const TableSpec& spec);

// Whether a user table name is reserved for peerlite or SQLite.
bool is_reserved_name(std::string_view table);

} // namespace peerlite::schema
