// Helpers for the CLI tests: running the real `peerlite` binary (path in $PEERLITE) and
// capturing its output and exit status, following a long-running one line by line, and
// replicas made by real merges with concurrent writes to the same cells.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <sys/types.h>
#include <vector>

#include "../store/store_fixture.hpp"

namespace peerlite::testing {

struct CliRun {
    int status = -1; // exit status, or 128 + signal
    std::string out, err;
};

// Runs `peerlite args...` to completion.
CliRun run_cli(const std::vector<std::string>& args);

// Each line of `text` parsed as JSON.
std::vector<nlohmann::json> json_lines(const std::string& text);
std::vector<std::string> lines(const std::string& text);

// A `peerlite` process left running (changes --follow), stdout read line by line.
class CliProcess {
public:
    explicit CliProcess(const std::vector<std::string>& args);
    ~CliProcess();
    // The next stdout line, or "" after `timeout` (or at end of output).
    std::string next_line(std::chrono::milliseconds timeout = std::chrono::seconds(10));
    // Sends `signal` and waits; returns the exit status (128 + signal if killed by it).
    int stop(int signal);

private:
    pid_t pid_ = -1;
    int fd_ = -1;
    std::string buffer_;
};

// Two replicas, a and b, of
//   items(id TEXT PRIMARY KEY, title TEXT, qty INTEGER counter, best INTEGER max)
//   stock(site TEXT, sku INTEGER, n INTEGER, PRIMARY KEY(site, sku))
// with fixed injected clocks (a at t0, b at t0 + 100 ms; t0 a few seconds before the
// real time), after:
//   a: INSERT ('k1', 'pen', 1, 5), ('k2', 'cup', 0, 0); stock ('north', 42, 7)  -> sync a->b
//   a: title 'from a', qty + 2;  b: title 'from b', qty + 3   (concurrent)
//   b: DELETE k2
// Not synced yet after construction; call converge() for both directions.
struct Replicas {
    ScratchDir dir;
    std::int64_t t0;
    std::string a_path, b_path;
    std::unique_ptr<store::Store> a, b;

    Replicas();
    store::StoreOptions clock_at(std::int64_t offset_ms) const;
    void converge(); // b -> a, then a -> b
};

inline constexpr const char* kItems =
    "CREATE TABLE items(id TEXT PRIMARY KEY NOT NULL, title TEXT, qty INTEGER, best INTEGER)";
inline constexpr const char* kStock = "CREATE TABLE stock(site TEXT NOT NULL, sku INTEGER NOT "
                                      "NULL, n INTEGER, PRIMARY KEY(site, sku))";

// Declares items and stock in `s` with their rules.
void declare_tables(store::Store& s);

} // namespace peerlite::testing
