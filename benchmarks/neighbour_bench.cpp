// How often an application beside peerlited meets SQLITE_BUSY ("database is locked") because
// of it, with real peerlited processes on loopback (CURVE on). The application runs
// read-then-write transactions through a plain connection, as ORMs do (a deferred BEGIN,
// a SELECT, an UPDATE, COMMIT; busy timeout 5 s, as docs/operating.md advises), and counts
// the transactions SQLite refuses. In WAL mode a deferred transaction that read before
// another connection committed cannot upgrade to a write: SQLite refuses it at once
// (SQLITE_BUSY_SNAPSHOT), whatever the busy timeout.
//
// Two workloads, each beside its baseline from the same run:
//   1. local writes only: the app alone on a file a daemon serves (its peer receives the
//      writes); baseline: the same app alone on a file nothing else writes (always 0).
//   2. remote rows arriving: a second node writes ~500 rows/s that the daemons bring into
//      the app's file; baseline: the same app beside a second plain process (a thread with
//      its own connection) writing the same rows into the app's file itself.
// Each again with the app beginning its transactions IMMEDIATE (rows 1i, 2i). Reports
// refused transactions per 10,000 and the app's transaction rate.
//
// Usage: neighbour_bench [--transactions N]   (default 10000)
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include <CLI/CLI.hpp>

#include "bench_daemons.hpp"

using namespace peerlite::bench;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

const char* kTable = "CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT, qty INTEGER)";
constexpr int kAppRows = 1000;         // the rows the app reads and updates
constexpr int kRemoteRowsPerTick = 10; // one transaction of the other writer every 20 ms
constexpr auto kRemoteTick = 20ms;     // ... about 500 rows/s

struct AppRun {
    int transactions = 0;
    int refused = 0; // SQLITE_BUSY at any step
    double seconds = 0;
    std::vector<double> took_ms; // each transaction, busy-handler waits included
    double longest_ms() const {
        return took_ms.empty() ? 0 : *std::max_element(took_ms.begin(), took_ms.end());
    }
    double p99_ms() const {
        if (took_ms.empty()) {
            return 0;
        }
        auto sorted = took_ms;
        auto at = sorted.begin() + static_cast<std::ptrdiff_t>(sorted.size() * 99 / 100);
        std::nth_element(sorted.begin(), at, sorted.end());
        return *at;
    }
    double per_10k() const { return transactions ? 10000.0 * refused / transactions : 0; }
    double rate() const { return seconds > 0 ? transactions / seconds : 0; }
};

// One prepared statement, run to completion; the SQLite result code.
int step_once(sqlite3* db, const char* sql, int bind = -1, std::int64_t* out = nullptr) {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr);
    if (rc != SQLITE_OK) {
        return rc;
    }
    if (bind >= 0) {
        sqlite3_bind_int(stmt, 1, bind);
    }
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW && out) {
        *out = sqlite3_column_int64(stmt, 0);
    }
    sqlite3_finalize(stmt);
    return rc == SQLITE_ROW ? SQLITE_DONE : rc;
}

// `n` read-then-write transactions on `path`, each: BEGIN; SELECT qty; UPDATE qty + 1; COMMIT.
// `begin` is "BEGIN" (deferred, what most ORMs issue) or "BEGIN IMMEDIATE" (the advice of
// docs/beside-your-app.md).
AppRun run_app(const std::string& path, int n, const char* begin = "BEGIN") {
    auto* db = open_plain(path);
    AppRun run;
    auto start = Clock::now();
    for (int i = 0; i < n; ++i) {
        int id = 1 + (i * 7919) % kAppRows;
        std::int64_t qty = 0;
        auto began = Clock::now();
        bool ok =
            step_once(db, begin) == SQLITE_DONE &&
            step_once(db, "SELECT qty FROM items WHERE id = ?1", id, &qty) == SQLITE_DONE &&
            step_once(
                db,
                ("UPDATE items SET qty = " + std::to_string(qty + 1) + " WHERE id = ?1").c_str(),
                id) == SQLITE_DONE &&
            step_once(db, "COMMIT") == SQLITE_DONE;
        if (!ok) {
            int code = sqlite3_errcode(db);
            if ((code & 0xff) != SQLITE_BUSY) {
                fail(std::string("app transaction: ") + sqlite3_errmsg(db));
            }
            ++run.refused;
            sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
        }
        ++run.transactions;
        run.took_ms.push_back(seconds_since(began) * 1000);
    }
    run.seconds = seconds_since(start);
    sqlite3_close(db);
    return run;
}

// Writes kRemoteRowsPerTick rows every kRemoteTick into `path` until `stop`.
void write_remote_rows(const std::string& path, std::atomic<bool>& stop, int& written) {
    auto* db = open_plain(path);
    auto start = Clock::now();
    for (int tick = 0; !stop; ++tick) {
        std::string sql = "BEGIN;";
        for (int i = 0; i < kRemoteRowsPerTick; ++i) {
            sql += "INSERT INTO items(id, name, qty) VALUES (" +
                   std::to_string(100000 + written++) + ", 'remote', 0);";
        }
        sql += "COMMIT;";
        if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) {
            fail(std::string("remote writer: ") + sqlite3_errmsg(db));
        }
        std::this_thread::sleep_until(start + (tick + 1) * kRemoteTick);
    }
    sqlite3_close(db);
}

void make_file(const std::string& path) {
    auto* db = open_plain(path);
    exec(db, kTable);
    std::string sql = "BEGIN;";
    for (int i = 1; i <= kAppRows; ++i) {
        sql += "INSERT INTO items VALUES (" + std::to_string(i) + ", 'row', 0);";
    }
    exec(db, sql + "COMMIT;");
    sqlite3_close(db);
}

// Runs the app on `app_path` while `other_path` (the peer's file, or the app's file itself
// for the baseline) gets ~500 rows/s from another connection.
AppRun with_rows_arriving(const std::string& app_path, const std::string& other_path, int n,
                          int& written, const char* begin = "BEGIN") {
    std::atomic<bool> stop{false};
    std::thread writer(write_remote_rows, other_path, std::ref(stop), std::ref(written));
    std::this_thread::sleep_for(200ms); // rows flowing before the app starts
    auto run = run_app(app_path, n, begin);
    stop = true;
    writer.join();
    return run;
}

// The longest the app waits for the write lock while the daemon writes `rows` picked-up
// rows into the file: the app writes them in one burst (new keys, 100 a transaction), then
// writes one row every millisecond (BEGIN IMMEDIATE, so it waits rather than fails) while
// the daemon, seeing the app all but idle, writes what it picked up. Milliseconds.
double longest_wait_for_write(const std::string& path, int rows) {
    auto* db = open_plain(path);
    for (int at = 0; at < rows; at += 100) {
        std::string sql = "BEGIN;";
        for (int i = at; i < std::min(rows, at + 100); ++i) {
            sql += "INSERT INTO items VALUES (" + std::to_string(1'000'000 + i) + ", 'burst', 0);";
        }
        exec(db, sql + "COMMIT;");
    }
    double longest = 0;
    auto start = Clock::now();
    while (seconds_since(start) < 3) {
        auto began = Clock::now();
        exec(db, "BEGIN IMMEDIATE; UPDATE items SET qty = qty + 1 WHERE id = 1; COMMIT;");
        longest = std::max(longest, seconds_since(began) * 1000);
        std::this_thread::sleep_for(1ms);
    }
    sqlite3_close(db);
    return longest;
}

void print_row(const char* what, const AppRun& plain, const AppRun& synced) {
    std::printf("  %-44s %9.1f %9.1f %12.0f %12.0f %7.2fx\n", what, plain.per_10k(),
                synced.per_10k(), plain.rate(), synced.rate(),
                plain.rate() > 0 ? synced.rate() / plain.rate() : 0);
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"neighbour_bench: 'database is locked' for an app beside peerlited"};
    int n = 10000;
    app.add_option("--transactions", n, "read-then-write transactions per measurement")
        ->check(CLI::PositiveNumber);
    int flush_rows = 10'000;
    app.add_option("--flush-rows", flush_rows,
                   "rows written in a burst for the longest-write measurement (the default "
                   "max_picked_up_rows)")
        ->check(CLI::PositiveNumber);
    std::string limits;
    app.add_option("--limits", limits,
                   "lines for both daemons' [limits] block, to compare settings, e.g. "
                   "'apply_delay_ms = 0' (docs/config.md)");
    CLI11_PARSE(app, argc, argv);

    auto dir = (std::filesystem::temp_directory_path() /
                ("peerlite-neighbour-" + std::to_string(getpid())))
                   .string();
    std::filesystem::create_directories(dir);
    std::printf("peerlite neighbour benchmark: %d read-then-write transactions per measurement, "
                "busy timeout 5 s, two peerlited processes on loopback\n",
                n);
    for (const char* name : {"a.db", "b.db", "plain.db"}) {
        make_file(dir + "/" + name);
    }
    auto key_a = make_key(dir, "a"), key_b = make_key(dir, "b");
    auto config_a = daemon_config("a", {key_a, key_b}, "a.db");
    config_a.extra = limits.empty() ? "" : "[limits]\n" + limits + "\n";
    Daemon a(write_config(dir, config_a), dir + "/a.log");
    a.wait_ready(60s);
    auto config_b = daemon_config("b", {key_a, key_b}, "b.db", {{a.endpoint(), key_a}});
    config_b.extra = config_a.extra;
    Daemon b(write_config(dir, config_b), dir + "/b.log");
    b.wait_ready(60s);

    std::printf("  [1/2] local writes only\n");
    std::fflush(stdout);
    auto alone = run_app(dir + "/plain.db", n);
    auto local = run_app(dir + "/a.db", n);
    auto alone_immediate = run_app(dir + "/plain.db", n, "BEGIN IMMEDIATE");
    auto local_immediate = run_app(dir + "/a.db", n, "BEGIN IMMEDIATE");
    std::printf("  [2/2] with about %d rows/s arriving\n",
                static_cast<int>(kRemoteRowsPerTick * 1000 / kRemoteTick.count()));
    std::fflush(stdout);
    int plain_written = 0, remote_written = 0;
    auto beside_writer = with_rows_arriving(dir + "/plain.db", dir + "/plain.db", n, plain_written);
    auto beside_daemon = with_rows_arriving(dir + "/a.db", dir + "/b.db", n, remote_written);
    auto beside_writer_immediate = with_rows_arriving(dir + "/plain.db", dir + "/plain.db", n,
                                                      plain_written, "BEGIN IMMEDIATE");
    auto beside_daemon_immediate =
        with_rows_arriving(dir + "/a.db", dir + "/b.db", n, remote_written, "BEGIN IMMEDIATE");
    std::printf("  [3] the daemon's longest write: %d picked-up rows\n", flush_rows);
    std::fflush(stdout);
    auto flush_wait = longest_wait_for_write(dir + "/a.db", flush_rows);
    // Everything b wrote must have reached a: a measurement with rows stuck is no measurement.
    auto* check = open_plain(dir + "/a.db");
    auto start = Clock::now();
    while (scalar(check, "SELECT count(*) FROM items WHERE id >= 100000 AND id < 1000000") <
               remote_written &&
           seconds_since(start) < 60) {
        std::this_thread::sleep_for(50ms);
    }
    bool arrived =
        scalar(check, "SELECT count(*) FROM items WHERE id >= 100000 AND id < 1000000") ==
        remote_written;
    sqlite3_close(check);
    int exit_a = a.stop(), exit_b = b.stop();

    std::printf("\nrefused app transactions (SQLITE_BUSY) per 10,000, and app transactions/s\n");
    std::printf("  %-44s %9s %9s %12s %12s %8s\n", "workload", "baseline", "peerlite", "baseline/s",
                "peerlite/s", "ratio");
    print_row("1. local writes only", alone, local);
    print_row("2. ~500 rows/s arriving (baseline: 2nd writer)", beside_writer, beside_daemon);
    print_row("1i. as 1, the app using BEGIN IMMEDIATE", alone_immediate, local_immediate);
    print_row("2i. as 2, the app using BEGIN IMMEDIATE", beside_writer_immediate,
              beside_daemon_immediate);
    std::printf("\nlongest and 99th-percentile app transaction, ms (waits for the write lock "
                "included): baseline / peerlite\n");
    const std::pair<const char*, std::pair<const AppRun*, const AppRun*>> runs[] = {
        {"1. local writes only", {&alone, &local}},
        {"2. ~500 rows/s arriving", {&beside_writer, &beside_daemon}},
        {"1i. as 1, BEGIN IMMEDIATE", {&alone_immediate, &local_immediate}},
        {"2i. as 2, BEGIN IMMEDIATE", {&beside_writer_immediate, &beside_daemon_immediate}}};
    for (const auto& [what, pair] : runs) {
        std::printf("  %-44s longest %7.1f / %7.1f   p99 %6.2f / %6.2f\n", what,
                    pair.first->longest_ms(), pair.second->longest_ms(), pair.first->p99_ms(),
                    pair.second->p99_ms());
    }
    std::printf("\nthe app's longest wait while the daemon wrote %d picked-up rows in one "
                "transaction: %.1f ms\n",
                flush_rows, flush_wait);
    std::printf("  remote rows written %d (peerlite run), all arrived: %s; daemon exits %d / %d\n",
                remote_written, arrived ? "yes" : "NO", exit_a, exit_b);
    std::filesystem::remove_all(dir);
    return arrived && exit_a == 0 && exit_b == 0 ? 0 : 1;
}
