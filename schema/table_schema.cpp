#include "table_schema.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>

#include "../sql/sqlite.hpp"

namespace peerlite::schema {

namespace {

std::string upper(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    return s;
}

struct RawColumn {
    std::string name;
    std::string type;
    bool not_null = false;
    int pk = 0;     // 1-based position in the primary key, 0 if not a key column
    int hidden = 0; // 2 or 3: generated column
};

Result<std::vector<RawColumn>> read_columns(sqlite3* db, const std::string& table) {
    auto stmt = sql::Stmt::prepare(db, "SELECT name, type, \"notnull\", pk, hidden FROM "
                                       "pragma_table_xinfo(?1)");
    if (!stmt) {
        return stmt.status();
    }
    stmt->bind_text(1, table);
    sql::Reset reset(*stmt);
    std::vector<RawColumn> out;
    while (stmt->step() == SQLITE_ROW) {
        out.push_back({stmt->column_text(0), stmt->column_text(1), stmt->column_int(2) != 0,
                       static_cast<int>(stmt->column_int(3)),
                       static_cast<int>(stmt->column_int(4))});
    }
    return out;
}

struct TableFacts {
    bool exists = false;
    bool without_rowid = false;
    bool key_index = false; // the primary key has an index of its own (origin 'pk')
    std::string sql;
};

Result<TableFacts> read_table_facts(sqlite3* db, const std::string& table) {
    TableFacts facts;
    auto stmt = sql::Stmt::prepare(
        db, "SELECT m.sql, l.wr FROM sqlite_schema m JOIN pragma_table_list l ON l.name = m.name "
            "WHERE m.type = 'table' AND m.name = ?1 COLLATE NOCASE AND l.schema = 'main'");
    if (!stmt) {
        return stmt.status();
    }
    stmt->bind_text(1, table);
    sql::Reset reset(*stmt);
    if (stmt->step() == SQLITE_ROW) {
        facts.exists = true;
        facts.sql = stmt->column_text(0);
        facts.without_rowid = stmt->column_int(1) != 0;
    }
    // A primary key SQLite keeps in an index of its own: in a rowid table with one
    // INTEGER key column, that means the key is not the rowid (INTEGER PRIMARY KEY DESC).
    auto pk_index =
        sql::Stmt::prepare(db, "SELECT count(*) FROM pragma_index_list(?1) WHERE origin = 'pk'");
    if (!pk_index) {
        return pk_index.status();
    }
    pk_index->bind_text(1, table);
    sql::Reset reset_index(*pk_index);
    if (pk_index->step() == SQLITE_ROW) {
        facts.key_index = pk_index->column_int(0) > 0;
    }
    return facts;
}

Status refuse(const std::string& table, const std::string& why) {
    return Status(Code::invalid_argument, "cannot sync table '" + table + "': " + why);
}

// The columns of every UNIQUE index other than the primary key's. A merged row that would
// break one is set aside by the store, which finds the rows holding the value by these
// columns: an index on an expression, or a partial one, names no such set, so it is
// refused.
Result<std::vector<std::vector<std::string>>> read_unique(sqlite3* db, const std::string& table) {
    auto list = sql::Stmt::prepare(db, "SELECT name, partial FROM pragma_index_list(?1) WHERE "
                                       "\"unique\" AND origin <> 'pk' ORDER BY name");
    if (!list) {
        return list.status();
    }
    list->bind_text(1, table);
    std::vector<std::pair<std::string, bool>> indexes;
    {
        sql::Reset reset(*list);
        while (list->step() == SQLITE_ROW) {
            indexes.emplace_back(list->column_text(0), list->column_int(1) != 0);
        }
    }
    auto info = sql::Stmt::prepare(db, "SELECT name FROM pragma_index_info(?1) ORDER BY seqno");
    if (!info) {
        return info.status();
    }
    std::vector<std::vector<std::string>> out;
    for (const auto& [index, partial] : indexes) {
        if (partial) {
            return refuse(table, "its UNIQUE index '" + index +
                                     "' is partial (CREATE UNIQUE INDEX ... WHERE): a merged "
                                     "row that breaks it cannot be matched to the rows it "
                                     "meets; make it a full UNIQUE index or drop it");
        }
        info->bind_text(1, index);
        sql::Reset reset(*info);
        std::vector<std::string> columns;
        while (info->step() == SQLITE_ROW) {
            if (info->column_is_null(0)) {
                return refuse(table, "its UNIQUE index '" + index +
                                         "' is on an expression: a merged row that breaks it "
                                         "cannot be matched to the rows it meets; index the "
                                         "columns themselves, or drop it");
            }
            columns.push_back(info->column_text(0));
        }
        out.push_back(std::move(columns));
    }
    return out;
}

} // namespace

bool is_reserved_name(std::string_view table) {
    auto lower = upper(std::string(table));
    return lower.rfind("_PEERLITE", 0) == 0 || lower.rfind("SQLITE_", 0) == 0;
}

int TableSchema::value_index(std::string_view column) const {
    for (std::size_t i = 0; i < values.size(); ++i) {
        if (values[i].name == column) {
            return static_cast<int>(i);
        }
    }
    return -1;
}

std::uint64_t TableSchema::identity() const {
    std::uint64_t h = 1469598103934665603ull;
    auto mix = [&](std::string_view s) {
        for (unsigned char c : s) {
            h = (h ^ c) * 1099511628211ull;
        }
        h = (h ^ 0xff) * 1099511628211ull; // separator
    };
    mix(name);
    for (const auto& k : key) {
        mix(k);
    }
    mix("|");
    for (const auto& c : values) {
        mix(c.name);
        mix(crdt::rule_name(c.rule));
    }
    return h;
}

bool canonical_key(const TableSchema& table, std::vector<crdt::Value>& key) {
    if (!table.key_has_spellings()) {
        return false;
    }
    bool changed = false;
    for (std::size_t i = 0; i < key.size() && i < table.key_collations.size(); ++i) {
        if (key[i].storage_class() == crdt::StorageClass::real && key[i].as_real() == 0 &&
            std::signbit(key[i].as_real())) {
            key[i] = crdt::Value::real(0.0); // SQLite takes -0.0 and 0.0 for one key
            changed = true;
            continue;
        }
        const auto& coll = table.key_collations[i];
        if (coll == "BINARY" || key[i].storage_class() != crdt::StorageClass::text) {
            continue;
        }
        std::string text(key[i].as_text());
        auto before = text;
        if (coll == "NOCASE") {
            for (auto& c : text) {
                if (c >= 'A' && c <= 'Z') {
                    c = static_cast<char>(c - 'A' + 'a');
                }
            }
        } else {
            text.erase(text.find_last_not_of(' ') + 1);
        }
        if (text != before) {
            key[i] = crdt::Value::text(std::move(text));
            changed = true;
        }
    }
    return changed;
}

Result<TableSchema> inspect_table(sqlite3* db, const TableSpec& spec) {
    const auto& name = spec.table;
    if (is_reserved_name(name)) {
        return refuse(name, "names starting with _peerlite or sqlite_ are reserved");
    }
    auto facts = read_table_facts(db, name);
    if (!facts) {
        return facts.status();
    }
    if (!facts->exists) {
        return Status(Code::unknown_table, "cannot sync table '" + name +
                                               "': no such table in the database (create it "
                                               "first, then enable sync)");
    }
    if (upper(facts->sql).find("AUTOINCREMENT") != std::string::npos) {
        return refuse(name, "AUTOINCREMENT hands out the same next id on every node, so "
                            "inserts on two nodes would collide; drop AUTOINCREMENT and use "
                            "peerlite's time-ordered ids (store::id_sql(), "
                            "peerlite/store/row_ids.hpp) for new keys");
    }
    auto columns = read_columns(db, name);
    if (!columns) {
        return columns.status();
    }

    TableSchema schema;
    schema.name = name;
    std::vector<const RawColumn*> key_columns;
    for (const auto& c : *columns) {
        if (c.hidden == 2 || c.hidden == 3) {
            continue; // generated columns are computed on every node, never synced
        }
        if (c.pk > 0) {
            key_columns.push_back(&c);
        } else {
            schema.values.push_back({c.name, crdt::MergeRule::last_writer_wins});
        }
    }
    if (key_columns.empty()) {
        return refuse(name, "it has no PRIMARY KEY. Rows are matched across nodes by primary "
                            "key (rowids differ per node); declare one, e.g. "
                            "id TEXT PRIMARY KEY NOT NULL DEFAULT (<store::id_sql()>)");
    }
    std::sort(key_columns.begin(), key_columns.end(),
              [](const RawColumn* a, const RawColumn* b) { return a->pk < b->pk; });
    schema.integer_key = key_columns.size() == 1 && !facts->without_rowid &&
                         upper(key_columns[0]->type) == "INTEGER";
    if (schema.integer_key && facts->key_index) {
        return refuse(name, "its key '" + key_columns[0]->name +
                                "' is declared INTEGER PRIMARY KEY DESC, which SQLite does not "
                                "make the rowid: it may then hold NULL and text, which peerlite "
                                "cannot store as an integer key. Declare it INTEGER PRIMARY KEY "
                                "(no DESC), or give it another type (e.g. BIGINT PRIMARY KEY "
                                "NOT NULL)");
    }
    for (const auto* k : key_columns) {
        const char* declared_type = nullptr;
        const char* collation = nullptr;
        if (sqlite3_table_column_metadata(db, "main", name.c_str(), k->name.c_str(), &declared_type,
                                          &collation, nullptr, nullptr, nullptr) != SQLITE_OK) {
            return sql::error(db, "reading the collation of key column '" + k->name + "'");
        }
        auto coll = upper(collation ? collation : "BINARY");
        if (coll != "BINARY" && coll != "NOCASE" && coll != "RTRIM") {
            return refuse(name, "primary key column '" + k->name + "' uses collation '" + coll +
                                    "', which peerlite cannot apply outside this connection "
                                    "to tell which keys are equal on every node; use BINARY "
                                    "(the default), NOCASE or RTRIM");
        }
        schema.key_collations.push_back(coll);
        auto type = upper(k->type);
        auto has = [&](const char* part) {
            return type.find(part) != std::string::npos;
        };
        // SQLite's affinity rules: only REAL and no affinity (BLOB, or no type) keep a REAL.
        bool real_or_none =
            !has("INT") && !has("CHAR") && !has("CLOB") && !has("TEXT") &&
            (type.empty() || has("BLOB") || has("REAL") || has("FLOA") || has("DOUB"));
        schema.real_key = schema.real_key || real_or_none;
        schema.collated_key = schema.collated_key || coll != "BINARY";
        if (!schema.integer_key && !facts->without_rowid && !k->not_null) {
            return refuse(name, "primary key column '" + k->name +
                                    "' may be NULL (SQLite allows NULL keys in rowid tables), "
                                    "and NULL keys cannot identify rows across nodes; declare "
                                    "it NOT NULL");
        }
        schema.key.push_back(k->name);
        schema.key_types.push_back(k->type);
    }
    if (schema.integer_key) {
        schema.warnings.push_back(
            "table '" + name +
            "' has an INTEGER PRIMARY KEY: two nodes inserting the same id "
            "write the same row, and their values merge as concurrent updates. Prefer "
            "time-ordered 16-byte ids for new rows.");
    }
    auto unique = read_unique(db, name);
    if (!unique) {
        return unique.status();
    }
    schema.unique = std::move(*unique);
    if (schema.values.size() > 63) {
        return refuse(name, "it has " + std::to_string(schema.values.size()) +
                                " non-key columns; at most 63 are supported");
    }

    for (const auto& rule : spec.rules) {
        if (std::find(schema.key.begin(), schema.key.end(), rule.column) != schema.key.end()) {
            return refuse(name, "column '" + rule.column +
                                    "' is part of the primary key and cannot have a merge rule");
        }
        auto index = schema.value_index(rule.column);
        if (index < 0) {
            return Status(Code::unknown_column, "cannot sync table '" + name +
                                                    "': a merge rule names column '" + rule.column +
                                                    "', which the table lacks");
        }
        schema.values[static_cast<std::size_t>(index)].rule = rule.rule;
    }
    return schema;
}

} // namespace peerlite::schema
