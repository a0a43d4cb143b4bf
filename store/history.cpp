// What one node knows of one row: Inspector::history().
#include <peerlite/store/inspect.hpp>

#include "../schema/capture_sql.hpp"
#include "conflict_log.hpp"
#include "inspect_impl.hpp"

namespace peerlite::store {

namespace {

Result<std::size_t> pending_entries(sqlite3* db, const TableInfo& t,
                                    const std::vector<crdt::Value>& key) {
    // Entries a Writer packed into one batch row are not attributed to keys here.
    auto stmt =
        sql::Stmt::prepare(db, "SELECT count(*) FROM " + sql::quote(schema::log_table(t.name)) +
                                   " WHERE " + meta_key_match(key.size()) + " AND op <> 4");
    if (!stmt) {
        return stmt.status();
    }
    sql::Reset reset(*stmt);
    for (std::size_t i = 0; i < key.size(); ++i) {
        stmt->bind(static_cast<int>(i) + 1, key[i]);
    }
    if (stmt->step() != SQLITE_ROW) {
        return sql::error(db, "reading the capture log of '" + t.name + "'");
    }
    return static_cast<std::size_t>(stmt->column_int(0));
}

CellHistory cell_history(const TableInfo& t, std::size_t i, const RowHistory& row,
                         const std::optional<RowRecord>& rec,
                         const std::optional<std::vector<crdt::Value>>& values) {
    CellHistory c;
    c.column = t.columns[i];
    if (values) {
        c.value = (*values)[i];
    }
    if (!rec) {
        return c;
    }
    auto col = static_cast<int>(i);
    for (const auto& e : rec->cells) {
        if (e.column == col && e.write.life.value() == row.life) {
            c.written = e.write.stamp;
        }
    }
    for (const auto& e : rec->counters) {
        if (e.column == col && e.write.life.value() == row.life) {
            c.contributions.push_back({e.write.stamp, e.write.total});
        }
    }
    return c;
}

} // namespace

Result<RowHistory> Inspector::history(const TableInfo& t, const std::vector<crdt::Value>& key) {
    auto& s = *impl_;
    auto tx = ReadTx::begin(s.db.get());
    if (!tx) {
        return tx.status();
    }
    auto rec = s.record(t, key);
    auto values = s.user_row(t, key);
    auto pending = pending_entries(s.db.get(), t, key);
    if (!rec || !values || !pending) {
        return !rec ? rec.status() : !values ? values.status() : pending.status();
    }
    RowHistory row;
    row.key = key;
    row.known = rec->has_value();
    row.exists = values->has_value();
    row.pending = *pending;
    if (!row.known && !row.exists && row.pending == 0) {
        return Status(Code::not_found, "table '" + t.name + "' has no row with key " +
                                           format_key(key) + ", and peerlite knows of none");
    }
    if (*rec) {
        row.life = (*rec)->life.life.value();
        row.life_stamp = (*rec)->life.stamp;
    }
    ConflictQuery query;
    query.table = t.name;
    query.key = key;
    auto conflicts = read_conflicts(s.db.get(), query);
    if (!conflicts) {
        return conflicts.status();
    }
    for (std::size_t i = 0; i < t.columns.size(); ++i) {
        row.columns.push_back(cell_history(t, i, row, *rec, *values));
        for (const auto& c : *conflicts) {
            if (c.column == t.columns[i].name) {
                row.columns.back().conflicts.push_back(c);
            }
        }
    }
    return row;
}

} // namespace peerlite::store
