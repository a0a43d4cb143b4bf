// Metadata invariants checked on a file: Inspector::verify(). The invariants are those of
// docs/metadata-format.md ("Invariants"), plus: triggers exist and match what this build
// generates, and no metadata belongs to a table that is not synced.
#include <set>

#include <peerlite/inspect/inspector.hpp>

#include "../schema/capture_sql.hpp"
#include "inspector_impl.hpp"

namespace peerlite::store {

namespace {

using Key = std::vector<crdt::Value>;

// name -> CREATE TRIGGER text, as sqlite_schema stores it (statement without ';').
std::map<std::string, std::string> expected_triggers(const schema::TableSchema& t) {
    std::map<std::string, std::string> out;
    auto text = schema::create_triggers_sql(t);
    std::size_t at = 0;
    while ((at = text.find("CREATE TRIGGER ", at)) != std::string::npos) {
        auto end = text.find("; END;\n", at);
        auto stmt = text.substr(at, end + 5 - at);
        auto name_start = at + 16; // after 'CREATE TRIGGER "'
        auto name = text.substr(name_start, text.find("\" ", name_start) - name_start);
        out[name] = stmt;
        at = end;
    }
    return out;
}

class Checker {
public:
    Checker(Inspector::Impl& s, std::vector<Violation>& out) : s_(s), out_(out) {}

    void add(const std::string& table, const std::string& key, const std::string& what,
             bool warning = false) {
        out_.push_back({table, key, what, warning});
    }

    Status triggers(const TableInfo& info, const schema::TableSchema& full) {
        auto stmt = sql::Stmt::prepare(s_.db.get(), "SELECT name, sql FROM sqlite_schema WHERE "
                                                    "type = 'trigger' AND tbl_name = ?1 "
                                                    "COLLATE NOCASE");
        if (!stmt) {
            return stmt.status();
        }
        stmt->bind_text(1, info.name);
        sql::Reset reset(*stmt);
        std::map<std::string, std::string> present;
        while (stmt->step() == SQLITE_ROW) {
            present[stmt->column_text(0)] = stmt->column_text(1);
        }
        // Triggers made before a Store saw an ADD COLUMN cover the registered columns only.
        auto registered = full;
        registered.values.resize(std::min(full.values.size(), info.columns.size()));
        auto now = expected_triggers(full);
        auto before = expected_triggers(registered);
        for (const auto& [name, text] : now) {
            auto it = present.find(name);
            if (it == present.end()) {
                add(info.name, "",
                    "capture trigger " + name +
                        " is missing: writes from other connections are not synced");
            } else if (it->second != text && it->second != before[name]) {
                add(info.name, "",
                    "capture trigger " + name + " differs from what this build generates");
            }
        }
        return Status::success();
    }

    // Keys with capture-log entries not stamped yet; false if a Writer batch hides them.
    Result<bool> pending(const TableInfo& t, std::set<Key>& keys) {
        std::string cols;
        for (std::size_t i = 0; i < t.key.size(); ++i) {
            cols += (i ? ", k" : "k") + std::to_string(i);
        }
        auto stmt = sql::Stmt::prepare(s_.db.get(), "SELECT op, " + cols + " FROM " +
                                                        sql::quote(schema::log_table(t.name)));
        if (!stmt) {
            return stmt.status();
        }
        sql::Reset reset(*stmt);
        bool attributable = true;
        std::size_t n = 0;
        while (stmt->step() == SQLITE_ROW) {
            ++n;
            if (stmt->column_int(0) == 4) {
                attributable = false;
                continue;
            }
            Key k;
            for (std::size_t i = 0; i < t.key.size(); ++i) {
                k.push_back(stmt->column(1 + static_cast<int>(i)));
            }
            keys.insert(std::move(k));
        }
        if (n > 0) {
            add(t.name, "",
                std::to_string(n) + " captured write(s) not stamped yet: a running "
                                    "daemon or the next open of a Store picks them up",
                true);
        }
        return attributable;
    }

    Status records(const TableInfo& t, const std::set<Key>& pending, bool attributable);
    Status rows_without_records(const TableInfo& t, const std::set<Key>& pending);
    Status orphans();

private:
    void check_record(const TableInfo& t, const Key& key, const RowRecord& r, std::uint64_t vmax,
                      bool present, bool is_pending) {
        auto k = format_key(key);
        if (r.max_clock().raw() != vmax) {
            add(t.name, k, "vmax differs from the greatest clock in the record");
        }
        for (const auto& c : r.cells) {
            if (c.write.life > r.life.life) {
                add(t.name, k, "a cell is from a later life than the row");
            }
            if (c.column >= static_cast<int>(t.columns.size())) {
                add(t.name, k,
                    "a cell names column #" + std::to_string(c.column) +
                        ", which is not registered");
            }
        }
        if (is_pending) {
            return;
        }
        if (r.life.life.exists() && !present) {
            add(t.name, k,
                "record says the row exists (life " + std::to_string(r.life.life.value()) +
                    ") but the table has no such row");
        }
        if (!r.life.life.exists() && present) {
            add(t.name, k,
                "row is in the table but its record is a tombstone (life " +
                    std::to_string(r.life.life.value()) + ")");
        }
    }

    Inspector::Impl& s_;
    std::vector<Violation>& out_;
};

Status Checker::records(const TableInfo& t, const std::set<Key>& pending, bool attributable) {
    std::string keys, join;
    for (std::size_t i = 0; i < t.key.size(); ++i) {
        keys += "r.k" + std::to_string(i) + ", ";
        join += (i ? " AND t." : "t.") + sql::quote(t.key[i]) + " = r.k" + std::to_string(i);
    }
    // A row set aside (constraints.cpp) counts as present: its values are kept there.
    std::string aside;
    for (std::size_t i = 0; i < t.key.size(); ++i) {
        aside += (i ? " AND a.k" : "a.k") + std::to_string(i) + " = r.k" + std::to_string(i);
    }
    auto stmt = sql::Stmt::prepare(s_.db.get(),
                                   "SELECT " + keys + "r.rec, r.vmax, t." + sql::quote(t.key[0]) +
                                       " IS NOT NULL OR EXISTS (SELECT 1 FROM " +
                                       sql::quote(schema::aside_table(t.name)) + " a WHERE " +
                                       aside + ") FROM " + sql::quote(schema::rows_table(t.name)) +
                                       " r LEFT JOIN " + sql::quote(t.name) + " t ON " + join);
    if (!stmt) {
        return stmt.status();
    }
    sql::Reset reset(*stmt);
    auto nk = static_cast<int>(t.key.size());
    while (stmt->step() == SQLITE_ROW) {
        Key key;
        for (int i = 0; i < nk; ++i) {
            key.push_back(stmt->column(i));
        }
        auto vmax = static_cast<std::uint64_t>(stmt->column_int(nk + 1));
        auto r = decode_record(stmt->column_blob(nk), crdt::Hlc::from_raw(vmax), s_.nodes);
        if (!r) {
            add(t.name, format_key(key), "record does not decode: " + r.status().message());
            continue;
        }
        check_record(t, key, *r, vmax, stmt->column_int(nk + 2) != 0,
                     !attributable || pending.count(key) > 0);
    }
    return Status::success();
}

Status Checker::rows_without_records(const TableInfo& t, const std::set<Key>& pending) {
    std::string keys, join;
    for (std::size_t i = 0; i < t.key.size(); ++i) {
        keys += (i ? ", t." : "t.") + sql::quote(t.key[i]);
        join += (i ? " AND r.k" : "r.k") + std::to_string(i) + " = t." + sql::quote(t.key[i]);
    }
    auto stmt = sql::Stmt::prepare(s_.db.get(), "SELECT " + keys + " FROM " + sql::quote(t.name) +
                                                    " t LEFT JOIN " +
                                                    sql::quote(schema::rows_table(t.name)) +
                                                    " r ON " + join + " WHERE r.rec IS NULL");
    if (!stmt) {
        return stmt.status();
    }
    sql::Reset reset(*stmt);
    while (stmt->step() == SQLITE_ROW) {
        Key key;
        for (std::size_t i = 0; i < t.key.size(); ++i) {
            key.push_back(stmt->column(static_cast<int>(i)));
        }
        if (pending.count(key) == 0) {
            add(t.name, format_key(key), "row has no record: peerlite never captured it");
        }
    }
    return Status::success();
}

Status Checker::orphans() {
    auto stmt = sql::Stmt::prepare(
        s_.db.get(),
        "SELECT type, name, tbl_name FROM sqlite_schema WHERE name LIKE '\\_peerlite\\_%' "
        "ESCAPE '\\' AND type IN ('table', 'trigger')");
    if (!stmt) {
        return stmt.status();
    }
    sql::Reset reset(*stmt);
    std::set<std::string> synced;
    for (const auto& t : s_.tables) {
        synced.insert(t.name);
    }
    for (const auto& b : s_.broken) {
        synced.insert(b.table);
    }
    while (stmt->step() == SQLITE_ROW) {
        auto type = stmt->column_text(0), name = stmt->column_text(1);
        std::string owner;
        if (type == "trigger") {
            owner = stmt->column_text(2);
        } else if (name.rfind("_peerlite_log_", 0) == 0) {
            owner = name.substr(14);
        } else if (name.rfind("_peerlite_rows_", 0) == 0) {
            owner = name.substr(15);
        } else if (name.rfind("_peerlite_aside_", 0) == 0) {
            owner = name.substr(16);
        } else {
            continue;
        }
        if (synced.count(owner) == 0) {
            add(owner, "",
                "orphaned metadata: " + type + " " + name + " belongs to no synced table");
        }
    }
    auto versions = sql::Stmt::prepare(
        s_.db.get(), "SELECT DISTINCT node FROM _peerlite_versions WHERE node NOT IN "
                     "(SELECT idx FROM _peerlite_nodes)");
    if (!versions) {
        return versions.status();
    }
    sql::Reset reset_versions(*versions);
    while (versions->step() == SQLITE_ROW) {
        add("", "",
            "_peerlite_versions names node #" + versions->column_text(0) +
                ", which _peerlite_nodes does not hold");
    }
    return Status::success();
}

} // namespace

Result<std::vector<Violation>> Inspector::verify() {
    auto& s = *impl_;
    auto tx = ReadTx::begin(s.db.get());
    if (!tx) {
        return tx.status();
    }
    if (auto st = s.load(); !st.ok()) {
        return st;
    }
    std::vector<Violation> out = s.broken;
    Checker check(s, out);
    if (s.self.is_nil()) {
        check.add("", "", "no node identity yet (a fresh snapshot?): the next open draws one",
                  true);
    }
    for (const auto& t : s.tables) {
        std::set<Key> pending;
        auto attributable = check.pending(t, pending);
        if (!attributable) {
            return attributable.status();
        }
        for (auto st :
             {check.triggers(t, s.schemas.at(t.name)), check.records(t, pending, *attributable),
              *attributable ? check.rows_without_records(t, pending) : Status()}) {
            if (!st.ok()) {
                return st;
            }
        }
    }
    if (auto st = check.orphans(); !st.ok()) {
        return st;
    }
    return out;
}

} // namespace peerlite::store
