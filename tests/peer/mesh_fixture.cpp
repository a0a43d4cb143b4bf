#include "mesh_fixture.hpp"

#include <thread>

#include <catch2/catch.hpp>

#include "node_testing.hpp"

namespace peerlite::testing {

Mesh::Mesh(int n, std::function<void(peer::NodeOptions&)> tweak) : tweak_(std::move(tweak)) {
    for (int i = 0; i < n; ++i) {
        paths_.push_back(dir_.file("node" + std::to_string(i) + ".db"));
        dbs_.push_back(std::make_unique<PlainDb>(paths_.back()));
        dbs_.back()->exec(kMeshTable);
        auto keys = transport::generate_keys();
        REQUIRE(keys.ok());
        keys_.push_back(*keys);
    }
    nodes_.resize(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) {
        restart(i);
        if (i == 0) {
            seed_endpoint_ = nodes_[0]->endpoint();
            seed_key_ = keys_[0].public_key;
        }
    }
}

Mesh::~Mesh() {
    for (auto& n : nodes_) {
        n.reset();
    }
}

peer::NodeOptions Mesh::options(int i) {
    peer::NodeOptions o;
    o.database = paths_[static_cast<std::size_t>(i)];
    o.tables = {{"items", {{"qty", crdt::MergeRule::counter}}}};
    o.transport.keys = keys_[static_cast<std::size_t>(i)];
    for (const auto& k : keys_) {
        o.transport.trusted.insert(k.public_key);
    }
    if (i != 0 && !seed_endpoint_.empty()) {
        o.seeds.push_back({seed_endpoint_, seed_key_});
    }
    o.anti_entropy_interval = std::chrono::milliseconds(300);
    o.probe_interval = std::chrono::milliseconds(100);
    o.probe_timeout = std::chrono::milliseconds(200);
    o.gossip_interval = std::chrono::milliseconds(200);
    o.membership.suspect_after = std::chrono::milliseconds(1000);
    o.membership.dead_after = std::chrono::milliseconds(3000);
    if (tweak_) {
        tweak_(o);
    }
    return o;
}

void Mesh::stop(int i) {
    nodes_[static_cast<std::size_t>(i)].reset();
}

void Mesh::restart(int i) {
    auto node = peer::Node::start(options(i));
    INFO(node.status().to_string());
    REQUIRE(node.ok());
    nodes_[static_cast<std::size_t>(i)] = std::move(node).value();
}

void Mesh::partition(const std::vector<int>& a, const std::vector<int>& b, bool blocked) {
    for (int x : a) {
        for (int y : b) {
            peer::NodeTesting::block(node(x), node(y).id(), blocked);
            peer::NodeTesting::block(node(y), node(x).id(), blocked);
        }
    }
}

bool Mesh::eventually(const std::function<bool()>& check, std::chrono::milliseconds timeout) {
    auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
        if (check()) {
            return true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return check();
}

bool Mesh::full_membership(std::chrono::milliseconds timeout) {
    return eventually(
        [&] {
            for (int i = 0; i < size(); ++i) {
                if (nodes_[static_cast<std::size_t>(i)] &&
                    node(i).peers().size() != static_cast<std::size_t>(size() - 1)) {
                    return false;
                }
            }
            return true;
        },
        timeout);
}

bool Mesh::converged(std::chrono::milliseconds timeout) {
    return eventually(
        [&] {
            std::vector<std::string> first;
            crdt::VersionVector first_versions;
            bool have_first = false;
            for (int i = 0; i < size(); ++i) {
                if (!nodes_[static_cast<std::size_t>(i)]) {
                    continue;
                }
                auto rows = db(i).rows("SELECT * FROM items ORDER BY id");
                std::string joined;
                for (const auto& r : rows) {
                    joined += r + "\n";
                }
                auto versions = node(i).versions();
                if (!have_first) {
                    first = {joined};
                    first_versions = versions;
                    have_first = true;
                } else if (joined != first.front() || !(versions == first_versions)) {
                    return false;
                }
            }
            return true;
        },
        timeout);
}

} // namespace peerlite::testing
