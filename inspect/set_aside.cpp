// Rows set aside because they break a constraint once merged (store/constraints.cpp), as
// an operator sees them: Inspector::set_aside(). Settling them is operate/settle.cpp.
#include <algorithm>

#include <peerlite/inspect/inspector.hpp>

#include "../schema/capture_sql.hpp"
#include "../store/store_impl.hpp" // decode_values
#include "../store/unique_holders.hpp"
#include "inspector_impl.hpp"

namespace peerlite::store {

namespace {

using Key = std::vector<crdt::Value>;

// A row of the table by key, value columns named.
Result<std::vector<std::pair<std::string, crdt::Value>>>
holder_values(sqlite3* db, const schema::TableSchema& t, const Key& key) {
    auto stmt = sql::Stmt::prepare(db, "SELECT " + schema::value_list(t) + " FROM " +
                                           sql::quote(t.name) + " WHERE " + schema::key_match(t));
    if (!stmt) {
        return stmt.status();
    }
    for (std::size_t i = 0; i < key.size(); ++i) {
        stmt->bind(static_cast<int>(i) + 1, key[i]);
    }
    sql::Reset reset(*stmt);
    std::vector<std::pair<std::string, crdt::Value>> out;
    if (stmt->step() == SQLITE_ROW) {
        for (std::size_t i = 0; i < t.values.size(); ++i) {
            out.emplace_back(t.values[i].name, stmt->column(static_cast<int>(i)));
        }
    }
    return out;
}

// The rows set aside in one table, with the holders of their UNIQUE values.

} // namespace

Status read_set_aside(sqlite3* db, const schema::TableSchema& t, std::vector<SetAsideRow>& out) {
    auto there = sql::Stmt::prepare(db, "SELECT 1 FROM sqlite_schema WHERE name = ?1");
    if (!there) {
        return there.status();
    }
    there->bind_text(1, schema::aside_table(t.name));
    {
        sql::Reset reset(*there);
        if (there->step() != SQLITE_ROW) {
            return Status::success(); // a file no newer store has opened: none set aside
        }
    }
    std::string keys;
    for (std::size_t i = 0; i < t.key.size(); ++i) {
        keys += (i ? ", k" : "k") + std::to_string(i);
    }
    auto stmt =
        sql::Stmt::prepare(db, "SELECT " + keys + ", vals, reason FROM " +
                                   sql::quote(schema::aside_table(t.name)) + " ORDER BY " + keys);
    if (!stmt) {
        return stmt.status();
    }
    sql::Reset reset(*stmt);
    auto nk = static_cast<int>(t.key.size());
    int rc;
    while ((rc = stmt->step()) == SQLITE_ROW) {
        SetAsideRow row;
        row.table = t.name;
        for (int i = 0; i < nk; ++i) {
            row.key.push_back(stmt->column(i));
        }
        auto values = decode_values(stmt->column_blob(nk));
        values.resize(t.values.size()); // a column added since: NULL here
        for (std::size_t i = 0; i < t.values.size(); ++i) {
            row.values.emplace_back(t.values[i].name, values[i]);
        }
        row.constraint = stmt->column_text(nk + 1);
        auto holders = unique_holders(db, t, row.key, values);
        if (!holders) {
            return holders.status();
        }
        for (auto& key : *holders) {
            auto held = holder_values(db, t, key);
            if (!held) {
                return held.status();
            }
            row.holders.push_back({std::move(key), std::move(*held)});
        }
        out.push_back(std::move(row));
    }
    if (rc != SQLITE_DONE) {
        return sql::error(db, "reading the rows set aside from '" + t.name + "'");
    }
    return Status::success();
}

Result<std::vector<SetAsideRow>> Inspector::set_aside(const TableInfo* table) {
    auto& s = *impl_;
    auto tx = ReadTx::begin(s.db.get());
    if (!tx) {
        return tx.status();
    }
    std::vector<SetAsideRow> out;
    for (const auto& [name, schema] : s.schemas) {
        if (table != nullptr && table->name != name) {
            continue;
        }
        if (auto st = read_set_aside(s.db.get(), schema, out); !st.ok()) {
            return st;
        }
    }
    return out;
}

} // namespace peerlite::store
