// The engine: start, the loop, sending, receiving and dispatch, membership learning
// (the parts it runs are listed in node_impl.hpp). Long because the loop's one tick
// orders every periodic duty (capture, write, checkpoint, probe, gossip, anti-entropy,
// held pushes, publish) in one place, where their order can be read.
#include "node_impl.hpp"
#include "node_testing.hpp"

namespace peerlite::peer {

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
    auto now = o.store.wall ? o.store.wall()
                            : std::chrono::duration_cast<std::chrono::milliseconds>(
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
    auto now = monotonic_now();
    next_anti_entropy = now + options.anti_entropy_interval;
    next_probe = now + options.probe_interval;
    next_gossip = now;
    started = now;
    local_pushed = store->versions().of(self);
    while (running) {
        auto incoming = hub->poll(options.poll_interval);
        now = monotonic_now();
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
            next_publish = now + kPublishDelay;
            publish();
        }
    }
    apply_held_pushes(monotonic_now(), true); // the senders would send them again; spare them
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
    // drown the log: at most kRejectLinesPerSecond lines a second, then one line saying how
    // many were held.
    auto now = monotonic_now();
    if (now - reject_window > std::chrono::seconds(1)) {
        if (rejects_unlogged > 0) {
            spdlog::warn("[{}] ... and {} more rejected messages not logged", log_name,
                         rejects_unlogged);
        }
        reject_window = now;
        rejects_logged = 0;
        rejects_unlogged = 0;
    }
    if (rejects_logged < kRejectLinesPerSecond) {
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
                on_push(from, body, now);
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
                on_ping(from, body);
            } else if constexpr (std::is_same_v<T, transport::Digests>) {
                compare_digests(from, body);
            } else if constexpr (std::is_same_v<T, transport::Repair>) {
                repaired(from, body);
            } else if constexpr (std::is_same_v<T, transport::Ack>) {
                on_ack(body, now);
            }
        },
        m.body);
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
        // (the app's own autocheckpoints may have met one), at most every kCheckpointInterval.
        if (now >= next_checkpoint) {
            next_checkpoint = now + kCheckpointInterval;
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
        // is dropped: try again soon rather than a gossip interval later.
        if (unsent && now - started < kStartGossipFor) {
            next_gossip = now + kStartGossipInterval;
        }
        for (auto it = sessions.begin(); it != sessions.end();) {
            it = now - it->second.last_used > kSessionExpiry ? sessions.erase(it) : std::next(it);
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

void Node::Impl::publish() {
    std::vector<PeerStatus> peers;
    auto now = monotonic_now();
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
    counters.connections_refused = hub->counters().refused_keys;
    peer_snapshot = std::move(peers);
    versions_snapshot = store->versions();
    stopped_snapshot = store->stopped_tables();
}

} // namespace peerlite::peer
