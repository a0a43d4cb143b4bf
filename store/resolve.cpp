// An operator's resolution of a conflict: Store::resolve().
//
// The chosen value is written to the user table and a capture-log entry is appended in
// the same transaction, exactly what the capture triggers would append for an UPDATE
// from any connection; the pickup then stamps it with a clock above everything this
// node has issued or merged. The cell's conflicts are marked resolved in that same
// transaction, so the resolution and the write that carries it commit together.
#include <peerlite/store/store.hpp>

#include "conflict_log.hpp"
#include "store_impl.hpp"

namespace peerlite::store {

namespace {

// Why `value` cannot win everywhere in column `col` of `r`, or nothing.
std::optional<std::string> refusal(const TableState& t, int col, const RowRecord& r,
                                   const crdt::Value& value) {
    const auto& column = t.schema.values[static_cast<std::size_t>(col)];
    auto where = "column '" + column.name + "' of '" + t.schema.name + "'";
    if (column.rule == crdt::MergeRule::counter) {
        return where + " is a counter: every node's increments are kept and summed, so no "
                       "single value can be chosen (there are no counter conflicts); to change "
                       "the total, UPDATE it by a difference";
    }
    if (column.rule == crdt::MergeRule::last_writer_wins) {
        return std::nullopt;
    }
    auto* e = const_cast<RowRecord&>(r).cell(col);
    if (e == nullptr || e->write.life != r.life.life) {
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

Status log_update(Store::Impl& s, TableState& t, const std::vector<crdt::Value>& key, int col) {
    std::string keys, params;
    for (std::size_t i = 0; i < key.size(); ++i) {
        keys += ", k" + std::to_string(i);
        params += ", ?" + std::to_string(i + 2);
    }
    auto stmt = sql::Stmt::prepare(s.db.get(), "INSERT INTO " +
                                                   sql::quote(schema::log_table(t.schema.name)) +
                                                   "(op, cols, at" + keys +
                                                   ") VALUES (2, ?1, "
                                                   "julianday()" +
                                                   params + ")");
    if (!stmt) {
        return stmt.status();
    }
    stmt->bind_int(1, std::int64_t{1} << col);
    TableState::bind_key(*stmt, 2, key);
    return stmt->run("logging the resolution write");
}

} // namespace

Result<ResolveResult> Store::resolve(const ResolveRequest& request) {
    auto& s = *impl_;
    if (auto st = refresh_schema(); !st.ok()) {
        return st;
    }
    auto* t = s.table(request.table);
    if (t == nullptr) {
        return Status(Code::unknown_table, "table '" + request.table + "' is not synced");
    }
    int col = t->schema.value_index(request.column);
    if (col < 0) {
        return Status(Code::unknown_column, "table '" + request.table + "' has no synced column '" +
                                                request.column + "'");
    }
    auto tx = sql::Transaction::begin(s.db.get());
    if (!tx) {
        return tx.status();
    }
    if (auto captured = s.capture_locked(); !captured) { // older local writes first
        return captured.status();
    }
    auto record = s.load_record(*t, request.key);
    if (!record) {
        return record.status();
    }
    if (!record->life.life.exists()) {
        return Status(Code::not_found, "table '" + request.table + "' has no row with that key " +
                                           "(deleted or never written): re-insert the row instead");
    }
    if (auto why = refusal(*t, col, *record, request.value)) {
        return Status(Code::invalid_argument, *why);
    }
    auto n = static_cast<int>(t->schema.values.size());
    {
        auto& upd = t->user_update;
        sql::Reset reset(upd);
        upd.bind_int(1, std::int64_t{1} << col);
        upd.bind(col + 2, request.value);
        TableState::bind_key(upd, n + 2, request.key);
        if (upd.step() != SQLITE_DONE) {
            return sql::error(s.db.get(), "writing the resolved value");
        }
    }
    if (auto st = log_update(s, *t, request.key, col); !st.ok()) {
        return st;
    }
    if (auto captured = s.capture_locked(); !captured) {
        return captured.status();
    }
    auto after = s.load_record(*t, request.key);
    if (!after) {
        return after.status();
    }
    auto* cell = after->cell(col);
    if (cell == nullptr) {
        return Status(Code::corruption, "the resolution write was not recorded");
    }
    auto marked = mark_resolved(s.db.get(), request.table, request.key, request.column,
                                Resolution{s.now_ms(), request.by});
    if (!marked) {
        return marked.status();
    }
    if (auto st = s.persist_progress(); !st.ok()) {
        return st;
    }
    if (auto st = tx->commit(); !st.ok()) {
        return st;
    }
    return ResolveResult{cell->write.stamp, *marked};
}

} // namespace peerlite::store
