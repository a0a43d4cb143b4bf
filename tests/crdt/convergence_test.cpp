// Property tests: random operation histories on 3-7 replicas, delivered in random orders
// with duplicates, drops and partitions, must leave every replica with the same state,
// and that state must be the merge of every change ever made.
//
// A failing history prints its seed; `crdt_tests --rng-seed S "<test name>"` replays
// the run whose base seed was S.
#include <algorithm>
#include <random>

#include <catch2/catch.hpp>

#include "replica_model.hpp"
#include "test_nodes.hpp"

using namespace peerlite;
using namespace peerlite::crdt;
using namespace peerlite::crdt::testing;
using std::chrono::milliseconds;

namespace Catch {
template <>
struct StringMaker<ModelChange> {
    static std::string convert(const ModelChange& c) { return c.to_string(); }
};
} // namespace Catch

namespace {

constexpr int kRows = 3; // few rows: most writes collide
const std::vector<MergeRule> kRules = {MergeRule::last_writer_wins, MergeRule::counter,
                                       MergeRule::max_wins, MergeRule::min_wins,
                                       MergeRule::last_writer_wins};

Value random_value(std::mt19937_64& rng) {
    switch (rng() % 4) {
    case 0: return Value::integer(static_cast<std::int64_t>(rng() % 4));
    case 1: return Value::text(std::string(1, static_cast<char>('a' + rng() % 3)));
    case 2: return Value::real(static_cast<double>(rng() % 3) / 2);
    default: return Value::null();
    }
}

// A world of replicas sharing a simulated time; each replica's wall clock is that time
// plus a fixed skew (within the drift bound), and time moves in coarse steps so equal
// clocks on different nodes are common and the tie-breaks are exercised.
struct World {
    std::mt19937_64 rng;
    std::int64_t time = 1'700'000'000'000;
    std::vector<std::int64_t> skew;
    std::vector<ModelReplica> replicas;
    std::vector<ModelChange> all; // every change ever made, in creation order

    explicit World(std::uint64_t seed) : rng(seed) {
        int n = 3 + static_cast<int>(rng() % 5);
        skew.resize(n);
        replicas.reserve(n);
        for (int i = 0; i < n; ++i) {
            skew[i] = static_cast<std::int64_t>(rng() % 40);
            replicas.emplace_back(node(static_cast<std::uint8_t>(i + 1)), kRules,
                                  [this, i] { return milliseconds(time + skew[i]); });
        }
    }

    int pick() { return static_cast<int>(rng() % replicas.size()); }

    // One random local write on a random replica; checks that its clocks are later than
    // everything that replica had seen (HLC order respects causality).
    void local_write() {
        auto& r = replicas[pick()];
        auto before = r.latest();
        int row = static_cast<int>(rng() % kRows);
        std::vector<ModelChange> made;
        switch (rng() % 6) {
        case 0: {
            std::vector<Value> values;
            for (std::size_t c = 0; c < kRules.size(); ++c) {
                values.push_back(kRules[c] == MergeRule::counter
                                     ? Value::integer(static_cast<std::int64_t>(rng() % 10))
                                     : random_value(rng));
            }
            made = r.insert(row, values);
            break;
        }
        case 1: made = r.remove(row); break;
        case 2: made = r.increment(row, 1, static_cast<std::int64_t>(rng() % 7) - 3); break;
        default: {
            int column = std::array{0, 2, 3, 4}[rng() % 4];
            made = r.update(row, column, random_value(rng));
        }
        }
        for (const auto& c : made) {
            REQUIRE(c.version().hlc > before);
            all.push_back(c);
        }
        time += static_cast<std::int64_t>(rng() % 2);
    }

    void require_converged() {
        // The oracle: one replica that merged every change ever made, in creation order.
        ModelReplica oracle(node(200), kRules, [this] { return milliseconds(time); });
        for (const auto& c : all) {
            REQUIRE(oracle.apply(c));
        }
        auto expected_state = oracle.state();
        auto expected_view = oracle.view();
        for (auto& r : replicas) {
            REQUIRE(r.state() == expected_state);
            REQUIRE(r.view() == expected_view);
            for (const auto& c : all) {
                REQUIRE(r.seen().contains(c.version().node, c.version().hlc));
            }
        }
    }
};

// Op-based delivery: changes travel one by one, to random replicas, in random order, with
// duplicates; at the end every replica receives everything (again) in a shuffled order.
void run_push_history(std::uint64_t seed) {
    World w(seed);
    int steps = 10 + static_cast<int>(w.rng() % 50);
    for (int s = 0; s < steps; ++s) {
        w.local_write();
        while (!w.all.empty() && w.rng() % 3 == 0) {
            const auto& c = w.all[w.rng() % w.all.size()];
            REQUIRE(w.replicas[w.pick()].apply(c));
        }
    }
    w.time += 1000; // let every clock be within the drift bound of every other
    for (auto& r : w.replicas) {
        auto deliveries = w.all;
        for (const auto& c : w.all) {
            if (w.rng() % 4 == 0) {
                deliveries.push_back(c); // a duplicate
            }
        }
        std::shuffle(deliveries.begin(), deliveries.end(), w.rng);
        for (const auto& c : deliveries) {
            REQUIRE(r.apply(c));
        }
    }
    w.require_converged();
}

// State-based delivery: anti-entropy between random pairs, some exchanges dropped, and a
// partition splitting the replicas into two groups for the middle of the history.
void run_anti_entropy_history(std::uint64_t seed) {
    World w(seed);
    int steps = 10 + static_cast<int>(w.rng() % 50);
    std::vector<int> side(w.replicas.size());
    for (auto& s : side) {
        s = static_cast<int>(w.rng() % 2);
    }
    for (int s = 0; s < steps; ++s) {
        w.local_write();
        bool partitioned = s > steps / 3 && s < 2 * steps / 3;
        if (w.rng() % 2 == 0) {
            int from = w.pick();
            int to = w.pick();
            bool blocked = partitioned && side[from] != side[to];
            bool dropped = w.rng() % 4 == 0;
            if (from != to && !blocked && !dropped) {
                w.replicas[from].sync_to(w.replicas[to]);
            }
        }
    }
    // Heal: a ring of syncs twice around reaches everyone.
    auto n = w.replicas.size();
    for (std::size_t round = 0; round < 2 * n; ++round) {
        w.replicas[round % n].sync_to(w.replicas[(round + 1) % n]);
    }
    w.require_converged();
}

ModelReplica random_replica(std::mt19937_64& rng, std::uint8_t id, std::int64_t& time) {
    ModelReplica r(node(id), kRules, [&time] { return milliseconds(time); });
    for (int i = 0; i < 30; ++i) {
        int row = static_cast<int>(rng() % kRows);
        switch (rng() % 5) {
        case 0:
            r.insert(row, {random_value(rng), Value::integer(1), random_value(rng),
                           random_value(rng), random_value(rng)});
            break;
        case 1: r.remove(row); break;
        case 2: r.increment(row, 1, 2); break;
        default: r.update(row, std::array{0, 2, 3, 4}[rng() % 4], random_value(rng));
        }
        time += static_cast<std::int64_t>(rng() % 2);
    }
    return r;
}

// The state-based join: everything `b` holds merged into a copy of `a`.
ModelReplica join(const ModelReplica& a, const ModelReplica& b) {
    ModelReplica out(a);
    b.sync_to(out);
    return out;
}

bool same_state(const ModelReplica& a, const ModelReplica& b) {
    return a.state() == b.state() && a.seen() == b.seen() && a.view() == b.view();
}

} // namespace

TEST_CASE("random histories converge under shuffled, duplicated delivery") {
    auto base = Catch::rngSeed();
    for (std::uint64_t i = 0; i < 5'000; ++i) {
        auto seed = base * 100'003 + i;
        INFO("history seed " << seed << " (replay: --rng-seed " << base << ")");
        run_push_history(seed);
    }
}

TEST_CASE("random histories converge by anti-entropy across drops and partitions") {
    auto base = Catch::rngSeed();
    for (std::uint64_t i = 0; i < 5'000; ++i) {
        auto seed = base * 100'003 + i;
        INFO("history seed " << seed << " (replay: --rng-seed " << base << ")");
        run_anti_entropy_history(seed);
    }
}

TEST_CASE("merging replica states is commutative, associative and idempotent") {
    auto base = Catch::rngSeed();
    for (std::uint64_t i = 0; i < 1'000; ++i) {
        auto seed = base * 100'003 + i;
        INFO("history seed " << seed);
        std::mt19937_64 rng(seed);
        std::int64_t time = 1'700'000'000'000;
        auto a = random_replica(rng, 1, time);
        auto b = random_replica(rng, 2, time);
        auto c = random_replica(rng, 3, time);
        // Identity aside, a join's content must not depend on order or grouping.
        REQUIRE(join(a, b).state() == join(b, a).state());
        REQUIRE(join(a, b).view() == join(b, a).view());
        REQUIRE(join(a, b).seen() == join(b, a).seen());
        REQUIRE(same_state(join(join(a, b), c), join(a, join(b, c))));
        REQUIRE(same_state(join(a, a), a));
        REQUIRE(same_state(join(join(a, b), b), join(a, b)));
    }
}
