// Nothing lost (issue 19): committed writes reach every node through real peerlited
// processes, even when a catch-up part fails to apply, rows are held back on the way, or
// rows are large; what can never be sent is refused at its origin, named in the log.
#include <nlohmann/json.hpp>
#include <string>
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

bool same_items(const Trio& t, const std::string& x, const std::string& y) {
    return dump(t.dir.file(x + ".db"), "items") == dump(t.dir.file(y + ".db"), "items");
}

} // namespace

TEST_CASE("a catch-up part refused while an app holds the write lock is asked for again, and "
          "every row arrives") {
    Trio t;
    PlainDb a(t.dir.file("a.db"));
    a.exec(kMeshTable);
    PlainDb(t.dir.file("b.db")).exec(kMeshTable);
    constexpr int kRows = 30'000;
    a.exec("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < " +
           std::to_string(kRows) +
           ") INSERT INTO items SELECT printf('k%06d', i), 'row ' || i, i FROM n");
    Daemon da(t.write("a", {"a.db"}, "[limits]\nmax_rows_per_message = 100\n"),
              t.dir.file("a.log"));
    REQUIRE(da.ready());
    // b waits at most 50 ms for the lock: the app's 1.5 s hold refuses parts for certain.
    Daemon db(
        t.write_seeded("b", da, 0, "[limits]\nmax_rows_per_message = 100\nbusy_timeout_ms = 50\n"),
        t.dir.file("b.log"));
    REQUIRE(db.ready());

    // Once the catch-up is under way, an app on b holds SQLite's write lock for 1.5 s.
    PlainDb app(t.dir.file("b.db"));
    REQUIRE(Mesh::eventually([&] { return app.scalar("SELECT count(*) FROM items") > 0; }, 20s));
    while (app.try_exec("BEGIN IMMEDIATE") != SQLITE_OK) {
        std::this_thread::sleep_for(1ms);
    }
    auto held_at = app.scalar("SELECT count(*) FROM items");
    INFO("rows on b when the app took the lock: " << held_at);
    REQUIRE(held_at < kRows); // the lock lands in the middle of the catch-up
    std::this_thread::sleep_for(1500ms);
    app.exec("COMMIT");

    CHECK(Mesh::eventually([&] { return same_items(t, "a", "b"); }, 60s));
    CHECK(app.scalar("SELECT count(*) FROM items") == kRows);
    CHECK_THAT(db.log(), Catch::Contains("asking for them again"));
    CHECK(status_of(t, "b")["databases"][0]["counters"]["pulls_retried"].get<int>() >= 1);
    // Nothing is left uncovered: both nodes agree on what they hold.
    CHECK(Mesh::eventually(
        [&] {
            return status_of(t, "a")["databases"][0]["versions"] ==
                   status_of(t, "b")["databases"][0]["versions"];
        },
        10s));
}

TEST_CASE("rows held back on one node for a column it lacks reach a third node through it") {
    Trio t;
    PlainDb a(t.dir.file("a.db"));
    a.exec(kMeshTable);
    PlainDb(t.dir.file("b.db")).exec(kMeshTable);
    PlainDb(t.dir.file("c.db")).exec(kMeshTable);
    Daemon da(t.write("a", {"a.db"}), t.dir.file("a.log"));
    REQUIRE(da.ready());
    Daemon db(t.write_seeded("b", da, 0), t.dir.file("b.log"));
    REQUIRE(db.ready());

    // a rolls the column out first and writes to it; b does not have it yet.
    a.exec("ALTER TABLE items ADD COLUMN note TEXT");
    for (int i = 0; i < 50; ++i) {
        a.exec("INSERT INTO items VALUES ('n" + std::to_string(i) + "', 'x', " + std::to_string(i) +
               ", 'note " + std::to_string(i) + "')");
    }
    PlainDb b(t.dir.file("b.db"));
    REQUIRE(Mesh::eventually(
        [&] { return b.scalar("SELECT count(*) FROM _peerlite_pending") == 50; }, 20s));
    // ... and b covers them: held back is held.
    REQUIRE(Mesh::eventually(
        [&] {
            return status_of(t, "a")["databases"][0]["versions"] ==
                   status_of(t, "b")["databases"][0]["versions"];
        },
        20s));
    REQUIRE(da.stop() == 0); // from now on, only b has a's rows

    // c meets only b, and adds the column: it gets every row from b's held-back changes.
    Daemon dc(t.write_seeded("c", db, 1), t.dir.file("c.log"));
    REQUIRE(dc.ready());
    PlainDb c(t.dir.file("c.db"));
    c.exec("ALTER TABLE items ADD COLUMN note TEXT");
    CHECK(Mesh::eventually([&] { return same_items(t, "a", "c"); }, 20s));
    CHECK(c.scalar("SELECT count(*) FROM items WHERE note LIKE 'note %'") == 50);
    // b adds it last, and its pending table empties.
    b.exec("ALTER TABLE items ADD COLUMN note TEXT");
    CHECK(Mesh::eventually([&] { return same_items(t, "a", "b"); }, 20s));
    CHECK(Mesh::eventually([&] { return b.scalar("SELECT count(*) FROM _peerlite_pending") == 0; },
                           10s));
}

TEST_CASE("parts are cut by bytes: large rows written offline and in one transaction sync, a "
          "row too large for any message is refused at its origin and the rest flows") {
    Trio t;
    PlainDb a(t.dir.file("a.db"));
    a.exec(kMeshTable);
    PlainDb(t.dir.file("b.db")).exec(kMeshTable);
    const std::string limits = "[limits]\nmax_message_bytes = 1048576\n"; // 1 MiB
    // Written before any daemon runs: 200 rows of 20 KB (4 MB), and three rows of 300 KB
    // in one transaction (one clock), and one value just under the limit.
    a.exec("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200) "
           "INSERT INTO items SELECT printf('w%03d', i), hex(randomblob(10000)), i FROM n");
    a.exec("BEGIN; INSERT INTO items VALUES ('t1', hex(randomblob(150000)), 1);"
           "INSERT INTO items VALUES ('t2', hex(randomblob(150000)), 2);"
           "INSERT INTO items VALUES ('t3', hex(randomblob(150000)), 3); COMMIT");
    a.exec("INSERT INTO items VALUES ('big', hex(randomblob(500000)), 4)");  // 1,000,000 bytes
    a.exec("INSERT INTO items VALUES ('huge', hex(randomblob(600000)), 5)"); // 1.2 MB: never
    Daemon da(t.write("a", {"a.db"}, limits), t.dir.file("a.log"));
    REQUIRE(da.ready());
    Daemon db(t.write_seeded("b", da, 0, limits), t.dir.file("b.log"));
    REQUIRE(db.ready());
    PlainDb b(t.dir.file("b.db"));
    std::string all_but_huge = "SELECT id, name, qty FROM items WHERE id <> 'huge' ORDER BY id";
    CHECK(Mesh::eventually([&] { return a.rows(all_but_huge) == b.rows(all_but_huge); }, 30s));
    CHECK(b.scalar("SELECT count(*) FROM items") == 204);
    // A write after the refused row still flows, both ways.
    a.exec("INSERT INTO items VALUES ('after', 'small', 6)");
    b.exec("UPDATE items SET qty = qty + 1 WHERE id = 'w001'");
    CHECK(Mesh::eventually([&] { return a.rows(all_but_huge) == b.rows(all_but_huge); }, 10s));
    CHECK(b.scalar("SELECT count(*) FROM items WHERE id = 'huge'") == 0);
    // Named once in a's log, and counted.
    auto log = da.log();
    CHECK_THAT(log, Catch::Contains("row items['huge'] is"));
    CHECK_THAT(log, Catch::Contains("column 'name': 1200000 bytes"));
    auto first = log.find("row items['huge'] is");
    CHECK(log.find("row items['huge'] is", first + 1) == std::string::npos);
    CHECK(status_of(t, "a")["databases"][0]["counters"]["rows_too_large"] == 1);
    // Nothing was dropped by b's frame limit.
    CHECK(status_of(t, "b")["databases"][0]["counters"]["messages_rejected"] == 0);
}

TEST_CASE("content that differs under equal version vectors is found by digests and repaired; "
          "peerlite diff --digests and status show it") {
    Trio t;
    PlainDb a(t.dir.file("a.db"));
    a.exec(kMeshTable);
    a.exec("INSERT INTO items VALUES ('k', 'x', 5), ('other', 'y', 1)");
    // Before the daemons run, b's file takes a's writes, with another counter total for
    // 'k' under a's real stamp (what a faulty member could send): b then covers all of
    // a's versions, and the honest copy of 'k' will be skipped as covered.
    {
        PlainDb(t.dir.file("b.db")).exec(kMeshTable);
        schema::TableSpec spec{"items", {{"qty", crdt::MergeRule::counter}}};
        auto a_store = open_store(t.dir.file("a.db"));
        auto b_store = open_store(t.dir.file("b.db"));
        REQUIRE(a_store->sync_table(spec).ok());
        REQUIRE(b_store->sync_table(spec).ok());
        REQUIRE(a_store->capture().ok());
        auto wanted = a_store->versions();
        store::ReadCursor cursor;
        auto set = a_store->read_changes(wanted, cursor);
        REQUIRE(set.ok());
        REQUIRE(cursor.done);
        set->covers = wanted;
        int forged = 0;
        for (auto& row : set->rows) {
            if (row.key == std::vector{crdt::Value::text("k")}) {
                REQUIRE(row.counters.size() == 1);
                row.counters[0].write.total = 2;
                ++forged;
            }
        }
        REQUIRE(forged == 1);
        REQUIRE(b_store->apply(*set).ok());
    }
    Daemon da(t.write("a", {"a.db"}), t.dir.file("a.log"));
    REQUIRE(da.ready());
    PlainDb b(t.dir.file("b.db"));
    REQUIRE(b.scalar("SELECT qty FROM items WHERE id = 'k'") == 2);
    // The operator's view before any repair: same versions, different content.
    auto diff = [&] {
        return run_binary(peerlite_binary(),
                          "diff --digests " + t.dir.file("a.db") + " " + t.dir.file("b.db"),
                          t.dir.file("diff.out"));
    };
    auto [diverged, diverged_out] = diff();
    CHECK(diverged == 1);
    CHECK_THAT(diverged_out, Catch::Contains("table items: 1 of 256 digest buckets differ"));
    CHECK_THAT(diverged_out, Catch::Contains("hold the same versions but not the same content"));

    Daemon db(t.write_seeded("b", da, 0), t.dir.file("b.log"));
    REQUIRE(db.ready());
    CHECK(Mesh::eventually([&] { return same_items(t, "a", "b"); }, 20s));
    CHECK(b.scalar("SELECT qty FROM items WHERE id = 'k'") == 5);
    CHECK(b.scalar("SELECT count(*) FROM items") == 2);
    auto repaired = status_of(t, "b")["databases"][0]["counters"]["column_changes_repaired"];
    auto started = status_of(t, "a")["databases"][0]["counters"]["repairs_started"].get<int>() +
                   status_of(t, "b")["databases"][0]["counters"]["repairs_started"].get<int>();
    CHECK(started >= 1);
    CHECK(repaired.get<int>() >= 1);
    CHECK_THAT(db.log(), Catch::Contains("repaired table 'items' from"));

    // And after it, on the two live files.
    auto [agree, agree_out] = diff();
    CHECK(agree == 0);
    CHECK_THAT(agree_out, Catch::Contains("table items: digests agree"));
    // The same through the two daemons' admin endpoints, as for nodes on other machines.
    auto [live, live_out] = run_binary(peerlite_binary(),
                                       "diff --digests --json ipc://" + t.dir.file("a.admin.sock") +
                                           " ipc://" + t.dir.file("b.admin.sock"),
                                       t.dir.file("diff-live.out"));
    CHECK(live == 0);
    INFO(live_out);
    auto live_doc = json::parse(live_out, nullptr, false);
    REQUIRE_FALSE(live_doc.is_discarded());
    CHECK(live_doc["agree"] == true);
    CHECK(live_doc["same_versions"] == true);
    CHECK(live_doc["tables"][0]["state"] == "agree");
    auto [st, status_out] = run_binary(peerlite_binary(), "status --config " + t.dir.file("b.toml"),
                                       t.dir.file("status.out"));
    CHECK(st == 0);
    CHECK_THAT(status_out, Catch::Contains("repairs started"));
    CHECK_THAT(status_out,
               Catch::Contains("column changes repaired " + std::to_string(repaired.get<int>())));
}

TEST_CASE("a value a counter cannot hold is refused where it is written, named in the log, and "
          "the cell goes back to the counter's sum on every node") {
    Trio t;
    PlainDb a(t.dir.file("a.db"));
    a.exec(kMeshTable);
    PlainDb(t.dir.file("b.db")).exec(kMeshTable);
    a.exec("INSERT INTO items VALUES ('k', 'x', 3)");
    Daemon da(t.write("a", {"a.db"}), t.dir.file("a.log"));
    REQUIRE(da.ready());
    Daemon db(t.write_seeded("b", da, 0), t.dir.file("b.log"));
    REQUIRE(db.ready());
    PlainDb b(t.dir.file("b.db"));
    REQUIRE(Mesh::eventually([&] { return same_items(t, "a", "b"); }, 10s));

    // Each refused value, written from a plain connection: the cell is put back to 3.
    for (std::string refused : {"2.5", "1e300", "NULL", "'seven'", "x'07'"}) {
        INFO("qty = " << refused);
        a.exec("UPDATE items SET qty = " + refused + " WHERE id = 'k'");
        CHECK(Mesh::eventually(
            [&] { return a.rows("SELECT qty FROM items") == std::vector<std::string>{"3"}; }, 10s));
    }
    auto log = da.log();
    CHECK_THAT(log,
               Catch::Contains("table 'items', key (k), counter column 'qty': refused REAL 2.5"));
    CHECK_THAT(log, Catch::Contains("refused REAL 1.0000000000000001e+300"));
    CHECK_THAT(log, Catch::Contains("refused NULL"));
    CHECK_THAT(log, Catch::Contains("refused TEXT of 5 bytes"));
    CHECK_THAT(log, Catch::Contains("refused BLOB of 1 bytes"));
    CHECK(status_of(t, "a")["databases"][0]["counters"]["local_writes_refused"].get<int>() == 5);
    CHECK(b.rows("SELECT qty FROM items") == std::vector<std::string>{"3"});
    // Whole numbers held as REAL count; the mesh goes on and agrees.
    a.exec("UPDATE items SET qty = 4.0 WHERE id = 'k'");
    b.exec("UPDATE items SET qty = qty + 10 WHERE id = 'k'");
    CHECK(Mesh::eventually(
        [&] {
            return same_items(t, "a", "b") &&
                   b.rows("SELECT qty FROM items") == std::vector<std::string>{"14"};
        },
        10s));
}

TEST_CASE("a rolling ADD COLUMN with NOT NULL DEFAULT converges while the old nodes write") {
    Trio t;
    PlainDb a(t.dir.file("a.db"));
    a.exec(kMeshTable);
    PlainDb b(t.dir.file("b.db"));
    b.exec(kMeshTable);
    Daemon da(t.write("a", {"a.db"}), t.dir.file("a.log"));
    REQUIRE(da.ready());
    Daemon db(t.write_seeded("b", da, 0), t.dir.file("b.log"));
    REQUIRE(db.ready());
    a.exec("INSERT INTO items VALUES ('before', 'x', 1)");
    REQUIRE(Mesh::eventually([&] { return same_items(t, "a", "b"); }, 10s));

    // b rolls the column out first; a, without it, goes on inserting and updating.
    b.exec("ALTER TABLE items ADD COLUMN color TEXT NOT NULL DEFAULT 'none'");
    for (int i = 0; i < 20; ++i) {
        a.exec("INSERT INTO items VALUES ('r" + std::to_string(i) + "', 'y', " + std::to_string(i) +
               ")");
    }
    a.exec("UPDATE items SET name = 'x2' WHERE id = 'before'");
    CHECK(Mesh::eventually(
        [&] {
            return b.scalar("SELECT count(*) FROM items WHERE color = 'none'") == 21 &&
                   b.scalar("SELECT count(*) FROM items WHERE name = 'x2'") == 1;
        },
        20s));
    CHECK(status_of(t, "b")["databases"][0]["counters"]["messages_rejected"] == 0);
    CHECK(status_of(t, "b")["databases"][0]["counters"]["pulls_retried"] == 0);

    // a adds it too; writes to it then flow both ways and the files agree.
    a.exec("ALTER TABLE items ADD COLUMN color TEXT NOT NULL DEFAULT 'none'");
    a.exec("UPDATE items SET color = 'red' WHERE id = 'r3'");
    b.exec("UPDATE items SET color = 'blue' WHERE id = 'r4'");
    CHECK(Mesh::eventually(
        [&] {
            return same_items(t, "a", "b") &&
                   a.scalar("SELECT count(*) FROM items WHERE color = 'blue'") == 1 &&
                   b.scalar("SELECT count(*) FROM items WHERE color = 'red'") == 1;
        },
        20s));
    CHECK_THAT(db.log(), !Catch::Contains("NOT NULL constraint failed"));
}
