// Failure detection: a direct ping per probe interval, indirect pings through two
// other members when it goes unanswered (SWIM-style; membership.hpp keeps the states).
#include "node_impl.hpp"

namespace peerlite::peer {

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
        if (now - p.sent > kProbeLifetimeTimeouts * options.probe_timeout) {
            it = probes.erase(it);
        } else {
            ++it;
        }
    }
}

void Node::Impl::on_ping(const crdt::NodeId& from, const transport::Ping& ping) {
    if (ping.target == self) {
        send(from, transport::Ack{ping.seq, self, membership->self().incarnation});
    } else if (membership->find(ping.target) != nullptr) {
        // Probing `target` for someone whose own pings went unanswered. A relay whose
        // target never answers is forgotten when the table is full (its requester just sees
        // no ack): a peer's pings cannot grow it.
        if (relays.size() >= kMaxRelays) {
            relays.erase(relays.begin());
        }
        relays[{ping.seq, ping.target}] = ping.on_behalf_of.is_nil() ? from : ping.on_behalf_of;
        send(ping.target, transport::Ping{ping.seq, from, ping.target});
    }
}

void Node::Impl::on_ack(const transport::Ack& ack, Clock::time_point now) {
    membership->heard_from(ack.target, now);
    if (auto it = relays.find({ack.seq, ack.target}); it != relays.end()) {
        send(it->second, ack);
        relays.erase(it);
    }
    probes.erase(ack.seq);
}

} // namespace peerlite::peer
