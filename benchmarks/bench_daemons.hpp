// Real peerlited processes for benchmark programs: keys, TOML configs, starting and
// stopping daemons, reading the endpoint from their "ready:" log line, and their memory
// from /proc. Benchmarks exit on a setup failure (with the reason): a figure measured
// with half a mesh would be wrong, not slow.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <sys/types.h>
#include <utility>
#include <vector>

#include <sqlite3.h>

namespace peerlite::bench {

// The peerlited binary: $PEERLITED if set, else the one meson built beside the benchmarks.
std::string peerlited_binary();

// Prints `what` and exits with status 1.
[[noreturn]] void fail(const std::string& what);

// Runs SQL on a plain connection, exiting on error.
void exec(sqlite3* db, const std::string& sql);
std::int64_t scalar(sqlite3* db, const std::string& sql);
sqlite3* open_plain(const std::string& path); // WAL, synchronous=NORMAL, busy timeout 5 s

// `peerlited --keygen <dir>/<name>`: returns the public key; the secret is <name>.key.
std::string make_key(const std::string& dir, const std::string& name);

struct DaemonConfig {
    std::string name; // also the key file <name>.key and the config <name>.toml
    std::vector<std::string> trusted_keys;
    std::string database;                                   // relative to dir
    std::vector<std::pair<std::string, std::string>> seeds; // endpoint, public key
    std::string tables = "[[database.table]]\nname = \"items\"\n";
    std::string extra;  // more blocks ([limits], [log], ...)
    bool admin = false; // the admin endpoint as <dir>/<name>.admin.sock (see admin_endpoint)
};
DaemonConfig daemon_config(std::string name, std::vector<std::string> trusted_keys,
                           std::string database,
                           std::vector<std::pair<std::string, std::string>> seeds = {});
// Where a daemon written with `admin = true` answers peerlite status queries.
std::string admin_endpoint(const std::string& dir, const std::string& name);
// Writes <dir>/<name>.toml; returns its path.
std::string write_config(const std::string& dir, const DaemonConfig& config);

struct Memory {
    std::uint64_t rss_kib = 0;  // VmRSS: resident now
    std::uint64_t peak_kib = 0; // VmHWM: the most ever resident
};
// From /proc/<pid>/status; zeros if the process is gone.
Memory memory_of(pid_t pid);

class Daemon {
public:
    // Starts `peerlited --config config` with its output appended to `log`.
    Daemon(std::string config, std::string log);
    ~Daemon(); // SIGKILL if still running
    Daemon(const Daemon&) = delete;
    Daemon& operator=(const Daemon&) = delete;

    // Waits for the "ready:" line; exits the benchmark (with the log) if it does not come.
    void wait_ready(std::chrono::milliseconds timeout);
    // The listen endpoint from the "ready:" line (after wait_ready).
    std::string endpoint() const;
    // SIGTERM and wait; the exit status.
    int stop();
    pid_t pid() const { return pid_; }
    Memory memory() const { return memory_of(pid_); }
    std::string log() const;

private:
    std::string config_, log_;
    pid_t pid_ = -1;
};

double mib(std::uint64_t kib);
double seconds_since(std::chrono::steady_clock::time_point start);

} // namespace peerlite::bench
