#include <csignal>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "store_fixture.hpp"

using namespace peerlite;
using namespace peerlite::testing;

namespace {
const char* kTable = "CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, n INTEGER)";
}

TEST_CASE("an apply killed midway leaves a consistent file that completes on retry") {
    ScratchDir dir;
    auto src_path = dir.file("src.db");
    auto dst_path = dir.file("dst.db");
    PlainDb src(src_path), dst(dst_path);
    src.exec(kTable);
    dst.exec(kTable);
    src.exec("WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 20000) "
             "INSERT INTO t SELECT i, 'row ' || i, i FROM c");
    auto source = open_store(src_path);
    REQUIRE(source->sync_table({"t", {}}).ok());
    {
        auto d = open_store(dst_path);
        REQUIRE(d->sync_table({"t", {}}).ok());
    }
    auto wanted = source->versions();
    store::ReadCursor cursor;
    wire::ChangeSet set;
    while (!cursor.done) {
        auto part = source->read_changes(wanted, cursor, 5000);
        REQUIRE(part.ok());
        for (auto& r : part->rows) {
            set.rows.push_back(std::move(r));
        }
    }
    set.covers = wanted;
    REQUIRE(set.rows.size() == 20000);

    pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        // The child applies in small transactions until it is killed.
        store::StoreOptions options;
        options.apply_batch_rows = 20;
        auto s = store::Store::open(dst_path, options);
        if (s.ok()) {
            (void)(*s)->apply(set);
        }
        _exit(0);
    }
    // Kill it once some, but not all, rows are in.
    std::int64_t seen = 0;
    for (int i = 0; i < 20000 && seen == 0; ++i) {
        usleep(200);
        seen = dst.scalar("SELECT count(*) FROM t");
    }
    kill(child, SIGKILL);
    int status = 0;
    waitpid(child, &status, 0);
    REQUIRE(WIFSIGNALED(status));
    auto applied = dst.scalar("SELECT count(*) FROM t");
    INFO("rows applied before the kill: " << applied);
    CHECK(applied > 0);
    CHECK(applied < 20000);
    CHECK(dst.rows("PRAGMA integrity_check") == std::vector<std::string>{"'ok'"});
    // Every row that made it has its record, and no record lacks its row.
    CHECK(dst.scalar("SELECT count(*) FROM t WHERE id NOT IN (SELECT k0 FROM _peerlite_rows_t)") ==
          0);
    CHECK(dst.scalar("SELECT count(*) FROM _peerlite_rows_t WHERE k0 NOT IN (SELECT id FROM t)") ==
          0);
    // The coverage claim was not recorded, so the next sync sends everything again.
    auto d = open_store(dst_path);
    CHECK_FALSE(
        d->versions().of(source->node_id()).covers(wanted.of(source->node_id()).ranges().front()));
    sync(*source, *d);
    CHECK(dump(dst_path, "t") == dump(src_path, "t"));
    CHECK(d->versions() == source->versions());
}

TEST_CASE("decided conflicts are pruned after the retention period") {
    ScratchDir dir;
    std::int64_t now = 1'900'000'000'000;
    store::StoreOptions options;
    options.wall = [&] {
        return std::chrono::milliseconds(now);
    };
    options.conflict_retention = std::chrono::hours(1);
    options.max_clock_drift = std::chrono::hours(24 * 365 * 100); // wall time is simulated
    PlainDb a(dir.file("a.db")), b(dir.file("b.db"));
    a.exec(kTable);
    b.exec(kTable);
    auto sa = open_store(dir.file("a.db"), options);
    auto sb = open_store(dir.file("b.db"), options);
    REQUIRE(sa->sync_table({"t", {}}).ok());
    REQUIRE(sb->sync_table({"t", {}}).ok());
    a.exec("INSERT INTO t VALUES (1, 'a', 0)");
    sync(*sa, *sb);
    a.exec("UPDATE t SET name = 'from a'");
    b.exec("UPDATE t SET name = 'from b'");
    REQUIRE(sb->capture().ok());
    sync(*sa, *sb);
    CHECK(sb->conflicts()->size() == 1);
    now += 2 * 3'600'000;
    a.exec("UPDATE t SET n = 1");
    sync(*sa, *sb);
    CHECK(sb->conflicts()->empty());
}
