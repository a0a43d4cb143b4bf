// peerlite diff: where two replicas' synced tables differ, cell by cell.
#include <algorithm>
#include <cstdio>
#include <set>

#include <peerlite/peer/admin.hpp>

#include "cli_common.hpp"

namespace peerlite::cli {

namespace {

struct Options {
    std::string a, b, table;
    bool json = false;
    bool digests = false;
};

struct Difference {
    std::string table;
    std::optional<std::vector<crdt::Value>> key; // none: about the whole table
    std::string column;                          // empty: about the whole row
    nlohmann::json a, b;                         // values, or what is missing
    std::string text;
};

using Diffs = std::vector<Difference>;

void compare_rows(const store::TableInfo& ta, const store::TableInfo& tb,
                  const store::TableContents& ca, const store::TableContents& cb, Diffs& out) {
    auto keys = std::set<std::vector<crdt::Value>>();
    for (const auto& [k, v] : ca) {
        keys.insert(k);
    }
    for (const auto& [k, v] : cb) {
        keys.insert(k);
    }
    for (const auto& k : keys) {
        auto ia = ca.find(k), ib = cb.find(k);
        auto row = row_text(ta.name, k);
        if (ia == ca.end() || ib == cb.end()) {
            bool in_a = ia != ca.end();
            out.push_back({ta.name, k, "", in_a ? "row" : "missing", in_a ? "missing" : "row",
                           row + ": only in " + (in_a ? "A" : "B")});
            continue;
        }
        for (std::size_t i = 0; i < ta.columns.size(); ++i) {
            int j = tb.column_index(ta.columns[i].name);
            if (j < 0 || ia->second[i] == ib->second[static_cast<std::size_t>(j)]) {
                continue;
            }
            const auto& va = ia->second[i];
            const auto& vb = ib->second[static_cast<std::size_t>(j)];
            out.push_back({ta.name, k, ta.columns[i].name, value_json(va), value_json(vb),
                           row + "." + ta.columns[i].name + ": A " + value_text(va) + "  B " +
                               value_text(vb)});
        }
    }
}

Status compare_table(store::Inspector& a, store::Inspector& b, const store::TableInfo& ta,
                     Diffs& out) {
    auto tb = b.table(ta.name);
    if (!tb) {
        out.push_back({ta.name, std::nullopt, "", "synced", "not synced",
                       "table " + ta.name + ": synced only in A"});
        return Status::success();
    }
    for (const auto& c : ta.columns) {
        if ((*tb)->column_index(c.name) < 0) {
            out.push_back({ta.name, std::nullopt, c.name, "synced", "not synced",
                           "table " + ta.name + ": column " + c.name + " synced only in A"});
        }
    }
    for (const auto& c : (*tb)->columns) {
        if (ta.column_index(c.name) < 0) {
            out.push_back({ta.name, std::nullopt, c.name, "not synced", "synced",
                           "table " + ta.name + ": column " + c.name + " synced only in B"});
        }
    }
    auto ca = a.contents(ta);
    auto cb = b.contents(**tb);
    if (!ca || !cb) {
        return !ca ? ca.status() : cb.status();
    }
    compare_rows(ta, **tb, *ca, *cb, out);
    return Status::success();
}

int report(const Options& o, const Diffs& diffs) {
    if (o.json) {
        auto list = nlohmann::json::array();
        for (const auto& d : diffs) {
            list.push_back({{"table", d.table},
                            {"key", d.key ? key_json(*d.key) : nlohmann::json()},
                            {"key_text", d.key ? crdt::format_key(*d.key) : ""},
                            {"column", d.column},
                            {"a", d.a},
                            {"b", d.b}});
        }
        print_json({{"a", o.a}, {"b", o.b}, {"identical", diffs.empty()}, {"differences", list}});
    } else {
        for (const auto& d : diffs) {
            std::printf("%s\n", d.text.c_str());
        }
        if (diffs.empty()) {
            std::printf("identical: %s and %s hold the same synced content\n", o.a.c_str(),
                        o.b.c_str());
        } else {
            std::printf("%zu difference(s) (A = %s, B = %s)\n", diffs.size(), o.a.c_str(),
                        o.b.c_str());
        }
    }
    return diffs.empty() ? kOk : kFailure;
}

// Either a database file (read-only) or a running daemon's admin endpoint (ipc://...,
// tcp://...): its content digests, as peer::digests_json() writes them.
int load_digests(const std::string& where, nlohmann::json& out) {
    if (where.rfind("ipc://", 0) == 0 || where.rfind("tcp://", 0) == 0) {
        auto reply = peer::query_admin(where, "digests", std::chrono::seconds(5));
        if (!reply) {
            std::fprintf(stderr, "peerlite: %s\n", reply.status().message().c_str());
            return kFailure;
        }
        auto doc = nlohmann::json::parse(*reply, nullptr, false);
        if (doc.is_discarded() || doc.contains("error") || !doc.contains("databases")) {
            std::fprintf(stderr, "peerlite: %s answered: %s\n", where.c_str(), reply->c_str());
            return kFailure;
        }
        if (doc["databases"].size() != 1) {
            std::fprintf(stderr, "peerlite: %s serves %zu databases; compare their files instead\n",
                         where.c_str(), doc["databases"].size());
            return kUsage;
        }
        out = doc["databases"][0];
        return kOk;
    }
    int code = kOk;
    auto inspector = open_read_only(where, code);
    if (!inspector) {
        return code;
    }
    auto digests = inspector->digests();
    if (!digests) {
        return fail(digests.status());
    }
    out = peer::digests_json(where, *digests);
    return kOk;
}

// The digests of both replicas, table by table (docs/design/digests.md): cheap on any size
// of table, and it covers what the values do not show (stamps, lives, contributions).
int compare_digests(const Options& o) {
    nlohmann::json da, db;
    if (int code = load_digests(o.a, da); code != kOk) {
        return code;
    }
    if (int code = load_digests(o.b, db); code != kOk) {
        return code;
    }
    bool same_versions = da["versions"] == db["versions"];
    auto tables = nlohmann::json::array();
    bool agree = true;
    std::string text;
    auto find = [](const nlohmann::json& d, const std::string& name) -> const nlohmann::json* {
        for (const auto& t : d["tables"]) {
            if (t["table"] == name) {
                return &t;
            }
        }
        return nullptr;
    };
    std::set<std::string> names;
    for (const auto* d : {&da, &db}) {
        for (const auto& t : (*d)["tables"]) {
            if (o.table.empty() || t["table"] == o.table) {
                names.insert(t["table"].get<std::string>());
            }
        }
    }
    for (const auto& name : names) {
        const auto* ta = find(da, name);
        const auto* tb = find(db, name);
        nlohmann::json entry{{"table", name}};
        std::string line;
        if (!ta || !tb) {
            entry["state"] = "synced in one only";
            line = "table " + name + ": synced only in " + (ta ? "A" : "B");
        } else if ((*ta)["schema"] != (*tb)["schema"]) {
            entry["state"] = "schema differs";
            line = "table " + name + ": synced columns or rules differ, digests not comparable";
        } else {
            auto differing = nlohmann::json::array();
            const auto& ba = (*ta)["buckets"];
            const auto& bb = (*tb)["buckets"];
            for (std::size_t i = 0; i < ba.size() && i < bb.size(); ++i) {
                if (ba[i] != bb[i]) {
                    differing.push_back(i);
                }
            }
            entry["state"] = differing.empty() ? "agree" : "differ";
            entry["buckets_differing"] = differing;
            line = "table " + name + ": " +
                   (differing.empty()
                        ? std::string("digests agree")
                        : std::to_string(differing.size()) + " of " +
                              std::to_string(wire::kDigestBuckets) + " digest buckets differ");
        }
        agree = agree && entry["state"] == "agree";
        tables.push_back(entry);
        text += line + "\n";
    }
    if (o.json) {
        print_json({{"a", o.a},
                    {"b", o.b},
                    {"same_versions", same_versions},
                    {"agree", agree && same_versions},
                    {"tables", tables}});
    } else {
        std::printf("%s", text.c_str());
        if (!same_versions) {
            std::printf("version vectors differ: changes are still in flight between A and B, so "
                        "their digests may differ for that reason alone\n");
        } else if (agree) {
            std::printf("agree: %s and %s hold the same versions and the same content\n",
                        o.a.c_str(), o.b.c_str());
        } else {
            std::printf("diverged: %s and %s hold the same versions but not the same content; "
                        "running daemons repair this at their next anti-entropy exchange\n",
                        o.a.c_str(), o.b.c_str());
        }
    }
    return agree && same_versions ? kOk : kFailure;
}

int run(const Options& o) {
    if (o.digests) {
        return compare_digests(o);
    }
    int code = kOk;
    auto a = open_read_only(o.a, code);
    auto b = a ? open_read_only(o.b, code) : nullptr;
    if (!a || !b) {
        return code;
    }
    Diffs diffs;
    if (!o.table.empty()) {
        auto ta = a->table(o.table);
        if (!ta) {
            return fail(ta.status());
        }
        if (auto tb = b->table(o.table); !tb) {
            return fail(tb.status());
        }
        if (auto st = compare_table(*a, *b, **ta, diffs); !st.ok()) {
            return fail(st);
        }
        return report(o, diffs);
    }
    for (const auto& ta : a->tables()) {
        if (auto st = compare_table(*a, *b, ta, diffs); !st.ok()) {
            return fail(st);
        }
    }
    for (const auto& tb : b->tables()) {
        if (!a->table(tb.name)) {
            diffs.push_back({tb.name, std::nullopt, "", "not synced", "synced",
                             "table " + tb.name + ": synced only in B"});
        }
    }
    return report(o, diffs);
}

} // namespace

void add_diff(CLI::App& app, Command& run_command) {
    auto o = std::make_shared<Options>();
    auto* cmd = app.add_subcommand(
        "diff", "rows and cells in which two replicas' synced tables differ (what users see, "
                "not metadata). Exit status 0: identical, 1: different, 2: bad usage");
    cmd->add_option("A", o->a, "one replica's SQLite file (opened read-only)")->required();
    cmd->add_option("B", o->b, "the other replica's SQLite file (opened read-only)")->required();
    cmd->add_option("--table", o->table, "only this table (must be synced in both)");
    cmd->add_flag("--json", o->json,
                  "one JSON object: identical, differences[] (with --digests: same_versions, "
                  "agree, tables[])");
    cmd->add_flag("--digests", o->digests,
                  "compare the content digests the replicas keep instead of their rows: fast on "
                  "any table size, and it also sees differences in metadata (stamps, counter "
                  "contributions) that values do not show. A and B may then also be running "
                  "daemons' admin endpoints (ipc://FILE, tcp://HOST:PORT). Exit 0 only if the "
                  "version vectors and every digest agree");
    cmd->footer("Examples:\n"
                "  peerlite diff alpha.db beta.db\n"
                "  peerlite diff alpha.db beta.db --table items --json\n"
                "  peerlite diff --digests alpha.db beta.db\n"
                "  peerlite diff --digests ipc://alpha.admin.sock tcp://10.0.0.6:7401\n"
                "Replicas that have applied the same changes are identical; a difference means\n"
                "changes are still in flight (or a bug). Copy the files first (peerlite snapshot)\n"
                "to compare nodes on other machines.");
    cmd->callback([&run_command, o] {
        run_command = [o] {
            return run(*o);
        };
    });
}

} // namespace peerlite::cli
