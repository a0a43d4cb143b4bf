// Anti-entropy sessions: asking a peer for what this node lacks (pulled, retries) and
// serving what a peer lacks, in parts, own versions still in memory first
// (docs/design/coverage.md).
#include "node_impl.hpp"

namespace peerlite::peer {

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
        if (now - pull.reported > kPullReportEvery) {
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
    // presumed lost starts afresh: one never answered after kPullUnanswered (typically a
    // request that reached a peer not yet connected back to us), or one silent for
    // kPullStalled after parts had been arriving.
    auto now = monotonic_now();
    if (auto it = pulling.find(peer);
        it != pulling.end() &&
        now - it->second.last < (it->second.answered ? kPullStalled : kPullUnanswered)) {
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
        if (now - it->second > kPendingFor || hello(it->first)) {
            it = hello_pending.erase(it);
        } else {
            ++it;
        }
    }
    for (auto it = pull_pending.begin(); it != pull_pending.end();) {
        auto [peer, since] = *it++; // sync_with may erase it
        if (now - since > kPendingFor) {
            pull_pending.erase(peer); // not a handshake: anti-entropy takes over
        } else {
            sync_with(peer);
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

// Bytes a part's rows may take: what a message may carry, less the envelope (the claim
// and our version vector travel with every sync part) and a margin for framing.
std::size_t Node::Impl::part_budget(const crdt::VersionVector& claim) {
    auto envelope = transport::encode(
        Message{self, id_salt,
                transport::SyncResponse{0, wire::ChangeSet{{}, claim, false}, store->versions()}});
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

} // namespace peerlite::peer
