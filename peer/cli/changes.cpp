// peerlite changes: the change feed, one change per line, optionally followed live.
//
// --follow polls SQLite's data_version (a cheap read that changes when any connection
// commits) every --interval milliseconds and reads the feed only when it changed. Each
// read is its own short read transaction; nothing is held between polls, so the WAL
// checkpoints normally. SIGINT and SIGTERM end the loop; a closed pipe (SIGPIPE, e.g.
// `| head`) ends it too: the signal is ignored, and the loop notices the reader's hang-up
// while it waits (or a failed write).
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <poll.h>
#include <unistd.h>

#include "cli_common.hpp"

namespace peerlite::cli {

namespace {

volatile std::sig_atomic_t g_stop = 0;

void on_signal(int) {
    g_stop = 1;
}

struct Options {
    std::string db, since;
    bool follow = false, json = false;
    int interval_ms = 200;
};

const char* op_name(store::FeedEntry::Kind k) {
    switch (k) {
    case store::FeedEntry::Kind::insert: return "insert";
    case store::FeedEntry::Kind::remove: return "delete";
    case store::FeedEntry::Kind::cell: return "set";
    case store::FeedEntry::Kind::counter: return "count";
    }
    return "?";
}

void print_entry(const store::FeedEntry& e, bool json) {
    if (json) {
        auto j = stamp_json(e.stamp);
        j["op"] = op_name(e.kind);
        j["table"] = e.table;
        j["key"] = key_json(e.key);
        j["key_text"] = crdt::format_key(e.key);
        j["column"] = e.column;
        j["value"] = value_json(e.value);
        if (e.kind == store::FeedEntry::Kind::counter) {
            j["contribution"] = e.contribution;
        }
        j["cursor"] = e.cursor;
        print_json(j, true);
        return;
    }
    std::string what;
    if (e.kind == store::FeedEntry::Kind::cell) {
        what = e.column + "=" + e.value.to_string();
    } else if (e.kind == store::FeedEntry::Kind::counter) {
        what = e.column + "=" + e.value.to_string() + " (node total " +
               std::to_string(e.contribution) + ")";
    }
    std::printf("%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.stamp.hlc.to_string().c_str(),
                e.stamp.node.short_string().c_str(), op_name(e.kind), e.table.c_str(),
                crdt::format_key(e.key).c_str(), what.c_str(), e.cursor.c_str());
}

// Prints one page; false when stdout is gone (closed pipe).
bool emit(const store::FeedPage& page, bool json) {
    for (const auto& e : page.entries) {
        print_entry(e, json);
    }
    return std::fflush(stdout) == 0 && !std::ferror(stdout);
}

// Waits up to `ms` (a signal cuts it short); true if stdout is a pipe whose reader has
// closed it. Polling for no event reports only errors and hang-ups, so on a file or a
// terminal this is a plain sleep.
bool reader_gone(int ms) {
    pollfd p{STDOUT_FILENO, 0, 0};
    return poll(&p, 1, ms) > 0 && (p.revents & (POLLERR | POLLHUP)) != 0;
}

void install_handlers() {
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    std::signal(SIGPIPE, SIG_IGN);
}

int run(const Options& o) {
    int code = kOk;
    auto db = open_read_only(o.db, code);
    if (!db) {
        return code;
    }
    install_handlers();
    auto cursor = o.since;
    std::int64_t seen_version = -1;
    do {
        auto version = db->data_version();
        if (!version) {
            return fail(version.status());
        }
        if (*version != seen_version) {
            seen_version = *version;
            auto page = db->changes(cursor);
            if (!page) {
                return fail(page.status());
            }
            if (!emit(*page, o.json)) {
                return kOk; // the reader went away: a normal end for a pipe
            }
            cursor = page->cursor;
        }
        if (o.follow && !g_stop && reader_gone(o.interval_ms)) {
            return kOk;
        }
    } while (o.follow && !g_stop);
    return kOk;
}

} // namespace

void add_changes(CLI::App& app, Command& run_command) {
    auto o = std::make_shared<Options>();
    auto* cmd = app.add_subcommand(
        "changes", "the change feed: one captured or merged change per line (table, key, column, "
                   "value, clock, origin node; inserts and deletes too), in clock order, each "
                   "with a cursor to resume after it");
    cmd->add_option("DB", o->db, "the node's SQLite file (opened read-only)")->required();
    cmd->add_option("--since", o->since, "resume after the change that printed this CURSOR");
    cmd->add_flag("-f,--follow", o->follow,
                  "keep streaming new changes until SIGINT/SIGTERM or the pipe closes");
    cmd->add_option("--interval", o->interval_ms, "--follow poll interval in ms (default 200)")
        ->check(CLI::Range(10, 60'000));
    cmd->add_flag("--json", o->json, "one JSON object per line");
    cmd->footer("Text lines are tab-separated: clock, node, op (insert|delete|set|count), table,\n"
                "key, column=value, cursor. Changes show once the node has stamped them (a\n"
                "running daemon does within milliseconds).\n"
                "Examples:\n"
                "  peerlite changes alpha.db\n"
                "  peerlite changes alpha.db --follow --json | my-consumer\n"
                "  peerlite changes alpha.db --since \"$(tail -1 feed.log | cut -f7)\"");
    cmd->callback([&run_command, o] {
        run_command = [o] {
            return run(*o);
        };
    });
}

} // namespace peerlite::cli
