// Change sets: what one node sends another, and what Store::apply() merges.
//
// A RowChange carries, for one row of one table, the row's life (always, so a receiver
// never sees cells of a row life it does not know) and any number of cell writes and
// counter contributions, each with its own stamp. A ChangeSet is a list of row changes
// plus the version ranges the sender claims to cover (see crdt/version_vector.hpp): once
// every row of the set is applied, the receiver covers those ranges too.
//
// The binary form (msgpack) is specified in docs/protocol.md; encode/decode here are its
// one implementation. decode() trusts nothing: every length is bounded and every field
// type-checked, and a malformed input yields Code::corruption naming what was wrong.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <peerlite/crdt/merge.hpp>
#include <peerlite/crdt/version_vector.hpp>
#include <peerlite/status.hpp>

namespace peerlite::wire {

struct CellChange {
    std::string column;
    crdt::CellWrite write;
    friend bool operator==(const CellChange&, const CellChange&) = default;
};

struct CounterChange {
    std::string column;
    crdt::CounterWrite write; // write.stamp.node is the contributing node
    friend bool operator==(const CounterChange&, const CounterChange&) = default;
};

struct RowChange {
    std::string table;
    std::vector<crdt::Value> key; // primary key values, in key column order
    crdt::RowWrite life;
    std::vector<CellChange> cells;
    std::vector<CounterChange> counters;
    friend bool operator==(const RowChange&, const RowChange&) = default;

    // Number of column changes (cells plus counter contributions).
    std::size_t column_changes() const { return cells.size() + counters.size(); }
};

struct ChangeSet {
    std::vector<RowChange> rows;
    // The sender's claim (see above). When a large claim is streamed in several change
    // sets, every part carries it with complete = false and the last with complete =
    // true: the receiver records the claim only with a complete set, and meanwhile does
    // not record the claimed versions one by one.
    crdt::VersionVector covers;
    bool complete = true;
    friend bool operator==(const ChangeSet&, const ChangeSet&) = default;
};

// Content digests (docs/design/digests.md): per synced table, kDigestBuckets sums of row
// hashes bucketed by key, maintained with every row record written. Equal version vectors
// and different digests mean some content differs that the vectors cannot show.
inline constexpr std::uint32_t kDigestBuckets = 256;

struct TableDigest {
    std::string table;
    // The table's schema identity (columns and rules): digests of a table compare only
    // between nodes that agree on it.
    std::uint64_t schema = 0;
    std::uint64_t total = 0;            // sum of the buckets, wrapping
    std::vector<std::uint64_t> buckets; // kDigestBuckets entries, or none when not asked for
    friend bool operator==(const TableDigest&, const TableDigest&) = default;
};

// Bounds that decode() enforces; anything larger is refused with Code::limit_exceeded.
struct DecodeLimits {
    std::size_t max_bytes = 64 << 20;       // whole encoded change set
    std::size_t max_rows = 100'000;         // rows in one change set
    std::size_t max_columns = 1'000;        // cells + counters in one row; key values
    std::size_t max_value_bytes = 16 << 20; // one TEXT or BLOB value
    std::size_t max_nodes = 10'000;         // distinct node ids in one change set
};

std::string encode(const ChangeSet& set);
Result<ChangeSet> decode(std::string_view bytes, const DecodeLimits& limits = {});

// An upper bound on what `row` adds to an encoded change set: its own encoding plus an
// entry in the set's node list for each node id it names. Computed without copying values.
std::size_t encoded_size(const RowChange& row);

// One row change alone (used to keep held-back changes).
std::string encode(const RowChange& row);
Result<RowChange> decode_row(std::string_view bytes, const DecodeLimits& limits = {});

} // namespace peerlite::wire
