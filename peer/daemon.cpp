// peerlited's whole program, behind daemon_main() (daemon.hpp): the installed peerlited
// calls it with no hooks; the test build's peerlited-testing adds its seams through them.
#include "daemon.hpp"

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <peerlite/peer/admin.hpp>
#include <peerlite/peer/config.hpp>

using namespace peerlite;

namespace {

int keygen(const std::string& prefix) {
    auto keys = transport::generate_keys();
    if (!keys) {
        std::fprintf(stderr, "peerlited: %s\n", keys.status().to_string().c_str());
        return 1;
    }
    auto secret = prefix + ".key";
    if (std::filesystem::exists(secret)) {
        std::fprintf(stderr, "peerlited: %s exists; refusing to overwrite a secret key\n",
                     secret.c_str());
        return 2;
    }
    {
        auto old = umask(077); // the secret key is readable by its owner only
        std::ofstream(secret) << keys->secret_key << "\n";
        umask(old);
    }
    std::ofstream(prefix + ".pub") << keys->public_key << "\n";
    std::printf("%s\n", keys->public_key.c_str());
    return 0;
}

// Waits for SIGTERM or SIGINT and returns it, or 0 when an engine stopped by itself
// (Node::failure()). Runs hooks.while_running between checks.
int wait_for_stop(const sigset_t& signals, const std::vector<std::unique_ptr<peer::Node>>& nodes,
                  const peer::DaemonHooks& hooks) {
    // A stopped engine is rare and its line is already logged: a few checks a second do.
    auto interval = hooks.while_running ? hooks.interval : std::chrono::milliseconds(250);
    timespec wait{0, std::chrono::duration_cast<std::chrono::nanoseconds>(interval).count()};
    for (;;) {
        if (hooks.while_running) {
            hooks.while_running(nodes);
        }
        int received = sigtimedwait(&signals, nullptr, &wait);
        if (received > 0) {
            return received;
        }
        for (const auto& node : nodes) {
            if (node->failure()) {
                return 0;
            }
        }
    }
}

// SIGTERM and SIGINT, blocked from the first instruction on: they are taken synchronously
// by the main thread (the engine threads inherit the mask), and one that arrives while the
// config is still loading waits for the daemon to be ready and then stops it cleanly
// instead of killing it half-started (exit 143).
sigset_t block_stop_signals() {
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    return signals;
}

// Runs every database's engine and the admin endpoint until SIGTERM or SIGINT.
int serve(const peer::DaemonConfig& config, const sigset_t& signals,
          const peer::DaemonHooks& hooks) {
    std::vector<std::unique_ptr<peer::Node>> nodes;
    for (auto db : config.databases) {
        if (hooks.before_start) {
            if (auto st = hooks.before_start(db); !st.ok()) {
                spdlog::error("{}", st.to_string());
                return 2;
            }
        }
        auto node = peer::Node::start(db);
        if (!node) {
            spdlog::error("cannot start {}: {}", db.database, node.status().to_string());
            nodes.clear();
            auto code = node.status().code();
            if (code == Code::busy) {
                return 3; // another node (a peerlited or an app) has the file open
            }
            if (code == Code::identity_conflict) {
                return 4; // the file runs as another node elsewhere
            }
            return code == Code::invalid_argument || code == Code::unknown_table ||
                           code == Code::unknown_column || code == Code::schema_mismatch
                       ? 2
                       : 1;
        }
        spdlog::info("ready: database {} as node {} on {}, public key {}", db.database,
                     (*node)->id().to_string(), (*node)->endpoint(),
                     db.transport.plaintext ? "(plaintext)" : (*node)->public_key());
        nodes.push_back(std::move(*node));
    }
    std::unique_ptr<peer::AdminServer> admin;
    if (!config.admin.empty()) {
        std::vector<const peer::Node*> borrowed;
        for (const auto& n : nodes) {
            borrowed.push_back(n.get());
        }
        auto server = peer::AdminServer::start(config.admin, config.name, std::move(borrowed));
        if (!server) {
            spdlog::error("cannot open the admin endpoint: {}", server.status().to_string());
            nodes.clear();
            return 1;
        }
        admin = std::move(*server);
        spdlog::info("admin endpoint {} (peerlite status --config {})", config.admin, config.path);
    }
    int received = wait_for_stop(signals, nodes, hooks);
    if (received == 0) {
        for (const auto& node : nodes) {
            if (auto why = node->failure()) {
                spdlog::error("{} stopped syncing: {}; stopping the daemon", node->database(),
                              why->to_string());
            }
        }
        admin.reset();
        nodes.clear();
        return 1;
    }
    spdlog::info("{} received: finishing in-flight work and stopping",
                 received == SIGTERM ? "SIGTERM" : "SIGINT");
    admin.reset();
    nodes.clear(); // joins each engine after its current turn; the store commits per step
    spdlog::info("stopped cleanly");
    return 0;
}

} // namespace

int peer::daemon_main(int argc, char** argv, const DaemonHooks& hooks) {
    auto signals = block_stop_signals();
    CLI::App app{
        "peerlited: keeps a SQLite file's tables in sync with the rest of a peerlite mesh.\n"
        "Every node can write; nodes converge by per-column merge rules."};
    std::string config_path, keygen_prefix;
    bool check_only = false;
    app.add_option("-c,--config", config_path, "the node's TOML config file (see docs/config.md)")
        ->check(CLI::ExistingFile);
    app.add_flag("--check", check_only, "validate the config file and exit (0: valid, 2: invalid)");
    app.add_option("--keygen", keygen_prefix,
                   "write a new CURVE keypair to PREFIX.key (secret, mode 600) and PREFIX.pub, "
                   "print the public key");
    app.set_version_flag("--version", "peerlited 0.1.0");
    app.footer("Examples:\n"
               "  peerlited --keygen alpha            # alpha.key, alpha.pub\n"
               "  peerlited --check --config alpha.toml\n"
               "  peerlited --config alpha.toml        # run until SIGTERM or Ctrl-C\n"
               "Exit status: 0 clean stop, 1 runtime failure, 2 bad usage or config, 3 database "
               "already served, 4 database copied from another node's file.");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? 0 : 2;
    }
    if (!keygen_prefix.empty()) {
        return keygen(keygen_prefix);
    }
    if (config_path.empty()) {
        std::fprintf(stderr, "peerlited: --config is required (see --help)\n");
        return 2;
    }
    auto config = peer::load_config(config_path);
    if (!config) {
        std::fprintf(stderr, "peerlited: %s\n", config.status().message().c_str());
        return 2;
    }
    if (check_only) {
        std::printf("%s: valid (node %s, %zu database%s)\n", config_path.c_str(),
                    config->name.c_str(), config->databases.size(),
                    config->databases.size() == 1 ? "" : "s");
        for (const auto& db : config->databases) {
            std::printf("  %s: %zu tables, %zu seeds, listen %s\n", db.database.c_str(),
                        db.tables.size(), db.seeds.size(), db.transport.listen.c_str());
        }
        return 0;
    }
    spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e %^%-5l%$ [" + config->name + "] %v");
    spdlog::set_level(spdlog::level::from_str(config->log_level));
    return serve(*config, signals, hooks);
}
