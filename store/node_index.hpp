// The database's list of node ids, each given a small local integer so metadata rows
// store one or two bytes instead of sixteen. Internal to the store.
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include <sqlite3.h>

#include <peerlite/crdt/node_id.hpp>
#include <peerlite/status.hpp>

#include "../sql/sqlite.hpp"

namespace peerlite::store {

class NodeIndex {
public:
    // Loads _peerlite_nodes.
    Status load(sqlite3* db);
    // The index of `id`, adding it (inside the caller's transaction) if new.
    Result<std::uint64_t> index_of(const crdt::NodeId& id);
    // The id at `index`; fails with Code::corruption for an index never assigned.
    Result<crdt::NodeId> id_at(std::uint64_t index) const;
    // Forgets ids added since the last commit (after a rollback).
    void rollback_to(std::size_t size);
    std::size_t size() const { return ids_.size(); }

private:
    sql::Stmt insert_;
    std::vector<crdt::NodeId> ids_; // index i+1 -> ids_[i]
    std::map<crdt::NodeId, std::uint64_t> index_;
};

} // namespace peerlite::store
