// peerlite snapshot (a copy that seeds a new node), forget-owner (after a key pair was
// replaced) and verify (metadata checks).
#include <cstdio>

#include <peerlite/operate/operator_commands.hpp>

#include "cli_common.hpp"

namespace peerlite::cli {

namespace {

struct SnapshotOptions {
    std::string db, out;
};

int snapshot(const SnapshotOptions& o) {
    int code = kOk;
    auto source = open_read_only(o.db, code);
    if (!source) {
        return code;
    }
    auto node = source->node_id().short_string();
    source.reset();
    if (auto st = store::snapshot(o.db, o.out); !st.ok()) {
        return fail(st);
    }
    std::printf("%s: copy of %s (node %s) with its sync metadata; a node started on it gets a "
                "new node id\n",
                o.out.c_str(), o.db.c_str(), node.c_str());
    return kOk;
}

struct ForgetOwnerOptions {
    std::string db;
};

int forget_owner(const ForgetOwnerOptions& o) {
    int code = kOk;
    auto source = open_read_only(o.db, code); // the same checks: exists, is a peerlite file
    if (!source) {
        return code;
    }
    auto node = source->node_id().short_string();
    source.reset();
    if (auto st = store::forget_owner(o.db); !st.ok()) {
        return fail(st);
    }
    std::printf("%s: node %s forgot its daemon's public key; the next peerlited started on it "
                "records its own\n",
                o.db.c_str(), node.c_str());
    return kOk;
}

struct VerifyOptions {
    std::string db;
    bool json = false;
};

int verify(const VerifyOptions& o) {
    int code = kOk;
    auto db = open_read_only(o.db, code);
    if (!db) {
        return code;
    }
    auto found = db->verify();
    if (!found) {
        return fail(found.status());
    }
    std::size_t violations = 0;
    auto list = nlohmann::json::array();
    for (const auto& v : *found) {
        violations += v.warning ? 0 : 1;
        list.push_back(
            {{"table", v.table}, {"key", v.key}, {"what", v.what}, {"warning", v.warning}});
        if (!o.json) {
            std::printf("%s%s%s%s%s\n", v.warning ? "warning: " : "violation: ",
                        v.table.empty() ? "" : ("table " + v.table).c_str(),
                        v.key.empty() ? "" : (", key " + v.key).c_str(),
                        v.table.empty() && v.key.empty() ? "" : ": ", v.what.c_str());
        }
    }
    if (o.json) {
        print_json({{"db", o.db}, {"clean", violations == 0}, {"findings", list}});
    } else if (violations == 0) {
        std::printf("%s: clean (%zu synced table(s) checked)\n", o.db.c_str(), db->tables().size());
    } else {
        std::printf("%s: %zu violation(s)\n", o.db.c_str(), violations);
    }
    return violations == 0 ? kOk : kFailure;
}

} // namespace

void add_snapshot(CLI::App& app, Command& run_command) {
    auto o = std::make_shared<SnapshotOptions>();
    auto* cmd = app.add_subcommand(
        "snapshot", "a consistent copy of a live database with its sync metadata, to start a "
                    "new node from; the copy carries no node identity");
    cmd->add_option("DB", o->db, "the node's SQLite file (a daemon may be running on it)")
        ->required();
    cmd->add_option("OUT", o->out, "the copy to write (must not exist)")->required();
    cmd->footer("Example:\n"
                "  peerlite snapshot alpha.db gamma.db   # then start gamma's daemon on gamma.db\n"
                "The copy waits until the daemon has stamped pending writes (without a daemon,\n"
                "peerlite stamps them). A node opened on the copy draws a new node id and syncs\n"
                "only what it lacks.");
    cmd->callback([&run_command, o] {
        run_command = [o] {
            return snapshot(*o);
        };
    });
}

void add_forget_owner(CLI::App& app, Command& run_command) {
    auto o = std::make_shared<ForgetOwnerOptions>();
    auto* cmd = app.add_subcommand(
        "forget-owner", "let a node whose key pair was replaced start on its file again (the "
                        "file remembers the public key it ran with, to refuse copies)");
    cmd->add_option("DB", o->db, "the node's SQLite file (its daemon must be stopped)")->required();
    cmd->footer("Example:\n"
                "  peerlite forget-owner beta.db   # after giving beta a new key pair\n"
                "Never the way to start a node on a copied file: the copy would keep the\n"
                "original's node id. Seed new nodes with 'peerlite snapshot'.");
    cmd->callback([&run_command, o] {
        run_command = [o] {
            return forget_owner(*o);
        };
    });
}

void add_verify(CLI::App& app, Command& run_command) {
    auto o = std::make_shared<VerifyOptions>();
    auto* cmd = app.add_subcommand(
        "verify", "check the sync metadata's invariants: every row has its record, every record "
                  "without a row is a tombstone, triggers present and current, nothing orphaned");
    cmd->add_option("DB", o->db, "the node's SQLite file (opened read-only)")->required();
    cmd->add_flag("--json", o->json, "one JSON object: clean, findings[]");
    cmd->footer("Exit status 0: clean (warnings allowed), 1: violations found, 2: bad usage.\n"
                "Example:\n"
                "  peerlite verify alpha.db");
    cmd->callback([&run_command, o] {
        run_command = [o] {
            return verify(*o);
        };
    });
}

} // namespace peerlite::cli
