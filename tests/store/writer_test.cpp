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
