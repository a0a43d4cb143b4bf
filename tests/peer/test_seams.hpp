// The seams of peerlited-testing, the daemon the fault suite runs (never installed: the
// shipped peerlited has none), off unless their environment variables are set. They let
// tests/peer/fault_test.cpp skew one real daemon's clock and cut the network between real
// processes; with neither set, peerlited-testing behaves exactly as peerlited.
//
//   PEERLITE_TEST_CLOCK_OFFSET_MS=<signed integer>
//       Added to the wall clock every database's hybrid logical clock reads
//       (store::StoreOptions::wall). Read once at start.
//   PEERLITE_TEST_BLOCK_FILE=<path>
//       A file listing node ids, one per line (the 36-character form; blank lines and
//       lines starting with '#' are ignored). All traffic to and from those nodes is
//       dropped (peer::NodeTesting::block), as if the network between them were cut. Re-read
//       every kBlockFileInterval; a missing file blocks nothing.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <peerlite/crdt/node_id.hpp>
#include <peerlite/peer/node.hpp>
#include <peerlite/status.hpp>

namespace peerlite::peer::test_seams {

// Applies PEERLITE_TEST_CLOCK_OFFSET_MS to `options`; invalid_argument if it is set but
// is not an integer. Logs a warning when an offset is applied.
Status apply_clock_offset(store::StoreOptions& options);

inline constexpr std::chrono::milliseconds kBlockFileInterval{100};

// The partition seam: which peers the file named by PEERLITE_TEST_BLOCK_FILE blocks.
class BlockFile {
public:
    // Nothing when the variable is unset.
    static std::optional<BlockFile> from_env();

    // Re-reads the file and blocks or unblocks peers on every node whose entry changed.
    // Malformed lines are logged and skipped. The nodes are borrowed for the call only.
    void apply(const std::vector<std::unique_ptr<Node>>& nodes);

private:
    explicit BlockFile(std::string path) : path_(std::move(path)) {}
    std::string path_;
    std::set<crdt::NodeId> blocked_;
};

} // namespace peerlite::peer::test_seams
