#include <algorithm>
#include <atomic>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <strings.h>
#include <thread>
#include <tuple>

#include <spdlog/spdlog.h>

#include <peerlite/peer/node.hpp>

#include "node_testing.hpp"

namespace peerlite::peer {

using transport::Message;

namespace {

// Bounds on what a peer's messages can make this node hold (issue 20): far above what an
// honest mesh uses (one relay per probe in flight, one serving session per asking peer).
constexpr std::size_t kMaxRelays = 1024;
constexpr std::size_t kMaxSessions = 256;

} // namespace

namespace {

// Seeds are addressed before their node id is known: a stand-in id derived from the
// endpoint (first byte 0xff marks it; real ids are random version-4 UUIDs).
crdt::NodeId seed_id(const std::string& endpoint) {
    crdt::NodeId::Bytes b{};
    std::uint64_t h = 1469598103934665603ull;
    for (unsigned char c : endpoint) {
        h = (h ^ c) * 1099511628211ull;
    }
    b[0] = 0xff;
    for (int i = 0; i < 8; ++i) {
        b[static_cast<std::size_t>(8 + i)] = static_cast<std::uint8_t>(h >> (8 * i));
    }
    return crdt::NodeId::from_bytes(b);
}

struct Probe {
    crdt::NodeId target;
    Clock::time_point sent;
    bool indirect = false;
};

struct Session {
    crdt::VersionVector wanted; // the claim: what the asker lacked, less oversized rows
    store::ReadCursor cursor;
    Clock::time_point last_used;
    // Split at the first part: own versions still in memory (served first, from there,
    // with their own cursor) and what the file serves.
    std::optional<crdt::VersionVector> from_file;
    crdt::VersionVector in_memory;
    store::ReadCursor memory;
};

// A row as people name it in a log line: table[key1,key2].
std::string row_name(const std::string& table, const std::vector<crdt::Value>& key) {
    std::string out = table + "[";
    for (std::size_t i = 0; i < key.size(); ++i) {
        out += (i ? "," : "") + key[i].to_string();
    }
    return out + "]";
}

} // namespace

struct Node::Impl {
    NodeOptions options;
    std::unique_ptr<store::Store> store;
    std::unique_ptr<transport::Hub> hub;
    std::unique_ptr<Membership> membership;
    crdt::NodeId self;
    crdt::NodeId id_salt; // self is derived from it and our public key
    std::string endpoint;
    std::mt19937_64 rng{std::random_device{}()};
    std::string log_name;

    std::thread thread;
    std::atomic<bool> running{true};

    // Shared with other threads.
    mutable std::mutex shared;
    NodeCounters counters;
    std::vector<PeerStatus> peer_snapshot;
    crdt::VersionVector versions_snapshot;
    std::vector<store::StoppedTable> stopped_snapshot;
    std::set<crdt::NodeId> blocked;

    // Loop state (node thread only).
    std::int64_t data_version = -1;
    std::uint64_t capture_failures = 0; // in a row, since the last capture that worked
    // Session and probe numbers. Random at start: a peer keeps serving a session by
    // (sender, number) for a while, and a restarted node counting from 1 again could
    // continue its previous life's session, whose claim of coverage no longer matches
    // what it received.
    std::uint64_t next_seq = std::uniform_int_distribution<std::uint64_t>(1, 1ull << 62)(rng);
    std::map<std::uint64_t, Probe> probes;
    std::map<std::pair<std::uint64_t, crdt::NodeId>, crdt::NodeId> relays;
    std::map<std::pair<crdt::NodeId, std::uint64_t>, Session> sessions;
    std::map<std::string, crdt::NodeId> seeds; // endpoint -> stand-in id, until known
    struct PeerVersions {
        crdt::VersionVector versions;
        crdt::VersionVector lacked; // ours at that moment, minus theirs
        Clock::time_point at;
        bool lacked_sent = false;
    };
    std::map<crdt::NodeId, PeerVersions> peer_versions; // as each peer last told us
    struct Pull {
        std::uint64_t session = 0;
        Clock::time_point last; // when sent, or when the last part arrived
        bool answered = false;
        Clock::time_point started;  // for the catch-up log line
        Clock::time_point reported; // the last progress line
        std::size_t parts = 0, rows = 0, changed = 0;
        // A part of this session failed to apply: its versions are not covered, so the
        // session's claim must not be recorded. Later parts still apply (their rows are
        // then covered one by one) and the missing ones are asked for again.
        bool failed = false;
        std::size_t parts_failed = 0;
        std::string failure;
    };
    // Our open sessions. One that was never answered is given up sooner: the request may
    // have reached a peer that did not know us yet and could not reply.
    std::map<crdt::NodeId, Pull> pulling;
    // Hellos and pulls to a member just learned of that could not be sent yet, and since
    // when. Its new outgoing socket needs a few milliseconds for the CURVE handshake and
    // the hub drops sends until then (ZMQ_IMMEDIATE); without a retry a joining node
    // waited for the next gossip round (500 ms) and anti-entropy round (1 s) before its
    // catch-up started. Retried every turn for at most a second.
    std::map<crdt::NodeId, Clock::time_point> hello_pending, pull_pending;
    // Peers to pull from again because something they sent failed to apply here, with
    // exponential backoff (reset by a session that applies whole).
    struct Retry {
        Clock::time_point at;
        std::chrono::milliseconds backoff{0};
    };
    std::map<crdt::NodeId, Retry> retries;
    // When this node last started a repair with each peer. A repair heals in one
    // exchange; digests that still differ after it (a difference the merge cannot
    // settle, which would be a bug) must not start one every round, so repairs with one
    // peer are at least kRepairSpacing apart and a repeat is logged.
    static constexpr auto kRepairSpacing = std::chrono::seconds(10);
    std::map<crdt::NodeId, Clock::time_point> last_repair;
    // Rows too large for any message, already logged (table, key, newest clock).
    std::set<std::tuple<std::string, std::string, std::uint64_t>> oversized_logged;
    // This node's own versions already pushed (or present at start). Local writes are
    // also stamped inside Store::apply and read_changes (local writes first, they are
    // older); pushing what lies beyond this mark, not just what tick()'s own capture
    // gained, sends those too instead of leaving them to anti-entropy.
    crdt::ClockRanges local_pushed;
    std::set<crdt::NodeId> blocked_now;
    Clock::time_point reject_window{};
    int rejects_logged = 0;
    std::uint64_t rejects_unlogged = 0;
    Clock::time_point last_local_commit; // seen through data_version
    Clock::time_point picked_since;      // when the rows picked up now began to be
    // Complete change sets pushed by each peer while the app was committing, merged into
    // one, applied together (NodeOptions::apply_delay).
    struct HeldPush {
        wire::ChangeSet changes;
        bool forward = false;
        Clock::time_point since;
    };
    std::map<crdt::NodeId, HeldPush> held_pushes;
    // Whether a push arriving now waits (the app committed within apply_quiet).
    bool hold_pushes(Clock::time_point now) const;
    // Applies the held pushes due at `now` (all of them when `all`).
    void apply_held_pushes(Clock::time_point now, bool all);
    Clock::time_point started, next_checkpoint, next_anti_entropy, next_probe, next_gossip,
        next_publish;

    void loop();
    void tick(Clock::time_point now);
    void handle(const transport::Incoming& in, Clock::time_point now);
    void dispatch(const Message& m, Clock::time_point now);
    bool send(const crdt::NodeId& to, const transport::Body& body);
    void reject(const std::string& from, const Status& why);
    void learn(const transport::Member& m, Clock::time_point now,
               Membership::Source source = Membership::Source::gossip);
    bool hello(const crdt::NodeId& to);
    // Opens the store with the configured tables (at start, and after a live restore).
    Status open_store();
    void reopen_store();
    std::optional<Status> failure; // under `shared`: why the engine stopped by itself
    void push(const crdt::VersionVector& gained, const crdt::NodeId& exclude);
    std::optional<store::ApplyStats> apply(const crdt::NodeId& from,
                                           const wire::ChangeSet& changes, bool forward,
                                           Status* failure = nullptr);
    void pulled(const crdt::NodeId& from, const transport::SyncResponse& response,
                Clock::time_point now);
    void serve_sync(const crdt::NodeId& from, const transport::SyncRequest& request,
                    Clock::time_point now);
    void report_capture_warnings();
    void report_table_events();
    // Logs (once per peer) a peer that holds changes under our id we never wrote.
    void check_own_versions(const crdt::NodeId& from, const crdt::VersionVector& theirs);
    std::set<crdt::NodeId> foreign_own_logged;
    // What this node may claim to serve: what it holds, less the rows of tables a schema
    // change stopped (they are not read while stopped, so no claim may cover them).
    crdt::VersionVector servable() const;
    void send_digests(const crdt::NodeId& to, std::vector<wire::TableDigest> tables);
    void compare_digests(const crdt::NodeId& from, const transport::Digests& theirs);
    void send_repair(const crdt::NodeId& to, const std::string& table,
                     const std::vector<std::uint32_t>& buckets, bool reply);
    void repaired(const crdt::NodeId& from, const transport::Repair& repair);
    void probe(Clock::time_point now);
    void sync_with(const crdt::NodeId& peer);
    void retry_pending(Clock::time_point now);
    void retry_later(const crdt::NodeId& peer, const std::string& why, Clock::time_point now);
    std::size_t part_budget(const crdt::VersionVector& claim);
    crdt::VersionVector refuse_oversized(store::ReadCursor& cursor);
    // The rows holding the versions of `wanted` that are picked up and not yet written
    // into the file, read from memory in parts (rows too large for a message are added to
    // `cursor.oversized`), and what of `wanted` is left for the file; nothing if none are
    // wanted or they were written meanwhile (the file then serves them all).
    std::optional<std::pair<std::vector<wire::ChangeSet>, crdt::VersionVector>>
    read_from_memory(const crdt::VersionVector& wanted, store::ReadCursor& cursor,
                     std::size_t budget);
    void publish();
    template <class F>
    void count(F&& f) {
        std::lock_guard lock(shared);
        f(counters);
    }
};

Node::Node(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Node::~Node() {
    impl_->running = false;
    if (impl_->thread.joinable()) {
        impl_->thread.join();
    }
}

Result<std::unique_ptr<Node>> Node::start(NodeOptions options) {
    auto impl = std::make_unique<Impl>();
    impl->options = std::move(options);
    auto& o = impl->options;
    if (!o.transport.plaintext) {
        o.store.owner = o.transport.keys.public_key; // a copied file is refused at open
    }
    if (auto st = impl->open_store(); !st.ok()) {
        return st;
    }
    auto hub = transport::Hub::open(o.transport);
    if (!hub) {
        return hub.status();
    }
    impl->hub = std::move(*hub);
    impl->self = impl->store->node_id();
    impl->id_salt = impl->store->id_salt();
    impl->endpoint = impl->hub->endpoint();
    impl->log_name = impl->self.short_string();
    auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::system_clock::now().time_since_epoch());
    // The incarnation only grows across restarts, so gossip about a restarted node's new
    // address wins over stale gossip about the old one.
    transport::Member me{impl->self, impl->endpoint,
                         o.transport.plaintext ? "" : o.transport.keys.public_key,
                         static_cast<std::uint64_t>(now.count()), impl->id_salt};
    impl->membership = std::make_unique<Membership>(me, o.membership);
    for (const auto& seed : o.seeds) {
        if (seed.endpoint == impl->endpoint) {
            continue;
        }
        auto id = seed_id(seed.endpoint);
        if (auto st = impl->hub->connect(id, seed.endpoint, seed.public_key); !st.ok()) {
            return Status(st.code(), "seed " + seed.endpoint + ": " + st.message());
        }
        impl->seeds[seed.endpoint] = id;
    }
    spdlog::debug("[{}] node {} listening on {} ({} seeds, {} tables)", impl->log_name,
                  impl->self.to_string(), impl->endpoint, impl->seeds.size(), o.tables.size());
    auto* raw = impl.get();
    raw->thread = std::thread([raw] { raw->loop(); });
    return std::unique_ptr<Node>(new Node(std::move(impl)));
}

const crdt::NodeId& Node::id() const {
    return impl_->self;
}
const std::string& Node::endpoint() const {
    return impl_->endpoint;
}
const std::string& Node::public_key() const {
    return impl_->options.transport.keys.public_key;
}
const crdt::NodeId& Node::id_salt() const {
    return impl_->id_salt;
}
const std::string& Node::database() const {
    return impl_->options.database;
}

NodeCounters Node::counters() const {
    std::lock_guard lock(impl_->shared);
    return impl_->counters;
}

std::vector<PeerStatus> Node::peers() const {
    std::lock_guard lock(impl_->shared);
    return impl_->peer_snapshot;
}

crdt::VersionVector Node::versions() const {
    std::lock_guard lock(impl_->shared);
    return impl_->versions_snapshot;
}

std::optional<Status> Node::failure() const {
    std::lock_guard lock(impl_->shared);
    return impl_->failure;
}

std::vector<store::StoppedTable> Node::stopped_tables() const {
    std::lock_guard lock(impl_->shared);
    return impl_->stopped_snapshot;
}

void NodeTesting::block(Node& node, const crdt::NodeId& peer, bool blocked) {
    std::lock_guard lock(node.impl_->shared);
    if (blocked) {
        node.impl_->blocked.insert(peer);
    } else {
        node.impl_->blocked.erase(peer);
    }
}

void Node::Impl::loop() {
    auto now = Clock::now();
    next_anti_entropy = now + options.anti_entropy_interval;
    next_probe = now + options.probe_interval;
    next_gossip = now;
    started = now;
    local_pushed = store->versions().of(self);
    while (running) {
        auto incoming = hub->poll(options.poll_interval);
        now = Clock::now();
        {
            std::lock_guard lock(shared);
            blocked_now = blocked;
        }
        for (const auto& in : incoming) {
            handle(in, now);
        }
        tick(now);
        if (store->replaced()) {
            reopen_store();
            continue;
        }
        report_capture_warnings();
        report_table_events();
        if (now >= next_publish) {
            next_publish = now + std::chrono::milliseconds(20);
            publish();
        }
    }
    apply_held_pushes(Clock::now(), true); // the senders would send them again; spare them
    if (store->picked_up_rows() > 0) {
        // Not needed for safety (the journal re-issues them after a restart), but a clean
        // stop leaves a file that holds everything.
        if (auto written = store->capture(); !written) {
            spdlog::warn("[{}] could not write picked-up changes at stop (they are written at "
                         "the next start): {}",
                         log_name, written.status().to_string());
        }
    }
    publish();
    spdlog::debug("[{}] stopped", log_name);
}

Status Node::Impl::open_store() {
    const auto& o = options;
    auto opened = store::Store::open(o.database, o.store);
    if (!opened) {
        return opened.status();
    }
    store = std::move(*opened);
    if (const auto& mode = store->journal_mode_before(); mode != "wal") {
        spdlog::warn("{}: switched the file from journal_mode={} to WAL, which peerlite needs "
                     "so apps read while it writes; it stays WAL, and an app's PRAGMA "
                     "journal_mode=DELETE fails while a node has the file open "
                     "(docs/operating.md)",
                     o.database, mode);
    }
    if (const auto& former = store->former_id(); !former.is_nil()) {
        spdlog::info("{}: node id {} becomes {}, derived from this node's public key (peers "
                     "accept no other); changes made under the old id stay and sync as any "
                     "origin's do",
                     o.database, former.to_string(), store->node_id().to_string());
    }
    if (const auto& back = store->rolled_back()) {
        spdlog::warn("{}: the file was rolled back (restored from a backup, or an older copy "
                     "put back): it holds this node's own changes up to {}, and it held them up "
                     "to {} before. Asking peers for everything after that, this node's own "
                     "changes included; new changes are stamped after {}",
                     o.database, back->held_through.to_string(), back->had_through.to_string(),
                     back->had_through.to_string());
    }
    // An app holding the write lock at start delays the start, as it delays the open:
    // each table waits up to the store's open_timeout, not only busy_timeout_ms.
    auto give_up = std::chrono::steady_clock::now() + o.store.open_timeout;
    for (const auto& spec : o.tables) {
        auto warnings = store->sync_table(spec);
        while (!warnings && warnings.status().code() == Code::busy &&
               std::chrono::steady_clock::now() < give_up) {
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
            warnings = store->sync_table(spec);
        }
        if (!warnings) {
            return warnings.status();
        }
        for (const auto& w : *warnings) {
            spdlog::warn("{}", w);
        }
    }
    // The file, not the config, says what syncs: a table synced once goes on syncing
    // until it is taken out on purpose.
    for (const auto& name : store->synced_tables()) {
        auto wire = store->mesh_name(name);
        bool listed = std::any_of(o.tables.begin(), o.tables.end(), [&](const auto& spec) {
            return strcasecmp(spec.table.c_str(), name.c_str()) == 0 ||
                   strcasecmp(spec.table.c_str(), wire.c_str()) == 0;
        });
        if (!listed) {
            spdlog::warn("{}: table '{}' is synced in the file but not in the config: it goes on "
                         "syncing. To take it out of sync, stop the daemon and run 'peerlite "
                         "untrack {} {}' (docs/operating.md)",
                         o.database, name, o.database, name);
        }
    }
    return Status::success();
}

void Node::Impl::reopen_store() {
    spdlog::warn("[{}] {} was replaced while open (a live restore): opening it again", log_name,
                 options.database);
    store.reset(); // releases the file and its lock first
    if (auto st = open_store(); !st.ok()) {
        spdlog::error("[{}] cannot open {} again: {}", log_name, options.database, st.to_string());
        std::lock_guard lock(shared);
        failure = st;
        running = false;
        return;
    }
    if (store->node_id() != self) {
        // Another node's file was restored here: this engine's identity is gone.
        auto st = Status(Code::identity_conflict,
                         options.database + " now holds node " + store->node_id().to_string() +
                             ", not this node (" + self.to_string() +
                             "): another node's backup was restored over it");
        spdlog::error("[{}] {}", log_name, st.message());
        std::lock_guard lock(shared);
        failure = st;
        running = false;
        return;
    }
    data_version = -1; // capture whatever the app wrote since
    local_pushed = store->versions().of(self);
    peer_versions.clear(); // what peers lack is known again at the next exchange
}

bool Node::Impl::send(const crdt::NodeId& to, const transport::Body& body) {
    if (blocked_now.count(to)) {
        return false;
    }
    if (!hub->connected(to)) {
        if (const auto* info = membership->find(to)) {
            (void)hub->connect(to, info->member.endpoint, info->member.public_key);
        }
    }
    auto bytes = transport::encode(Message{self, id_salt, body});
    bool sent = hub->send(to, bytes);
    if (sent) {
        count([&](NodeCounters& c) {
            ++c.messages_sent;
            c.bytes_sent += bytes.size();
        });
    }
    return sent;
}

void Node::Impl::reject(const std::string& from, const Status& why) {
    count([&](NodeCounters& c) {
        ++c.messages_rejected;
        ++c.rejected_by_reason[std::string(code_name(why.code()))];
    });
    // One line per rejected message, but a flood from a broken or hostile peer must not
    // drown the log: at most 10 lines a second, then one line saying how many were held.
    auto now = Clock::now();
    if (now - reject_window > std::chrono::seconds(1)) {
        if (rejects_unlogged > 0) {
            spdlog::warn("[{}] ... and {} more rejected messages not logged", log_name,
                         rejects_unlogged);
        }
        reject_window = now;
        rejects_logged = 0;
        rejects_unlogged = 0;
    }
    if (rejects_logged < 10) {
        ++rejects_logged;
        spdlog::warn("[{}] rejected a message from {}: {}", log_name, from, why.to_string());
    } else {
        ++rejects_unlogged;
    }
}

void Node::Impl::handle(const transport::Incoming& in, Clock::time_point now) {
    count([&](NodeCounters& c) {
        ++c.messages_received;
        c.bytes_received += in.bytes.size();
    });
    auto message = transport::decode(in.bytes, options.limits);
    if (!message) {
        reject(in.peer_address + (in.peer_key.empty() ? "" : " (key " + in.peer_key + ")"),
               message.status());
        return;
    }
    const auto& from = message->sender;
    if (blocked_now.count(from)) {
        return; // the test's partition: as if the packet never arrived
    }
    if (from == self) {
        reject(in.peer_address + (in.peer_key.empty() ? "" : " (key " + in.peer_key + ")"),
               Status(Code::identity_conflict,
                      "another daemon speaks as this node (" + self.to_string() +
                          "): it runs on a copy of this node's file; seed nodes with "
                          "'peerlite snapshot' (docs/operating.md, 'Seeding a node')"));
        return;
    }
    // A sender speaks as the id its connection's key derives, and as no other: one trusted
    // node cannot speak as another, nor take the id of one no one has heard from yet.
    if (!options.transport.plaintext) {
        if (from != crdt::NodeId::derive(in.peer_key, message->sender_salt)) {
            reject(in.peer_address + " (key " + in.peer_key + ")",
                   Status(Code::identity_conflict,
                          "sender speaks as node " + from.to_string() +
                              ", which its key and salt do not derive: a forged message"));
            return;
        }
    }
    membership->heard_from(from, now);
    dispatch(*message, now);
}

void Node::Impl::learn(const transport::Member& m, Clock::time_point now,
                       Membership::Source source) {
    if (m.id == self) {
        return;
    }
    if (!options.transport.plaintext && m.id != crdt::NodeId::derive(m.public_key, m.id_salt)) {
        reject("an entry for member " + m.id.short_string(),
               Status(Code::identity_conflict,
                      "its key " + m.public_key + " and salt do not derive its id: forged"));
        return;
    }
    // Incarnations are start times in milliseconds: one further ahead than a clock may
    // drift is forged, and would outrank the member's real entries for good.
    auto wall_ms = options.store.wall ? options.store.wall().count()
                                      : std::chrono::duration_cast<std::chrono::milliseconds>(
                                            std::chrono::system_clock::now().time_since_epoch())
                                            .count();
    if (m.incarnation >
        static_cast<std::uint64_t>(wall_ms + options.store.max_clock_drift.count())) {
        reject("an entry for member " + m.id.short_string(),
               Status(Code::clock_drift, "incarnation " + std::to_string(m.incarnation) +
                                             " is a start time later than any clock allows"));
        return;
    }
    if (membership->learn(m, now, source)) {
        if (auto st = hub->connect(m.id, m.endpoint, m.public_key); !st.ok()) {
            spdlog::warn("[{}] cannot connect to member {}: {}", log_name, m.id.short_string(),
                         st.to_string());
            return;
        }
        spdlog::info("[{}] member {} at {}", log_name, m.id.short_string(), m.endpoint);
        if (!hello(m.id)) {
            hello_pending.emplace(m.id, now);
        }
        sync_with(m.id); // a node that just joined or came back catches up at once
    }
    // A seed we now know by its real id needs no stand-in connection any more.
    if (auto it = seeds.find(m.endpoint); it != seeds.end()) {
        hub->disconnect(it->second);
        seeds.erase(it);
    }
}

bool Node::Impl::hello(const crdt::NodeId& to) {
    return send(to, transport::Hello{membership->self(), membership->gossip()});
}

void Node::Impl::dispatch(const Message& m, Clock::time_point now) {
    const auto& from = m.sender;
    std::visit(
        [&](const auto& body) {
            using T = std::decay_t<decltype(body)>;
            if constexpr (std::is_same_v<T, transport::Hello>) {
                // Its own entry counts as its word only if it is the sender's.
                learn(body.self, now,
                      body.self.id == from ? Membership::Source::itself
                                           : Membership::Source::gossip);
                membership->heard_from(from, now);
                for (const auto& member : body.members) {
                    learn(member, now);
                }
                send(from, transport::Members{membership->gossip()});
            } else if constexpr (std::is_same_v<T, transport::Members>) {
                for (const auto& member : body.members) {
                    learn(member, now);
                }
            } else if constexpr (std::is_same_v<T, transport::Push>) {
                if (body.changes.complete && hold_pushes(now)) {
                    auto [held, fresh] = held_pushes.try_emplace(from);
                    if (fresh) {
                        held->second.since = now;
                    }
                    auto& changes = held->second.changes;
                    changes.rows.insert(changes.rows.end(), body.changes.rows.begin(),
                                        body.changes.rows.end());
                    changes.covers.merge(body.changes.covers);
                    held->second.forward |= body.forward;
                    if (changes.rows.size() >= options.store.apply_batch_rows) {
                        apply_held_pushes(now, true);
                    }
                    return;
                }
                Status failure;
                if (!apply(from, body.changes, body.forward, &failure)) {
                    retry_later(from, failure.to_string(), now);
                }
            } else if constexpr (std::is_same_v<T, transport::SyncRequest>) {
                serve_sync(from, body, now);
            } else if constexpr (std::is_same_v<T, transport::SyncResponse>) {
                // A sender claims coverage of what it holds: a claim past its own vector is
                // false on its face, and believing it would skip versions for good.
                if (!body.changes.covers.minus(body.sender_has).empty()) {
                    reject(from.short_string(),
                           Status(Code::invalid_argument,
                                  "claims coverage of versions beyond the vector it sent with "
                                  "the claim"));
                    return;
                }
                check_own_versions(from, body.sender_has);
                if (membership->find(from) != nullptr) { // only members' vectors are kept
                    peer_versions[from] = {body.sender_has, servable().minus(body.sender_has), now};
                }
                pulled(from, body, now);
            } else if constexpr (std::is_same_v<T, transport::Ping>) {
                if (body.target == self) {
                    send(from, transport::Ack{body.seq, self, membership->self().incarnation});
                } else if (membership->find(body.target) != nullptr) {
                    // Probing `target` for someone whose own pings went unanswered. A relay
                    // whose target never answers is forgotten when the table is full (its
                    // requester just sees no ack): a peer's pings cannot grow it.
                    if (relays.size() >= kMaxRelays) {
                        relays.erase(relays.begin());
                    }
                    relays[{body.seq, body.target}] =
                        body.on_behalf_of.is_nil() ? from : body.on_behalf_of;
                    send(body.target, transport::Ping{body.seq, from, body.target});
                }
            } else if constexpr (std::is_same_v<T, transport::Digests>) {
                compare_digests(from, body);
            } else if constexpr (std::is_same_v<T, transport::Repair>) {
                repaired(from, body);
            } else if constexpr (std::is_same_v<T, transport::Ack>) {
                membership->heard_from(body.target, now);
                if (auto it = relays.find({body.seq, body.target}); it != relays.end()) {
                    send(it->second, body);
                    relays.erase(it);
                }
                probes.erase(body.seq);
            }
        },
        m.body);
}

// One part of our pull session. Its claim counts only if every part of the session
// applied (docs/design/coverage.md); a part of a session we did not open (a previous life's,
// or one given up on) is applied for its rows alone and not continued.
void Node::Impl::pulled(const crdt::NodeId& from, const transport::SyncResponse& response,
                        Clock::time_point now) {
    auto it = pulling.find(from);
    bool ours = it != pulling.end() && it->second.session == response.session;
    const auto& changes = response.changes;
    Status failure;
    std::optional<store::ApplyStats> stats;
    if (ours && !it->second.failed) {
        stats = apply(from, changes, true, &failure);
    } else {
        stats = apply(from, wire::ChangeSet{changes.rows, {}, true}, true, &failure);
    }
    if (!ours) {
        if (!stats) {
            retry_later(from, failure.to_string(), now);
        }
        return;
    }
    auto& pull = it->second;
    pull.last = now;
    pull.answered = true;
    ++pull.parts;
    if (stats) {
        pull.rows += stats->rows;
        pull.changed += stats->won;
    } else {
        pull.failed = true;
        ++pull.parts_failed;
        pull.failure = failure.to_string();
    }
    using std::chrono::duration_cast;
    using std::chrono::milliseconds;
    if (!changes.complete) {
        // A long catch-up says how it is going every few seconds.
        if (now - pull.reported > std::chrono::seconds(5)) {
            pull.reported = now;
            spdlog::info("[{}] catching up from {}: {} rows in {} parts so far", log_name,
                         from.short_string(), pull.rows, pull.parts);
        }
        send(from, transport::SyncRequest{response.session, {}}); // next part, please
        return;
    }
    if (pull.changed > 0) {
        spdlog::info("[{}] caught up from {}: {} rows received, {} column changes new here, "
                     "in {} ms",
                     log_name, from.short_string(), pull.rows, pull.changed,
                     duration_cast<milliseconds>(now - pull.started).count());
    }
    if (pull.failed) {
        retry_later(from,
                    std::to_string(pull.parts_failed) + " of " + std::to_string(pull.parts) +
                        " parts of a catch-up failed to apply (last: " + pull.failure + ")",
                    now);
    } else {
        retries.erase(from); // a whole session applied: the backoff starts over
        // Both sides now hold the same versions: whatever content still differs, the
        // vectors cannot show. Compare digests (docs/design/digests.md).
        if (response.sender_has == store->versions() && store->picked_up_rows() == 0) {
            if (auto mine = store->digests(false)) {
                send_digests(from, std::move(*mine));
            } else {
                spdlog::error("[{}] cannot read digests: {}", log_name, mine.status().to_string());
            }
        }
    }
    pulling.erase(it);
}

void Node::Impl::send_digests(const crdt::NodeId& to, std::vector<wire::TableDigest> tables) {
    if (send(to, transport::Digests{store->versions(), std::move(tables)})) {
        count([](NodeCounters& c) { ++c.digests_sent; });
    }
}

// Their digests, one level at a time: totals, then the buckets of tables whose totals
// differ, then a repair of the buckets that differ. Compared only when both hold the
// same versions (a change on its way is not divergence) and the same table schema.
void Node::Impl::compare_digests(const crdt::NodeId& from, const transport::Digests& theirs) {
    // The stored digests leave out writes picked up and not yet written into the file.
    if (theirs.at != store->versions() || store->picked_up_rows() > 0) {
        return;
    }
    bool with_buckets = std::any_of(theirs.tables.begin(), theirs.tables.end(),
                                    [](const auto& t) { return !t.buckets.empty(); });
    auto mine = store->digests(with_buckets);
    if (!mine) {
        spdlog::error("[{}] cannot read digests: {}", log_name, mine.status().to_string());
        return;
    }
    auto now = Clock::now();
    auto last = last_repair.find(from);
    bool repair_allowed = last == last_repair.end() || now - last->second >= kRepairSpacing;
    std::optional<Clock::time_point> repeat;
    if (last != last_repair.end() && now - last->second < 2 * kRepairSpacing) {
        repeat = last->second;
    }
    std::vector<wire::TableDigest> differing;
    for (const auto& their : theirs.tables) {
        auto it = std::find_if(mine->begin(), mine->end(),
                               [&](const auto& t) { return t.table == their.table; });
        if (it == mine->end() || it->schema != their.schema || it->total == their.total) {
            continue;
        }
        if (their.buckets.empty()) {
            differing.push_back(*it); // ask them to compare buckets
            continue;
        }
        std::vector<std::uint32_t> buckets;
        for (std::uint32_t b = 0; b < wire::kDigestBuckets; ++b) {
            if (it->buckets[b] != their.buckets[b]) {
                buckets.push_back(b);
            }
        }
        if (!buckets.empty()) {
            if (!repair_allowed) {
                continue;
            }
            if (repeat) {
                spdlog::warn(
                    "[{}] table '{}' still differs from {} after a repair {} s ago: "
                    "repairing again (a difference the merge rules do not settle "
                    "is a bug: please report it with `peerlite diff --digests`)",
                    log_name, it->table, from.short_string(),
                    std::chrono::duration_cast<std::chrono::seconds>(now - *repeat).count());
            }
            last_repair[from] = now;
            count([](NodeCounters& c) { ++c.repairs_started; });
            spdlog::info("[{}] table '{}' differs from {} in {} of {} digest buckets although "
                         "both hold the same versions: exchanging those rows",
                         log_name, it->table, from.short_string(), buckets.size(),
                         wire::kDigestBuckets);
            send_repair(from, it->table, buckets, true);
        }
    }
    if (!differing.empty()) {
        auto detailed = store->digests(true);
        if (!detailed) {
            return;
        }
        std::erase_if(*detailed, [&](const auto& t) {
            return std::none_of(differing.begin(), differing.end(),
                                [&](const auto& d) { return d.table == t.table; });
        });
        send_digests(from, std::move(*detailed));
    }
}

void Node::Impl::send_repair(const crdt::NodeId& to, const std::string& table,
                             const std::vector<std::uint32_t>& buckets, bool reply) {
    store::ReadCursor cursor;
    auto budget = part_budget(crdt::VersionVector());
    std::vector<wire::ChangeSet> parts;
    while (!cursor.done) {
        auto part =
            store->read_buckets(table, buckets, cursor, options.max_rows_per_message, budget);
        if (!part) {
            spdlog::error("[{}] cannot read rows of '{}' to repair: {}", log_name, table,
                          part.status().to_string());
            return;
        }
        if (!part->rows.empty() || parts.empty()) {
            parts.push_back(std::move(*part));
        }
    }
    (void)refuse_oversized(cursor); // logged; a repair claims nothing anyway
    for (std::size_t i = 0; i < parts.size(); ++i) {
        send(to, transport::Repair{table, buckets, std::move(parts[i]),
                                   reply && i + 1 == parts.size()});
    }
}

void Node::Impl::repaired(const crdt::NodeId& from, const transport::Repair& repair) {
    auto before = store->versions();
    auto stats = store->repair(repair.rows);
    if (!stats) {
        // Nothing is lost: the digests still differ at the next round, and it starts over.
        reject(from.short_string(), stats.status());
        return;
    }
    count([&](NodeCounters& c) {
        c.rows_applied += stats->rows;
        c.column_changes_repaired += stats->won;
    });
    if (stats->won > 0) {
        spdlog::warn("[{}] repaired table '{}' from {}: {} rows compared, {} column changes "
                     "were missing or different here",
                     log_name, repair.table, from.short_string(), stats->rows, stats->won);
    }
    if (repair.reply) {
        send_repair(from, repair.table, repair.buckets, false);
    }
    auto gained = store->versions().minus(before);
    if (!gained.empty()) {
        push(gained, from);
    }
}

void Node::Impl::retry_later(const crdt::NodeId& peer, const std::string& why,
                             Clock::time_point now) {
    auto& retry = retries[peer];
    if (retry.at != Clock::time_point{}) {
        return; // already asked to retry; one failure at a time doubles the backoff
    }
    retry.backoff =
        std::clamp(retry.backoff * 2, options.retry_backoff_min, options.retry_backoff_max);
    retry.at = now + retry.backoff;
    count([](NodeCounters& c) { ++c.pulls_retried; });
    spdlog::warn("[{}] changes from {} not applied here: {}; asking for them again in {} ms",
                 log_name, peer.short_string(), why, retry.backoff.count());
}

std::optional<store::ApplyStats> Node::Impl::apply(const crdt::NodeId& from,
                                                   const wire::ChangeSet& changes, bool forward,
                                                   Status* failure) {
    // The vector is copied only when what is gained will be passed on: a direct push (the
    // common case in small meshes) needs no copy on this per-message path.
    std::optional<crdt::VersionVector> before;
    if (forward) {
        before = store->versions();
    }
    // Local writes picked up first, outside the apply's write transaction, which picks up
    // only those that meet its rows: the app may be waiting for it (docs/design/neighbour.md).
    if (options.write_idle.count() > 0) {
        if (auto picked = store->pick_up(); picked) { // a failure is the apply's to report
            count([&](NodeCounters& c) { c.captured += picked->log_entries; });
        }
    }
    auto stats = store->apply(changes);
    if (!stats) {
        reject(from.short_string(), stats.status());
        if (failure != nullptr) {
            *failure = stats.status();
        }
        return std::nullopt;
    }
    count([&](NodeCounters& c) {
        c.column_changes_received += stats->column_changes;
        c.column_changes_won += stats->won;
        c.rows_applied += stats->rows;
    });
    if (stats->held_back > 0) {
        spdlog::warn("[{}] kept {} row changes from {} aside (unknown table or column); see "
                     "held-back changes",
                     log_name, stats->held_back, from.short_string());
    }
    if (before) {
        auto gained = store->versions().minus(*before);
        if (!gained.empty()) {
            push(gained, from);
        }
    }
    return *stats;
}

void Node::Impl::push(const crdt::VersionVector& all_gained, const crdt::NodeId& exclude) {
    auto gained = all_gained.minus(store->unserved());
    if (gained.empty()) {
        return;
    }
    auto reachable = membership->reachable(rng);
    bool direct = reachable.size() <= options.direct_push_limit;
    std::vector<crdt::NodeId> targets;
    for (const auto& id : reachable) {
        if (id != exclude && (direct || targets.size() < options.fanout)) {
            targets.push_back(id);
        }
    }
    if (targets.empty()) {
        return;
    }
    store::ReadCursor cursor;
    std::vector<wire::ChangeSet> parts;
    auto budget = part_budget(gained);
    // Fresh local writes come from memory, the rest from the file: neither writes to it.
    auto from_file = gained;
    if (auto picked = read_from_memory(gained, cursor, budget)) {
        parts = std::move(picked->first);
        from_file = std::move(picked->second);
    }
    while (!cursor.done) {
        auto part = store->read_changes(from_file, cursor, options.max_rows_per_message, budget);
        if (!part) {
            spdlog::error("[{}] cannot read changes to push: {}", log_name,
                          part.status().to_string());
            return;
        }
        if (!part->rows.empty() || parts.empty()) {
            parts.push_back(std::move(*part));
        }
    }
    auto refused = refuse_oversized(cursor);
    // A push is fire-and-forget: any part may be lost. Only a push in one part may claim
    // coverage of `gained` (its rows are all there); parts of a larger one claim nothing,
    // and the receiver covers their versions one by one until anti-entropy fills the gaps.
    if (parts.size() == 1) {
        parts.front().covers = gained.minus(refused);
    }
    for (const auto& part : parts) {
        for (const auto& to : targets) {
            if (send(to, transport::Push{part, !direct})) {
                count([](NodeCounters& c) { ++c.pushes_sent; });
            }
        }
    }
}

std::optional<std::pair<std::vector<wire::ChangeSet>, crdt::VersionVector>>
Node::Impl::read_from_memory(const crdt::VersionVector& wanted, store::ReadCursor& cursor,
                             std::size_t budget) {
    auto picked = store->picked_up_versions();
    auto in_memory = wanted.minus(wanted.minus(picked));
    if (in_memory.empty()) {
        return std::nullopt;
    }
    store::ReadCursor memory;
    std::vector<wire::ChangeSet> parts;
    while (!memory.done) {
        auto part = store->read_picked_up(in_memory, memory, options.max_rows_per_message, budget);
        if (!part) {
            spdlog::warn("[{}] cannot read picked-up changes: {}", log_name,
                         part.status().to_string());
            return std::nullopt;
        }
        if (!*part) {
            return std::nullopt; // written into the file meanwhile: the file serves them all
        }
        if (!(*part)->rows.empty() || parts.empty()) {
            parts.push_back(std::move(**part));
        }
    }
    cursor.oversized.insert(cursor.oversized.end(), memory.oversized.begin(),
                            memory.oversized.end());
    return std::make_pair(std::move(parts), wanted.minus(in_memory));
}

void Node::Impl::serve_sync(const crdt::NodeId& from, const transport::SyncRequest& request,
                            Clock::time_point now) {
    auto key = std::make_pair(from, request.session);
    auto it = sessions.find(key);
    if (it == sessions.end()) {
        // Serving sessions are held for whoever asks: when the table is full, the one left
        // unused longest goes (its asker times out and asks again).
        if (sessions.size() >= kMaxSessions) {
            sessions.erase(std::min_element(sessions.begin(), sessions.end(),
                                            [](const auto& a, const auto& b) {
                                                return a.second.last_used < b.second.last_used;
                                            }));
        }
        // A new session: what they lack from us; and if they hold what we lack, pull it.
        check_own_versions(from, request.have);
        Session session;
        session.wanted = servable().minus(request.have);
        if (membership->find(from) != nullptr) { // only members' vectors are kept
            peer_versions[from] = {request.have, session.wanted, now};
        }
        it = sessions.emplace(key, std::move(session)).first;
        if (!request.have.minus(store->versions()).empty()) {
            sync_with(from);
        }
    }
    auto& session = it->second;
    session.last_used = now;
    // The newest local writes (a session that crossed their push) come from memory, in
    // the first part; the rest from the file. Neither writes to it.
    if (!session.from_file) {
        session.from_file = session.wanted;
        session.in_memory = session.wanted.minus(session.wanted.minus(store->picked_up_versions()));
        if (!session.in_memory.empty()) {
            session.from_file = session.wanted.minus(session.in_memory);
        }
    }
    std::optional<Result<wire::ChangeSet>> picked;
    if (!session.in_memory.empty() && !session.memory.done) {
        auto budget = part_budget(session.wanted);
        auto from_memory = store->read_picked_up(session.in_memory, session.memory,
                                                 options.max_rows_per_message, budget);
        if (from_memory && *from_memory) {
            picked.emplace(std::move(**from_memory));
            session.cursor.oversized.insert(session.cursor.oversized.end(),
                                            session.memory.oversized.begin(),
                                            session.memory.oversized.end());
            session.memory.oversized.clear();
        } else {
            // Written into the file meanwhile (or unreadable): the file serves them all.
            session.memory.done = true;
            session.from_file = session.wanted;
            store::ReadCursor fresh;
            fresh.oversized = std::move(session.cursor.oversized);
            session.cursor = std::move(fresh);
        }
    }
    if (picked && session.memory.done && session.from_file->empty()) {
        session.cursor.done = true;
    }
    auto part =
        picked ? std::move(*picked)
               : store->read_changes(*session.from_file, session.cursor,
                                     options.max_rows_per_message, part_budget(session.wanted));
    if (part) {
        // Rows no message can carry stay here: the claim must not cover them.
        session.wanted = session.wanted.minus(refuse_oversized(session.cursor));
    }
    if (!part) {
        spdlog::error("[{}] cannot read changes for {}: {}", log_name, from.short_string(),
                      part.status().to_string());
        sessions.erase(it);
        return;
    }
    part->covers = session.wanted;
    part->complete = session.cursor.done;
    bool sent = send(from, transport::SyncResponse{request.session, std::move(*part), servable()});
    if (session.cursor.done) {
        if (auto pv = peer_versions.find(from); sent && pv != peer_versions.end()) {
            pv->second.lacked_sent = pv->second.lacked == session.wanted;
        }
        sessions.erase(it);
    }
}

void Node::Impl::sync_with(const crdt::NodeId& peer) {
    // One pull per peer at a time: two sessions would stream the same rows twice. A pull
    // presumed lost starts afresh: one never answered after 500 ms (typically a request
    // that reached a peer not yet connected back to us), or one silent for 5 s after
    // parts had been arriving.
    auto now = Clock::now();
    if (auto it = pulling.find(peer);
        it != pulling.end() &&
        now - it->second.last < (it->second.answered ? std::chrono::milliseconds(5000)
                                                     : std::chrono::milliseconds(500))) {
        pull_pending.erase(peer);
        return;
    }
    auto session = next_seq++;
    if (send(peer, transport::SyncRequest{session, store->versions()})) {
        count([](NodeCounters& c) { ++c.syncs_started; });
        Pull pull;
        pull.session = session;
        pull.last = pull.started = pull.reported = now;
        pulling[peer] = std::move(pull);
        pull_pending.erase(peer);
    } else {
        pull_pending.emplace(peer, now); // keeps the first attempt's time
    }
}

void Node::Impl::retry_pending(Clock::time_point now) {
    for (auto it = hello_pending.begin(); it != hello_pending.end();) {
        if (now - it->second > std::chrono::seconds(1) || hello(it->first)) {
            it = hello_pending.erase(it);
        } else {
            ++it;
        }
    }
    for (auto it = pull_pending.begin(); it != pull_pending.end();) {
        auto [peer, since] = *it++; // sync_with may erase it
        if (now - since > std::chrono::seconds(1)) {
            pull_pending.erase(peer); // not a handshake: anti-entropy takes over
        } else {
            sync_with(peer);
        }
    }
}

void Node::Impl::probe(Clock::time_point now) {
    if (auto target = membership->next_probe()) {
        auto seq = next_seq++;
        probes[seq] = Probe{*target, now, false};
        send(*target, transport::Ping{seq, crdt::NodeId(), *target});
    }
    for (auto it = probes.begin(); it != probes.end();) {
        auto& p = it->second;
        if (!p.indirect && now - p.sent > options.probe_timeout) {
            // Ask up to two others to probe it: a lost packet or one bad link is not death.
            int asked = 0;
            for (const auto& helper : membership->reachable(rng)) {
                if (helper != p.target && asked < 2) {
                    send(helper, transport::Ping{it->first, self, p.target});
                    ++asked;
                }
            }
            p.indirect = true;
        }
        if (now - p.sent > 10 * options.probe_timeout) {
            it = probes.erase(it);
        } else {
            ++it;
        }
    }
}

// Captures run inside every store call that reads or writes (tick, apply, read), so the
// warnings of all of them are collected here once per loop turn.
void Node::Impl::report_capture_warnings() {
    auto warnings = store->take_capture_warnings();
    if (warnings.empty()) {
        return;
    }
    count([&](NodeCounters& c) { c.local_writes_refused += warnings.size(); });
    for (const auto& w : warnings) {
        spdlog::warn("[{}] {}", log_name, w.message);
    }
}

void Node::Impl::report_table_events() {
    for (const auto& event : store->take_table_events()) {
        switch (event.kind) {
        case store::TableEvent::Kind::stopped:
            spdlog::error("[{}] table '{}' stopped syncing: {}", log_name, event.table,
                          event.message);
            break;
        case store::TableEvent::Kind::resumed:
            spdlog::warn("[{}] table '{}' syncs again: {}", log_name, event.table, event.message);
            break;
        case store::TableEvent::Kind::repaired:
            spdlog::warn("[{}] table '{}' repaired: {}", log_name, event.table, event.message);
            break;
        case store::TableEvent::Kind::renamed:
            spdlog::warn("[{}] {}", log_name, event.message);
            break;
        }
    }
}

void Node::Impl::check_own_versions(const crdt::NodeId& from, const crdt::VersionVector& theirs) {
    // Every change under our id starts here, and is covered here from its capture on;
    // only a rollback's gap (which the store knows) may be held elsewhere and not here.
    auto foreign = theirs.of(self).minus(store->versions().of(self));
    if (const auto& gap = store->own_gap()) {
        crdt::ClockRanges lost;
        lost.add(*gap);
        foreign = foreign.minus(lost);
    }
    if (foreign.empty() || !foreign_own_logged.insert(from).second) {
        return;
    }
    count([](NodeCounters& c) { ++c.foreign_own_changes; });
    spdlog::error("[{}] peer {} holds changes under this node's id that {} never wrote (up to "
                  "{}): another node runs a copy of this file (cp, VACUUM INTO, a backup "
                  "restored elsewhere), or the file was rolled back with its lock file "
                  "removed. Two nodes under one id do not converge: stop the copy and seed "
                  "new nodes with `peerlite snapshot` (docs/operating.md)",
                  log_name, from.short_string(), store->path(), foreign.highest().to_string());
}

crdt::VersionVector Node::Impl::servable() const {
    return store->versions().minus(store->unserved());
}

bool Node::Impl::hold_pushes(Clock::time_point now) const {
    return options.apply_delay.count() > 0 && last_local_commit != Clock::time_point{} &&
           now - last_local_commit < options.apply_quiet;
}

void Node::Impl::apply_held_pushes(Clock::time_point now, bool all) {
    for (auto it = held_pushes.begin(); it != held_pushes.end();) {
        if (!all && hold_pushes(now) && now - it->second.since < options.apply_delay) {
            ++it;
            continue;
        }
        // Complete sets merged: their rows together, and the union of their claims, each
        // of which its own rows fulfil.
        auto held = std::move(it->second);
        auto from = it->first;
        it = held_pushes.erase(it);
        Status failure;
        if (!apply(from, held.changes, held.forward, &failure)) {
            retry_later(from, failure.to_string(), now);
        }
    }
}

void Node::Impl::tick(Clock::time_point now) {
    apply_held_pushes(now, false);
    // Local commits by any connection change data_version: capture and push them.
    auto version = store->data_version();
    // Written into the file only once the app is quiet: see NodeOptions::write_idle.
    if (store->picked_up_rows() == 0) {
        picked_since = now;
    }
    bool write_now = store->picked_up_rows() > 0 &&
                     (now - last_local_commit >= options.write_idle ||
                      now - picked_since >= options.write_max_delay ||
                      store->picked_up_rows() >= options.store.max_picked_up_rows);
    if ((version && *version != data_version) || write_now) {
        if (version && *version != data_version) {
            last_local_commit = now;
        }
        data_version = version ? *version : data_version;
        auto captured =
            write_now || options.write_idle.count() == 0 ? store->capture() : store->pick_up();
        if (!captured && !write_now && options.write_idle.count() > 0) {
            // A pick-up that could not be journaled is written at once instead.
            captured = store->capture();
        }
        if (!captured) {
            // Once per streak: it is tried again every turn until it works.
            if (capture_failures++ == 0) {
                spdlog::warn("[{}] capture failed, trying again every turn: {}", log_name,
                             captured.status().to_string());
            }
        } else {
            if (capture_failures > 0) {
                spdlog::info("[{}] capture works again after {} failed attempts", log_name,
                             capture_failures);
                capture_failures = 0;
            }
            count([&](NodeCounters& c) { c.captured += captured->log_entries; });
            auto mine = store->versions().of(self);
            crdt::VersionVector gained;
            gained.add(self, mine.minus(local_pushed));
            local_pushed = std::move(mine);
            if (!gained.empty()) {
                push(gained, crdt::NodeId());
            }
        }
        // Our own commit moved data_version too; read it again so it does not re-trigger.
        // A capture that failed (an app held the write lock past busy_timeout_ms) is
        // tried again next turn: waiting for the next commit could wait forever.
        if (!captured) {
            data_version = -1;
        } else if (auto after = store->data_version()) {
            data_version = *after;
        }
        // Between our reads, give the WAL a checkpoint that no read of ours can block
        // (the app's own autocheckpoints may have met one), at most every 100 ms.
        if (now >= next_checkpoint) {
            next_checkpoint = now + std::chrono::milliseconds(100);
            if (auto st = store->checkpoint(); !st.ok()) {
                spdlog::warn("[{}] {}", log_name, st.to_string());
            }
        }
    }
    if (now >= next_probe) {
        next_probe = now + options.probe_interval;
        probe(now);
    }
    if (now >= next_gossip) {
        next_gossip = now + options.gossip_interval;
        auto reachable = membership->reachable(rng);
        if (!reachable.empty()) {
            send(reachable.front(), transport::Members{membership->gossip()});
        }
        bool unsent = false;
        for (const auto& [endpoint, id] : seeds) {
            unsent |= !hello(id); // until the seed answers and we know its real id
        }
        // Right after start a seed's socket is still in its CURVE handshake and the hello
        // is dropped: try again in 10 ms rather than a gossip interval (500 ms) later.
        if (unsent && now - started < std::chrono::seconds(1)) {
            next_gossip = now + std::chrono::milliseconds(10);
        }
        for (auto it = sessions.begin(); it != sessions.end();) {
            it = now - it->second.last_used > std::chrono::seconds(30) ? sessions.erase(it)
                                                                       : std::next(it);
        }
    }
    retry_pending(now);
    for (auto it = retries.begin(); it != retries.end(); ++it) {
        if (it->second.at <= now && it->second.at != Clock::time_point{}) {
            it->second.at = {}; // until the next failure; the backoff is kept
            sync_with(it->first);
        }
    }
    if (now >= next_anti_entropy) {
        next_anti_entropy = now + options.anti_entropy_interval;
        auto reachable = membership->reachable(rng);
        if (!reachable.empty()) {
            sync_with(reachable.front());
        }
    }
    for (const auto& id : membership->forget_unheard(now)) {
        spdlog::info("[{}] forgot member {}: known only from gossip, never heard from itself",
                     log_name, id.short_string());
        hub->disconnect(id);
        peer_versions.erase(id);
    }
    for (const auto& [id, state] : membership->update(now)) {
        spdlog::info("[{}] member {} is {}", log_name, id.short_string(), state_name(state));
        if (state == MemberState::alive) {
            sync_with(id); // back from suspicion or the dead: compare at once
        }
    }
}

// Bytes a part's rows may take: what a message may carry, less the envelope (the claim
// and our version vector travel with every sync part) and a margin for framing.
std::size_t Node::Impl::part_budget(const crdt::VersionVector& claim) {
    auto envelope = transport::encode(Message{
        self, id_salt, transport::SyncResponse{0, wire::ChangeSet{{}, claim, false}, store->versions()}});
    auto reserve = 2 * envelope.size() + 1024;
    auto limit = options.transport.max_message_bytes;
    return limit > reserve ? limit - reserve : 1;
}

// Logs (once each) and counts rows the last scan found too large for any message, clears
// them from the cursor, and returns their versions, to be left out of coverage claims.
crdt::VersionVector Node::Impl::refuse_oversized(store::ReadCursor& cursor) {
    crdt::VersionVector refused;
    for (const auto& row : cursor.oversized) {
        std::uint64_t newest = 0;
        for (const auto& stamp : row.stamps) {
            refused.add(stamp.node, stamp.hlc);
            newest = std::max(newest, stamp.hlc.raw());
        }
        auto name = row_name(row.table, row.key);
        if (oversized_logged.emplace(row.table, name, newest).second) {
            count([](NodeCounters& c) { ++c.rows_too_large; });
            spdlog::error("[{}] row {} is {} bytes encoded (column '{}': {} bytes), over what "
                          "one message may carry (max_message_bytes = {}): it stays on this "
                          "node and is not synced until it is made smaller",
                          log_name, name, row.bytes, row.column, row.column_bytes,
                          options.transport.max_message_bytes);
        }
    }
    cursor.oversized.clear();
    return refused;
}

void Node::Impl::publish() {
    std::vector<PeerStatus> peers;
    auto now = Clock::now();
    using std::chrono::duration_cast;
    using std::chrono::milliseconds;
    for (const auto& info : membership->all()) {
        PeerStatus peer{
            info.member, info.state, duration_cast<milliseconds>(now - info.last_heard), {}, {}};
        if (auto it = peer_versions.find(info.member.id); it != peer_versions.end()) {
            peer.versions = it->second.versions;
            peer.lacked = it->second.lacked;
            peer.versions_age = duration_cast<milliseconds>(now - it->second.at);
            peer.lacked_sent = it->second.lacked_sent;
        }
        peers.push_back(std::move(peer));
    }
    std::lock_guard lock(shared);
    peer_snapshot = std::move(peers);
    versions_snapshot = store->versions();
    stopped_snapshot = store->stopped_tables();
}

} // namespace peerlite::peer
