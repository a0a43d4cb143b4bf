#include <catch2/catch.hpp>

#include "store_fixture.hpp"

using namespace peerlite;
using namespace peerlite::testing;

namespace {
struct Pair {
    ScratchDir dir;
    std::string a_path = dir.file("a.db"), b_path = dir.file("b.db");
    PlainDb a{a_path}, b{b_path};
    std::unique_ptr<store::Store> sa, sb;
    explicit Pair(const std::string& ddl) {
        a.exec(ddl);
        b.exec(ddl);
        sa = open_store(a_path);
        sb = open_store(b_path);
    }
};
} // namespace

TEST_CASE("a column added while syncing is held back by a node without it, then applied") {
    Pair p("CREATE TABLE t(id TEXT PRIMARY KEY NOT NULL, name TEXT)");
    REQUIRE(p.sa->sync_table({"t", {}}).ok());
    REQUIRE(p.sb->sync_table({"t", {}}).ok());
    p.a.exec("INSERT INTO t VALUES ('k', 'x')");
    sync(*p.sa, *p.sb);

    p.a.exec("ALTER TABLE t ADD COLUMN color TEXT DEFAULT 'none'");
    p.a.exec("UPDATE t SET color = 'red', name = 'y' WHERE id = 'k'");
    auto stats = sync(*p.sa, *p.sb);
    CHECK(stats.held_back == 1);
    auto held = p.sb->held_back();
    REQUIRE(held.ok());
    REQUIRE(held->size() == 1);
    CHECK_THAT(held->front().second, Catch::Contains("no column 'color'"));
    // Nothing of the held row was applied, not even the column b knows.
    CHECK(dump(p.b_path, "t") == std::vector<std::string>{"'k'|'x'"});

    p.b.exec("ALTER TABLE t ADD COLUMN color TEXT DEFAULT 'none'");
    REQUIRE(p.sb->refresh_schema().ok());
    CHECK(p.sb->held_back()->empty());
    CHECK(dump(p.b_path, "t") == std::vector<std::string>{"'k'|'y'|'red'"});
    // And the rest keeps syncing both ways.
    p.b.exec("UPDATE t SET color = 'blue' WHERE id = 'k'");
    sync(*p.sb, *p.sa);
    CHECK(dump(p.a_path, "t") == dump(p.b_path, "t"));
}

TEST_CASE("a row from a node without a new column takes the column's default, NOT NULL included") {
    Pair p("CREATE TABLE t(id TEXT PRIMARY KEY NOT NULL, name TEXT)");
    REQUIRE(p.sa->sync_table({"t", {}}).ok());
    REQUIRE(p.sb->sync_table({"t", {}}).ok());
    p.a.exec("INSERT INTO t VALUES ('old', 'x')");
    sync(*p.sa, *p.sb);
    // b rolls out two columns first; a has neither and goes on inserting and updating.
    p.b.exec("ALTER TABLE t ADD COLUMN color TEXT NOT NULL DEFAULT 'none'");
    p.b.exec("ALTER TABLE t ADD COLUMN size INTEGER DEFAULT 7");
    REQUIRE(p.sb->refresh_schema().ok());
    p.a.exec("INSERT INTO t VALUES ('new', 'y')");
    p.a.exec("UPDATE t SET name = 'x2' WHERE id = 'old'");
    // The regression: "NOT NULL constraint failed" on every round, forever; and with a
    // nullable DEFAULT the cell was NULL here and the default where the column was added.
    auto stats = sync(*p.sa, *p.sb);
    CHECK(stats.held_back == 0);
    CHECK(dump(p.b_path, "t") ==
          std::vector<std::string>{"'new'|'y'|'none'|7", "'old'|'x2'|'none'|7"});
    // a adds them too (existing rows take the defaults): both agree, and keep syncing.
    p.a.exec("ALTER TABLE t ADD COLUMN color TEXT NOT NULL DEFAULT 'none'");
    p.a.exec("ALTER TABLE t ADD COLUMN size INTEGER DEFAULT 7");
    p.a.exec("UPDATE t SET color = 'red' WHERE id = 'new'");
    sync(*p.sa, *p.sb);
    sync(*p.sb, *p.sa);
    CHECK(dump(p.a_path, "t") == dump(p.b_path, "t"));
    CHECK(dump(p.b_path, "t").front() == "'new'|'y'|'red'|7");
}

TEST_CASE("writes to a new column made before peerlite noticed the ALTER are captured") {
    Pair p("CREATE TABLE t(id TEXT PRIMARY KEY NOT NULL, name TEXT)");
    p.b.exec("ALTER TABLE t ADD COLUMN n INTEGER DEFAULT 0");
    REQUIRE(p.sa->sync_table({"t", {}}).ok());
    REQUIRE(p.sb->sync_table({"t", {}}).ok());
    p.a.exec("INSERT INTO t VALUES ('k1', 'a'), ('k2', 'b')");
    // One shell session: the ALTER and a write to the new column, old triggers still in place.
    REQUIRE(run_shell("sqlite3 '" + p.a_path +
                      "' \"ALTER TABLE t ADD COLUMN n INTEGER DEFAULT 0; UPDATE t SET n = 7 WHERE "
                      "id = 'k2';\"") == 0);
    sync(*p.sa, *p.sb);
    CHECK(dump(p.b_path, "t") == std::vector<std::string>{"'k1'|'a'|0", "'k2'|'b'|7"});
}

TEST_CASE("changes for a table this node does not sync yet wait until it does") {
    Pair p("CREATE TABLE t(id TEXT PRIMARY KEY NOT NULL, v TEXT)");
    p.a.exec("CREATE TABLE extra(id INTEGER PRIMARY KEY, v TEXT)");
    REQUIRE(p.sa->sync_table({"t", {}}).ok());
    REQUIRE(p.sa->sync_table({"extra", {}}).ok());
    REQUIRE(p.sb->sync_table({"t", {}}).ok());
    p.a.exec("INSERT INTO extra VALUES (1, 'one'); INSERT INTO t VALUES ('k', 'v')");
    auto stats = sync(*p.sa, *p.sb);
    CHECK(stats.held_back == 1);
    CHECK(stats.rows == 1);
    CHECK_THAT(p.sb->held_back()->front().second, Catch::Contains("unknown table 'extra'"));
    // Held back is held: the version is covered (the pending row is durable and passed
    // on), so it is not offered again each round (issue 19; it used to be).
    CHECK(p.sa->versions() == p.sb->versions());
    auto again = sync(*p.sa, *p.sb);
    CHECK(again.held_back == 0);
    CHECK(again.rows == 0);
    CHECK(p.sb->held_back()->size() == 1);
    p.b.exec("CREATE TABLE extra(id INTEGER PRIMARY KEY, v TEXT)");
    REQUIRE(p.sb->sync_table({"extra", {}}).ok());
    CHECK(dump(p.b_path, "extra") == std::vector<std::string>{"1|'one'"});
    CHECK(p.sb->held_back()->empty());
    sync(*p.sa, *p.sb);
    CHECK(p.sa->versions() == p.sb->versions());
}

TEST_CASE("dropping a synced column is refused by SQLite, naming peerlite's trigger") {
    Pair p("CREATE TABLE t(id TEXT PRIMARY KEY NOT NULL, a TEXT, b TEXT)");
    REQUIRE(p.sa->sync_table({"t", {}}).ok());
    CHECK(p.a.try_exec("ALTER TABLE t DROP COLUMN a") != SQLITE_OK);
    CHECK_THAT(std::string(sqlite3_errmsg(p.a.get())), Catch::Contains("_peerlite_upd_t"));
    CHECK(p.sa->capture().ok());
}
