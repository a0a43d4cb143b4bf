// The engine's state and the declarations of its parts, shared by the files that
// implement them (internal, not installed):
//   node.cpp           start, the loop, sending, receiving and dispatch, membership learning
//   push.cpp           fresh changes out (push) and in (apply, pushes held while the app writes)
//   anti_entropy.cpp   sync sessions: asking for what we lack, serving what others lack
//   content_check.cpp  content digests once vectors agree, and the repairs they start
//   probing.cpp        failure detection: direct and indirect pings
// Everything here runs on the engine's one thread, except what `shared` guards.
#pragma once

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

namespace peerlite::peer {

using transport::Message;

// Bounds on what a peer's messages can make this node hold (issue 20): far above what an
// honest mesh uses (one relay per probe in flight, one serving session per asking peer).
inline constexpr std::size_t kMaxRelays = 1024;
inline constexpr std::size_t kMaxSessions = 256;

// Timings of the engine that are not configuration: each follows from another setting or
// from what it guards, and none is one an operator would tune.
//
// How often the loop writes captured rows into the file and checkpoints (the store decides
// whether there is anything to do; write_idle and write_max_delay say when it must).
inline constexpr std::chrono::milliseconds kCheckpointInterval{100};
// Gossip right after start, while some member is not yet reached: a seed answers within
// milliseconds on a LAN, and a node joining should not wait a whole gossip_interval.
inline constexpr std::chrono::milliseconds kStartGossipInterval{10};
inline constexpr std::chrono::seconds kStartGossipFor{1};
// A serving session (a peer's catch-up being read in parts) is forgotten after this long
// unused: the asker continues within milliseconds, or has given up and will ask again.
inline constexpr std::chrono::seconds kSessionExpiry{30};
// A pull with no answer at all is asked again after kPullUnanswered; one answered and then
// silent (a part lost, or the server busy reading) after kPullStalled.
inline constexpr std::chrono::milliseconds kPullUnanswered{500};
inline constexpr std::chrono::milliseconds kPullStalled{5000};
// A pull still failing is reported in the log at most this often.
inline constexpr std::chrono::seconds kPullReportEvery{5};
// A hello or a pull that could not be sent (the connection still in its handshake) is
// tried again every loop turn for this long; after it, gossip and anti-entropy take over.
inline constexpr std::chrono::seconds kPendingFor{1};
// A probe forgotten after this many probe timeouts (its indirect pings had their chance).
inline constexpr int kProbeLifetimeTimeouts = 10;
// Rejected messages logged at most this many times a second; the rest are counted (and
// `peerlite status` shows them all by reason), so a flood cannot fill the disk with lines.
inline constexpr int kRejectLinesPerSecond = 10;
// How long after a change the status snapshot (`peerlite status`) is refreshed.
inline constexpr std::chrono::milliseconds kPublishDelay{20};

// Seeds are addressed before their node id is known: a stand-in id derived from the
// endpoint (first byte 0xff and seven zero bytes mark it, which no derived id has in practice).
inline crdt::NodeId seed_id(const std::string& endpoint) {
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
inline std::string row_name(const std::string& table, const std::vector<crdt::Value>& key) {
    std::string out = table + "[";
    for (std::size_t i = 0; i < key.size(); ++i) {
        out += (i ? "," : "") + key[i].to_string();
    }
    return out + "]";
}

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
    std::optional<store::ApplyStats> apply(const crdt::NodeId& from, const wire::ChangeSet& changes,
                                           bool forward, Status* failure = nullptr);
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
    // Failure detection (probing.cpp).
    void probe(Clock::time_point now);
    void on_ping(const crdt::NodeId& from, const transport::Ping& ping);
    void on_ack(const transport::Ack& ack, Clock::time_point now);
    // A push received: applied now, or held while the app commits (push.cpp).
    void on_push(const crdt::NodeId& from, const transport::Push& push, Clock::time_point now);
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
    // The monotonic clock every timing of the engine reads (NodeOptions::monotonic).
    Clock::time_point monotonic_now() const {
        return options.monotonic ? options.monotonic() : Clock::now();
    }
    template <class F>
    void count(F&& f) {
        std::lock_guard lock(shared);
        f(counters);
    }
};

} // namespace peerlite::peer
