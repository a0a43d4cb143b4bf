#include <catch2/catch.hpp>

#include <peerlite/store/writer.hpp>

#include "store_fixture.hpp"

using namespace peerlite;
using namespace peerlite::testing;

namespace {

const char* kTable =
    "CREATE TABLE t(id TEXT PRIMARY KEY NOT NULL, name TEXT COLLATE NOCASE, qty INTEGER)";

struct Setup {
    ScratchDir dir;
    std::string a_path = dir.file("a.db"), b_path = dir.file("b.db");
    PlainDb a{a_path}, b{b_path};
    std::unique_ptr<store::Store> sa, sb;
    std::unique_ptr<store::Writer> writer;
    Setup() {
        a.exec(kTable);
        b.exec(kTable);
        sa = open_store(a_path);
        sb = open_store(b_path);
        REQUIRE(sa->sync_table({"t", {{"qty", crdt::MergeRule::counter}}}).ok());
        REQUIRE(sb->sync_table({"t", {{"qty", crdt::MergeRule::counter}}}).ok());
        auto w = store::Writer::open(a_path);
        REQUIRE(w.ok());
        writer = std::move(w).value();
    }
    Status write(const std::string& sql) {
        return writer->transaction([&](sqlite3* db) {
            char* error = nullptr;
            if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
                std::string message = error ? error : "?";
                sqlite3_free(error);
                return Status(Code::invalid_argument, message);
            }
            return Status::success();
        });
    }
};

} // namespace

TEST_CASE("writes through the embedded writer are captured and sync") {
    Setup s;
    REQUIRE(s.write("INSERT INTO t VALUES ('k1', 'one', 1), ('k2', 'two', 2)").ok());
    REQUIRE(
        s.write("UPDATE t SET qty = qty + 5 WHERE id = 'k1'; DELETE FROM t WHERE id = 'k2'").ok());
    REQUIRE(s.write("UPDATE t SET id = 'k3' WHERE id = 'k1'").ok());
    CHECK(s.a.scalar("SELECT count(*) FROM _peerlite_log_t") == 3); // one row per transaction
    sync(*s.sa, *s.sb);
    CHECK(dump(s.b_path, "t") == std::vector<std::string>{"'k3'|'one'|6"});
    CHECK(dump(s.a_path, "t") == dump(s.b_path, "t"));
}

TEST_CASE("a writer transaction that fails leaves no change behind") {
    Setup s;
    auto st = s.writer->transaction([](sqlite3* db) {
        sqlite3_exec(db, "INSERT INTO t VALUES ('k', 'x', 1)", nullptr, nullptr, nullptr);
        return Status(Code::invalid_argument, "the app changed its mind");
    });
    CHECK(st.message() == "the app changed its mind");
    CHECK(s.a.scalar("SELECT count(*) FROM t") == 0);
    CHECK(s.a.scalar("SELECT count(*) FROM _peerlite_log_t") == 0);
    REQUIRE(s.write("INSERT INTO t VALUES ('k', 'y', 1)").ok());
    CHECK(s.a.scalar("SELECT count(*) FROM _peerlite_log_t") == 1);
}

TEST_CASE("a write outside a writer transaction is refused rather than lost") {
    Setup s;
    int rc = sqlite3_exec(s.writer->handle(), "INSERT INTO t VALUES ('k', 'x', 1)", nullptr,
                          nullptr, nullptr);
    CHECK(rc != SQLITE_OK);
    CHECK(s.a.scalar("SELECT count(*) FROM t") == 0);
    // The connection stays usable.
    CHECK(s.write("INSERT INTO t VALUES ('k', 'x', 1)").ok());
}

TEST_CASE("the writer follows a column added while it is open") {
    Setup s;
    REQUIRE(s.write("INSERT INTO t VALUES ('k', 'x', 1)").ok());
    s.a.exec("ALTER TABLE t ADD COLUMN note TEXT");
    s.b.exec("ALTER TABLE t ADD COLUMN note TEXT");
    REQUIRE(s.write("UPDATE t SET note = 'hello' WHERE id = 'k'").ok());
    sync(*s.sa, *s.sb);
    CHECK(dump(s.b_path, "t") == std::vector<std::string>{"'k'|'x'|1|'hello'"});
}

TEST_CASE("writer and plain connections writing the same row keep their order") {
    Setup s;
    s.a.exec("INSERT INTO t VALUES ('k', 'x', 1)");
    REQUIRE(s.write("DELETE FROM t WHERE id = 'k'").ok());
    s.a.exec("INSERT INTO t VALUES ('k', 'again', 2)");
    sync(*s.sa, *s.sb);
    CHECK(dump(s.b_path, "t") == std::vector<std::string>{"'k'|'again'|2"});
}

TEST_CASE("a case-only change to a NOCASE column is captured") {
    Setup s;
    s.a.exec("INSERT INTO t VALUES ('k', 'apple', 1)");
    sync(*s.sa, *s.sb);
    s.a.exec("UPDATE t SET name = 'APPLE' WHERE id = 'k'");
    REQUIRE(s.write("UPDATE t SET name = 'Apple' WHERE id = 'k'").ok());
    sync(*s.sa, *s.sb);
    CHECK(dump(s.b_path, "t") == std::vector<std::string>{"'k'|'Apple'|1"});
}

TEST_CASE("writes undone by ROLLBACK TO a savepoint are not captured; released ones are") {
    Setup s;
    REQUIRE(
        s.write("INSERT INTO t VALUES ('k1', 'one', 1), ('k2', 'two', 2), ('k4', 'four', 4)").ok());
    // The regression: the delete of k1 was captured although ROLLBACK TO undid it, so the
    // row stayed here and was deleted on every other node.
    REQUIRE(s.write("SAVEPOINT a; DELETE FROM t WHERE id = 'k1'; UPDATE t SET qty = qty + 10 "
                    "WHERE id = 'k2'; rollback transaction to savepoint \"A\"; "
                    "INSERT INTO t VALUES ('k3', 'three', 3); RELEASE a")
                .ok());
    // Nested: an inner savepoint released into an outer one that is then rolled back,
    // and a rolled-back savepoint that goes on and writes again (ROLLBACK TO keeps it).
    REQUIRE(s.write("SAVEPOINT outer; SAVEPOINT inner; DELETE FROM t WHERE id = 'k2'; "
                    "RELEASE inner; ROLLBACK TO outer; UPDATE t SET name = 'kept' WHERE id = "
                    "'k4'; SAVEPOINT again; UPDATE t SET id = 'k9' WHERE id = 'k4'; "
                    "/* a comment */ ROLLBACK TO SAVEPOINT again; DELETE FROM t WHERE id = 'k3'; "
                    "RELEASE SAVEPOINT outer")
                .ok());
    CHECK(dump(s.a_path, "t") ==
          std::vector<std::string>{"'k1'|'one'|1", "'k2'|'two'|2", "'k4'|'kept'|4"});
    sync(*s.sa, *s.sb);
    CHECK(dump(s.b_path, "t") == dump(s.a_path, "t"));
    // A savepoint opened as the transaction itself (outside transaction()) is refused at
    // COMMIT like any write made outside it.
    auto* db = s.writer->handle();
    CHECK(sqlite3_exec(db, "SAVEPOINT solo; DELETE FROM t WHERE id = 'k1'; RELEASE solo", nullptr,
                       nullptr, nullptr) != SQLITE_OK);
    CHECK(s.a.scalar("SELECT count(*) FROM t WHERE id = 'k1'") == 1);
    CHECK(sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr) == SQLITE_OK);
    REQUIRE(s.write("DELETE FROM t WHERE id = 'k1'").ok()); // and the writer goes on
    sync(*s.sa, *s.sb);
    CHECK(dump(s.b_path, "t") == std::vector<std::string>{"'k2'|'two'|2", "'k4'|'kept'|4"});
}
