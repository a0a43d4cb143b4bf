// What tests may do to a running engine and nothing else may: part of the build, never
// installed (include/peerlite/ holds the public API).
#pragma once

#include <peerlite/crdt/node_id.hpp>
#include <peerlite/peer/node.hpp>

namespace peerlite::peer {

struct NodeTesting {
    // A partition: all traffic to and from `peer` is dropped while blocked, as if the
    // network between them were cut (mesh tests; peerlited-testing's block file).
    static void block(Node& node, const crdt::NodeId& peer, bool blocked);
};

} // namespace peerlite::peer
