// peerlite resolve: the operator's choice for a conflicted cell becomes a new write.
#include <cstdio>
#include <cstdlib>

#include <peerlite/operate/operator_commands.hpp>

#include "cli_common.hpp"

namespace peerlite::cli {

namespace {

struct Options {
    std::string db, table, key, column, value, by;
    std::int64_t keep_loser = 0;
    bool json = false;
    // A row set aside (peerlite conflicts --set-aside): one of these.
    bool drop = false, put_back = false, replace_holder = false;
    std::vector<std::string> set; // COL=VALUE
};

// peerlite resolve DB TABLE KEY --drop | --put-back | --replace-holder [--set COL=VALUE]...
int run_settle(const Options& o) {
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
    db.reset();
    store::SettleRequest request;
    request.table = o.table;
    request.key = *key;
    request.action = o.drop             ? store::SettleRequest::Action::drop
                     : o.replace_holder ? store::SettleRequest::Action::replace_holder
                                        : store::SettleRequest::Action::put_back;
    for (const auto& assignment : o.set) {
        auto eq = assignment.find('=');
        if (eq == std::string::npos || eq == 0) {
            return fail(Status(Code::invalid_argument,
                               "--set takes COLUMN=VALUE, not '" + assignment + "'"));
        }
        request.set.emplace_back(assignment.substr(0, eq), parse_value(assignment.substr(eq + 1)));
    }
    auto done = store::settle(o.db, request);
    if (!done) {
        return fail(done.status());
    }
    const char* what = o.drop ? "dropped (a delete, synced like any)"
                              : "put back into the table (a write, synced like any)";
    if (o.json) {
        auto deleted = nlohmann::json::array();
        for (const auto& k : done->deleted) {
            deleted.push_back(key_json(k));
        }
        print_json(
            {{"table", o.table},
             {"key", key_json(*key)},
             {"action", o.drop ? "drop" : (o.replace_holder ? "replace_holder" : "put_back")},
             {"deleted", deleted}});
        return kOk;
    }
    for (const auto& k : done->deleted) {
        std::printf("%s deleted: it held the value\n", row_text(o.table, k).c_str());
    }
    std::printf("%s %s\n", row_text(o.table, *key).c_str(), what);
    std::printf("The node stamps this when it picks it up (a running daemon: within\n"
                "milliseconds), and every node settles the row the same way once it arrives.\n");
    return kOk;
}

// The value to write: --value as typed, or the loser of conflict --keep-loser, which
// must be a conflict of this very cell.
Result<crdt::Value> chosen_value(store::Inspector& db, const Options& o,
                                 const std::vector<crdt::Value>& key) {
    if (o.keep_loser == 0) {
        return parse_value(o.value);
    }
    store::ConflictQuery query;
    query.id = o.keep_loser;
    auto found = db.conflicts(query);
    if (!found) {
        return found.status();
    }
    if (found->empty()) {
        return Status(Code::not_found, "no conflict #" + std::to_string(o.keep_loser) +
                                           " in the log (see peerlite conflicts)");
    }
    const auto& c = found->front();
    if (c.table != o.table || c.key != key || c.column != o.column) {
        return Status(Code::invalid_argument, "conflict #" + std::to_string(o.keep_loser) +
                                                  " is about " + row_text(c.table, c.key) + "." +
                                                  c.column + ", not " + row_text(o.table, key) +
                                                  "." + o.column);
    }
    return c.loser_value;
}

int run(const Options& o) {
    int code = kOk;
    auto db = open_read_only(o.db, code); // checks the file without creating anything
    if (!db) {
        return code;
    }
    auto t = db->table(o.table);
    if (!t) {
        return fail(t.status());
    }
    if ((*t)->column_index(o.column) < 0) {
        return fail(Status(Code::unknown_column,
                           "table '" + o.table + "' has no synced column '" + o.column + "'"));
    }
    auto key = db->parse_key(**t, o.key);
    if (!key) {
        return fail(key.status());
    }
    auto value = chosen_value(*db, o, *key);
    if (!value) {
        return fail(value.status());
    }
    db.reset();
    const char* user = std::getenv("USER");
    auto by = !o.by.empty() ? o.by : (user && *user ? user : "unknown");
    auto done = store::resolve(o.db, {o.table, *key, o.column, *value, by});
    if (!done) {
        return fail(done.status());
    }
    if (o.json) {
        print_json({{"table", o.table},
                    {"key", key_json(*key)},
                    {"column", o.column},
                    {"value", value_json(*value)},
                    {"written", done->written},
                    {"conflicts_resolved", done->conflicts_resolved},
                    {"by", by}});
        return kOk;
    }
    if (done->written) {
        std::printf("%s.%s = %s written\n", row_text(o.table, *key).c_str(), o.column.c_str(),
                    value_text(*value).c_str());
    } else {
        std::printf("%s.%s already holds %s: nothing written\n", row_text(o.table, *key).c_str(),
                    o.column.c_str(), value_text(*value).c_str());
    }
    std::printf("marked %zu conflict(s) resolved by %s\n", done->conflicts_resolved, by.c_str());
    if (done->written) {
        std::printf(
            "The node stamps this write when it picks it up (a running daemon: within\n"
            "milliseconds; otherwise the next time peerlite opens the file) with a clock newer\n"
            "than everything it has seen, so it wins on every node it reaches unless someone\n"
            "writes the cell again later (that shows as a new conflict).\n");
    }
    return kOk;
}

} // namespace

void add_resolve(CLI::App& app, Command& run_command) {
    auto o = std::make_shared<Options>();
    auto* cmd = app.add_subcommand(
        "resolve", "settle a conflicted cell: the chosen value becomes a new local write that "
                   "wins last-writer-wins everywhere, and the cell's conflicts are marked "
                   "resolved (who, when); or settle a row set aside by a constraint (drop it, "
                   "or put it back, changed)");
    cmd->add_option("DB", o->db, "the node's SQLite file")->required();
    cmd->add_option("TABLE", o->table, "a synced table")->required();
    cmd->add_option("KEY", o->key, "the row's key (as for `peerlite history`)")->required();
    cmd->add_option("COLUMN", o->column, "the conflicted column (not for a row set aside)");
    auto* value = cmd->add_option("--value", o->value,
                                  "the value to keep: numbers as numbers, x'00ff' a BLOB, "
                                  "anything else TEXT (the column's type converts it further)");
    auto* loser = cmd->add_option("--keep-loser", o->keep_loser,
                                  "keep the losing value of conflict N (an id from "
                                  "`peerlite conflicts`; it must be about this cell)");
    value->excludes(loser);
    auto* drop = cmd->add_flag("--drop", o->drop,
                               "a row set aside (peerlite conflicts): delete it on every node");
    auto* put_back = cmd->add_flag("--put-back", o->put_back,
                                   "a row set aside: write it back into the table as merged, "
                                   "with --set changes (e.g. a new e-mail, a valid range)");
    auto* replace = cmd->add_flag("--replace-holder", o->replace_holder,
                                  "a row set aside by a UNIQUE constraint: delete the rows "
                                  "holding its value, then put it back");
    cmd->add_option("--set", o->set,
                    "COLUMN=VALUE changed in the row put back (repeatable; values as --value)");
    cmd->add_option("--by", o->by, "who decides (default: $USER)");
    cmd->add_flag("--json", o->json, "print the result as one JSON object");
    cmd->callback([&run_command, o, value, loser, drop, put_back, replace] {
        auto settle_flags = drop->count() + put_back->count() + replace->count();
        if (settle_flags > 0) {
            if (settle_flags != 1 || value->count() + loser->count() > 0 || !o->column.empty()) {
                throw CLI::ValidationError("resolve", "a row set aside takes exactly one of "
                                                      "--drop, --put-back and --replace-holder, "
                                                      "and no COLUMN, --value or --keep-loser");
            }
            if (o->drop && !o->set.empty()) {
                throw CLI::ValidationError("resolve", "--set goes with --put-back or "
                                                      "--replace-holder, not --drop");
            }
            run_command = [o] {
                return run_settle(*o);
            };
            return;
        }
        if (o->column.empty() || value->count() + loser->count() != 1 || !o->set.empty()) {
            throw CLI::ValidationError("resolve", "a conflicted cell takes COLUMN and exactly one "
                                                  "of --value and --keep-loser");
        }
        run_command = [o] {
            return run(*o);
        };
    });
    cmd->footer("Examples:\n"
                "  peerlite resolve alpha.db items k1 title --value 'Blue pen'\n"
                "  peerlite resolve alpha.db items k1 title --keep-loser 12 --by alice\n"
                "  peerlite resolve alpha.db users u2 --put-back --set email=u2@example.com\n"
                "  peerlite resolve alpha.db users u2 --replace-holder\n"
                "  peerlite resolve alpha.db ev e1 --drop\n"
                "Refused: counter columns (every node's increments are kept; nothing to choose),\n"
                "and max/min columns when the value ranks below the current one (it could never\n"
                "win there), and deleted rows (re-insert the row instead).");
}

} // namespace peerlite::cli
