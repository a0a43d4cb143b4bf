// The compact per-row record: everything peerlite knows about one synced row's clocks,
// stored as one BLOB per row in _peerlite_rows_<table>, beside `vmax`, the greatest
// clock in the record (an indexed column, so change reading can seek by clock). Clocks in
// the record are stored as distances below vmax. Format (docs/metadata-format.md):
//
//   record  := 0x01 life:varint life_back:varint life_node:varint
//              ncells:varint cell* ncounters:varint counter*
//   cell    := head:varint [life:varint] back:varint [node:varint] replaced:varint [value]
//              head = column << 3 | has_value << 2 | own_life << 1 | own_node
//   counter := column:varint node:varint life:varint back:varint total:zigzag
//
// back = vmax - clock. A cell's life and node are present only when they differ from the
// row's (own_life, own_node set); for the common row written by one insert a cell takes
// four bytes. replaced is 0 for none, else 1 + (clock - replaced). node is a
// _peerlite_nodes index. Values are kept only for max/min columns, whose winner cannot
// be recovered from the user table after a losing local write.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <peerlite/crdt/merge.hpp>
#include <peerlite/wire/change_set.hpp>

#include "node_index.hpp"

namespace peerlite::store {

struct CellEntry {
    int column = 0;
    crdt::CellWrite write;
    bool has_value = false; // write.value is meaningful (max/min columns)
};

struct CounterEntry {
    int column = 0;
    crdt::CounterWrite write;
};

struct RowRecord {
    crdt::RowWrite life;
    std::vector<CellEntry> cells;       // sorted by column
    std::vector<CounterEntry> counters; // sorted by column, then node
    bool stored = false;                // read from the database (else new)
    // Its row_hash() as stored (digest.hpp), taken by Store::Impl::before_change() before
    // the first change: only records that change pay for it. Unset on a stored record
    // that was not changed; save_record() refuses such a one.
    std::optional<std::uint64_t> hash;

    CellEntry* cell(int column);
    // Sum of the column's contributions made in the row's current life.
    std::int64_t counter_sum(int column) const;
    // The greatest clock in the record: the index the change reader scans by.
    crdt::Hlc max_clock() const;
};

// A synced value column as a record refers to it.
struct ColumnRef {
    int index = 0;
    crdt::MergeRule rule = crdt::MergeRule::last_writer_wins;
};
// The record a whole-row change describes (the pick-up journal's form), its columns
// found by name through `column` (nothing: no longer synced, left out), sorted as stored.
RowRecord
record_from_change(const wire::RowChange& change,
                   const std::function<std::optional<ColumnRef>(std::string_view)>& column);

// Encodes relative to record.max_clock(), which the caller stores as vmax.
Result<std::string> encode_record(const RowRecord& record, NodeIndex& nodes);
Result<RowRecord> decode_record(std::string_view bytes, crdt::Hlc vmax, const NodeIndex& nodes);

} // namespace peerlite::store
