// peerlite untrack: takes a table out of sync on one node, keeping what it synced.
#include <cstdio>

#include <peerlite/store/store.hpp>

#include "cli_common.hpp"

namespace peerlite::cli {

namespace {

struct UntrackOptions {
    std::string db;
    std::string table;
};

int untrack(const UntrackOptions& o) {
    int code = kOk;
    if (!open_read_only(o.db, code)) { // exists and is a peerlite file; never creates one
        return code;
    }
    store::StoreOptions options;
    options.open_timeout = std::chrono::seconds(5); // an app's transaction, not a daemon
    auto opened = store::Store::open(o.db, options);
    if (!opened) {
        auto st = opened.status();
        return fail(st.code() == Code::busy
                        ? Status(Code::busy, st.message() + "; stop its daemon first")
                        : st);
    }
    auto moved = (*opened)->untrack_table(o.table);
    if (!moved) {
        return fail(moved.status());
    }
    std::printf("%s: table '%s' is no longer synced on this node: its triggers and sync metadata "
                "are gone, its rows are untouched, and the synced state of its %zu row(s) is "
                "kept aside with peers' later changes to it (still served to peers).\n"
                "Remove it from this database's 'tables' in the config before the daemon "
                "starts again, or the daemon adds it back (docs/operating.md).\n",
                o.db.c_str(), o.table.c_str(), *moved);
    return kOk;
}

} // namespace

void add_untrack(CLI::App& app, Command& run_command) {
    auto o = std::make_shared<UntrackOptions>();
    auto* cmd = app.add_subcommand(
        "untrack", "take a table out of sync on this node (its daemon must be stopped); "
                   "to put one in, add it to the config and start the daemon");
    cmd->add_option("DB", o->db, "the node's SQLite file")->required();
    cmd->add_option("TABLE", o->table, "a synced table")->required();
    cmd->footer("Example:\n"
                "  peerlite untrack alpha.db audit_log\n"
                "Run it on every node to take the table out of the mesh. Nothing synced is\n"
                "lost: the table's synced state moves aside and is still served to peers.");
    cmd->callback([&run_command, o] {
        run_command = [o] {
            return untrack(*o);
        };
    });
}

} // namespace peerlite::cli
