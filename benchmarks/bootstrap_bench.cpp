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
#include <string>
#include <thread>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

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
    exec(db, "ATTACH '" + from + "' AS src; BEGIN; INSERT INTO items SELECT * FROM src.items; "
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

struct Watch {
    std::uint64_t source_rss_max = 0, joiner_rss_max = 0;
};

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"bootstrap_bench: a new empty peerlited joins a mesh holding N rows"};
    std::int64_t rows = 1'000'000;
    app.add_option("--rows", rows, "rows in the source database")->check(CLI::PositiveNumber);
    CLI11_PARSE(app, argc, argv);

    auto dir = (std::filesystem::temp_directory_path() /
                ("peerlite-bootstrap-" + std::to_string(getpid())))
                   .string();
    std::filesystem::create_directories(dir);
    std::printf("peerlite bootstrap benchmark: %lld rows, two peerlited processes on loopback, "
                "CURVE on (2 vCPU shared)\n",
                static_cast<long long>(rows));
    std::fflush(stdout);

    auto fill_s = fill(dir + "/source.db", rows);
    std::printf("  [fill] %lld rows into source.db through plain SQL, one transaction: %.2f s\n",
                static_cast<long long>(rows), fill_s);
    auto copy_s = plain_copy(dir + "/source.db", dir + "/copy.db");
    std::printf("  [baseline] plain SQLite copy of the same rows (ATTACH + INSERT SELECT): %.2f s\n",
                copy_s);
    std::filesystem::remove(dir + "/copy.db");
    std::fflush(stdout);

    auto source_key = make_key(dir, "source");
    auto joiner_key = make_key(dir, "joiner");
    auto source_config = daemon_config("source", {source_key, joiner_key}, "source.db");
    auto start = Clock::now();
    Daemon source(write_config(dir, source_config), dir + "/source.log");
    source.wait_ready(600s);
    auto source_start_s = seconds_since(start);
    auto source_start_mem = source.memory();
    std::printf("  [source] peerlited ready after %.2f s (takes in the %lld existing rows), "
                "peak %.1f MiB\n",
                source_start_s, static_cast<long long>(rows), mib(source_start_mem.peak_kib));
    std::fflush(stdout);

    {
        auto* db = open_plain(dir + "/joiner.db");
        exec(db, kTable);
        sqlite3_close(db);
    }
    auto joiner_config = daemon_config("joiner", {source_key, joiner_key}, "joiner.db",
                                       {{source.endpoint(), source_key}});
    joiner_config.admin = true;
    auto admin = admin_endpoint(dir, "joiner");
    Watch watch;
    start = Clock::now();
    Daemon joiner(write_config(dir, joiner_config), dir + "/joiner.log");
    auto* joined = open_plain(dir + "/joiner.db");
    auto next_report = Clock::now() + 5s;
    auto next_count = Clock::now();
    double bootstrap_s = -1;
    nlohmann::json last = nlohmann::json::object();
    while (seconds_since(start) < 600) {
        watch.source_rss_max = std::max(watch.source_rss_max, source.memory().rss_kib);
        watch.joiner_rss_max = std::max(watch.joiner_rss_max, joiner.memory().rss_kib);
        if (Clock::now() >= next_count) {
            // The admin counter is cheap to ask; count(*) on a million rows is not, so it
            // only confirms once the counter says every row arrived.
            next_count = Clock::now() + 200ms;
            if (auto c = counters(admin); !c.empty()) {
                last = c;
            }
            if (last.value("rows_applied", 0ll) >= rows &&
                scalar(joined, "SELECT count(*) FROM items") >= rows) {
                bootstrap_s = seconds_since(start);
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
    auto joiner_mem = joiner.memory();
    auto source_mem = source.memory();
    if (bootstrap_s < 0) {
        std::printf("  [bootstrap] did not finish within 600 s; joiner log:\n%s\n",
                    joiner.log().c_str());
        return 1;
    }
    std::printf("  [bootstrap] all %lld rows in joiner.db after %.2f s\n",
                static_cast<long long>(rows), bootstrap_s);
    auto cells = last.value("column_changes_received", 0ull);
    auto received = last.value("bytes_received", 0ull);
    int source_exit = source.stop();
    int joiner_exit = joiner.stop();

    std::printf("\nbootstrap of %lld rows (2 vCPU shared with other work; times are wall "
                "clock)\n",
                static_cast<long long>(rows));
    std::printf("  %-58s %12s %10s\n", "measurement", "figure", "target");
    std::printf("  %-58s %10.2f s\n", "plain SQLite: fill source in one transaction", fill_s);
    std::printf("  %-58s %10.2f s\n", "plain SQLite: copy into an empty file (baseline)", copy_s);
    std::printf("  %-58s %10.2f s\n", "source peerlited start, taking in existing rows",
                source_start_s);
    std::printf("  %-58s %10.2f s %10s\n", "bootstrap: joiner start -> all rows in its file",
                bootstrap_s, "< 30 s");
    std::printf("  %-58s %10.1fx\n", "  ... as a multiple of the plain copy", bootstrap_s / copy_s);
    std::printf("  %-58s %8.1f MiB %10s\n", "joining peerlited peak memory (VmHWM)",
                mib(joiner_mem.peak_kib), "< 200 MiB");
    std::printf("  %-58s %8.1f MiB\n", "joining peerlited peak RSS, polled every 50 ms",
                mib(watch.joiner_rss_max));
    std::printf("  %-58s %8.1f MiB\n", "source peerlited peak memory (VmHWM, incl. its start)",
                mib(source_mem.peak_kib));
    std::printf("  %-58s %8.1f MiB\n", "source peerlited peak RSS during the bootstrap",
                mib(watch.source_rss_max));
    if (cells > 0 && received > 0) {
        std::printf("  %-58s %10.1f\n", "wire bytes received per column change (payload)",
                    static_cast<double>(received) / static_cast<double>(cells));
    }
    std::printf("  %-58s %8.1f MiB\n", "source.db size (file + WAL)",
                (file_size(dir + "/source.db") + file_size(dir + "/source.db-wal")) / 1048576.0);
    std::printf("  %-58s %8.1f MiB\n", "joiner.db size (file + WAL)",
                (file_size(dir + "/joiner.db") + file_size(dir + "/joiner.db-wal")) / 1048576.0);
    std::printf("  %-58s %7d / %d\n", "daemon exit status after SIGTERM (source / joiner)",
                source_exit, joiner_exit);
    std::filesystem::remove_all(dir);
    return source_exit == 0 && joiner_exit == 0 ? 0 : 1;
}
