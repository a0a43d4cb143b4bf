#include <algorithm>

#include "store_impl.hpp"

namespace peerlite::store {

using sql::quote;

void TableState::bind_key(sql::Stmt& stmt, int first, const std::vector<crdt::Value>& key) {
    for (std::size_t i = 0; i < key.size(); ++i) {
        stmt.bind(first + static_cast<int>(i), key[i]);
    }
}

Status TableState::prepare(sqlite3* db) {
    const auto& s = schema;
    auto table = quote(s.name);
    auto keys = schema::key_list(s);
    auto values = schema::value_list(s);
    auto nkeys = static_cast<int>(s.key.size());
    auto nvalues = static_cast<int>(s.values.size());
    std::string meta_keys, old_keys, scan_keys, meta_match, join;
    for (int i = 0; i < nkeys; ++i) {
        auto k = "k" + std::to_string(i);
        meta_keys += (i ? ", " : "") + k;
        old_keys += ", o" + std::to_string(i);
        scan_keys += (i ? ", r." : "r.") + k;
        meta_match += (i ? " AND " : "") + k + " = ?" + std::to_string(i + 1);
        join += (i ? " AND " : "") + std::string("t.") + quote(s.key[static_cast<std::size_t>(i)]) +
                " = r." + k;
    }
    auto placeholders = [](int from, int n) {
        std::string out;
        for (int i = 0; i < n; ++i) {
            out += (i ? ", ?" : "?") + std::to_string(from + i);
        }
        return out;
    };
    std::string all_columns = keys + (nvalues ? ", " + values : "");
    std::string upsert = "INSERT INTO " + table + "(" + all_columns + ") VALUES (" +
                         placeholders(1, nkeys + nvalues) + ") ON CONFLICT(" + keys + ") DO ";
    std::string set_all, set_masked, tvalues;
    for (int i = 0; i < nvalues; ++i) {
        auto c = quote(s.values[static_cast<std::size_t>(i)].name);
        set_all += (i ? ", " : "") + c + " = excluded." + c;
        set_masked += (i ? ", " : "") + c + " = iif((?1 >> " + std::to_string(i) + ") & 1, ?" +
                      std::to_string(i + 2) + ", " + c + ")";
        tvalues += ", t." + c;
    }
    upsert += nvalues ? "UPDATE SET " + set_all : "NOTHING";

    // Records in (vmax, key) order, so a page can end between any two rows (the vmax
    // index holds the key too, so this order needs no sort).
    // A row set aside (constraints.cpp) has its values in the aside table: a.vals last.
    std::string aside_join;
    for (int i = 0; i < nkeys; ++i) {
        auto k = "k" + std::to_string(i);
        aside_join += (i ? " AND a." : "a.") + k + " = r." + k;
    }
    std::string scan_select = "SELECT " + scan_keys + ", r.rec, r.vmax, t." + quote(s.key[0]) +
                              " IS NOT NULL" + tvalues + ", a.vals FROM " +
                              quote(schema::rows_table(s.name)) + " r LEFT JOIN " + table +
                              " t ON " + join + " LEFT JOIN " + quote(schema::aside_table(s.name)) +
                              " a ON " + aside_join + " WHERE ";
    std::string scan_order = " ORDER BY r.vmax, " + scan_keys + " LIMIT ?2";
    struct Spec {
        sql::Stmt* stmt;
        std::string text;
    };
    std::vector<Spec> specs = {
        {&log_select, "SELECT seq, op, cols, at, " + meta_keys + old_keys + " FROM " +
                          quote(schema::log_table(s.name)) +
                          " WHERE seq > ?2 ORDER BY seq LIMIT ?1"},
        {&log_delete, "DELETE FROM " + quote(schema::log_table(s.name)) + " WHERE seq <= ?1"},
        {&user_select, "SELECT " + (nvalues ? values : "1") + " FROM " + table + " WHERE " +
                           schema::key_match(s)},
        {&user_upsert, upsert},
        {&user_delete, "DELETE FROM " + table + " WHERE " + schema::key_match(s)},
        {&user_respell, "UPDATE " + table + " SET (" + keys + ") = (" + placeholders(1, nkeys) +
                            ") WHERE " + schema::key_match(s)},
        {&rec_select,
         "SELECT rec, vmax FROM " + quote(schema::rows_table(s.name)) + " WHERE " + meta_match},
        {&rec_update, "UPDATE " + quote(schema::rows_table(s.name)) + " SET rec = ?" +
                          std::to_string(nkeys + 1) + ", vmax = ?" + std::to_string(nkeys + 2) +
                          " WHERE " + meta_match},
        {&rec_insert, "INSERT INTO " + quote(schema::rows_table(s.name)) + "(" + meta_keys +
                          ", rec, vmax) VALUES (" + placeholders(1, nkeys + 2) + ")"},
        {&scan, scan_select + "r.vmax > ?1" + scan_order},
        {&aside_select,
         "SELECT vals FROM " + quote(schema::aside_table(s.name)) + " WHERE " + meta_match},
        {&aside_put, "INSERT OR REPLACE INTO " + quote(schema::aside_table(s.name)) + "(" +
                         meta_keys + ", vals, reason) VALUES (" + placeholders(1, nkeys + 2) + ")"},
        {&aside_delete,
         "DELETE FROM " + quote(schema::aside_table(s.name)) + " WHERE " + meta_match},
        {&aside_all, "SELECT " + meta_keys + ", vals, reason FROM " +
                         quote(schema::aside_table(s.name)) + " ORDER BY " + meta_keys},
        {&scan_after, scan_select + "(r.vmax, " + scan_keys + ") > (?1, " + placeholders(3, nkeys) +
                          ")" + scan_order},
    };
    if (nvalues > 0) {
        specs.push_back({&user_update, "UPDATE " + table + " SET " + set_masked + " WHERE " +
                                           schema::key_match(s, nvalues + 2)});
    }
    // Files synced before rows were set aside have no aside table yet.
    if (auto st = sql::exec(db, schema::create_aside_sql(s)); !st.ok()) {
        return st;
    }
    aside_rows = -1;
    for (auto& spec : specs) {
        auto stmt = sql::Stmt::prepare(db, spec.text);
        if (!stmt) {
            return stmt.status();
        }
        *spec.stmt = std::move(*stmt);
    }
    std::vector<int> by_name(s.values.size());
    for (std::size_t i = 0; i < by_name.size(); ++i) {
        by_name[i] = static_cast<int>(i);
    }
    std::sort(by_name.begin(), by_name.end(), [&](int a, int b) {
        return s.values[static_cast<std::size_t>(a)].name <
               s.values[static_cast<std::size_t>(b)].name;
    });
    name_rank.assign(s.values.size(), 0);
    names_in_order = true;
    for (std::size_t r = 0; r < by_name.size(); ++r) {
        name_rank[static_cast<std::size_t>(by_name[r])] = static_cast<int>(r);
        names_in_order = names_in_order && by_name[r] == static_cast<int>(r);
    }
    return load_defaults(db);
}

Status TableState::respell(const std::vector<crdt::Value>& key) {
    bind_key(user_respell, 1, key);
    return user_respell.run("writing a key of '" + schema.name + "' in its one spelling");
}

// A constant DEFAULT ('none', 7, -1.5, x'00') is exact. An expression (CURRENT_TIMESTAMP,
// random()) is evaluated here, once: SQLite would evaluate it per row and per node, which
// no two nodes could agree on anyway (docs/design/store.md).
Status TableState::load_defaults(sqlite3* db) {
    defaults.assign(schema.values.size(), crdt::Value());
    auto info = sql::Stmt::prepare(db, "SELECT name, dflt_value FROM pragma_table_info(?1)");
    if (!info) {
        return info.status();
    }
    sql::Reset reset(*info);
    info->bind_text(1, schema.name);
    while (info->step() == SQLITE_ROW) {
        auto column = schema.value_index(info->column_text(0));
        auto dflt = info->column(1);
        if (column < 0 || dflt.storage_class() != crdt::StorageClass::text) {
            continue;
        }
        auto eval = sql::Stmt::prepare(db, "SELECT " + dflt.as_text());
        if (!eval) {
            return Status(eval.status().code(),
                          "table '" + schema.name + "', column '" + info->column_text(0) +
                              "': cannot evaluate its DEFAULT: " + eval.status().message());
        }
        sql::Reset reset_eval(*eval);
        if (eval->step() == SQLITE_ROW) {
            defaults[static_cast<std::size_t>(column)] = eval->column(0);
        }
    }
    return Status::success();
}

} // namespace peerlite::store
