// The compact per-row record: everything peerlite knows about one synced row's clocks,
// stored as one BLOB per row in _peerlite_rows_<table>. Format (docs/metadata-format.md):
//
//   record  := 0x01 life:varint life_hlc:varint life_node:varint
//              ncells:varint cell* ncounters:varint counter*
//   cell    := (column << 1 | has_value):varint life:varint
//              hlc_delta:zigzag node:varint replaced:varint [value]
//   counter := column:varint node:varint life:varint hlc_delta:zigzag total:zigzag
//
// hlc_delta is the clock minus life_hlc (cells of one insert share its clock, so it is
// usually one byte); replaced is 0 for none, else 1 + zigzag(hlc - replaced); node is a
// _peerlite_nodes index. Values are kept only for max/min columns, whose winner cannot
// be recovered from the user table after a losing local write.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <peerlite/crdt/merge.hpp>

#include "node_table.hpp"

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

    CellEntry* cell(int column);
    // Sum of the column's contributions made in the row's current life.
    std::int64_t counter_sum(int column) const;
    // The greatest clock in the record: the index the change reader scans by.
    crdt::Hlc max_clock() const;
};

Result<std::string> encode_record(const RowRecord& record, NodeTable& nodes);
Result<RowRecord> decode_record(std::string_view bytes, const NodeTable& nodes);

} // namespace peerlite::store
