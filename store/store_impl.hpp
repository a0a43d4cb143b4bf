// The store's internal state, shared by its parts (open/schema, capture, apply, reading).
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <peerlite/store/store.hpp>

#include "../schema/capture_sql.hpp"
#include "../schema/table_schema.hpp"
#include "../sql/sqlite.hpp"
#include "digest.hpp"
#include "node_index.hpp"
#include "node_lock.hpp"
#include "pickup_journal.hpp"
#include "row_record.hpp"

namespace peerlite::store {

// Prepared statements and schema of one synced table.
struct TableState {
    schema::TableSchema schema; // names as they are in this file
    // The names the table and its value columns have on the wire: those it had when it was
    // first synced, kept through renames on this node (_peerlite_names, mesh_names.cpp).
    std::string mesh_name;
    std::vector<std::string> mesh_columns; // by value column index
    // Index of a value column by its name on the wire, or -1.
    int mesh_column(std::string_view name) const;
    sql::Stmt log_select;   // seq, op, cols, at, k... in seq order: ?1 rows after seq ?2
    sql::Stmt log_delete;   // seq <= ?1
    sql::Stmt user_select;  // value columns by key
    sql::Stmt user_upsert;  // all key and value columns
    sql::Stmt user_update;  // ?1 mask, ?2.. values, then keys
    sql::Stmt user_delete;  // by key
    sql::Stmt user_respell; // keys: the row's key written in its canonical spelling
    sql::Stmt rec_select;   // rec by key
    sql::Stmt rec_insert;   // keys, rec, vmax
    sql::Stmt rec_update;   // keys, rec, vmax
    sql::Stmt scan;         // rows with vmax > ?1 joined with the user row and aside row
    sql::Stmt scan_after;   // the same from (vmax, key) > (?1, ?3...)
    // Rows set aside because they break a constraint (constraints.cpp).
    sql::Stmt aside_select; // vals by key
    sql::Stmt aside_put;    // keys, vals, reason
    sql::Stmt aside_delete; // by key
    sql::Stmt aside_all;    // keys, vals, reason of every row set aside
    // How many rows are set aside (-1: to be counted again, after a failed transaction).
    std::int64_t aside_rows = -1;
    // Each value column's DEFAULT, evaluated when the table was loaded (NULL when it has
    // none): what a cell no change has written holds in a new life of the row, as SQLite
    // would have given it on an INSERT that names no value for it.
    std::vector<crdt::Value> defaults;
    // Each value column's place in the order of value column names (digests sort by
    // name, the same on every node, not by this file's positions).
    std::vector<int> name_rank;
    bool names_in_order = false; // name_rank[i] == i: positions already sort by name
    // What this transaction's record writes add to each digest bucket, wrapping (empty
    // until the first), and the buckets touched: written by persist_progress(), dropped
    // by begin_write() if a transaction failed.
    std::vector<std::uint64_t> digest_delta;
    std::vector<std::uint32_t> digest_touched;
    void note_digest(std::uint32_t bucket, std::uint64_t delta);
    void drop_digest_deltas();

    Status prepare(sqlite3* db);
    Status load_defaults(sqlite3* db);
    // In a table with a NOCASE or RTRIM key, writes the row's key as canonical_key() spells
    // it, so every node holds one spelling (docs/design/constraints.md).
    Status respell(const std::vector<crdt::Value>& key);
    // Binds the key values at parameters first, first+1, ...
    static void bind_key(sql::Stmt& stmt, int first, const std::vector<crdt::Value>& key);
};

// Local writes picked up from the capture logs and stamped, not yet written into the file
// (docs/design/neighbour.md): the row records capture would write, kept in memory until a
// transaction the store commits anyway writes them (Impl::flush_picked_up()).
struct PickedUp {
    struct Table {
        std::map<std::vector<crdt::Value>, RowRecord> rows;
        // Per row, per column: the winner to write back into the user table at the flush
        // (a local max/min write that lost, a counter value refused).
        std::map<std::vector<crdt::Value>, std::map<int, crdt::Value>> restores;
        std::int64_t through = -1;      // the last log entry picked up (its log row stays)
        std::int64_t through_at_ms = 0; // its time (PickupJournal::Through)
    };
    std::map<std::string, Table> tables;
    crdt::ClockRanges issued; // this node's stamps issued into it
    std::size_t rows = 0;
    // Rows the current pick-up round changed (its journal entry).
    std::set<std::pair<std::string, std::vector<crdt::Value>>> touched;
    bool empty() const { return tables.empty(); }
};

struct Store::Impl {
    std::string path;
    std::string journal_mode_before; // as the file was before open() made it WAL
    std::optional<NodeLock> lock;    // held for the store's lifetime
    StoreOptions options;
    sql::DbHandle db;
    crdt::NodeId self;
    crdt::NodeId id_salt;   // with options.owner, what self is derived from
    crdt::NodeId former_id; // the file's id before this open derived it from the owner
    crdt::HlcClock clock;
    NodeIndex nodes;
    crdt::VersionVector versions;
    std::set<crdt::NodeId> dirty_origins; // versions to persist at the next commit
    std::map<std::string, TableState> tables;
    std::int64_t schema_version = -1;
    std::vector<CaptureWarning> capture_warnings; // until take_capture_warnings()
    struct Stopped {
        std::string reason;
        crdt::VersionVector versions; // of its records, as of the stop
    };
    std::map<std::string, Stopped> stopped; // synced tables refresh_schema() cannot follow
    crdt::VersionVector unserved;           // every stopped table's versions
    std::vector<TableEvent> table_events;   // until take_table_events()
    // Own clocks a rollback took from the file: not claimed until peers give them back
    // (persisted as own_gap_first / own_gap_last in _peerlite_meta).
    std::optional<crdt::ClockRange> own_gap;
    bool own_gap_dirty = false;
    std::uint64_t recorded_own_clock = 0; // in the lock file for this node (NodeLock)
    std::optional<RollBack> rolled_back;

    sql::Stmt meta_put;
    sql::Stmt version_delete;
    sql::Stmt version_insert;
    sql::Stmt conflict_insert;
    sql::Stmt conflict_prune;
    sql::Stmt pending_insert;
    sql::Stmt pending_scan; // id, change with id > ?1, in id order
    sql::Stmt data_version_stmt;
    sql::Stmt digest_select; // sums of table ?1
    sql::Stmt digest_put;    // tbl, sums

    explicit Impl(StoreOptions o);

    std::int64_t now_ms() const;
    TableState* table(const std::string& name);
    // The synced table a peer's change names (its name on the wire), or nullptr.
    TableState* table_on_mesh(const std::string& mesh_name);

    // Record I/O: a missing record is an empty one (life 0). Call before_change() before
    // changing a loaded record that will be saved: the digest update needs its old hash.
    Result<RowRecord> load_record(TableState& t, const std::vector<crdt::Value>& key);
    static void before_change(const TableState& t, const std::vector<crdt::Value>& key,
                              RowRecord& r);
    Status save_record(TableState& t, const std::vector<crdt::Value>& key, const RowRecord& r);

    // Every write transaction of the store's connection starts here: what a failed
    // transaction left in memory (digest deltas) is dropped with its rollback.
    Result<sql::Transaction> begin_write();

    void cover(const crdt::NodeId& origin, crdt::ClockRange range);
    // Covers this node's own clocks up to the last one issued: each is stored or never
    // existed, except those of a rollback (own_gap), which only peers can give back.
    void cover_own_clocks();
    // Persists dirty version ranges, digest deltas, the clock and the rollback gap; call
    // inside the transaction.
    Status persist_progress();
    // Commits, then records this node's own high-water clock in the lock file (NodeLock).
    Status commit(sql::Transaction& tx);
    // At open: compares the file with what the lock file recorded at the last commit, and
    // opens a gap for the own changes a rollback took away.
    Status detect_rollback();
    // While open, inside a write transaction: Code::io_error, and `replaced` set, when the
    // file no longer holds the clock this store last saved (or another node id): it was
    // replaced underneath (a live restore through the backup API). Memory then describes
    // another file; the store must be opened again, which detects the rollback.
    Status check_not_replaced();
    std::uint64_t saved_clock = 0; // the clock persist_progress() last wrote
    bool replaced = false;

    // The row at the current step of `scan` (a table's scan or scan_after statement):
    // its key and its decoded record (read_changes.cpp).
    struct ScannedRow {
        std::vector<crdt::Value> key;
        RowRecord record;
        std::int64_t vmax = 0; // the record's highest clock, the scan's order
    };
    Result<ScannedRow> scanned_row(const TableState& t, sql::Stmt& scan) const;
    // Every record of `t` as a whole row change (every stamp, values from the table), in
    // scan order, handed to `take` (read_changes.cpp).
    Status for_each_whole_row(TableState& t, const std::function<Status(wire::RowChange&&)>& take);

    // Digests (digest.cpp). The buckets of one table computed from its records.
    Result<std::vector<std::uint64_t>> compute_buckets(TableState& t);
    // Builds a table's digests from its records if it has none yet (a file from before
    // digests, or a table synced for the first time): inside the caller's transaction.
    Status ensure_digests(TableState& t);
    Status flush_digests();
    Status put_digests(const std::string& table, const std::vector<std::uint64_t>& buckets);

    Status record_conflict(const Conflict& c);
    // Deletes conflicts older than options.conflict_retention.
    Status prune_conflicts();

    // Parts implemented in capture.cpp, apply.cpp, read_changes.cpp.
    // Writes what was picked up and captures what is left, into the caller's write
    // transaction: after it (and the commit) the file holds every local write stamped.
    Result<CaptureStats> capture_locked();
    // Inside the caller's write transaction, before `rows` from a peer are applied: true
    // when no row of `rows` meets a local write, picked up or still in the log (a meeting
    // log entry is picked up first, in memory), so they can be applied beside them; false
    // when capture_locked() must write them first.
    Result<bool> pick_up_beside(const std::vector<const wire::RowChange*>& rows);
    // Whether a log entry not yet picked up touches the key of a row of `rows`.
    Result<bool> log_meets(const std::vector<const wire::RowChange*>& rows);
    // A read transaction in whose snapshot every local write is picked up (a crashed
    // store's rounds re-issued first), and what the round picked up; the journal is held
    // from before the snapshot to the round's append.
    Result<std::pair<sql::Transaction, CaptureStats>> begin_read_picked_up();
    // Picks up, inside the caller's read or write transaction, what the triggers logged
    // since the last pick-up into `picked` (stamped; journaled when `journal_round`).
    Result<CaptureStats> pick_up_round(bool journal_round);
    // Re-issues the rounds a crashed store journaled (once, at the first capture).
    Status replay_journal();
    // Writes `picked` into the caller's write transaction (records, write-backs, log
    // entries deleted); `picked` itself is emptied by commit().
    Status flush_picked_up();
    PickedUp picked;
    bool picked_flushed = false;  // in the current write transaction
    bool picked_consumed = false; // its records moved into the current write transaction
    // After a write transaction that took the picked-up records failed: reloads them from
    // the journal (at the next replay). Called before any use of `picked`.
    void take_back_picked();
    std::optional<PickupJournal> journal;
    // The journal's exclusive lock (PickupJournal::hold()), if there is a journal.
    std::optional<PickupJournal::Hold> hold_journal();
    std::vector<PickupJournal::Round> replay_rounds; // a crashed store's, read at open
    bool journal_replayed = false;
    bool journal_dirty = false;     // rounds appended since it was last restarted
    bool journal_started = false;   // restarted by this store (else pick-ups fail)
    std::uint64_t journal_base = 0; // the clock it was restarted at
    // Whether any capture log holds entries, as of the current transaction's snapshot.
    // `after_picked`: only entries not picked up yet.
    Result<bool> log_pending(bool after_picked = false);
    // A read transaction when every local write is already stamped (no capture log holds
    // entries in its snapshot), or none when some wait: callers then capture under
    // SQLite's write lock. Most calls find nothing pending and take no write lock.
    Result<std::optional<sql::Transaction>> read_if_all_stamped();
    // Merges rows; each row's versions not in `claimed` are covered one by one (the
    // claim itself is recorded by the caller once the whole set is in). Rows from a peer
    // whose versions are all covered here are skipped; rows taken out of
    // _peerlite_pending are covered already (held back) and must be merged all the same.
    // A repair (full row state after a digest mismatch) is merged even where its versions
    // are covered: the mismatch says some covered version is not what it should be.
    enum class Arrival { from_peer, from_pending, repair };
    Result<ApplyStats> apply_rows(const std::vector<const wire::RowChange*>& rows,
                                  const crdt::VersionVector& claimed,
                                  Arrival arrival = Arrival::from_peer);
    Status validate(const wire::ChangeSet& changes);
    Result<ApplyStats> apply_set(const wire::ChangeSet& changes, Arrival arrival);
    Status hold_back(const wire::RowChange& row, const std::string& reason);

    // Rows kept out of their table because they break one of its constraints
    // (constraints.cpp, docs/design/constraints.md). The row's values if it is set aside.
    Result<std::optional<std::vector<crdt::Value>>>
    aside_values(TableState& t, const std::vector<crdt::Value>& key);
    // Writes a live row whole into its table. If that breaks a UNIQUE constraint, the row
    // created first (by its life's stamp, then key) keeps the value and the others are set
    // aside; if it breaks a CHECK or NOT NULL constraint, the row is set aside. A row put
    // back takes its values out of the aside table.
    Status place_row(TableState& t, const std::vector<crdt::Value>& key,
                     std::vector<crdt::Value> values);
    // Tries every row set aside again, created first first: a row that left the table, or
    // changed, may have made room. Inside the caller's write transaction.
    Status retry_aside();
    Status delete_aside(TableState& t, const std::vector<crdt::Value>& key);
    // Set while an apply runs beside local writes not yet in the file (pick_up_beside()):
    // setting another row aside then needs its local writes in the file first, so
    // place_row() sets `aside_needs_capture` and fails, and the apply is done again after
    // capture_locked().
    // Rows in _peerlite_pending, counted when first needed in a write transaction
    // (-1: not counted in this one).
    std::int64_t held_rows = -1;
    bool beside_local_writes = false;
    bool aside_needs_capture = false;
};

// The user row's value columns, or nothing if the row is gone (capture.cpp).
Result<std::optional<std::vector<crdt::Value>>> read_user_row(TableState& t,
                                                              const std::vector<crdt::Value>& key);

// Key values and conflict values as stored in _peerlite_conflicts and _peerlite_pending.
std::string encode_values(const std::vector<crdt::Value>& values);
std::vector<crdt::Value> decode_values(std::string_view bytes);

} // namespace peerlite::store
