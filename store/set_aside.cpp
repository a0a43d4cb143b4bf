// Rows set aside because they break a constraint once merged (constraints.cpp), as an
// operator sees them (Inspector::set_aside()) and settles them (settle(), operate.hpp).
//
// A settlement is written the way an app writes, through a plain connection the capture
// triggers log, and left for the node serving the file to stamp: so it syncs like any
// write, and no second Store stamps under the node's id (operate.hpp says why).
#include <algorithm>

#include <peerlite/store/inspect.hpp>
#include <peerlite/store/operate.hpp>

#include "../schema/capture_sql.hpp"
#include "inspect_impl.hpp"
#include "store_impl.hpp" // decode_values
#include "unique_holders.hpp"

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

Status run(sqlite3* db, const std::string& text, const Key& key, const std::string& what,
           const std::vector<crdt::Value>& more = {}) {
    auto stmt = sql::Stmt::prepare(db, text);
    if (!stmt) {
        return stmt.status();
    }
    int at = 1;
    for (const auto& v : more) {
        stmt->bind(at++, v);
    }
    for (const auto& v : key) {
        stmt->bind(at++, v);
    }
    return stmt->run(what);
}

} // namespace

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

Result<SettleResult> settle(const std::string& path, const SettleRequest& request) {
    Inspector::Impl s;
    auto tx = open_for_write(s, path);
    if (!tx) {
        return tx.status();
    }
    auto found = s.schemas.find(request.table);
    if (found == s.schemas.end()) {
        return Status(Code::unknown_table, "table '" + request.table + "' is not synced");
    }
    const auto& t = found->second;
    std::vector<SetAsideRow> rows;
    if (auto st = read_set_aside(s.db.get(), t, rows); !st.ok()) {
        return st;
    }
    auto row = std::find_if(rows.begin(), rows.end(),
                            [&](const SetAsideRow& r) { return r.key == request.key; });
    if (row == rows.end()) {
        return Status(Code::not_found, "no row of '" + request.table + "' with key " +
                                           format_key(request.key) +
                                           " is set aside (see peerlite conflicts)");
    }
    auto* db = s.db.get();
    std::string match, meta_match, keys;
    for (std::size_t i = 0; i < t.key.size(); ++i) {
        match += (i ? " AND " : "") + sql::quote(t.key[i]) + " = ?" + std::to_string(i + 1);
        meta_match += (i ? " AND k" : "k") + std::to_string(i) + " = ?" + std::to_string(i + 1);
        keys += (i ? ", k" : "k") + std::to_string(i);
    }
    SettleResult result;
    if (request.action == SettleRequest::Action::drop) {
        // The delete trigger's own entry: the row is not in the table to DELETE. It stays
        // set aside until the node stamps the delete, so peers never read it half gone.
        std::string placeholders;
        for (std::size_t i = 0; i < t.key.size(); ++i) {
            placeholders += ", ?" + std::to_string(i + 1);
        }
        auto st =
            run(db,
                "INSERT INTO " + sql::quote(schema::log_table(t.name)) + "(op, cols, at, " + keys +
                    ") VALUES (" + std::to_string(static_cast<int>(schema::LogOp::remove)) +
                    ", 0, julianday()" + placeholders + ")",
                request.key, "logging the delete of a row set aside");
        if (!st.ok()) {
            return st;
        }
    } else {
        auto values = row->values;
        for (const auto& [column, value] : request.set) {
            auto at = std::find_if(values.begin(), values.end(),
                                   [&](const auto& v) { return v.first == column; });
            if (at == values.end()) {
                return Status(Code::unknown_column,
                              "table '" + t.name + "' has no synced column '" + column + "'");
            }
            at->second = value;
        }
        if (request.action == SettleRequest::Action::replace_holder) {
            for (const auto& holder : row->holders) {
                if (auto st = run(db, "DELETE FROM " + sql::quote(t.name) + " WHERE " + match,
                                  holder.key, "deleting a row holding its UNIQUE value");
                    !st.ok()) {
                    return st;
                }
                result.deleted.push_back(holder.key);
            }
        }
        // Values first, then the key: `run` binds `more` before the key.
        std::string columns, placeholders;
        std::vector<crdt::Value> bound;
        for (const auto& [column, value] : values) {
            columns += sql::quote(column) + ", ";
            bound.push_back(value);
            placeholders += "?" + std::to_string(bound.size()) + ", ";
        }
        for (std::size_t i = 0; i < t.key.size(); ++i) {
            placeholders += (i ? ", ?" : "?") + std::to_string(bound.size() + i + 1);
        }
        auto text = "INSERT INTO " + sql::quote(t.name) + "(" + columns + schema::key_list(t) +
                    ") VALUES (" + placeholders + ")";
        if (auto st = run(db, text, request.key, "putting the row back", bound); !st.ok()) {
            return Status(
                Code::invalid_argument,
                "the row put back into '" + t.name +
                    "' would still break a constraint here: " + st.message() +
                    (request.action == SettleRequest::Action::put_back && !row->holders.empty()
                         ? " (change the value with --set, or replace the row "
                           "holding it with --replace-holder)"
                         : " (change the values with --set)"));
        }
        if (auto st = run(db,
                          "DELETE FROM " + sql::quote(schema::aside_table(t.name)) + " WHERE " +
                              meta_match,
                          request.key, "taking the row out of the aside table");
            !st.ok()) {
            return st;
        }
    }
    if (auto st = tx->commit(); !st.ok()) {
        return st;
    }
    return result;
}

} // namespace peerlite::store
