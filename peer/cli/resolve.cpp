// peerlite resolve: the operator's choice for a conflicted cell becomes a new write.
#include <cstdio>
#include <cstdlib>

#include <peerlite/store/operate.hpp>

#include "cli_common.hpp"

namespace peerlite::cli {

namespace {

struct Options {
    std::string db, table, key, column, value, by;
    std::int64_t keep_loser = 0;
    bool json = false;
};

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
                   "resolved (who, when)");
    cmd->add_option("DB", o->db, "the node's SQLite file")->required();
    cmd->add_option("TABLE", o->table, "a synced table")->required();
    cmd->add_option("KEY", o->key, "the row's key (as for `peerlite history`)")->required();
    cmd->add_option("COLUMN", o->column, "the conflicted column")->required();
    auto* value = cmd->add_option("--value", o->value,
                                  "the value to keep: numbers as numbers, x'00ff' a BLOB, "
                                  "anything else TEXT (the column's type converts it further)");
    auto* loser = cmd->add_option("--keep-loser", o->keep_loser,
                                  "keep the losing value of conflict N (an id from "
                                  "`peerlite conflicts`; it must be about this cell)");
    value->excludes(loser);
    cmd->add_option("--by", o->by, "who decides (default: $USER)");
    cmd->add_flag("--json", o->json, "print the result as one JSON object");
    cmd->callback([&run_command, o, value, loser] {
        if (value->count() + loser->count() != 1) {
            throw CLI::ValidationError("resolve", "exactly one of --value and --keep-loser");
        }
        run_command = [o] {
            return run(*o);
        };
    });
    cmd->footer("Examples:\n"
                "  peerlite resolve alpha.db items k1 title --value 'Blue pen'\n"
                "  peerlite resolve alpha.db items k1 title --keep-loser 12 --by alice\n"
                "Refused: counter columns (every node's increments are kept; nothing to choose),\n"
                "and max/min columns when the value ranks below the current one (it could never\n"
                "win there), and deleted rows (re-insert the row instead).");
}

} // namespace peerlite::cli
