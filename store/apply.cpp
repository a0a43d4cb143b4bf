// Applying remote change sets: validate the whole set, then merge row by row with the
// per-column rules in bounded transactions, materializing winners into the user table.
// Long because the per-row merge (life, cells, counters, conflicts, held-back rows) is one
// state machine over one row record; constraints.cpp and table_state.cpp hold the rest.
#include <algorithm>
#include <set>

#include <peerlite/store/store.hpp>

#include "store_impl.hpp"

namespace peerlite::store {

namespace {

std::string where(const wire::RowChange& row) {
    return "table '" + row.table + "'";
}

// Merges one row change into its record and the user table.
class RowMerger {
public:
    RowMerger(Store::Impl& s, TableState& t, const wire::RowChange& in, ApplyStats& stats)
        : s_(s), t_(t), in_(in), stats_(stats) {}

    Status run() {
        auto record = s_.load_record(t_, in_.key);
        if (!record) {
            return record.status();
        }
        r_ = std::move(*record);
        auto old_life = r_.life;
        bool changed = false;
        if (crdt::decide_row(r_.life, in_.life) == crdt::Winner::incoming) {
            if (old_life.life.exists() && !in_.life.life.exists()) {
                if (auto st = note_lost_updates(in_.life); !st.ok()) {
                    return st;
                }
            }
            touch();
            r_.life = in_.life;
            changed = true;
            ++stats_.won;
        }
        auto life = r_.life.life;
        if (life != old_life.life) {
            prune_dead(life);
        }
        for (const auto& c : in_.cells) {
            auto st = cell(c, life, changed);
            if (!st.ok()) {
                return st;
            }
        }
        for (const auto& c : in_.counters) {
            counter(c, life, changed);
        }
        stats_.column_changes += in_.column_changes();
        if (!changed) {
            return Status::success(); // a duplicate or an all-losing change
        }
        if (auto st = materialize(old_life.life); !st.ok()) {
            return st;
        }
        return s_.save_record(t_, in_.key, r_);
    }

private:
    int column(const std::string& name) const { return t_.mesh_column(name); }
    crdt::MergeRule rule(int col) const {
        return t_.schema.values[static_cast<std::size_t>(col)].rule;
    }

    // The user row's current values (read once, only when a decision needs them).
    Result<const std::vector<crdt::Value>*> user_row() {
        if (!user_loaded_) {
            auto& stmt = t_.user_select;
            sql::Reset reset(stmt);
            TableState::bind_key(stmt, 1, in_.key);
            int rc = stmt.step();
            if (rc == SQLITE_ROW) {
                for (std::size_t i = 0; i < t_.schema.values.size(); ++i) {
                    user_.push_back(stmt.column(static_cast<int>(i)));
                }
            } else if (rc != SQLITE_DONE) {
                return sql::error(stmt.db(), "reading a row of '" + t_.schema.name + "'");
            } else {
                // Not in the table: set aside (constraints.cpp), or not there at all.
                auto aside = s_.aside_values(t_, in_.key);
                if (!aside) {
                    return aside.status();
                }
                aside_ = aside->has_value();
                if (aside_) {
                    user_ = std::move(**aside);
                } else {
                    user_.assign(t_.schema.values.size(), crdt::Value());
                }
            }
            user_loaded_ = true;
        }
        return &user_;
    }

    // The existing write with its value filled in from the user table when the record
    // keeps none (last-writer-wins), for the value tie-break and the conflict log.
    Result<crdt::CellWrite> with_value(const CellEntry& e) {
        if (e.has_value) {
            return e.write;
        }
        auto row = user_row();
        if (!row) {
            return row.status();
        }
        auto w = e.write;
        w.value = (**row)[static_cast<std::size_t>(e.column)];
        return w;
    }

    // Before the record's first change: most records of a re-sent change do not change.
    void touch() { Store::Impl::before_change(t_, in_.key, r_); }

    void prune_dead(crdt::CausalLength life) {
        std::erase_if(r_.cells, [&](const CellEntry& e) { return e.write.life < life; });
        std::erase_if(r_.counters, [&](const CounterEntry& e) { return e.write.life < life; });
    }

    Status cell(const wire::CellChange& c, crdt::CausalLength life, bool& changed) {
        int col = column(c.column);
        if (c.write.life < life) {
            return Status::success(); // a write to an earlier life of the row: never shows
        }
        auto r = rule(col);
        bool keeps_value = r != crdt::MergeRule::last_writer_wins;
        auto* existing = r_.cell(col);
        if (existing == nullptr) {
            CellEntry e{col, c.write, keeps_value};
            touch();
            auto at = std::lower_bound(r_.cells.begin(), r_.cells.end(), col,
                                       [](const CellEntry& x, int v) { return x.column < v; });
            r_.cells.insert(at, e);
            incoming_[col] = &c.write.value;
            changed = true;
            ++stats_.won;
            return Status::success();
        }
        auto current = existing->write;
        // Only a value comparison needs the current value: equal stamps or max/min.
        if (keeps_value || (current.life == c.write.life && current.stamp == c.write.stamp)) {
            auto filled = with_value(*existing);
            if (!filled) {
                return filled.status();
            }
            current = *filled;
        }
        auto decision = crdt::decide_cell(r, current, c.write);
        auto winner = decision.winner;
        if (winner == crdt::Winner::same) {
            return Status::success();
        }
        if (crdt::concurrent(current, c.write)) {
            auto st = winner == crdt::Winner::incoming
                          ? conflict(col, c.write, *existing, decision.reason)
                          : conflict_lost(col, *existing, c.write, decision.reason);
            if (!st.ok()) {
                return st;
            }
        }
        if (winner == crdt::Winner::incoming) {
            touch();
            existing->write = c.write;
            existing->has_value = keeps_value;
            incoming_[col] = &c.write.value;
            changed = true;
            ++stats_.won;
        }
        return Status::success();
    }

    void counter(const wire::CounterChange& c, crdt::CausalLength life, bool& changed) {
        int col = column(c.column);
        if (c.write.life < life) {
            return;
        }
        for (auto& e : r_.counters) {
            if (e.column == col && e.write.stamp.node == c.write.stamp.node) {
                if (crdt::decide_counter(e.write, c.write) == crdt::Winner::incoming) {
                    touch();
                    e.write = c.write;
                    changed = true;
                    counters_changed_ |= std::uint64_t{1} << col;
                    ++stats_.won;
                }
                return;
            }
        }
        touch();
        r_.counters.push_back({col, c.write});
        std::sort(r_.counters.begin(), r_.counters.end(), [](const auto& a, const auto& b) {
            return std::tie(a.column, a.write.stamp.node) < std::tie(b.column, b.write.stamp.node);
        });
        changed = true;
        counters_changed_ |= std::uint64_t{1} << col;
        ++stats_.won;
    }

    // The incoming write beats a concurrent one whose value is in the user table.
    Status conflict(int col, const crdt::CellWrite& winner, const CellEntry& loser_entry,
                    crdt::Reason why) {
        auto loser = with_value(loser_entry);
        if (!loser) {
            return loser.status();
        }
        return log(col, winner, *loser, why, true);
    }

    // The existing write beats a concurrent incoming one. Regression: its value was taken
    // from the record, where a last-writer-wins value is not kept, and logged as NULL.
    Status conflict_lost(int col, const CellEntry& winner_entry, const crdt::CellWrite& loser,
                         crdt::Reason why) {
        auto winner = with_value(winner_entry);
        if (!winner) {
            return winner.status();
        }
        return log(col, *winner, loser, why, false);
    }

    // The reason is the merge's own (crdt::Decision); it is put in words only when stored
    // or printed (reason_text()).
    Status log(int col, const crdt::CellWrite& winner, const crdt::CellWrite& loser,
               crdt::Reason why, bool incoming_won) {
        if (winner.value == loser.value) {
            return Status::success(); // both sides wrote the same value: nothing was lost
        }
        ++stats_.conflicts;
        return s_.record_conflict(Conflict{0, s_.now_ms(), t_.schema.name, in_.key,
                                           t_.schema.values[static_cast<std::size_t>(col)].name,
                                           rule(col), winner.value, winner.stamp, loser.value,
                                           loser.stamp, why, incoming_won});
    }

    // A delete arriving for a row whose cells were written after the delete's clock: those
    // updates were concurrent with it and are lost by the delete-wins rule.
    Status note_lost_updates(const crdt::RowWrite& deletion) {
        for (const auto& e : r_.cells) {
            if (e.write.stamp.hlc > deletion.stamp.hlc &&
                e.write.stamp.node != deletion.stamp.node) {
                auto lost = with_value(e);
                if (!lost) {
                    return lost.status();
                }
                ++stats_.conflicts;
                auto st = s_.record_conflict(
                    Conflict{0, s_.now_ms(), t_.schema.name, in_.key,
                             t_.schema.values[static_cast<std::size_t>(e.column)].name,
                             std::nullopt, crdt::Value(), deletion.stamp, lost->value, lost->stamp,
                             crdt::Reason::later_life, true});
                if (!st.ok()) {
                    return st;
                }
            }
        }
        return Status::success();
    }

    // Whether a change of the row's current life wrote the column (a counter always has
    // its sum, zero without contributions).
    bool written_in_life(int col) {
        if (rule(col) == crdt::MergeRule::counter || incoming_.count(col)) {
            return true;
        }
        auto* e = r_.cell(col);
        return e != nullptr && e->write.life == r_.life.life;
    }

    // The visible value of a column after the merge.
    crdt::Value visible(int col) {
        auto r = rule(col);
        if (r == crdt::MergeRule::counter) {
            return crdt::Value::integer(r_.counter_sum(col));
        }
        if (auto it = incoming_.find(col); it != incoming_.end()) {
            return *it->second;
        }
        auto* e = r_.cell(col);
        if (e == nullptr || e->write.life != r_.life.life) {
            return crdt::Value();
        }
        if (e->has_value) {
            return e->write.value;
        }
        auto row = user_row();
        return row ? (**row)[static_cast<std::size_t>(col)] : crdt::Value();
    }

    Status materialize(crdt::CausalLength old_life) {
        auto life = r_.life.life;
        auto n = static_cast<int>(t_.schema.values.size());
        if (!life.exists()) {
            if (!old_life.exists()) {
                return Status::success();
            }
            auto& del = t_.user_delete;
            TableState::bind_key(del, 1, in_.key);
            if (auto st = del.run("deleting a row of '" + t_.schema.name + "'"); !st.ok()) {
                return st;
            }
            return s_.delete_aside(t_, in_.key); // gone for good, from either place
        }
        if (old_life != life) {
            // A new life: the row is written whole; a cell no change of this life wrote
            // (its writer did not have the column yet) takes the column's default, as
            // it does on the nodes that add the column after the row exists.
            std::vector<crdt::Value> values;
            for (int i = 0; i < n; ++i) {
                values.push_back(written_in_life(i) ? visible(i)
                                                    : t_.defaults[static_cast<std::size_t>(i)]);
            }
            return s_.place_row(t_, in_.key, std::move(values));
        }
        if (auto row = user_row(); !row) {
            return row.status();
        }
        if (aside_) {
            return place_whole(); // it may fit now
        }
        std::uint64_t mask = counters_changed_;
        for (const auto& [col, value] : incoming_) {
            mask |= std::uint64_t{1} << col;
        }
        if (mask == 0 || n == 0) {
            return Status::success();
        }
        auto& upd = t_.user_update;
        sql::Reset reset(upd);
        upd.bind_int(1, static_cast<std::int64_t>(mask));
        for (int i = 0; i < n; ++i) {
            if ((mask >> i) & 1) {
                upd.bind(i + 2, visible(i));
            }
        }
        TableState::bind_key(upd, n + 2, in_.key);
        if (upd.step() != SQLITE_DONE) {
            if ((sqlite3_errcode(upd.db()) & 0xff) == SQLITE_CONSTRAINT) {
                return place_whole(); // the merged row breaks a constraint
            }
            return sql::error(upd.db(), "updating a row of '" + t_.schema.name + "'");
        }
        return Status::success();
    }

    // The row as merged, written whole (constraints.cpp: or set aside).
    Status place_whole() {
        auto row = user_row();
        if (!row) {
            return row.status();
        }
        std::vector<crdt::Value> values;
        for (int i = 0; i < static_cast<int>(t_.schema.values.size()); ++i) {
            values.push_back(written_in_life(i) ? visible(i)
                                                : (**row)[static_cast<std::size_t>(i)]);
        }
        return s_.place_row(t_, in_.key, std::move(values));
    }

    Store::Impl& s_;
    TableState& t_;
    const wire::RowChange& in_;
    ApplyStats& stats_;
    RowRecord r_;
    std::map<int, const crdt::Value*> incoming_; // columns whose winner came in now
    std::uint64_t counters_changed_ = 0;
    bool user_loaded_ = false;
    bool aside_ = false; // the row is set aside: user_ holds its values from there
    std::vector<crdt::Value> user_;
};

// Why a row cannot be applied yet (unknown table or column), or nothing.
std::optional<std::string> unknown_reason(Store::Impl& s, const wire::RowChange& row) {
    auto* t = s.table_on_mesh(row.table);
    if (t == nullptr) {
        return "unknown table '" + row.table + "'";
    }
    for (const auto& c : row.cells) {
        if (t->mesh_column(c.column) < 0) {
            return "table '" + row.table + "' has no column '" + c.column + "'";
        }
    }
    for (const auto& c : row.counters) {
        if (t->mesh_column(c.column) < 0) {
            return "table '" + row.table + "' has no column '" + c.column + "'";
        }
    }
    return std::nullopt;
}

bool already_covered(const crdt::VersionVector& versions, const wire::RowChange& row) {
    auto has = [&](const crdt::Stamp& s) {
        return versions.contains(s.node, s.hlc);
    };
    if (!has(row.life.stamp)) {
        return false;
    }
    for (const auto& c : row.cells) {
        if (!has(c.write.stamp)) {
            return false;
        }
    }
    for (const auto& c : row.counters) {
        if (!has(c.write.stamp)) {
            return false;
        }
    }
    return true;
}

} // namespace

// Far above any life a row can reach by real inserts and deletes (one per write), and far
// below where adding one would wrap.
constexpr std::uint64_t kMaxCausalLength = std::uint64_t{1} << 62;

Status Store::Impl::validate(const wire::ChangeSet& changes) {
    // A claim of coverage is a promise that the sender holds every change of an origin in
    // a range. None can hold a clock later than one this node would accept from that
    // origin; believed, a claim up to 2^64-1 would make this node, and every node that
    // syncs from it, skip all of that origin's future writes.
    for (const auto& [origin, ranges] : changes.covers.origins()) {
        if (ranges.empty()) {
            continue;
        }
        if (auto st = clock.check_drift(ranges.highest(), origin); !st.ok()) {
            return Status(Code::clock_drift,
                          "a claim of coverage of node " + origin.to_string() +
                              "'s changes reaches " + ranges.highest().to_string() +
                              ", past any clock this node accepts now: " + st.message());
        }
    }
    for (const auto& row : changes.rows) {
        auto bad = [&](const std::string& what) {
            return Status(Code::corruption, "change for " + where(row) + ": " + what);
        };
        if (row.life.stamp.node.is_nil()) {
            return bad("row life from the nil node id");
        }
        if (row.life.life.value() > kMaxCausalLength) {
            return bad("row life " + std::to_string(row.life.life.value()) + " is out of range");
        }
        if (auto st = clock.check_drift(row.life.stamp.hlc, row.life.stamp.node); !st.ok()) {
            return st;
        }
        for (const auto& c : row.cells) {
            if (c.write.life > row.life.life) {
                return bad("cell '" + c.column + "' is from a later row life than the row");
            }
            if (auto st = clock.check_drift(c.write.stamp.hlc, c.write.stamp.node); !st.ok()) {
                return st;
            }
        }
        for (const auto& c : row.counters) {
            if (c.write.life > row.life.life) {
                return bad("counter '" + c.column + "' is from a later row life than the row");
            }
            if (auto st = clock.check_drift(c.write.stamp.hlc, c.write.stamp.node); !st.ok()) {
                return st;
            }
        }
        auto* t = table_on_mesh(row.table);
        if (t == nullptr) {
            continue; // held back, checked again once the table is synced
        }
        if (row.key.size() != t->schema.key.size()) {
            return Status(Code::schema_mismatch, "change for " + where(row) + " has " +
                                                     std::to_string(row.key.size()) +
                                                     " key values; the table's key has " +
                                                     std::to_string(t->schema.key.size()));
        }
        for (const auto& k : row.key) {
            if (k.is_null()) {
                return bad("NULL primary key value");
            }
        }
        std::set<std::pair<std::string, crdt::NodeId>> seen;
        auto check_column = [&](const std::string& name, bool is_counter,
                                const crdt::NodeId& contributor) -> Status {
            // A cell appears once; a counter once per contributing node.
            if (!seen.insert({name, contributor}).second) {
                return bad("column '" + name + "' appears twice");
            }
            auto idx = t->mesh_column(name);
            if (idx < 0) {
                return Status::success(); // unknown column: held back
            }
            bool local_counter =
                t->schema.values[static_cast<std::size_t>(idx)].rule == crdt::MergeRule::counter;
            if (local_counter != is_counter) {
                return Status(Code::schema_mismatch,
                              where(row) + " column '" + name + "' is a " +
                                  (local_counter ? "counter here but arrived as a plain cell"
                                                 : "plain cell here but arrived as a counter") +
                                  ": the nodes declare different merge rules for it");
            }
            return Status::success();
        };
        for (const auto& c : row.cells) {
            if (auto st = check_column(c.column, false, crdt::NodeId()); !st.ok()) {
                return st;
            }
        }
        for (const auto& c : row.counters) {
            if (auto st = check_column(c.column, true, c.write.stamp.node); !st.ok()) {
                return st;
            }
        }
    }
    return Status::success();
}

Result<ApplyStats> Store::Impl::apply_rows(const std::vector<const wire::RowChange*>& rows,
                                           const crdt::VersionVector& claimed, Arrival arrival) {
    ApplyStats stats;
    std::vector<crdt::Stamp> unclaimed; // covered one by one, in order, after the loop
    std::optional<wire::RowChange> respelled;
    for (const auto* row : rows) {
        if (auto* t = table_on_mesh(row->table); t != nullptr && t->schema.key_has_spellings()) {
            // A peer spells keys as this node does (canonical_key()); one that does not
            // (an older build) is taken in that spelling, so its row meets this one's.
            auto key = row->key;
            if (schema::canonical_key(t->schema, key)) {
                respelled = *row;
                respelled->key = std::move(key);
                row = &*respelled;
            }
        }
        if (arrival == Arrival::from_peer && already_covered(versions, *row)) {
            // Every write in it was applied here before, or superseded by one that was, or
            // it is held back here already.
            stats.column_changes += row->column_changes();
            ++stats.rows;
            continue;
        }
        if (auto reason = unknown_reason(*this, *row)) {
            // Kept aside in _peerlite_pending, in this transaction: durably held, and
            // passed on by read_changes, so its versions are covered like applied ones.
            if (auto st = hold_back(*row, *reason); !st.ok()) {
                return st;
            }
            ++stats.held_back;
        } else {
            auto& t = *table_on_mesh(row->table);
            RowMerger merger(*this, t, *row, stats);
            if (auto st = merger.run(); !st.ok()) {
                return st;
            }
            ++stats.rows;
        }
        auto note = [&](const crdt::Stamp& s) {
            (void)clock.observe(s.hlc, s.node); // within the bound: validated before
            if (!claimed.contains(s.node, s.hlc)) {
                unclaimed.push_back(s);
            }
        };
        note(row->life.stamp);
        for (const auto& c : row->cells) {
            note(c.write.stamp);
        }
        for (const auto& c : row->counters) {
            note(c.write.stamp);
        }
    }
    std::sort(unclaimed.begin(), unclaimed.end());
    for (const auto& s : unclaimed) {
        cover(s.node, crdt::ClockRange{s.hlc, s.hlc});
    }
    return stats;
}

Result<ApplyStats> Store::apply(const wire::ChangeSet& changes) {
    if (auto st = refresh_schema(); !st.ok()) {
        return st;
    }
    return impl_->apply_set(changes, Impl::Arrival::from_peer);
}

Result<ApplyStats> Store::repair(const wire::ChangeSet& changes) {
    if (!changes.covers.empty()) {
        return Status(Code::invalid_argument, "a repair claims no coverage");
    }
    if (auto st = refresh_schema(); !st.ok()) {
        return st;
    }
    return impl_->apply_set(changes, Impl::Arrival::repair);
}

Result<ApplyStats> Store::Impl::apply_set(const wire::ChangeSet& changes, Arrival arrival) {
    auto& s = *this;
    if (auto st = s.validate(changes); !st.ok()) {
        return st;
    }
    ApplyStats total;
    if (changes.rows.empty() && changes.covers.minus(s.versions).empty()) {
        // Nothing new (an anti-entropy answer from a peer holding nothing we lack): no
        // write transaction, so no commit to disturb an app's reads (docs/design/neighbour.md).
        return total;
    }
    auto batch = std::max<std::size_t>(1, s.options.apply_batch_rows);
    std::size_t next = 0;
    bool capture_first = false;
    for (bool done = false; !done; done = next == changes.rows.size()) {
        auto tx = s.begin_write();
        if (!tx) {
            return tx.status();
        }
        auto first = next;
        std::vector<const wire::RowChange*> rows;
        for (auto end = std::min(next + batch, changes.rows.size()); next < end; ++next) {
            rows.push_back(&changes.rows[next]);
        }
        // Local writes stay in memory (or in the log) unless a row here meets one of them,
        // which needs its record in the file first, as it is older: writing or picking
        // them all up here would make this transaction long, and the app waits for it.
        auto in_memory = capture_first ? Result<bool>(false) : s.pick_up_beside(rows);
        if (!in_memory) {
            return in_memory.status();
        }
        s.beside_local_writes = *in_memory;
        s.aside_needs_capture = false;
        auto nodes_before = s.nodes.size();
        auto versions_before = s.versions;
        auto fail = [&](Status st) {
            s.nodes.rollback_to(nodes_before);
            s.versions = versions_before;
            return st;
        };
        if (!*in_memory) {
            if (auto captured = s.capture_locked(); !captured) {
                return fail(captured.status());
            }
        }
        // Versions inside the set's claim are covered by the claim with the last batch; a
        // crash before it leaves them uncovered, so the peer sends them again.
        auto stats = s.apply_rows(rows, changes.covers, arrival);
        auto retried = stats ? s.retry_aside() : Status::success();
        if ((!stats || !retried.ok()) && s.aside_needs_capture && !capture_first) {
            // A row to set aside may have local writes not in the file: again, with them.
            (void)fail(Status::success()); // memory back as before; the transaction rolls back
            capture_first = true;
            next = first;
            continue;
        }
        if (!stats) {
            return fail(stats.status());
        }
        if (!retried.ok()) {
            return fail(retried);
        }
        if (next == changes.rows.size() && changes.complete) {
            if (auto st = s.prune_conflicts(); !st.ok()) {
                return fail(st);
            }
            // The coverage claim: every row of the set is applied or held back.
            for (const auto& [origin, ranges] : changes.covers.origins()) {
                for (const auto& r : ranges.ranges()) {
                    s.cover(origin, r);
                }
            }
        }
        if (auto st = s.persist_progress(); !st.ok()) {
            return fail(st);
        }
        if (auto st = s.commit(*tx); !st.ok()) {
            return fail(st);
        }
        total.rows += stats->rows;
        total.column_changes += stats->column_changes;
        total.won += stats->won;
        total.held_back += stats->held_back;
        total.conflicts += stats->conflicts;
        ++total.transactions;
    }
    return total;
}

} // namespace peerlite::store
