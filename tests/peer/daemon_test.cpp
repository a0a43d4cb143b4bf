// peerlited as a real process: config errors, clean stops, one daemon per database, the
// admin endpoint, several databases per daemon, stops and crashes in the middle of a sync,
// and the WAL staying bounded while an application writes.
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include <catch2/catch.hpp>

#include <peerlite/peer/admin.hpp>

#include "daemon_fixture.hpp"
#include "mesh_fixture.hpp"

using namespace peerlite;
using namespace peerlite::testing;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

std::pair<int, std::string> peerlited(const std::string& args, const std::string& out) {
    return run_binary(peerlited_binary(), args, out);
}

// Two nodes "a" and "b" that trust each other, each with one database a.db / b.db.
struct Pair {
    ScratchDir dir;
    KeyFiles key_a = make_keys(dir, "a");
    KeyFiles key_b = make_keys(dir, "b");

    DaemonConfig config(const std::string& name, std::vector<DatabaseConfig> dbs) const {
        DaemonConfig c;
        c.name = name;
        c.secret_key_file = name + ".key";
        c.trusted_keys = {key_a.public_key, key_b.public_key};
        c.databases = std::move(dbs);
        return c;
    }
    std::string write(const std::string& name, std::vector<DatabaseConfig> dbs) const {
        return write_config(dir, config(name, std::move(dbs)));
    }
};

json status_of(const std::string& config_dir, const std::string& name) {
    auto reply =
        peer::query_admin("ipc://" + config_dir + "/" + name + ".admin.sock", "status", 5s);
    REQUIRE(reply.ok());
    return json::parse(*reply);
}

// The 1-based number of the first line of `path` that starts with `prefix` (0 if none).
int line_of(const std::string& path, const std::string& prefix) {
    std::ifstream in(path);
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
        if (line.rfind(prefix, 0) == 0) {
            return n;
        }
    }
    return 0;
}

} // namespace

TEST_CASE("a config with an unknown key is refused with file, line and key") {
    Pair p;
    PlainDb(p.dir.file("a.db")).exec(kMeshTable);
    auto c = p.config("a", {{"a.db"}});
    c.mesh_extra = "fanot = 3\n";
    auto config = write_config(p.dir, c);
    auto [status, out] = peerlited("--check --config " + config, p.dir.file("out"));
    CHECK(status == 2);
    CHECK_THAT(out, Catch::Contains(config + ":7: mesh.fanot: unknown key"));

    c = p.config("a", {{"a.db"}});
    c.databases[0].tables += "[[database.table]]\nname = \"items\"\nrules = { qty = \"sum\" }\n";
    auto [status2, out2] = peerlited("--check --config " + write_config(p.dir, c), p.dir.file("o"));
    CHECK(status2 == 2);
    CHECK_THAT(out2, Catch::Contains("database[0].table.rules.qty: unknown merge rule 'sum'"));

    c = p.config("a", {});
    auto [status3, out3] = peerlited("--check --config " + write_config(p.dir, c), p.dir.file("o"));
    CHECK(status3 == 2);
    CHECK_THAT(out3, Catch::Contains("database: at least one [[database]] block is required"));

    c = p.config("a", {{"a.db"}, {"./a.db"}});
    auto [status4, out4] = peerlited("--check --config " + write_config(p.dir, c), p.dir.file("o"));
    CHECK(status4 == 2);
    CHECK_THAT(out4,
               Catch::Contains("database[1].path: " + p.dir.file("a.db") + " is listed twice"));

    CHECK(peerlited("--check --config " + p.write("a", {{"a.db"}}), p.dir.file("o")).first == 0);
}

// Regression (issue "Nothing lost"): max_rows_per_message = 0 was accepted and the node
// then made no progress. Every numeric key now has a range, checked by one loader path.
TEST_CASE("an out-of-range number in the config stops the daemon at start with exit status 2 "
          "and names the key with its value and range") {
    struct Refused {
        std::string mesh, limits; // one line, for [mesh] or [limits]
        std::string error;        // what follows "FILE:LINE: " (LINE: the line above)
    };
    auto bad = GENERATE(values<Refused>({
        {"", "max_rows_per_message = 0",
         "limits.max_rows_per_message: 0 is out of range [1, 1000000]"},
        {"probe_interval_ms = -5", "", "mesh.probe_interval_ms: -5 is out of range [1, 3600000]"},
        {"", "max_message_bytes = 1024",
         "limits.max_message_bytes: 1024 is out of range [65536, 1073741824]"},
        {"suspect_after_ms = 6000", "",
         "mesh.suspect_after_ms: 6000 must not exceed mesh.dead_after_ms (5000)"},
        {"probe_timeout_ms = 5000", "",
         "mesh.probe_timeout_ms: 5000 must be less than mesh.dead_after_ms (5000)"},
    }));
    Pair p;
    PlainDb(p.dir.file("a.db")).exec(kMeshTable);
    auto c = p.config("a", {{"a.db"}});
    c.mesh_extra = bad.mesh + "\n";
    c.other_extra = "[limits]\n" + bad.limits + "\n";
    auto config = write_config(p.dir, c);
    auto line = line_of(config, bad.mesh.empty() ? bad.limits : bad.mesh);
    REQUIRE(line > 0);
    Daemon d(config, p.dir.file("a.log"));
    CHECK(d.wait_exit(15s) == 2);
    CHECK_THAT(d.log(), Catch::Contains(config + ":" + std::to_string(line) + ": " + bad.error));

    // The ends of the ranges are allowed, and so is suspect_after_ms = dead_after_ms.
    c.mesh_extra = "fanout = 1\nsuspect_after_ms = 5000\ndead_after_ms = 5000\n";
    c.other_extra = "[limits]\nmax_rows_per_message = 1\nmax_message_bytes = 65536\n"
                    "conflict_retention_hours = 0\npoll_interval_ms = 1000\n";
    CHECK(peerlited("--check --config " + write_config(p.dir, c), p.dir.file("o")).first == 0);
}

TEST_CASE("a database without the declared table stops the daemon with exit status 2") {
    Pair p;
    PlainDb(p.dir.file("a.db")).exec("CREATE TABLE other(id INTEGER PRIMARY KEY NOT NULL)");
    Daemon d(p.write("a", {{"a.db"}}), p.dir.file("a.log"));
    CHECK(d.wait_exit(15s) == 2);
    CHECK_THAT(d.log(), Catch::Contains("items"));
}

TEST_CASE("a daemon started while an app holds the write lock waits for it and then starts") {
    // Found by the fault test: the daemon exited 3 ("another node has the file") when an
    // app's transaction outlasted busy_timeout_ms during its start.
    Pair p;
    PlainDb app(p.dir.file("a.db"));
    app.exec(kMeshTable);
    app.exec("BEGIN IMMEDIATE");
    app.exec("INSERT INTO items VALUES ('k', 'x', 1)");
    Daemon d(p.write("a", {{"a.db"}}), p.dir.file("a.log"));
    std::this_thread::sleep_for(1500ms);
    CHECK_FALSE(d.exited());
    app.exec("COMMIT");
    REQUIRE(d.ready());
    // The row committed while it waited is taken in like any row the file held.
    CHECK(Mesh::eventually(
        [&] { return app.scalar("SELECT count(*) FROM _peerlite_rows_items") == 1; }, 10s));
}

TEST_CASE("two daemons converge; a second daemon on one database is refused; SIGTERM exits 0; "
          "status reports members and counters") {
    Pair p;
    PlainDb a(p.dir.file("a.db")), b(p.dir.file("b.db"));
    a.exec(kMeshTable);
    b.exec(kMeshTable);
    Daemon da(p.write("a", {{"a.db"}}), p.dir.file("a.log"));
    REQUIRE(da.ready());
    DatabaseConfig db_b{"b.db"};
    db_b.seeds = {{da.endpoint(), p.key_a.public_key}};
    Daemon db(p.write("b", {db_b}), p.dir.file("b.log"));
    REQUIRE(db.ready());

    a.exec("INSERT INTO items VALUES ('x', 'from a', 1)");
    b.exec("INSERT INTO items VALUES ('y', 'from b', 2)");
    b.exec("UPDATE items SET qty = qty + 1 WHERE id = 'y'");
    REQUIRE(Mesh::eventually(
        [&] {
            return a.rows("SELECT * FROM items ORDER BY id") ==
                       b.rows("SELECT * FROM items ORDER BY id") &&
                   a.scalar("SELECT count(*) FROM items") == 2;
        },
        10s));

    auto status = status_of(p.dir.path().string(), "a");
    REQUIRE(status["databases"].size() == 1);
    auto& dba = status["databases"][0];
    CHECK(dba["path"] == p.dir.file("a.db"));
    CHECK(dba["counters"]["local_changes_captured"].get<int>() >= 1);
    CHECK(dba["counters"]["column_changes_applied"].get<int>() >= 1);
    REQUIRE(dba["members"].size() == 1);
    CHECK(dba["members"][0]["state"] == "alive");
    // Eventually (the status is a snapshot refreshed every few milliseconds): a's own
    // writes and b's are both covered, and b is known to lack nothing.
    CHECK(Mesh::eventually(
        [&] {
            auto s = status_of(p.dir.path().string(), "a");
            auto& lag = s["databases"][0]["members"][0]["lag"];
            return s["databases"][0]["versions"].size() == 2 && lag["known"] == true &&
                   lag["up_to_date"] == true;
        },
        10s));
    // The CLI's view of the same: a table for people, the document for scripts.
    auto [cli_status, table] =
        run_binary(peerlite_binary(), "status --config " + da.config(), p.dir.file("st"));
    CHECK(cli_status == 0);
    CHECK_THAT(table, Catch::Contains("database " + p.dir.file("a.db")));
    CHECK_THAT(table, Catch::Contains("alive"));
    CHECK_THAT(table, Catch::Contains("up to date"));
    auto [json_status, doc] = run_binary(
        peerlite_binary(), "status --json --node " + p.dir.file("a.admin.sock"), p.dir.file("sj"));
    CHECK(json_status == 0);
    CHECK(json::parse(doc)["name"] == "a");
    CHECK(peer::query_admin("ipc://" + p.dir.file("a.admin.sock"), "reboot", 5s)
              ->find("unknown request") != std::string::npos);

    Daemon second(da.config(), p.dir.file("a2.log"));
    CHECK(second.wait_exit(10s) == 3);
    CHECK_THAT(second.log(), Catch::Contains("is already open as a peerlite node by process"));

    CHECK(da.stop() == 0);
    CHECK(db.stop() == 0);
    CHECK_THAT(da.log(), Catch::Contains("stopped cleanly"));
    CHECK_FALSE(std::filesystem::exists(p.dir.file("a.admin.sock")));
    auto [gone, why] =
        run_binary(peerlite_binary(), "status --config " + da.config(), p.dir.file("gone"));
    CHECK(gone == 1);
    CHECK_THAT(why, Catch::Contains("no admin socket at " + p.dir.file("a.admin.sock")));
}

TEST_CASE("one daemon serves two databases, each synced with its own mesh") {
    Pair p;
    const char* notes = "CREATE TABLE notes(id INTEGER PRIMARY KEY NOT NULL, body TEXT)";
    const std::string notes_table = "[[database.table]]\nname = \"notes\"\n";
    for (auto name : {"a1.db", "b1.db"}) {
        PlainDb(p.dir.file(name)).exec(kMeshTable);
    }
    for (auto name : {"a2.db", "b2.db"}) {
        PlainDb(p.dir.file(name)).exec(notes);
    }
    DatabaseConfig a2{"a2.db"};
    a2.tables = notes_table;
    Daemon da(p.write("a", {{"a1.db"}, a2}), p.dir.file("a.log"));
    REQUIRE(da.ready(2));
    DatabaseConfig b1{"b1.db"}, b2{"b2.db"};
    b1.seeds = {{da.endpoint(0), p.key_a.public_key}};
    b2.seeds = {{da.endpoint(1), p.key_a.public_key}};
    b2.tables = notes_table;
    Daemon db(p.write("b", {b1, b2}), p.dir.file("b.log"));
    REQUIRE(db.ready(2));

    PlainDb(p.dir.file("a1.db")).exec("INSERT INTO items VALUES ('i', 'item', 1)");
    PlainDb(p.dir.file("b2.db")).exec("INSERT INTO notes VALUES (7, 'note')");
    CHECK(Mesh::eventually(
        [&] {
            return dump(p.dir.file("b1.db"), "items") == dump(p.dir.file("a1.db"), "items") &&
                   dump(p.dir.file("a2.db"), "notes") == dump(p.dir.file("b2.db"), "notes") &&
                   dump(p.dir.file("a2.db"), "notes").size() == 1 &&
                   dump(p.dir.file("b1.db"), "items").size() == 1;
        },
        10s));
    auto status = status_of(p.dir.path().string(), "b");
    REQUIRE(status["databases"].size() == 2);
    CHECK(status["databases"][0]["node_id"] != status["databases"][1]["node_id"]);
    CHECK(da.stop() == 0);
    CHECK(db.stop() == 0);
}

TEST_CASE("a daemon stopped or killed in the middle of a catch-up resumes after restart") {
    Pair p;
    PlainDb a(p.dir.file("a.db"));
    a.exec(kMeshTable);
    a.exec("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 30000) "
           "INSERT INTO items SELECT 'k' || i, printf('%0200d', i), i FROM n");
    PlainDb(p.dir.file("b.db")).exec(kMeshTable);
    Daemon da(p.write("a", {{"a.db"}}), p.dir.file("a.log"));
    REQUIRE(da.ready());
    DatabaseConfig db_b{"b.db"};
    db_b.seeds = {{da.endpoint(), p.key_a.public_key}};
    auto config_b = p.write("b", {db_b});
    auto rows_b = [&] {
        return PlainDb(p.dir.file("b.db")).scalar("SELECT count(*) FROM items");
    };

    for (bool crash : {false, true}) {
        INFO((crash ? "SIGKILL" : "SIGTERM"));
        Daemon db(config_b, p.dir.file("b.log"));
        REQUIRE(db.ready());
        auto before = rows_b();
        REQUIRE(Mesh::eventually([&] { return rows_b() > before; }, 20s));
        if (crash) {
            db.kill();
        } else {
            CHECK(db.stop() == 0);
            CHECK_THAT(db.log(), Catch::Contains("stopped cleanly"));
        }
        // What was applied stays applied: each apply transaction is whole.
        CHECK(rows_b() >= before);
    }
    Daemon db(config_b, p.dir.file("b.log"));
    REQUIRE(db.ready());
    CHECK(Mesh::eventually([&] { return rows_b() == 30000; }, 60s));
    CHECK(dump(p.dir.file("a.db"), "items") == dump(p.dir.file("b.db"), "items"));
}

TEST_CASE("the WAL stays bounded and the app never waits past its busy timeout while the "
          "daemon syncs sustained writes") {
    Pair p;
    PlainDb app(p.dir.file("a.db"));
    app.exec(kMeshTable);
    PlainDb(p.dir.file("b.db")).exec(kMeshTable);
    Daemon da(p.write("a", {{"a.db"}}), p.dir.file("a.log"));
    REQUIRE(da.ready());
    DatabaseConfig db_b{"b.db"};
    db_b.seeds = {{da.endpoint(), p.key_a.public_key}};
    Daemon db(p.write("b", {db_b}), p.dir.file("b.log"));
    REQUIRE(db.ready());

    // About 1 MB/s of new rows for 8 s: without checkpoints the WAL would pass 8 MB.
    std::uintmax_t wal_max = 0;
    int busy = 0, written = 0;
    auto wal = p.dir.file("a.db-wal");
    auto end = std::chrono::steady_clock::now() + 8s;
    while (std::chrono::steady_clock::now() < end) {
        std::string sql = "BEGIN;";
        for (int i = 0; i < 20; ++i, ++written) {
            sql += "INSERT INTO items VALUES ('r" + std::to_string(written) + "', hex(randomblob(" +
                   "250)), " + std::to_string(written) + ");";
        }
        if (app.try_exec(sql + "COMMIT;") != SQLITE_OK) {
            ++busy;
            app.try_exec("ROLLBACK");
        }
        std::error_code ec;
        wal_max = std::max(wal_max, std::filesystem::file_size(wal, ec));
        std::this_thread::sleep_for(10ms);
    }
    INFO("rows written " << written << ", WAL peak " << wal_max << " bytes");
    CHECK(busy == 0);
    CHECK(written > 2000);
    // SQLite checkpoints at 1000 pages (about 4 MB); a reader pinning old pages would let
    // the WAL grow with every write instead.
    CHECK(wal_max < 6u * 1024 * 1024);
    CHECK(Mesh::eventually(
        [&] { return dump(p.dir.file("a.db"), "items") == dump(p.dir.file("b.db"), "items"); },
        30s));
}
