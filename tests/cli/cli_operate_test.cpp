// The commands that act, as a real process: resolve, snapshot, verify, changes --follow,
// keygen and init.
#include <atomic>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <sys/stat.h>
#include <thread>

#include <catch2/catch.hpp>

#include "cli_fixture.hpp"

using namespace peerlite;
using namespace peerlite::testing;
using Catch::Contains;

namespace {

std::string first_line(const std::string& path) {
    std::ifstream in(path);
    std::string line;
    std::getline(in, line);
    return line;
}

} // namespace

TEST_CASE("resolve --keep-loser makes the loser a new write that wins on the other replica") {
    Replicas x;
    x.converge();
    auto conflicts = nlohmann::json::parse(run_cli({"conflicts", x.a_path, "--json"}).out);
    REQUIRE(conflicts.size() == 1);
    auto id = std::to_string(conflicts[0]["id"].get<std::int64_t>());
    x.a.reset(); // the CLI writes through its own connection, as beside a daemon
    x.b.reset();

    auto wrong_cell = run_cli({"resolve", x.a_path, "items", "k1", "best", "--keep-loser", id});
    CHECK(wrong_cell.status == 2);
    CHECK_THAT(wrong_cell.err, Contains("not items[k1].best"));
    auto r =
        run_cli({"resolve", x.a_path, "items", "k1", "title", "--keep-loser", id, "--by", "alice"});
    REQUIRE(r.status == 0);
    CHECK_THAT(r.out, Contains("items[k1].title = 'from a'"));
    CHECK_THAT(r.out, Contains("marked 1 conflict(s) resolved by alice"));

    auto after = nlohmann::json::parse(run_cli({"conflicts", x.a_path, "--json"}).out);
    REQUIRE(after.size() == 1);
    CHECK(after[0]["resolved"]["by"] == "alice");
    CHECK_THAT(run_cli({"conflicts", x.a_path}).out, Contains("resolved "));
    CHECK_THAT(run_cli({"history", x.a_path, "items", "k1"}).out, Contains("resolved by alice"));

    // Both replicas on the real clock now (the resolution was stamped with it).
    auto a = open_store(x.a_path);
    auto b = open_store(x.b_path);
    sync(*a, *b);
    CHECK(PlainDb(x.b_path).rows("SELECT title FROM items WHERE id = 'k1'") ==
          std::vector<std::string>{"'from a'"});
    sync(*b, *a);
    CHECK(run_cli({"diff", x.a_path, x.b_path}).status == 0);
}

TEST_CASE("resolve refuses what could not win everywhere, and unknown columns") {
    Replicas x;
    x.converge();
    x.a.reset();
    auto counter = run_cli({"resolve", x.a_path, "items", "k1", "qty", "--value", "10"});
    CHECK(counter.status == 2);
    CHECK_THAT(counter.err, Contains("is a counter"));
    auto lower = run_cli({"resolve", x.a_path, "items", "k1", "best", "--value", "1"});
    CHECK(lower.status == 2);
    CHECK_THAT(lower.err, Contains("would lose to the current 5"));
    CHECK(run_cli({"resolve", x.a_path, "items", "k1", "best", "--value", "9"}).status == 0);
    CHECK(PlainDb(x.a_path).scalar("SELECT best FROM items WHERE id = 'k1'") == 9);
    auto column = run_cli({"resolve", x.a_path, "items", "k1", "nope", "--value", "1"});
    CHECK(column.status == 2);
    CHECK_THAT(column.err, Contains("no synced column 'nope'"));
    auto deleted = run_cli({"resolve", x.a_path, "items", "k2", "title", "--value", "x"});
    CHECK(deleted.status == 2);
    CHECK_THAT(deleted.err, Contains("re-insert"));
    CHECK(run_cli({"resolve", x.a_path, "items", "k1", "title"}).status == 2);
    CHECK(
        run_cli({"resolve", x.a_path, "items", "k1", "title", "--value", "v", "--keep-loser", "1"})
            .status == 2);
}

TEST_CASE("a snapshot taken beside a running store gets a new node id and syncs both ways") {
    Replicas x;
    x.converge();
    auto out = x.dir.file("snap.db");
    // An uncaptured write in the source: the snapshot must stamp it first, not copy it raw.
    PlainDb(x.a_path).exec("UPDATE items SET qty = qty + 10 WHERE id = 'k1'");
    // The running node stamps captured writes as a daemon does (every few milliseconds);
    // the snapshot, which may not open a second node on the file, waits for it.
    std::atomic<bool> stop{false};
    std::thread node([&] {
        while (!stop) {
            (void)x.a->capture();
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
    });
    auto r = run_cli({"snapshot", x.a_path, out});
    stop = true;
    node.join();
    REQUIRE(r.status == 0);
    CHECK(run_cli({"snapshot", x.a_path, out}).status == 2); // never overwrites
    x.a.reset(); // one node per file: closed before it is opened again, on the system clock
    x.a = open_store(x.a_path);

    auto snap = open_store(out);
    CHECK(snap->node_id() != x.a->node_id());
    CHECK(snap->node_id() != x.b->node_id());
    CHECK(snap->versions().of(x.a->node_id()) == x.a->versions().of(x.a->node_id()));
    CHECK(snap->versions().of(snap->node_id()).empty());
    CHECK(dump(out, "items") == dump(x.a_path, "items"));
    CHECK(PlainDb(out).scalar("SELECT qty FROM items WHERE id = 'k1'") == 16);

    // Nothing of a's is sent back; a write on the copy reaches a, counted once.
    CHECK(snap->versions().minus(x.a->versions()).empty());
    PlainDb(out).exec("UPDATE items SET qty = qty + 1, title = 'from snap' WHERE id = 'k1'");
    sync(*snap, *x.a);
    CHECK(PlainDb(x.a_path).rows("SELECT title, qty FROM items WHERE id = 'k1'") ==
          std::vector<std::string>{"'from snap'|17"});
    sync(*x.a, *snap);
    CHECK(dump(out, "items") == dump(x.a_path, "items"));
    CHECK(run_cli({"verify", out}).status == 0);
}

TEST_CASE("verify is clean on merged replicas and reports a missing record or trigger") {
    Replicas x;
    x.converge();
    auto clean = run_cli({"verify", x.a_path});
    CHECK(clean.status == 0);
    CHECK_THAT(clean.out, Contains("clean"));
    CHECK(run_cli({"verify", x.b_path}).status == 0);
    x.a.reset();
    x.b.reset();

    PlainDb(x.a_path).exec("DELETE FROM _peerlite_rows_items WHERE k0 = 'k1'");
    auto no_record = run_cli({"verify", x.a_path});
    CHECK(no_record.status == 1);
    CHECK_THAT(no_record.out, Contains("table items, key k1: row has no record"));

    PlainDb(x.b_path).exec("DROP TRIGGER _peerlite_upd_items");
    auto no_trigger = run_cli({"verify", x.b_path, "--json"});
    CHECK(no_trigger.status == 1);
    auto j = nlohmann::json::parse(no_trigger.out);
    CHECK(j["clean"] == false);
    REQUIRE(j["findings"].size() == 1);
    CHECK_THAT(j["findings"][0]["what"].get<std::string>(), Contains("_peerlite_upd_items"));

    // A tombstone whose row reappeared without being captured is a violation too.
    PlainDb db(x.b_path);
    db.exec("CREATE TRIGGER _peerlite_upd_items AFTER UPDATE ON items BEGIN SELECT 1; END");
    CHECK_THAT(run_cli({"verify", x.b_path}).out, Contains("differs from what this build"));
}

TEST_CASE("changes --follow streams new changes as they are captured and stops on SIGTERM") {
    Replicas x;
    x.converge();
    auto existing = lines(run_cli({"changes", x.a_path, "--json"}).out).size();
    CliProcess follow({"changes", x.a_path, "--follow", "--json", "--interval", "20"});
    for (std::size_t i = 0; i < existing; ++i) {
        REQUIRE_FALSE(follow.next_line().empty());
    }
    PlainDb writer(x.a_path);
    writer.exec("INSERT INTO items VALUES ('k7', 'live', 0, 0)");
    REQUIRE(x.a->capture().ok()); // what the daemon does within milliseconds
    auto line = follow.next_line();
    REQUIRE_FALSE(line.empty());
    auto e = nlohmann::json::parse(line);
    CHECK(e["op"] == "insert");
    CHECK(e["key_text"] == "k7");
    // No read transaction is held between polls: the WAL checkpoints completely.
    auto checkpoint = writer.rows("PRAGMA wal_checkpoint(TRUNCATE)");
    REQUIRE(checkpoint.size() == 1);
    CHECK(checkpoint[0].rfind("0|", 0) == 0);
    CHECK(follow.stop(SIGTERM) == 0);
}

TEST_CASE("changes --follow ends cleanly when its reader goes away") {
    Replicas x;
    x.converge();
    auto r = std::system(("'" + std::string(std::getenv("PEERLITE")) + "' changes '" + x.a_path +
                          "' --follow | head -1 > /dev/null")
                             .c_str());
    CHECK(WEXITSTATUS(r) == 0); // returns at all: the follower noticed the closed pipe
}

TEST_CASE("keygen writes a private secret key and refuses to overwrite; init writes a config") {
    ScratchDir dir;
    auto prefix = dir.file("alpha");
    auto r = run_cli({"keygen", prefix});
    REQUIRE(r.status == 0);
    CHECK(lines(r.out).size() == 1);
    CHECK(lines(r.out)[0].size() == 40);
    CHECK(first_line(prefix + ".pub") == lines(r.out)[0]);
    struct stat st {};
    REQUIRE(stat((prefix + ".key").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    auto again = run_cli({"keygen", prefix});
    CHECK(again.status == 2);
    CHECK_THAT(again.err, Contains("refusing to overwrite"));
    CHECK(first_line(prefix + ".pub") == lines(r.out)[0]);

    auto config = dir.file("alpha.toml");
    auto init = run_cli({"init", "--name", "alpha", "--database", "app.db", config});
    REQUIRE(init.status == 0);
    std::ifstream in(config);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    CHECK_THAT(text, Contains("[node]\nname = \"alpha\""));
    CHECK_THAT(text, Contains("secret_key_file = \"alpha.key\""));
    CHECK_THAT(text, Contains("trusted_keys = [ \"" + lines(r.out)[0] + "\" ]"));
    CHECK_THAT(text, Contains("[[database]]\npath = \"app.db\""));
    CHECK_THAT(text, Contains("[[database.table]]"));
    CHECK(run_cli({"init", "--name", "alpha", config}).status == 2);

    auto beta = dir.file("beta.toml");
    REQUIRE(run_cli({"init", "--name", "beta", beta}).status == 0);
    CHECK(std::filesystem::exists(dir.file("beta.key")));
    CHECK_THAT(first_line(beta), Contains("peerlite node config"));
}

TEST_CASE("a conflict log made before the resolution columns is read, then migrated by resolve") {
    Replicas x;
    x.converge();
    x.a.reset();
    x.b.reset();
    PlainDb(x.a_path).exec("ALTER TABLE _peerlite_conflicts DROP COLUMN resolved_at;"
                           "ALTER TABLE _peerlite_conflicts DROP COLUMN resolved_by");
    auto old = nlohmann::json::parse(run_cli({"conflicts", x.a_path, "--json"}).out);
    REQUIRE(old.size() == 1);
    CHECK(old[0]["resolved"].is_null());
    REQUIRE(
        run_cli({"resolve", x.a_path, "items", "k1", "title", "--value", "chosen", "--by", "bob"})
            .status == 0);
    auto now = nlohmann::json::parse(run_cli({"conflicts", x.a_path, "--json"}).out);
    CHECK(now[0]["resolved"]["by"] == "bob");
    CHECK(PlainDb(x.a_path).rows("SELECT title FROM items WHERE id = 'k1'") ==
          std::vector<std::string>{"'chosen'"});
}
