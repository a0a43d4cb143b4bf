// Small helpers shared by the crdt tests: readable node ids and clocks.
#pragma once

#include <peerlite/crdt/hlc.hpp>
#include <peerlite/crdt/node_id.hpp>

namespace peerlite::crdt::testing {

// Node n's id ends in byte n, so node(1) < node(2).
inline NodeId node(std::uint8_t n) {
    NodeId::Bytes b{};
    b[15] = n;
    return NodeId::from_bytes(b);
}

inline Hlc at(std::uint64_t ms, std::uint64_t logical = 0) {
    return Hlc::from_parts(ms, logical);
}

} // namespace peerlite::crdt::testing
