// A member holding a trusted key turns hostile (issue 20), against a real peerlited: it
// tries to move another node's identity, to speak as another node or as one no one has
// heard from yet, to claim all of another node's versions, to grow the daemon's state with
// made-up sender ids, and throws three rounds of 10,000 malformed frames. The daemon stays up, its
// memory comes back to within 2 MiB (20% of a release daemon's footprint) of where it started,
// every rejection is counted by reason, honest writes keep arriving, and the honest node's identity
// and versions are untouched.
#include <fstream>
#include <random>
#include <string>
#include <thread>

#include <catch2/catch.hpp>
#include <zmq.hpp>

#include <peerlite/transport/hub.hpp>
#include <peerlite/transport/message.hpp>

#include "daemon_fixture.hpp"
#include "mesh_fixture.hpp"

using namespace peerlite;
using namespace peerlite::testing;
using namespace std::chrono_literals;

namespace {

// Resident memory of a process, in KiB.
long rss_kib(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("VmRSS:", 0) == 0) {
            return std::stol(line.substr(6));
        }
    }
    return -1;
}

std::string secret_of(const KeyFiles& keys) {
    auto text = read_file(keys.secret_file);
    text.erase(text.find_last_not_of(" \n") + 1);
    return text;
}

struct Mesh2 {
    Trio t;
    PlainDb a{t.dir.file("a.db")};
    PlainDb b{t.dir.file("b.db")};
    std::optional<Daemon> da, db;
    int written = 0;

    Mesh2() {
        a.exec(kMeshTable);
        b.exec(kMeshTable);
        // Under AddressSanitizer (the test build) freed memory waits in a quarantine of
        // up to 256 MiB before reuse, which would hide what the daemon itself holds:
        // without it, resident memory tracks the daemon's own allocations.
        da.emplace(t.write("a", {"a.db"}), t.dir.file("a.log"),
                   Daemon::Environment{{"ASAN_OPTIONS",
                                        "quarantine_size_mb=0:thread_local_quarantine_size_kb=0:"
                                        "allocator_release_to_os_interval_ms=100:detect_leaks=1"}});
        REQUIRE(da->ready());
        DatabaseConfig cb{"b.db"};
        cb.seeds = {{da->endpoint(), t.pub(0)}};
        db.emplace(t.write("b", cb), t.dir.file("b.log"));
        REQUIRE(db->ready());
    }
    // An honest write on b reaches a.
    bool honest_write_arrives() {
        auto id = "honest" + std::to_string(written++);
        b.exec("INSERT INTO items VALUES ('" + id + "', 'b', 1)");
        return Mesh::eventually(
            [&] { return a.scalar("SELECT count(*) FROM items WHERE id = '" + id + "'") == 1; },
            20s);
    }
    nlohmann::json status_a() { return status_of(t, "a")["databases"][0]; }
};

} // namespace

TEST_CASE("a hostile member with a trusted key cannot move an identity, silence a node, grow "
          "the daemon's memory or stop honest writes") {
    Mesh2 m;
    REQUIRE(m.honest_write_arrives());
    auto b_status = status_of(m.t, "b")["databases"][0];
    auto b_id = crdt::NodeId::parse(b_status["node_id"].get<std::string>());
    REQUIRE(b_id.ok());
    auto b_endpoint = b_status["endpoint"].get<std::string>();

    // The attacker: key c, which both daemons trust, speaking as the id its key derives.
    zmq::context_t context;
    zmq::socket_t attacker(context, zmq::socket_type::dealer);
    attacker.set(zmq::sockopt::linger, 0);
    attacker.set(zmq::sockopt::sndhwm, 0);
    attacker.set(zmq::sockopt::curve_serverkey, m.t.pub(0));
    attacker.set(zmq::sockopt::curve_publickey, m.t.pub(2));
    attacker.set(zmq::sockopt::curve_secretkey, secret_of(m.t.keys[2]));
    attacker.connect(m.status_a()["endpoint"].get<std::string>());
    std::mt19937_64 rng(Catch::rngSeed());
    auto salt = crdt::NodeId::random(rng);
    auto self = crdt::NodeId::derive(m.t.pub(2), salt);
    auto b_salt = crdt::NodeId::parse(b_status["id_salt"].get<std::string>());
    REQUIRE(b_salt.ok());
    REQUIRE(*b_id == crdt::NodeId::derive(m.t.pub(1), *b_salt)); // what a checks
    auto send = [&](const transport::Body& body, const crdt::NodeId& as) {
        attacker.send(zmq::buffer(transport::encode(transport::Message{as, salt, body})),
                      zmq::send_flags::none);
    };
    send(transport::Hello{{self, "tcp://127.0.0.1:1", m.t.pub(2), 1, salt}, {}}, self);
    std::this_thread::sleep_for(500ms);
    auto baseline = rss_kib(m.da->pid());
    REQUIRE(baseline > 0);
    auto versions_before = m.status_a()["versions"];

    // 1. b's identity moved to a dead endpoint: with the attacker's key, and with b's own
    //    key under an older incarnation than b's.
    transport::Member fake{*b_id, "tcp://127.0.0.1:9", m.t.pub(2), 1000, salt};
    send(transport::Members{{fake}}, self);
    fake.public_key = m.t.pub(1);
    fake.id_salt = *b_salt;
    send(transport::Members{{fake}}, self);
    // 1b. Speaking as b, and as a node no one has heard from yet (taking its id first).
    send(transport::Hello{{*b_id, "tcp://127.0.0.1:9", m.t.pub(2), 1, salt}, {}}, *b_id);
    auto unheard = crdt::NodeId::random(rng);
    send(transport::Hello{{unheard, "tcp://127.0.0.1:9", m.t.pub(2), 1, salt}, {}}, unheard);
    // 2. A claim of every version b will ever make.
    wire::ChangeSet claim;
    claim.complete = true;
    claim.covers.add(
        *b_id, crdt::ClockRange{crdt::Hlc::from_raw(1), crdt::Hlc::from_raw(~std::uint64_t{0})});
    send(transport::Push{claim, true}, self);
    // 3. Ten thousand made-up senders asking for everything (each refused: its key is not
    //    theirs).
    for (int i = 0; i < 10'000; ++i) {
        send(transport::SyncRequest{static_cast<std::uint64_t>(i), {}}, crdt::NodeId::random(rng));
    }
    REQUIRE(m.honest_write_arrives());
    auto status = m.status_a();
    for (const auto& member : status["members"]) {
        if (member["node_id"] == b_id->to_string()) {
            CHECK(member["endpoint"] == b_endpoint); // not moved
        }
    }

    // 4. Three rounds of 10,000 malformed frames: random bytes, mutated and truncated
    //    real messages, nested headers declaring more than the frame holds.
    wire::ChangeSet set;
    set.rows.push_back({"items",
                        {crdt::Value::text("z")},
                        {crdt::CausalLength(1), {crdt::Hlc::from_parts(1, 0), self}},
                        {},
                        {}});
    auto real = transport::encode(transport::Message{self, salt, transport::Push{set}});
    for (int round = 0; round < 3; ++round) {
        for (int i = 0; i < 10'000; ++i) {
            std::string frame;
            switch (rng() % 4) {
            case 0:
                frame.resize(rng() % 300);
                for (auto& c : frame) {
                    c = static_cast<char>(rng());
                }
                break;
            case 1:
                // A real message with bytes after it (a mutated byte could make a valid
                // message: a forged write, which signing per origin would stop, not this).
                frame = real + std::string(1 + rng() % 8, static_cast<char>(rng()));
                break;
            case 2: frame = real.substr(0, rng() % real.size()); break;
            default:
                for (int d = 0; d < 12; ++d) {
                    frame += "\xdc\x27\x10";
                }
            }
            attacker.send(zmq::buffer(frame), zmq::send_flags::none);
        }
        REQUIRE(m.honest_write_arrives());
        REQUIRE_FALSE(m.da->exited());
        INFO("round " << round << ": RSS " << rss_kib(m.da->pid()) << " KiB against " << baseline
                      << " KiB before the attack");
        // Within 20% of where it started, counted against a release daemon's footprint
        // (about 10 MiB; the sanitized build's baseline is ten times that, mostly shadow).
        CHECK(Mesh::eventually([&] { return rss_kib(m.da->pid()) <= baseline + 2048; }, 10s));
    }

    status = m.status_a();
    // Every frame rejected and counted by reason (the daemon may still be reading them).
    auto malformed = [](const nlohmann::json& reasons) {
        return reasons.value("corruption", 0L) + reasons.value("limit_exceeded", 0L) +
               reasons.value("unsupported", 0L);
    };
    REQUIRE(Mesh::eventually(
        [&] { return malformed(m.status_a()["counters"]["rejected_by_reason"]) >= 30'000; }, 30s));
    status = m.status_a();
    auto reasons = status["counters"]["rejected_by_reason"];
    INFO(reasons.dump());
    // Each reason counted, and the counts add up to every rejection.
    long counted = 0;
    for (const auto& [reason, n] : reasons.items()) {
        counted += n.get<long>();
    }
    CHECK(counted == status["counters"]["messages_rejected"].get<long>());
    // Every malformed frame refused as malformed: corrupt, over a limit, or (random bytes
    // that start like a message) of a protocol version this node does not speak.
    CHECK(malformed(reasons) >= 30'000);
    CHECK(reasons.contains("clock_drift")); // the claim of b's future versions
    // The entry moving b under the attacker's key, speaking as b or as the unheard node,
    // and the made-up senders.
    CHECK(reasons["identity_conflict"].get<long>() >= 10'003);
    for (const auto& member : status["members"]) {
        CHECK(member["node_id"] != unheard.to_string());
    }
    // a's vector: the same origins as before the attack (the attacker wrote nothing),
    // and b's versions only those b made.
    auto after = status["versions"];
    CHECK(after.size() == versions_before.size());
    auto b_has = status_of(m.t, "b")["databases"][0]["versions"];
    CHECK(after[b_id->to_string()] == b_has[b_id->to_string()]);
    for (const auto& member : status["members"]) {
        if (member["node_id"] == b_id->to_string()) {
            CHECK(member["endpoint"] == b_endpoint);
            CHECK(member["state"] == "alive");
        }
    }
    CHECK(m.honest_write_arrives());
}
