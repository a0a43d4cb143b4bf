// `peerlite status`: asks a running peerlited, through its admin endpoint, for its members,
// their health and lag, its version vectors and counters.
#include <cstdio>
#include <nlohmann/json.hpp>

#include <peerlite/peer/admin.hpp>
#include <peerlite/peer/config.hpp>

#include "cli_common.hpp"

namespace peerlite::cli {

namespace {

using nlohmann::json;

struct StatusArgs {
    std::string config; // the daemon's config file: its [node] admin endpoint is used
    std::string node;   // or the admin endpoint itself: ipc://FILE, tcp://HOST:PORT, or FILE
    bool json = false;
    int timeout_ms = 3000;
};

std::string duration(std::int64_t ms) {
    char buf[32];
    if (ms < 10'000) {
        std::snprintf(buf, sizeof buf, "%.1fs", static_cast<double>(ms) / 1000);
    } else if (ms < 3'600'000) {
        std::snprintf(buf, sizeof buf, "%lldm%02llds", static_cast<long long>(ms / 60'000),
                      static_cast<long long>(ms / 1000 % 60));
    } else {
        std::snprintf(buf, sizeof buf, "%lldh%02lldm", static_cast<long long>(ms / 3'600'000),
                      static_cast<long long>(ms / 60'000 % 60));
    }
    return buf;
}

std::string ago(std::int64_t ms) {
    return duration(ms) + " ago";
}

// The lag is what the member lacked at its last exchange with this daemon: it says how
// old that is, and whether everything it lacked has been sent since.
std::string lag_text(const json& lag) {
    if (!lag.value("known", false)) {
        return "unknown (no exchange yet)";
    }
    auto when = ago(lag["as_of_ms_ago"].get<std::int64_t>());
    if (lag["up_to_date"].get<bool>()) {
        return "up to date at the exchange " + when;
    }
    return "lacked changes of " + std::to_string(lag["origins_lacking"].get<int>()) +
           " origin(s), up to " + std::to_string(lag["behind_ms"].get<std::int64_t>()) +
           " ms of writes, at the exchange " + when +
           (lag.value("sent_since", false) ? "; all sent to it since"
                                           : "; may have caught up since");
}

void print_database(const json& db) {
    const auto& c = db["counters"];
    std::printf("\ndatabase %s\n  node %s on %s\n", db["path"].get<std::string>().c_str(),
                db["node_id"].get<std::string>().c_str(),
                db["endpoint"].get<std::string>().c_str());
    std::printf("  captured %llu local changes; received %llu column changes, applied %llu "
                "(%llu rows)\n",
                c["local_changes_captured"].get<unsigned long long>(),
                c["column_changes_received"].get<unsigned long long>(),
                c["column_changes_applied"].get<unsigned long long>(),
                c["rows_applied"].get<unsigned long long>());
    std::printf("  messages sent %llu, received %llu, rejected %llu",
                c["messages_sent"].get<unsigned long long>(),
                c["messages_received"].get<unsigned long long>(),
                c["messages_rejected"].get<unsigned long long>());
    std::string reasons;
    for (const auto& [reason, n] : c["rejected_by_reason"].items()) {
        reasons += (reasons.empty() ? "" : ", ") + reason + " " + std::to_string(n.get<int>());
    }
    std::printf("%s\n", reasons.empty() ? "" : (" (" + reasons + ")").c_str());
    auto n = [&](const char* name) {
        return c.value(name, 0ULL);
    };
    std::printf("  catch-ups retried %llu; content digests sent %llu, repairs started %llu, "
                "column changes repaired %llu\n",
                n("pulls_retried"), n("digests_sent"), n("repairs_started"),
                n("column_changes_repaired"));
    if (n("rows_too_large") > 0 || n("local_writes_refused") > 0) {
        std::printf("  refused where written (see the daemon's log): %llu rows too large to "
                    "send, %llu local writes a counter cannot hold\n",
                    n("rows_too_large"), n("local_writes_refused"));
    }
    if (n("connections_refused") > 0) {
        std::printf("  connections refused (key not in trusted_keys): %llu\n",
                    n("connections_refused"));
    }
    if (n("foreign_own_changes") > 0) {
        std::printf("  DUPLICATE NODE ID: %llu peer(s) hold changes under this node's id that "
                    "this file never wrote; a copy of it runs as another node (see the "
                    "daemon's log)\n",
                    n("foreign_own_changes"));
    }
    for (const auto& t : db.value("stopped_tables", json::array())) {
        std::printf("  STOPPED table %s: %s\n", t["table"].get<std::string>().c_str(),
                    t["reason"].get<std::string>().c_str());
    }
    std::printf("  members (%zu):\n", db["members"].size());
    if (db["members"].empty()) {
        std::printf("    none yet (no seed reached, and nobody has contacted this node)\n");
    }
    for (const auto& m : db["members"]) {
        std::printf("    %.8s  %-7s  heard %-11s  %-24s  %s\n",
                    m["node_id"].get<std::string>().c_str(), m["state"].get<std::string>().c_str(),
                    ago(m["last_heard_ms_ago"].get<std::int64_t>()).c_str(),
                    m["endpoint"].get<std::string>().c_str(), lag_text(m["lag"]).c_str());
    }
    std::printf("  version vector (origin: everything through / newest held / ranges):\n");
    for (const auto& [origin, v] : db["versions"].items()) {
        std::printf("    %.8s  %s  %s  %d\n", origin.c_str(),
                    v["contiguous_through"].get<std::string>().c_str(),
                    v["highest"].get<std::string>().c_str(), v["ranges"].get<int>());
    }
}

int status(const StatusArgs& args) {
    std::string endpoint = args.node;
    if (!args.config.empty()) {
        auto admin = peer::load_admin_endpoint(args.config);
        if (!admin) {
            std::fprintf(stderr, "peerlite: %s\n", admin.status().message().c_str());
            return kUsage;
        }
        endpoint = *admin;
    }
    if (endpoint.empty()) {
        std::fprintf(stderr, "peerlite status: give --config FILE (the daemon's config) or "
                             "--node ENDPOINT (its admin endpoint)\n");
        return kUsage;
    }
    if (endpoint.find("://") == std::string::npos) {
        endpoint = "ipc://" + endpoint;
    }
    auto reply = peer::query_admin(endpoint, "status", std::chrono::milliseconds(args.timeout_ms));
    if (!reply) {
        std::fprintf(stderr, "peerlite: %s\n", reply.status().message().c_str());
        return kFailure;
    }
    if (args.json) {
        std::printf("%s\n", reply->c_str());
        return 0;
    }
    try {
        auto doc = json::parse(*reply);
        if (doc.contains("error")) {
            std::fprintf(stderr, "peerlite: the daemon said: %s\n",
                         doc["error"].get<std::string>().c_str());
            return 1;
        }
        std::printf("node %s (pid %d, up %s)\n", doc["name"].get<std::string>().c_str(),
                    doc["pid"].get<int>(),
                    duration(doc["uptime_s"].get<std::int64_t>() * 1000).c_str());
        for (const auto& db : doc["databases"]) {
            print_database(db);
        }
    } catch (const json::exception& e) {
        std::fprintf(stderr, "peerlite: unexpected answer from %s: %s\n", endpoint.c_str(),
                     e.what());
        return 1;
    }
    return 0;
}

} // namespace

void add_status(CLI::App& app, Command& run) {
    auto args = std::make_shared<StatusArgs>();
    auto* cmd = app.add_subcommand(
        "status", "a running daemon's members, their health and lag, version vectors, counters");
    cmd->add_option("--config", args->config,
                    "the daemon's config file (its [node] admin endpoint is used)");
    cmd->add_option("--node", args->node,
                    "the admin endpoint instead: a socket file, ipc://FILE or tcp://HOST:PORT");
    cmd->add_option("--timeout", args->timeout_ms,
                    "milliseconds to wait for the daemon (default 3000)");
    cmd->add_flag("--json", args->json, "the daemon's JSON document, for scripts");
    cmd->footer("Examples:\n  peerlite status --config /etc/peerlite/alpha.toml\n"
                "  peerlite status --node /run/peerlite/alpha.admin.sock --json\n"
                "Exit status: 0 the daemon answered, 1 it did not, 2 bad usage.");
    cmd->callback([&run, args] {
        run = [args] {
            return status(*args);
        };
    });
}

} // namespace peerlite::cli
