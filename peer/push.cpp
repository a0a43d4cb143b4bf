// Fresh changes out (push, epidemic or direct) and in (apply), and pushes held while
// the app beside the node is committing (issue 21).
#include "node_impl.hpp"

namespace peerlite::peer {

void Node::Impl::on_push(const crdt::NodeId& from, const transport::Push& push,
                         Clock::time_point now) {
    if (push.changes.complete && hold_pushes(now)) {
        auto [held, fresh] = held_pushes.try_emplace(from);
        if (fresh) {
            held->second.since = now;
        }
        auto& changes = held->second.changes;
        changes.rows.insert(changes.rows.end(), push.changes.rows.begin(), push.changes.rows.end());
        changes.covers.merge(push.changes.covers);
        held->second.forward |= push.forward;
        if (changes.rows.size() >= options.store.apply_batch_rows) {
            apply_held_pushes(now, true);
        }
        return;
    }
    Status failure;
    if (!apply(from, push.changes, push.forward, &failure)) {
        retry_later(from, failure.to_string(), now);
    }
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

} // namespace peerlite::peer
