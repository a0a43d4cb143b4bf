// Declaring synced tables and following their schema: the column registry, triggers,
// and catching up after ALTER TABLE ... ADD COLUMN.
#include <peerlite/store/store.hpp>

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

// Brings one table's metadata, triggers and statements in line with its definition.
Status install_table(Store::Impl& s, const schema::TableSchema& table,
                     const std::vector<Registered>* reg) {
    auto* db = s.db.get();
    std::size_t known = reg ? reg->size() : 0;
    if (reg) {
        if (auto st = check_against_registry(table, *reg); !st.ok()) {
            return st;
        }
    }
    bool fresh = reg == nullptr;
    bool grew = table.values.size() > known;
    if (fresh || grew) {
        if (auto st = register_columns(db, table, known); !st.ok()) {
            return st;
        }
        if (auto st = sql::exec(db, schema::create_table_metadata_sql(table)); !st.ok()) {
            return st;
        }
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
    auto& installed = s.tables.insert_or_assign(table.name, std::move(state)).first->second;
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
    std::vector<std::pair<std::int64_t, RowChange>> ready;
    {
        sql::Reset reset(*select);
        while (select->step() == SQLITE_ROW) {
            auto row = decode_row(select->column_blob(1));
            if (!row) {
                return Status(Code::corruption, "_peerlite_pending row " +
                                                    std::to_string(select->column_int(0)) + ": " +
                                                    row.status().message());
            }
            ready.emplace_back(select->column_int(0), std::move(*row));
        }
    }
    for (auto& [id, row] : ready) {
        ChangeSet one{{row}, {}, true};
        if (!s.validate(one).ok()) {
            continue; // still unknown (or now invalid): stays aside
        }
        std::vector<const RowChange*> rows{&row};
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
    if (auto st = tx.commit(); !st.ok()) {
        return st;
    }
    auto after = schema_version(s.db.get());
    s.schema_version = after ? *after : -1;
    return Status::success();
}

} // namespace

Result<std::vector<std::string>> Store::sync_table(const schema::TableSpec& spec) {
    auto& s = *impl_;
    auto tx = s.begin_write();
    if (!tx) {
        return tx.status();
    }
    auto table = schema::inspect_table(s.db.get(), spec);
    if (!table) {
        return table.status();
    }
    auto registry = read_registry(s.db.get());
    if (!registry) {
        return registry.status();
    }
    auto it = registry->find(spec.table);
    if (auto st = install_table(s, *table, it == registry->end() ? nullptr : &it->second);
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
    auto registry = read_registry(s.db.get());
    if (!registry) {
        return registry.status();
    }
    for (const auto& [name, reg] : *registry) {
        auto table = schema::inspect_table(s.db.get(), spec_from_registry(name, reg));
        if (!table) {
            return Status(table.status().code(), "synced " + table.status().message());
        }
        if (auto st = install_table(s, *table, &reg); !st.ok()) {
            return st;
        }
    }
    return finish_schema_change(s, *tx);
}

Result<std::vector<std::pair<RowChange, std::string>>> Store::held_back() {
    auto stmt = sql::Stmt::prepare(impl_->db.get(),
                                   "SELECT change, reason FROM _peerlite_pending ORDER BY id");
    if (!stmt) {
        return stmt.status();
    }
    sql::Reset reset(*stmt);
    std::vector<std::pair<RowChange, std::string>> out;
    while (stmt->step() == SQLITE_ROW) {
        auto row = decode_row(stmt->column_blob(0));
        if (!row) {
            return row.status();
        }
        out.emplace_back(std::move(*row), stmt->column_text(1));
    }
    return out;
}

} // namespace peerlite::store
