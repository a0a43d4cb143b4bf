// Opening a store: metadata tables, node identity, synced tables and their schema checks.
// Long because opening is one ordered sequence (lock, journal, metadata, identity,
// rollback detection, schema refresh) whose steps must be read together to see why each
// comes where it does.
#include <algorithm>
#include <chrono>
#include <random>
#include <thread>

#include <peerlite/store/store.hpp>
#include <peerlite/wire/binary_codec.hpp>

#include "conflict_log.hpp"
#include "store_impl.hpp"

namespace peerlite::store {

namespace {

// The metadata tables shared by all synced tables (docs/metadata-format.md).
constexpr const char* kMetadataSql = R"sql(
CREATE TABLE IF NOT EXISTS _peerlite_meta(key TEXT PRIMARY KEY, value ANY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS _peerlite_nodes(idx INTEGER PRIMARY KEY, id BLOB NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS _peerlite_columns(
  tbl TEXT NOT NULL, idx INTEGER NOT NULL, name TEXT NOT NULL, rule INTEGER NOT NULL,
  PRIMARY KEY(tbl, idx)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS _peerlite_names(
  tbl TEXT NOT NULL, col TEXT NOT NULL, mesh TEXT NOT NULL,
  PRIMARY KEY(tbl, col)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS _peerlite_versions(
  node INTEGER NOT NULL, first INTEGER NOT NULL, last INTEGER NOT NULL,
  PRIMARY KEY(node, first)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS _peerlite_conflicts(
  id INTEGER PRIMARY KEY, decided_at INTEGER NOT NULL, tbl TEXT NOT NULL, key BLOB NOT NULL,
  col TEXT NOT NULL, rule TEXT NOT NULL,
  winner_value BLOB NOT NULL, winner_hlc INTEGER NOT NULL, winner_node BLOB NOT NULL,
  loser_value BLOB NOT NULL, loser_hlc INTEGER NOT NULL, loser_node BLOB NOT NULL,
  reason TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS _peerlite_conflicts_at ON _peerlite_conflicts(decided_at);
DROP TABLE IF EXISTS _peerlite_digests;
CREATE TABLE IF NOT EXISTS _peerlite_digest_sums(
  tbl TEXT PRIMARY KEY NOT NULL, sums BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS _peerlite_pending(
  id INTEGER PRIMARY KEY, received_at INTEGER NOT NULL, tbl TEXT NOT NULL,
  reason TEXT NOT NULL, change BLOB NOT NULL UNIQUE);
)sql";

constexpr std::int64_t kFormatVersion = 1;

std::chrono::milliseconds system_now() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::system_clock::now().time_since_epoch());
}

Result<std::int64_t> read_int(sqlite3* db, const std::string& query) {
    auto stmt = sql::Stmt::prepare(db, query);
    if (!stmt) {
        return stmt.status();
    }
    sql::Reset reset(*stmt);
    int rc = stmt->step();
    if (rc == SQLITE_ROW) {
        return stmt->column_int(0);
    }
    if (rc == SQLITE_DONE) {
        return Status(Code::not_found, "no row for '" + query + "'");
    }
    return sql::error(db, query);
}

// A text value of _peerlite_meta; empty when the key is absent.
Result<std::string> read_meta_text(sqlite3* db, const std::string& key) {
    auto stmt = sql::Stmt::prepare(db, "SELECT value FROM _peerlite_meta WHERE key = ?");
    if (!stmt) {
        return stmt.status();
    }
    sql::Reset reset(*stmt);
    stmt->bind_text(1, key);
    int rc = stmt->step();
    if (rc == SQLITE_ROW) {
        return stmt->column_text(0);
    }
    if (rc == SQLITE_DONE) {
        return std::string();
    }
    return sql::error(db, "reading " + key + " from _peerlite_meta");
}

} // namespace

std::string encode_values(const std::vector<crdt::Value>& values) {
    wire::ByteWriter w;
    for (const auto& v : values) {
        w.value(v);
    }
    return w.take();
}

std::vector<crdt::Value> decode_values(std::string_view bytes) {
    wire::ByteReader r(bytes);
    std::vector<crdt::Value> out;
    crdt::Value v;
    while (!r.at_end() && r.value(v)) {
        out.push_back(v);
    }
    return out;
}

Store::Impl::Impl(StoreOptions o)
    : options(std::move(o)),
      clock(options.wall ? options.wall : crdt::WallClock(system_now), options.max_clock_drift) {
    if (!options.wall) {
        options.wall = system_now;
    }
}

std::int64_t Store::Impl::now_ms() const {
    return options.wall().count();
}

TableState* Store::Impl::table(const std::string& name) {
    auto it = tables.find(name);
    return it == tables.end() ? nullptr : &it->second;
}

TableState* Store::Impl::table_on_mesh(const std::string& mesh_name) {
    for (auto& [name, t] : tables) {
        if (t.mesh_name == mesh_name) {
            return &t;
        }
    }
    return nullptr;
}

Result<RowRecord> Store::Impl::load_record(TableState& t, const std::vector<crdt::Value>& key) {
    auto& stmt = t.rec_select;
    sql::Reset reset(stmt);
    TableState::bind_key(stmt, 1, key);
    int rc = stmt.step();
    if (rc == SQLITE_DONE) {
        return RowRecord{};
    }
    if (rc != SQLITE_ROW) {
        return sql::error(db.get(), "reading row record of table '" + t.schema.name + "'");
    }
    auto vmax = crdt::Hlc::from_raw(static_cast<std::uint64_t>(stmt.column_int(1)));
    auto record = decode_record(stmt.column_blob(0), vmax, nodes);
    if (record) {
        record->stored = true;
    }
    if (!record) {
        return Status(Code::corruption,
                      "table '" + t.schema.name + "': " + record.status().message());
    }
    return record;
}

void Store::Impl::before_change(const TableState& t, const std::vector<crdt::Value>& key,
                                RowRecord& r) {
    if (!r.hash) {
        r.hash = r.stored ? row_hash(t, key, r) : 0;
    }
}

Status Store::Impl::save_record(TableState& t, const std::vector<crdt::Value>& key,
                                const RowRecord& r) {
    if (!r.hash) {
        // A bug of this file's, caught before it could skew the digests.
        return Status(Code::invalid_argument, "table '" + t.schema.name +
                                                  "': a row record was changed without "
                                                  "before_change()");
    }
    auto bytes = encode_record(r, nodes);
    if (!bytes) {
        return bytes.status();
    }
    // In place when the record exists: REPLACE would delete and re-insert the row and
    // its index entry.
    auto& stmt = r.stored ? t.rec_update : t.rec_insert;
    TableState::bind_key(stmt, 1, key);
    auto n = static_cast<int>(key.size());
    stmt.bind_blob(n + 1, bytes->data(), bytes->size());
    stmt.bind_int(n + 2, static_cast<std::int64_t>(r.max_clock().raw()));
    if (auto st = stmt.run("writing row record of table '" + t.schema.name + "'"); !st.ok()) {
        return st;
    }
    auto hash = row_hash(t, key, r);
    if (hash != *r.hash) {
        t.note_digest(key_bucket(key), hash - *r.hash); // unsigned: wraps, like the sums
    }
    return Status::success();
}

void TableState::note_digest(std::uint32_t bucket, std::uint64_t delta) {
    if (digest_delta.empty()) {
        digest_delta.assign(wire::kDigestBuckets, 0);
    }
    if (digest_delta[bucket] == 0) {
        digest_touched.push_back(bucket); // once more if it sums to 0 and moves again: harmless
    }
    digest_delta[bucket] += delta;
}

void TableState::drop_digest_deltas() {
    for (auto b : digest_touched) {
        digest_delta[b] = 0;
    }
    digest_touched.clear();
}

void Store::Impl::take_back_picked() {
    if (!picked_consumed) {
        return;
    }
    // A transaction took the picked-up records and failed: they come back, exactly as they
    // were pushed, from the journal.
    picked = PickedUp{};
    replay_rounds =
        journal ? journal->rounds_for(self.to_string()) : std::vector<PickupJournal::Round>{};
    journal_replayed = false;
    picked_consumed = false;
}

Result<sql::Transaction> Store::Impl::begin_write() {
    for (auto& [name, t] : tables) {
        t.drop_digest_deltas();
    }
    take_back_picked();
    picked_flushed = false;      // a transaction that wrote them and failed wrote nothing
    beside_local_writes = false; // an apply says otherwise
    held_rows = -1;              // counted again if needed: a failed transaction changed it
    for (auto& [name, t] : tables) {
        t.aside_rows = -1; // a failed transaction may have changed them: count again
    }
    return sql::Transaction::begin(db.get());
}

void Store::Impl::cover(const crdt::NodeId& origin, crdt::ClockRange range) {
    versions.add(origin, range);
    dirty_origins.insert(origin);
}

void Store::Impl::cover_own_clocks() {
    auto last = clock.last();
    if (!own_gap) {
        cover(self, crdt::ClockRange{crdt::Hlc::from_raw(1), last});
        return;
    }
    if (own_gap->first.raw() > 1) {
        cover(self, crdt::ClockRange{crdt::Hlc::from_raw(1),
                                     crdt::Hlc::from_raw(own_gap->first.raw() - 1)});
    }
    if (last > own_gap->last) {
        cover(self, crdt::ClockRange{crdt::Hlc::from_raw(own_gap->last.raw() + 1), last});
    }
}

std::optional<PickupJournal::Hold> Store::Impl::hold_journal() {
    if (!journal) {
        return std::nullopt;
    }
    return std::optional<PickupJournal::Hold>(std::in_place, journal->hold());
}

Status Store::Impl::commit(sql::Transaction& tx) {
    // A commit that writes picked-up rows and the journal's restart are one step to a
    // reader of the journal (pickup_journal.hpp).
    std::optional<PickupJournal::Hold> held;
    if ((picked_flushed || journal_dirty) && journal) {
        held.emplace(journal->hold());
    }
    if (auto st = tx.commit(); !st.ok()) {
        return st;
    }
    if (picked_flushed) {
        picked = PickedUp{};
        picked_flushed = false;
        picked_consumed = false;
    }
    // The journal speaks for picked-up rounds since the clock the file holds: started
    // afresh once nothing picked up is left unwritten (after a crashed store's rounds were
    // re-issued).
    if (journal && journal_replayed && picked.empty() &&
        (journal_dirty || journal_base != saved_clock || !journal_started)) {
        journal_started = journal->restart(self.to_string(), saved_clock).ok();
        journal_base = saved_clock;
        journal_dirty = false;
    }
    // Only when our own high-water moved: most commits (applies, reads) leave it. Versions
    // picked up and not yet written are not the file's (the journal speaks for them).
    if (auto own = versions.of(self).highest().raw(); own > recorded_own_clock && picked.empty()) {
        lock->record({self.to_string(), own});
        recorded_own_clock = own;
    }
    return Status::success();
}

Status Store::Impl::detect_rollback() {
    auto first = read_int(db.get(), "SELECT value FROM _peerlite_meta WHERE key = 'own_gap_first'");
    auto last = read_int(db.get(), "SELECT value FROM _peerlite_meta WHERE key = 'own_gap_last'");
    if (first && last) {
        own_gap = crdt::ClockRange{crdt::Hlc::from_raw(static_cast<std::uint64_t>(*first)),
                                   crdt::Hlc::from_raw(static_cast<std::uint64_t>(*last))};
    }
    const auto& recorded = lock->recorded();
    auto held = versions.of(self).highest();
    if (!replay_rounds.empty()) {
        // Picked up and pushed, not yet in the file: the journal gives them back.
        held = std::max(held, crdt::Hlc::from_raw(replay_rounds.back().end_clock));
    }
    if (recorded && recorded->node == self.to_string()) {
        recorded_own_clock = recorded->own_clock;
    }
    if (recorded_own_clock <= held.raw()) {
        return Status::success();
    }
    // The lock file saw this node hold own changes up to a later clock than the file
    // holds now: they went with a rollback, and peers that received them still have them.
    auto had = crdt::Hlc::from_raw(recorded_own_clock);
    rolled_back = RollBack{held, had};
    crdt::ClockRange gap{crdt::Hlc::from_raw(held.raw() + 1), had};
    if (own_gap) {
        gap.first = std::min(gap.first, own_gap->first);
        gap.last = std::max(gap.last, own_gap->last);
    }
    own_gap = gap;
    own_gap_dirty = true;
    clock.restore(had); // never issue those clocks again
    return persist_progress();
}

Status Store::Impl::persist_progress() {
    bool unwritten_own = false;
    if (own_gap && versions.of(self).covers(*own_gap)) {
        own_gap.reset(); // peers gave every one back
        own_gap_dirty = true;
    }
    if (own_gap_dirty) {
        if (!own_gap) {
            if (auto st = sql::exec(db.get(), "DELETE FROM _peerlite_meta WHERE key IN "
                                              "('own_gap_first', 'own_gap_last')");
                !st.ok()) {
                return st;
            }
        }
        for (auto [key, value] : own_gap ? std::vector{std::pair{"own_gap_first", own_gap->first},
                                                       std::pair{"own_gap_last", own_gap->last}}
                                         : std::vector<std::pair<const char*, crdt::Hlc>>{}) {
            meta_put.bind_text(1, key);
            meta_put.bind_int(2, static_cast<std::int64_t>(value.raw()));
            if (auto st = meta_put.run("saving the rollback gap"); !st.ok()) {
                return st;
            }
        }
        own_gap_dirty = false;
    }
    for (const auto& origin : dirty_origins) {
        auto idx = nodes.index_of(origin);
        if (!idx) {
            return idx.status();
        }
        version_delete.bind_int(1, static_cast<std::int64_t>(*idx));
        if (auto s = version_delete.run("clearing versions"); !s.ok()) {
            return s;
        }
        // Own versions picked up and not written here are not the file's yet: the journal
        // speaks for them until they are (docs/design/neighbour.md).
        auto held = versions.of(origin);
        if (origin == self && !picked.empty() && !picked_flushed) {
            held = held.minus(picked.issued);
            unwritten_own = true;
        }
        for (const auto& r : held.ranges()) {
            version_insert.bind_int(1, static_cast<std::int64_t>(*idx));
            version_insert.bind_int(2, static_cast<std::int64_t>(r.first.raw()));
            version_insert.bind_int(3, static_cast<std::int64_t>(r.last.raw()));
            if (auto s = version_insert.run("saving versions"); !s.ok()) {
                return s;
            }
        }
    }
    dirty_origins.clear();
    if (unwritten_own) {
        dirty_origins.insert(self); // saved whole once they are written
    }
    if (auto st = flush_digests(); !st.ok()) {
        return st;
    }
    meta_put.bind_text(1, "clock");
    meta_put.bind_int(2, static_cast<std::int64_t>(clock.last().raw()));
    if (auto st = meta_put.run("saving the clock"); !st.ok()) {
        return st;
    }
    saved_clock = clock.last().raw();
    return Status::success();
}

Status Store::Impl::check_not_replaced() {
    auto clock_now = read_int(db.get(), "SELECT value FROM _peerlite_meta WHERE key = 'clock'");
    auto id_now =
        sql::Stmt::prepare(db.get(), "SELECT value FROM _peerlite_meta WHERE key = 'node_id'");
    if (!id_now) {
        return id_now.status();
    }
    sql::Reset reset(*id_now);
    bool same_id = id_now->step() == SQLITE_ROW && id_now->column_text(0) == self.to_string();
    auto held = clock_now ? static_cast<std::uint64_t>(*clock_now) : 0;
    if (same_id && held >= saved_clock) {
        return Status::success();
    }
    replaced = true;
    return Status(Code::io_error,
                  path + " was replaced while open (a live restore?): it holds " +
                      (same_id ? "this node's clock up to " + crdt::Hlc::from_raw(held).to_string()
                               : std::string("another node's identity")) +
                      ", and this node had saved " + crdt::Hlc::from_raw(saved_clock).to_string() +
                      "; open it again");
}

Status Store::Impl::record_conflict(const Conflict& c) {
    auto& s = conflict_insert;
    auto key = encode_values(c.key);
    auto winner = encode_values({c.winner_value});
    auto loser = encode_values({c.loser_value});
    auto wn = c.winner.node.bytes();
    auto ln = c.loser.node.bytes();
    s.bind_int(1, c.decided_at_ms);
    s.bind_text(2, c.table);
    s.bind_blob(3, key.data(), key.size());
    s.bind_text(4, c.column);
    s.bind_text(5, rule_text(c));
    s.bind_blob(6, winner.data(), winner.size());
    s.bind_int(7, static_cast<std::int64_t>(c.winner.hlc.raw()));
    s.bind_blob(8, wn.data(), wn.size());
    s.bind_blob(9, loser.data(), loser.size());
    s.bind_int(10, static_cast<std::int64_t>(c.loser.hlc.raw()));
    s.bind_blob(11, ln.data(), ln.size());
    s.bind_text(12, reason_text(c));
    return s.run("recording a conflict");
}

Status Store::Impl::prune_conflicts() {
    conflict_prune.bind_int(1, now_ms() - options.conflict_retention.count());
    return conflict_prune.run("pruning the conflict log");
}

Status Store::Impl::hold_back(const wire::RowChange& row, const std::string& reason) {
    if (held_rows < 0) {
        auto count = read_int(db.get(), "SELECT count(*) FROM _peerlite_pending");
        if (!count) {
            return count.status();
        }
        held_rows = *count;
    }
    if (static_cast<std::uint64_t>(held_rows) >= options.max_held_back_rows) {
        return Status(Code::limit_exceeded,
                      "a change for " + reason + " would be held back, and " +
                          std::to_string(held_rows) +
                          " rows already are (max_held_back_rows): "
                          "the change set is refused and asked for again later; add the "
                          "table or column here, or raise the limit");
    }
    auto bytes = encode(row);
    pending_insert.bind_int(1, now_ms());
    pending_insert.bind_text(2, row.table);
    pending_insert.bind_text(3, reason);
    pending_insert.bind_blob(4, bytes.data(), bytes.size());
    if (auto st = pending_insert.run("keeping a change aside"); !st.ok()) {
        return st;
    }
    held_rows += sqlite3_changes(db.get());
    return Status::success();
}

namespace {

Status prepare_store(Store::Impl& s) {
    auto* db = s.db.get();
    struct Spec {
        sql::Stmt* stmt;
        const char* text;
    };
    for (auto spec : {
             Spec{&s.meta_put, "INSERT OR REPLACE INTO _peerlite_meta(key, value) VALUES (?1, ?2)"},
             Spec{&s.version_delete, "DELETE FROM _peerlite_versions WHERE node = ?1"},
             Spec{&s.version_insert,
                  "INSERT INTO _peerlite_versions(node, first, last) VALUES (?1, ?2, ?3)"},
             Spec{&s.conflict_insert,
                  "INSERT INTO _peerlite_conflicts(decided_at, tbl, key, col, rule, winner_value, "
                  "winner_hlc, winner_node, loser_value, loser_hlc, loser_node, reason) VALUES "
                  "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"},
             Spec{&s.conflict_prune, "DELETE FROM _peerlite_conflicts WHERE decided_at < ?1"},
             Spec{&s.pending_insert, "INSERT OR IGNORE INTO _peerlite_pending(received_at, tbl, "
                                     "reason, change) VALUES (?1, ?2, ?3, ?4)"},
             Spec{&s.digest_select, "SELECT sums FROM _peerlite_digest_sums WHERE tbl = ?1"},
             Spec{&s.digest_put,
                  "INSERT OR REPLACE INTO _peerlite_digest_sums(tbl, sums) VALUES (?1, ?2)"},
             Spec{&s.pending_scan,
                  "SELECT id, change FROM _peerlite_pending WHERE id > ?1 ORDER BY id"},
         }) {
        auto stmt = sql::Stmt::prepare(db, spec.text);
        if (!stmt) {
            return stmt.status();
        }
        *spec.stmt = std::move(*stmt);
    }
    return Status::success();
}

// A node id is one writer: its clocks are issued by one process from one file. The owner
// recorded beside the id tells a copy of the file (run by another daemon, with its own
// key) from the file itself, before the copy stamps anything under the borrowed id.
Status check_owner(Store::Impl& s) {
    if (s.options.owner.empty()) {
        return Status::success();
    }
    auto stmt =
        sql::Stmt::prepare(s.db.get(), "SELECT value FROM _peerlite_meta WHERE key = 'owner'");
    if (!stmt) {
        return stmt.status();
    }
    sql::Reset reset(*stmt);
    if (stmt->step() == SQLITE_ROW) {
        auto recorded = stmt->column_text(0);
        if (recorded == s.options.owner) {
            return Status::success();
        }
        return Status(Code::identity_conflict,
                      s.path + " is node " + s.self.to_string() + ", which runs with public key " +
                          recorded + ", not this node's key " + s.options.owner +
                          ": the file was copied from another node, and two nodes under one id "
                          "would never agree. Seed a new node with 'peerlite snapshot SOURCE.db "
                          "NEW.db' instead (the copy gets its own node id); if this node's key "
                          "pair was replaced on purpose, run 'peerlite forget-owner " +
                          s.path + "' once");
    }
    s.meta_put.bind_text(1, "owner");
    s.meta_put.bind_text(2, s.options.owner);
    return s.meta_put.run("recording the file's owner");
}

// An id kept in _peerlite_meta (node_id, id_salt); nil when the key is absent.
Result<crdt::NodeId> read_meta_id(Store::Impl& s, const std::string& key) {
    auto text = read_meta_text(s.db.get(), key);
    if (!text || text->empty()) {
        return text ? Result<crdt::NodeId>(crdt::NodeId()) : Result<crdt::NodeId>(text.status());
    }
    auto parsed = crdt::NodeId::parse(*text);
    if (!parsed) {
        return Status(Code::corruption,
                      s.path + ": stored " + key + " is unreadable: " + parsed.status().message());
    }
    return *parsed;
}

// Creates the node id on first open; restores the clock and version vector.
Status load_identity(Store::Impl& s) {
    auto* db = s.db.get();
    auto format = read_int(db, "SELECT value FROM _peerlite_meta WHERE key = 'format'");
    if (format.ok() && *format != kFormatVersion) {
        return Status(Code::unsupported, s.path + " has peerlite metadata format " +
                                             std::to_string(*format) + "; this build reads " +
                                             std::to_string(kFormatVersion));
    }
    auto stored_id = read_meta_id(s, "node_id");
    auto salt = read_meta_id(s, "id_salt");
    if (!stored_id || !salt) {
        return stored_id ? salt.status() : stored_id.status();
    }
    s.self = *stored_id;
    s.id_salt = *salt;
    std::random_device entropy;
    std::mt19937_64 rng((static_cast<std::uint64_t>(entropy()) << 32) ^ entropy());
    // The salt is made when an owner is first named; without one the id stays random.
    if (s.id_salt.is_nil() && !s.options.owner.empty()) {
        s.id_salt = crdt::NodeId::random(rng);
        s.meta_put.bind_text(1, "id_salt");
        s.meta_put.bind_text(2, s.id_salt.to_string());
        if (auto st = s.meta_put.run("saving the node id's salt"); !st.ok()) {
            return st;
        }
    }
    if (s.self.is_nil()) {
        s.self = s.options.owner.empty() ? crdt::NodeId::random(rng)
                                         : crdt::NodeId::derive(s.options.owner, s.id_salt);
        s.meta_put.bind_text(1, "node_id");
        s.meta_put.bind_text(2, s.self.to_string());
        if (auto st = s.meta_put.run("saving the node id"); !st.ok()) {
            return st;
        }
        s.meta_put.bind_text(1, "format");
        s.meta_put.bind_int(2, kFormatVersion);
        if (auto st = s.meta_put.run("saving the format version"); !st.ok()) {
            return st;
        }
    }
    if (auto st = check_owner(s); !st.ok()) {
        return st;
    }
    if (auto st = s.nodes.load(db); !st.ok()) {
        return st;
    }
    if (auto idx = s.nodes.index_of(s.self); !idx) {
        return idx.status();
    }
    auto clock = read_int(db, "SELECT value FROM _peerlite_meta WHERE key = 'clock'");
    if (clock) {
        s.clock.restore(crdt::Hlc::from_raw(static_cast<std::uint64_t>(*clock)));
        s.saved_clock = static_cast<std::uint64_t>(*clock);
    }
    auto versions = sql::Stmt::prepare(db, "SELECT node, first, last FROM _peerlite_versions");
    if (!versions) {
        return versions.status();
    }
    sql::Reset reset(*versions);
    while (versions->step() == SQLITE_ROW) {
        auto origin = s.nodes.id_at(static_cast<std::uint64_t>(versions->column_int(0)));
        if (!origin) {
            return origin.status();
        }
        auto first = crdt::Hlc::from_raw(static_cast<std::uint64_t>(versions->column_int(1)));
        auto last = crdt::Hlc::from_raw(static_cast<std::uint64_t>(versions->column_int(2)));
        if (first > last) {
            return Status(Code::corruption, "_peerlite_versions holds a backwards range");
        }
        s.versions.add(*origin, crdt::ClockRange{first, last});
    }
    // Never issue a clock at or below one of our own that is already stored.
    s.clock.restore(s.versions.of(s.self).highest());
    return Status::success();
}

// A file made before node ids were derived from keys carries a random id: it takes the
// derived one. Everything stamped under the old id stays, as another origin's changes do;
// so do the clocks (the saved clock covers every one issued). What only makes sense for
// the node's own id is set anew: the gap a rollback left (now an ordinary origin's gap,
// filled by anti-entropy), the rounds a crash left to re-issue alike (the log entries
// they stamped are picked up again under the new id), the lock file's record.
Status take_identity(Store::Impl& s) {
    if (s.options.owner.empty()) {
        return Status::success();
    }
    auto wanted = crdt::NodeId::derive(s.options.owner, s.id_salt);
    if (wanted == s.self) {
        return Status::success();
    }
    s.former_id = s.self;
    s.meta_put.bind_text(1, "node_id");
    s.meta_put.bind_text(2, wanted.to_string());
    if (auto st = s.meta_put.run("saving the node id"); !st.ok()) {
        return st;
    }
    s.self = wanted;
    if (auto idx = s.nodes.index_of(s.self); !idx) {
        return idx.status();
    }
    if (s.own_gap) {
        s.own_gap.reset();
        s.own_gap_dirty = true;
    }
    s.replay_rounds.clear();
    s.journal_dirty = true;
    s.recorded_own_clock = 0;
    return s.persist_progress();
}

} // namespace

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::~Store() = default;

Result<std::unique_ptr<Store>> Store::open(const std::string& path, StoreOptions options) {
    auto impl = std::make_unique<Impl>(std::move(options));
    impl->path = path;
    auto lock = NodeLock::acquire(path);
    if (!lock) {
        return lock.status();
    }
    impl->lock.emplace(std::move(*lock));
    auto journal = PickupJournal::open(path);
    if (!journal) {
        return journal.status();
    }
    impl->journal.emplace(std::move(*journal));
    auto db = sql::open(path, impl->options.busy_timeout_ms, &impl->journal_mode_before);
    if (!db) {
        return db.status();
    }
    impl->db = std::move(*db);
    // Changes this connection applies must not be captured again as local writes.
    sqlite3_db_config(impl->db.get(), SQLITE_DBCONFIG_ENABLE_TRIGGER, 0, nullptr);
    {
        auto give_up = std::chrono::steady_clock::now() + impl->options.open_timeout;
        auto begin_waiting = [&]() -> Result<sql::Transaction> {
            for (;;) {
                auto tx = sql::Transaction::begin(impl->db.get());
                if (tx || tx.status().code() != Code::busy ||
                    std::chrono::steady_clock::now() >= give_up) {
                    return tx;
                }
                std::this_thread::sleep_for(std::chrono::milliseconds(20));
            }
        };
        auto tx = begin_waiting();
        if (!tx) {
            return Status(tx.status().code(), path + ": " + tx.status().message());
        }
        if (auto s = sql::exec(impl->db.get(), kMetadataSql); !s.ok()) {
            return Status(s.code(), path + ": " + s.message());
        }
        if (auto s = ensure_resolution_columns(impl->db.get()); !s.ok()) {
            return Status(s.code(), path + ": " + s.message());
        }
        if (auto s = prepare_store(*impl); !s.ok()) {
            return s;
        }
        if (auto s = load_identity(*impl); !s.ok()) {
            return s;
        }
        // Rounds a crashed store picked up and may have pushed: re-issued alike at the
        // first capture. A rollback makes them describe another file.
        auto rounds = impl->journal->contents().rounds_for(impl->db.get(), impl->self.to_string());
        if (!rounds) {
            return Status(rounds.status().code(), path + ": " + rounds.status().message());
        }
        impl->replay_rounds = std::move(*rounds);
        if (auto s = impl->detect_rollback(); !s.ok()) {
            return s;
        }
        if (impl->rolled_back) {
            impl->replay_rounds.clear();
        }
        if (auto s = take_identity(*impl); !s.ok()) {
            return s;
        }
        if (auto s = impl->commit(*tx); !s.ok()) {
            return s;
        }
    }
    auto give_up = std::chrono::steady_clock::now() + impl->options.open_timeout;
    std::unique_ptr<Store> store(new Store(std::move(impl)));
    auto refreshed = store->refresh_schema();
    while (refreshed.code() == Code::busy && std::chrono::steady_clock::now() < give_up) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20)); // an app holds the lock
        refreshed = store->refresh_schema();
    }
    if (!refreshed.ok()) {
        return refreshed;
    }
    return store;
}

const crdt::NodeId& Store::node_id() const {
    return impl_->self;
}
const std::string& Store::path() const {
    return impl_->path;
}
const crdt::NodeId& Store::former_id() const {
    return impl_->former_id;
}
const crdt::NodeId& Store::id_salt() const {
    return impl_->id_salt;
}
const std::optional<RollBack>& Store::rolled_back() const {
    return impl_->rolled_back;
}
const std::optional<crdt::ClockRange>& Store::own_gap() const {
    return impl_->own_gap;
}
bool Store::replaced() const {
    return impl_->replaced;
}
const std::string& Store::journal_mode_before() const {
    return impl_->journal_mode_before;
}
const crdt::VersionVector& Store::versions() const {
    return impl_->versions;
}
crdt::Hlc Store::clock() const {
    return impl_->clock.last();
}

Status Store::checkpoint() {
    int log = 0, copied = 0;
    int rc = sqlite3_wal_checkpoint_v2(impl_->db.get(), nullptr, SQLITE_CHECKPOINT_PASSIVE, &log,
                                       &copied);
    // Busy (another checkpoint running) is no failure: that one does the same work.
    if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
        return sql::error(impl_->db.get(), "checkpointing the WAL of " + impl_->path);
    }
    return Status::success();
}

Result<std::int64_t> Store::data_version() {
    auto& s = *impl_;
    if (!s.data_version_stmt) {
        auto stmt = sql::Stmt::prepare(s.db.get(), "PRAGMA data_version");
        if (!stmt) {
            return stmt.status();
        }
        s.data_version_stmt = std::move(*stmt);
    }
    sql::Reset reset(s.data_version_stmt);
    if (s.data_version_stmt.step() != SQLITE_ROW) {
        return sql::error(s.db.get(), "reading data_version");
    }
    return s.data_version_stmt.column_int(0);
}

std::string Store::mesh_name(const std::string& table) const {
    auto it = impl_->tables.find(table);
    return it == impl_->tables.end() ? table : it->second.mesh_name;
}

std::vector<std::string> Store::synced_tables() const {
    std::vector<std::string> out;
    for (const auto& [name, t] : impl_->tables) {
        out.push_back(name);
    }
    return out;
}

} // namespace peerlite::store
