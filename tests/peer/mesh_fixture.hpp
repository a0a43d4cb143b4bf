// A mesh of real nodes in this process: real SQLite files, real ZeroMQ sockets on
// 127.0.0.1 with ephemeral ports and CURVE keys, writes through plain connections.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <peerlite/peer/node.hpp>

#include "../store/store_fixture.hpp"

namespace peerlite::testing {

inline const char* kMeshTable =
    "CREATE TABLE items(id TEXT PRIMARY KEY NOT NULL, name TEXT, qty INTEGER)";

class Mesh {
public:
    // Starts `n` nodes; node 0 is every other node's seed.
    explicit Mesh(int n, std::function<void(peer::NodeOptions&)> tweak = {});
    ~Mesh();

    int size() const { return static_cast<int>(paths_.size()); }
    peer::Node& node(int i) { return *nodes_[static_cast<std::size_t>(i)]; }
    PlainDb& db(int i) { return *dbs_[static_cast<std::size_t>(i)]; }
    const std::string& path(int i) const { return paths_[static_cast<std::size_t>(i)]; }

    void stop(int i);
    void restart(int i);
    // Blocks all traffic between the two groups (both directions), or lifts it.
    void partition(const std::vector<int>& a, const std::vector<int>& b, bool blocked);

    // Polls until every running node has the same items table and version vector, or
    // `timeout` passes. Returns whether it converged.
    bool converged(std::chrono::milliseconds timeout = std::chrono::seconds(20));
    // Polls until every running node knows every other.
    bool full_membership(std::chrono::milliseconds timeout = std::chrono::seconds(10));
    // Polls until `check` holds.
    static bool eventually(const std::function<bool()>& check, std::chrono::milliseconds timeout);

    peer::NodeOptions options(int i);

private:
    ScratchDir dir_;
    std::vector<std::string> paths_;
    std::vector<std::unique_ptr<PlainDb>> dbs_;
    std::vector<std::unique_ptr<peer::Node>> nodes_;
    std::vector<transport::CurveKeys> keys_;
    std::function<void(peer::NodeOptions&)> tweak_;
    std::string seed_endpoint_, seed_key_;
};

} // namespace peerlite::testing
