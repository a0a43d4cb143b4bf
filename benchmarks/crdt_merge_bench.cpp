// Merge decisions per second for the last-writer-wins register and the counter, beside a
// baseline of bare 64-bit comparisons over the same data in the same run, so the figure
// reads as a ratio on a noisy machine.
//
// Usage: crdt_merge_bench [decisions]   (default 5,000,000)
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include <peerlite/crdt/merge.hpp>

using namespace peerlite::crdt;
using Clock = std::chrono::steady_clock;

namespace {

NodeId node(std::uint8_t n) {
    NodeId::Bytes b{};
    b[0] = n;
    return NodeId::from_bytes(b);
}

template <class F>
double per_second(std::size_t n, F&& body) {
    auto start = Clock::now();
    body();
    std::chrono::duration<double> took = Clock::now() - start;
    return static_cast<double>(n) / took.count();
}

volatile std::uint64_t sink; // keeps the loops from being optimized away

} // namespace

int main(int argc, char** argv) {
    std::size_t n = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 5'000'000;
    std::mt19937_64 rng(1);
    std::vector<CellWrite> cells;
    std::vector<CounterWrite> counters;
    std::vector<std::uint64_t> raw;
    const std::size_t pool = 4096;
    for (std::size_t i = 0; i < pool; ++i) {
        // Clocks collide often, so the node-id tie-break is part of the cost.
        auto hlc = Hlc::from_parts(1'700'000'000'000 + rng() % 8, rng() % 4);
        auto who = node(static_cast<std::uint8_t>(rng() % 5));
        cells.push_back(CellWrite{CausalLength(1), Stamp{hlc, who},
                                  Value::integer(static_cast<std::int64_t>(rng() % 100)), Hlc()});
        counters.push_back(
            CounterWrite{CausalLength(1), Stamp{hlc, who}, static_cast<std::int64_t>(rng() % 100)});
        raw.push_back(hlc.raw());
    }

    std::uint64_t wins = 0;
    auto baseline = per_second(n, [&] {
        for (std::size_t i = 0; i < n; ++i) {
            wins += raw[i % pool] < raw[(i * 7 + 1) % pool];
        }
    });
    auto lww = per_second(n, [&] {
        for (std::size_t i = 0; i < n; ++i) {
            wins += decide_cell(MergeRule::last_writer_wins, cells[i % pool],
                                cells[(i * 7 + 1) % pool]) == Winner::incoming;
        }
    });
    auto max = per_second(n, [&] {
        for (std::size_t i = 0; i < n; ++i) {
            wins += decide_cell(MergeRule::max_wins, cells[i % pool], cells[(i * 7 + 1) % pool]) ==
                    Winner::incoming;
        }
    });
    auto counter = per_second(n, [&] {
        for (std::size_t i = 0; i < n; ++i) {
            wins += decide_counter(counters[i % pool], counters[(i * 7 + 1) % pool]) ==
                    Winner::incoming;
        }
    });
    sink = wins;

    std::printf("crdt merge decisions, %zu each (higher is better)\n", n);
    std::printf("%-34s %14s %10s\n", "workload", "decisions/s", "vs base");
    auto row = [&](const char* name, double rate) {
        std::printf("%-34s %14.0f %9.3fx\n", name, rate, rate / baseline);
    };
    row("baseline: bare uint64 compare", baseline);
    row("last-writer-wins register", lww);
    row("max-wins register", max);
    row("counter contribution", counter);
    return 0;
}
