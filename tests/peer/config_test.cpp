// The config loader (peer/config.cpp) on real files: what a valid file becomes, the
// defaults it leaves, and errors that name the file, the line and the key.
#include <fstream>
#include <map>

#include <catch2/catch.hpp>

#include <peerlite/peer/config.hpp>

#include "../store/store_fixture.hpp"

using namespace peerlite;
using namespace peerlite::testing;

namespace {

std::string write(const ScratchDir& dir, const std::string& name, const std::string& text) {
    auto path = dir.file(name);
    std::ofstream(path) << text;
    return path;
}

// The error of loading `text` (which must fail).
std::string error_of(const ScratchDir& dir, const std::string& text) {
    auto loaded = peer::load_config(write(dir, "bad.toml", text));
    REQUIRE_FALSE(loaded.ok());
    return loaded.status().message();
}

constexpr const char* kPlainHead = "[mesh]\nplaintext = true\n\n[[database]]\npath = \"a.db\"\n\n"
                                   "[[database.table]]\nname = \"items\"\n";

} // namespace

TEST_CASE("a full config becomes the options it says, paths resolved beside the file") {
    ScratchDir dir;
    auto keys = transport::generate_keys();
    REQUIRE(keys.ok());
    auto peer_keys = transport::generate_keys();
    REQUIRE(peer_keys.ok());
    write(dir, "alpha.key", keys->secret_key + "\n");
    auto path = write(dir, "alpha.toml",
                      "[node]\nname = \"alpha\"\nsecret_key_file = \"alpha.key\"\n\n"
                      "[mesh]\ntrusted_keys = [\"" +
                          peer_keys->public_key +
                          "\"]\nanti_entropy_interval_ms = 250\n\n"
                          "[[database]]\npath = \"alpha.db\"\nlisten = \"tcp://127.0.0.1:7400\"\n"
                          "seeds = [ { endpoint = \"tcp://127.0.0.1:7401\", public_key = \"" +
                          peer_keys->public_key +
                          "\" } ]\n\n"
                          "[[database.table]]\nname = \"items\"\nrules = { qty = \"counter\", "
                          "best = \"min\" }\n\n"
                          "[limits]\nmax_clock_drift_ms = 2000\napply_delay_ms = 0\n\n"
                          "[log]\nlevel = \"debug\"\n");
    auto config = peer::load_config(path);
    INFO(config.status().to_string());
    REQUIRE(config.ok());
    CHECK(config->name == "alpha");
    CHECK(config->log_level == "debug");
    REQUIRE(config->databases.size() == 1);
    const auto& db = config->databases[0];
    CHECK(db.database == dir.file("alpha.db"));
    CHECK(db.transport.listen == "tcp://127.0.0.1:7400");
    CHECK(db.transport.keys.public_key == keys->public_key);
    CHECK(db.transport.trusted.count(peer_keys->public_key) == 1);
    REQUIRE(db.seeds.size() == 1);
    CHECK(db.seeds[0].endpoint == "tcp://127.0.0.1:7401");
    CHECK(db.anti_entropy_interval == std::chrono::milliseconds(250));
    CHECK(db.store.max_clock_drift == std::chrono::milliseconds(2000));
    CHECK(db.apply_delay == std::chrono::milliseconds(0));
    REQUIRE(db.tables.size() == 1);
    CHECK(db.tables[0].table == "items");
    std::map<std::string, crdt::MergeRule> rules;
    for (const auto& r : db.tables[0].rules) {
        rules[r.column] = r.rule;
    }
    CHECK(rules == std::map<std::string, crdt::MergeRule>{{"qty", crdt::MergeRule::counter},
                                                          {"best", crdt::MergeRule::min_wins}});
}

TEST_CASE("what a config leaves out takes the documented defaults") {
    ScratchDir dir;
    auto config = peer::load_config(write(dir, "beta.toml", kPlainHead));
    INFO(config.status().to_string());
    REQUIRE(config.ok());
    CHECK(config->name == "beta"); // the file name
    CHECK(config->log_level == "info");
    const auto& db = config->databases.at(0);
    peer::NodeOptions defaults;
    CHECK(db.transport.plaintext);
    CHECK(db.transport.listen == "tcp://127.0.0.1:*");
    CHECK(db.anti_entropy_interval == defaults.anti_entropy_interval);
    CHECK(db.apply_delay == std::chrono::milliseconds(1000));
    CHECK(db.apply_quiet == std::chrono::milliseconds(20));
    CHECK(db.store.max_held_back_rows == 1'000'000);
    CHECK(db.store.max_clock_drift == std::chrono::milliseconds(1000));
    CHECK(db.tables.at(0).rules.empty());
}

TEST_CASE("a bad config is refused with the file, the line and the key") {
    ScratchDir dir;
    auto bad = dir.file("bad.toml");

    auto unknown = error_of(dir, std::string(kPlainHead) + "\n[limits]\nmax_clok_drift_ms = 5\n");
    CHECK(unknown.find(bad + ":11") != std::string::npos);
    CHECK(unknown.find("max_clok_drift_ms") != std::string::npos);

    auto range = error_of(dir, std::string(kPlainHead) + "\n[limits]\nmax_clock_drift_ms = 0\n");
    CHECK(range.find(bad + ":11") != std::string::npos);
    CHECK(range.find("limits.max_clock_drift_ms: 0 is out of range [1, 3600000]") !=
          std::string::npos);

    auto type = error_of(dir, std::string(kPlainHead) + "\n[mesh2]\n");
    CHECK(type.find("mesh2") != std::string::npos);

    auto wrong_type =
        error_of(dir, "[mesh]\nplaintext = \"yes\"\n\n[[database]]\npath = \"a.db\"\n\n"
                      "[[database.table]]\nname = \"items\"\n");
    CHECK(wrong_type.find(bad + ":2") != std::string::npos);
    CHECK(wrong_type.find("plaintext") != std::string::npos);

    auto rule = error_of(dir, std::string(kPlainHead) + "rules = { qty = \"sum\" }\n");
    CHECK(rule.find("rules.qty") != std::string::npos);

    auto no_key = error_of(dir, "[[database]]\npath = \"a.db\"\n\n[[database.table]]\n"
                                "name = \"items\"\n");
    CHECK(no_key.find("secret_key_file") != std::string::npos);

    auto no_table = error_of(dir, "[mesh]\nplaintext = true\n\n[[database]]\npath = \"a.db\"\n");
    CHECK(no_table.find("table") != std::string::npos);
}
