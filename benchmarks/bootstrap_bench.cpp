// Bootstrap benchmark with real peerlited processes on loopback (CURVE on): a source
// database pre-filled with N rows (default 1,000,000) through plain SQL in one
// transaction, a daemon started on it, then a second daemon on an empty database that
// joins with the source as its seed. Measures the time until the new node's file holds
// every row and the peak memory (VmHWM, and VmRSS polled every 50 ms) of both daemons.
// The baseline, from the same run: plain SQLite copying the same rows into an empty file
// (ATTACH + INSERT ... SELECT, one transaction), the floor for any local copy.
//
// Usage: bootstrap_bench [--rows N]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include <peerlite/peer/admin.hpp>

#include "bench_daemons.hpp"

using namespace peerlite;
using namespace peerlite::bench;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

const char* kTable = "CREATE TABLE items(id INTEGER PRIMARY KEY NOT NULL, title TEXT, "
                     "qty INTEGER, price REAL)";

double fill(const std::string& path, std::int64_t rows) {
    auto* db = open_plain(path);
    exec(db, kTable);
    auto start = Clock::now();
    exec(db, "BEGIN");
    exec(db, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < " +
                 std::to_string(rows) +
                 ") INSERT INTO items SELECT i, 'a product title of some length ' || i, i, "
                 "i * 0.25 FROM n");
    exec(db, "COMMIT");
    auto spent = seconds_since(start);
    sqlite3_close(db);
    return spent;
}

double plain_copy(const std::string& from, const std::string& to) {
    auto* db = open_plain(to);
    exec(db, kTable);
    auto start = Clock::now();
    exec(db, "ATTACH '" + from +
                 "' AS src; BEGIN; INSERT INTO items SELECT * FROM src.items; "
                 "COMMIT; DETACH src");
    auto spent = seconds_since(start);
    sqlite3_close(db);
    return spent;
}

std::int64_t file_size(const std::string& path) {
    std::error_code ec;
    auto size = std::filesystem::file_size(path, ec);
    return ec ? 0 : static_cast<std::int64_t>(size);
}

// The joining daemon's counters from its admin endpoint (empty when it does not answer).
nlohmann::json counters(const std::string& endpoint) {
    auto reply = peer::query_admin(endpoint, "status", 2s);
    if (!reply) {
        return {};
    }
    auto status = nlohmann::json::parse(*reply, nullptr, false);
    if (status.is_discarded() || !status.contains("databases") || status["databases"].empty()) {
        return {};
    }
    return status["databases"][0]["counters"];
}

// Everything the summary prints.
struct Figures {
    std::int64_t rows = 0;
    double fill_s = 0, copy_s = 0, source_start_s = 0, bootstrap_s = -1;
    std::uint64_t source_rss_max = 0, joiner_rss_max = 0; // KiB, polled during the bootstrap
    Memory source_end, joiner_end;                        // VmHWM at the end
    std::uint64_t cells = 0, bytes_received = 0;          // the joiner's counters
    int source_exit = -1, joiner_exit = -1;
};

// Polls both daemons' memory every 50 ms and the joiner's counters every 200 ms until its
// file holds every row (or 600 s pass); one progress line every 5 s.
void watch_bootstrap(Daemon& source, Daemon& joiner, const std::string& dir,
                     Clock::time_point start, Figures& f) {
    auto admin = admin_endpoint(dir, "joiner");
    auto* joined = open_plain(dir + "/joiner.db");
    auto next_report = start + 5s;
    auto next_count = start;
    nlohmann::json last = nlohmann::json::object();
    while (seconds_since(start) < 600) {
        f.source_rss_max = std::max(f.source_rss_max, source.memory().rss_kib);
        f.joiner_rss_max = std::max(f.joiner_rss_max, joiner.memory().rss_kib);
        if (Clock::now() >= next_count) {
            // The admin counter is cheap to ask; count(*) on a million rows is not, so it
            // only confirms once the counter says every row arrived.
            next_count = Clock::now() + 200ms;
            if (auto c = counters(admin); !c.empty()) {
                last = c;
            }
            if (last.value("rows_applied", 0ll) >= f.rows &&
                scalar(joined, "SELECT count(*) FROM items") >= f.rows) {
                f.bootstrap_s = seconds_since(start);
                break;
            }
        }
        if (Clock::now() >= next_report) {
            next_report += 5s;
            std::printf("  [bootstrap] %5.1f s: %lld rows applied; RSS joiner %.1f MiB, source "
                        "%.1f MiB\n",
                        seconds_since(start), last.value("rows_applied", 0ll),
                        mib(joiner.memory().rss_kib), mib(source.memory().rss_kib));
            std::fflush(stdout);
        }
        std::this_thread::sleep_for(50ms);
    }
    sqlite3_close(joined);
    f.cells = last.value("column_changes_received", 0ull);
    f.bytes_received = last.value("bytes_received", 0ull);
}

void print_summary(const Figures& f, const std::string& dir) {
    auto size_mib = [&](const std::string& name) {
        return static_cast<double>(file_size(dir + "/" + name) +
                                   file_size(dir + "/" + name + "-wal")) /
               1048576.0;
    };
    std::printf("\nbootstrap of %lld rows (2 vCPU shared with other work; times are wall "
                "clock)\n",
                static_cast<long long>(f.rows));
    std::printf("  %-58s %12s %10s\n", "measurement", "figure", "target");
    std::printf("  %-58s %10.2f s\n", "plain SQLite: fill source in one transaction", f.fill_s);
    std::printf("  %-58s %10.2f s\n", "plain SQLite: copy into an empty file (baseline)", f.copy_s);
    std::printf("  %-58s %10.2f s\n", "source peerlited start, taking in existing rows",
                f.source_start_s);
    std::printf("  %-58s %10.2f s %10s\n", "bootstrap: joiner start -> all rows in its file",
                f.bootstrap_s, "< 30 s");
    std::printf("  %-58s %10.1fx\n", "  ... as a multiple of the plain copy",
                f.bootstrap_s / f.copy_s);
    std::printf("  %-58s %8.1f MiB %10s\n", "joining peerlited peak memory (VmHWM)",
                mib(f.joiner_end.peak_kib), "< 200 MiB");
    std::printf("  %-58s %8.1f MiB\n", "joining peerlited peak RSS, polled every 50 ms",
                mib(f.joiner_rss_max));
    std::printf("  %-58s %8.1f MiB\n", "source peerlited peak memory (VmHWM, incl. its start)",
                mib(f.source_end.peak_kib));
    std::printf("  %-58s %8.1f MiB\n", "source peerlited peak RSS during the bootstrap",
                mib(f.source_rss_max));
    if (f.cells > 0 && f.bytes_received > 0) {
        std::printf("  %-58s %10.1f\n", "wire bytes received per column change (payload)",
                    static_cast<double>(f.bytes_received) / static_cast<double>(f.cells));
    }
    std::printf("  %-58s %8.1f MiB\n", "source.db size (file + WAL)", size_mib("source.db"));
    std::printf("  %-58s %8.1f MiB\n", "joiner.db size (file + WAL)", size_mib("joiner.db"));
    std::printf("  %-58s %7d / %d\n", "daemon exit status after SIGTERM (source / joiner)",
                f.source_exit, f.joiner_exit);
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"bootstrap_bench: a new empty peerlited joins a mesh holding N rows"};
    Figures f;
    f.rows = 1'000'000;
    app.add_option("--rows", f.rows, "rows in the source database")->check(CLI::PositiveNumber);
    CLI11_PARSE(app, argc, argv);

    auto dir = (std::filesystem::temp_directory_path() /
                ("peerlite-bootstrap-" + std::to_string(getpid())))
                   .string();
    std::filesystem::create_directories(dir);
    std::printf("peerlite bootstrap benchmark: %lld rows, two peerlited processes on loopback, "
                "CURVE on (2 vCPU shared)\n",
                static_cast<long long>(f.rows));
    f.fill_s = fill(dir + "/source.db", f.rows);
    std::printf("  [fill] %lld rows into source.db through plain SQL, one transaction: %.2f s\n",
                static_cast<long long>(f.rows), f.fill_s);
    f.copy_s = plain_copy(dir + "/source.db", dir + "/copy.db");
    std::printf(
        "  [baseline] plain SQLite copy of the same rows (ATTACH + INSERT SELECT): %.2f s\n",
        f.copy_s);
    std::filesystem::remove(dir + "/copy.db");
    std::fflush(stdout);

    auto source_key = make_key(dir, "source");
    auto joiner_key = make_key(dir, "joiner");
    auto start = Clock::now();
    Daemon source(write_config(dir, daemon_config("source", {source_key, joiner_key}, "source.db")),
                  dir + "/source.log");
    source.wait_ready(600s);
    f.source_start_s = seconds_since(start);
    std::printf("  [source] peerlited ready after %.2f s (takes in the %lld existing rows), "
                "peak %.1f MiB\n",
                f.source_start_s, static_cast<long long>(f.rows), mib(source.memory().peak_kib));
    std::fflush(stdout);

    auto* db = open_plain(dir + "/joiner.db");
    exec(db, kTable);
    sqlite3_close(db);
    auto joiner_config = daemon_config("joiner", {source_key, joiner_key}, "joiner.db",
                                       {{source.endpoint(), source_key}});
    joiner_config.admin = true;
    start = Clock::now();
    Daemon joiner(write_config(dir, joiner_config), dir + "/joiner.log");
    watch_bootstrap(source, joiner, dir, start, f);
    f.joiner_end = joiner.memory();
    f.source_end = source.memory();
    if (f.bootstrap_s < 0) {
        std::printf("  [bootstrap] did not finish within 600 s; joiner log:\n%s\n",
                    joiner.log().c_str());
        return 1;
    }
    std::printf("  [bootstrap] all %lld rows in joiner.db after %.2f s\n",
                static_cast<long long>(f.rows), f.bootstrap_s);
    f.source_exit = source.stop();
    f.joiner_exit = joiner.stop();
    print_summary(f, dir);
    std::filesystem::remove_all(dir);
    return f.source_exit == 0 && f.joiner_exit == 0 ? 0 : 1;
}
