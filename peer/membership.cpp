#include <algorithm>

#include <peerlite/peer/membership.hpp>

namespace peerlite::peer {

std::string_view state_name(MemberState state) {
    switch (state) {
    case MemberState::alive: return "alive";
    case MemberState::suspect: return "suspect";
    case MemberState::dead: return "dead";
    }
    return "?";
}

Membership::Membership(transport::Member self, MembershipOptions options)
    : self_(std::move(self)), options_(options) {}

bool Membership::learn(const transport::Member& member, Clock::time_point now, Source source) {
    if (member.id == self_.id || member.id.is_nil()) {
        return false;
    }
    auto [it, fresh] = members_.try_emplace(member.id);
    auto& info = it->second;
    if (fresh) {
        info.member = member;
        info.last_heard = now; // give it a full suspicion period before doubting it
        info.learned = now;
        info.heard = source == Source::itself;
        return true;
    }
    info.heard |= source == Source::itself;
    auto& known = info.member;
    if (source == Source::gossip &&
        (member.public_key != known.public_key || member.incarnation <= known.incarnation)) {
        return false;
    }
    bool changed = known.endpoint != member.endpoint || known.public_key != member.public_key;
    known = member;
    return changed;
}

void Membership::heard_from(const crdt::NodeId& id, Clock::time_point now) {
    if (auto it = members_.find(id); it != members_.end()) {
        it->second.last_heard = now; // update() turns it alive and reports the change
        it->second.heard = true;
    }
}

std::vector<crdt::NodeId> Membership::forget_unheard(Clock::time_point now) {
    std::vector<crdt::NodeId> out;
    for (auto it = members_.begin(); it != members_.end();) {
        if (!it->second.heard && now - it->second.learned >= options_.forget_unheard_after) {
            out.push_back(it->first);
            it = members_.erase(it);
        } else {
            ++it;
        }
    }
    return out;
}

std::vector<std::pair<crdt::NodeId, MemberState>> Membership::update(Clock::time_point now) {
    std::vector<std::pair<crdt::NodeId, MemberState>> changes;
    for (auto& [id, info] : members_) {
        auto silent = now - info.last_heard;
        auto state = silent >= options_.dead_after      ? MemberState::dead
                     : silent >= options_.suspect_after ? MemberState::suspect
                                                        : MemberState::alive;
        if (state != info.state) {
            info.state = state;
            changes.emplace_back(id, state);
        }
    }
    return changes;
}

const MemberInfo* Membership::find(const crdt::NodeId& id) const {
    auto it = members_.find(id);
    return it == members_.end() ? nullptr : &it->second;
}

std::vector<MemberInfo> Membership::all() const {
    std::vector<MemberInfo> out;
    for (const auto& [id, info] : members_) {
        out.push_back(info);
    }
    return out;
}

std::vector<crdt::NodeId> Membership::reachable(std::mt19937_64& rng) const {
    std::vector<crdt::NodeId> out;
    for (const auto& [id, info] : members_) {
        if (info.state != MemberState::dead) {
            out.push_back(id);
        }
    }
    std::shuffle(out.begin(), out.end(), rng);
    return out;
}

std::optional<crdt::NodeId> Membership::next_probe() {
    if (members_.empty()) {
        return std::nullopt;
    }
    auto it = members_.upper_bound(last_probed_);
    if (it == members_.end()) {
        it = members_.begin();
    }
    last_probed_ = it->first;
    return it->first;
}

std::vector<transport::Member> Membership::gossip() const {
    std::vector<transport::Member> out{self_};
    for (const auto& [id, info] : members_) {
        if (info.state != MemberState::dead) {
            out.push_back(info.member);
        }
    }
    return out;
}

} // namespace peerlite::peer
