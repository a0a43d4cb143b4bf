// Rows that break a constraint of their table once merged: set aside, the same way on
// every node (docs/design/constraints.md).
//
// A merge can make a row no single node wrote (one node moved a start, another the end)
// or a pair of rows no node ever held together (the same e-mail signed up on two nodes).
// Such a row cannot be in the table, and refusing the change would leave the nodes apart
// for good. Instead, whether a row is in its table or set aside is a function of the
// merged records alone, so every node that holds the same records holds the same table:
//   - a row whose values break a CHECK or NOT NULL constraint is set aside;
//   - of rows holding the same value of a UNIQUE index, the one created first (its life's
//     stamp: the insert that began its current life, then the key) stays, and the others
//     are set aside; a row set aside holds no value, so it keeps no other row out.
// That is the one arrangement in which every set-aside row meets a row that was created
// before it and stays: placing rows in that order gives it, whatever order changes
// arrive in, as long as every row set aside is tried again when something leaves.
#include <algorithm>

#include "store_impl.hpp"
#include "unique_holders.hpp"

namespace peerlite::store {

namespace {

using Key = std::vector<crdt::Value>;

bool is_constraint(int code) {
    return (code & 0xff) == SQLITE_CONSTRAINT;
}

} // namespace

Result<std::vector<std::vector<crdt::Value>>>
unique_holders(sqlite3* db, const schema::TableSchema& s, const std::vector<crdt::Value>& key,
               const std::vector<crdt::Value>& values) {
    auto value_of = [&](const std::string& column) -> const crdt::Value& {
        for (std::size_t i = 0; i < s.key.size(); ++i) {
            if (s.key[i] == column) {
                return key[i];
            }
        }
        return values[static_cast<std::size_t>(s.value_index(column))];
    };
    std::vector<Key> out;
    for (const auto& index : s.unique) {
        std::string where;
        std::vector<const crdt::Value*> bound;
        bool has_null = false;
        for (const auto& column : index) {
            where += (where.empty() ? "" : " AND ") + sql::quote(column) + " = ?" +
                     std::to_string(bound.size() + 1);
            bound.push_back(&value_of(column));
            has_null = has_null || bound.back()->is_null();
        }
        if (has_null) {
            continue; // NULLs are distinct in a UNIQUE index
        }
        auto stmt = sql::Stmt::prepare(db, "SELECT " + schema::key_list(s) + " FROM " +
                                               sql::quote(s.name) + " WHERE " + where);
        if (!stmt) {
            return stmt.status();
        }
        for (std::size_t i = 0; i < bound.size(); ++i) {
            stmt->bind(static_cast<int>(i) + 1, *bound[i]);
        }
        sql::Reset reset(*stmt);
        int rc;
        while ((rc = stmt->step()) == SQLITE_ROW) {
            Key other;
            for (std::size_t i = 0; i < s.key.size(); ++i) {
                other.push_back(stmt->column(static_cast<int>(i)));
            }
            if (other != key && std::find(out.begin(), out.end(), other) == out.end()) {
                out.push_back(std::move(other));
            }
        }
        if (rc != SQLITE_DONE) {
            return sql::error(db, "finding the rows of '" + s.name + "' holding a UNIQUE value");
        }
    }
    return out;
}

namespace {

// Which row keeps a UNIQUE value: the one whose current life began first.
struct Rank {
    crdt::Stamp created;
    Key key;
    friend bool operator<(const Rank& a, const Rank& b) {
        return std::tie(a.created, a.key) < std::tie(b.created, b.key);
    }
};

} // namespace

namespace {

// Every row set aside in `t`, with its values as the table has them now.
Result<std::vector<std::pair<Key, std::vector<crdt::Value>>>> all_aside(sqlite3* db,
                                                                        TableState& t) {
    std::vector<std::pair<Key, std::vector<crdt::Value>>> out;
    auto& all = t.aside_all;
    sql::Reset reset(all);
    auto nk = static_cast<int>(t.schema.key.size());
    int rc;
    while ((rc = all.step()) == SQLITE_ROW) {
        Key key;
        for (int i = 0; i < nk; ++i) {
            key.push_back(all.column(i));
        }
        auto values = decode_values(all.column_blob(nk));
        // A column added since it was set aside holds its default, as in the table.
        for (auto i = values.size(); i < t.schema.values.size(); ++i) {
            values.push_back(t.defaults[i]);
        }
        values.resize(t.schema.values.size());
        out.emplace_back(std::move(key), std::move(values));
    }
    if (rc != SQLITE_DONE) {
        return sql::error(db, "reading the rows set aside from '" + t.schema.name + "'");
    }
    t.aside_rows = static_cast<std::int64_t>(out.size());
    return out;
}

} // namespace

Result<std::optional<std::vector<crdt::Value>>>
Store::Impl::aside_values(TableState& t, const std::vector<crdt::Value>& key) {
    if (t.aside_rows < 0) {
        if (auto all = all_aside(db.get(), t); !all) {
            return all.status();
        }
    }
    if (t.aside_rows == 0) {
        return std::optional<std::vector<crdt::Value>>();
    }
    sql::Reset reset(t.aside_select);
    TableState::bind_key(t.aside_select, 1, key);
    int rc = t.aside_select.step();
    if (rc == SQLITE_DONE) {
        return std::optional<std::vector<crdt::Value>>();
    }
    if (rc != SQLITE_ROW) {
        return sql::error(db.get(), "reading a row set aside from '" + t.schema.name + "'");
    }
    auto values = decode_values(t.aside_select.column_blob(0));
    for (auto i = values.size(); i < t.schema.values.size(); ++i) {
        values.push_back(t.defaults[i]);
    }
    values.resize(t.schema.values.size());
    return std::optional<std::vector<crdt::Value>>(std::move(values));
}

Status Store::Impl::delete_aside(TableState& t, const std::vector<crdt::Value>& key) {
    TableState::bind_key(t.aside_delete, 1, key);
    if (auto st =
            t.aside_delete.run("taking a row of '" + t.schema.name + "' out of its aside table");
        !st.ok()) {
        return st;
    }
    if (sqlite3_changes(db.get()) > 0 && t.aside_rows > 0) {
        --t.aside_rows;
    }
    return Status::success();
}

namespace {

// Moves a row out of its table into the aside table, with the constraint it broke.
Status set_aside(TableState& t, const Key& key, const std::vector<crdt::Value>& values,
                 const std::string& reason) {
    auto& del = t.user_delete;
    TableState::bind_key(del, 1, key);
    if (auto st = del.run("setting a row of '" + t.schema.name + "' aside"); !st.ok()) {
        return st;
    }
    auto& put = t.aside_put;
    TableState::bind_key(put, 1, key);
    auto encoded = encode_values(values);
    put.bind_blob(static_cast<int>(key.size()) + 1, encoded.data(), encoded.size());
    put.bind_text(static_cast<int>(key.size()) + 2, reason);
    if (auto st = put.run("setting a row of '" + t.schema.name + "' aside"); !st.ok()) {
        return st;
    }
    t.aside_rows = -1; // counted again when next needed
    return Status::success();
}

Result<Rank> rank_of(Store::Impl& s, TableState& t, const Key& key) {
    auto record = s.load_record(t, key);
    if (!record) {
        return record.status();
    }
    return Rank{record->life.stamp, key};
}

} // namespace

Status Store::Impl::place_row(TableState& t, const std::vector<crdt::Value>& key,
                              std::vector<crdt::Value> values) {
    auto was_aside = aside_values(t, key);
    if (!was_aside) {
        return was_aside.status();
    }
    auto me = rank_of(*this, t, key);
    if (!me) {
        return me.status();
    }
    // Each turn sets at least one row aside; a row meets at most one per UNIQUE value.
    for (int turn = 0; turn < 64; ++turn) {
        auto& up = t.user_upsert;
        TableState::bind_key(up, 1, key);
        for (std::size_t i = 0; i < values.size(); ++i) {
            up.bind(static_cast<int>(key.size() + 1 + i), values[i]);
        }
        int rc;
        {
            sql::Reset reset(up);
            rc = up.step();
        }
        if (rc == SQLITE_DONE) {
            return *was_aside ? delete_aside(t, key) : Status::success();
        }
        int code = sqlite3_extended_errcode(db.get());
        std::string message = sqlite3_errmsg(db.get());
        if (!is_constraint(code)) {
            return sql::error(db.get(), "writing a row of '" + t.schema.name + "'");
        }
        if (code != SQLITE_CONSTRAINT_UNIQUE) {
            return set_aside(t, key, values, message); // CHECK, NOT NULL, ...
        }
        auto others = unique_holders(db.get(), t.schema, key, values);
        if (!others) {
            return others.status();
        }
        if (others->empty()) {
            return set_aside(t, key, values, message);
        }
        std::vector<std::pair<Key, std::vector<crdt::Value>>> displaced;
        for (const auto& other : *others) {
            auto rank = rank_of(*this, t, other);
            if (!rank) {
                return rank.status();
            }
            if (*rank < *me) {
                return set_aside(t, key, values, message); // the other was first
            }
            auto row = read_user_row(t, other);
            if (!row) {
                return row.status();
            }
            if (*row) {
                displaced.emplace_back(other, std::move(**row));
            }
        }
        if (beside_local_writes && !displaced.empty()) {
            // Their local writes may be in memory or in the log still: setting the rows
            // aside would lose them. The apply is done again with them in the file.
            aside_needs_capture = true;
            return Status(Code::busy, "rows to set aside in '" + t.schema.name +
                                          "' may have local writes not in the file yet");
        }
        for (const auto& [other, row] : displaced) {
            if (auto st = set_aside(t, other, row, message); !st.ok()) {
                return st;
            }
        }
    }
    return Status(Code::limit_exceeded, "placing a row of '" + t.schema.name +
                                            "' kept meeting rows holding its UNIQUE values");
}

Status Store::Impl::retry_aside() {
    for (auto& [name, t] : tables) {
        if (t.aside_rows == 0) {
            continue; // the common case: known to be none
        }
        for (int pass = 0; pass < 8; ++pass) {
            auto read = all_aside(db.get(), t);
            if (!read) {
                return read.status();
            }
            if (read->empty()) {
                break;
            }
            std::vector<std::pair<Rank, std::vector<crdt::Value>>> rows;
            for (auto& [key, values] : *read) {
                auto record = load_record(t, key);
                if (!record) {
                    return record.status();
                }
                auto in_table = read_user_row(t, key);
                if (!in_table) {
                    return in_table.status();
                }
                if (!record->life.life.exists() || *in_table) {
                    // Deleted since, or written again by an app on this node (its values
                    // were captured from the table): nothing to keep aside any more.
                    if (auto st = delete_aside(t, key); !st.ok()) {
                        return st;
                    }
                    continue;
                }
                rows.emplace_back(Rank{record->life.stamp, std::move(key)}, std::move(values));
            }
            std::sort(rows.begin(), rows.end(),
                      [](const auto& a, const auto& b) { return a.first < b.first; });
            bool placed = false;
            for (auto& [rank, values] : rows) {
                auto still = aside_values(t, rank.key);
                if (!still) {
                    return still.status();
                }
                if (!*still) {
                    continue; // put back by an earlier one's turn
                }
                if (auto st = place_row(t, rank.key, values); !st.ok()) {
                    return st;
                }
                auto after = aside_values(t, rank.key);
                if (!after) {
                    return after.status();
                }
                placed = placed || !*after;
            }
            if (!placed) {
                break;
            }
        }
    }
    return Status::success();
}

} // namespace peerlite::store
