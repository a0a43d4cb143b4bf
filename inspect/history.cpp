// What one node knows of one row: Inspector::history().
#include <algorithm>
#include <utility>

#include <peerlite/inspect/inspector.hpp>

#include "../schema/capture_sql.hpp"
#include "../store/conflict_log.hpp"
#include "inspector_impl.hpp"

namespace peerlite::store {

namespace {

// Capture-log entries for `key` after entry `after` (the last one picked up).
Result<std::size_t> pending_entries(sqlite3* db, const TableInfo& t,
                                    const std::vector<crdt::Value>& key, std::int64_t after) {
    // Entries a Writer packed into one batch row are not attributed to keys here.
    auto stmt =
        sql::Stmt::prepare(db, "SELECT count(*) FROM " + sql::quote(schema::log_table(t.name)) +
                                   " WHERE " + meta_key_match(key.size()) + " AND op <> 4" +
                                   " AND seq > ?" + std::to_string(key.size() + 1));
    if (!stmt) {
        return stmt.status();
    }
    sql::Reset reset(*stmt);
    for (std::size_t i = 0; i < key.size(); ++i) {
        stmt->bind(static_cast<int>(i) + 1, key[i]);
    }
    stmt->bind_int(static_cast<int>(key.size()) + 1, after);
    if (stmt->step() != SQLITE_ROW) {
        return sql::error(db, "reading the capture log of '" + t.name + "'");
    }
    return static_cast<std::size_t>(stmt->column_int(0));
}

// What a daemon picked up of a table and has not written into the file yet.
struct PickedUpRow {
    std::int64_t through = -1;       // the table's last capture-log entry picked up
    std::optional<RowRecord> record; // the row's record as picked up, if it was
};

// From the journal, if it speaks for the file as it is (call inside a ReadTx).
Result<PickedUpRow> picked_up_row(Inspector::Impl& s, const PickupJournal::Contents& journal,
                                  const TableInfo& t, const std::vector<crdt::Value>& key) {
    PickedUpRow out;
    if (journal.rounds.empty()) {
        return out;
    }
    auto rounds = journal.rounds_for(s.db.get(), s.self.to_string());
    if (!rounds) {
        return rounds.status();
    }
    for (const auto& round : *rounds) {
        for (const auto& through : round.through) {
            if (through.table == t.name) {
                out.through = std::max(out.through, through.seq);
            }
        }
        auto rows = decode(round.rows, PickupJournal::decode_limits());
        if (!rows) {
            return Status(Code::corruption,
                          s.path + ".peerlite.journal: " + rows.status().message());
        }
        for (const auto& change : rows->rows) {
            if (change.table != t.name || change.key != key) {
                continue;
            }
            out.record = record_from_change(change, [&](std::string_view name) {
                auto col = t.column_index(name);
                return col < 0 ? std::nullopt
                               : std::optional<ColumnRef>(
                                     ColumnRef{col, t.columns[static_cast<std::size_t>(col)].rule});
            });
        }
    }
    return out;
}

CellHistory cell_history(const TableInfo& t, std::size_t i, const RowHistory& row,
                         const std::optional<RowRecord>& rec,
                         const std::optional<std::vector<crdt::Value>>& values) {
    CellHistory c;
    c.column = t.columns[i];
    if (values) {
        c.value = (*values)[i];
    }
    if (!rec) {
        return c;
    }
    auto col = static_cast<int>(i);
    for (const auto& e : rec->cells) {
        if (e.column == col && e.write.life.value() == row.life) {
            c.written = e.write.stamp;
        }
    }
    for (const auto& e : rec->counters) {
        if (e.column == col && e.write.life.value() == row.life) {
            c.contributions.push_back({e.write.stamp, e.write.total});
        }
    }
    return c;
}

} // namespace

Result<RowHistory> Inspector::history(const TableInfo& t, const std::vector<crdt::Value>& key) {
    auto& s = *impl_;
    // The journal before the snapshot: a round read after it could describe writes the
    // snapshot does not show.
    std::optional<PickupJournal::View> own;
    if (!s.held) {
        auto view = PickupJournal::read_held(s.path, false);
        if (!view) {
            return view.status();
        }
        own.emplace(std::move(*view));
    }
    const auto& journal = s.held ? s.held->contents : own->contents;
    auto tx = ReadTx::begin(s.db.get());
    if (!tx) {
        return tx.status();
    }
    auto picked = picked_up_row(s, journal, t, key);
    if (!picked) {
        return picked.status();
    }
    auto rec = s.record(t, key);
    auto values = s.user_row(t, key);
    auto pending = pending_entries(s.db.get(), t, key, picked->through);
    if (!rec || !values || !pending) {
        return !rec ? rec.status() : !values ? values.status() : pending.status();
    }
    bool picked_up = picked->record.has_value();
    if (picked_up) {
        *rec = std::move(picked->record);
    }
    own.reset(); // the snapshot is taken: a daemon may go on
    RowHistory row;
    row.key = key;
    row.known = rec->has_value();
    row.exists = values->has_value();
    row.pending = *pending;
    row.picked_up = picked_up;
    if (!row.known && !row.exists && row.pending == 0) {
        return Status(Code::not_found, "table '" + t.name + "' has no row with key " +
                                           format_key(key) + ", and peerlite knows of none");
    }
    if (*rec) {
        row.life = (*rec)->life.life.value();
        row.life_stamp = (*rec)->life.stamp;
    }
    ConflictQuery query;
    query.table = t.name;
    query.key = key;
    auto conflicts = read_conflicts(s.db.get(), query);
    if (!conflicts) {
        return conflicts.status();
    }
    for (std::size_t i = 0; i < t.columns.size(); ++i) {
        row.columns.push_back(cell_history(t, i, row, *rec, *values));
        for (const auto& c : *conflicts) {
            if (c.column == t.columns[i].name) {
                row.columns.back().conflicts.push_back(c);
            }
        }
    }
    return row;
}

Result<Inspector::PickUpHold> Inspector::hold_pick_ups(std::chrono::milliseconds wait) {
    auto view = PickupJournal::read_held(impl_->path, true, wait);
    if (!view) {
        return view.status();
    }
    impl_->held.emplace(std::move(*view));
    return PickUpHold(impl_.get());
}

Inspector::PickUpHold::PickUpHold(PickUpHold&& other) noexcept
    : impl_(std::exchange(other.impl_, nullptr)) {}

Inspector::PickUpHold::~PickUpHold() {
    if (impl_ != nullptr) {
        impl_->held.reset();
    }
}

} // namespace peerlite::store
