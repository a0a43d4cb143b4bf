// Capture pickup: turns the rows triggers appended to each table's log into stamped
// changes in the row records. Runs inside the caller's write transaction. Long because
// pick-up is one pipeline (read the log, stamp, fold into records, journal, write back)
// whose stages share the picked-up rows in memory; row_record.cpp and pickup_journal.cpp
// hold their formats.
#include <map>
#include <set>
#include <utility>

#include <peerlite/store/store.hpp>
#include <peerlite/wire/binary_codec.hpp>

#include "store_impl.hpp"

namespace peerlite::store {

Result<std::optional<std::vector<crdt::Value>>> read_user_row(TableState& t,
                                                              const std::vector<crdt::Value>& key) {
    auto& stmt = t.user_select;
    sql::Reset reset(stmt);
    TableState::bind_key(stmt, 1, key);
    int rc = stmt.step();
    if (rc == SQLITE_DONE) {
        return std::optional<std::vector<crdt::Value>>();
    }
    if (rc != SQLITE_ROW) {
        return sql::error(stmt.db(), "reading a row of '" + t.schema.name + "'");
    }
    std::vector<crdt::Value> values;
    values.reserve(t.schema.values.size());
    for (std::size_t i = 0; i < t.schema.values.size(); ++i) {
        values.push_back(stmt.column(static_cast<int>(i)));
    }
    return std::optional(std::move(values));
}

namespace {

constexpr std::int64_t kLogBatch = 5000;

struct LogEntry {
    std::int64_t seq;
    schema::LogOp op;
    std::uint64_t columns; // bit i: value column i changed
    std::chrono::milliseconds at;
    std::vector<crdt::Value> key;     // canonical (schema::canonical_key())
    std::vector<crdt::Value> old_key; // set when an UPDATE changed the primary key
    bool respell = false;             // the table spells `key` otherwise
};

// Writes the winner back into the user table after a local write lost under max/min, or
// the sum after a counter refused a value.
Status restore_cell(TableState& t, const std::vector<crdt::Value>& key, int column,
                    const crdt::Value& value) {
    auto& stmt = t.user_update;
    sql::Reset reset(stmt);
    auto n = static_cast<int>(t.schema.values.size());
    stmt.bind_int(1, std::int64_t{1} << column);
    stmt.bind(column + 2, value);
    TableState::bind_key(stmt, n + 2, key);
    return stmt.run("restoring a max/min winner or counter sum in '" + t.schema.name + "'");
}

using Restores = std::map<std::vector<crdt::Value>, std::map<int, crdt::Value>>;

// Undoes the local max/min writes that lost and the counter values refused. Deferred until
// every log entry is read: later entries read the row's values, and a re-insert read after an
// undo would otherwise take the undone life's winner into its new life (regression test in
// tests/store/capture_test.cpp).
Status write_back(TableState& t, Restores& restores) {
    for (const auto& [key, columns] : restores) {
        for (const auto& [col, value] : columns) {
            if (auto st = restore_cell(t, key, col, value); !st.ok()) {
                return st;
            }
        }
    }
    restores.clear();
    return Status::success();
}

// Turns log entries into stamped changes in row records: in the file (`picked` null), or
// into records kept in memory (a pick-up, docs/design/neighbour.md), read from there first.
class Capturer {
public:
    Capturer(Store::Impl& s, TableState& t, PickedUp::Table* picked)
        : s_(s), t_(t), picked_(picked), restores_(picked ? picked->restores : own_restores_) {}

    Status finish() { return picked_ ? Status::success() : write_back(t_, restores_); }

    // One log entry as the triggers wrote it: an UPDATE that changed the primary key is
    // the old row deleted and the new one inserted.
    Status logged(LogEntry e, CaptureStats& stats) {
        if (!e.old_key.empty()) {
            LogEntry removed{e.seq, schema::LogOp::remove, 0, e.at, e.old_key, {}};
            if (auto st = entry(removed, stats); !st.ok()) {
                return st;
            }
            e.op = schema::LogOp::insert;
        }
        return entry(e, stats);
    }

    Status entry(const LogEntry& e, CaptureStats& stats) {
        if (e.op == schema::LogOp::maybe_removed) {
            // A row holding a UNIQUE value a later write took: deleted by REPLACE if it
            // is gone now (and not set aside by this node, which is no delete).
            auto row = read_user_row(t_, e.key);
            if (!row) {
                return row.status();
            }
            auto aside = row->has_value() ? Result<std::optional<std::vector<crdt::Value>>>(
                                                std::optional<std::vector<crdt::Value>>())
                                          : s_.aside_values(t_, e.key);
            if (!aside) {
                return aside.status();
            }
            if (row->has_value() || aside->has_value()) {
                return Status::success();
            }
            auto removed = e;
            removed.op = schema::LogOp::remove;
            return entry(removed, stats);
        }
        auto record = load(e.key);
        if (!record) {
            return record.status();
        }
        auto& r = *record;
        crdt::Stamp stamp{s_.clock.now_at(e.at), s_.self};
        if (e.op == schema::LogOp::remove) {
            if (!r.life.life.exists()) {
                return Status::success();
            }
            touch(e.key, r);
            r.life = crdt::RowWrite{r.life.life.deleted(), stamp};
            r.cells.clear(); // writes to a dead life never show again
            r.counters.clear();
            restores_.erase(e.key);
            ++stats.column_changes;
            return save(e.key, std::move(r));
        }
        auto row = read_user_row(t_, e.key);
        if (!row) {
            return row.status();
        }
        if (!row->has_value()) {
            return Status::success(); // deleted again before pickup: a later entry says so
        }
        touch(e.key, r);
        auto columns = e.columns;
        bool new_life = !r.life.life.exists();
        if (new_life) {
            r.life = crdt::RowWrite{r.life.life.inserted(), stamp};
            columns = ~std::uint64_t{0};
            r.cells.clear();
            r.counters.clear();
            restores_.erase(e.key); // the new life's values are the ones in the row now
        } else if (e.op == schema::LogOp::insert) {
            columns = ~std::uint64_t{0}; // INSERT OR REPLACE over a live row rewrites it all
        }
        for (std::size_t i = 0; i < t_.schema.values.size(); ++i) {
            if (((columns >> i) & 1) == 0) {
                continue;
            }
            auto st = column(r, e.key, static_cast<int>(i), (**row)[i], stamp, new_life, stats);
            if (!st.ok()) {
                return st;
            }
        }
        if (e.respell && !picked_) { // picked-up rows are respelled when written
            if (auto st = t_.respell(e.key); !st.ok()) {
                return st;
            }
        }
        return save(e.key, std::move(r));
    }

private:
    Result<RowRecord> load(const std::vector<crdt::Value>& key) {
        if (picked_) {
            if (auto it = picked_->rows.find(key); it != picked_->rows.end()) {
                return it->second;
            }
        }
        return s_.load_record(t_, key);
    }
    // Records picked up get their stored hash when they are written (flush_picked_up).
    void touch(const std::vector<crdt::Value>& key, RowRecord& r) {
        if (!picked_) {
            Store::Impl::before_change(t_, key, r);
        }
    }
    Status save(const std::vector<crdt::Value>& key, RowRecord r) {
        if (!picked_) {
            return s_.save_record(t_, key, r);
        }
        picked_->rows.insert_or_assign(key, std::move(r));
        s_.picked.touched.emplace(t_.schema.name, key);
        return Status::success();
    }

    Status column(RowRecord& r, const std::vector<crdt::Value>& key, int col,
                  const crdt::Value& value, const crdt::Stamp& stamp, bool new_life,
                  CaptureStats& stats) {
        auto rule = t_.schema.values[static_cast<std::size_t>(col)].rule;
        auto life = r.life.life;
        if (rule == crdt::MergeRule::counter) {
            return counter(r, key, col, value, stamp, new_life, stats);
        }
        bool keeps_value = rule != crdt::MergeRule::last_writer_wins;
        auto* existing = r.cell(col);
        crdt::CellWrite w{life, stamp, value, existing ? existing->write.stamp.hlc : crdt::Hlc()};
        if (existing && keeps_value && existing->write.life == life &&
            crdt::decide_cell(rule, existing->write, w) == crdt::Winner::existing) {
            // A local write that the rule ranks lower (e.g. a smaller value under max):
            // the table goes back to the winner so this node agrees with every other,
            // once the whole log is read (finish()).
            if (existing->write.value != value) {
                restores_[key][col] = existing->write.value;
            }
            return Status::success();
        }
        if (auto it = restores_.find(key); it != restores_.end()) {
            it->second.erase(col); // a later local write won after all
        }
        if (existing) {
            existing->write = w;
            existing->has_value = keeps_value;
        } else {
            CellEntry e{col, w, keeps_value};
            auto at = std::lower_bound(r.cells.begin(), r.cells.end(), col,
                                       [](const CellEntry& c, int v) { return c.column < v; });
            r.cells.insert(at, e);
        }
        if (!keeps_value) {
            r.cell(col)->write.value = crdt::Value(); // LWW values live in the user table only
        }
        ++stats.column_changes;
        return Status::success();
    }

    // The node's contribution moves by however much the cell moved since the last merge
    // or capture, which left it equal to the sum of contributions.
    Status counter(RowRecord& r, const std::vector<crdt::Value>& key, int col,
                   const crdt::Value& value, const crdt::Stamp& stamp, bool new_life,
                   CaptureStats& stats) {
        auto sum = r.counter_sum(col);
        auto now = crdt::counter_value(value);
        if (!now) {
            refuse_counter(key, col, value, sum);
            return Status::success();
        }
        if (auto it = restores_.find(key); it != restores_.end()) {
            it->second.erase(col); // the app wrote an integer again since the refusal
        }
        auto delta = new_life ? *now : crdt::counter_sub(*now, sum);
        if (delta == 0 && !new_life) {
            return Status::success();
        }
        auto life = r.life.life;
        CounterEntry* own = nullptr;
        for (auto& c : r.counters) {
            if (c.column == col && c.write.stamp.node == s_.self) {
                own = &c;
            }
        }
        auto base = own && own->write.life == life ? own->write.total : 0;
        crdt::CounterWrite w{life, stamp, crdt::counter_add(base, delta)};
        if (own) {
            own->write = w;
        } else {
            r.counters.push_back({col, w});
            std::sort(r.counters.begin(), r.counters.end(), [](const auto& a, const auto& b) {
                return std::tie(a.column, a.write.stamp.node) <
                       std::tie(b.column, b.write.stamp.node);
            });
        }
        ++stats.column_changes;
        return Status::success();
    }

    // A value the counter cannot hold: guessing an integer for it (rounding 2.5, reading
    // NULL as 0) would be a guess other nodes never see, so the write is not taken at
    // all. The cell goes back to the sum, which every node agrees on, and the app hears
    // why once per capture, even if several log entries touched the row.
    void refuse_counter(const std::vector<crdt::Value>& key, int col, const crdt::Value& value,
                        std::int64_t sum) {
        auto& pending = restores_[key];
        if (pending.count(col)) {
            return;
        }
        pending[col] = crdt::Value::integer(sum);
        const auto& column = t_.schema.values[static_cast<std::size_t>(col)].name;
        std::string what;
        switch (value.storage_class()) {
        case crdt::StorageClass::null: what = "NULL"; break;
        case crdt::StorageClass::real:
            what = "REAL " + value.to_string() + " (not a whole number from -2^63 to 2^63-1)";
            break;
        case crdt::StorageClass::text:
            what = "TEXT of " + std::to_string(value.byte_size()) + " bytes";
            break;
        case crdt::StorageClass::blob:
            what = "BLOB of " + std::to_string(value.byte_size()) + " bytes";
            break;
        case crdt::StorageClass::integer: break; // always held
        }
        s_.capture_warnings.push_back(
            {t_.schema.name, key, column, value, sum,
             "table '" + t_.schema.name + "', key (" + format_key(key) + "), counter column '" +
                 column + "': refused " + what +
                 ": a counter holds 64-bit integers only; the write is not counted and the "
                 "cell is put back to " +
                 std::to_string(sum)});
    }

    Store::Impl& s_;
    TableState& t_;
    PickedUp::Table* picked_;
    // Per row key, per column: the winner to write back once the log is read (kept with
    // the picked-up records until they are written, when picking up).
    Restores own_restores_;
    Restores& restores_;
};

// Log rows with op 4 hold a whole transaction's writes from a Writer (writer.cpp):
//   batch := count:varint entry*
//   entry := op:u8 (bit 7: primary key changed) columns:varint key:value* [old_key:value*]
constexpr auto kBatchOp = static_cast<std::int64_t>(schema::LogOp::batch);

Status expand_batch(std::string_view bytes, const LogEntry& row, int nkeys,
                    std::vector<LogEntry>& out) {
    wire::ByteReader in(bytes);
    std::uint64_t count;
    if (!in.varint(count) || count > bytes.size()) {
        return Status(Code::corruption, "bad batch count");
    }
    for (std::uint64_t i = 0; i < count; ++i) {
        std::uint8_t op;
        LogEntry e{row.seq, schema::LogOp::update, 0, row.at, {}, {}};
        if (!in.u8(op) || !in.varint(e.columns)) {
            return Status(Code::corruption, "truncated batch entry");
        }
        auto base = static_cast<std::uint8_t>(op & 0x7f);
        if (base < 1 || base > 3) {
            return Status(Code::corruption, "unknown operation " + std::to_string(base));
        }
        e.op = static_cast<schema::LogOp>(base);
        auto read_key = [&](std::vector<crdt::Value>& key) {
            key.resize(static_cast<std::size_t>(nkeys));
            for (auto& v : key) {
                if (!in.value(v)) {
                    return false;
                }
            }
            return true;
        };
        if (!read_key(e.key) || ((op & 0x80) && !read_key(e.old_key))) {
            return Status(Code::corruption, "truncated batch key");
        }
        if (e.op == schema::LogOp::insert) {
            e.columns = ~std::uint64_t{0};
        }
        out.push_back(std::move(e));
    }
    return in.at_end() ? Status::success() : Status(Code::corruption, "trailing bytes in batch");
}

// Up to kLogBatch log entries after `after`, in order.
Result<std::vector<LogEntry>> read_log(TableState& t, std::int64_t after = -1) {
    auto& stmt = t.log_select;
    sql::Reset reset(stmt);
    stmt.bind_int(1, kLogBatch);
    stmt.bind_int(2, after);
    std::vector<LogEntry> out;
    int rc;
    while ((rc = stmt.step()) == SQLITE_ROW) {
        LogEntry e;
        e.seq = stmt.column_int(0);
        auto op = stmt.column_int(1);
        e.columns = static_cast<std::uint64_t>(stmt.column_int(2));
        // julianday() of the write: days since noon UTC, 24 November 4714 BC.
        e.at = std::chrono::milliseconds(log_time_ms(sqlite3_column_double(stmt.get(), 3)));
        auto nkeys = static_cast<int>(t.schema.key.size());
        if (op == kBatchOp) {
            if (auto st = expand_batch(stmt.column_blob(4), e, nkeys, out); !st.ok()) {
                return Status(st.code(), "capture log of '" + t.schema.name + "', entry " +
                                             std::to_string(e.seq) + ": " + st.message());
            }
            continue;
        }
        e.op = static_cast<schema::LogOp>(op);
        for (int i = 0; i < nkeys; ++i) {
            e.key.push_back(stmt.column(4 + i));
        }
        if (!stmt.column_is_null(4 + nkeys)) {
            for (int i = 0; i < nkeys; ++i) {
                e.old_key.push_back(stmt.column(4 + nkeys + i));
            }
        }
        out.push_back(std::move(e));
    }
    if (rc != SQLITE_DONE) {
        return sql::error(stmt.db(), "reading the capture log of '" + t.schema.name + "'");
    }
    // One spelling per row on every node: keys SQLite takes for equal are recorded alike.
    for (auto& e : out) {
        e.respell = schema::canonical_key(t.schema, e.key);
        schema::canonical_key(t.schema, e.old_key);
    }
    return out;
}

} // namespace

namespace {

// Picks up the entries of `t` after p.through while the picked-up rows stay under
// `max_rows` (checked between batches).
Status pick_up_table(Store::Impl& s, TableState& t, PickedUp::Table& p, std::size_t max_rows,
                     CaptureStats& stats) {
    Capturer capturer(s, t, &p);
    for (;;) {
        if (p.rows.size() >= max_rows) {
            return Status::success();
        }
        auto entries = read_log(t, p.through);
        if (!entries) {
            return entries.status();
        }
        if (entries->empty()) {
            return Status::success();
        }
        for (const auto& e : *entries) {
            if (auto st = capturer.logged(e, stats); !st.ok()) {
                return st;
            }
            p.through = e.seq;
            p.through_at_ms = e.at.count();
        }
        stats.log_entries += entries->size();
    }
}

} // namespace

namespace {

// A picked-up record as a row change, whole, in the file's names (for the journal: LWW
// cells carry no value, as in the record).
wire::RowChange record_change(const TableState& t, const std::vector<crdt::Value>& key,
                              const RowRecord& r) {
    wire::RowChange out;
    out.table = t.schema.name;
    out.key = key;
    out.life = r.life;
    for (const auto& c : r.cells) {
        out.cells.push_back({t.schema.values[static_cast<std::size_t>(c.column)].name, c.write});
    }
    for (const auto& c : r.counters) {
        out.counters.push_back({t.schema.values[static_cast<std::size_t>(c.column)].name, c.write});
    }
    return out;
}

} // namespace

Result<CaptureStats> Store::Impl::pick_up_round(bool journal_round) {
    CaptureStats stats;
    PickupJournal::Round round;
    auto start = clock.last();
    picked.touched.clear();
    for (auto& [name, t] : tables) {
        auto& p = picked.tables[name];
        auto st = pick_up_table(*this, t, p, options.max_picked_up_rows, stats);
        if (!st.ok()) {
            return st;
        }
        if (p.through < 0) {
            picked.tables.erase(name);
            continue;
        }
        round.through.push_back({name, p.through, p.through_at_ms});
    }
    if (stats.log_entries == 0) {
        return stats;
    }
    if (clock.last() != start) {
        // Every own clock this covers, from the last one covered: those never issued (the
        // clock jumped over them, e.g. past a received change) are held vacuously.
        auto from = std::min(start.raw(), versions.of(self).highest().raw()) + 1;
        picked.issued.add(crdt::ClockRange{crdt::Hlc::from_raw(from), clock.last()});
        cover_own_clocks();
    }
    picked.rows = 0;
    for (const auto& [name, p] : picked.tables) {
        picked.rows += p.rows.size();
    }
    if (journal_round) {
        // Before anything picked up here is pushed: a restart takes these records back.
        if (!journal) {
            return Status(Code::io_error, "no pick-up journal");
        }
        wire::ChangeSet rows, write_backs;
        for (const auto& [name, key] : picked.touched) {
            auto& p = picked.tables[name];
            const auto& t = *table(name);
            if (auto it = p.rows.find(key); it != p.rows.end()) {
                rows.rows.push_back(record_change(t, key, it->second));
            }
            wire::RowChange back; // the row's write-backs now, none included
            back.table = name;
            back.key = key;
            back.life = {{}, {clock.last(), self}};
            if (auto it = p.restores.find(key); it != p.restores.end()) {
                for (const auto& [col, value] : it->second) {
                    back.cells.push_back({t.schema.values[static_cast<std::size_t>(col)].name,
                                          {{}, {clock.last(), self}, value, {}}});
                }
            }
            write_backs.rows.push_back(std::move(back));
        }
        round.end_clock = clock.last().raw();
        round.rows = encode(rows);
        round.write_backs = encode(write_backs);
        if (auto st = journal->append(round); !st.ok()) {
            return st;
        }
        journal_dirty = true;
        // Pushed from here on: if the file is ever rolled back past them (a restore, which
        // leaves the journal describing another file), they must count as lost from it,
        // never be issued again (docs/design/coverage.md).
        if (auto own = versions.of(self).highest().raw(); own > recorded_own_clock) {
            lock->record({self.to_string(), own});
            recorded_own_clock = own;
        }
    }
    return stats;
}

Status Store::Impl::replay_journal() {
    journal_replayed = true;
    auto rounds = std::exchange(replay_rounds, {});
    auto limits = PickupJournal::decode_limits();
    // Own clocks the rounds issued: from the last the file holds. The file's saved clock
    // may already be past them (an apply beside them saved it), so it is not a guide.
    auto issued_after = versions.of(self).highest().raw();
    for (const auto& round : rounds) {
        for (const auto& through : round.through) {
            if (table(through.table) != nullptr) {
                picked.tables[through.table].through = through.seq;
                picked.tables[through.table].through_at_ms = through.at_ms;
            }
        }
        auto rows = decode(round.rows, limits);
        auto write_backs = decode(round.write_backs, limits);
        if (!rows || !write_backs) {
            return Status(Code::corruption, path + ".peerlite.journal: " +
                                                (rows ? write_backs : rows).status().message());
        }
        for (const auto& change : rows->rows) {
            auto* t = table(change.table);
            if (t == nullptr) {
                continue; // the table went while the node was down
            }
            auto r = record_from_change(change, [&](std::string_view name) {
                auto col = t->schema.value_index(name);
                return col < 0 ? std::nullopt
                               : std::optional<ColumnRef>(ColumnRef{
                                     col, t->schema.values[static_cast<std::size_t>(col)].rule});
            });
            picked.tables[change.table].rows.insert_or_assign(change.key, std::move(r));
        }
        for (const auto& back : write_backs->rows) {
            auto* t = table(back.table);
            if (t == nullptr) {
                continue;
            }
            auto& restores = picked.tables[back.table].restores;
            restores.erase(back.key);
            for (const auto& c : back.cells) {
                if (auto col = t->schema.value_index(c.column); col >= 0) {
                    restores[back.key][col] = c.write.value;
                }
            }
        }
        clock.restore(crdt::Hlc::from_raw(round.end_clock));
        if (round.end_clock > issued_after) {
            picked.issued.add(crdt::ClockRange{crdt::Hlc::from_raw(issued_after + 1),
                                               crdt::Hlc::from_raw(round.end_clock)});
            issued_after = round.end_clock;
        }
    }
    if (!rounds.empty()) {
        cover_own_clocks();
    }
    picked.rows = 0;
    for (auto it = picked.tables.begin(); it != picked.tables.end();) {
        picked.rows += it->second.rows.size();
        it = it->second.through < 0 ? picked.tables.erase(it) : std::next(it);
    }
    return Status::success();
}

namespace {

// Writes the picked-up records into the caller's transaction and drops them from memory
// (a failed transaction takes them back from the journal: begin_write()).
Status write_picked_rows(Store::Impl& s) {
    for (auto& [name, p] : s.picked.tables) {
        auto* t = s.table(name);
        if (t == nullptr) {
            return Status(Code::schema_mismatch, "table '" + name +
                                                     "' went away with writes picked up from "
                                                     "it not yet written");
        }
        for (const auto& [key, r] : p.rows) {
            auto stored = s.load_record(*t, key);
            if (!stored) {
                return stored.status();
            }
            Store::Impl::before_change(*t, key, *stored);
            auto out = r;
            out.stored = stored->stored;
            out.hash = stored->hash;
            if (auto st = s.save_record(*t, key, out); !st.ok()) {
                return st;
            }
            if (r.life.life.exists() && t->schema.key_has_spellings()) {
                if (auto st = t->respell(key); !st.ok()) {
                    return st;
                }
            }
        }
        p.rows.clear();
    }
    s.picked.rows = 0;
    s.picked_consumed = true;
    return Status::success();
}

} // namespace

namespace {

Result<bool> user_table_exists(sqlite3* db, const std::string& name) {
    auto stmt = sql::Stmt::prepare(
        db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1 COLLATE NOCASE");
    if (!stmt) {
        return stmt.status();
    }
    sql::Reset reset(*stmt);
    stmt->bind_text(1, name);
    int rc = stmt->step();
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        return sql::error(db, "looking for table '" + name + "'");
    }
    return rc == SQLITE_ROW;
}

} // namespace

Status Store::Impl::flush_picked_up() {
    // Everything logged after what was picked up joins it first: a later write to a row
    // cancels a write-back owed to it (as in one capture). In batches, so a long log does
    // not all sit in memory.
    CaptureStats more;
    for (;;) {
        if (auto st = write_picked_rows(*this); !st.ok()) {
            return st;
        }
        auto before = more.log_entries;
        for (auto& [name, t] : tables) {
            auto& p = picked.tables[name];
            if (auto st = pick_up_table(*this, t, p, kLogBatch, more); !st.ok()) {
                return st;
            }
        }
        if (more.log_entries == before) {
            break;
        }
    }
    picked.touched.clear();
    for (auto& [name, p] : picked.tables) {
        auto* t = table(name);
        if (t == nullptr || p.through < 0) {
            continue;
        }
        // A table dropped since (refresh_schema() writes its picked-up rows before it
        // stops it) has no row to put a value back into.
        auto present = user_table_exists(db.get(), t->schema.name);
        if (!present) {
            return present.status();
        }
        if (*present) {
            if (auto st = write_back(*t, p.restores); !st.ok()) {
                return st;
            }
        }
        t->log_delete.bind_int(1, p.through);
        if (auto st = t->log_delete.run("clearing the capture log of '" + name + "'"); !st.ok()) {
            return st;
        }
    }
    picked_flushed = true;
    return Status::success();
}

Result<CaptureStats> Store::Impl::capture_locked() {
    CaptureStats stats;
    if (!journal_replayed) {
        if (auto st = replay_journal(); !st.ok()) {
            return st;
        }
    }
    if (!picked.empty() && !picked_flushed) {
        auto before = clock.last();
        if (auto st = flush_picked_up(); !st.ok()) {
            return st;
        }
        if (clock.last() != before) {
            cover_own_clocks();
        }
        if (auto st = retry_aside(); !st.ok()) {
            return st;
        }
        return stats;
    }
    auto before = clock.last();
    for (auto& [name, t] : tables) {
        Capturer capturer(*this, t, nullptr);
        for (;;) {
            auto entries = read_log(t);
            if (!entries) {
                return entries.status();
            }
            if (entries->empty()) {
                break;
            }
            for (const auto& e : *entries) {
                if (auto st = capturer.logged(e, stats); !st.ok()) {
                    return st;
                }
            }
            stats.log_entries += entries->size();
            t.log_delete.bind_int(1, entries->back().seq);
            if (auto st = t.log_delete.run("clearing the capture log of '" + name + "'");
                !st.ok()) {
                return st;
            }
        }
        if (auto st = capturer.finish(); !st.ok()) {
            return st;
        }
    }
    if (clock.last() != before) {
        // Every clock of ours up to the last one issued is now either stored or never
        // existed.
        cover_own_clocks();
    }
    // A local write may have made room for a row set aside (constraints.cpp).
    if (auto st = retry_aside(); !st.ok()) {
        return st;
    }
    return stats;
}

namespace {

// The keys of `rows` per table on the mesh (held-back rows are not applied).
std::map<std::string, std::set<std::vector<crdt::Value>>>
keys_by_table(Store::Impl& s, const std::vector<const wire::RowChange*>& rows) {
    std::map<std::string, std::set<std::vector<crdt::Value>>> out;
    for (const auto* row : rows) {
        if (auto* t = s.table_on_mesh(row->table)) {
            out[t->schema.name].insert(row->key);
        }
    }
    return out;
}

} // namespace

Result<bool> Store::Impl::log_meets(const std::vector<const wire::RowChange*>& rows) {
    for (auto& [name, keys] : keys_by_table(*this, rows)) {
        auto& t = tables.at(name);
        std::int64_t after = -1;
        if (auto p = picked.tables.find(name); p != picked.tables.end()) {
            after = p->second.through;
        }
        for (;;) {
            auto entries = read_log(t, after);
            if (!entries) {
                return entries.status();
            }
            if (entries->empty()) {
                break;
            }
            for (const auto& e : *entries) {
                if (keys.count(e.key) > 0 || (!e.old_key.empty() && keys.count(e.old_key) > 0)) {
                    return true;
                }
                after = e.seq;
            }
        }
    }
    return false;
}

Result<bool> Store::Impl::pick_up_beside(const std::vector<const wire::RowChange*>& rows) {
    if (!journal_replayed || !journal || !journal_started || picked_flushed) {
        return false;
    }
    // Local writes the node has not picked up yet stay in the log unless one meets a row
    // here: picking them up in this transaction would make the app wait for it (an app
    // writing all the time leaves hundreds). Stamped after this set's rows, they order
    // nothing: they are writes to other rows.
    auto meets = log_meets(rows);
    if (!meets) {
        return meets.status();
    }
    if (*meets) {
        {
            auto held = hold_journal();
            if (auto round = pick_up_round(true); !round) {
                return round.status();
            }
        }
        auto pending = log_pending(true);
        if (!pending) {
            return pending.status();
        }
        if (*pending) {
            return false; // more than max_picked_up_rows
        }
    }
    for (const auto* row : rows) {
        auto* t = table_on_mesh(row->table);
        if (t == nullptr) {
            continue; // held back, not applied
        }
        if (auto p = picked.tables.find(t->schema.name);
            p != picked.tables.end() && p->second.rows.count(row->key) > 0) {
            return false;
        }
    }
    return true;
}

Result<bool> Store::Impl::log_pending(bool after_picked) {
    for (auto& [name, t] : tables) {
        std::int64_t after = -1;
        if (auto p = picked.tables.find(name); after_picked && p != picked.tables.end()) {
            after = p->second.through;
        }
        sql::Reset reset(t.log_select);
        t.log_select.bind_int(1, 1);
        t.log_select.bind_int(2, after);
        int rc = t.log_select.step();
        if (rc == SQLITE_ROW) {
            return true;
        }
        if (rc != SQLITE_DONE) {
            return sql::error(db.get(), "reading the capture log of '" + name + "'");
        }
    }
    return false;
}

Result<std::optional<sql::Transaction>> Store::Impl::read_if_all_stamped() {
    auto look = sql::Transaction::begin_read(db.get());
    if (!look) {
        return look.status();
    }
    auto pending = log_pending();
    if (!pending) {
        return pending.status();
    }
    if (*pending) {
        return std::optional<sql::Transaction>(); // the read transaction rolls back here
    }
    return std::optional<sql::Transaction>(std::move(*look));
}

Result<std::pair<sql::Transaction, CaptureStats>> Store::Impl::begin_read_picked_up() {
    auto held = hold_journal(); // from before the snapshot to the round's append
    auto look = sql::Transaction::begin_read(db.get());
    if (!look) {
        return look.status();
    }
    if (!journal_replayed) {
        if (auto st = replay_journal(); !st.ok()) {
            return st;
        }
    }
    auto stats = pick_up_round(true);
    if (!stats) {
        return stats.status();
    }
    return std::make_pair(std::move(*look), *stats);
}

Result<CaptureStats> Store::pick_up() {
    auto& s = *impl_;
    s.take_back_picked();
    if (auto st = refresh_schema(); !st.ok()) {
        return st;
    }
    auto read = s.begin_read_picked_up();
    if (!read) {
        return read.status();
    }
    if (auto st = s.commit(read->first); !st.ok()) {
        return st;
    }
    return read->second;
}

std::size_t Store::picked_up_rows() const {
    return impl_->picked.rows;
}

crdt::VersionVector Store::picked_up_versions() const {
    crdt::VersionVector out;
    if (!impl_->picked.empty()) {
        out.add(impl_->self, impl_->picked.issued);
    }
    return out;
}

std::vector<CaptureWarning> Store::take_capture_warnings() {
    return std::exchange(impl_->capture_warnings, {});
}

Result<CaptureStats> Store::capture() {
    auto& s = *impl_;
    if (auto st = refresh_schema(); !st.ok()) {
        return st;
    }
    // Most calls find nothing to pick up (the daemon asks after every commit by anyone):
    // those take no write lock, so writers without a busy timeout never meet it.
    {
        auto stamped = s.read_if_all_stamped();
        if (!stamped) {
            return stamped.status();
        }
        if (*stamped) {
            return CaptureStats{};
        }
    }
    auto tx = s.begin_write();
    if (!tx) {
        return tx.status();
    }
    auto stats = s.capture_locked();
    if (!stats) {
        return stats.status();
    }
    if (stats->log_entries == 0 && !s.picked_flushed) {
        return stats; // nothing to commit; the transaction rolls back harmlessly
    }
    if (auto st = s.persist_progress(); !st.ok()) {
        return st;
    }
    if (auto st = s.commit(*tx); !st.ok()) {
        return st;
    }
    return stats;
}

} // namespace peerlite::store
