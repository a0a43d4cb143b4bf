// Reading changes for peers, and reading the conflict log (conflict_log.cpp).
#include <algorithm>
#include <optional>

#include <peerlite/store/store.hpp>

#include "conflict_log.hpp"
#include "store_impl.hpp"

namespace peerlite::store {

namespace {

// The lowest clock in `wanted`: no row whose greatest clock is below it can hold a
// wanted version, so the scan starts there.
std::int64_t lowest_wanted(const crdt::VersionVector& wanted) {
    std::uint64_t low = UINT64_MAX;
    for (const auto& [origin, ranges] : wanted.origins()) {
        if (!ranges.empty()) {
            low = std::min(low, ranges.ranges().front().first.raw());
        }
    }
    return low == UINT64_MAX ? INT64_MAX : static_cast<std::int64_t>(low) - 1;
}

bool wanted_stamp(const crdt::VersionVector& wanted, const crdt::Stamp& s) {
    return wanted.contains(s.node, s.hlc);
}

} // namespace

namespace {

// Opens `tx` on a snapshot in which every local write is stamped.
Status begin_stamped(Store::Impl& s, std::optional<sql::Transaction>& tx) {
    {
        auto stamped = s.read_if_all_stamped();
        if (!stamped) {
            return stamped.status();
        }
        if (*stamped) {
            tx.emplace(std::move(**stamped));
            return Status::success();
        }
    }
    auto write = sql::Transaction::begin(s.db.get());
    if (!write) {
        return write.status();
    }
    auto captured = s.capture_locked();
    if (!captured) {
        return captured.status();
    }
    if (captured->log_entries > 0) {
        if (auto st = s.persist_progress(); !st.ok()) {
            return st;
        }
    }
    tx.emplace(std::move(*write));
    return Status::success();
}

} // namespace

Result<ChangeSet> Store::read_changes(const crdt::VersionVector& wanted, ReadCursor& cursor,
                                      std::size_t max_rows) {
    auto& s = *impl_;
    ChangeSet out;
    if (wanted.empty()) {
        cursor.done = true;
        return out;
    }
    if (auto st = refresh_schema(); !st.ok()) {
        return st;
    }
    // Pending local writes must be stamped first, so no value is sent with an older
    // write's clock. A read snapshot whose capture logs are empty has every value stamped:
    // read under it, taking no write lock; otherwise capture in a write transaction.
    std::optional<sql::Transaction> tx;
    if (auto st = begin_stamped(s, tx); !st.ok()) {
        return st;
    }
    std::vector<TableState*> tables;
    for (auto& [name, t] : s.tables) {
        tables.push_back(&t);
    }
    if (cursor.after_clock < 0) {
        cursor.after_clock = lowest_wanted(wanted);
    }
    while (cursor.table < tables.size() && out.rows.size() < max_rows) {
        auto& t = *tables[cursor.table];
        auto nkeys = static_cast<int>(t.schema.key.size());
        auto& scan = t.scan;
        sql::Reset reset(scan);
        scan.bind_int(1, cursor.after_clock);
        // No LIMIT: rows that hold nothing wanted are skipped, so the page ends by count
        // of rows taken, at a change of clock.
        scan.bind_int(2, -1);
        std::int64_t last = cursor.after_clock;
        int rc;
        while ((rc = scan.step()) == SQLITE_ROW) {
            auto vmax = scan.column_int(nkeys + 1);
            // Stop between clocks, never inside a group of rows sharing one, so the
            // next page can start strictly after `last`.
            if (out.rows.size() >= max_rows && vmax != last) {
                break;
            }
            last = vmax;
            auto record =
                decode_record(scan.column_blob(nkeys),
                              crdt::Hlc::from_raw(static_cast<std::uint64_t>(vmax)), s.nodes);
            if (!record) {
                return Status(Code::corruption,
                              "table '" + t.schema.name + "': " + record.status().message());
            }
            bool present = scan.column_int(nkeys + 2) != 0;
            RowChange row;
            row.table = t.schema.name;
            for (int i = 0; i < nkeys; ++i) {
                row.key.push_back(scan.column(i));
            }
            row.life = record->life;
            // A version travels whole: one write stamps the row's life and its cells with
            // the same clock, and the receiver covers that version once it has it. So every
            // entry carrying a sent stamp goes along, and the life (always sent, as context)
            // brings the entries that share its stamp.
            std::vector<crdt::Stamp> sent{row.life.stamp};
            bool any = wanted_stamp(wanted, row.life.stamp);
            for (const auto& c : record->cells) {
                if (wanted_stamp(wanted, c.write.stamp)) {
                    any = true;
                    sent.push_back(c.write.stamp);
                }
            }
            for (const auto& c : record->counters) {
                if (wanted_stamp(wanted, c.write.stamp)) {
                    any = true;
                    sent.push_back(c.write.stamp);
                }
            }
            auto is_sent = [&](const crdt::Stamp& stamp) {
                return std::find(sent.begin(), sent.end(), stamp) != sent.end();
            };
            for (const auto& c : record->cells) {
                if (!any || !is_sent(c.write.stamp)) {
                    continue;
                }
                auto w = c.write;
                if (!c.has_value) {
                    w.value = present && w.life == record->life.life
                                  ? scan.column(nkeys + 3 + c.column)
                                  : crdt::Value();
                }
                row.cells.push_back({t.schema.values[static_cast<std::size_t>(c.column)].name, w});
            }
            for (const auto& c : record->counters) {
                if (any && is_sent(c.write.stamp)) {
                    row.counters.push_back(
                        {t.schema.values[static_cast<std::size_t>(c.column)].name, c.write});
                }
            }
            if (any) {
                out.rows.push_back(std::move(row));
            }
        }
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
            return sql::error(s.db.get(), "scanning row records of '" + t.schema.name + "'");
        }
        if (rc == SQLITE_DONE) {
            // This table is finished.
            ++cursor.table;
            cursor.after_clock = lowest_wanted(wanted);
        } else {
            cursor.after_clock = last;
        }
    }
    cursor.done = cursor.table >= tables.size();
    if (auto st = tx->commit(); !st.ok()) {
        return st;
    }
    return out;
}

Result<std::vector<Conflict>> Store::conflicts(const ConflictQuery& query) {
    return read_conflicts(impl_->db.get(), query);
}

} // namespace peerlite::store
