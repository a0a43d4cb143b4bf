#include "conflict_log.hpp"

#include "../sql/sqlite.hpp"
#include "store_impl.hpp"

namespace peerlite::store {

namespace {

constexpr std::string_view kDeleteWins = "delete-wins";
constexpr std::string_view kDeleteWinsReason =
    "delete-wins: the row was deleted concurrently with this update";
constexpr std::string_view kIncomingWon = " (incoming write won)";
constexpr std::string_view kExistingKept = " (existing write kept)";

} // namespace

std::string rule_text(const Conflict& c) {
    return std::string(c.rule ? crdt::rule_name(*c.rule) : kDeleteWins);
}

std::string reason_text(const Conflict& c) {
    if (!c.rule) {
        return std::string(kDeleteWinsReason);
    }
    return std::string(crdt::reason_text(c.reason)) +
           std::string(c.incoming_won ? kIncomingWon : kExistingKept);
}

Status parse_conflict_texts(std::string_view rule, std::string_view reason, Conflict& c) {
    if (rule == kDeleteWins) {
        c.rule.reset();
        c.reason = crdt::Reason::later_life;
        c.incoming_won = true;
        return Status::success();
    }
    auto parsed = crdt::parse_rule(rule);
    if (!parsed) {
        return Status(Code::corruption, "unknown rule '" + std::string(rule) + "'");
    }
    c.rule = *parsed;
    auto ends = [&](std::string_view tail) {
        return reason.size() >= tail.size() && reason.substr(reason.size() - tail.size()) == tail;
    };
    if (ends(kIncomingWon)) {
        c.incoming_won = true;
        reason.remove_suffix(kIncomingWon.size());
    } else if (ends(kExistingKept)) {
        c.incoming_won = false;
        reason.remove_suffix(kExistingKept.size());
    } else {
        return Status(Code::corruption, "unknown reason '" + std::string(reason) + "'");
    }
    for (auto r : {crdt::Reason::same_write, crdt::Reason::later_life, crdt::Reason::later_clock,
                   crdt::Reason::greater_node, crdt::Reason::greater_value, crdt::Reason::max_value,
                   crdt::Reason::min_value, crdt::Reason::greater_total}) {
        if (crdt::reason_text(r) == reason) {
            c.reason = r;
            return Status::success();
        }
    }
    return Status(Code::corruption, "unknown reason '" + std::string(reason) + "'");
}

namespace {

Result<bool> has_resolution_columns(sqlite3* db) {
    auto stmt =
        sql::Stmt::prepare(db, "SELECT count(*) FROM pragma_table_info('_peerlite_conflicts') "
                               "WHERE name IN ('resolved_at', 'resolved_by')");
    if (!stmt) {
        return stmt.status();
    }
    sql::Reset reset(*stmt);
    if (stmt->step() != SQLITE_ROW) {
        return sql::error(db, "reading the conflict log's columns");
    }
    return stmt->column_int(0) == 2;
}

crdt::NodeId node_at(const sql::Stmt& stmt, int col) {
    auto b = stmt.column_blob(col);
    auto id = crdt::NodeId::from_bytes(
        std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(b.data()), b.size()));
    return id ? *id : crdt::NodeId();
}

crdt::Value first_value(std::string_view bytes) {
    auto v = decode_values(bytes);
    return v.empty() ? crdt::Value() : v.front();
}

crdt::Hlc hlc_at(const sql::Stmt& stmt, int col) {
    return crdt::Hlc::from_raw(static_cast<std::uint64_t>(stmt.column_int(col)));
}

Result<Conflict> conflict_at(const sql::Stmt& stmt) {
    Conflict c;
    c.id = stmt.column_int(0);
    c.decided_at_ms = stmt.column_int(1);
    c.table = stmt.column_text(2);
    c.key = decode_values(stmt.column_blob(3));
    c.column = stmt.column_text(4);
    auto rule = stmt.column_text(5);
    c.winner_value = first_value(stmt.column_blob(6));
    c.winner = crdt::Stamp{hlc_at(stmt, 7), node_at(stmt, 8)};
    c.loser_value = first_value(stmt.column_blob(9));
    c.loser = crdt::Stamp{hlc_at(stmt, 10), node_at(stmt, 11)};
    auto reason = stmt.column_text(12);
    if (auto st = parse_conflict_texts(rule, reason, c); !st.ok()) {
        return Status(Code::corruption, "conflict #" + std::to_string(c.id) + ": " + st.message());
    }
    if (!stmt.column_is_null(13)) {
        c.resolved = Resolution{stmt.column_int(13), stmt.column_text(14)};
    }
    return c;
}

} // namespace

Status ensure_resolution_columns(sqlite3* db) {
    auto has = has_resolution_columns(db);
    if (!has) {
        return has.status();
    }
    if (*has) {
        return Status::success();
    }
    return sql::exec(db, "ALTER TABLE _peerlite_conflicts ADD COLUMN resolved_at INTEGER;"
                         "ALTER TABLE _peerlite_conflicts ADD COLUMN resolved_by TEXT;");
}

Result<std::vector<Conflict>> read_conflicts(sqlite3* db, const ConflictQuery& query) {
    auto has = has_resolution_columns(db);
    if (!has) {
        return has.status();
    }
    auto text =
        std::string("SELECT id, decided_at, tbl, key, col, rule, winner_value, winner_hlc, "
                    "winner_node, loser_value, loser_hlc, loser_node, reason, ") +
        (*has ? "resolved_at, resolved_by" : "NULL, NULL") +
        " FROM _peerlite_conflicts WHERE decided_at >= ?1 AND (?2 IS NULL OR tbl = ?2) "
        "AND (?4 IS NULL OR id = ?4) AND (?5 IS NULL OR key = ?5) AND (?6 IS NULL OR col = ?6) "
        "ORDER BY id DESC LIMIT ?3";
    auto stmt = sql::Stmt::prepare(db, text);
    if (!stmt) {
        return stmt.status();
    }
    sql::Reset reset(*stmt);
    stmt->bind_int(1, query.since_ms);
    if (query.table) {
        stmt->bind_text(2, *query.table);
    }
    stmt->bind_int(3, static_cast<std::int64_t>(query.limit));
    if (query.id) {
        stmt->bind_int(4, *query.id);
    }
    if (query.key) {
        auto key = encode_values(*query.key);
        stmt->bind_blob(5, key.data(), key.size());
    }
    if (query.column) {
        stmt->bind_text(6, *query.column);
    }
    std::vector<Conflict> out;
    int rc;
    while ((rc = stmt->step()) == SQLITE_ROW) {
        auto c = conflict_at(*stmt);
        if (!c) {
            return c.status();
        }
        out.push_back(std::move(*c));
    }
    if (rc != SQLITE_DONE) {
        return sql::error(db, "reading the conflict log");
    }
    return out;
}

Result<std::size_t> mark_resolved(sqlite3* db, const std::string& table,
                                  const std::vector<crdt::Value>& key, const std::string& column,
                                  const Resolution& resolution) {
    auto stmt =
        sql::Stmt::prepare(db, "UPDATE _peerlite_conflicts SET resolved_at = ?1, resolved_by = ?2 "
                               "WHERE tbl = ?3 AND key = ?4 AND col = ?5 AND resolved_at IS NULL");
    if (!stmt) {
        return stmt.status();
    }
    auto encoded = encode_values(key);
    stmt->bind_int(1, resolution.at_ms);
    stmt->bind_text(2, resolution.by);
    stmt->bind_text(3, table);
    stmt->bind_blob(4, encoded.data(), encoded.size());
    stmt->bind_text(5, column);
    if (auto st = stmt->run("marking conflicts resolved"); !st.ok()) {
        return st;
    }
    return static_cast<std::size_t>(sqlite3_changes(db));
}

} // namespace peerlite::store
