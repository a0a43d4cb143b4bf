// Constraints under merge (issue 23), on real peerlited processes with plain SQLite
// connections: each case ends with both nodes holding the same table and the same rows
// set aside, no refusal loop in either log, `peerlite conflicts` showing what was set
// aside, `peerlite resolve` settling it everywhere, and `peerlite verify` clean.
#include <string>

#include <catch2/catch.hpp>

#include "daemon_fixture.hpp"
#include "mesh_fixture.hpp"

using namespace peerlite;
using namespace peerlite::testing;
using namespace std::chrono_literals;

namespace {

constexpr const char* kSchema[] = {
    "CREATE TABLE users(id TEXT PRIMARY KEY NOT NULL, email TEXT UNIQUE, name TEXT)",
    "CREATE TABLE ev(id TEXT PRIMARY KEY NOT NULL, starts INTEGER, ends INTEGER, "
    "CHECK (starts <= ends))",
    "CREATE TABLE stock(id TEXT PRIMARY KEY NOT NULL, n INTEGER NOT NULL CHECK (n >= 0))",
    "CREATE TABLE tags(name TEXT PRIMARY KEY COLLATE NOCASE NOT NULL, n INTEGER)",
    "CREATE TABLE pts(x PRIMARY KEY NOT NULL, label TEXT)",
};
constexpr const char* kTables = "[[database.table]]\nname = \"users\"\n"
                                "[[database.table]]\nname = \"ev\"\n"
                                "[[database.table]]\nname = \"stock\"\n"
                                "rules = { n = \"counter\" }\n"
                                "[[database.table]]\nname = \"tags\"\n"
                                "[[database.table]]\nname = \"pts\"\n";

std::string db_path(const Trio& t, const std::string& node) {
    return t.dir.file(node + ".db");
}

// Two nodes, a and b, on files made (and written, if the test likes) before the daemons
// start; a starts first.
struct Pair {
    Trio t;
    PlainDb a{db_path(t, "a")};
    PlainDb b{db_path(t, "b")};
    std::optional<Daemon> da, db;

    Pair() {
        for (auto* conn : {&a, &b}) {
            for (const char* table : kSchema) {
                conn->exec(table);
            }
        }
    }
    void start() {
        DatabaseConfig ca{"a.db"};
        ca.tables = kTables;
        ca.listen = "tcp://127.0.0.1:" + std::to_string(free_port()); // kept across restarts
        da.emplace(t.write("a", ca), t.dir.file("a.log"));
        REQUIRE(da->ready());
        DatabaseConfig cb{"b.db"};
        cb.tables = kTables;
        cb.seeds = {{da->endpoint(), t.pub(0)}};
        db.emplace(t.write("b", cb), t.dir.file("b.log"));
        REQUIRE(db->ready());
    }
    void stop() {
        CHECK(da->stop() == 0);
        CHECK(db->stop() == 0);
    }
    void restart() {
        da->restart();
        REQUIRE(da->ready());
        db->restart();
        REQUIRE(db->ready());
    }
    std::vector<std::string> aside(PlainDb& conn, const std::string& table) {
        return conn.rows("SELECT k0, reason FROM _peerlite_aside_" + table + " ORDER BY k0");
    }
    // Both hold `rows` in `table`, and the same rows set aside.
    bool hold(const std::string& table, const std::vector<std::string>& rows) {
        return dump(db_path(t, "a"), table) == rows && dump(db_path(t, "b"), table) == rows &&
               aside(a, table) == aside(b, table);
    }
    // `peerlite conflicts --set-aside --json` on node `node`.
    nlohmann::json set_aside(const std::string& node) {
        auto [code, out] =
            run_binary(peerlite_binary(), "conflicts " + db_path(t, node) + " --set-aside --json",
                       t.dir.file(node + ".aside.json"));
        REQUIRE(code == 0);
        return nlohmann::json::parse(out);
    }
    void resolve(const std::string& node, const std::string& args) {
        auto [code, out] = run_binary(peerlite_binary(), "resolve " + db_path(t, node) + " " + args,
                                      t.dir.file(node + ".resolve.out"));
        INFO(out);
        REQUIRE(code == 0);
    }
    void check_clean() {
        for (const auto& node : {"a", "b"}) {
            auto [code, out] = run_binary(peerlite_binary(), "verify " + db_path(t, node),
                                          t.dir.file(std::string(node) + ".verify.out"));
            INFO(out);
            CHECK(code == 0);
        }
        // A refusal loop shows as rejected changes logged again and again.
        for (auto* d : {&*da, &*db}) {
            CHECK(d->log().find("constraint failed") == std::string::npos);
        }
    }
};

} // namespace

TEST_CASE("UNIQUE: the same e-mail signed up on both nodes under different ids ends with the "
          "first sign-up in the table and the second set aside on both, until settled") {
    Pair p;
    p.a.exec("INSERT INTO users VALUES ('u1', 'x@example.com', 'Ann')");
    p.b.exec("INSERT INTO users VALUES ('u2', 'x@example.com', 'Bob')");
    p.start(); // a's daemon first: its sign-up is stamped first
    REQUIRE(Mesh::eventually(
        [&] {
            return p.hold("users", {"'u1'|'x@example.com'|'Ann'"}) &&
                   p.aside(p.b, "users").size() == 1;
        },
        20s));
    for (const auto& node : {"a", "b"}) {
        auto aside = p.set_aside(node);
        REQUIRE(aside.size() == 1);
        CHECK(aside[0]["key"][0] == "u2");
        CHECK(aside[0]["constraint"] == "UNIQUE constraint failed: users.email");
        CHECK(aside[0]["row"]["name"] == "Bob");
        CHECK(aside[0]["held_by"][0]["key"][0] == "u1");
        CHECK(aside[0]["held_by"][0]["row"]["name"] == "Ann");
    }
    p.check_clean();

    // Settled on either node with a new e-mail: both hold both users.
    p.resolve("a", "users u2 --put-back --set email=bob@example.com");
    REQUIRE(Mesh::eventually(
        [&] {
            return p.hold("users",
                          {"'u1'|'x@example.com'|'Ann'", "'u2'|'bob@example.com'|'Bob'"}) &&
                   p.aside(p.a, "users").empty();
        },
        20s));
    p.check_clean();
}

TEST_CASE("UNIQUE: INSERT OR REPLACE that removes another row through the UNIQUE column "
          "removes it on every node") {
    Pair p;
    p.start();
    p.a.exec("INSERT INTO users VALUES ('u1', 'x@example.com', 'Ann')");
    REQUIRE(Mesh::eventually([&] { return p.hold("users", {"'u1'|'x@example.com'|'Ann'"}); }, 20s));
    p.a.exec("INSERT OR REPLACE INTO users VALUES ('u2', 'x@example.com', 'Bob')");
    REQUIRE(Mesh::eventually([&] { return p.hold("users", {"'u2'|'x@example.com'|'Bob'"}); }, 20s));
    p.check_clean();
}

TEST_CASE("CHECK: one node moves the start past the end the other moved: the merged row is "
          "set aside on both, and put back with a valid range everywhere") {
    Pair p;
    p.start();
    p.a.exec("INSERT INTO ev VALUES ('e', 10, 20)");
    REQUIRE(Mesh::eventually([&] { return p.hold("ev", {"'e'|10|20"}); }, 20s));
    p.stop(); // both offline: the two moves are concurrent
    p.a.exec("UPDATE ev SET starts = 15 WHERE id = 'e'");
    p.b.exec("UPDATE ev SET ends = 12 WHERE id = 'e'");
    p.restart();
    REQUIRE(
        Mesh::eventually([&] { return p.hold("ev", {}) && p.aside(p.a, "ev").size() == 1; }, 20s));
    auto aside = p.set_aside("b");
    REQUIRE(aside.size() == 1);
    CHECK(aside[0]["constraint"] == "CHECK constraint failed: starts <= ends");
    CHECK(aside[0]["row"]["starts"] == 15);
    CHECK(aside[0]["row"]["ends"] == 12);
    p.check_clean();

    p.resolve("b", "ev e --put-back --set ends=30");
    REQUIRE(Mesh::eventually(
        [&] { return p.hold("ev", {"'e'|15|30"}) && p.aside(p.a, "ev").empty(); }, 20s));
    p.check_clean();
}

TEST_CASE("CHECK: a counter under CHECK (n >= 0) decremented on both nodes and restocked on "
          "one ends with the same total on both") {
    Pair p;
    p.start();
    p.a.exec("INSERT INTO stock VALUES ('s', 1)");
    REQUIRE(Mesh::eventually([&] { return p.hold("stock", {"'s'|1"}); }, 20s));
    p.stop();
    p.a.exec("UPDATE stock SET n = n - 1 WHERE id = 's'");
    p.a.exec("UPDATE stock SET n = n + 5 WHERE id = 's'"); // the restock
    p.b.exec("UPDATE stock SET n = n - 1 WHERE id = 's'");
    p.restart();
    REQUIRE(Mesh::eventually([&] { return p.hold("stock", {"'s'|4"}); }, 20s));
    p.check_clean();

    // Both take the last four at once: -4 breaks the check, on both; dropping it settles.
    p.stop();
    p.a.exec("UPDATE stock SET n = n - 4 WHERE id = 's'");
    p.b.exec("UPDATE stock SET n = n - 4 WHERE id = 's'");
    p.restart();
    REQUIRE(Mesh::eventually(
        [&] { return p.hold("stock", {}) && p.aside(p.a, "stock").size() == 1; }, 20s));
    CHECK(p.set_aside("a")[0]["row"]["n"] == -4);
    p.resolve("a", "stock s --drop");
    REQUIRE(Mesh::eventually([&] { return p.hold("stock", {}) && p.aside(p.a, "stock").empty(); },
                             20s));
    p.check_clean();
}

TEST_CASE("keys: 'K1' and 'k1' under a COLLATE NOCASE key, and keys 0.0 and -0.0, end as "
          "one row with one spelling on both nodes") {
    Pair p;
    p.a.exec("INSERT INTO tags VALUES ('K1', 1)");
    p.a.exec("INSERT INTO pts VALUES (0.0, 'from a')");
    p.b.exec("INSERT INTO tags VALUES ('k1', 2)");
    p.b.exec("INSERT INTO pts VALUES (-0.0, 'from b')");
    REQUIRE(p.b.scalar("SELECT count(*) FROM pts WHERE atan2(x, -1) < 0") == 1);
    p.start(); // b's rows are stamped later: they win
    REQUIRE(Mesh::eventually(
        [&] {
            // 0.0 and -0.0 both print 0.0: the sign is checked below.
            return p.hold("tags", {"'k1'|2"}) &&
                   p.a.rows("SELECT label FROM pts") == std::vector<std::string>{"'from b'"} &&
                   p.b.rows("SELECT label FROM pts") == std::vector<std::string>{"'from b'"};
        },
        20s));
    for (auto* conn : {&p.a, &p.b}) {
        // atan2(-0.0, -1) is -pi, atan2(0.0, -1) is pi: the sign of a zero, in SQL.
        CHECK(conn->scalar("SELECT count(*) FROM pts WHERE atan2(x, -1) < 0") == 0);
    }
    p.a.exec("UPDATE tags SET n = 3 WHERE name = 'K1'");
    REQUIRE(Mesh::eventually([&] { return p.hold("tags", {"'k1'|3"}); }, 20s));
    p.check_clean();
}
