#include "capture_sql.hpp"

#include <string_view>

#include "../sql/sqlite.hpp"

namespace peerlite::schema {

using sql::quote;

std::string log_table(const std::string& table) {
    return "_peerlite_log_" + table;
}
std::string rows_table(const std::string& table) {
    return "_peerlite_rows_" + table;
}
std::string aside_table(const std::string& table) {
    return "_peerlite_aside_" + table;
}

namespace {

// Key columns in the metadata tables are named k0, k1, ... so user column names never
// clash with ours; they keep no declared type, so values keep their storage class.
std::string meta_keys(const TableSchema& t, const std::string& letter = "k") {
    std::string out;
    for (std::size_t i = 0; i < t.key.size(); ++i) {
        out += (i ? ", " : "") + letter + std::to_string(i);
    }
    return out;
}

std::string row_keys(const TableSchema& t, const std::string& row) {
    std::string out;
    for (std::size_t i = 0; i < t.key.size(); ++i) {
        out += (i ? ", " : "") + row + "." + quote(t.key[i]);
    }
    return out;
}

std::string trigger(const std::string& kind, const std::string& table) {
    return quote("_peerlite_" + kind + "_" + table);
}

} // namespace

std::string key_list(const TableSchema& t) {
    std::string out;
    for (std::size_t i = 0; i < t.key.size(); ++i) {
        out += (i ? ", " : "") + quote(t.key[i]);
    }
    return out;
}

std::string value_list(const TableSchema& t) {
    std::string out;
    for (std::size_t i = 0; i < t.values.size(); ++i) {
        out += (i ? ", " : "") + quote(t.values[i].name);
    }
    return out;
}

std::string key_match(const TableSchema& t, int first) {
    std::string out;
    for (std::size_t i = 0; i < t.key.size(); ++i) {
        out += (i ? " AND " : "") + quote(t.key[i]) + " = ?" +
               std::to_string(first + static_cast<int>(i));
    }
    return out;
}

namespace {

// Key columns declared as the records declare theirs.
std::string typed_meta_keys(const TableSchema& t) {
    std::string out;
    for (std::size_t i = 0; i < t.key.size(); ++i) {
        out += "k" + std::to_string(i) +
               (t.key_types[i].empty() ? "" : " " + quote(t.key_types[i])) + ", ";
    }
    return out;
}

} // namespace

std::string create_aside_sql(const TableSchema& t) {
    auto table = "CREATE TABLE IF NOT EXISTS " + quote(aside_table(t.name)) + "(";
    if (t.integer_key) {
        return table + "k0 INTEGER PRIMARY KEY, vals BLOB NOT NULL, reason TEXT NOT NULL);\n";
    }
    return table + typed_meta_keys(t) + "vals BLOB NOT NULL, reason TEXT NOT NULL, PRIMARY KEY(" +
           meta_keys(t) + ")) WITHOUT ROWID;\n";
}

std::string create_table_metadata_sql(const TableSchema& t) {
    // No constraints and no declared types: the triggers are the only writers, and every
    // byte and check here is paid on the application's write path.
    std::string log = "CREATE TABLE IF NOT EXISTS " + quote(log_table(t.name)) +
                      "(seq INTEGER PRIMARY KEY, op, cols, at, " + meta_keys(t) + ", " +
                      meta_keys(t, "o") + ");\n";
    // One record per row ever synced (tombstones included). A single INTEGER key is the
    // rowid itself; other keys make a WITHOUT ROWID table keyed like the user's, with the
    // key columns declared with the user's types (same affinity, same stored values).
    std::string rows = "CREATE TABLE IF NOT EXISTS " + quote(rows_table(t.name)) + "(";
    if (t.integer_key) {
        rows += "k0 INTEGER PRIMARY KEY, rec BLOB NOT NULL, vmax INTEGER NOT NULL);\n";
    } else {
        rows += typed_meta_keys(t) + "rec BLOB NOT NULL, vmax INTEGER NOT NULL, PRIMARY KEY(" +
                meta_keys(t) + ")) WITHOUT ROWID;\n";
    }
    rows += "CREATE INDEX IF NOT EXISTS " + quote(rows_table(t.name) + "_vmax") + " ON " +
            quote(rows_table(t.name)) + "(vmax);\n";
    return log + rows + create_aside_sql(t);
}

std::string drop_triggers_sql(const std::string& table) {
    std::string out;
    for (const char* kind : {"ins", "upd", "del", "gone", "regone"}) {
        out += "DROP TRIGGER IF EXISTS " + trigger(kind, table) + ";\n";
    }
    return out;
}

std::vector<std::string> trigger_names(const TableSchema& t) {
    std::vector<std::string> out;
    for (const char* kind : {"ins", "upd", "del", "gone", "regone"}) {
        if (t.unique.empty() && std::string_view(kind).find("gone") != std::string_view::npos) {
            continue;
        }
        out.push_back("_peerlite_" + std::string(kind) + "_" + t.name);
    }
    return out;
}

std::string create_triggers_sql(const TableSchema& t) {
    auto log = quote(log_table(t.name));
    auto table = quote(t.name);
    std::string same_key;
    for (std::size_t i = 0; i < t.key.size(); ++i) {
        same_key += (i ? " AND " : "") + std::string("NEW.") + quote(t.key[i]) + " IS OLD." +
                    quote(t.key[i]);
    }
    // Bit i is set when value column i changed; "IS NOT" treats NULLs as values, and
    // BINARY keeps a NOCASE column's 'a' -> 'A' from looking unchanged.
    std::string mask = "0";
    for (std::size_t i = 0; i < t.values.size(); ++i) {
        auto c = quote(t.values[i].name);
        mask +=
            " | ((NEW." + c + " IS NOT OLD." + c + " COLLATE BINARY) << " + std::to_string(i) + ")";
    }
    // The write's wall time, so a write picked up late (no peerlite process was running)
    // is not stamped with the pickup time. julianday() without arguments skips parsing
    // 'now'; unixepoch() measured no cheaper and has only whole seconds.
    const std::string now = "julianday()";
    std::string out = drop_triggers_sql(t.name);
    out += "CREATE TRIGGER " + trigger("ins", t.name) + " AFTER INSERT ON " + table +
           " BEGIN INSERT INTO " + log + "(op, cols, at, " + meta_keys(t) + ") VALUES (1, -1, " +
           now + ", " + row_keys(t, "NEW") + "); END;\n";
    // One trigger for every UPDATE (a WHEN clause per trigger costs more than this CASE).
    // The old key is logged only when the key changed: that is the old row deleted and
    // a new row inserted.
    std::string old_keys;
    for (std::size_t i = 0; i < t.key.size(); ++i) {
        old_keys += ", CASE WHEN " + same_key + " THEN NULL ELSE OLD." + quote(t.key[i]) + " END";
    }
    out += "CREATE TRIGGER " + trigger("upd", t.name) + " AFTER UPDATE ON " + table +
           " BEGIN INSERT INTO " + log + "(op, cols, at, " + meta_keys(t) + ", " +
           meta_keys(t, "o") + ") VALUES (2, " + mask + ", " + now + ", " + row_keys(t, "NEW") +
           old_keys + "); END;\n";
    out += "CREATE TRIGGER " + trigger("del", t.name) + " AFTER DELETE ON " + table +
           " BEGIN INSERT INTO " + log + "(op, cols, at, " + meta_keys(t) + ") VALUES (3, 0, " +
           now + ", " + row_keys(t, "OLD") + "); END;\n";
    if (t.unique.empty()) {
        return out;
    }
    // INSERT OR REPLACE and UPDATE OR REPLACE delete the rows holding a UNIQUE value the
    // new row takes without firing the delete trigger (unless recursive_triggers is on).
    // Before the write, every other row holding one of the new row's UNIQUE values is
    // logged as maybe removed: a plain INSERT that fails takes the entry back with it; one
    // that replaced nothing (OR IGNORE) leaves the row, and the entry is dropped when it is
    // picked up. NULLs are never equal, as in a UNIQUE index.
    std::string holders, unique_columns;
    for (std::size_t u = 0; u < t.unique.size(); ++u) {
        std::string all;
        for (std::size_t i = 0; i < t.unique[u].size(); ++i) {
            auto c = quote(t.unique[u][i]);
            all += (i ? " AND " : "") + c + " = NEW." + c;
            if (unique_columns.find(c) == std::string::npos) {
                unique_columns += (unique_columns.empty() ? "" : ", ") + c;
            }
        }
        holders += (u ? " OR (" : "(") + all + ")";
    }
    auto log_holders = [&](const std::string& self) {
        std::string other;
        for (std::size_t i = 0; i < t.key.size(); ++i) {
            other += (i ? " AND " : "") + quote(t.key[i]) + " IS " + self + "." + quote(t.key[i]);
        }
        return " BEGIN INSERT INTO " + log + "(op, cols, at, " + meta_keys(t) + ") SELECT 5, 0, " +
               now + ", " + key_list(t) + " FROM " + table + " WHERE (" + holders + ") AND NOT (" +
               other + "); END;\n";
    };
    out += "CREATE TRIGGER " + trigger("gone", t.name) + " BEFORE INSERT ON " + table +
           log_holders("NEW");
    out += "CREATE TRIGGER " + trigger("regone", t.name) + " BEFORE UPDATE OF " + unique_columns +
           " ON " + table + log_holders("OLD");
    return out;
}

} // namespace peerlite::schema
