// Node ids derived from the owner's key (issue 20): a file with an owner carries the id its
// key and salt derive; a file made before (a random id) takes it at open, and nothing it
// wrote under the old id is lost or left unsynced, a rollback's gap included.
#include <filesystem>

#include <catch2/catch.hpp>

#include "store_fixture.hpp"

using namespace peerlite;
using namespace peerlite::testing;

namespace {
constexpr const char* kTable = "CREATE TABLE t(id TEXT PRIMARY KEY NOT NULL, v TEXT)";
constexpr const char* kKey = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";

store::StoreOptions owned() {
    store::StoreOptions o;
    o.owner = kKey;
    return o;
}
} // namespace

TEST_CASE("a file with an owner carries the id its key and salt derive, for good") {
    ScratchDir dir;
    auto path = dir.file("a.db");
    PlainDb(path).exec(kTable);
    crdt::NodeId id;
    {
        auto s = open_store(path, owned());
        id = s->node_id();
        CHECK_FALSE(s->id_salt().is_nil());
        CHECK(id == crdt::NodeId::derive(kKey, s->id_salt()));
        CHECK(s->former_id().is_nil()); // a new file: derived from the start
    }
    auto s = open_store(path, owned());
    CHECK(s->node_id() == id);
    CHECK(s->former_id().is_nil());

    // Two files one key runs (a daemon with two databases) get two ids.
    auto other = dir.file("b.db");
    PlainDb(other).exec(kTable);
    CHECK(open_store(other, owned())->node_id() != id);
}

TEST_CASE("a file made before ids were derived takes its derived id; what it wrote under the "
          "old one stays and syncs") {
    ScratchDir dir;
    auto a_path = dir.file("a.db"), b_path = dir.file("b.db");
    PlainDb(a_path).exec(kTable);
    PlainDb(b_path).exec(kTable);
    auto sb = open_store(b_path);
    REQUIRE(sb->sync_table({"t", {}}).ok());
    crdt::NodeId old_id;
    crdt::VersionVector before;
    {
        auto sa = open_store(a_path); // no owner: a random id, as before
        old_id = sa->node_id();
        REQUIRE(sa->sync_table({"t", {}}).ok());
        PlainDb(a_path).exec("INSERT INTO t VALUES ('k1', 'synced under the old id')");
        REQUIRE(sa->capture().ok());
        sync(*sa, *sb);
        // Written under the old id and not yet synced when the node stops.
        PlainDb(a_path).exec("INSERT INTO t VALUES ('k2', 'captured, not yet synced')");
        REQUIRE(sa->capture().ok());
        before = sa->versions();
    }
    PlainDb(a_path).exec("INSERT INTO t VALUES ('k3', 'written while the node was down')");

    auto sa = open_store(a_path, owned());
    CHECK(sa->former_id() == old_id);
    CHECK(sa->node_id() == crdt::NodeId::derive(kKey, sa->id_salt()));
    CHECK(sa->node_id() != old_id);
    CHECK(sa->versions().of(old_id) == before.of(old_id)); // the old id's changes stay
    REQUIRE(sa->capture().ok());
    CHECK_FALSE(sa->versions().of(sa->node_id()).empty()); // k3, under the new id
    sync(*sa, *sb);
    sync(*sb, *sa);
    auto expected = std::vector<std::string>{"'k1'|'synced under the old id'",
                                             "'k2'|'captured, not yet synced'",
                                             "'k3'|'written while the node was down'"};
    CHECK(dump(a_path, "t") == expected);
    CHECK(dump(b_path, "t") == expected);
    CHECK(sa->versions() == sb->versions());

    // The next open keeps the derived id.
    auto id = sa->node_id();
    sa.reset();
    sa = open_store(a_path, owned());
    CHECK(sa->node_id() == id);
    CHECK(sa->former_id().is_nil());
}

TEST_CASE("a rolled-back file taking its derived id gets the old id's lost changes back as any "
          "origin's") {
    ScratchDir dir;
    auto a_path = dir.file("a.db"), b_path = dir.file("b.db"), backup = dir.file("backup.db");
    PlainDb(a_path).exec(kTable);
    PlainDb(b_path).exec(kTable);
    auto sb = open_store(b_path);
    REQUIRE(sb->sync_table({"t", {}}).ok());
    crdt::NodeId old_id;
    {
        auto sa = open_store(a_path);
        old_id = sa->node_id();
        REQUIRE(sa->sync_table({"t", {}}).ok());
        PlainDb(a_path).exec("INSERT INTO t VALUES ('k1', 'in the backup')");
        REQUIRE(sa->capture().ok());
        PlainDb(a_path).exec("VACUUM INTO '" + backup + "'");
        PlainDb(a_path).exec("INSERT INTO t VALUES ('k2', 'after the backup')");
        REQUIRE(sa->capture().ok());
        sync(*sa, *sb);
    }
    for (const auto* suffix : {"", "-wal", "-shm"}) {
        std::filesystem::remove(a_path + suffix);
    }
    std::filesystem::copy_file(backup, a_path);

    auto sa = open_store(a_path, owned());
    CHECK(sa->former_id() == old_id);
    REQUIRE(sa->rolled_back());
    CHECK_FALSE(sa->own_gap()); // the gap is the old id's: an ordinary origin's now
    CHECK(sb->versions().of(old_id).highest() > sa->versions().of(old_id).highest());
    PlainDb(a_path).exec("INSERT INTO t VALUES ('k3', 'after the restore')");
    REQUIRE(sa->capture().ok());
    sync(*sb, *sa);
    sync(*sa, *sb);
    auto expected = std::vector<std::string>{"'k1'|'in the backup'", "'k2'|'after the backup'",
                                             "'k3'|'after the restore'"};
    CHECK(dump(a_path, "t") == expected);
    CHECK(dump(b_path, "t") == expected);
    CHECK(sa->versions() == sb->versions());
}
