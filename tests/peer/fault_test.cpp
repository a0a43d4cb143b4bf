// Fault injection with real daemons: five peerlited processes converge, with no write
// lost, under a randomized workload while nodes are killed, stopped, paused, partitioned
// and skewed (fault_harness.hpp). Plus checks that the daemon's test seams work
// (test_seams.hpp) and the oracle's own edges (fault_oracle.hpp).
//
// Replay a run: PEERLITE_FAULT_SEED=<seed printed by the failing run>. Longer runs:
// PEERLITE_FAULT_SECONDS=600, or the [.soak] case (docs/testing.md).
#include <cstdio>
#include <thread>

#include <catch2/catch.hpp>

#include "fault_cluster.hpp"
#include "fault_harness.hpp"
#include "fault_oracle.hpp"
#include "mesh_fixture.hpp"

using namespace peerlite::testing;
using namespace peerlite::testing::fault;
using namespace std::chrono_literals;

namespace {

void run_and_check(std::chrono::seconds duration) {
    auto options = FaultOptions::from_env(duration);
    // Printed first (to stderr, which meson keeps in its log even when the test passes),
    // so a run that crashes or hangs can still be replayed.
    std::fprintf(stderr, "fault run: PEERLITE_FAULT_SEED=%llu, %lld s of faults\n",
                 static_cast<unsigned long long>(options.seed),
                 static_cast<long long>(options.duration.count()));
    auto report = run_faults(options);
    std::fprintf(stderr, "%s\n", report.summary.c_str());
    INFO("replay with PEERLITE_FAULT_SEED=" << options.seed);
    for (const auto& p : report.problems) {
        UNSCOPED_INFO(p);
    }
    CHECK(report.problems.empty());
}

Write insert(std::string name, std::int64_t qty, std::int64_t best) {
    return Write{Op::insert, false, false, false, qty, std::move(name), best};
}
Write update(std::string name, std::int64_t increment, std::int64_t best, bool sets_name,
             bool sets_qty, bool sets_best) {
    return Write{Op::update, sets_name, sets_qty, sets_best, increment, std::move(name), best};
}
Write remove() {
    Write w;
    w.op = Op::remove;
    return w;
}

} // namespace

TEST_CASE("five daemons converge with no write lost under kills, pauses, partitions and clock "
          "skew") {
    run_and_check(40s);
}

TEST_CASE("soak: fault injection for ten minutes", "[.soak]") {
    run_and_check(600s);
}

// The seams must work, or the fault run would silently test less than it claims.
TEST_CASE("the partition seam cuts two daemons apart until its file is emptied") {
    Cluster cluster(2);
    auto rows = [&](int i) {
        return dump(cluster.db_path(i), "items").size();
    };
    cluster.partition({true, false});
    std::this_thread::sleep_for(500ms); // the daemons re-read the file every 100 ms
    PlainDb(cluster.db_path(0)).exec("INSERT INTO items VALUES ('a', 'x', 1, 1)");
    std::this_thread::sleep_for(3s); // several pushes and anti-entropy rounds
    CHECK(rows(1) == 0);
    cluster.heal();
    CHECK(Mesh::eventually([&] { return rows(1) == 1; }, 20s));
}

TEST_CASE("a skewed node, daemon and application, 3 s ahead: its changes wait out the drift "
          "bound") {
    Cluster cluster(2);
    cluster.set_clock_offset(0, 3000);
    cluster.daemon(0).restart();
    REQUIRE(cluster.daemon(0).ready());
    Conn(cluster.db_path(0), cluster.vfs(0)).exec("INSERT INTO items VALUES ('a', 'x', 1, 1)");
    // Stamped 3 s ahead: refused while more than 1 s ahead of the receiver's clock.
    std::this_thread::sleep_for(1s);
    CHECK(dump(cluster.db_path(1), "items").empty());
    CHECK(Mesh::eventually([&] { return dump(cluster.db_path(1), "items").size() == 1; }, 20s));
    CHECK_THAT(cluster.daemon(1).log(), Catch::Contains("clock_drift"));
    CHECK_THAT(cluster.daemon(0).log(), Catch::Contains("offset by 3000 ms"));
}

TEST_CASE("oracle: an episode picked up as a whole stamps the values it ended with") {
    std::vector<std::string> problems;
    Episode e{1, 0, 0, std::nullopt, {insert("a", 5, 50), update("b", 2, 10, true, true, true)}};
    auto effect = resolve(e, problems);
    REQUIRE(effect);
    CHECK(effect->life == 1);
    CHECK(effect->name == "b");
    CHECK(effect->best == 10); // 50 never reached the mesh: the pickup read 10
    CHECK(effect->qty == 7);
    CHECK_FALSE(effect->observed);
    CHECK(problems.empty());
}

TEST_CASE("oracle: an episode that ends deleted moves a live row's life once, a dead row's "
          "not at all") {
    std::vector<std::string> problems;
    Episode live{0, 0, 1, "x", {remove(), insert("y", 1, 1), remove()}};
    auto effect = resolve(live, problems);
    REQUIRE(effect);
    CHECK(effect->life == 2);
    Episode dead{0, 0, 2, std::nullopt, {insert("y", 1, 1), remove()}};
    CHECK_FALSE(resolve(dead, problems));
    CHECK(problems.empty());
}

TEST_CASE("oracle: counters sum every increment of the final life only; max takes the "
          "greatest") {
    std::vector<std::string> problems;
    std::vector<Effect> effects;
    for (const auto& e :
         {Episode{
              0, 0, 0, std::nullopt, {insert("a", 10, 5), update("a", 3, 5, false, true, false)}},
          Episode{1, 0, 1, "a", {update("a", 100, 5, false, true, false), remove()}},
          Episode{2, 0, 2, std::nullopt, {insert("b", 4, 7)}},
          Episode{3, 0, 2, std::nullopt, {insert("c", 6, 3)}}, // concurrent re-insert
          Episode{2, 0, 3, "b", {update("b", -1, 1, false, true, true)}}}) {
        if (auto effect = resolve(e, problems)) {
            effects.push_back(*effect);
        }
    }
    auto x = expect(effects, problems);
    CHECK(problems.empty());
    CHECK(x.life == 3);
    CHECK(x.present);
    CHECK(x.qty == 9);
    CHECK(x.best == 7);
    CHECK(x.names == std::set<std::string>{"b", "c"});
    CHECK(check("k0", x, Row{"c", 9, 7}).empty());
    CHECK(check("k0", x, Row{"c", 19, 7}).size() == 1);
    CHECK(check("k0", x, Row{"a", 9, 7}).size() == 1);
    CHECK(check("k0", x, std::nullopt).size() == 1);
}

TEST_CASE("oracle: a name overwritten by a writer that saw it cannot win") {
    std::vector<std::string> problems;
    std::vector<Effect> effects;
    for (const auto& e : {Episode{0, 0, 0, std::nullopt, {insert("a", 0, 0)}},
                          Episode{1, 0, 1, "a", {update("b", 0, 0, true, false, false)}},
                          Episode{2, 0, 1, "b", {update("c", 0, 0, true, false, false)}},
                          Episode{3, 0, 1, "a", {update("d", 0, 0, true, false, false)}}}) {
        effects.push_back(*resolve(e, problems));
    }
    auto x = expect(effects, problems);
    CHECK(problems.empty());
    CHECK(x.names == std::set<std::string>{"c", "d"});
    CHECK(check("k0", x, Row{"b", 0, 0}).size() == 1);
    effects.push_back(
        *resolve(Episode{4, 0, 1, "zz", {update("e", 0, 0, true, false, false)}}, problems));
    expect(effects, problems);
    CHECK(problems.size() == 1); // "zz" was never written in life 1
}
