// Picking local writes up without writing to the file (issue 21, docs/design/neighbour.md):
// the app's file is not written, the writes reach peers from memory, and a store that dies
// before writing them takes back exactly what it pushed.
#include <chrono>
#include <thread>

#include <catch2/catch.hpp>
#include <sqlite3.h>

#include "store_fixture.hpp"

using namespace peerlite;
using namespace peerlite::testing;

namespace {

const char* kTable = "CREATE TABLE t(id TEXT PRIMARY KEY NOT NULL, name TEXT, best INTEGER, "
                     "n INTEGER)";
const schema::TableSpec kSpec{
    "t", {{"best", crdt::MergeRule::max_wins}, {"n", crdt::MergeRule::counter}}};

struct Pair {
    ScratchDir dir;
    std::string a_path = dir.file("a.db"), b_path = dir.file("b.db");
    PlainDb a{a_path}, b{b_path};
    std::unique_ptr<store::Store> sa, sb;
    Pair() {
        a.exec(kTable);
        b.exec(kTable);
        sa = open_store(a_path);
        sb = open_store(b_path);
        REQUIRE(sa->sync_table(kSpec).ok());
        REQUIRE(sb->sync_table(kSpec).ok());
    }
    // a picks up its new writes and pushes them to b from memory, as the daemon does.
    void push_picked() {
        auto picked = sa->pick_up();
        INFO(picked.status().to_string());
        REQUIRE(picked.ok());
        auto wanted = sa->versions().minus(sb->versions());
        store::ReadCursor cursor;
        auto set = sa->read_picked_up(wanted, cursor, 1000, 1 << 20);
        REQUIRE(set.ok());
        REQUIRE(set->has_value());
        (*set)->covers = wanted;
        REQUIRE(sb->apply(**set).ok());
    }
    // Both hold the same records, stamps included: their digests agree.
    void check_same_records() {
        auto da = sa->digests(false), db = sb->digests(false);
        REQUIRE(da.ok());
        REQUIRE(db.ok());
        REQUIRE(da->size() == 1);
        CHECK(da->front().total == db->front().total);
    }
};

std::int64_t data_version(PlainDb& db) {
    return db.scalar("PRAGMA data_version");
}

} // namespace

TEST_CASE("a pick-up writes nothing to the file, and its writes reach a peer from memory") {
    Pair p;
    p.a.exec("INSERT INTO t VALUES ('k1', 'x', 5, 1)");
    auto before = data_version(p.a);
    auto records = p.a.scalar("SELECT count(*) FROM _peerlite_rows_t");
    p.push_picked();
    CHECK(data_version(p.a) == before); // no other connection committed
    CHECK(p.a.scalar("SELECT count(*) FROM _peerlite_rows_t") == records);
    CHECK(p.sa->picked_up_rows() == 1);
    CHECK(dump(p.b_path, "t") == std::vector<std::string>{"'k1'|'x'|5|1"});
    // Written into the file by the next capture; the content is the same.
    REQUIRE(p.sa->capture().ok());
    CHECK(p.sa->picked_up_rows() == 0);
    CHECK(p.a.scalar("SELECT count(*) FROM _peerlite_rows_t") == 1);
    sync(*p.sa, *p.sb);
    sync(*p.sb, *p.sa);
    CHECK(dump(p.a_path, "t") == dump(p.b_path, "t"));
    CHECK(p.sa->versions() == p.sb->versions());
    require_digests_consistent(*p.sa);
    require_digests_consistent(*p.sb);
}

TEST_CASE("a store that dies with pushed writes still in memory takes back exactly what it "
          "pushed: values, deletes, write-backs and stamps") {
    Pair p;
    p.a.exec("INSERT INTO t VALUES ('k1', 'x', 5, 1), ('k2', 'y', 1, 1)");
    p.push_picked();
    p.a.exec("UPDATE t SET best = 9, n = n + 2 WHERE id = 'k1'");
    p.push_picked();
    p.a.exec("UPDATE t SET best = 3 WHERE id = 'k1'"); // loses under max: written back to 9
    p.a.exec("DELETE FROM t WHERE id = 'k2'");
    p.push_picked();
    // Changed after the pushes and before the crash: a recomputation from these rows
    // would stamp different values than those pushed.
    p.a.exec("UPDATE t SET best = 20, name = 'later' WHERE id = 'k1'");
    p.a.exec("INSERT INTO t VALUES ('k2', 'again', 2, 0)");
    auto pushed = p.sa->versions();
    auto node = p.sa->node_id();
    p.sa.reset(); // the process dies: nothing picked up was written into the file
    p.sa = open_store(p.a_path);
    REQUIRE(p.sa->sync_table(kSpec).ok());
    CHECK(p.sa->versions().of(node).minus(pushed.of(node)).empty() == false); // the later writes
    // Every version b holds of a is one a holds: a's own writes, stamped as pushed.
    INFO("b holds through " << p.sb->versions().of(node).highest().to_string() << ", a "
                            << p.sa->versions().of(node).highest().to_string() << ", pushed "
                            << pushed.of(node).highest().to_string() << ", a's ranges "
                            << p.sa->versions().of(node).ranges().size());
    CHECK(p.sb->versions().of(node).minus(p.sa->versions().of(node)).empty());
    sync(*p.sa, *p.sb);
    sync(*p.sb, *p.sa);
    CHECK(dump(p.a_path, "t") == std::vector<std::string>{"'k1'|'later'|20|3", "'k2'|'again'|2|0"});
    CHECK(dump(p.a_path, "t") == dump(p.b_path, "t"));
    CHECK(p.sa->versions() == p.sb->versions());
    require_digests_consistent(*p.sa);
    require_digests_consistent(*p.sb);
    p.check_same_records();
}

TEST_CASE("changes from a peer are applied beside picked-up writes, which stay in memory "
          "unless a change meets one of them, and a crash after the apply still takes them "
          "back as pushed") {
    Pair p;
    p.a.exec("INSERT INTO t VALUES ('k1', 'x', 5, 1)");
    p.push_picked();
    // b's own row: it meets nothing picked up on a.
    p.b.exec("INSERT INTO t VALUES ('k2', 'y', 1, 1)");
    REQUIRE(p.sb->capture().ok());
    sync(*p.sb, *p.sa);
    CHECK(p.sa->picked_up_rows() == 1); // still in memory
    CHECK(p.a.scalar("SELECT count(*) FROM _peerlite_rows_t WHERE k0 = 'k1'") == 0);
    CHECK(p.a.scalar("SELECT count(*) FROM _peerlite_rows_t WHERE k0 = 'k2'") == 1);
    auto pushed = p.sa->versions();
    auto node = p.sa->node_id();
    p.sa.reset(); // dies with k1 picked up, after the apply committed
    p.sa = open_store(p.a_path);
    REQUIRE(p.sa->sync_table(kSpec).ok());
    CHECK(pushed.of(node).minus(p.sa->versions().of(node)).empty()); // k1's stamp held again
    CHECK(p.sb->versions().of(node).minus(p.sa->versions().of(node)).empty());
    sync(*p.sa, *p.sb);
    sync(*p.sb, *p.sa);
    CHECK(dump(p.a_path, "t") == std::vector<std::string>{"'k1'|'x'|5|1", "'k2'|'y'|1|1"});
    CHECK(dump(p.a_path, "t") == dump(p.b_path, "t"));
    CHECK(p.sa->versions() == p.sb->versions());
    p.check_same_records();

    // A change to a row picked up on a: the picked-up rows are written first.
    p.a.exec("UPDATE t SET name = 'a2' WHERE id = 'k2'");
    p.push_picked();
    CHECK(p.sa->picked_up_rows() == 1);
    p.b.exec("UPDATE t SET n = n + 4 WHERE id = 'k2'");
    REQUIRE(p.sb->capture().ok());
    sync(*p.sb, *p.sa);
    CHECK(p.sa->picked_up_rows() == 0);
    sync(*p.sa, *p.sb);
    CHECK(dump(p.a_path, "t") == dump(p.b_path, "t"));
    CHECK(dump(p.a_path, "t").back() == "'k2'|'a2'|1|5");
    require_digests_consistent(*p.sa);
    require_digests_consistent(*p.sb);
}

TEST_CASE("an apply leaves local writes still in the log there unless one meets its rows; "
          "one that meets is stamped before the change it meets") {
    Pair p;
    p.a.exec("INSERT INTO t VALUES ('k1', 'x', 5, 1)");
    p.push_picked(); // the journal is started: applies may run beside local writes
    p.a.exec("INSERT INTO t VALUES ('k2', 'local', 1, 1)"); // logged, not picked up
    p.b.exec("INSERT INTO t VALUES ('k3', 'y', 1, 1)");
    REQUIRE(p.sb->capture().ok());
    sync(*p.sb, *p.sa); // meets neither k1 nor k2
    CHECK(p.sa->picked_up_rows() == 1);
    CHECK(p.a.scalar("SELECT count(*) FROM _peerlite_rows_t WHERE k0 = 'k3'") == 1);

    {
        auto later = p.sa->pick_up(); // k2 was left in the log
        REQUIRE(later.ok());
        CHECK(later->log_entries == 1);
    }
    // Once more, with a change that meets it: a writes k3 after b did, and b's arrives
    // while a's is still in a's log. a's is picked up first and wins, being later; left in
    // the log, b's change would overwrite the row and a's write would be taken up with
    // b's value, lost.
    p.b.exec("UPDATE t SET name = 'remote', best = 9, n = n + 2 WHERE id = 'k3'");
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    p.a.exec("UPDATE t SET name = 'local' WHERE id = 'k3'");
    REQUIRE(p.sb->capture().ok());
    sync(*p.sb, *p.sa);
    CHECK(p.a.scalar("SELECT count(*) FROM _peerlite_log_t") == 0);
    CHECK(p.sa->picked_up_rows() == 0); // written, as a row of the change met one
    REQUIRE(p.sa->capture().ok());
    sync(*p.sa, *p.sb);
    sync(*p.sb, *p.sa);
    auto rows = dump(p.a_path, "t");
    CHECK(rows == dump(p.b_path, "t"));
    CHECK(rows == std::vector<std::string>{"'k1'|'x'|5|1", "'k2'|'local'|1|1", "'k3'|'local'|9|3"});
    CHECK(p.sa->versions() == p.sb->versions());
    p.check_same_records();
    require_digests_consistent(*p.sa);
    require_digests_consistent(*p.sb);
}

TEST_CASE("a journal beside a file restored from before its pick-ups is ignored: the writes "
          "it stamped are asked back from the peers that got them") {
    Pair p;
    p.a.exec("INSERT INTO t VALUES ('k0', 'base', 1, 1)");
    REQUIRE(p.sa->capture().ok());
    sync(*p.sa, *p.sb);
    auto backup = p.dir.file("backup.db");
    p.a.exec("VACUUM INTO '" + backup + "'");
    p.a.exec("INSERT INTO t VALUES ('k1', 'x', 5, 1)");
    p.push_picked(); // b holds k1; a has it only in memory and in its journal
    auto node = p.sa->node_id();
    p.sa.reset();
    {
        // Restored in place with the backup API while no store has it open.
        PlainDb from(backup);
        auto* copy = sqlite3_backup_init(p.a.get(), "main", from.get(), "main");
        REQUIRE(copy != nullptr);
        REQUIRE(sqlite3_backup_step(copy, -1) == SQLITE_DONE);
        REQUIRE(sqlite3_backup_finish(copy) == SQLITE_OK);
    }
    p.sa = open_store(p.a_path);
    REQUIRE(p.sa->sync_table(kSpec).ok());
    REQUIRE(p.sa->rolled_back().has_value()); // the pushed stamps count as lost here
    CHECK(p.sa->picked_up_rows() == 0);
    CHECK(dump(p.a_path, "t") == std::vector<std::string>{"'k0'|'base'|1|1"});
    sync(*p.sb, *p.sa); // k1 comes back from b
    sync(*p.sa, *p.sb);
    CHECK(dump(p.a_path, "t") == dump(p.b_path, "t"));
    CHECK(dump(p.a_path, "t").size() == 2);
    CHECK(p.sa->versions() == p.sb->versions());
    CHECK(p.sa->versions().of(node).covers(p.sb->versions().of(node).ranges().back()));
    require_digests_consistent(*p.sa);
}

TEST_CASE("regression: a schema change while writes are picked up keeps the table's digests "
          "equal to its records") {
    Pair p;
    p.a.exec("INSERT INTO t VALUES ('k1', 'x', 5, 1)");
    REQUIRE(p.sa->capture().ok());
    p.a.exec("UPDATE t SET n = n + 1 WHERE id = 'k1'");
    REQUIRE(p.sa->pick_up().ok());
    REQUIRE(p.sa->picked_up_rows() == 1);
    // Following the table replaces its state: the picked-up row's digest change must be
    // saved before, or the stored digests no longer match the records.
    p.a.exec("ALTER TABLE t ADD COLUMN note TEXT NOT NULL DEFAULT 'none'");
    REQUIRE(p.sa->capture().ok());
    CHECK(p.sa->picked_up_rows() == 0);
    require_digests_consistent(*p.sa);
}
