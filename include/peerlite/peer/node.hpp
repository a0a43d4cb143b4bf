// A peerlite node: one database, its store, its sockets, and the thread that gossips.
//
// Data flow on the node's thread, each turn of its poll loop:
//   local commits (seen through SQLite's data_version) -> Store::capture() -> push the
//   new versions to `fanout` random live peers;
//   a push or sync response from a peer -> Store::apply() -> push whatever was new to us
//   on to other peers (so a change reaches N nodes in about log N hops);
//   every anti_entropy_interval -> compare version vectors with one random peer, and
//   both sides pull what they lack, in chunks, one chunk in flight per session;
//   every probe_interval -> ping one member (indirectly through others if it is silent).
//
// The Node owns its thread; all public methods are thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <peerlite/peer/membership.hpp>
#include <peerlite/schema/table_spec.hpp>
#include <peerlite/store/store.hpp>
#include <peerlite/transport/hub.hpp>

namespace peerlite::peer {

struct Seed {
    std::string endpoint;   // e.g. "tcp://10.0.0.5:7400"
    std::string public_key; // the seed's CURVE public key (Z85); empty in plaintext
};

struct NodeOptions {
    std::string database;                  // SQLite file
    std::vector<schema::TableSpec> tables; // synced tables (the file must have them)
    store::StoreOptions store;
    transport::HubOptions transport;
    std::vector<Seed> seeds;
    // Peers each fresh change is pushed to, each of which passes it on (epidemic push):
    // about log(N) hops to reach N nodes. More spreads faster, costs more duplicates.
    std::size_t fanout = 3;
    // Up to this many live members, fresh changes go straight to every one of them and
    // are not passed on: one hop, no duplicates, no probabilistic tail (an epidemic that
    // misses a node leaves it to anti-entropy, ~anti_entropy_interval later). Above it,
    // the epidemic keeps each node's sends at `fanout` per change. A direct push costs
    // the mesh N-1 messages per change, the epidemic about fanout * N; at 20 nodes on
    // loopback the epidemic left ~10% of writes to anti-entropy (p99 ~1 s) where direct
    // pushes measured p50 6-17 ms without that tail (mesh_bench, docs/performance.md).
    std::size_t direct_push_limit = 32;
    // How often to compare version vectors with one random peer: the bound on how long
    // a missed push stays missing.
    std::chrono::milliseconds anti_entropy_interval{1000};
    // How often to ping one member; suspect/dead delays are in `membership`.
    std::chrono::milliseconds probe_interval{200};
    // How long a direct ping waits before asking others to probe indirectly.
    std::chrono::milliseconds probe_timeout{400};
    // How often to gossip the member list to one random member, and retry seeds.
    std::chrono::milliseconds gossip_interval{500};
    MembershipOptions membership;
    // Longest wait in the poll loop: the worst-case delay before a local commit is seen.
    std::chrono::milliseconds poll_interval{2};
    // Rows per push or sync part; parts are also kept under transport.max_message_bytes.
    // Larger is faster to catch up, smaller keeps each message and apply transaction short.
    std::size_t max_rows_per_message = 1000;
    // After changes from a peer failed to apply here (SQLite busy past the busy timeout,
    // a clock beyond the drift bound, a constraint), they are asked for again after this
    // backoff, doubling from min to max while failures go on. Shorter heals a transient
    // failure sooner; longer costs less while a failure persists.
    std::chrono::milliseconds retry_backoff_min{100};
    std::chrono::milliseconds retry_backoff_max{10'000};
    // Local writes are picked up and pushed without writing to the file (a write right
    // after an app's commit would make SQLite refuse the app's next read-then-write
    // transaction: docs/design/neighbour.md); they are written into it once no local commit
    // was seen for this long, or when store.max_picked_up_rows are held. Shorter keeps less
    // in memory and in the journal; longer leaves a busy app alone for longer.
    std::chrono::milliseconds write_idle{500};
    // ... and at the latest this long after the first of them was picked up, even if the
    // app never pauses: the journal beside the file (which a restart replays) grows
    // until they are written. Shorter bounds it tighter; each write may refuse one of a
    // busy app's deferred read-then-write transactions.
    std::chrono::milliseconds write_max_delay{10'000};
    // While the app commits (a local commit within apply_quiet), changes pushed by a peer
    // wait, and are applied together, one transaction per peer, at the app's first pause
    // of apply_quiet or after apply_delay at the latest: each daemon commit can refuse an
    // app's deferred read-then-write transaction, so fewer commits refuse fewer
    // (docs/design/neighbour.md). A longer delay makes received changes visible later
    // while the app never pauses; 0 applies every push at once.
    std::chrono::milliseconds apply_delay{1000};
    // The pause in the app's commits that counts as one. Shorter applies sooner in the
    // gaps of a busy app; longer waits for real lulls.
    std::chrono::milliseconds apply_quiet{20};
    transport::MessageLimits limits;
    // The monotonic clock every interval and timeout of the engine is measured with;
    // empty: std::chrono::steady_clock. Injected like store.wall (the hybrid logical
    // clock's wall clock), so a test or an embedding can drive time itself.
    std::function<Clock::time_point()> monotonic;
};

struct NodeCounters {
    std::uint64_t messages_sent = 0;
    std::uint64_t messages_received = 0;
    // Message bytes handed to / taken from the transport: the encoded frames, before
    // ZeroMQ framing and CURVE's per-frame overhead (a few dozen bytes per message).
    std::uint64_t bytes_sent = 0;
    std::uint64_t bytes_received = 0;
    std::uint64_t messages_rejected =
        0; // undecodable, unsupported, spoofed or refused by the store
    std::uint64_t column_changes_received = 0;
    std::uint64_t column_changes_won = 0; // received and new here
    std::uint64_t rows_applied = 0;
    std::uint64_t captured = 0; // local log entries picked up
    std::uint64_t pushes_sent = 0;
    std::uint64_t syncs_started = 0;
    std::uint64_t pulls_retried = 0;  // changes that failed to apply, asked for again
    std::uint64_t rows_too_large = 0; // local rows no message can carry (logged once each)
    // Local writes capture did not take as written (a value a counter cannot hold),
    // each logged as a warning naming table, key and column.
    std::uint64_t local_writes_refused = 0;
    // Content checks (docs/design/digests.md): digest messages sent, repairs this node
    // started after finding buckets that differ, and column changes that a repair (started
    // by either side) found missing or different here and merged.
    std::uint64_t digests_sent = 0;
    std::uint64_t repairs_started = 0;
    std::uint64_t column_changes_repaired = 0;
    // Peers found holding changes under this node's id that this file never wrote: the
    // file was copied and the copy runs as a second node, or it was rolled back where
    // nothing recorded it (logged as an error, once per peer; docs/operating.md).
    std::uint64_t foreign_own_changes = 0;
    // Connections refused because their key is not trusted (the ZAP allowlist): a node
    // whose key is missing from this node's trusted_keys, or a stranger.
    std::uint64_t connections_refused = 0;
    std::map<std::string, std::uint64_t> rejected_by_reason; // status code name -> count
};

struct PeerStatus {
    transport::Member member;
    MemberState state;
    std::chrono::milliseconds since_heard;
    // What the peer covered when it last said so (in an anti-entropy exchange, at most
    // about anti_entropy_interval * members ago), how long ago that was, and what it
    // lacked then of what this node held at that moment (not of what it holds now: a
    // change that reached both since is no lag). Absent until the first exchange.
    std::optional<crdt::VersionVector> versions;
    std::optional<crdt::VersionVector> lacked;
    std::chrono::milliseconds versions_age{0};
    // Everything it lacked at that exchange has been sent to it since (it asked, and the
    // last part went out); whether it applied them shows at the next exchange.
    bool lacked_sent = false;
};

class Node {
public:
    static Result<std::unique_ptr<Node>> start(NodeOptions options);
    ~Node(); // stops the thread, closes sockets and the store

    const crdt::NodeId& id() const;
    const std::string& endpoint() const;
    const std::string& public_key() const;
    // What id() is derived from with public_key() (crdt::NodeId::derive); nil in
    // plaintext meshes.
    const crdt::NodeId& id_salt() const;
    const std::string& database() const;

    NodeCounters counters() const;
    std::vector<PeerStatus> peers() const;
    crdt::VersionVector versions() const;
    // Synced tables a schema change stopped, with the reason and the way back.
    std::vector<store::StoppedTable> stopped_tables() const;
    // Why the engine stopped by itself, if it did: the file was replaced while open (a live
    // restore) and could not be opened again, or now holds another node. It syncs nothing
    // more; the daemon exits with status 1.
    std::optional<Status> failure() const;

    struct Impl;

private:
    friend struct NodeTesting; // tests' partitions (peer/node_testing.hpp, not installed)
    explicit Node(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

} // namespace peerlite::peer
