// Renames followed on one node: see mesh_names.hpp.
#include "mesh_names.hpp"

#include <set>

#include "../schema/capture_sql.hpp"
#include "../schema/table_schema.hpp"
#include "../sql/sqlite.hpp"
#include "store_impl.hpp"

namespace peerlite::store {

namespace {

// `text` prepared, with `args` bound as text from parameter 1 on.
Result<sql::Stmt> bound(sqlite3* db, const std::string& text,
                        std::initializer_list<std::string> args) {
    auto stmt = sql::Stmt::prepare(db, text);
    if (stmt) {
        int i = 1;
        for (const auto& a : args) {
            stmt->bind_text(i++, a);
        }
    }
    return stmt;
}

// Runs `text`, one row or none expected: its first column.
Result<std::optional<std::string>> one_text(sqlite3* db, const std::string& text,
                                            std::initializer_list<std::string> args) {
    auto stmt = bound(db, text, args);
    if (!stmt) {
        return stmt.status();
    }
    sql::Reset reset(*stmt);
    int rc = stmt->step();
    if (rc == SQLITE_ROW) {
        return std::optional<std::string>(stmt->column_text(0));
    }
    if (rc != SQLITE_DONE) {
        return sql::error(db, "reading " + text);
    }
    return std::optional<std::string>();
}

Status run(sqlite3* db, const std::string& text, std::initializer_list<std::string> args) {
    auto stmt = bound(db, text, args);
    return stmt ? stmt->run("recording a rename") : stmt.status();
}

// Records that `table`'s entry `old_name` (col '' for the table itself) is now `new_name`
// in the file, keeping the name it has on the wire.
Status record_rename(sqlite3* db, const std::string& table, const std::string& col,
                     const std::string& old_name, const std::string& new_name) {
    auto mesh =
        one_text(db, "SELECT mesh FROM _peerlite_names WHERE tbl = ?1 AND col = ?2", {table, col});
    if (!mesh) {
        return mesh.status();
    }
    auto wire = mesh->value_or(old_name);
    if (auto st = run(db, "DELETE FROM _peerlite_names WHERE tbl = ?1 AND col = ?2", {table, col});
        !st.ok()) {
        return st;
    }
    auto new_col = col.empty() ? std::string() : new_name;
    if (wire == new_name) {
        return Status::success(); // renamed back
    }
    return run(db, "INSERT INTO _peerlite_names(tbl, col, mesh) VALUES (?1, ?2, ?3)",
               {table, new_col, wire});
}

Result<std::set<std::string>> column_names(sqlite3* db, const std::string& table, bool values_only,
                                           std::vector<std::string>* ordered) {
    auto stmt = sql::Stmt::prepare(
        db, std::string("SELECT name FROM pragma_table_xinfo(?1)") +
                (values_only ? " WHERE pk = 0 AND hidden NOT IN (2, 3)" : "") + " ORDER BY cid");
    if (!stmt) {
        return stmt.status();
    }
    stmt->bind_text(1, table);
    sql::Reset reset(*stmt);
    std::set<std::string> out;
    while (stmt->step() == SQLITE_ROW) {
        out.insert(stmt->column_text(0));
        if (ordered) {
            ordered->push_back(stmt->column_text(0));
        }
    }
    return out;
}

} // namespace

int TableState::mesh_column(std::string_view name) const {
    for (std::size_t i = 0; i < mesh_columns.size(); ++i) {
        if (mesh_columns[i] == name) {
            return static_cast<int>(i);
        }
    }
    return -1;
}

Status load_mesh_names(sqlite3* db, TableState& t) {
    t.mesh_name = t.schema.name;
    t.mesh_columns.clear();
    for (const auto& c : t.schema.values) {
        t.mesh_columns.push_back(c.name);
    }
    auto stmt = sql::Stmt::prepare(db, "SELECT col, mesh FROM _peerlite_names WHERE tbl = ?1");
    if (!stmt) {
        return stmt.status();
    }
    stmt->bind_text(1, t.schema.name);
    sql::Reset reset(*stmt);
    while (stmt->step() == SQLITE_ROW) {
        auto col = stmt->column_text(0);
        if (col.empty()) {
            t.mesh_name = stmt->column_text(1);
        } else if (auto i = t.schema.value_index(col); i >= 0) {
            t.mesh_columns[static_cast<std::size_t>(i)] = stmt->column_text(1);
        }
    }
    return Status::success();
}

Result<std::optional<TableRename>> follow_table_rename(sqlite3* db, const std::string& name) {
    using None = std::optional<TableRename>;
    auto there = one_text(
        db, "SELECT name FROM sqlite_schema WHERE type = 'table' AND name = ?1 COLLATE NOCASE",
        {name});
    if (!there || *there) {
        return there ? None() : Result<None>(there.status());
    }
    // SQLite moves a table's triggers with it: the capture trigger tells where it went.
    auto carrier =
        one_text(db, "SELECT tbl_name FROM sqlite_schema WHERE type = 'trigger' AND name = ?1",
                 {"_peerlite_ins_" + name});
    if (!carrier || !*carrier) {
        return carrier ? None() : Result<None>(carrier.status()); // dropped
    }
    auto to = **carrier;
    auto synced = one_text(
        db, "SELECT tbl FROM _peerlite_columns WHERE tbl = ?1 COLLATE NOCASE LIMIT 1", {to});
    if (!synced) {
        return synced.status();
    }
    if (*synced || schema::is_reserved_name(to)) {
        return None(); // not a rename peerlite can follow: the table stops, saying why
    }
    auto moved =
        one_text(db,
                 "SELECT count(*) FROM sqlite_schema WHERE type = 'trigger' AND "
                 "tbl_name = ?1 AND name IN (?2, ?3, ?4)",
                 {to, "_peerlite_ins_" + name, "_peerlite_upd_" + name, "_peerlite_del_" + name});
    if (!moved) {
        return moved.status();
    }
    auto text = "ALTER TABLE " + sql::quote(schema::log_table(name)) + " RENAME TO " +
                sql::quote(schema::log_table(to)) + ";\nALTER TABLE " +
                sql::quote(schema::rows_table(name)) + " RENAME TO " +
                sql::quote(schema::rows_table(to)) + ";\nDROP INDEX IF EXISTS " +
                sql::quote(schema::rows_table(name) + "_vmax") + ";\n" +
                schema::drop_triggers_sql(name);
    if (auto st = sql::exec(db, text); !st.ok()) {
        return st;
    }
    // Rows set aside go along (a file from before them has no aside table).
    auto aside = one_text(db, "SELECT count(*) FROM sqlite_schema WHERE name = ?1",
                          {schema::aside_table(name)});
    if (!aside) {
        return aside.status();
    }
    if (*aside && **aside != "0") {
        if (auto st = sql::exec(db, "ALTER TABLE " + sql::quote(schema::aside_table(name)) +
                                        " RENAME TO " + sql::quote(schema::aside_table(to)));
            !st.ok()) {
            return st;
        }
    }
    for (const char* update : {"UPDATE _peerlite_columns SET tbl = ?2 WHERE tbl = ?1",
                               "UPDATE _peerlite_names SET tbl = ?2 WHERE tbl = ?1",
                               "DELETE FROM _peerlite_digest_sums WHERE tbl = ?1 OR tbl = ?2"}) {
        if (auto st = run(db, update, {name, to}); !st.ok()) {
            return st;
        }
    }
    if (auto st = record_rename(db, to, "", name, to); !st.ok()) {
        return st;
    }
    return None(TableRename{to, moved->value_or("0") == "3"});
}

Result<std::size_t> follow_column_renames(sqlite3* db, const std::string& table,
                                          std::vector<std::string>& registered) {
    std::vector<std::string> in_place;
    auto all = column_names(db, table, false, nullptr);
    auto values = column_names(db, table, true, &in_place);
    if (!all || !values) {
        return all ? values.status() : all.status();
    }
    std::set<std::string> known(registered.begin(), registered.end());
    std::size_t renamed = 0;
    for (std::size_t i = 0; i < registered.size(); ++i) {
        if (all->count(registered[i]) > 0 || i >= in_place.size() || known.count(in_place[i]) > 0) {
            continue;
        }
        const auto old_name = registered[i];
        const auto& new_name = in_place[i];
        if (auto st = run(db, "UPDATE _peerlite_columns SET name = ?3 WHERE tbl = ?1 AND idx = ?2",
                          {table, std::to_string(i), new_name});
            !st.ok()) {
            return st;
        }
        if (auto st = record_rename(db, table, old_name, old_name, new_name); !st.ok()) {
            return st;
        }
        registered[i] = new_name;
        known.insert(new_name);
        ++renamed;
    }
    if (renamed > 0) {
        // Row hashes name their columns: recomputed under the new names.
        if (auto st = run(db, "DELETE FROM _peerlite_digest_sums WHERE tbl = ?1", {table});
            !st.ok()) {
            return st;
        }
    }
    return renamed;
}

Result<std::optional<std::string>> local_table_of(sqlite3* db, const std::string& mesh_name) {
    return one_text(db,
                    "SELECT tbl FROM _peerlite_names WHERE col = '' AND mesh = ?1 COLLATE NOCASE",
                    {mesh_name});
}

Result<std::string> local_column_of(sqlite3* db, const std::string& table,
                                    const std::string& mesh_column) {
    auto col =
        one_text(db, "SELECT col FROM _peerlite_names WHERE tbl = ?1 AND col <> '' AND mesh = ?2",
                 {table, mesh_column});
    if (!col) {
        return col.status();
    }
    return col->value_or(mesh_column);
}

} // namespace peerlite::store
