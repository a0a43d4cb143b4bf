// WAL size under sustained writes, with real peerlited processes on loopback (CURVE on).
// An application writes steadily through a plain connection (20-row transactions of
// ~270-byte rows every 10 ms, about 0.5 MiB/s of new rows) while its daemon syncs to a
// second daemon. The baseline is the same transactions, at the same moments, written to a
// file no daemon serves: each tick writes to both files, in alternating order, so both see
// the same machine conditions. Reports the WAL peak of both files, the database size,
// the application's commit latency on both, and how long the peer needs to hold every row
// once the writes stop.
//
// Usage: wal_bench [--seconds S]   (default 180)
#include <algorithm>
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

const char* kTable = "CREATE TABLE items(id TEXT PRIMARY KEY NOT NULL, body TEXT, qty INTEGER)";
constexpr int kRowsPerTransaction = 20;
constexpr auto kTick = 10ms;

std::uint64_t file_size(const std::string& path) {
    std::error_code ec;
    auto size = std::filesystem::file_size(path, ec);
    return ec ? 0 : size;
}

double mib_of(std::uint64_t bytes) {
    return static_cast<double>(bytes) / 1048576.0;
}

// One application file: its connection, its WAL's peak, its commit latencies.
struct AppFile {
    std::string path;
    sqlite3* db = nullptr;
    std::uint64_t wal_peak = 0;
    std::vector<double> commit_ms;
    int busy = 0;

    explicit AppFile(std::string p) : path(std::move(p)), db(open_plain(path)) { exec(db, kTable); }
    ~AppFile() { sqlite3_close(db); }
    void write(const std::string& sql) {
        auto start = Clock::now();
        if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) {
            ++busy;
            sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
        }
        commit_ms.push_back(seconds_since(start) * 1000);
        wal_peak = std::max(wal_peak, file_size(path + "-wal"));
    }
    double db_mib() const { return mib_of(file_size(path)); }
    double percentile(double q) {
        std::sort(commit_ms.begin(), commit_ms.end());
        return commit_ms[std::min(commit_ms.size() - 1,
                                  static_cast<std::size_t>(q * commit_ms.size()))];
    }
};

std::string transaction(int first) {
    std::string sql = "BEGIN;";
    for (int i = first; i < first + kRowsPerTransaction; ++i) {
        sql += "INSERT INTO items VALUES ('r" + std::to_string(i) + "', hex(randomblob(125)), " +
               std::to_string(i) + ");";
    }
    return sql + "COMMIT;";
}

// Writes one transaction per tick to both files for `seconds`, alternating which goes
// first; one progress line every 10 s. Returns the rows written to each file.
int write_steadily(AppFile& synced, AppFile& plain, sqlite3* peer, int seconds) {
    int written = 0;
    auto start = Clock::now();
    auto next_report = start + 10s;
    for (int tick = 0; seconds_since(start) < seconds; ++tick) {
        auto sql = transaction(written);
        written += kRowsPerTransaction;
        if (tick % 2 == 0) {
            synced.write(sql);
            plain.write(sql);
        } else {
            plain.write(sql);
            synced.write(sql);
        }
        if (Clock::now() >= next_report) {
            next_report += 10s;
            std::printf("  [writing] %5.0f s: %d rows; WAL now/peak: synced %.1f/%.1f MiB, plain "
                        "%.1f/%.1f MiB; peer holds %lld rows\n",
                        seconds_since(start), written, mib_of(file_size(synced.path + "-wal")),
                        mib_of(synced.wal_peak), mib_of(file_size(plain.path + "-wal")),
                        mib_of(plain.wal_peak),
                        static_cast<long long>(scalar(peer, "SELECT count(*) FROM items")));
            std::fflush(stdout);
        }
        std::this_thread::sleep_until(start + (tick + 1) * kTick);
    }
    return written;
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"wal_bench: WAL size while an app writes steadily and its daemon syncs"};
    int seconds = 180;
    app.add_option("--seconds", seconds, "how long the application writes")
        ->check(CLI::PositiveNumber);
    std::string limits;
    app.add_option("--limits", limits,
                   "extra [limits] lines for daemon a, e.g. 'poll_interval_ms = 50' (to find "
                   "what drives the WAL)");
    CLI11_PARSE(app, argc, argv);

    auto dir =
        (std::filesystem::temp_directory_path() / ("peerlite-wal-" + std::to_string(getpid())))
            .string();
    std::filesystem::create_directories(dir);
    std::printf("peerlite WAL benchmark: %d s of sustained writes, two peerlited processes on "
                "loopback, CURVE on (2 vCPU shared)\n",
                seconds);
    AppFile synced(dir + "/a.db"), plain(dir + "/plain.db");
    auto* peer = open_plain(dir + "/b.db");
    exec(peer, kTable);
    auto key_a = make_key(dir, "a"), key_b = make_key(dir, "b");
    auto config_a = daemon_config("a", {key_a, key_b}, "a.db");
    if (!limits.empty()) {
        config_a.extra = "[limits]\n" + limits + "\n";
        std::printf("  daemon a: [limits] %s\n", limits.c_str());
    }
    Daemon a(write_config(dir, config_a), dir + "/a.log");
    a.wait_ready(60s);
    Daemon b(write_config(dir, daemon_config("b", {key_a, key_b}, "b.db", {{a.endpoint(), key_a}})),
             dir + "/b.log");
    b.wait_ready(60s);
    std::printf("  [start] daemons a (beside the app) and b (its peer) ready\n");
    std::fflush(stdout);

    auto start = Clock::now();
    int written = write_steadily(synced, plain, peer, seconds);
    auto write_s = seconds_since(start);
    start = Clock::now();
    while (scalar(peer, "SELECT count(*) FROM items") < written && seconds_since(start) < 120) {
        std::this_thread::sleep_for(20ms);
    }
    auto drain_s = seconds_since(start);
    bool drained = scalar(peer, "SELECT count(*) FROM items") == written;
    std::printf("  [drain] peer holds %s rows %.2f s after the writes stopped\n",
                drained ? "all" : "NOT all", drain_s);
    auto mem_a = a.memory(), mem_b = b.memory();
    sqlite3_close(peer);
    int exit_a = a.stop(), exit_b = b.stop();

    std::printf("\nsustained writes: %d rows in %.0f s (%.2f MiB/s of rows), 2 vCPU shared\n",
                written, write_s, synced.db_mib() / write_s);
    std::printf("  %-52s %14s %14s\n", "measurement", "plain SQLite", "with peerlited");
    std::printf("  %-52s %10.1f MiB %10.1f MiB\n", "WAL peak", mib_of(plain.wal_peak),
                mib_of(synced.wal_peak));
    std::printf("  %-52s %10.1f MiB %10.1f MiB\n", "database file at the end", plain.db_mib(),
                synced.db_mib());
    std::printf("  %-52s %11.2f ms %11.2f ms\n", "app commit latency p50 (20 rows)",
                plain.percentile(0.5), synced.percentile(0.5));
    std::printf("  %-52s %11.2f ms %11.2f ms\n", "app commit latency p99", plain.percentile(0.99),
                synced.percentile(0.99));
    std::printf("  %-52s %14d %14d\n", "app transactions refused (busy)", plain.busy, synced.busy);
    std::printf("  %-52s %14s %11.2f s\n", "peer holds every row, after the writes stop", "-",
                drain_s);
    std::printf("  %-52s %14s %7.1f / %.1f MiB\n", "daemon peak memory (VmHWM), a / b", "-",
                mib(mem_a.peak_kib), mib(mem_b.peak_kib));
    std::printf("  %-52s %14s %10d / %d\n", "daemon exit status after SIGTERM, a / b", "-", exit_a,
                exit_b);
    std::filesystem::remove_all(dir);
    return drained && exit_a == 0 && exit_b == 0 ? 0 : 1;
}
