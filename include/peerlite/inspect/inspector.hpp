// Read-only inspection of a synced database: what the `peerlite` CLI shows.
//
// An Inspector opens the file with SQLITE_OPEN_READONLY: it never creates a file, never
// writes, and never takes SQLite's write lock, so it can run beside a daemon and
// applications at any time. Each call reads inside its own read transaction (one
// consistent snapshot per call) and ends it before returning: no read transaction stays
// open between calls, so the WAL can always checkpoint.
//
// An Inspector sees what has been captured (stamped) and merged. Writes still in a
// table's capture log (made while no peerlite process ran, or in the last milliseconds
// before a daemon's pickup) are reported as pending where it matters, never guessed at.
// A daemon stamps local writes in memory and writes them into the file later, when the
// app is idle (docs/design/neighbour.md); history() reads those stamps from the daemon's
// journal (<file>.peerlite.journal) and marks the row `picked_up`. The other calls show
// the file as written.
//
// Thread safety: one thread at a time, like a Store.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <peerlite/crdt/merge.hpp>
#include <peerlite/crdt/version_vector.hpp>
#include <peerlite/status.hpp>
#include <peerlite/store/conflict.hpp>
#include <peerlite/wire/change_set.hpp>

namespace peerlite::store {

struct ColumnInfo {
    std::string name;
    crdt::MergeRule rule = crdt::MergeRule::last_writer_wins;
};

// A synced table as registered in the file.
struct TableInfo {
    std::string name;
    std::vector<std::string> key;                  // primary key columns, in key order
    std::vector<std::string> key_types;            // their declared types ("" when none)
    std::vector<ColumnInfo> columns;               // synced value columns, in registry order
    int column_index(std::string_view name) const; // -1 if not a synced value column
};

// One node's contribution to a counter cell.
struct Contribution {
    crdt::Stamp stamp; // stamp.node is the contributing node
    std::int64_t total = 0;
};

struct CellHistory {
    ColumnInfo column;
    crdt::Value value;                       // visible now (NULL when the row is deleted)
    std::optional<crdt::Stamp> written;      // the write that holds the cell (not for counters)
    std::vector<Contribution> contributions; // counters: one per node, current life only
    std::vector<Conflict> conflicts;         // this cell's conflicts still logged, newest first
};

struct RowHistory {
    std::vector<crdt::Value> key;
    bool known = false;      // peerlite holds a record for the key (row or tombstone)
    bool exists = false;     // the row is in the user table
    std::uint64_t life = 0;  // causal length: odd while the row exists, even once deleted
    crdt::Stamp life_stamp;  // the insert or delete that set `life`
    std::size_t pending = 0; // capture-log entries for this key not stamped yet
    // Stamped by a daemon (and sent to peers) but not yet written into the file: life,
    // stamps and contributions are the journal's.
    bool picked_up = false;
    std::vector<CellHistory> columns;
};

// A user-visible row: key values -> value columns in TableInfo::columns order.
using TableContents = std::map<std::vector<crdt::Value>, std::vector<crdt::Value>>;

// One line of the change feed.
struct FeedEntry {
    enum class Kind { insert, remove, cell, counter };
    Kind kind = Kind::cell;
    std::string table;
    std::vector<crdt::Value> key;
    std::string column;            // empty for insert/remove
    crdt::Value value;             // cell: its value now; counter: the cell's sum now
    std::int64_t contribution = 0; // counter: the stamping node's running total
    crdt::Stamp stamp;             // when and where the change was made
    std::string cursor;            // resume point: pass to changes() to get what follows this entry
};

struct FeedPage {
    std::vector<FeedEntry> entries; // in stamp order
    std::string cursor;             // resume point after the whole page
};

// A broken metadata invariant (docs/metadata-format.md), or a warning.
struct Violation {
    std::string table; // empty when not about one table
    std::string key;   // the row's key as text, empty when not about one row
    std::string what;
    bool warning = false; // something to look at, not a broken invariant
};

// The content digests a file keeps (docs/design/digests.md), read in one snapshot with
// the version vector they belong to. Two replicas with equal versions hold the same
// content exactly when their digests are equal (up to a 64-bit hash collision), for
// every value except last-writer-wins cells, whose values the digests leave out.
struct ContentDigests {
    crdt::VersionVector versions;
    std::vector<wire::TableDigest> tables; // with buckets
};

// Keys print with crdt::format_key(), the form Inspector::parse_key() reads.

// A row kept out of its table because, as merged, it breaks one of the table's
// constraints (docs/design/constraints.md): every node holding the same changes keeps the
// same rows aside. Settled with store::settle() (operator_commands.hpp), `peerlite resolve`.
struct SetAsideRow {
    std::string table;
    std::vector<crdt::Value> key;
    std::string constraint; // SQLite's words: "UNIQUE constraint failed: users.email"
    std::vector<std::pair<std::string, crdt::Value>> values; // the row as merged
    // The rows in the table holding one of its UNIQUE values (none for CHECK, NOT NULL),
    // as they are there.
    struct Holder {
        std::vector<crdt::Value> key;
        std::vector<std::pair<std::string, crdt::Value>> values;
    };
    std::vector<Holder> holders;
};

class Inspector {
public:
    struct Impl;

    // Code::not_found: no such file. Code::invalid_argument: not a peerlite database
    // (not SQLite, or no peerlite metadata). Code::unsupported: another format version.
    static Result<std::unique_ptr<Inspector>> open(const std::string& path);
    ~Inspector();

    const std::string& path() const;
    const crdt::NodeId& node_id() const;
    // Synced tables as of open() or the last refresh().
    const std::vector<TableInfo>& tables() const;
    // Code::unknown_table unless `name` is a synced table. Valid until refresh().
    Result<const TableInfo*> table(std::string_view name) const;
    // Re-reads the table registry and node list (after the schema changed).
    Status refresh();

    // Parses a key given as text: one value per key column, separated by commas ("\,"
    // is a literal comma, "\\" a backslash). Each value is converted as SQLite's affinity
    // for the column's declared type would store it (INTEGER/NUMERIC/REAL: numbers
    // when they look like numbers; x'00ff' is a BLOB). Code::invalid_argument when the
    // count is wrong or an INTEGER PRIMARY KEY value is not an integer.
    Result<std::vector<crdt::Value>> parse_key(const TableInfo& table, std::string_view text) const;

    Result<std::vector<Conflict>> conflicts(const ConflictQuery& query = {});
    // Rows set aside, of one table or of all, in key order.
    Result<std::vector<SetAsideRow>> set_aside(const TableInfo* table = nullptr);
    // Code::not_found when peerlite knows nothing of the key and the row does not exist.
    Result<RowHistory> history(const TableInfo& table, const std::vector<crdt::Value>& key);

    // Keeps a daemon from stamping (picking up) or writing back local writes while it
    // lives, so that what history() shows stays true meanwhile, but for the caller's own
    // writes. For a tool or test that reads history() and then writes in the same
    // transaction; the daemon's pushes wait for it, so keep it short.
    class PickUpHold {
    public:
        PickUpHold(PickUpHold&& other) noexcept;
        PickUpHold& operator=(PickUpHold&&) = delete;
        ~PickUpHold();

    private:
        friend class Inspector;
        explicit PickUpHold(Impl* impl) : impl_(impl) {}
        Impl* impl_;
    };
    // Code::io_error when the journal cannot be read; Code::busy when a daemon holds it
    // for more than `wait` (its process is stopped in the middle of a pick-up).
    Result<PickUpHold> hold_pick_ups(std::chrono::milliseconds wait = std::chrono::seconds(2));
    Result<TableContents> contents(const TableInfo& table);

    // The change feed: every captured or merged change this replica covers and the
    // cursor does not, in stamp order (a change superseded before it was read shows only
    // as its successor). An empty cursor starts from the beginning. Resuming from an
    // entry's cursor yields exactly the entries after it, plus whatever arrived since.
    // Code::invalid_argument for a malformed cursor or one from another database.
    Result<FeedPage> changes(const std::string& cursor);

    // What the store's digests say now. Writes not yet captured are not in them.
    Result<ContentDigests> digests();

    // Checks the invariants of docs/metadata-format.md; an empty list means clean.
    Result<std::vector<Violation>> verify();

    // SQLite's data_version: changes whenever another connection commits.
    Result<std::int64_t> data_version();

private:
    explicit Inspector(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

} // namespace peerlite::store
