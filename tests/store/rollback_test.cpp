// A file put back from a backup (issue 22): the node sees, from what its lock file
// recorded, that its own changes after the backup are gone from the file, leaves them out
// of its claims, and gets them back from a peer.
#include <filesystem>

#include <catch2/catch.hpp>

#include "store_fixture.hpp"

using namespace peerlite;
using namespace peerlite::testing;

namespace {
constexpr const char* kTable = "CREATE TABLE t(id TEXT PRIMARY KEY NOT NULL, v TEXT)";

void put(const std::string& path, const std::string& sql) {
    PlainDb(path).exec(sql);
}
} // namespace

TEST_CASE("a file restored from a backup gets its own later changes back from a peer, and "
          "claims none of them meanwhile") {
    ScratchDir dir;
    auto a_path = dir.file("a.db"), b_path = dir.file("b.db"), backup = dir.file("backup.db");
    put(a_path, kTable);
    put(b_path, kTable);
    auto sb = open_store(b_path);
    REQUIRE(sb->sync_table({"t", {}}).ok());
    crdt::NodeId a_id;
    {
        auto sa = open_store(a_path);
        a_id = sa->node_id();
        REQUIRE(sa->sync_table({"t", {}}).ok());
        put(a_path, "INSERT INTO t VALUES ('k1', 'in the backup')");
        REQUIRE(sa->capture().ok());
        sync(*sa, *sb);
        put(a_path, "VACUUM INTO '" + backup + "'");
        put(a_path, "INSERT INTO t VALUES ('k2', 'after the backup')");
        REQUIRE(sa->capture().ok());
        CHECK_FALSE(sa->rolled_back());
        sync(*sa, *sb);
    }
    // The backup is put back while no node has the file open; an app writes before the
    // node starts again.
    for (const auto* suffix : {"", "-wal", "-shm"}) {
        std::filesystem::remove(a_path + suffix);
    }
    std::filesystem::copy_file(backup, a_path);
    put(a_path, "INSERT INTO t VALUES ('k3', 'after the restore')");

    auto sa = open_store(a_path);
    REQUIRE(sa->node_id() == a_id);
    REQUIRE(sa->rolled_back());
    CHECK(sa->rolled_back()->held_through < sa->rolled_back()->had_through);
    REQUIRE(sa->own_gap());
    REQUIRE(sa->capture().ok());
    // k2's clock is b's to give back: a does not claim it, so a peer still sends it.
    CHECK_FALSE(sa->versions().of(a_id).covers(*sa->own_gap()));
    CHECK(sb->versions().of(a_id).covers(*sa->own_gap()));
    sync(*sb, *sa);
    sync(*sa, *sb);
    auto expected = std::vector<std::string>{"'k1'|'in the backup'", "'k2'|'after the backup'",
                                             "'k3'|'after the restore'"};
    CHECK(dump(a_path, "t") == expected);
    CHECK(dump(b_path, "t") == expected);
    CHECK_FALSE(sa->own_gap());
    CHECK(sa->versions() == sb->versions());

    // Caught up: the next open finds nothing rolled back.
    sa.reset();
    sa = open_store(a_path);
    CHECK_FALSE(sa->rolled_back());
    CHECK_FALSE(sa->own_gap());
}

TEST_CASE("a file restored with nobody left holding its later changes reports the rollback and "
          "goes on writing after them") {
    ScratchDir dir;
    auto a_path = dir.file("a.db"), backup = dir.file("backup.db");
    put(a_path, kTable);
    crdt::Hlc before;
    {
        auto sa = open_store(a_path);
        REQUIRE(sa->sync_table({"t", {}}).ok());
        put(a_path, "VACUUM INTO '" + backup + "'");
        put(a_path, "INSERT INTO t VALUES ('lost', 'never left this node')");
        REQUIRE(sa->capture().ok());
        before = sa->versions().of(sa->node_id()).highest();
    }
    for (const auto* suffix : {"", "-wal", "-shm"}) {
        std::filesystem::remove(a_path + suffix);
    }
    std::filesystem::copy_file(backup, a_path);
    auto sa = open_store(a_path);
    REQUIRE(sa->rolled_back());
    CHECK(sa->rolled_back()->had_through == before);
    put(a_path, "INSERT INTO t VALUES ('new', 'after the restore')");
    REQUIRE(sa->capture().ok());
    // New changes are stamped after every clock the lost ones used.
    CHECK(sa->versions().of(sa->node_id()).highest() > before);
}
