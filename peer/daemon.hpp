// peerlited's program: command line, config, one engine per database, the admin endpoint,
// signals and exit statuses (documented in peerlited.cpp and docs/cli.md). Internal to
// the build, not installed: peer/peerlited.cpp runs it as shipped, and the test build's
// peerlited-testing (tests/peer/peerlited_testing.cpp) runs it with test seams.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <vector>

#include <peerlite/peer/node.hpp>
#include <peerlite/status.hpp>

namespace peerlite::peer {

struct DaemonHooks {
    // Called on each database's options before its engine starts; an error stops the
    // daemon with exit status 2.
    std::function<Status(NodeOptions&)> before_start;
    // Called every `interval` while the daemon runs, with its engines.
    std::function<void(const std::vector<std::unique_ptr<Node>>&)> while_running;
    std::chrono::milliseconds interval{250};
};

// Runs peerlited with `argv`; returns its exit status.
int daemon_main(int argc, char** argv, const DaemonHooks& hooks = {});

} // namespace peerlite::peer
