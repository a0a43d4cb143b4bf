// Declaring synced tables and following their schema: the column registry, triggers,
// and catching up after ALTER TABLE ... ADD COLUMN. Long because every schema change an
// app can make (add column, rebuild, rename, drop) is recognised here against the one
// registry; mesh_names.cpp holds renames' naming, capture_sql.cpp the trigger text.
#include <set>
#include <utility>

#include <peerlite/store/store.hpp>

#include "mesh_names.hpp"
#include "store_impl.hpp"

namespace peerlite::store {

namespace {

struct Registered {
    std::string name;
    crdt::MergeRule rule;
};

Result<std::map<std::string, std::vector<Registered>>> read_registry(sqlite3* db) {
    auto stmt =
        sql::Stmt::prepare(db, "SELECT tbl, name, rule FROM _peerlite_columns ORDER BY tbl, idx");
    if (!stmt) {
        return stmt.status();
    }
    sql::Reset reset(*stmt);
    std::map<std::string, std::vector<Registered>> out;
    while (stmt->step() == SQLITE_ROW) {
        auto rule = stmt->column_int(2);
        if (rule < 0 || rule > 3) {
            return Status(Code::corruption,
                          "_peerlite_columns holds unknown rule " + std::to_string(rule));
        }
        out[stmt->column_text(0)].push_back(
            {stmt->column_text(1), static_cast<crdt::MergeRule>(rule)});
    }
    return out;
}

// Checks that the table still starts with the registered columns (ADD COLUMN appends;
// anything else would shift the column numbers stored in row records).
Status check_against_registry(const schema::TableSchema& table,
                              const std::vector<Registered>& reg) {
    for (std::size_t i = 0; i < reg.size(); ++i) {
        if (i >= table.values.size() || table.values[i].name != reg[i].name) {
            return Status(Code::schema_mismatch,
                          "table '" + table.name + "': synced column '" + reg[i].name +
                              "' was dropped, renamed or moved; peerlite supports only "
                              "ALTER TABLE ... ADD COLUMN on synced tables");
        }
        if (table.values[i].rule != reg[i].rule) {
            return Status(Code::schema_mismatch,
                          "table '" + table.name + "': column '" + reg[i].name +
                              "' syncs with rule '" + std::string(crdt::rule_name(reg[i].rule)) +
                              "'; changing it to '" +
                              std::string(crdt::rule_name(table.values[i].rule)) +
                              "' on a synced table is not supported");
        }
    }
    return Status::success();
}

Status register_columns(sqlite3* db, const schema::TableSchema& table, std::size_t from) {
    auto stmt = sql::Stmt::prepare(
        db, "INSERT INTO _peerlite_columns(tbl, idx, name, rule) VALUES (?1, ?2, ?3, ?4)");
    if (!stmt) {
        return stmt.status();
    }
    for (std::size_t i = from; i < table.values.size(); ++i) {
        stmt->bind_text(1, table.name);
        stmt->bind_int(2, static_cast<std::int64_t>(i));
        stmt->bind_text(3, table.values[i].name);
        stmt->bind_int(4, static_cast<std::int64_t>(table.values[i].rule));
        if (auto s = stmt->run("registering column " + table.values[i].name); !s.ok()) {
            return s;
        }
    }
    return Status::success();
}

// Log entries for rows whose new column already differs from its default: writes made
// between ALTER TABLE and the new triggers, which the old triggers could not see.
Status capture_new_columns(sqlite3* db, const schema::TableSchema& table, std::size_t from) {
    std::string keys;
    for (std::size_t i = 0; i < table.key.size(); ++i) {
        keys += ", " + sql::quote(table.key[i]);
    }
    std::string meta_keys;
    for (std::size_t i = 0; i < table.key.size(); ++i) {
        meta_keys += ", k" + std::to_string(i);
    }
    auto dflt =
        sql::Stmt::prepare(db, "SELECT dflt_value FROM pragma_table_info(?1) WHERE name = ?2");
    if (!dflt) {
        return dflt.status();
    }
    for (std::size_t i = from; i < table.values.size(); ++i) {
        dflt->bind_text(1, table.name);
        dflt->bind_text(2, table.values[i].name);
        std::string default_sql = "NULL";
        {
            sql::Reset reset(*dflt);
            if (dflt->step() == SQLITE_ROW && !dflt->column_is_null(0)) {
                default_sql = "(" + dflt->column_text(0) + ")";
            }
        }
        auto text = "INSERT INTO " + sql::quote(schema::log_table(table.name)) + "(op, cols, at" +
                    meta_keys + ") SELECT 2, " + std::to_string(std::int64_t{1} << i) +
                    ", julianday('now')" + keys + " FROM " + sql::quote(table.name) + " WHERE " +
                    sql::quote(table.values[i].name) + " IS NOT " + default_sql;
        if (auto s = sql::exec(db, text); !s.ok()) {
            return s;
        }
    }
    return Status::success();
}

// Whether all three capture triggers are on the table. A table rebuilt under its own
// name (the 12-step ALTER of SQLite's docs, sqlite-utils transform, DROP + CREATE) has
// lost them: SQLite drops a table's triggers with it.
// Whether the table has its insert, update and delete capture triggers.
Result<bool> has_row_triggers(sqlite3* db, const std::string& table) {
    auto stmt = sql::Stmt::prepare(
        db, "SELECT count(*) FROM sqlite_schema WHERE type = 'trigger' AND tbl_name = ?1 "
            "COLLATE NOCASE AND name IN (?2, ?3, ?4)");
    if (!stmt) {
        return stmt.status();
    }
    stmt->bind_text(1, table);
    int i = 2;
    for (const char* kind : {"ins", "upd", "del"}) {
        stmt->bind_text(i++, std::string("_peerlite_") + kind + "_" + table);
    }
    sql::Reset reset(*stmt);
    if (stmt->step() != SQLITE_ROW) {
        return sql::error(db, "looking for the capture triggers of '" + table + "'");
    }
    return stmt->column_int(0) == 3;
}

// Whether the table has every capture trigger it needs, and no other (a UNIQUE index
// added or dropped changes which).
Result<bool> has_triggers(sqlite3* db, const schema::TableSchema& table) {
    auto stmt = sql::Stmt::prepare(
        db, "SELECT name FROM sqlite_schema WHERE type = 'trigger' AND tbl_name = ?1 "
            "COLLATE NOCASE AND name LIKE '\\_peerlite\\_%' ESCAPE '\\' ORDER BY name");
    if (!stmt) {
        return stmt.status();
    }
    stmt->bind_text(1, table.name);
    sql::Reset reset(*stmt);
    std::vector<std::string> present;
    int rc;
    while ((rc = stmt->step()) == SQLITE_ROW) {
        present.push_back(stmt->column_text(0));
    }
    if (rc != SQLITE_DONE) {
        return sql::error(db, "looking for the capture triggers of '" + table.name + "'");
    }
    auto expected = schema::trigger_names(table);
    std::sort(expected.begin(), expected.end());
    return present == expected;
}

// After a time without triggers, logs what the table's rows say changed against their
// records, the way a trigger would have: rows with no live record as inserts, live
// records with no row as deletes, and max, min and counter cells that differ from the
// record as updates. LWW values are kept in the user table only (docs/metadata-format.md),
// so a change to an LWW cell made while no trigger was there cannot be told from the value
// before it: every live row's LWW cells are logged as updated (captured again as this
// node's writes), so that whatever the rebuild or the app wrote meanwhile reaches every
// node and all converge on it; docs/operating.md says what that costs. Only the first
// `columns` value columns are looked at (the registered ones; columns added since are
// captured by capture_new_columns). Returns the number of entries logged.
Result<std::size_t> log_untracked_changes(Store::Impl& s, TableState& t, std::size_t columns) {
    const auto& sch = t.schema;
    auto* db = s.db.get();
    auto nk = static_cast<int>(sch.key.size());
    std::string meta_keys, params;
    for (int i = 0; i < nk; ++i) {
        meta_keys += ", k" + std::to_string(i);
        params += ", ?" + std::to_string(i + 3);
    }
    auto log = sql::Stmt::prepare(db, "INSERT INTO " + sql::quote(schema::log_table(sch.name)) +
                                          "(op, cols, at" + meta_keys + ") VALUES (?1, ?2, " +
                                          "julianday()" + params + ")");
    if (!log) {
        return log.status();
    }
    std::size_t logged = 0;
    auto put = [&](schema::LogOp op, std::int64_t cols, const std::vector<crdt::Value>& key) {
        log->bind_int(1, static_cast<std::int64_t>(op));
        log->bind_int(2, cols);
        TableState::bind_key(*log, 3, key);
        ++logged;
        return log->run("logging a change made while '" + sch.name + "' had no triggers");
    };
    std::vector<std::pair<std::vector<crdt::Value>, std::pair<schema::LogOp, std::int64_t>>> found;
    {
        std::string values;
        for (std::size_t i = 0; i < columns; ++i) {
            values += ", " + sql::quote(sch.values[i].name);
        }
        auto rows = sql::Stmt::prepare(db, "SELECT " + schema::key_list(sch) + values + " FROM " +
                                               sql::quote(sch.name));
        if (!rows) {
            return rows.status();
        }
        sql::Reset reset(*rows);
        int rc;
        while ((rc = rows->step()) == SQLITE_ROW) {
            std::vector<crdt::Value> key;
            for (int i = 0; i < nk; ++i) {
                key.push_back(rows->column(i));
            }
            auto r = s.load_record(t, key);
            if (!r) {
                return r.status();
            }
            if (!r->life.life.exists()) {
                found.push_back({std::move(key), {schema::LogOp::insert, -1}});
                continue;
            }
            std::int64_t mask = 0;
            for (std::size_t i = 0; i < columns; ++i) {
                auto value = rows->column(nk + static_cast<int>(i));
                auto col = static_cast<int>(i);
                switch (sch.values[i].rule) {
                case crdt::MergeRule::last_writer_wins: mask |= std::int64_t{1} << i; break;
                case crdt::MergeRule::counter: {
                    auto now = crdt::counter_value(value);
                    if (!now || *now != r->counter_sum(col)) {
                        mask |= std::int64_t{1} << i;
                    }
                    break;
                }
                default: {
                    auto* cell = r->cell(col);
                    auto before = cell && cell->has_value && cell->write.life == r->life.life
                                      ? cell->write.value
                                      : t.defaults[i];
                    if (!(before == value)) {
                        mask |= std::int64_t{1} << i;
                    }
                }
                }
            }
            if (mask != 0) {
                found.push_back({std::move(key), {schema::LogOp::update, mask}});
            }
        }
        if (rc != SQLITE_DONE) {
            return sql::error(db, "reading '" + sch.name + "' to find untracked changes");
        }
    }
    {
        std::string join, keys;
        for (int i = 0; i < nk; ++i) {
            keys += (i ? ", r.k" : "r.k") + std::to_string(i);
            join += (i ? " AND t." : "t.") + sql::quote(sch.key[i]) + " = r.k" + std::to_string(i);
        }
        std::string aside;
        for (int i = 0; i < nk; ++i) {
            aside += (i ? " AND a.k" : "a.k") + std::to_string(i) + " = r.k" + std::to_string(i);
        }
        // Rows set aside (constraints.cpp) are not in the table, and were not deleted.
        auto gone = sql::Stmt::prepare(
            db, "SELECT " + keys + " FROM " + sql::quote(schema::rows_table(sch.name)) +
                    " r LEFT JOIN " + sql::quote(sch.name) + " t ON " + join + " WHERE t." +
                    sql::quote(sch.key[0]) + " IS NULL AND NOT EXISTS (SELECT 1 FROM " +
                    sql::quote(schema::aside_table(sch.name)) + " a WHERE " + aside + ")");
        if (!gone) {
            return gone.status();
        }
        sql::Reset reset(*gone);
        int rc;
        while ((rc = gone->step()) == SQLITE_ROW) {
            std::vector<crdt::Value> key;
            for (int i = 0; i < nk; ++i) {
                key.push_back(gone->column(i));
            }
            auto r = s.load_record(t, key);
            if (!r) {
                return r.status();
            }
            if (r->life.life.exists()) {
                found.push_back({std::move(key), {schema::LogOp::remove, 0}});
            }
        }
        if (rc != SQLITE_DONE) {
            return sql::error(db, "reading the records of '" + sch.name + "'");
        }
    }
    for (const auto& [key, what] : found) {
        if (auto st = put(what.first, what.second, key); !st.ok()) {
            return st;
        }
    }
    return logged;
}

// Brings one table's metadata, triggers and statements in line with its definition.
// `rebuilt` is set when a synced table had lost its triggers (and its untracked changes
// were logged: how many).
// `renamed`: a rename was just followed (mesh_names.cpp), so the triggers are created
// anew; `triggers_kept`: they were all there before it (nothing went uncaptured).
struct Renamed {
    bool renamed = false;
    bool triggers_kept = true;
};

Status install_table(Store::Impl& s, const schema::TableSchema& table,
                     const std::vector<Registered>* reg, std::optional<std::size_t>* rebuilt,
                     Renamed renamed = {}) {
    auto* db = s.db.get();
    // Before anything reads it: files synced before rows were set aside have none yet.
    if (auto st = sql::exec(db, schema::create_aside_sql(table)); !st.ok()) {
        return st;
    }
    std::size_t known = reg ? reg->size() : 0;
    if (reg) {
        if (auto st = check_against_registry(table, *reg); !st.ok()) {
            return st;
        }
    }
    bool fresh = reg == nullptr;
    bool grew = table.values.size() > known;
    bool lost_triggers = false;
    if (renamed.renamed) {
        lost_triggers = !renamed.triggers_kept;
    } else if (!fresh) {
        auto present = has_row_triggers(db, table.name);
        if (!present) {
            return present.status();
        }
        lost_triggers = !*present;
    }
    // A UNIQUE index added or dropped since: only the REPLACE triggers change.
    auto complete = has_triggers(db, table);
    if (!complete) {
        return complete.status();
    }
    if (fresh || grew) {
        if (auto st = register_columns(db, table, known); !st.ok()) {
            return st;
        }
    }
    if (fresh || grew || renamed.renamed) {
        if (auto st = sql::exec(db, schema::create_table_metadata_sql(table)); !st.ok()) {
            return st;
        }
    }
    if (fresh || grew || lost_triggers || renamed.renamed || !*complete) {
        if (auto st = sql::exec(db, schema::create_triggers_sql(table)); !st.ok()) {
            return st;
        }
    }
    if (fresh) {
        // Rows already in the table become this node's changes.
        std::string keys, meta_keys;
        for (std::size_t i = 0; i < table.key.size(); ++i) {
            keys += ", " + sql::quote(table.key[i]);
            meta_keys += ", k" + std::to_string(i);
        }
        auto text = "INSERT INTO " + sql::quote(schema::log_table(table.name)) + "(op, cols, at" +
                    meta_keys + ") SELECT 1, -1, julianday('now')" + keys + " FROM " +
                    sql::quote(table.name);
        if (auto st = sql::exec(db, text); !st.ok()) {
            return st;
        }
    } else if (grew) {
        if (auto st = capture_new_columns(db, table, known); !st.ok()) {
            return st;
        }
    }
    TableState state;
    state.schema = table;
    if (auto st = state.prepare(db); !st.ok()) {
        return st;
    }
    if (auto st = load_mesh_names(db, state); !st.ok()) {
        return st;
    }
    auto& installed = s.tables.insert_or_assign(table.name, std::move(state)).first->second;
    if (lost_triggers) {
        auto logged = log_untracked_changes(s, installed, known);
        if (!logged) {
            return logged.status();
        }
        *rebuilt = *logged;
    }
    return s.ensure_digests(installed);
}

schema::TableSpec spec_from_registry(const std::string& table, const std::vector<Registered>& reg) {
    schema::TableSpec spec{table, {}};
    for (const auto& r : reg) {
        spec.rules.push_back({r.name, r.rule});
    }
    return spec;
}

Result<std::int64_t> schema_version(sqlite3* db) {
    auto stmt = sql::Stmt::prepare(db, "PRAGMA schema_version");
    if (!stmt) {
        return stmt.status();
    }
    sql::Reset reset(*stmt);
    if (stmt->step() != SQLITE_ROW) {
        return sql::error(db, "reading schema_version");
    }
    return stmt->column_int(0);
}

// Applies held-back changes whose table and columns now exist.
Status retry_held_back(Store::Impl& s) {
    auto select =
        sql::Stmt::prepare(s.db.get(), "SELECT id, change FROM _peerlite_pending ORDER BY id");
    auto remove = sql::Stmt::prepare(s.db.get(), "DELETE FROM _peerlite_pending WHERE id = ?1");
    if (!select || !remove) {
        return select ? remove.status() : select.status();
    }
    std::vector<std::pair<std::int64_t, wire::RowChange>> ready;
    {
        sql::Reset reset(*select);
        while (select->step() == SQLITE_ROW) {
            auto row = wire::decode_row(select->column_blob(1));
            if (!row) {
                return Status(Code::corruption, "_peerlite_pending row " +
                                                    std::to_string(select->column_int(0)) + ": " +
                                                    row.status().message());
            }
            ready.emplace_back(select->column_int(0), std::move(*row));
        }
    }
    for (auto& [id, row] : ready) {
        wire::ChangeSet one{{row}, {}, true};
        if (!s.validate(one).ok()) {
            continue; // still unknown (or now invalid): stays aside
        }
        std::vector<const wire::RowChange*> rows{&row};
        auto stats = s.apply_rows(rows, crdt::VersionVector(), Store::Impl::Arrival::from_pending);
        if (!stats) {
            return stats.status();
        }
        if (stats->held_back > 0) {
            continue;
        }
        remove->bind_int(1, id);
        if (auto st = remove->run("removing an applied held-back change"); !st.ok()) {
            return st;
        }
    }
    return Status::success();
}

// After tables were (re)installed: stamp what the triggers logged (including writes the
// old triggers could not see), apply held-back changes the schema now allows, commit, and
// remember the schema version so the next refresh is a cheap no-op.
Status finish_schema_change(Store::Impl& s, sql::Transaction& tx) {
    if (auto stats = s.capture_locked(); !stats) {
        return stats.status();
    }
    if (auto st = retry_held_back(s); !st.ok()) {
        return st;
    }
    if (auto st = s.persist_progress(); !st.ok()) {
        return st;
    }
    if (auto st = s.commit(tx); !st.ok()) {
        return st;
    }
    auto after = schema_version(s.db.get());
    s.schema_version = after ? *after : -1;
    return Status::success();
}

// Problems with a table's shape that a schema change made and another can undo.
bool unfollowable(Code code) {
    return code == Code::unknown_table || code == Code::unknown_column ||
           code == Code::schema_mismatch || code == Code::invalid_argument;
}

// Says what became of a synced table peerlite cannot follow, and the way back.
std::string why_stopped(sqlite3* db, const std::string& name, const std::vector<Registered>& reg,
                        const Status& failure) {
    auto lead = "table '" + name + "' stopped syncing (every other table goes on): ";
    auto ways = " Its local writes are kept and peers' changes to it are held back until then; "
                "to take it out of sync on purpose, see docs/operating.md.";
    auto exists = sql::Stmt::prepare(
        db, "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1 COLLATE NOCASE");
    auto carrier = sql::Stmt::prepare(
        db, "SELECT tbl_name FROM sqlite_schema WHERE type = 'trigger' AND name = ?1");
    auto columns = sql::Stmt::prepare(db, "SELECT name FROM pragma_table_xinfo(?1)");
    if (!exists || !carrier || !columns) {
        return lead + failure.message();
    }
    exists->bind_text(1, name);
    sql::Reset reset_exists(*exists);
    if (exists->step() != SQLITE_ROW) {
        carrier->bind_text(1, "_peerlite_ins_" + name);
        sql::Reset reset_carrier(*carrier);
        if (carrier->step() == SQLITE_ROW) {
            auto now = carrier->column_text(0);
            return lead + "it was renamed to '" + now +
                   "', and peerlite does not follow a table rename. To go on syncing it, rename "
                   "it back: ALTER TABLE " +
                   sql::quote(now) + " RENAME TO " + sql::quote(name) + ";" + ways;
        }
        return lead +
               "it was dropped. To sync it again, create it again with the same columns "
               "(rows it lacks then are deletions of those rows, synced to every node)." +
               ways;
    }
    columns->bind_text(1, name);
    sql::Reset reset_columns(*columns);
    std::set<std::string> present;
    std::string listed;
    while (columns->step() == SQLITE_ROW) {
        present.insert(columns->column_text(0));
        listed += (listed.empty() ? "" : ", ") + columns->column_text(0);
    }
    for (const auto& r : reg) {
        if (present.count(r.name) == 0) {
            return lead + "synced column '" + r.name +
                   "' is gone (renamed or dropped; the table's columns are now " + listed +
                   "), and peerlite follows ADD COLUMN only. To go on syncing the table, "
                   "rename the column back: ALTER TABLE " +
                   sql::quote(name) + " RENAME COLUMN <new name> TO " + sql::quote(r.name) + ";" +
                   ways;
        }
    }
    return lead + failure.message() + "." + ways;
}

// The versions of the records of a table this node can no longer serve.
Result<crdt::VersionVector> record_versions(Store::Impl& s, const std::string& name) {
    crdt::VersionVector out;
    auto stmt = sql::Stmt::prepare(s.db.get(),
                                   "SELECT rec, vmax FROM " + sql::quote(schema::rows_table(name)));
    if (!stmt) {
        return out; // no records table: nothing was ever synced
    }
    sql::Reset reset(*stmt);
    while (stmt->step() == SQLITE_ROW) {
        auto vmax = crdt::Hlc::from_raw(static_cast<std::uint64_t>(stmt->column_int(1)));
        auto r = decode_record(stmt->column_blob(0), vmax, s.nodes);
        if (!r) {
            return Status(Code::corruption, "table '" + name + "': " + r.status().message());
        }
        out.add(r->life.stamp.node, r->life.stamp.hlc);
        for (const auto& c : r->cells) {
            out.add(c.write.stamp.node, c.write.stamp.hlc);
        }
        for (const auto& c : r->counters) {
            out.add(c.write.stamp.node, c.write.stamp.hlc);
        }
    }
    return out;
}

crdt::VersionVector unserved_of(const std::map<std::string, Store::Impl::Stopped>& stopped) {
    crdt::VersionVector out;
    for (const auto& [name, stop] : stopped) {
        out.merge(stop.versions);
    }
    return out;
}

Status stop_table(Store::Impl& s, const std::string& name, std::string reason) {
    s.tables.erase(name);
    if (auto it = s.stopped.find(name); it != s.stopped.end() && it->second.reason == reason) {
        return Status::success();
    }
    auto versions = record_versions(s, name);
    if (!versions) {
        return versions.status();
    }
    s.table_events.push_back({TableEvent::Kind::stopped, name, reason});
    s.stopped[name] = {std::move(reason), std::move(*versions)};
    s.unserved = unserved_of(s.stopped);
    return Status::success();
}

// Follows renames of a synced table and of its value columns (mesh_names.hpp): `local`
// and `reg` become the file's names, `renamed` says what install_table() must redo, and
// `messages` gets a line for each rename.
Status follow_renames(Store::Impl& s, std::string& local, std::vector<Registered>& reg,
                      Renamed& renamed, std::vector<std::string>& messages) {
    auto* db = s.db.get();
    auto moved = follow_table_rename(db, local);
    if (!moved) {
        return moved.status();
    }
    if (*moved) {
        messages.push_back("table '" + local + "' was renamed to '" + (*moved)->to +
                           "' in this file: followed. It goes on syncing under the name it "
                           "has on the wire, so peers need not rename it");
        local = (*moved)->to;
        renamed = {true, (*moved)->triggers_kept};
    }
    std::vector<std::string> names;
    for (const auto& r : reg) {
        names.push_back(r.name);
    }
    auto columns = follow_column_renames(db, local, names);
    if (!columns) {
        return columns.status();
    }
    for (std::size_t i = 0; i < reg.size(); ++i) {
        if (names[i] != reg[i].name) {
            messages.push_back("table '" + local + "': synced column '" + reg[i].name +
                               "' was renamed to '" + names[i] +
                               "': followed. It goes on syncing under the name it has on the "
                               "wire, so peers need not rename it");
            reg[i].name = names[i];
            if (!renamed.renamed) {
                auto present = has_row_triggers(db, local); // a rebuild may have renamed it
                if (!present) {
                    return present.status();
                }
                renamed = {true, *present};
            }
        }
    }
    return Status::success();
}

// Follows one synced table through a schema change, in a savepoint of the caller's
// transaction: a table it cannot follow is stopped and rolled back alone, so the rest of
// the file goes on syncing; a stopped table that can be followed again resumes.
Status follow_table(Store::Impl& s, const std::string& name, std::vector<Registered> reg) {
    auto* db = s.db.get();
    if (auto st = sql::exec(db, "SAVEPOINT peerlite_follow"); !st.ok()) {
        return st;
    }
    std::optional<std::size_t> rebuilt;
    std::vector<std::string> renames; // what was followed, for the log
    auto local = name;
    Renamed renamed;
    auto st = follow_renames(s, local, reg, renamed, renames);
    if (!st.ok() && st.code() != Code::busy) {
        // e.g. metadata of an earlier table under the new name: this table stops, alone.
        st = Status(Code::schema_mismatch, "its rename cannot be followed: " + st.message());
    }
    auto table = st.ok() ? schema::inspect_table(db, spec_from_registry(local, reg))
                         : Result<schema::TableSchema>(st);
    st = table ? install_table(s, *table, &reg, &rebuilt, renamed) : table.status();
    if (!st.ok()) {
        s.tables.erase(name);
        if (auto undo = sql::exec(db, "ROLLBACK TO peerlite_follow; RELEASE peerlite_follow");
            !undo.ok()) {
            return undo;
        }
        return unfollowable(st.code()) ? stop_table(s, name, why_stopped(db, name, reg, st)) : st;
    }
    if (auto done = sql::exec(db, "RELEASE peerlite_follow"); !done.ok()) {
        return done;
    }
    if (local != name) {
        s.tables.erase(name);
    }
    if (s.stopped.erase(name) + s.stopped.erase(local) > 0) {
        s.unserved = unserved_of(s.stopped);
        s.table_events.push_back(
            {TableEvent::Kind::resumed, local,
             "table '" + local + "' syncs again: its shape is one peerlite follows"});
    }
    for (auto& message : renames) {
        s.table_events.push_back({TableEvent::Kind::renamed, local, std::move(message)});
    }
    if (rebuilt) {
        s.table_events.push_back(
            {TableEvent::Kind::repaired, local,
             "table '" + local +
                 "' had lost its capture triggers (rebuilt, or dropped and created again): "
                 "triggers put back, and " +
                 std::to_string(*rebuilt) +
                 " row change(s) captured from the table as it is now (inserts and deletes "
                 "found against its records; every row's last-writer-wins cells written "
                 "again, as peerlite cannot tell which ones changed meanwhile)"});
    }
    return Status::success();
}

} // namespace

namespace {

// A table renamed in this file may be declared under its name on the wire (the config
// written before the rename) or its new name: the declaration in the file's names.
Status to_file_names(sqlite3* db, schema::TableSpec& spec) {
    auto local = local_table_of(db, spec.table);
    if (!local) {
        return local.status();
    }
    if (*local) {
        spec.table = **local;
    }
    for (auto& rule : spec.rules) {
        auto column = local_column_of(db, spec.table, rule.column);
        if (!column) {
            return column.status();
        }
        rule.column = std::move(*column);
    }
    return Status::success();
}

} // namespace

Result<std::vector<std::string>> Store::sync_table(const schema::TableSpec& declared) {
    auto& s = *impl_;
    auto tx = s.begin_write();
    if (!tx) {
        return tx.status();
    }
    auto registry = read_registry(s.db.get());
    if (!registry) {
        return registry.status();
    }
    if (auto it = registry->find(declared.table); it != registry->end()) {
        // A synced table: follow what happened to it first (a rename included).
        if (auto st = follow_table(s, it->first, it->second); !st.ok()) {
            return st;
        }
        registry = read_registry(s.db.get());
        if (!registry) {
            return registry.status();
        }
    }
    auto spec = declared;
    if (auto st = to_file_names(s.db.get(), spec); !st.ok()) {
        return st;
    }
    auto it = registry->find(spec.table);
    if (auto stop = s.stopped.find(spec.table); it != registry->end() && stop != s.stopped.end()) {
        // One that cannot be followed stays stopped (a warning, not an error: the rest of
        // the file syncs).
        auto reason = stop->second.reason;
        if (auto st = finish_schema_change(s, *tx); !st.ok()) {
            return st;
        }
        return std::vector<std::string>{reason};
    }
    auto table = schema::inspect_table(s.db.get(), spec);
    if (!table) {
        return table.status();
    }
    std::optional<std::size_t> rebuilt;
    if (auto st = install_table(s, *table, it == registry->end() ? nullptr : &it->second, &rebuilt);
        !st.ok()) {
        return st;
    }
    if (auto st = finish_schema_change(s, *tx); !st.ok()) {
        return st;
    }
    return table->warnings;
}

Status Store::refresh_schema() {
    auto& s = *impl_;
    auto version = schema_version(s.db.get());
    if (!version) {
        return version.status();
    }
    if (*version == s.schema_version) {
        return Status::success();
    }
    auto tx = s.begin_write();
    if (!tx) {
        return tx.status();
    }
    // The backup API moves the schema version too: a file restored underneath is found here.
    if (auto st = s.check_not_replaced(); !st.ok()) {
        return st;
    }
    // Rows picked up under the old definitions are written under them, before a table is
    // stopped, renamed or rebuilt: its records then say what the mesh was sent.
    // Their digest deltas are saved too: following a table replaces its state, deltas and
    // all.
    if (!s.picked.empty()) {
        if (auto flushed = s.capture_locked(); !flushed) {
            return flushed.status();
        }
        if (auto st = s.flush_digests(); !st.ok()) {
            return st;
        }
    }
    auto registry = read_registry(s.db.get());
    if (!registry) {
        return registry.status();
    }
    for (const auto& [name, reg] : *registry) {
        if (auto st = follow_table(s, name, reg); !st.ok()) {
            return st;
        }
    }
    return finish_schema_change(s, *tx);
}

std::vector<StoppedTable> Store::stopped_tables() const {
    std::vector<StoppedTable> out;
    for (const auto& [name, stop] : impl_->stopped) {
        out.push_back({name, stop.reason});
    }
    return out;
}

const crdt::VersionVector& Store::unserved() const {
    return impl_->unserved;
}

std::vector<TableEvent> Store::take_table_events() {
    return std::exchange(impl_->table_events, {});
}

Result<std::vector<std::pair<wire::RowChange, std::string>>> Store::held_back() {
    auto stmt = sql::Stmt::prepare(impl_->db.get(),
                                   "SELECT change, reason FROM _peerlite_pending ORDER BY id");
    if (!stmt) {
        return stmt.status();
    }
    sql::Reset reset(*stmt);
    std::vector<std::pair<wire::RowChange, std::string>> out;
    while (stmt->step() == SQLITE_ROW) {
        auto row = wire::decode_row(stmt->column_blob(0));
        if (!row) {
            return row.status();
        }
        out.emplace_back(std::move(*row), stmt->column_text(1));
    }
    return out;
}

} // namespace peerlite::store
