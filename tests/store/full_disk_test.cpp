// A replica whose disk fills up in the middle of a merge: the apply that cannot be written
// fails with an error that says so, nothing half-written stays, and once there is room
// again the next sync completes it.
#include <cstring>

#include <catch2/catch.hpp>
#include <sqlite3.h>

#include "store_fixture.hpp"

using namespace peerlite;
using namespace peerlite::testing;

namespace {

// The disk is "full" for every connection to a file whose name contains "full": SQLite
// fails a write that would grow it past max_page_count with SQLITE_FULL, exactly as when
// the file system has no space left. Set through an auto-extension so the store's own
// connection gets it too, with no seam in peerlite.
int full_disk_pages = 0;

int limit_pages(sqlite3* db, const char**, const sqlite3_api_routines*) {
    const char* name = sqlite3_db_filename(db, "main");
    if (full_disk_pages > 0 && name && std::strstr(name, "full")) {
        auto pragma = "PRAGMA max_page_count = " + std::to_string(full_disk_pages);
        sqlite3_exec(db, pragma.c_str(), nullptr, nullptr, nullptr);
    }
    return SQLITE_OK;
}

const char* kTable = "CREATE TABLE t(id INTEGER PRIMARY KEY NOT NULL, body TEXT)";

} // namespace

TEST_CASE("a merge that fills the disk fails with an error naming it and loses nothing") {
    ScratchDir dir;
    PlainDb src(dir.file("src.db")), dst(dir.file("full.db"));
    src.exec(kTable);
    dst.exec(kTable);
    src.exec("WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 5000) "
             "INSERT INTO t SELECT i, printf('%0300d', i) FROM c");
    dst.exec("INSERT INTO t VALUES (-1, 'local row')");
    auto source = open_store(dir.file("src.db"));
    REQUIRE(source->sync_table({"t", {}}).ok());
    {
        auto replica = open_store(dir.file("full.db"));
        REQUIRE(replica->sync_table({"t", {}}).ok());
    }
    // Room for the metadata and a few hundred rows, not for 5,000.
    full_disk_pages = static_cast<int>(dst.scalar("PRAGMA page_count")) + 60;
    sqlite3_auto_extension(reinterpret_cast<void (*)()>(limit_pages));
    auto replica = open_store(dir.file("full.db"));

    store::ReadCursor cursor;
    auto wanted = source->versions().minus(replica->versions());
    Status failure;
    while (!cursor.done && failure.ok()) {
        auto part = source->read_changes(wanted, cursor, 2000);
        REQUIRE(part.ok());
        part->covers = wanted;
        part->complete = cursor.done;
        auto stats = replica->apply(*part);
        if (!stats) {
            failure = stats.status();
        }
    }
    REQUIRE_FALSE(failure.ok());
    CHECK(failure.code() == Code::io_error);
    CHECK_THAT(failure.message(), Catch::Contains("full"));
    // Each apply transaction is whole: rows present have their metadata, the local row
    // survived, and the version vector claims nothing the file lacks.
    auto present = dst.scalar("SELECT count(*) FROM t");
    CHECK(present < 5001);
    CHECK(dst.rows("SELECT body FROM t WHERE id = -1") == std::vector<std::string>{"'local row'"});
    CHECK(dst.scalar("SELECT count(*) FROM _peerlite_rows_t") == present);

    // Space again: the next sync completes, and both files agree.
    full_disk_pages = 0;
    replica.reset();
    sqlite3_reset_auto_extension();
    replica = open_store(dir.file("full.db"));
    sync(*source, *replica);
    sync(*replica, *source);
    CHECK(dump(dir.file("src.db"), "t") == dump(dir.file("full.db"), "t"));
    CHECK(dst.scalar("SELECT count(*) FROM t") == 5001);
}
