// The Inspector's internal state, shared by its parts (inspect.cpp, history.cpp,
// feed.cpp, verify.cpp).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <peerlite/inspect/inspector.hpp>

#include "../schema/table_schema.hpp"
#include "../sql/sqlite.hpp"
#include "../store/node_index.hpp"
#include "../store/pickup_journal.hpp"
#include "../store/row_record.hpp"

namespace peerlite::store {

struct Inspector::Impl {
    std::string path;
    sql::DbHandle db; // SQLITE_OPEN_READONLY
    crdt::NodeId self;
    NodeIndex nodes;
    std::vector<TableInfo> tables;
    // Definitions read back from SQLite, for tables whose definition reads cleanly.
    std::map<std::string, schema::TableSchema> schemas;
    // Tables registered for sync whose definition cannot be read (dropped, renamed...).
    std::vector<Violation> broken;
    // The daemon's pick-up journal while a PickUpHold lives.
    std::optional<PickupJournal::View> held;

    // Reads identity, node list and table registry; call inside a ReadTx.
    Status load();
    const TableInfo* find(std::string_view name) const;
    // The record of one row of a synced table, or nothing when peerlite has none.
    Result<std::optional<RowRecord>> record(const TableInfo& t,
                                            const std::vector<crdt::Value>& key);
    // The user row's synced value columns (TableInfo order), or nothing.
    Result<std::optional<std::vector<crdt::Value>>> user_row(const TableInfo& t,
                                                             const std::vector<crdt::Value>& key);
};

// Opens an existing peerlite database (never creating one) with `flags`
// (SQLITE_OPEN_READONLY or SQLITE_OPEN_READWRITE) and reads its registry. Errors as for
// Inspector::open().
Status open_file(Inspector::Impl& s, const std::string& path, int flags);
// open_file() read-write, and a write transaction in which the registry is read again
// (under the write lock): for an operator's write beside a running daemon.
Result<sql::Transaction> open_for_write(Inspector::Impl& s, const std::string& path);

// A deferred read transaction: one snapshot for a whole call, always ended.
class ReadTx {
public:
    static Result<ReadTx> begin(sqlite3* db);
    ReadTx(ReadTx&& other) noexcept : db_(other.db_) { other.db_ = nullptr; }
    ReadTx& operator=(ReadTx&&) = delete;
    ~ReadTx();

private:
    explicit ReadTx(sqlite3* db) : db_(db) {}
    sqlite3* db_;
};

// The version vector the file holds (_peerlite_versions); call inside a ReadTx.
Result<crdt::VersionVector> read_versions(sqlite3* db, const NodeIndex& nodes);

// The row's key as stored: "k0 = ?1 AND k1 = ?2" over the metadata key columns.
std::string meta_key_match(std::size_t nkeys);

// Appends the rows table `t` has set aside (set_aside.cpp).
Status read_set_aside(sqlite3* db, const schema::TableSchema& t, std::vector<SetAsideRow>& out);

} // namespace peerlite::store
