// settle(): an operator's settlement of a row set aside by a constraint (operator_commands.hpp).
//
// A settlement is written the way an app writes, through a plain connection the capture
// triggers log, and left for the node serving the file to stamp: so it syncs like any
// write, and no second Store stamps under the node's id (operator_commands.hpp says why).
#include <algorithm>

#include <peerlite/operate/operator_commands.hpp>

#include "../inspect/inspector_impl.hpp"
#include "../schema/capture_sql.hpp"
#include "../store/unique_holders.hpp"

namespace peerlite::store {

namespace {

using Key = std::vector<crdt::Value>;

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
