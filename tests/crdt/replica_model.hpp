// An in-memory replica built only from crdt/'s decisions: rows of cells with per-column
// rules, a clock and a version vector. It is the reference the SQLite store must agree
// with, and what the convergence property tests run thousands of histories on.
#pragma once

#include <map>
#include <optional>
#include <vector>

#include <peerlite/crdt/merge.hpp>
#include <peerlite/crdt/version_vector.hpp>

namespace peerlite::crdt::testing {

// One change as it travels between replicas: a row life, a cell write or a counter
// contribution, addressed by row and column number.
struct ModelChange {
    enum class Kind { row, cell, counter } kind = Kind::cell;
    int row = 0;
    int column = 0; // unused for Kind::row
    RowWrite row_write;
    CellWrite cell_write;
    CounterWrite counter_write;

    Stamp version() const;
    std::string to_string() const; // for test failure messages
};

// What an application sees: for each existing row, each column's visible value.
using ModelView = std::map<int, std::vector<Value>>;

class ModelReplica {
public:
    ModelReplica(NodeId id, std::vector<MergeRule> rules, WallClock wall);
    // A copy with its own clock, restored to this one's state.
    ModelReplica(const ModelReplica& other);

    const NodeId& id() const { return id_; }

    // Local writes. Each returns the changes it made (already applied here), or nothing
    // when the write does not apply (update or delete of a missing row, insert of an
    // existing one).
    std::vector<ModelChange> insert(int row, const std::vector<Value>& values);
    std::vector<ModelChange> update(int row, int column, const Value& value);
    std::vector<ModelChange> increment(int row, int column, std::int64_t delta);
    std::vector<ModelChange> remove(int row);

    // Merges one received change; false if its clock was refused (drift).
    bool apply(const ModelChange& change);

    // The changes this replica still holds: the winning write of every row, cell and
    // counter contribution. Superseded writes are gone, as in the store.
    std::vector<ModelChange> held() const;
    const VersionVector& seen() const { return seen_; }
    // Anti-entropy: everything `to` lacks according to its vector, then the coverage claim.
    void sync_to(ModelReplica& to) const;

    ModelView view() const;
    // Every winner, for comparing full metadata state between replicas.
    std::vector<ModelChange> state() const { return held(); }
    // The greatest clock this replica has issued or merged.
    Hlc latest() const { return latest_; }

private:
    struct Row {
        RowWrite life;
        std::map<int, CellWrite> cells;
        std::map<int, std::map<NodeId, CounterWrite>> counters;
    };

    Stamp stamp();
    ModelChange local_cell(int row, int column, const Value& value, CausalLength life);
    ModelChange local_counter(int row, int column, std::int64_t total, CausalLength life);
    void merge(const ModelChange& change);

    NodeId id_;
    std::vector<MergeRule> rules_;
    WallClock wall_;
    HlcClock clock_;
    std::map<int, Row> rows_;
    VersionVector seen_;
    Hlc latest_;
};

bool operator==(const ModelChange& a, const ModelChange& b);

} // namespace peerlite::crdt::testing
