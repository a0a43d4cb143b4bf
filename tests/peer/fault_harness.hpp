// A fault-injection run against real peerlited processes: five daemons on 127.0.0.1 that
// trust each other, a randomized workload written through plain SQLite connections on
// every node (also while a node's daemon is down: the offline case), and faults injected
// meanwhile: SIGKILL and SIGTERM followed by restarts, SIGSTOP/SIGCONT pauses, network
// partitions between groups of nodes and a skewed clock on one node (the last two through
// peerlited-testing's seams, tests/peer/test_seams.hpp) and an app holding the write lock. The
// workload also writes big names (some too big for any message: refused at their origin,
// then made smaller) and rolls a new column out one node at a time. After the faults
// stop, the run waits for convergence and checks every node against the oracle
// (fault_oracle.hpp) and the rolled-out column against the notes written to it.
//
// A seed fixes the schedule: which writes and faults happen in which order and after
// what delays. Process timing is not reproducible, so a replayed seed gives the same
// schedule, not necessarily the same interleaving.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace peerlite::testing::fault {

struct FaultOptions {
    std::uint64_t seed = 0;
    std::chrono::seconds duration{40}; // of workload and faults
    int nodes = 5;
    // Keys written at a time: few, so conflicts are frequent. Every 0.5-2.5 s one of them
    // is retired (written no more, checked at the end) and replaced by a fresh one.
    int keys = 8;
    // Bound on the wait for convergence once every fault is lifted.
    std::chrono::seconds converge_timeout{90};

    // PEERLITE_FAULT_SEED (default: random) and PEERLITE_FAULT_SECONDS (default
    // `duration`) from the environment.
    static FaultOptions from_env(std::chrono::seconds duration);
};

struct FaultReport {
    std::vector<std::string> problems; // empty when the run passed
    std::string summary;               // counts of writes and faults, time to converge
};

// Runs the whole scenario; fails the enclosing test (Catch2 REQUIRE) only on setup
// errors. Everything the checks find is in the report.
FaultReport run_faults(const FaultOptions& options);

} // namespace peerlite::testing::fault
