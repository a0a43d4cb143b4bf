// peerlited-testing: the shipped daemon's program (peer/daemon.hpp) with the fault suite's
// seams (test_seams.hpp): a skewed wall clock and a partition file. Built with the tests,
// never installed.
#include "daemon.hpp"
#include "test_seams.hpp"

using namespace peerlite;

int main(int argc, char** argv) {
    peer::DaemonHooks hooks;
    hooks.before_start = [](peer::NodeOptions& options) {
        return peer::test_seams::apply_clock_offset(options.store);
    };
    if (auto block_file = peer::test_seams::BlockFile::from_env()) {
        hooks.interval = peer::test_seams::kBlockFileInterval;
        hooks.while_running = [file = std::move(*block_file)](
                                  const std::vector<std::unique_ptr<peer::Node>>& nodes) mutable {
            file.apply(nodes);
        };
    }
    return peer::daemon_main(argc, argv, hooks);
}
