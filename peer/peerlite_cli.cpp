// peerlite: inspect a node's database. Today: `conflicts` (what the merge decided and
// why). Exit status: 0 success, 1 runtime failure, 2 bad usage or not a peerlite database.
#include <cstdio>
#include <ctime>

#include <CLI/CLI.hpp>
#include <sqlite3.h>

#include <peerlite/store/store.hpp>

#include "cli/status_command.hpp"

using namespace peerlite;

namespace {

std::string json_string(const std::string& s) {
    std::string out = "\"";
    for (unsigned char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            out += buf;
        } else {
            out += static_cast<char>(c);
        }
    }
    return out + "\"";
}

std::string key_text(const std::vector<crdt::Value>& key) {
    std::string out;
    for (const auto& k : key) {
        out += (out.empty() ? "" : ",") + k.to_string();
    }
    return out;
}

int conflicts(const std::string& db, const std::string& table, std::size_t limit, bool json) {
    // Open read-mostly: refuse a file that is not a peerlite database instead of making one.
    sqlite3* probe = nullptr;
    bool is_peerlite = false;
    if (sqlite3_open_v2(db.c_str(), &probe, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
        sqlite3_stmt* s = nullptr;
        if (sqlite3_prepare_v2(probe, "SELECT 1 FROM sqlite_schema WHERE name = '_peerlite_meta'",
                               -1, &s, nullptr) == SQLITE_OK) {
            is_peerlite = sqlite3_step(s) == SQLITE_ROW;
        }
        sqlite3_finalize(s);
    }
    sqlite3_close(probe);
    if (!is_peerlite) {
        std::fprintf(stderr, "peerlite: %s is not a peerlite database (no _peerlite_meta table)\n",
                     db.c_str());
        return 2;
    }
    auto store = store::Store::open(db);
    if (!store) {
        std::fprintf(stderr, "peerlite: %s\n", store.status().to_string().c_str());
        return 1;
    }
    store::ConflictQuery query;
    if (!table.empty()) {
        query.table = table;
    }
    query.limit = limit;
    auto list = (*store)->conflicts(query);
    if (!list) {
        std::fprintf(stderr, "peerlite: %s\n", list.status().to_string().c_str());
        return 1;
    }
    if (json) {
        std::printf("[");
        bool first = true;
        for (const auto& c : *list) {
            std::printf(
                "%s\n {\"id\": %lld, \"decided_at_ms\": %lld, \"table\": %s, \"key\": %s, "
                "\"column\": %s, "
                "\"rule\": %s, \"winner\": {\"value\": %s, \"clock\": %s, \"node\": %s}, "
                "\"loser\": {\"value\": %s, \"clock\": %s, \"node\": %s}, \"reason\": %s}",
                first ? "" : ",", static_cast<long long>(c.id),
                static_cast<long long>(c.decided_at_ms), json_string(c.table).c_str(),
                json_string(key_text(c.key)).c_str(), json_string(c.column).c_str(),
                json_string(c.rule).c_str(), json_string(c.winner_value.to_string()).c_str(),
                json_string(c.winner.hlc.to_string()).c_str(),
                json_string(c.winner.node.to_string()).c_str(),
                json_string(c.loser_value.to_string()).c_str(),
                json_string(c.loser.hlc.to_string()).c_str(),
                json_string(c.loser.node.to_string()).c_str(), json_string(c.reason).c_str());
            first = false;
        }
        std::printf("%s]\n", list->empty() ? "" : "\n");
        return 0;
    }
    if (list->empty()) {
        std::printf("no conflicts recorded%s\n",
                    table.empty() ? "" : (" for table " + table).c_str());
        return 0;
    }
    for (const auto& c : *list) {
        std::printf("%s[%s].%s  rule %s\n", c.table.c_str(), key_text(c.key).c_str(),
                    c.column.empty() ? "(row)" : c.column.c_str(), c.rule.c_str());
        std::printf("  kept    %-24s written %s by %s\n", c.winner_value.to_string().c_str(),
                    c.winner.hlc.to_string().c_str(), c.winner.node.short_string().c_str());
        std::printf("  lost    %-24s written %s by %s\n", c.loser_value.to_string().c_str(),
                    c.loser.hlc.to_string().c_str(), c.loser.node.short_string().c_str());
        std::printf("  why     %s\n", c.reason.c_str());
    }
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"peerlite: look inside a peerlite node's database"};
    app.require_subcommand(1);
    auto* cmd = app.add_subcommand(
        "conflicts", "every decided conflict: cell, kept and lost values, who wrote them, why");
    std::string db, table;
    std::size_t limit = 100;
    bool json = false;
    cmd->add_option("DB", db, "the node's SQLite file")->required()->check(CLI::ExistingFile);
    cmd->add_option("--table", table, "only this table");
    cmd->add_option("--limit", limit, "at most this many, newest first (default 100)");
    cmd->add_flag("--json", json, "one JSON array, stable field names, for scripts");
    cmd->footer("Example: peerlite conflicts alpha.db --table items --limit 20");
    cli::StatusArgs status_args;
    auto* status = app.add_subcommand(
        "status", "a running daemon's members, their health and lag, version vectors, counters");
    status->add_option("--config", status_args.config,
                       "the daemon's config file (its [node] admin endpoint is used)");
    status->add_option("--node", status_args.node,
                       "the admin endpoint instead: a socket file, ipc://FILE or tcp://HOST:PORT");
    status->add_option("--timeout", status_args.timeout_ms,
                       "milliseconds to wait for the daemon (default 3000)");
    status->add_flag("--json", status_args.json, "the daemon's JSON document, for scripts");
    status->footer("Examples:\n  peerlite status --config /etc/peerlite/alpha.toml\n"
                   "  peerlite status --node /run/peerlite/alpha.admin.sock --json\n"
                   "Exit status: 0 the daemon answered, 1 it did not, 2 bad usage.");
    app.set_version_flag("--version", "peerlite 0.1.0");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? 0 : 2;
    }
    if (status->parsed()) {
        return cli::status_command(status_args);
    }
    return conflicts(db, table, limit, json);
}
