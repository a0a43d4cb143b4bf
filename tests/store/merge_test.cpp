#include <catch2/catch.hpp>

#include "store_fixture.hpp"

using namespace peerlite;
using namespace peerlite::testing;
using crdt::MergeRule;

namespace {

const char* kTable =
    "CREATE TABLE t(id TEXT PRIMARY KEY NOT NULL, name TEXT, qty INTEGER, hi INTEGER, lo INTEGER)";
schema::TableSpec spec() {
    return {
        "t",
        {{"qty", MergeRule::counter}, {"hi", MergeRule::max_wins}, {"lo", MergeRule::min_wins}}};
}

struct Node {
    std::string path;
    std::unique_ptr<PlainDb> app;
    std::unique_ptr<store::Store> store;
};

std::vector<Node> make_nodes(ScratchDir& dir, int n, store::StoreOptions options = {}) {
    std::vector<Node> nodes;
    for (int i = 0; i < n; ++i) {
        Node node;
        node.path = dir.file("n" + std::to_string(i) + ".db");
        node.app = std::make_unique<PlainDb>(node.path);
        node.app->exec(kTable);
        node.store = open_store(node.path, options);
        REQUIRE(node.store->sync_table(spec()).ok());
        nodes.push_back(std::move(node));
    }
    return nodes;
}

void sync_all(std::vector<Node>& nodes) {
    for (int round = 0; round < 2; ++round) {
        for (std::size_t i = 0; i < nodes.size(); ++i) {
            for (std::size_t j = 0; j < nodes.size(); ++j) {
                if (i != j) {
                    sync(*nodes[i].store, *nodes[j].store);
                }
            }
        }
    }
}

void require_identical(std::vector<Node>& nodes) {
    auto expected = dump(nodes[0].path, "t");
    for (auto& n : nodes) {
        REQUIRE(dump(n.path, "t") == expected);
    }
}

} // namespace

TEST_CASE("the later write wins a concurrent update of one cell") {
    ScratchDir dir;
    TestWall wall;
    auto nodes = make_nodes(dir, 2, wall.options());
    nodes[0].app->exec("INSERT INTO t VALUES ('k', 'first', 0, 0, 0)");
    sync_all(nodes);
    nodes[0].app->exec("UPDATE t SET name = 'from a' WHERE id = 'k'");
    REQUIRE(nodes[0].store->capture().ok());
    wall.advance(); // b's clock is later
    nodes[1].app->exec("UPDATE t SET name = 'from b' WHERE id = 'k'");
    sync_all(nodes);
    require_identical(nodes);
    CHECK(dump(nodes[0].path, "t").front() == "'k'|'from b'|0|0|0");
    auto conflicts = nodes[0].store->conflicts();
    REQUIRE(conflicts.ok());
    REQUIRE(conflicts->size() == 1);
    CHECK(conflicts->front().column == "name");
    CHECK(conflicts->front().winner_value == crdt::Value::text("from b"));
    CHECK(conflicts->front().loser_value == crdt::Value::text("from a"));
    CHECK(conflicts->front().winner.node == nodes[1].store->node_id());
    CHECK_THAT(store::reason_text(conflicts->front()), Catch::Contains("later clock"));
}

TEST_CASE("concurrent counter increments on three nodes all count") {
    ScratchDir dir;
    auto nodes = make_nodes(dir, 3);
    nodes[0].app->exec("INSERT INTO t VALUES ('k', 'x', 10, 0, 0)");
    sync_all(nodes);
    nodes[0].app->exec("UPDATE t SET qty = qty + 5 WHERE id = 'k'");
    nodes[1].app->exec("UPDATE t SET qty = qty + 7 WHERE id = 'k'");
    nodes[2].app->exec("UPDATE t SET qty = qty - 2 WHERE id = 'k'");
    nodes[1].app->exec("UPDATE t SET qty = qty + 1 WHERE id = 'k'");
    sync_all(nodes);
    require_identical(nodes);
    CHECK(nodes[2].app->scalar("SELECT qty FROM t WHERE id = 'k'") == 21);
}

TEST_CASE(
    "max and min columns keep the greatest and smallest value, even against a later local write") {
    ScratchDir dir;
    auto nodes = make_nodes(dir, 2);
    nodes[0].app->exec("INSERT INTO t VALUES ('k', 'x', 0, 5, 5)");
    sync_all(nodes);
    nodes[0].app->exec("UPDATE t SET hi = 9, lo = 1 WHERE id = 'k'");
    nodes[1].app->exec("UPDATE t SET hi = 7, lo = 3 WHERE id = 'k'");
    sync_all(nodes);
    require_identical(nodes);
    CHECK(dump(nodes[1].path, "t").front() == "'k'|'x'|0|9|1");
    // A later local write of a smaller value to a max column is undone by the rule.
    nodes[1].app->exec("UPDATE t SET hi = 2 WHERE id = 'k'");
    REQUIRE(nodes[1].store->capture().ok());
    CHECK(nodes[1].app->scalar("SELECT hi FROM t WHERE id = 'k'") == 9);
    sync_all(nodes);
    require_identical(nodes);
}

TEST_CASE("a delete racing a concurrent update wins on every node") {
    ScratchDir dir;
    TestWall wall;
    auto nodes = make_nodes(dir, 2, wall.options());
    nodes[0].app->exec("INSERT INTO t VALUES ('k', 'x', 1, 1, 1)");
    sync_all(nodes);
    nodes[0].app->exec("DELETE FROM t WHERE id = 'k'");
    REQUIRE(nodes[0].store->capture().ok());
    wall.advance(); // the update is even later
    nodes[1].app->exec("UPDATE t SET name = 'edited' WHERE id = 'k'");
    sync_all(nodes);
    require_identical(nodes);
    CHECK(dump(nodes[0].path, "t").empty());
    auto conflicts = nodes[1].store->conflicts();
    REQUIRE(conflicts.ok());
    REQUIRE_FALSE(conflicts->empty());
    CHECK(store::rule_text(conflicts->front()) == "delete-wins");
    CHECK(conflicts->front().loser_value == crdt::Value::text("edited"));
    // A re-insert after seeing the delete brings the row back with its new values only.
    nodes[1].app->exec("INSERT INTO t VALUES ('k', 'again', 2, 2, 2)");
    sync_all(nodes);
    require_identical(nodes);
    CHECK(dump(nodes[0].path, "t").front() == "'k'|'again'|2|2|2");
}

TEST_CASE("the same change set applied twice changes nothing") {
    ScratchDir dir;
    auto nodes = make_nodes(dir, 2);
    nodes[0].app->exec("INSERT INTO t VALUES ('a', 'x', 1, 1, 1), ('b', 'y', 2, 2, 2)");
    REQUIRE(nodes[0].store->capture().ok());
    auto wanted = nodes[0].store->versions();
    store::ReadCursor cursor;
    auto set = nodes[0].store->read_changes(wanted, cursor);
    REQUIRE(set.ok());
    set->covers = wanted;
    auto first = nodes[1].store->apply(*set);
    REQUIRE(first.ok());
    CHECK(first->won > 0);
    auto before = dump(nodes[1].path, "t");
    auto again = nodes[1].store->apply(*set);
    REQUIRE(again.ok());
    CHECK(again->won == 0);
    CHECK(dump(nodes[1].path, "t") == before);
    CHECK(nodes[1].app->scalar("SELECT count(*) FROM _peerlite_log_t") == 0); // not re-captured
}

TEST_CASE("random writes on three files converge under random orders with duplicates and "
          "failed applies") {
    auto base = Catch::rngSeed();
    store::StoreOptions options;
    options.busy_timeout_ms = 5; // an app holding the lock fails an apply at once
    int failed = 0;
    for (std::uint64_t round = 0; round < 12; ++round) {
        auto seed = base * 1000 + round;
        INFO("seed " << seed);
        std::mt19937_64 rng(seed);
        ScratchDir dir;
        auto nodes = make_nodes(dir, 3, options);
        auto key = [&] {
            return "'k" + std::to_string(rng() % 6) + "'";
        };
        for (int step = 0; step < 120; ++step) {
            auto& n = nodes[rng() % nodes.size()];
            auto v = std::to_string(rng() % 20);
            switch (rng() % 7) {
            case 0:
                n.app->try_exec("INSERT INTO t VALUES (" + key() + ", 'n" + v + "', " + v + ", " +
                                v + ", " + v + ")");
                break;
            case 1: n.app->exec("DELETE FROM t WHERE id = " + key()); break;
            case 2: n.app->exec("UPDATE t SET qty = qty + " + v + " WHERE id = " + key()); break;
            case 3:
                n.app->exec("UPDATE t SET hi = " + v + ", lo = " + v + " WHERE id = " + key());
                break;
            case 4: n.app->try_exec("UPDATE t SET id = " + key() + " WHERE id = " + key()); break;
            default: n.app->exec("UPDATE t SET name = 'v" + v + "' WHERE id = " + key());
            }
            if (rng() % 4 == 0) {
                // A random partial exchange, sometimes repeated (duplicates), in pages of
                // random size (so the set arrives in many small change sets).
                auto& from = nodes[rng() % nodes.size()];
                auto& to = nodes[rng() % nodes.size()];
                if (&from != &to && rng() % 5 == 0) {
                    // An app holds the receiver's write lock: the apply fails, changes
                    // nothing and claims nothing; a later exchange brings the same rows.
                    REQUIRE(from.store->capture().ok());
                    auto wanted = from.store->versions().minus(to.store->versions());
                    store::ReadCursor cursor;
                    auto set = from.store->read_changes(wanted, cursor, 1000);
                    REQUIRE(set.ok());
                    auto versions = to.store->versions();
                    auto rows = dump(to.path, "t");
                    PlainDb holder(to.path);
                    holder.exec("BEGIN IMMEDIATE");
                    auto st = to.store->apply(*set);
                    holder.exec("ROLLBACK");
                    if (!st.ok()) {
                        ++failed;
                        INFO(st.status().to_string());
                        REQUIRE(st.status().code() == Code::busy);
                        REQUIRE(to.store->versions() == versions);
                        REQUIRE(dump(to.path, "t") == rows);
                    } else {
                        REQUIRE(set->rows.empty()); // nothing to write: no lock needed
                    }
                } else if (&from != &to) {
                    sync(*from.store, *to.store, 1 + rng() % 4);
                    if (rng() % 2) {
                        auto wanted = from.store->versions();
                        store::ReadCursor cursor;
                        auto all = from.store->read_changes(wanted, cursor, 1000);
                        REQUIRE(all.ok());
                        std::shuffle(all->rows.begin(), all->rows.end(), rng);
                        REQUIRE(to.store->apply(*all).ok());
                    }
                }
            }
        }
        sync_all(nodes);
        require_identical(nodes);
        auto digests = nodes[0].store->digests(true);
        REQUIRE(digests.ok());
        for (auto& n : nodes) {
            REQUIRE(n.store->versions() == nodes[0].store->versions());
            // Kept in step with every capture and apply, and equal where content is.
            require_digests_consistent(*n.store);
            REQUIRE(n.store->digests(true).value() == *digests);
        }
    }
    CHECK(failed > 0);
}

TEST_CASE("content digests find a divergence the version vectors cannot see, and repair heals it") {
    ScratchDir dir;
    auto nodes = make_nodes(dir, 2);
    for (int i = 0; i < 40; ++i) {
        nodes[0].app->exec("INSERT INTO t VALUES ('k" + std::to_string(i) + "', 'n', " +
                           std::to_string(i) + ", 1, 1)");
    }
    REQUIRE(nodes[0].store->capture().ok());
    // Node 1 receives k7 with a counter total that node 0 never wrote, under node 0's
    // real stamp (a faulty peer's doing); the honest sync after it skips k7 as covered.
    auto wanted = nodes[0].store->versions();
    store::ReadCursor cursor;
    auto set = nodes[0].store->read_changes(wanted, cursor);
    REQUIRE(set.ok());
    auto forged = *set;
    forged.rows.clear();
    for (auto& row : set->rows) {
        if (row.key == std::vector{crdt::Value::text("k7")}) {
            forged.rows.push_back(row);
        }
    }
    REQUIRE(forged.rows.size() == 1);
    REQUIRE(forged.rows[0].counters.size() == 1);
    forged.rows[0].counters[0].write.total = 1000;
    REQUIRE(nodes[1].store->apply(forged).ok());
    sync(*nodes[0].store, *nodes[1].store);
    REQUIRE(nodes[0].store->versions() == nodes[1].store->versions());
    REQUIRE(dump(nodes[0].path, "t") != dump(nodes[1].path, "t"));

    auto d0 = nodes[0].store->digests(false);
    auto d1 = nodes[1].store->digests(false);
    REQUIRE(d0.ok());
    REQUIRE(d1.ok());
    REQUIRE(d0->size() == 1);
    CHECK(d0->front().buckets.empty()); // totals only, unless asked
    CHECK(d0->front().total != d1->front().total);

    // One bucket differs; repairing both ways merges the two states by the usual rules
    // (at one stamp, the larger total), so both end with the same content.
    CHECK(repair(*nodes[0].store, *nodes[1].store) == 1);
    CHECK(repair(*nodes[1].store, *nodes[0].store) == 1);
    require_identical(nodes);
    CHECK(repair(*nodes[0].store, *nodes[1].store) == 0);
    for (auto& n : nodes) {
        require_digests_consistent(*n.store);
    }
}

TEST_CASE("a file whose digests were kept one row per bucket gets them recomputed in one row per "
          "table when a node opens it") {
    ScratchDir dir;
    auto nodes = make_nodes(dir, 1);
    nodes[0].app->exec("INSERT INTO t VALUES ('a', 'n', 1, 1, 1), ('b', 'n', 2, 2, 2)");
    REQUIRE(nodes[0].store->capture().ok());
    auto before = nodes[0].store->digests(true);
    REQUIRE(before.ok());
    nodes[0].store.reset();
    // The layout of the first release with digests.
    nodes[0].app->exec("DROP TABLE _peerlite_digest_sums");
    nodes[0].app->exec("CREATE TABLE _peerlite_digests(tbl TEXT NOT NULL, bucket INTEGER NOT "
                       "NULL, digest INTEGER NOT NULL, PRIMARY KEY(tbl, bucket)) WITHOUT ROWID");
    nodes[0].app->exec("INSERT INTO _peerlite_digests VALUES ('t', 0, 12345)");
    nodes[0].store = open_store(nodes[0].path);
    CHECK(nodes[0].app->scalar("SELECT count(*) FROM sqlite_master WHERE name = "
                               "'_peerlite_digests'") == 0);
    CHECK(nodes[0].app->scalar("SELECT count(*) FROM _peerlite_digest_sums") == 1);
    auto after = nodes[0].store->digests(true);
    REQUIRE(after.ok());
    CHECK(*after == *before);
    require_digests_consistent(*nodes[0].store);
}

TEST_CASE("rows whose hashed state is longer than the hash buffer get the same digests on every "
          "node") {
    // Long keys and long max-rule values (which the record keeps, so the row hash covers
    // them): their hash input streams through XXH3 instead of one buffer.
    ScratchDir dir;
    auto nodes = make_nodes(dir, 2);
    nodes[0].app->exec(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 30) "
        "INSERT INTO t SELECT printf('%.*c', 200 * i, 'k') || i, 'n', i, "
        "randomblob(3000 * i), i FROM n");
    nodes[1].app->exec("INSERT INTO t VALUES ('short', 'n', 1, 1, 1)");
    sync_all(nodes);
    require_identical(nodes);
    auto d0 = nodes[0].store->digests(true);
    auto d1 = nodes[1].store->digests(true);
    REQUIRE(d0.ok());
    REQUIRE(d1.ok());
    CHECK(d0->front().total == d1->front().total);
    CHECK(d0->front().buckets == d1->front().buckets);
    for (auto& n : nodes) {
        require_digests_consistent(*n.store);
    }
}

TEST_CASE("regression: a row sent for one node's cells carries the whole write that set its life") {
    // Found by the mesh partition test: a push of node A's versions included row k with
    // its life (stamped by B) as context but without B's cells of that same write; the
    // receiver then covered B's version and never asked for those cells again.
    ScratchDir dir;
    TestWall wall;
    auto nodes = make_nodes(dir, 3, wall.options());
    nodes[0].app->exec("INSERT INTO t VALUES ('k', 'from a', 1, 1, 1)");
    REQUIRE(nodes[0].store->capture().ok());
    wall.advance(); // B's insert is later: its life wins
    nodes[1].app->exec("INSERT INTO t VALUES ('k', 'from b', 1, 1, 1)");
    sync(*nodes[1].store, *nodes[2].store);
    sync(*nodes[0].store, *nodes[2].store);
    // C passes on only what it just got from A (as a push of its gained versions would).
    crdt::VersionVector only_a;
    only_a.add(nodes[0].store->node_id(), nodes[0].store->versions().of(nodes[0].store->node_id()));
    store::ReadCursor cursor;
    auto part = nodes[2].store->read_changes(only_a, cursor);
    REQUIRE(part.ok());
    REQUIRE(nodes[0].store->apply(*part).ok());
    sync_all(nodes);
    require_identical(nodes);
    CHECK(dump(nodes[0].path, "t").front() == "'k'|'from b'|2|1|1");
}

TEST_CASE("every node that decides a conflict records it, the winner's and third parties too") {
    ScratchDir dir;
    auto nodes = make_nodes(dir, 3);
    nodes[0].app->exec("INSERT INTO t VALUES ('k', 'first', 0, 0, 0)");
    sync_all(nodes);
    nodes[1].app->exec("UPDATE t SET name = 'from b' WHERE id = 'k'");
    nodes[2].app->exec("UPDATE t SET name = 'from c' WHERE id = 'k'");
    REQUIRE(nodes[1].store->capture().ok());
    REQUIRE(nodes[2].store->capture().ok());
    // Each node receives both writes themselves: the two writers exchange what they held
    // before either decided. (A node that learns of the losing write only as superseded,
    // covered by a claim, has nothing to decide and records nothing: docs/cli.md, "How to
    // read a conflict".)
    auto everything = [](store::Store& from, store::Store& to) {
        wire::ChangeSet all;
        all.covers = from.versions().minus(to.versions());
        store::ReadCursor cursor;
        while (!cursor.done) {
            auto part = from.read_changes(all.covers, cursor);
            REQUIRE(part.ok());
            for (auto& r : part->rows) {
                all.rows.push_back(std::move(r));
            }
        }
        all.complete = true;
        return all;
    };
    auto b_for_c = everything(*nodes[1].store, *nodes[2].store);
    auto c_for_b = everything(*nodes[2].store, *nodes[1].store);
    sync(*nodes[1].store, *nodes[0].store);
    sync(*nodes[2].store, *nodes[0].store);
    REQUIRE(nodes[2].store->apply(b_for_c).ok());
    REQUIRE(nodes[1].store->apply(c_for_b).ok());
    sync_all(nodes);
    require_identical(nodes);
    auto kept = PlainDb(nodes[0].path).rows("SELECT name FROM t").front();
    for (std::size_t i = 0; i < nodes.size(); ++i) {
        INFO("node " << i << ", kept " << kept);
        auto conflicts = nodes[i].store->conflicts();
        REQUIRE(conflicts.ok());
        REQUIRE(conflicts->size() == 1);
        // Each node names the same kept and lost values, whether the winner arrived or was
        // already here (regression: a kept last-writer-wins value was logged as NULL).
        const auto& c = conflicts->front();
        CHECK(c.winner_value.to_string() == kept);
        CHECK(c.loser_value.to_string() == (kept == "'from b'" ? "'from c'" : "'from b'"));
    }
}

TEST_CASE("a conflict's rule and reason are stored as the sentences people read, and read back") {
    for (auto rule : {std::optional<MergeRule>(), std::optional(MergeRule::last_writer_wins),
                      std::optional(MergeRule::max_wins), std::optional(MergeRule::min_wins)}) {
        for (auto reason :
             {crdt::Reason::later_clock, crdt::Reason::greater_node, crdt::Reason::greater_value,
              crdt::Reason::max_value, crdt::Reason::min_value}) {
            for (bool incoming_won : {true, false}) {
                store::Conflict c;
                c.rule = rule;
                c.reason = rule ? reason : crdt::Reason::later_life;
                c.incoming_won = rule ? incoming_won : true;
                store::Conflict back;
                REQUIRE(
                    store::parse_conflict_texts(store::rule_text(c), store::reason_text(c), back)
                        .ok());
                CHECK(back.rule == c.rule);
                CHECK(back.reason == c.reason);
                CHECK(back.incoming_won == c.incoming_won);
            }
        }
    }
    store::Conflict c;
    c.rule = MergeRule::last_writer_wins;
    c.reason = crdt::Reason::later_clock;
    CHECK(store::reason_text(c) == "lww: the later clock wins (incoming write won)");
    store::Conflict back;
    CHECK(store::parse_conflict_texts("lww", "because", back).code() == Code::corruption);
    CHECK(store::parse_conflict_texts("sum", store::reason_text(c), back).code() ==
          Code::corruption);
}
