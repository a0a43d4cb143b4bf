// peerlited as real processes: writing configs and keys, starting, stopping, killing and
// pausing daemons, and reading what they log. Used by tests of multi-process features.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <sys/types.h>
#include <utility>
#include <vector>

#include "../store/store_fixture.hpp"

namespace peerlite::testing {

// The binaries under test, from the environment meson sets (PEERLITED, PEERLITE).
std::string peerlited_binary();
std::string peerlite_binary();
std::string read_file(const std::string& path);

// Runs `binary args` to completion with output to `out`; returns exit status and output.
std::pair<int, std::string> run_binary(const std::string& binary, const std::string& args,
                                       const std::string& out);

// A CURVE keypair written by `peerlited --keygen` to <dir>/<name>.key and .pub.
struct KeyFiles {
    std::string secret_file;
    std::string public_key;
};
KeyFiles make_keys(const ScratchDir& dir, const std::string& name);

// A free TCP port on 127.0.0.1 at the time of the call (bound to port 0, then released):
// for seeds that must keep their address across restarts.
int free_port();

struct DatabaseConfig {
    DatabaseConfig(std::string p) : path(std::move(p)) {} // NOLINT: {"a.db"} reads well
    std::string path;                                     // relative to the config's folder
    std::string listen = "tcp://127.0.0.1:*";
    std::vector<std::pair<std::string, std::string>> seeds; // endpoint, public key
    std::string tables = "[[database.table]]\nname = \"items\"\nrules = { qty = \"counter\" }\n";
};

struct DaemonConfig {
    std::string name;
    std::string secret_key_file;
    std::vector<std::string> trusted_keys;
    std::vector<DatabaseConfig> databases;
    std::string mesh_extra;  // more [mesh] lines
    std::string other_extra; // more blocks ([limits], [log], ...)
};

// Writes <dir>/<name>.toml; returns its path.
std::string write_config(const ScratchDir& dir, const DaemonConfig& config);

class Daemon {
public:
    using Environment = std::vector<std::pair<std::string, std::string>>;

    // Starts `peerlited --config config`, appending its output to `log`, with `env` added
    // to this process's environment.
    Daemon(std::string config, std::string log, Environment env = {});
    ~Daemon(); // SIGKILL if still running
    Daemon(const Daemon&) = delete;
    Daemon& operator=(const Daemon&) = delete;

    // Waits until the daemon logged "ready:" `databases` times since it was (re)started.
    bool ready(int databases = 1, std::chrono::milliseconds timeout = std::chrono::seconds(15));
    // The endpoint of the `index`-th database, read from its "ready:" line.
    std::string endpoint(int index = 0) const;
    // SIGTERM and wait: the exit status (128 + signal if killed by one).
    int stop();
    void kill();   // SIGKILL and wait
    void pause();  // SIGSTOP
    void resume(); // SIGCONT
    void restart();
    // Environment variables added at the next (re)start, replacing the current ones.
    void set_environment(Environment env) { env_ = std::move(env); }
    // Exit status if the daemon ended by itself (and reaps it); nothing while it runs or
    // is paused.
    std::optional<int> exited();
    bool running() const { return pid_ > 0; }
    pid_t pid() const { return pid_; }
    // Exit status of a daemon that stops by itself within `timeout` (-1 if it does not).
    int wait_exit(std::chrono::milliseconds timeout);
    // The log written since the last (re)start.
    std::string log() const;
    const std::string& config() const { return config_; }

private:
    void spawn();
    std::string config_, log_;
    Environment env_;
    std::size_t log_start_ = 0;
    pid_t pid_ = -1;
};

// Nodes a, b, c trusting each other, each with one database <name>.db.
struct Trio {
    ScratchDir dir;
    KeyFiles keys[3] = {make_keys(dir, "a"), make_keys(dir, "b"), make_keys(dir, "c")};

    // <name>.toml for `db`, with every key trusted and anti-entropy every 300 ms; `extra`
    // appended (blocks such as [limits]).
    std::string write(const std::string& name, DatabaseConfig db,
                      const std::string& extra = "") const;
    // <name>.toml for database <name>.db, with `seed` (running node `seed_key`'s
    // daemon) as its seed.
    std::string write_seeded(const std::string& name, const Daemon& seed, int seed_key,
                             const std::string& extra = "") const;
    const std::string& pub(int i) const { return keys[i].public_key; }
};

// `peerlite status --json` of node <name>, through its admin socket.
nlohmann::json status_of(const Trio& t, const std::string& name);

} // namespace peerlite::testing
