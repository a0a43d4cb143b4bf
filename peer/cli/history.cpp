// peerlite history: what this node knows of one row, column by column.
#include <cstdio>

#include "cli_common.hpp"

namespace peerlite::cli {

namespace {

struct Options {
    std::string db, table, key;
    bool json = false;
};

std::string life_text(const store::RowHistory& h) {
    if (!h.known) {
        return "not captured yet";
    }
    return std::string(h.life % 2 ? "exists" : "DELETED") + " (life " + std::to_string(h.life) +
           ": " + (h.life % 2 ? "inserted " : "deleted ") + stamp_text(h.life_stamp) + ")";
}

void print_text(const store::TableInfo& t, const store::RowHistory& h) {
    std::printf("%s  %s\n", row_text(t.name, h.key).c_str(), life_text(h).c_str());
    if (h.picked_up) {
        std::printf("  note: stamped and sent to peers by the daemon; written into the file "
                    "when the app is idle\n");
    }
    if (h.pending > 0) {
        std::printf("  note: %zu write(s) to this row are captured but not stamped yet\n",
                    h.pending);
    }
    std::printf("  %-16s %-8s %-24s %s\n", "column", "rule", "value", "written");
    for (const auto& c : h.columns) {
        std::string written = c.written ? stamp_text(*c.written) : "-";
        if (c.column.rule == crdt::MergeRule::counter) {
            written = c.contributions.empty() ? "-" : "sum of:";
        }
        std::printf("  %-16s %-8s %-24s %s\n", c.column.name.c_str(),
                    std::string(crdt::rule_name(c.column.rule)).c_str(),
                    value_text(c.value, 24).c_str(), written.c_str());
        for (const auto& k : c.contributions) {
            std::printf("      %lld from %s\n", static_cast<long long>(k.total),
                        stamp_text(k.stamp).c_str());
        }
        for (const auto& x : c.conflicts) {
            std::printf("    conflict #%lld decided %s: kept %s by %s, lost %s by %s\n",
                        static_cast<long long>(x.id), format_ms(x.decided_at_ms).c_str(),
                        value_text(x.winner_value, 24).c_str(),
                        x.winner.node.short_string().c_str(), value_text(x.loser_value, 24).c_str(),
                        x.loser.node.short_string().c_str());
            std::printf("      %s%s\n", store::reason_text(x).c_str(),
                        x.resolved ? ("; resolved by " + x.resolved->by + " at " +
                                      format_ms(x.resolved->at_ms))
                                         .c_str()
                                   : "");
        }
    }
}

nlohmann::json to_json(const store::TableInfo& t, const store::RowHistory& h) {
    auto columns = nlohmann::json::array();
    for (const auto& c : h.columns) {
        auto contributions = nlohmann::json::array();
        for (const auto& k : c.contributions) {
            auto j = stamp_json(k.stamp);
            j["total"] = k.total;
            contributions.push_back(j);
        }
        auto conflicts = nlohmann::json::array();
        for (const auto& x : c.conflicts) {
            conflicts.push_back(conflict_json(x));
        }
        columns.push_back({{"name", c.column.name},
                           {"rule", crdt::rule_name(c.column.rule)},
                           {"value", value_json(c.value)},
                           {"written", c.written ? stamp_json(*c.written) : nlohmann::json()},
                           {"contributions", contributions},
                           {"conflicts", conflicts}});
    }
    return {{"table", t.name},
            {"key", key_json(h.key)},
            {"key_text", crdt::format_key(h.key)},
            {"known", h.known},
            {"exists", h.exists},
            {"life", h.life},
            {"life_stamp", h.known ? stamp_json(h.life_stamp) : nlohmann::json()},
            {"pending_writes", h.pending},
            {"picked_up", h.picked_up},
            {"columns", columns}};
}

int run(const Options& o) {
    int code = kOk;
    auto db = open_read_only(o.db, code);
    if (!db) {
        return code;
    }
    auto t = db->table(o.table);
    if (!t) {
        return fail(t.status());
    }
    auto key = db->parse_key(**t, o.key);
    if (!key) {
        return fail(key.status());
    }
    auto h = db->history(**t, *key);
    if (!h) {
        return fail(h.status());
    }
    if (o.json) {
        print_json(to_json(**t, *h));
    } else {
        print_text(**t, *h);
    }
    return kOk;
}

} // namespace

void add_history(CLI::App& app, Command& run_command) {
    auto o = std::make_shared<Options>();
    auto* cmd = app.add_subcommand(
        "history",
        "what this node knows of one row: each column's value, the write that holds "
        "it (clock and origin node), its conflicts; whether the row was deleted, by whom");
    cmd->add_option("DB", o->db, "the node's SQLite file (opened read-only)")->required();
    cmd->add_option("TABLE", o->table, "a synced table")->required();
    cmd->add_option("KEY", o->key,
                    "the row's primary key as text; a composite key as comma-separated values "
                    "in key order (\\, for a literal comma); converted with each key column's "
                    "type affinity; x'00ff' for a BLOB")
        ->required();
    cmd->add_flag("--json", o->json, "one JSON object, for scripts");
    cmd->footer("Examples:\n"
                "  peerlite history alpha.db items k1\n"
                "  peerlite history alpha.db stock 'warehouse 7,42'   # key (site, sku)\n"
                "  peerlite history alpha.db items k1 --json");
    cmd->callback([&run_command, o] {
        run_command = [o] {
            return run(*o);
        };
    });
}

} // namespace peerlite::cli
