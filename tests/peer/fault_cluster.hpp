// The processes of a fault-injection run (fault_harness.hpp): five peerlited daemons on
// fixed loopback ports, their SQLite files and the test seams that fault them, plus the
// plain SQLite handles the harness writes and reads with.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <sqlite3.h>

#include "daemon_fixture.hpp"

namespace peerlite::testing::fault {

inline const char* kTable =
    "CREATE TABLE items(id TEXT PRIMARY KEY NOT NULL, name TEXT, qty INTEGER, "
    "best INTEGER)";
inline const char* kTableConfig =
    "[[database.table]]\nname = \"items\"\nrules = { qty = \"counter\", best = \"max\" }\n";

// A plain connection, as an application would hold one, with a short busy timeout: a
// paused daemon may hold the write lock, and the workload moves on rather than wait.
class Conn {
public:
    // `vfs`: a SQLite VFS name (the node's skewed clock, SkewedClock), or the default.
    explicit Conn(const std::string& path, const char* vfs = nullptr) {
        REQUIRE(sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                                vfs) == SQLITE_OK);
        sqlite3_busy_timeout(db_, 300);
    }
    ~Conn() { sqlite3_close_v2(db_); }
    Conn(const Conn&) = delete;
    Conn& operator=(const Conn&) = delete;
    int exec(const std::string& sql) {
        return sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr);
    }
    std::string error() const { return sqlite3_errmsg(db_); }
    sqlite3* get() const { return db_; }

private:
    sqlite3* db_ = nullptr;
};

// A prepared statement, finalized on scope exit.
class Stmt {
public:
    Stmt(const Conn& c, const char* sql) {
        rc_ = sqlite3_prepare_v2(c.get(), sql, -1, &stmt_, nullptr);
    }
    ~Stmt() { sqlite3_finalize(stmt_); }
    Stmt(const Stmt&) = delete;
    Stmt& operator=(const Stmt&) = delete;
    bool ok() const { return rc_ == SQLITE_OK; }
    Stmt& bind(int i, const std::string& v) {
        sqlite3_bind_text(stmt_, i, v.c_str(), -1, SQLITE_TRANSIENT);
        return *this;
    }
    Stmt& bind(int i, std::int64_t v) {
        sqlite3_bind_int64(stmt_, i, v);
        return *this;
    }
    int step() { return ok() ? sqlite3_step(stmt_) : rc_; }
    std::optional<std::int64_t> integer(int i) const {
        if (sqlite3_column_type(stmt_, i) == SQLITE_NULL) {
            return std::nullopt;
        }
        return sqlite3_column_int64(stmt_, i);
    }
    std::optional<std::string> text(int i) const {
        if (sqlite3_column_type(stmt_, i) == SQLITE_NULL) {
            return std::nullopt;
        }
        return std::string(reinterpret_cast<const char*>(sqlite3_column_text(stmt_, i)));
    }
    // The row's causal length from a `_peerlite_rows_<table>.rec` column:
    // 0x01 life:varint ... (docs/metadata-format.md, "The row record").
    std::optional<std::uint64_t> life(int i) const;

private:
    sqlite3_stmt* stmt_ = nullptr;
    int rc_ = SQLITE_ERROR;
};

// The clock a node's application sees: SQLite's default VFS with its current time moved by
// an offset, registered under its own name. Connections opened with it stamp their
// capture-log entries (julianday('now')) with the skewed time, as an application on a
// machine whose clock is off would. Unregistered on destruction; connections using it
// must be closed first.
class SkewedClock {
public:
    explicit SkewedClock(std::string name);
    ~SkewedClock();
    SkewedClock(const SkewedClock&) = delete;
    SkewedClock& operator=(const SkewedClock&) = delete;

    const char* name() const { return name_.c_str(); }
    void set_offset_ms(std::int64_t offset) { offset_ms_ = offset; }

private:
    static int current_time_int64(sqlite3_vfs* vfs, sqlite3_int64* out);
    static int current_time(sqlite3_vfs* vfs, double* out);

    sqlite3_vfs vfs_{}; // first member: the callbacks find the object from its address
    sqlite3_vfs* base_ = nullptr;
    std::atomic<std::int64_t> offset_ms_{0};
    std::string name_;
};

// The last `lines` lines of a log.
std::string tail(const std::string& log, std::size_t lines);

// The daemons, their files and the seams that fault them.
class Cluster {
public:
    enum class State { running, paused, down };

    // Starts `n` daemons and waits until each is ready.
    explicit Cluster(int n);

    int size() const { return static_cast<int>(names_.size()); }
    Daemon& daemon(int i) { return *daemons_[static_cast<std::size_t>(i)]; }
    // Everything node i's daemons logged, over every restart.
    std::string whole_log(int i) const {
        return read_file(dir_.file(names_[static_cast<std::size_t>(i)] + ".log"));
    }
    State& state(int i) { return states_[static_cast<std::size_t>(i)]; }
    std::string db_path(int i) const {
        return dir_.file(names_[static_cast<std::size_t>(i)] + ".db");
    }
    std::string endpoint(int i) const {
        return "tcp://127.0.0.1:" + std::to_string(ports_[static_cast<std::size_t>(i)]);
    }

    // Node i's clock runs `offset_ms` off: at once for its application's connections
    // (opened with vfs(i)), from its next (re)start for its daemon.
    void set_clock_offset(int i, int offset_ms) {
        daemon(i).set_environment(env(i, offset_ms));
        clocks_[static_cast<std::size_t>(i)]->set_offset_ms(offset_ms);
    }
    const char* vfs(int i) const { return clocks_[static_cast<std::size_t>(i)]->name(); }

    // Cuts all traffic between `side` and the other nodes (both directions), or heals.
    void partition(const std::vector<bool>& side);
    void heal() { partition({}); }

private:
    std::string block_path(int i) const {
        return dir_.file(names_[static_cast<std::size_t>(i)] + ".block");
    }
    Daemon::Environment env(int i, int offset_ms) const;

    ScratchDir dir_;
    std::vector<std::unique_ptr<SkewedClock>> clocks_;
    std::vector<std::string> names_, ids_;
    std::vector<int> ports_;
    std::vector<std::unique_ptr<Daemon>> daemons_;
    std::vector<State> states_;
};

} // namespace peerlite::testing::fault
