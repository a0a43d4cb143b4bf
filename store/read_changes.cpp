// Reading changes for peers, and reading the conflict log (conflict_log.cpp). Long because
// a read is resumable (a cursor over origins, clock ranges and held-back rows) and bounded
// by message size at every step; the steps share the cursor and the row decoder.
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

// What a scan takes: the versions in `wanted`, or (repairs) the whole state of the rows in
// `buckets`.
struct Want {
    const crdt::VersionVector* wanted = nullptr;
    const std::vector<bool>* buckets = nullptr;
    bool stamp(const crdt::Stamp& s) const { return wanted == nullptr || wanted_stamp(*wanted, s); }
};

} // namespace

namespace {

// A read transaction in which every local write is stamped, the newest in memory only
// (picked up, not yet written into the file), if `wanted` holds none of those: a read for
// peers then leaves the app's file alone (docs/design/neighbour.md). The caller reads
// picked-up records in place of the file's (scan_table()). Nothing when it cannot be had.
Result<std::optional<sql::Transaction>> read_beside_picked(Store::Impl& s,
                                                           const crdt::VersionVector& wanted) {
    using None = std::optional<sql::Transaction>;
    s.take_back_picked();
    if (!s.journal_replayed) {
        return None(); // a failed write took them: the writing path takes them back
    }
    // Values are read from the user rows: every write this snapshot shows must be picked
    // up, or a value would travel under an older write's stamp.
    auto look = s.begin_read_picked_up();
    if (!look) {
        return look.status();
    }
    auto pending = s.log_pending(true);
    if (!pending) {
        return pending.status();
    }
    auto own = wanted.of(s.self);
    if (*pending || !(own.minus(s.picked.issued) == own)) {
        return None(); // more than max_picked_up_rows, or own picked-up versions wanted
    }
    return None(std::move(look->first));
}

// Opens `tx` on a snapshot in which every local write is stamped; `wanted`, when given,
// lets it leave picked-up writes unwritten (read_beside_picked()).
Status begin_stamped(Store::Impl& s, std::optional<sql::Transaction>& tx,
                     const crdt::VersionVector* wanted = nullptr) {
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
    if (wanted != nullptr) {
        auto read = read_beside_picked(s, *wanted);
        if (!read) {
            return read.status();
        }
        if (*read) {
            tx.emplace(std::move(**read));
            return Status::success();
        }
    }
    auto write = s.begin_write();
    if (!write) {
        return write.status();
    }
    auto captured = s.capture_locked();
    if (!captured) {
        return captured.status();
    }
    if (captured->log_entries > 0 || s.picked_flushed) {
        if (auto st = s.persist_progress(); !st.ok()) {
            return st;
        }
    }
    tx.emplace(std::move(*write));
    return Status::success();
}

} // namespace

namespace {

// One page being filled: rows up to the row and byte budgets, oversized rows set aside.
class Page {
public:
    Page(ReadCursor& cursor, std::size_t max_rows, std::size_t max_bytes)
        : cursor_(cursor), max_rows_(max_rows), max_bytes_(max_bytes) {}

    bool full() const { return out.rows.size() >= max_rows_ || bytes_ >= max_bytes_; }

    // Takes `row` if it fits; false (and nothing taken) when the page is full for it. A
    // row that fits no page at all is reported in the cursor and counts as taken.
    bool take(wire::RowChange&& row) {
        auto size = wire::encoded_size(row);
        if (size > max_bytes_) {
            cursor_.oversized.push_back(oversized(row, size));
            return true;
        }
        if (!out.rows.empty() && (out.rows.size() >= max_rows_ || bytes_ + size > max_bytes_)) {
            return false;
        }
        bytes_ += size;
        out.rows.push_back(std::move(row));
        return true;
    }

    wire::ChangeSet out;

private:
    static OversizedRow oversized(const wire::RowChange& row, std::size_t size) {
        OversizedRow o{row.table, row.key, {}, 0, size, {row.life.stamp}};
        for (const auto& c : row.cells) {
            o.stamps.push_back(c.write.stamp);
            if (c.write.value.byte_size() >= o.column_bytes) {
                o.column = c.column;
                o.column_bytes = c.write.value.byte_size();
            }
        }
        for (const auto& c : row.counters) {
            o.stamps.push_back(c.write.stamp);
        }
        return o;
    }

    ReadCursor& cursor_;
    std::size_t max_rows_, max_bytes_, bytes_ = 0;
};

// Whether the user row joined to the scanned record exists, in the table or set aside
// (constraints.cpp), and its values.
int aside_column(const TableState& t) {
    return static_cast<int>(t.schema.key.size() + 3 + t.schema.values.size());
}
bool present(const TableState& t, const sql::Stmt& scan) {
    return scan.column_int(static_cast<int>(t.schema.key.size()) + 2) != 0 ||
           !scan.column_is_null(aside_column(t));
}
auto scanned_value(const TableState& t, const sql::Stmt& scan) {
    auto first = static_cast<int>(t.schema.key.size()) + 3;
    std::optional<std::vector<crdt::Value>> aside;
    if (scan.column_int(first - 1) == 0 && !scan.column_is_null(aside_column(t))) {
        aside = decode_values(scan.column_blob(aside_column(t)));
    }
    return [&scan, first, aside = std::move(aside)](int column) {
        if (aside) {
            auto at = static_cast<std::size_t>(column);
            return at < aside->size() ? (*aside)[at] : crdt::Value();
        }
        return scan.column(first + column);
    };
}

// The row change to send for one scanned record, or none when it holds nothing wanted.
// A version travels whole: one write stamps the row's life and its cells with the same
// clock, and the receiver covers that version once it has it. So every entry carrying a
// sent stamp goes along, and the life (always sent, as context) brings the entries that
// share its stamp.
// `present`: the user row exists; `value_at(i)` is its value column i.
template <typename ValueAt>
std::optional<wire::RowChange> wanted_row(const TableState& t, const std::vector<crdt::Value>& key,
                                          bool present, const ValueAt& value_at,
                                          const RowRecord& record, const Want& want) {
    std::vector<crdt::Stamp> sent{record.life.stamp};
    bool any = want.stamp(record.life.stamp);
    for (const auto& c : record.cells) {
        if (want.stamp(c.write.stamp)) {
            any = true;
            sent.push_back(c.write.stamp);
        }
    }
    for (const auto& c : record.counters) {
        if (want.stamp(c.write.stamp)) {
            any = true;
            sent.push_back(c.write.stamp);
        }
    }
    if (!any) {
        return std::nullopt;
    }
    auto is_sent = [&](const crdt::Stamp& stamp) {
        return std::find(sent.begin(), sent.end(), stamp) != sent.end();
    };
    wire::RowChange row; // in the names it has on the wire
    row.table = t.mesh_name;
    row.key = key;
    row.life = record.life;
    for (const auto& c : record.cells) {
        if (!is_sent(c.write.stamp)) {
            continue;
        }
        auto w = c.write;
        if (!c.has_value) {
            w.value = present && w.life == record.life.life ? value_at(c.column) : crdt::Value();
        }
        row.cells.push_back({t.mesh_columns[static_cast<std::size_t>(c.column)], w});
    }
    for (const auto& c : record.counters) {
        if (is_sent(c.write.stamp)) {
            row.counters.push_back({t.mesh_columns[static_cast<std::size_t>(c.column)], c.write});
        }
    }
    return row;
}

bool holds_wanted(const wire::RowChange& row, const crdt::VersionVector& wanted) {
    if (wanted_stamp(wanted, row.life.stamp)) {
        return true;
    }
    for (const auto& c : row.cells) {
        if (wanted_stamp(wanted, c.write.stamp)) {
            return true;
        }
    }
    for (const auto& c : row.counters) {
        if (wanted_stamp(wanted, c.write.stamp)) {
            return true;
        }
    }
    return false;
}

// Scans one table's records from the cursor on, in (vmax, key) order. True when the table
// is finished.
Result<bool> scan_table(Store::Impl& s, TableState& t, const Want& want, ReadCursor& cursor,
                        Page& page) {
    auto& scan = cursor.after_key.empty() ? t.scan : t.scan_after;
    sql::Reset reset(scan);
    auto in_memory = s.picked.tables.find(t.schema.name);
    const auto* picked = in_memory == s.picked.tables.end() ? nullptr : &in_memory->second;
    scan.bind_int(1, cursor.after_clock);
    // No LIMIT: rows that hold nothing wanted are skipped, so the page ends by its budgets.
    scan.bind_int(2, -1);
    if (!cursor.after_key.empty()) {
        TableState::bind_key(scan, 3, cursor.after_key);
    }
    int rc;
    while ((rc = scan.step()) == SQLITE_ROW) {
        if (page.full()) {
            return false;
        }
        auto row = s.scanned_row(t, scan);
        if (!row) {
            return row.status();
        }
        // A row picked up and not yet written: its record in memory is the current one.
        const RowRecord* record = &row->record;
        if (picked != nullptr) {
            if (auto it = picked->rows.find(row->key); it != picked->rows.end()) {
                record = &it->second;
            }
        }
        if (want.buckets == nullptr || (*want.buckets)[key_bucket(row->key)]) {
            if (auto change = wanted_row(t, row->key, present(t, scan), scanned_value(t, scan),
                                         *record, want)) {
                if (!page.take(std::move(*change))) {
                    return false;
                }
            }
        }
        cursor.after_clock = row->vmax;
        cursor.after_key = std::move(row->key);
    }
    if (rc != SQLITE_DONE) {
        return sql::error(s.db.get(), "scanning row records of '" + t.schema.name + "'");
    }
    return true;
}

// Held-back changes holding wanted versions, in the order they were kept. True when done.
Result<bool> scan_held_back(Store::Impl& s, const crdt::VersionVector& wanted, ReadCursor& cursor,
                            Page& page) {
    auto& scan = s.pending_scan;
    sql::Reset reset(scan);
    scan.bind_int(1, cursor.after_clock);
    int rc;
    while ((rc = scan.step()) == SQLITE_ROW) {
        if (page.full()) {
            return false;
        }
        auto id = scan.column_int(0);
        auto row = wire::decode_row(scan.column_blob(1));
        if (!row) {
            return Status(Code::corruption, "_peerlite_pending row " + std::to_string(id) + ": " +
                                                row.status().message());
        }
        if (holds_wanted(*row, wanted) && !page.take(std::move(*row))) {
            return false;
        }
        cursor.after_clock = id;
    }
    if (rc != SQLITE_DONE) {
        return sql::error(s.db.get(), "scanning held-back changes");
    }
    return true;
}

} // namespace

Result<wire::ChangeSet> Store::read_changes(const crdt::VersionVector& wanted, ReadCursor& cursor,
                                            std::size_t max_rows, std::size_t max_bytes) {
    auto& s = *impl_;
    if (wanted.empty()) {
        cursor.done = true;
        return wire::ChangeSet{};
    }
    if (auto st = refresh_schema(); !st.ok()) {
        return st;
    }
    // Pending local writes must be stamped first, so no value is sent with an older
    // write's clock. A read snapshot whose capture logs are empty has every value stamped:
    // read under it, taking no write lock; otherwise capture in a write transaction.
    std::optional<sql::Transaction> tx;
    if (auto st = begin_stamped(s, tx, &wanted); !st.ok()) {
        return st;
    }
    std::vector<TableState*> tables;
    for (auto& [name, t] : s.tables) {
        tables.push_back(&t);
    }
    if (cursor.after_clock < 0 && cursor.table < tables.size()) {
        cursor.after_clock = lowest_wanted(wanted);
    }
    Page page(cursor, std::max<std::size_t>(1, max_rows), max_bytes);
    bool done = false;
    while (!done && !page.full()) {
        auto finished = cursor.table < tables.size()
                            ? scan_table(s, *tables[cursor.table], Want{&wanted}, cursor, page)
                            : scan_held_back(s, wanted, cursor, page);
        if (!finished) {
            return finished.status();
        }
        if (!*finished) {
            break;
        }
        // On to the next table, or from the last table to the held-back changes (ids
        // from 0), or the end.
        done = cursor.table == tables.size();
        ++cursor.table;
        cursor.after_key.clear();
        cursor.after_clock = cursor.table < tables.size() ? lowest_wanted(wanted) : 0;
    }
    cursor.done = done;
    if (auto st = s.commit(*tx); !st.ok()) {
        return st;
    }
    return std::move(page.out);
}

Result<std::optional<wire::ChangeSet>> Store::read_picked_up(const crdt::VersionVector& wanted,
                                                             ReadCursor& cursor,
                                                             std::size_t max_rows,
                                                             std::size_t max_bytes) {
    auto& s = *impl_;
    using None = std::optional<wire::ChangeSet>;
    s.take_back_picked();
    if (!s.journal_replayed) {
        return None(); // a failed write took them: read_changes() writes them back first
    }
    auto only_picked = [&] {
        if (s.picked.empty() || wanted.empty()) {
            return false;
        }
        for (const auto& [origin, ranges] : wanted.origins()) {
            if (origin != s.self || !ranges.minus(s.picked.issued).empty()) {
                return false;
            }
        }
        return true;
    };
    if (!only_picked()) {
        return None();
    }
    if (auto st = refresh_schema(); !st.ok()) {
        return st;
    }
    // Values are read from the user rows: every write visible in this snapshot must be
    // picked up first, or a value would travel under an older write's stamp.
    auto read = s.begin_read_picked_up();
    if (!read) {
        return read.status();
    }
    auto& look = read->first;
    if (!only_picked()) {
        return None();
    }
    auto finish_part = [&](wire::ChangeSet part) -> Result<None> {
        if (auto st = s.commit(look); !st.ok()) {
            return st;
        }
        return None(std::move(part));
    };
    // In (table, key) order from the cursor on: cursor.table counts picked-up tables, and
    // after_key is the last row taken. Rows picked up after a part was read holding wanted
    // versions are ones the part already held: they only supersede.
    Page page(cursor, std::max<std::size_t>(1, max_rows), max_bytes);
    std::size_t index = 0;
    for (auto& [name, p] : s.picked.tables) {
        if (index++ < cursor.table) {
            continue;
        }
        auto* t = s.table(name);
        if (t == nullptr) {
            return None();
        }
        auto from =
            cursor.after_key.empty() ? p.rows.begin() : p.rows.upper_bound(cursor.after_key);
        for (auto it = from; it != p.rows.end(); ++it) {
            const auto& [key, record] = *it;
            if (page.full()) {
                return finish_part(std::move(page.out));
            }
            auto values = read_user_row(*t, key);
            if (!values) {
                return values.status();
            }
            auto value_at = [&](int column) {
                return (**values)[static_cast<std::size_t>(column)];
            };
            auto change = wanted_row(*t, key, values->has_value(), value_at, record, Want{&wanted});
            if (change && !page.take(std::move(*change))) {
                return finish_part(std::move(page.out));
            }
            cursor.after_key = key;
        }
        cursor.table = index;
        cursor.after_key.clear();
    }
    cursor.done = true;
    if (auto st = s.commit(look); !st.ok()) {
        return st;
    }
    return None(std::move(page.out));
}

Result<wire::ChangeSet> Store::read_buckets(const std::string& table,
                                            const std::vector<std::uint32_t>& buckets,
                                            ReadCursor& cursor, std::size_t max_rows,
                                            std::size_t max_bytes) {
    auto& s = *impl_;
    if (auto st = refresh_schema(); !st.ok()) {
        return st;
    }
    auto* t = s.table_on_mesh(table);
    if (t == nullptr) {
        return Status(Code::not_found, "table '" + table + "' is not synced here");
    }
    std::vector<bool> in(wire::kDigestBuckets, false);
    for (auto b : buckets) {
        if (b >= wire::kDigestBuckets) {
            return Status(Code::invalid_argument,
                          "digest bucket " + std::to_string(b) + " is out of range");
        }
        in[b] = true;
    }
    std::optional<sql::Transaction> tx;
    if (auto st = begin_stamped(s, tx); !st.ok()) {
        return st;
    }
    Page page(cursor, std::max<std::size_t>(1, max_rows), max_bytes);
    auto finished = scan_table(s, *t, Want{nullptr, &in}, cursor, page);
    if (!finished) {
        return finished.status();
    }
    cursor.done = *finished;
    if (auto st = s.commit(*tx); !st.ok()) {
        return st;
    }
    return std::move(page.out);
}

Result<std::vector<Conflict>> Store::conflicts(const ConflictQuery& query) {
    return read_conflicts(impl_->db.get(), query);
}

Result<Store::Impl::ScannedRow> Store::Impl::scanned_row(const TableState& t,
                                                         sql::Stmt& scan) const {
    auto nkeys = static_cast<int>(t.schema.key.size());
    ScannedRow row;
    row.vmax = scan.column_int(nkeys + 1);
    auto record = decode_record(scan.column_blob(nkeys),
                                crdt::Hlc::from_raw(static_cast<std::uint64_t>(row.vmax)), nodes);
    if (!record) {
        return Status(Code::corruption,
                      "table '" + t.schema.name + "': " + record.status().message());
    }
    row.record = std::move(*record);
    for (int i = 0; i < nkeys; ++i) {
        row.key.push_back(scan.column(i));
    }
    return row;
}

Status Store::Impl::for_each_whole_row(TableState& t,
                                       const std::function<Status(wire::RowChange&&)>& take) {
    sql::Reset reset(t.scan);
    t.scan.bind_int(1, -1);
    t.scan.bind_int(2, -1);
    int rc;
    while ((rc = t.scan.step()) == SQLITE_ROW) {
        auto row = scanned_row(t, t.scan);
        if (!row) {
            return row.status();
        }
        if (auto change = wanted_row(t, row->key, present(t, t.scan), scanned_value(t, t.scan),
                                     row->record, Want{})) {
            if (auto st = take(std::move(*change)); !st.ok()) {
                return st;
            }
        }
    }
    if (rc != SQLITE_DONE) {
        return sql::error(db.get(), "scanning row records of '" + t.schema.name + "'");
    }
    return Status::success();
}

} // namespace peerlite::store
