// Mesh benchmark on loopback: change propagation latency (commit through a plain SQLite
// connection on one node -> visible in the file of every other node) for 3, 10 and 20 nodes,
// beside a raw ZeroMQ DEALER/ROUTER round trip measured by the same program; and the
// catch-up time of a node that missed 100,000 rows, with the bytes it received per
// column change (the encoded messages, before ZeroMQ and CURVE framing); and what a
// converged three-node mesh at rest sends per anti-entropy round.
//
// Usage: mesh_bench [writes] [catch-up rows]   (defaults 200 and 100,000)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <thread>
#include <unistd.h>
#include <vector>

#include <spdlog/spdlog.h>
#include <sqlite3.h>
#include <zmq.hpp>

#include <peerlite/peer/node.hpp>

using namespace peerlite;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

double ms(Clock::duration d) {
    return std::chrono::duration<double, std::milli>(d).count();
}

struct Percentiles {
    double p50, p99, max;
    // Samples over 500 ms: the mark of a push that missed a node and waited for
    // anti-entropy (~1 s), though a long stall of a loaded machine looks the same.
    std::size_t slow = 0;
    std::string slow_writes; // which writes ("#3 #57"): early ones point at connection setup
};

Percentiles percentiles(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    auto at = [&](double q) {
        return v[std::min(v.size() - 1, static_cast<std::size_t>(q * v.size()))];
    };
    auto slow = static_cast<std::size_t>(v.end() - std::upper_bound(v.begin(), v.end(), 500.0));
    return {at(0.5), at(0.99), v.back(), slow, {}};
}

// Round trip of a 1 KiB frame DEALER -> ROUTER -> DEALER over CURVE on 127.0.0.1.
Percentiles zmq_round_trip(int n) {
    zmq::context_t ctx;
    auto server_keys = transport::generate_keys().value();
    auto client_keys = transport::generate_keys().value();
    zmq::socket_t router(ctx, zmq::socket_type::router);
    router.set(zmq::sockopt::curve_server, 1);
    router.set(zmq::sockopt::curve_secretkey, server_keys.secret_key);
    router.bind("tcp://127.0.0.1:*");
    auto endpoint = router.get(zmq::sockopt::last_endpoint);
    std::thread echo([&] {
        for (int i = 0; i < n; ++i) {
            zmq::message_t id, body;
            (void)router.recv(id);
            (void)router.recv(body);
            router.send(id, zmq::send_flags::sndmore);
            router.send(body, zmq::send_flags::none);
        }
    });
    zmq::socket_t dealer(ctx, zmq::socket_type::dealer);
    dealer.set(zmq::sockopt::curve_serverkey, server_keys.public_key);
    dealer.set(zmq::sockopt::curve_publickey, client_keys.public_key);
    dealer.set(zmq::sockopt::curve_secretkey, client_keys.secret_key);
    dealer.connect(endpoint);
    std::string payload(1024, 'x');
    std::vector<double> samples;
    for (int i = 0; i < n; ++i) {
        auto start = Clock::now();
        dealer.send(zmq::buffer(payload), zmq::send_flags::none);
        zmq::message_t reply;
        (void)dealer.recv(reply);
        samples.push_back(ms(Clock::now() - start));
    }
    echo.join();
    router.set(zmq::sockopt::linger, 0);
    dealer.set(zmq::sockopt::linger, 0);
    return percentiles(samples);
}

struct Mesh {
    std::filesystem::path dir;
    std::vector<std::string> paths;
    std::vector<transport::CurveKeys> keys;
    std::vector<std::unique_ptr<peer::Node>> nodes;
    std::vector<sqlite3*> dbs;

    std::size_t direct_push_limit;
    // For the at-rest figures: applied by start() to every node's options.
    std::function<void(peer::NodeOptions&)> tweak;

    Mesh(int n, const std::filesystem::path& where,
         std::size_t direct_limit = peer::NodeOptions{}.direct_push_limit,
         std::function<void(peer::NodeOptions&)> options = {})
        : dir(where), direct_push_limit(direct_limit), tweak(std::move(options)) {
        std::filesystem::create_directories(dir);
        for (int i = 0; i < n; ++i) {
            paths.push_back((dir / ("n" + std::to_string(i) + ".db")).string());
            sqlite3* db = nullptr;
            sqlite3_open(paths.back().c_str(), &db);
            sqlite3_busy_timeout(db, 5000);
            sqlite3_exec(
                db,
                "PRAGMA journal_mode=WAL; CREATE TABLE IF NOT EXISTS items(id INTEGER PRIMARY KEY, "
                "title TEXT, qty INTEGER, price REAL); CREATE TABLE IF NOT EXISTS more_items("
                "id INTEGER PRIMARY KEY, title TEXT, qty INTEGER, price REAL)",
                nullptr, nullptr, nullptr);
            dbs.push_back(db);
            keys.push_back(transport::generate_keys().value());
        }
        nodes.resize(static_cast<std::size_t>(n));
        for (int i = 0; i < n; ++i) {
            start(i);
        }
    }
    ~Mesh() {
        nodes.clear();
        for (auto* db : dbs) {
            sqlite3_close(db);
        }
        std::filesystem::remove_all(dir);
    }
    void start(int i) {
        peer::NodeOptions o;
        o.database = paths[static_cast<std::size_t>(i)];
        o.tables = {{"items", {}}};
        o.direct_push_limit = direct_push_limit;
        o.transport.keys = keys[static_cast<std::size_t>(i)];
        for (const auto& k : keys) {
            o.transport.trusted.insert(k.public_key);
        }
        if (i > 0) {
            o.seeds.push_back({nodes[0]->endpoint(), keys[0].public_key});
        }
        if (tweak) {
            tweak(o);
        }
        if (const char* rows = std::getenv("PEERLITE_BENCH_ROWS_PER_MESSAGE")) {
            o.max_rows_per_message = static_cast<std::size_t>(std::atoi(rows));
        }
        // Each node warns that the table has an INTEGER key; once is enough.
        spdlog::set_level(i == 0 ? spdlog::level::warn : spdlog::level::err);
        nodes[static_cast<std::size_t>(i)] = std::move(peer::Node::start(o).value());
        spdlog::set_level(spdlog::level::warn);
    }
    std::int64_t count(int i, const char* where = "1") {
        sqlite3_stmt* s = nullptr;
        std::string sql = std::string("SELECT count(*) FROM items WHERE ") + where;
        sqlite3_prepare_v2(dbs[static_cast<std::size_t>(i)], sql.c_str(), -1, &s, nullptr);
        sqlite3_step(s);
        auto n = sqlite3_column_int64(s, 0);
        sqlite3_finalize(s);
        return n;
    }
    bool full_membership() {
        for (auto& n : nodes) {
            if (!n || n->peers().size() + 1 != nodes.size()) {
                return false;
            }
        }
        return true;
    }
};

Percentiles propagation(int n, int writes, const std::filesystem::path& dir,
                        std::size_t direct_push_limit) {
    Mesh mesh(n, dir, direct_push_limit);
    auto deadline = Clock::now() + 40s;
    while (!mesh.full_membership() && Clock::now() < deadline) {
        std::this_thread::sleep_for(10ms);
    }
    if (!mesh.full_membership()) {
        std::printf("  warning: %d nodes did not all know each other within 40 s\n", n);
    }
    std::vector<double> samples;
    for (int w = 0; w < writes; ++w) {
        auto writer = w % n;
        auto id = std::to_string(w + 1);
        auto start = Clock::now();
        sqlite3_exec(mesh.dbs[static_cast<std::size_t>(writer)],
                     ("INSERT INTO items VALUES (" + id + ", 'title', 1, 2.5)").c_str(), nullptr,
                     nullptr, nullptr);
        std::vector<bool> seen(static_cast<std::size_t>(n), false);
        seen[static_cast<std::size_t>(writer)] = true;
        auto where = "id = " + id;
        while (std::count(seen.begin(), seen.end(), false) > 0 && Clock::now() - start < 5s) {
            for (int i = 0; i < n; ++i) {
                if (!seen[static_cast<std::size_t>(i)] && mesh.count(i, where.c_str()) == 1) {
                    seen[static_cast<std::size_t>(i)] = true;
                }
            }
        }
        samples.push_back(ms(Clock::now() - start));
        std::this_thread::sleep_for(5ms);
    }
    auto p = percentiles(samples);
    for (std::size_t w = 0; w < samples.size(); ++w) {
        if (samples[w] > 500) {
            p.slow_writes += " #" + std::to_string(w + 1);
        }
    }
    return p;
}

struct CatchUp {
    double ms;
    double first_row_ms;     // start -> first row in the file: joining, before streaming
    double bytes_per_change; // payload bytes the restarted node received per column change
};

CatchUp catch_up(int rows, const std::filesystem::path& dir) {
    Mesh mesh(2, dir);
    mesh.nodes[1].reset(); // node 1 is down while node 0 takes the writes
    auto* db = mesh.dbs[0];
    sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr);
    sqlite3_stmt* s = nullptr;
    sqlite3_prepare_v2(db,
                       "INSERT INTO items VALUES (?1, 'a product title of some length', ?1, 0.5)",
                       -1, &s, nullptr);
    for (int r = 1; r <= rows; ++r) {
        sqlite3_bind_int(s, 1, r);
        sqlite3_step(s);
        sqlite3_reset(s);
    }
    sqlite3_finalize(s);
    sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
    while (mesh.nodes[0]->counters().captured < static_cast<std::uint64_t>(rows)) {
        std::this_thread::sleep_for(10ms); // node 0 stamps them first
    }
    auto start = Clock::now();
    mesh.start(1);
    double first_row = -1;
    for (std::int64_t n = 0; n < rows && Clock::now() - start < 120s; n = mesh.count(1)) {
        if (n > 0 && first_row < 0) {
            first_row = ms(Clock::now() - start);
        }
        std::this_thread::sleep_for(5ms);
    }
    auto spent = ms(Clock::now() - start);
    if (first_row < 0) {
        first_row = spent; // every row arrived between two polls
    }
    auto c = mesh.nodes[1]->counters();
    return {spent, first_row,
            static_cast<double>(c.bytes_received) /
                static_cast<double>(std::max<std::uint64_t>(1, c.column_changes_received))};
}

// What a converged mesh at rest sends: three nodes holding the same 1,000 rows in each of
// `tables` tables, measured over `seconds` after the first content check agreed. With
// `probes` false, failure detection and membership gossip are slowed to once an hour, so
// what is left is anti-entropy alone (vectors, digests).
struct AtRest {
    double bytes_per_round;   // every byte sent by every node / anti-entropy rounds started
    double digests_per_round; // digests messages sent / rounds
    std::uint64_t rounds;
    std::uint64_t repairs;
};

AtRest at_rest(const std::filesystem::path& dir, std::chrono::seconds seconds, int tables,
               bool probes) {
    Mesh mesh(3, dir, peer::NodeOptions{}.direct_push_limit, [&](peer::NodeOptions& o) {
        if (tables == 2) {
            o.tables.push_back({"more_items", {}});
        }
        if (!probes) {
            o.probe_interval = std::chrono::hours(1);
            o.gossip_interval = std::chrono::hours(1);
        }
    });
    for (const char* table : {"items", "more_items"}) {
        sqlite3_exec(mesh.dbs[0],
                     ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < "
                      "1000) INSERT INTO " +
                      std::string(table) + " SELECT i, 'a title', i, 0.5 FROM n")
                         .c_str(),
                     nullptr, nullptr, nullptr);
    }
    auto deadline = Clock::now() + 60s;
    auto settled = [&] {
        for (int i = 0; i < 3; ++i) {
            if (mesh.count(i) != 1000 ||
                mesh.nodes[static_cast<std::size_t>(i)]->counters().digests_sent == 0) {
                return false;
            }
        }
        return true;
    };
    while (!settled() && Clock::now() < deadline) {
        std::this_thread::sleep_for(50ms);
    }
    auto sum = [&] {
        peer::NodeCounters total;
        for (auto& n : mesh.nodes) {
            auto c = n->counters();
            total.bytes_sent += c.bytes_sent;
            total.syncs_started += c.syncs_started;
            total.digests_sent += c.digests_sent;
            total.repairs_started += c.repairs_started;
        }
        return total;
    };
    auto before = sum();
    std::this_thread::sleep_for(seconds);
    auto after = sum();
    auto rounds = std::max<std::uint64_t>(1, after.syncs_started - before.syncs_started);
    return {static_cast<double>(after.bytes_sent - before.bytes_sent) / static_cast<double>(rounds),
            static_cast<double>(after.digests_sent - before.digests_sent) /
                static_cast<double>(rounds),
            after.syncs_started - before.syncs_started, after.repairs_started};
}

} // namespace

int main(int argc, char** argv) {
    int writes = argc > 1 ? std::atoi(argv[1]) : 200;
    int rows = argc > 2 ? std::atoi(argv[2]) : 100'000;
    spdlog::set_level(spdlog::level::warn);
    auto dir = std::filesystem::temp_directory_path() /
               ("peerlite-mesh-bench-" + std::to_string(getpid()));
    std::printf("peerlite mesh benchmark, loopback, CURVE on, nodes in one process (2 vCPU "
                "shared); %d writes per mesh\n",
                writes);
    std::fflush(stdout);
    auto rt = zmq_round_trip(2000);
    std::printf("  [baseline] raw ZeroMQ round trip done\n");
    std::fflush(stdout);
    // Every mesh with the default direct_push_limit (32: direct pushes), and 20 nodes
    // again with the limit below the mesh size: the fanout-3 epidemic, for contrast.
    struct Run {
        int nodes;
        std::size_t direct_push_limit;
        Percentiles p;
    };
    std::vector<Run> meshes;
    const int direct = static_cast<int>(peer::NodeOptions{}.direct_push_limit);
    for (auto [n, limit] : {std::pair{3, direct}, {10, direct}, {20, direct}, {20, 16}}) {
        auto start = Clock::now();
        auto p = propagation(n, writes, dir / std::to_string(n), static_cast<std::size_t>(limit));
        meshes.push_back({n, static_cast<std::size_t>(limit), p});
        std::printf("  [propagation] %d nodes, direct_push_limit %d: done (%.1f s)\n", n, limit,
                    ms(Clock::now() - start) / 1000);
        std::fflush(stdout);
    }
    auto t = catch_up(rows, dir / "catchup");
    std::printf("  [catch-up] done\n");
    std::fflush(stdout);
    auto rest = at_rest(dir / "rest1", 8s, 1, true);
    auto quiet1 = at_rest(dir / "rest2", 8s, 1, false);
    auto quiet2 = at_rest(dir / "rest3", 8s, 2, false);
    std::printf("  [at rest] done\n\n");

    std::printf("  %-52s %-36s %s\n", "measurement", "figure", "target");
    std::printf("  %-52s p50 %6.3f ms  p99 %6.3f ms\n", "raw ZeroMQ round trip, 1 KiB, CURVE",
                rt.p50, rt.p99);
    for (const auto& [n, limit, p] : meshes) {
        auto label = std::to_string(n) + " nodes: commit -> visible on every other node" +
                     (limit < static_cast<std::size_t>(n)
                          ? " (epidemic: direct_push_limit " + std::to_string(limit) + ")"
                          : "");
        std::printf("  %-52s p50 %6.2f ms  p99 %6.2f ms  max %6.1f  p50 < 5, p99 < %d ms\n",
                    label.c_str(), p.p50, p.p99, p.max, n > 10 ? 50 : 25);
        if (p.slow > 0) {
            std::printf("  %-52s %zu of %d writes over 500 ms (missed push or stall):%s\n", "",
                        p.slow, writes, p.slow_writes.c_str());
        }
    }
    std::printf(
        "  %-52s %8.0f ms %26s\n",
        ("catch-up of " + std::to_string(rows) + " missed rows by a restarted node").c_str(), t.ms,
        "< 2000 ms");
    std::printf("  %-52s %8.0f ms\n", "  of which joining (start -> first row in its file)",
                t.first_row_ms);
    std::printf("  %-52s %8.1f\n", "  wire bytes received per column change (payload)",
                t.bytes_per_change);
    std::printf("  %-52s %8.0f B\n", "3 nodes at rest, 1 table: all bytes sent per round",
                rest.bytes_per_round);
    std::printf("  %-52s %8.0f B\n", "  anti-entropy alone (probes and gossip off)",
                quiet1.bytes_per_round);
    std::printf("  %-52s %8.0f B %26s\n", "  each table more (2 tables less 1, same mesh)",
                quiet2.bytes_per_round - quiet1.bytes_per_round, "<= 1024 B");
    for (const auto* r : {&rest, &quiet1, &quiet2}) {
        std::printf("  %-52s %8.2f (%llu rounds in 8 s, %llu repairs since start)\n",
                    "  digests messages per round", r->digests_per_round,
                    static_cast<unsigned long long>(r->rounds),
                    static_cast<unsigned long long>(r->repairs));
    }
    std::filesystem::remove_all(dir);
    return 0;
}
