// Taking a synced table out of sync on this node (peerlite untrack).
//
// The table's synced state cannot simply be dropped: this node's version vector covers the
// versions of its rows, and a peer that later syncs from this node would take that as
// "nothing to send" (docs/design/coverage.md). So every record moves, whole, to the
// held-back changes first: held-back changes are covered, served to peers by
// read_changes(), and merged by sync_table() if the table is added again. The node is
// then in the state of one that never synced the table and kept what peers sent for it.
#include <peerlite/store/store.hpp>

#include "mesh_names.hpp"
#include "store_impl.hpp"

namespace peerlite::store {

namespace {

// The registered name of a synced table, matched as SQLite matches names.
Result<std::optional<std::string>> registered_name(sqlite3* db, const std::string& table) {
    auto stmt = sql::Stmt::prepare(
        db, "SELECT DISTINCT tbl FROM _peerlite_columns WHERE tbl = ?1 COLLATE NOCASE");
    if (!stmt) {
        return stmt.status();
    }
    stmt->bind_text(1, table);
    sql::Reset reset(*stmt);
    if (stmt->step() != SQLITE_ROW) {
        return std::optional<std::string>();
    }
    return std::optional<std::string>(stmt->column_text(0));
}

Status drop_sync_metadata(sqlite3* db, const std::string& name) {
    auto text = schema::drop_triggers_sql(name) + "DROP TABLE IF EXISTS " +
                sql::quote(schema::log_table(name)) + ";\nDROP TABLE IF EXISTS " +
                sql::quote(schema::rows_table(name)) + ";\nDROP TABLE IF EXISTS " +
                sql::quote(schema::aside_table(name)) + ";\n";
    if (auto st = sql::exec(db, text); !st.ok()) {
        return st;
    }
    for (const char* table : {"_peerlite_columns", "_peerlite_digest_sums", "_peerlite_names"}) {
        auto stmt = sql::Stmt::prepare(db, std::string("DELETE FROM ") + table + " WHERE tbl = ?1");
        if (!stmt) {
            return stmt.status();
        }
        stmt->bind_text(1, name);
        if (auto st = stmt->run("forgetting the sync metadata of '" + name + "'"); !st.ok()) {
            return st;
        }
    }
    return Status::success();
}

} // namespace

Result<std::size_t> Store::untrack_table(const std::string& table) {
    auto& s = *impl_;
    if (auto st = refresh_schema(); !st.ok()) {
        return st;
    }
    auto tx = s.begin_write();
    if (!tx) {
        return tx.status();
    }
    auto name = registered_name(s.db.get(), table);
    if (!name) {
        return name.status();
    }
    if (!*name) { // declared under the name it has on the wire, renamed in this file since
        name = local_table_of(s.db.get(), table);
        if (!name) {
            return name.status();
        }
    }
    if (!*name) {
        return Status(Code::not_found, "table '" + table + "' is not synced in " + s.path);
    }
    if (auto stop = s.stopped.find(**name); stop != s.stopped.end()) {
        return Status(Code::schema_mismatch,
                      "table '" + **name +
                          "' cannot be taken out of sync while it is stopped, as its rows' "
                          "synced state cannot be read: " +
                          stop->second.reason);
    }
    auto* t = s.table(**name);
    if (t == nullptr) {
        return Status(Code::corruption, "table '" + **name + "' is registered but not loaded");
    }
    // Writes the app made before this are stamped first, so they travel with their rows.
    auto captured = s.capture_locked();
    if (!captured) {
        return captured.status();
    }
    if (auto saved = s.persist_progress(); !saved.ok()) { // digest sums included, before
        return saved;                                     // the table's are dropped
    }
    std::size_t moved = 0;
    auto reason =
        "table '" + **name + "' is not synced on this node (taken out by peerlite untrack)";
    auto st = s.for_each_whole_row(*t, [&](wire::RowChange&& row) {
        ++moved;
        return s.hold_back(row, reason);
    });
    if (!st.ok()) {
        return st;
    }
    s.tables.erase(**name);
    if (auto dropped = drop_sync_metadata(s.db.get(), **name); !dropped.ok()) {
        return dropped;
    }
    if (auto saved = s.persist_progress(); !saved.ok()) {
        return saved;
    }
    if (auto done = s.commit(*tx); !done.ok()) {
        return done;
    }
    return moved;
}

} // namespace peerlite::store
