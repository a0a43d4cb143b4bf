// peerlite conflicts: what the merges decided, and why.
#include <cstdio>

#include "cli_common.hpp"

namespace peerlite::cli {

namespace {

struct Options {
    std::string db, table, since;
    std::size_t limit = 100;
    bool json = false;
    bool set_aside = false;
};

void print_set_aside(const std::vector<store::SetAsideRow>& rows) {
    if (rows.empty()) {
        return;
    }
    std::printf("%zu row(s) set aside: as merged they break a constraint, so they are kept out "
                "of the table\n(the same on every node); settle each with `peerlite resolve DB "
                "TABLE KEY --drop | --put-back [--set COL=VALUE] | --replace-holder`\n",
                rows.size());
    for (const auto& r : rows) {
        std::printf("aside %s  %s\n", row_text(r.table, r.key).c_str(), r.constraint.c_str());
        auto text = [](const std::vector<std::pair<std::string, crdt::Value>>& values) {
            std::string out;
            for (const auto& [column, value] : values) {
                out += (out.empty() ? "" : " ") + column + "=" + value_text(value, 28);
            }
            return out;
        };
        std::printf("  row      %s\n", text(r.values).c_str());
        for (const auto& h : r.holders) {
            std::printf("  held by  %s (kept: created first)  %s\n",
                        row_text(r.table, h.key).c_str(), text(h.values).c_str());
        }
    }
    std::printf("\n");
}

nlohmann::json set_aside_json(const store::SetAsideRow& r) {
    auto row = [](const std::vector<std::pair<std::string, crdt::Value>>& values) {
        auto out = nlohmann::json::object();
        for (const auto& [column, value] : values) {
            out[column] = value_json(value);
        }
        return out;
    };
    auto holders = nlohmann::json::array();
    for (const auto& h : r.holders) {
        holders.push_back({{"key", key_json(h.key)}, {"row", row(h.values)}});
    }
    return {{"table", r.table},
            {"key", key_json(r.key)},
            {"constraint", r.constraint},
            {"row", row(r.values)},
            {"held_by", holders}};
}

void print_conflict(const store::Conflict& c) {
    std::printf("#%lld %s.%s  rule %s  decided %s\n", static_cast<long long>(c.id),
                row_text(c.table, c.key).c_str(), c.column.empty() ? "(row)" : c.column.c_str(),
                store::rule_text(c).c_str(), format_ms(c.decided_at_ms).c_str());
    std::printf("  kept  %-28s written %s\n", value_text(c.winner_value, 28).c_str(),
                stamp_text(c.winner).c_str());
    std::printf("  lost  %-28s written %s\n", value_text(c.loser_value, 28).c_str(),
                stamp_text(c.loser).c_str());
    std::printf("  why   %s\n", store::reason_text(c).c_str());
    if (c.resolved) {
        std::printf("  resolved %s by %s\n", format_ms(c.resolved->at_ms).c_str(),
                    c.resolved->by.c_str());
    }
}

int run(const Options& o) {
    int code = kOk;
    auto db = open_read_only(o.db, code);
    if (!db) {
        return code;
    }
    store::ConflictQuery query;
    query.limit = o.limit;
    const store::TableInfo* only = nullptr;
    if (!o.table.empty()) {
        auto t = db->table(o.table);
        if (!t) {
            return fail(t.status());
        }
        only = *t;
        query.table = o.table;
    }
    auto aside = db->set_aside(only);
    if (!aside) {
        return fail(aside.status());
    }
    if (o.set_aside) {
        if (o.json) {
            auto out = nlohmann::json::array();
            for (const auto& r : *aside) {
                out.push_back(set_aside_json(r));
            }
            print_json(out);
        } else if (aside->empty()) {
            std::printf("no rows set aside%s\n", o.table.empty() ? "" : (" in " + o.table).c_str());
        } else {
            print_set_aside(*aside);
        }
        return kOk;
    }
    if (!o.since.empty()) {
        auto since = parse_time(o.since, now_ms());
        if (!since) {
            return fail(since.status());
        }
        query.since_ms = *since;
    }
    auto list = db->conflicts(query);
    if (!list) {
        return fail(list.status());
    }
    if (o.json) {
        auto out = nlohmann::json::array();
        for (const auto& c : *list) {
            out.push_back(conflict_json(c));
        }
        print_json(out);
        return kOk;
    }
    print_set_aside(*aside);
    if (list->empty()) {
        std::printf("no conflicts recorded%s\n", o.table.empty() ? "" : (" in " + o.table).c_str());
    }
    for (const auto& c : *list) {
        print_conflict(c);
    }
    return kOk;
}

} // namespace

void add_conflicts(CLI::App& app, Command& run_command) {
    auto o = std::make_shared<Options>();
    auto* cmd = app.add_subcommand(
        "conflicts", "rows set aside by a constraint, then decided conflicts, newest first: "
                     "cell, kept and lost values, who wrote them, why the winner won, and "
                     "whether an operator resolved it");
    cmd->add_option("DB", o->db, "the node's SQLite file (opened read-only)")->required();
    cmd->add_option("--table", o->table, "only this table");
    cmd->add_option("--since", o->since,
                    "only conflicts decided at or after TIME: ISO-8601 UTC "
                    "(2026-11-23T10:00:00Z) or an age (90s, 10m, 2h, 3d)");
    cmd->add_option("--limit", o->limit, "at most N conflicts (default 100)");
    cmd->add_flag("--json", o->json, "a JSON array with stable field names, for scripts");
    cmd->add_flag("--set-aside", o->set_aside,
                  "only the rows set aside because, merged, they break a UNIQUE, CHECK or NOT "
                  "NULL constraint (listed first otherwise; with --json: an array of table, key, "
                  "constraint, row, held_by: the rows keeping it out, each key and row)");
    cmd->footer("Examples:\n"
                "  peerlite conflicts alpha.db\n"
                "  peerlite conflicts alpha.db --table items --since 2h --limit 20\n"
                "  peerlite conflicts alpha.db --json | jq '.[] | select(.resolved == null)'\n"
                "  peerlite conflicts alpha.db --set-aside --json\n"
                "Clocks read as UTC time plus a logical counter: 2026-11-23T10:00:00.500Z+1 is\n"
                "the second event in that millisecond. See docs/cli.md for how to read one.");
    cmd->callback([&run_command, o] {
        run_command = [o] {
            return run(*o);
        };
    });
}

} // namespace peerlite::cli
