// The store: one SQLite file whose declared tables peerlite keeps in sync.
//
// Data flow: any connection writes a synced table -> triggers append to the table's
// capture log in the same transaction -> capture() assigns clocks and folds the log into
// per-row records -> read_changes() yields change sets for peers -> a peer's apply()
// merges them with the per-column rules, in bounded transactions.
//
// The store has its own connection, on which SQLite triggers are switched off: changes
// it applies are never captured again as local writes, and the user's own triggers do
// not fire for them either (they already fired on the node that made the write, and
// their effects sync if they write synced tables). Applications write through any other
// connection, or through a store::Writer (peerlite/store/writer.hpp) for cheaper capture.
//
// Thread safety: a Store is used by one thread at a time. One Store per file, in any
// process: a Store is the file's node, the only writer of its clock and versions, and
// open() refuses a second one with Code::busy while the first is alive (a lock on
// "<file>.peerlite.lock"). Any number of other connections, a store::Writer, and the
// read-only peerlite CLI may use the file beside it.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <peerlite/crdt/hlc.hpp>
#include <peerlite/crdt/version_vector.hpp>
#include <peerlite/schema/table_spec.hpp>
#include <peerlite/status.hpp>
#include <peerlite/store/conflict.hpp>
#include <peerlite/wire/change_set.hpp>

namespace peerlite::store {

struct StoreOptions {
    // Wall clock for the HLC; default: the system clock.
    crdt::WallClock wall;
    // Changes whose clock is further ahead of our wall clock are refused (Code::clock_drift).
    std::chrono::milliseconds max_clock_drift = crdt::kDefaultMaxDrift;
    // Decided conflicts older than this are pruned. Longer keeps more history for
    // `peerlite conflicts`; each conflict costs roughly 100 bytes plus its two values.
    std::chrono::milliseconds conflict_retention = std::chrono::hours(24 * 30);
    // Rows per apply transaction: larger applies faster, smaller lets local writers in
    // sooner (each transaction holds SQLite's write lock while it runs).
    std::size_t apply_batch_rows = 2000;
    // How long the store's connection waits for SQLite's write lock.
    int busy_timeout_ms = 5000;
    // How long open() keeps trying for the write lock it needs once (to set up or check
    // its metadata) while another connection holds it: an app in a long transaction
    // delays a starting node rather than stopping it. Past this, Code::busy.
    std::chrono::milliseconds open_timeout = std::chrono::seconds(60);
    // At most about this many rows are held picked up in memory (pick_up()); past it, a
    // pick-up stops early and the caller writes them with capture(). Larger keeps the
    // file untouched through longer bursts of local writes; each row costs a few hundred
    // bytes of memory.
    std::size_t max_picked_up_rows = 10'000;
    // At most this many rows held back (for tables or columns this file lacks yet,
    // held_back()): a change set that would hold back more is refused whole
    // (Code::limit_exceeded) and asked for again later, so a peer, faulty or hostile,
    // cannot fill the disk with rows this node cannot use. Larger lets a node lag further
    // behind a schema change; each row costs its size on disk.
    std::size_t max_held_back_rows = 1'000'000;
    // Who runs this file as its node, e.g. the daemon's public key; empty: not checked,
    // and the node id is random. Named, the node id is derived from it and the file's
    // random salt (crdt::NodeId::derive, id_salt()); a file made before ids were derived
    // takes its derived id at open (former_id()): its changes so far stay, under the old
    // id, as any origin's do, and a gap a rollback left in them is filled by anti-entropy
    // like any origin's (docs/operating.md, "Node ids").
    // Recorded at the first open that names one; a later open naming another is refused
    // (Code::identity_conflict): the file is a copy of another node's file, which would
    // otherwise run as a second node under the same id (docs/operating.md). After
    // replacing a node's key pair on purpose, forget_owner() lets the next open record
    // the new one.
    std::string owner;
};

struct CaptureStats {
    std::size_t log_entries = 0;    // log rows picked up
    std::size_t column_changes = 0; // cells and counter contributions stamped
};

// A local write capture did not take as written. Today the one kind: a value a counter
// column cannot hold (crdt::counter_value(): NULL, TEXT, BLOB, a fractional or
// out-of-range REAL). This node's contribution is left as it was and the cell is put
// back to the counter's sum, the same on every node, so nothing is rounded or lost
// without a word.
struct CaptureWarning {
    std::string table;
    std::vector<crdt::Value> key;
    std::string column;
    crdt::Value refused;      // the value found in the cell
    std::int64_t restored_to; // the counter's sum, written back into the cell
    std::string message;      // all of the above in one line, for a log
};

struct ApplyStats {
    std::size_t rows = 0;           // row changes merged
    std::size_t column_changes = 0; // cells and counter contributions examined
    std::size_t won = 0;            // ... of which changed this replica
    std::size_t held_back = 0;      // row changes kept aside (unknown table or column)
    std::size_t conflicts = 0;      // conflicts recorded
    std::size_t transactions = 0;
};

// A row whose encoding alone is over read_changes()'s byte budget: no message can carry
// it, so it stays on this node. read_changes() reports it instead of returning it; the
// caller logs it and leaves its versions out of any coverage claim.
struct OversizedRow {
    std::string table;
    std::vector<crdt::Value> key;
    std::string column;           // its largest value's column
    std::size_t column_bytes = 0; // ... and that value's size
    std::size_t bytes = 0;        // the row change's encoded size
    std::vector<crdt::Stamp> stamps;
};

// A synced table whose shape peerlite can no longer follow: dropped, renamed, or a synced
// column renamed or dropped (docs/operating.md). The rest of the file goes on syncing.
// While stopped, what its triggers still log is kept for later, changes from peers for it
// are held back, and its rows are not served (see unserved()); it resumes by itself once
// the table is back in a shape peerlite follows.
struct StoppedTable {
    std::string table;
    std::string reason; // what happened and the way back, in one line for a log
};

// Something a schema change made the store do to a table on its own, for the caller to
// log: it stopped, it resumed, it had lost its capture triggers (a rebuild) and they
// were put back, with the changes made meanwhile captured, or it or one of its columns
// was renamed and the rename followed (it keeps its name on the wire).
struct TableEvent {
    enum class Kind { stopped, resumed, repaired, renamed };
    Kind kind;
    std::string table;
    std::string message;
};

// Position in a read_changes() scan; start with a default-constructed one.
struct ReadCursor {
    std::size_t table = 0; // among synced tables; past the last: the held-back changes
    // The last row taken: its greatest clock and its key (empty key: every row of that
    // clock was taken). In the held-back pass, after_clock is the last pending entry's id.
    std::int64_t after_clock = -1;
    std::vector<crdt::Value> after_key;
    bool done = false;
    std::vector<OversizedRow> oversized; // rows skipped so far in this scan
};

// A file found at open holding fewer of this node's own changes than it held at its last
// commit: restored from a backup, or put back from an older copy (docs/operating.md).
// The changes in between exist only on peers now: this node leaves them out of its
// claims and asks for them like any other node's, until it holds them again.
struct RollBack {
    crdt::Hlc held_through; // this node's own changes the file holds, up to this clock
    crdt::Hlc had_through;  // ... and up to which it held them before
};

class Store {
public:
    // Opens or creates the database, creating peerlite's metadata tables on first use
    // and giving the database a fresh random node id. Code::busy if another Store (in
    // this process or another) has the file open.
    static Result<std::unique_ptr<Store>> open(const std::string& path, StoreOptions options = {});
    ~Store();

    const crdt::NodeId& node_id() const;
    // The id the file carried before this open gave it StoreOptions::identity; nil when
    // it already carried that id (or none was asked for).
    const crdt::NodeId& former_id() const;
    // The random salt node_id() is derived with (StoreOptions::owner); nil until an open
    // names an owner.
    const crdt::NodeId& id_salt() const;
    const std::string& path() const;
    // The file's journal mode before open() switched it to WAL, which peerlite needs so
    // apps read while it writes: "wal" when it already was (docs/operating.md).
    const std::string& journal_mode_before() const;

    // Starts syncing a table (or updates its rules): validates the declaration against
    // the table, installs capture triggers, and records rows already present as this
    // node's changes. Warnings (e.g. INTEGER PRIMARY KEY) are returned; so is the reason
    // of a synced table that is stopped (stopped_tables()), which is not an error.
    // A table renamed in the file since it was first synced may be declared under either
    // name; so may its renamed columns.
    Result<std::vector<std::string>> sync_table(const schema::TableSpec& spec);
    // Synced tables, by their names in the file.
    std::vector<std::string> synced_tables() const;
    // The name a synced table has on the wire: the name it had when first synced, kept
    // through renames in this file (docs/operating.md); `table` itself when not synced.
    std::string mesh_name(const std::string& table) const;
    // Takes a synced table out of sync on this node: its capture triggers and sync metadata
    // are removed and it becomes a plain table, rows untouched. Nothing synced is lost:
    // every row's synced state (its record, with its values) moves to the held-back
    // changes, so this node still serves what it held to peers, and peers' later changes
    // to the table are held back like changes to any table this node does not sync. Add
    // it again with sync_table(), which merges what was held back. Returns how many rows
    // were moved aside. Code::not_found if the table is not synced here; Code::schema_mismatch
    // if it is stopped (stopped_tables()): make it followable again first, as its reason
    // says. `table` matches as SQLite matches names (ignoring case).
    Result<std::size_t> untrack_table(const std::string& table);

    // Follows schema changes to synced tables: after ALTER TABLE ... ADD COLUMN regenerates
    // triggers and captures writes made to new columns meanwhile; after a rebuild (the
    // table lost its triggers) puts them back and captures the changes made meanwhile;
    // stops a table it cannot follow and resumes it once it can (take_table_events());
    // re-tries held-back changes. Cheap when nothing changed (one PRAGMA schema_version
    // read). Called by every other store operation, so a schema change is followed before
    // anything else touches the file.
    Status refresh_schema();

    // Synced tables stopped by a schema change, and the versions of their rows this node
    // holds but cannot serve while they are: a coverage claim must leave them out.
    std::vector<StoppedTable> stopped_tables() const;
    const crdt::VersionVector& unserved() const;
    // What schema changes made the store do since the last call, oldest first.
    std::vector<TableEvent> take_table_events();

    // Picks up what the triggers logged since the last pick-up and stamps it, in memory
    // only: no write to the file, so an app's transactions are not disturbed
    // (docs/design/neighbour.md). The stamps are final: they are journaled beside the file
    // (<file>.peerlite.journal) before this returns, so a store reopened after a crash
    // issues the same ones. Versions picked up count as held (versions()); they reach the
    // file with the next capture(), apply() or other write, and can be read for peers
    // with read_picked_up(). Stops early past StoreOptions::max_picked_up_rows.
    Result<CaptureStats> pick_up();
    // Rows picked up and not yet written to the file.
    std::size_t picked_up_rows() const;
    // This node's versions held in them (read_picked_up() serves these).
    crdt::VersionVector picked_up_versions() const;
    // The next part of the picked-up rows holding versions in `wanted`, within the budgets,
    // without writing to the file, from `cursor` on (a fresh cursor starts; done after
    // the last part). Nothing when `wanted` holds versions not picked up (any more: they
    // were written meanwhile): then read_changes() serves them. Rows too large for any
    // message are reported in `cursor`.
    Result<std::optional<wire::ChangeSet>> read_picked_up(const crdt::VersionVector& wanted,
                                                          ReadCursor& cursor, std::size_t max_rows,
                                                          std::size_t max_bytes);

    // Picks up writes captured by triggers since the last call, stamps them, and writes
    // them into the file (with anything picked up before).
    Result<CaptureStats> capture();

    // Warnings of every capture since the last call, oldest first, for the caller to log.
    // Captures also run inside read_changes(), apply() and sync_table(), so call this
    // after any of them. One warning per refused write and capture; a capture whose
    // transaction failed and ran again may report the same write twice.
    std::vector<CaptureWarning> take_capture_warnings();

    // Row changes holding versions in `wanted` (typically what a peer lacks:
    // versions().minus(peer_vector)), at most `max_rows` of them and, encoded, at most
    // `max_bytes` (see encoded_size(); at least one row per page when any is left). Call
    // again with the same cursor until cursor.done. Held-back changes (kept aside as
    // unknown, see apply()) are read too, after the tables, so a node passes on what it
    // holds for a column it does not have yet. A row that alone is over `max_bytes` is
    // skipped and added to cursor.oversized. covers is left empty: the caller claims
    // coverage once all pages were sent. Captures pending local writes first.
    Result<wire::ChangeSet> read_changes(const crdt::VersionVector& wanted, ReadCursor& cursor,
                                         std::size_t max_rows = 1000,
                                         std::size_t max_bytes = SIZE_MAX);

    // Merges a change set: validated whole first (nothing is applied if any clock is
    // beyond the drift bound or any row is malformed), then applied in transactions of
    // apply_batch_rows rows, each atomic and idempotent; the coverage claim is recorded
    // with the last one if changes.complete. Rows for unknown tables or columns are held back,
    // reported in the stats, and applied by refresh_schema() once the schema has them.
    Result<ApplyStats> apply(const wire::ChangeSet& changes);

    // The maintained digests of every synced table, with or without the buckets.
    Result<std::vector<wire::TableDigest>> digests(bool with_buckets);
    // The same computed afresh from the row records (with buckets): what digests() must
    // equal, for `peerlite verify` and tests.
    Result<std::vector<wire::TableDigest>> recompute_digests();

    // The full state (life, every cell with its value, every counter contribution) of the
    // rows of `table` whose keys fall in `buckets`, paged like read_changes(): what a
    // repair sends once digests differ. Held-back changes are not included.
    Result<wire::ChangeSet> read_buckets(const std::string& table,
                                         const std::vector<std::uint32_t>& buckets,
                                         ReadCursor& cursor, std::size_t max_rows = 1000,
                                         std::size_t max_bytes = SIZE_MAX);

    // Merges a repair: like apply(), but rows are merged even where their versions are
    // covered already. changes.covers must be empty (a repair claims nothing).
    Result<ApplyStats> repair(const wire::ChangeSet& changes);

    // What this replica covers, per origin node, as of the last capture() or apply():
    // capture first when local writes may be pending.
    const crdt::VersionVector& versions() const;
    // Set when open() found the file rolled back; own_gap() is what is still missing.
    const std::optional<RollBack>& rolled_back() const;
    const std::optional<crdt::ClockRange>& own_gap() const;
    // Set once an operation found the file replaced while open (a live restore through
    // SQLite's backup API; the operation failed with Code::io_error and changed nothing).
    // This Store then describes another file: destroy it and open the file again, which
    // sees the rollback (rolled_back()).
    bool replaced() const;

    // Decided conflicts, newest first.
    Result<std::vector<Conflict>> conflicts(const ConflictQuery& query = {});

    // Row changes held back, with the reason for each.
    Result<std::vector<std::pair<wire::RowChange, std::string>>> held_back();

    // The greatest clock this node has issued or merged.
    crdt::Hlc clock() const;

    // A passive WAL checkpoint: copies what no reader still needs into the database file,
    // blocking nobody. Applications' commits checkpoint too (SQLite's autocheckpoint),
    // but one that meets this store mid-read cannot finish; a poller calls this between
    // its own reads so that the WAL can restart from its beginning instead of growing.
    Status checkpoint();

    // SQLite's data_version for this store's connection: it changes when another
    // connection commits, so a poller can tell cheaply whether to capture().
    Result<std::int64_t> data_version();

    struct Impl;

private:
    explicit Store(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

} // namespace peerlite::store
