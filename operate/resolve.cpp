// An operator's resolution of a conflict: store::resolve() (operator_commands.hpp).
//
// The chosen value is written with a plain UPDATE on a connection with triggers on, so
// the capture trigger logs it exactly as it logs any application's write, and the node
// that serves the file stamps it at pickup with a clock above everything it has seen. The
// cell's conflicts are marked resolved in the same transaction: the resolution and the
// write that carries it commit together or not at all.
#include <chrono>

#include <peerlite/operate/operator_commands.hpp>

#include "../inspect/inspector_impl.hpp"
#include "../store/conflict_log.hpp"

namespace peerlite::store {

namespace {

// Why `value` cannot win everywhere in column `col` of a row with record `r`, or nothing.
std::optional<std::string> refusal(const TableInfo& t, int col, RowRecord& r,
                                   const crdt::Value& value) {
    const auto& column = t.columns[static_cast<std::size_t>(col)];
    auto where = "column '" + column.name + "' of '" + t.name + "'";
    if (column.rule == crdt::MergeRule::counter) {
        return where + " is a counter: every node's increments are kept and summed, so no "
                       "single value can be chosen (there are no counter conflicts); to change "
                       "the total, UPDATE it by a difference";
    }
    auto* e = r.cell(col);
    if (column.rule == crdt::MergeRule::last_writer_wins || e == nullptr ||
        e->write.life != r.life.life) {
        return std::nullopt;
    }
    bool ranks_lower =
        column.rule == crdt::MergeRule::max_wins ? value < e->write.value : e->write.value < value;
    if (!ranks_lower) {
        return std::nullopt;
    }
    return where + " merges by '" + std::string(crdt::rule_name(column.rule)) +
           "': " + value.to_string() + " would lose to the current " + e->write.value.to_string() +
           " on every node, whatever its clock";
}

Result<bool> write_cell(sqlite3* db, const TableInfo& t, const ResolveRequest& r) {
    std::string match;
    for (std::size_t i = 0; i < t.key.size(); ++i) {
        match += (i ? " AND " : "") + sql::quote(t.key[i]) + " = ?" + std::to_string(i + 2);
    }
    auto stmt = sql::Stmt::prepare(db, "UPDATE " + sql::quote(t.name) + " SET " +
                                           sql::quote(r.column) + " = ?1 WHERE " + match + " AND " +
                                           sql::quote(r.column) + " IS NOT ?1 COLLATE BINARY");
    if (!stmt) {
        return stmt.status();
    }
    stmt->bind(1, r.value);
    for (std::size_t i = 0; i < r.key.size(); ++i) {
        stmt->bind(static_cast<int>(i) + 2, r.key[i]);
    }
    if (auto st = stmt->run("writing the resolved value"); !st.ok()) {
        return st;
    }
    return sqlite3_changes(db) > 0;
}

} // namespace

Result<ResolveResult> resolve(const std::string& path, const ResolveRequest& request) {
    Inspector::Impl s;
    auto tx = open_for_write(s, path);
    if (!tx) {
        return tx.status();
    }
    const auto* t = s.find(request.table);
    if (t == nullptr) {
        return Status(Code::unknown_table, "table '" + request.table + "' is not synced");
    }
    int col = t->column_index(request.column);
    if (col < 0) {
        return Status(Code::unknown_column, "table '" + request.table + "' has no synced column '" +
                                                request.column + "'");
    }
    auto record = s.record(*t, request.key);
    auto row = s.user_row(*t, request.key);
    if (!record || !row) {
        return !record ? record.status() : row.status();
    }
    if (!*record || !(*record)->life.life.exists() || !*row) {
        return Status(Code::not_found,
                      "table '" + request.table + "' has no row with key " +
                          format_key(request.key) +
                          " (deleted or never written): re-insert the row instead");
    }
    if (auto why = refusal(*t, col, **record, request.value)) {
        return Status(Code::invalid_argument, *why);
    }
    auto written = write_cell(s.db.get(), *t, request);
    if (!written) {
        return written.status();
    }
    if (auto st = ensure_resolution_columns(s.db.get()); !st.ok()) {
        return st;
    }
    auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::system_clock::now().time_since_epoch());
    auto marked = mark_resolved(s.db.get(), request.table, request.key, request.column,
                                Resolution{now.count(), request.by});
    if (!marked) {
        return marked.status();
    }
    if (auto st = tx->commit(); !st.ok()) {
        return st;
    }
    return ResolveResult{*written, *marked};
}

} // namespace peerlite::store
