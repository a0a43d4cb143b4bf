// peerlite: look inside and operate a peerlite node's database. One subcommand per file
// in this folder; docs/cli.md describes them all.
#include "cli_common.hpp"

int main(int argc, char** argv) {
    using namespace peerlite::cli;
    CLI::App app{"peerlite: look inside and operate a peerlite node's database"};
    app.require_subcommand(1);
    app.set_version_flag("--version", "peerlite 0.1.0");
    Command run;
    for (auto add : {add_conflicts, add_history, add_diff, add_resolve, add_changes, add_snapshot,
                     add_forget_owner, add_untrack, add_verify, add_keygen, add_init, add_status}) {
        add(app, run);
    }
    app.footer("Exit status: 0 success, 1 runtime failure (diff: differences; verify: "
               "violations),\n2 bad usage, missing file, not a peerlite database, unknown table "
               "or column.\nRead-only commands never create a file nor take SQLite's write lock. "
               "See docs/cli.md.");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? kOk : kUsage;
    }
    return run ? run() : kUsage;
}
