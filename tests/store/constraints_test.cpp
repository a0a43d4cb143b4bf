// Rows that break a UNIQUE, CHECK or NOT NULL constraint once merged are set aside the same
// way on every node, whatever order the changes arrive in (store/constraints.cpp,
// docs/design/constraints.md).
#include <chrono>
#include <cmath>
#include <thread>

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
    Pair(const std::string& table, const schema::TableSpec& spec) {
        a.exec(table);
        b.exec(table);
        sa = open_store(a_path);
        sb = open_store(b_path);
        REQUIRE(sa->sync_table(spec).ok());
        REQUIRE(sb->sync_table(spec).ok());
    }
    void capture() {
        REQUIRE(sa->capture().ok());
        REQUIRE(sb->capture().ok());
    }
    void both_ways() {
        capture();
        sync(*sa, *sb);
        sync(*sb, *sa);
        sync(*sa, *sb);
    }
    // Same table, same rows set aside, same records.
    void check_same(const std::string& table) {
        CHECK(dump(a_path, table) == dump(b_path, table));
        CHECK(a.rows("SELECT k0, reason FROM _peerlite_aside_" + table + " ORDER BY k0") ==
              b.rows("SELECT k0, reason FROM _peerlite_aside_" + table + " ORDER BY k0"));
        CHECK(sa->versions() == sb->versions());
        auto da = sa->digests(false), db = sb->digests(false);
        REQUIRE(da.ok());
        REQUIRE(db.ok());
        CHECK(da->front().total == db->front().total);
        require_digests_consistent(*sa);
        require_digests_consistent(*sb);
    }
};

// Whether the first value `query` returns is the REAL -0.0.
bool negative_zero(PlainDb& db, const std::string& query) {
    sqlite3_stmt* stmt = nullptr;
    REQUIRE(sqlite3_prepare_v2(db.get(), query.c_str(), -1, &stmt, nullptr) == SQLITE_OK);
    bool negative = sqlite3_step(stmt) == SQLITE_ROW &&
                    sqlite3_column_type(stmt, 0) == SQLITE_FLOAT &&
                    std::signbit(sqlite3_column_double(stmt, 0));
    sqlite3_finalize(stmt);
    return negative;
}

void later() {
    std::this_thread::sleep_for(std::chrono::milliseconds(3)); // a later clock
}

} // namespace

TEST_CASE("the same UNIQUE value written on two nodes: the row created first keeps it, the "
          "other is set aside on both, and comes back once the value is free") {
    Pair p("CREATE TABLE users(id TEXT PRIMARY KEY NOT NULL, email TEXT UNIQUE, name TEXT)",
           {"users", {}});
    p.a.exec("INSERT INTO users VALUES ('u1', 'x@example.com', 'first')");
    later();
    p.b.exec("INSERT INTO users VALUES ('u2', 'x@example.com', 'second')");
    p.both_ways();
    CHECK(dump(p.a_path, "users") == std::vector<std::string>{"'u1'|'x@example.com'|'first'"});
    CHECK(p.b.rows("SELECT k0, reason FROM _peerlite_aside_users") ==
          std::vector<std::string>{"'u2'|'UNIQUE constraint failed: users.email'"});
    p.check_same("users");

    // Applied in the other order (b's set first) the outcome is the same: c gets b's
    // rows first, then a's.
    auto c_path = p.dir.file("c.db");
    PlainDb c(c_path);
    c.exec("CREATE TABLE users(id TEXT PRIMARY KEY NOT NULL, email TEXT UNIQUE, name TEXT)");
    auto sc = open_store(c_path);
    REQUIRE(sc->sync_table({"users", {}}).ok());
    sync(*p.sb, *sc);
    CHECK(dump(c_path, "users") == dump(p.a_path, "users"));
    CHECK(c.rows("SELECT k0 FROM _peerlite_aside_users") == std::vector<std::string>{"'u2'"});

    // A change to the row set aside merges into it there.
    p.a.exec("DELETE FROM users WHERE id = 'u1'");
    p.both_ways();
    CHECK(dump(p.a_path, "users") == std::vector<std::string>{"'u2'|'x@example.com'|'second'"});
    CHECK(p.a.scalar("SELECT count(*) FROM _peerlite_aside_users") == 0);
    p.check_same("users");
}

TEST_CASE("a row set aside on the node that wrote it keeps every later change made elsewhere") {
    Pair p("CREATE TABLE users(id TEXT PRIMARY KEY NOT NULL, email TEXT UNIQUE, name TEXT)",
           {"users", {}});
    p.a.exec("INSERT INTO users VALUES ('u1', 'x@example.com', 'first')");
    later();
    p.b.exec("INSERT INTO users VALUES ('u2', 'x@example.com', 'second')");
    p.b.exec("UPDATE users SET name = 'second, renamed' WHERE id = 'u2'");
    p.both_ways();
    // a renames u1's e-mail: u2 fits again, on both, with b's last name.
    p.a.exec("UPDATE users SET email = 'y@example.com' WHERE id = 'u1'");
    p.both_ways();
    CHECK(dump(p.b_path, "users") ==
          std::vector<std::string>{"'u1'|'y@example.com'|'first'",
                                   "'u2'|'x@example.com'|'second, renamed'"});
    p.check_same("users");
}

TEST_CASE("a merged row that breaks a two-column CHECK is set aside on both nodes, and a "
          "re-insert by an app puts it back everywhere") {
    const char* table = "CREATE TABLE ev(id TEXT PRIMARY KEY NOT NULL, starts INTEGER, ends "
                        "INTEGER, CHECK (starts <= ends))";
    Pair p(table, {"ev", {}});
    p.a.exec("INSERT INTO ev VALUES ('e', 10, 20)");
    p.both_ways();
    p.a.exec("UPDATE ev SET starts = 15 WHERE id = 'e'");
    p.b.exec("UPDATE ev SET ends = 12 WHERE id = 'e'");
    p.both_ways();
    CHECK(dump(p.a_path, "ev").empty());
    CHECK(p.a.rows("SELECT k0, reason FROM _peerlite_aside_ev") ==
          std::vector<std::string>{"'e'|'CHECK constraint failed: starts <= ends'"});
    p.check_same("ev");

    later();
    p.b.exec("INSERT INTO ev VALUES ('e', 15, 30)");
    p.both_ways();
    CHECK(dump(p.a_path, "ev") == std::vector<std::string>{"'e'|15|30"});
    CHECK(p.a.scalar("SELECT count(*) FROM _peerlite_aside_ev") == 0);
    p.check_same("ev");
}

TEST_CASE("a counter under CHECK (n >= 0) decremented on two nodes and restocked on one ends "
          "with the same total on both") {
    const char* table =
        "CREATE TABLE stock(id TEXT PRIMARY KEY NOT NULL, n INTEGER NOT NULL CHECK (n >= 0))";
    Pair p(table, {"stock", {{"n", crdt::MergeRule::counter}}});
    p.a.exec("INSERT INTO stock VALUES ('s', 1)");
    p.both_ways();
    p.a.exec("UPDATE stock SET n = n - 1 WHERE id = 's'");
    p.b.exec("UPDATE stock SET n = n - 1 WHERE id = 's'");
    p.both_ways();
    CHECK(dump(p.a_path, "stock").empty()); // -1 breaks the check: set aside on both
    p.check_same("stock");
    // The restock arrives (here through a row written again by b, as an app would).
    p.b.exec("INSERT INTO stock VALUES ('s', 4)");
    p.both_ways();
    CHECK(dump(p.a_path, "stock") == dump(p.b_path, "stock"));
    CHECK(dump(p.a_path, "stock").size() == 1);
    p.check_same("stock");
}

TEST_CASE("INSERT OR REPLACE that removes another row through a UNIQUE column is captured as "
          "that row's delete") {
    Pair p("CREATE TABLE users(id TEXT PRIMARY KEY NOT NULL, email TEXT UNIQUE, name TEXT)",
           {"users", {}});
    p.a.exec("INSERT INTO users VALUES ('u1', 'x@example.com', 'first')");
    p.both_ways();
    p.a.exec("INSERT OR REPLACE INTO users VALUES ('u2', 'x@example.com', 'second')");
    p.a.exec("INSERT OR IGNORE INTO users VALUES ('u3', 'x@example.com', 'ignored')");
    p.both_ways();
    CHECK(dump(p.b_path, "users") == std::vector<std::string>{"'u2'|'x@example.com'|'second'"});
    p.check_same("users");
    p.b.exec("UPDATE OR REPLACE users SET email = 'z' WHERE id = 'u2'");
    p.b.exec("INSERT INTO users VALUES ('u4', 'w', 'fourth')");
    p.b.exec("UPDATE OR REPLACE users SET email = 'z' WHERE id = 'u4'");
    p.both_ways();
    CHECK(dump(p.a_path, "users") == std::vector<std::string>{"'u4'|'z'|'fourth'"});
    p.check_same("users");
}

TEST_CASE("a row set aside by an apply keeps the local writes still picked up or logged for "
          "it") {
    Pair p("CREATE TABLE users(id TEXT PRIMARY KEY NOT NULL, email TEXT UNIQUE, name TEXT)",
           {"users", {}});
    p.b.exec("INSERT INTO users VALUES ('u0', 'x@example.com', 'older')");
    REQUIRE(p.sb->capture().ok());
    later();
    p.a.exec("INSERT INTO users VALUES ('u1', 'x@example.com', 'newer')");
    REQUIRE(p.sa->pick_up().ok()); // stamped in memory, not in the file
    p.a.exec("UPDATE users SET name = 'newer, renamed' WHERE id = 'u1'"); // in the log only
    sync(*p.sb, *p.sa); // u0 was created first: u1 is set aside on a
    CHECK(dump(p.a_path, "users") == std::vector<std::string>{"'u0'|'x@example.com'|'older'"});
    CHECK(p.a.scalar("SELECT count(*) FROM _peerlite_log_users") == 0);
    p.both_ways();
    CHECK(p.b.rows("SELECT k0 FROM _peerlite_aside_users") == std::vector<std::string>{"'u1'"});
    // Its values, the rename included, are what b holds set aside and what comes back.
    p.b.exec("DELETE FROM users WHERE id = 'u0'");
    p.both_ways();
    CHECK(dump(p.a_path, "users") ==
          std::vector<std::string>{"'u1'|'x@example.com'|'newer, renamed'"});
    p.check_same("users");
}

TEST_CASE("random histories on a table with a UNIQUE column and a two-column CHECK converge: "
          "the same table and the same rows set aside on every node") {
    const char* table = "CREATE TABLE u(id TEXT PRIMARY KEY NOT NULL, email TEXT UNIQUE, "
                        "a INTEGER, b INTEGER, n INTEGER NOT NULL DEFAULT 0, CHECK (a <= b))";
    const schema::TableSpec spec{"u", {{"n", crdt::MergeRule::counter}}};
    auto base = Catch::rngSeed();
    int set_aside_seen = 0;
    for (std::uint64_t round = 0; round < 10; ++round) {
        auto seed = base * 1000 + round;
        INFO("seed " << seed);
        std::mt19937_64 rng(seed);
        ScratchDir dir;
        struct Node {
            std::string path;
            std::unique_ptr<PlainDb> app;
            std::unique_ptr<store::Store> store;
        };
        std::vector<Node> nodes;
        for (int i = 0; i < 3; ++i) {
            Node n;
            n.path = dir.file("n" + std::to_string(i) + ".db");
            n.app = std::make_unique<PlainDb>(n.path);
            n.app->exec(table);
            n.store = open_store(n.path);
            REQUIRE(n.store->sync_table(spec).ok());
            nodes.push_back(std::move(n));
        }
        auto key = [&] {
            return "'k" + std::to_string(rng() % 6) + "'";
        };
        auto email = [&] {
            return "'e" + std::to_string(rng() % 3) + "'";
        };
        auto num = [&] {
            return std::to_string(rng() % 10);
        };
        for (int step = 0; step < 150; ++step) {
            auto& n = nodes[rng() % nodes.size()];
            // Local writes that break a constraint fail here, as for any app.
            switch (rng() % 8) {
            case 0:
            case 1:
                n.app->try_exec("INSERT INTO u(id, email, a, b) VALUES (" + key() + ", " + email() +
                                ", " + num() + ", " + num() + ")");
                break;
            case 2: n.app->exec("DELETE FROM u WHERE id = " + key()); break;
            case 3: n.app->try_exec("UPDATE u SET a = " + num() + " WHERE id = " + key()); break;
            case 4: n.app->try_exec("UPDATE u SET b = " + num() + " WHERE id = " + key()); break;
            case 5:
                n.app->try_exec("UPDATE u SET email = " + email() + " WHERE id = " + key());
                break;
            case 6: n.app->exec("UPDATE u SET n = n + " + num() + " WHERE id = " + key()); break;
            default:
                n.app->try_exec("INSERT OR REPLACE INTO u(id, email, a, b) VALUES (" + key() +
                                ", " + email() + ", 1, 2)");
            }
            if (rng() % 3 == 0) {
                auto& from = nodes[rng() % nodes.size()];
                auto& to = nodes[rng() % nodes.size()];
                if (&from == &to) {
                    continue;
                }
                sync(*from.store, *to.store, 1 + rng() % 4);
                if (rng() % 2) {
                    // Everything again, shuffled: duplicates in another order.
                    auto wanted = from.store->versions();
                    store::ReadCursor cursor;
                    auto all = from.store->read_changes(wanted, cursor, 1000);
                    REQUIRE(all.ok());
                    std::shuffle(all->rows.begin(), all->rows.end(), rng);
                    REQUIRE(to.store->apply(*all).ok());
                }
            }
        }
        for (int pass = 0; pass < 2; ++pass) {
            for (auto& from : nodes) {
                for (auto& to : nodes) {
                    if (&from != &to) {
                        REQUIRE(from.store->capture().ok());
                        sync(*from.store, *to.store);
                    }
                }
            }
        }
        auto rows = dump(nodes[0].path, "u");
        auto aside =
            nodes[0].app->rows("SELECT k0, vals, reason FROM _peerlite_aside_u ORDER BY k0");
        set_aside_seen += static_cast<int>(aside.size());
        for (auto& n : nodes) {
            REQUIRE(dump(n.path, "u") == rows);
            REQUIRE(n.app->rows("SELECT k0, vals, reason FROM _peerlite_aside_u ORDER BY k0") ==
                    aside);
            REQUIRE(n.store->versions() == nodes[0].store->versions());
            require_digests_consistent(*n.store);
            REQUIRE(n.store->digests(true).value() == nodes[0].store->digests(true).value());
        }
        // No two rows hold one e-mail, and every row meets the check: SQLite says so.
        CHECK(nodes[0].app->scalar("SELECT count(*) FROM u WHERE a > b") == 0);
    }
    CHECK(set_aside_seen > 0); // the histories did make rows that break a constraint
}

TEST_CASE("keys equal as SQLite compares them (NOCASE, -0.0 and 0.0) end as one row with one "
          "spelling on every node") {
    SECTION("COLLATE NOCASE") {
        Pair p("CREATE TABLE tags(name TEXT PRIMARY KEY COLLATE NOCASE NOT NULL, n INTEGER)",
               {"tags", {}});
        p.a.exec("INSERT INTO tags VALUES ('K1', 1)");
        later();
        p.b.exec("INSERT INTO tags VALUES ('k1', 2)");
        p.both_ways();
        CHECK(dump(p.a_path, "tags") == std::vector<std::string>{"'k1'|2"}); // the later insert
        p.check_same("tags");
        p.a.exec("UPDATE tags SET n = 3 WHERE name = 'K1'");
        p.both_ways();
        CHECK(dump(p.b_path, "tags") == std::vector<std::string>{"'k1'|3"});
        p.check_same("tags");
    }
    SECTION("keys -0.0 and 0.0 in a column without type affinity") {
        // SQLite keeps -0.0 in such a column (a REAL column stores it as 0.0), and takes
        // it for the same key as 0.0.
        Pair p("CREATE TABLE pts(x PRIMARY KEY NOT NULL, label TEXT)", {"pts", {}});
        p.a.exec("INSERT INTO pts VALUES (0.0, 'a')");
        later();
        p.b.exec("INSERT INTO pts VALUES (-0.0, 'b')");
        REQUIRE(negative_zero(p.b, "SELECT x FROM pts"));
        p.both_ways();
        CHECK(p.a.rows("SELECT label FROM pts") == std::vector<std::string>{"'b'"});
        CHECK(p.b.rows("SELECT label FROM pts") == std::vector<std::string>{"'b'"});
        CHECK_FALSE(negative_zero(p.a, "SELECT x FROM pts"));
        CHECK_FALSE(negative_zero(p.b, "SELECT x FROM pts")); // one spelling: 0.0
        p.check_same("pts");
    }
}
