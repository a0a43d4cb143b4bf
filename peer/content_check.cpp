// Content digests, compared once version vectors agree, and the repairs a difference
// starts (docs/design/digests.md).
#include "node_impl.hpp"

namespace peerlite::peer {

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
    auto now = monotonic_now();
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

} // namespace peerlite::peer
