// An offline-first to-do list that embeds peerlite: it always works against its own SQLite
// file, and when a peer is reachable the embedded node syncs the list in the background.
// Built outside the peerlite tree, against the installed library:
//
//   c++ -std=c++20 todo.cpp $(pkg-config --cflags --libs peerlite) -o todo
//
// Run two copies (each with its own file) and type commands on standard input:
//   ./todo --db a.db --listen tcp://127.0.0.1:7501
//   ./todo --db b.db --listen tcp://127.0.0.1:7502 --peer tcp://127.0.0.1:7501
// Commands: add TITLE | done ID | vote ID | list | peers | sleep MS | quit
//
// Without --key the nodes talk in plaintext (fine on one machine); with --key PREFIX
// (made by `peerlite keygen PREFIX`) they use CURVE, and --trust KEY names each peer's
// public key, as peerlited does.
#include <cstdio>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>

#include <sqlite3.h>

#include <peerlite/peer/config.hpp>
#include <peerlite/peer/node.hpp>
#include <peerlite/store/writer.hpp>

using namespace peerlite;

namespace {

struct Args {
    std::string db = "todo.db";
    std::string listen = "tcp://127.0.0.1:*";
    std::string key_prefix;
    std::vector<std::string> peers, trusted;
};

bool parse(int argc, char** argv, Args& a) {
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string flag = argv[i], value = argv[i + 1];
        if (flag == "--db") {
            a.db = value;
        } else if (flag == "--listen") {
            a.listen = value;
        } else if (flag == "--peer") {
            a.peers.push_back(value);
        } else if (flag == "--key") {
            a.key_prefix = value;
        } else if (flag == "--trust") {
            a.trusted.push_back(value);
        } else {
            return false;
        }
    }
    return argc % 2 == 1;
}

// The app's schema. `votes` is a counter: votes cast on two devices add up.
Status create_schema(const std::string& path) {
    sqlite3* db = nullptr;
    sqlite3_open(path.c_str(), &db);
    int rc = sqlite3_exec(db,
                          "CREATE TABLE IF NOT EXISTS todos(id TEXT PRIMARY KEY NOT NULL, "
                          "title TEXT NOT NULL, done INTEGER NOT NULL DEFAULT 0, "
                          "votes INTEGER NOT NULL DEFAULT 0)",
                          nullptr, nullptr, nullptr);
    std::string error = sqlite3_errmsg(db);
    sqlite3_close(db);
    return rc == SQLITE_OK ? Status::success() : Status(Code::io_error, path + ": " + error);
}

Status exec(sqlite3* db, const std::string& sql, const std::string& text = {}) {
    sqlite3_stmt* stmt = nullptr;
    sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr);
    if (!text.empty()) {
        sqlite3_bind_text(stmt, 1, text.c_str(), -1, SQLITE_TRANSIENT);
    }
    int rc = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    return rc == SQLITE_DONE ? Status::success() : Status(Code::io_error, sqlite3_errmsg(db));
}

void list(sqlite3* db) {
    sqlite3_stmt* stmt = nullptr;
    sqlite3_prepare_v2(db, "SELECT id, title, done, votes FROM todos ORDER BY title, id", -1, &stmt,
                       nullptr);
    while (sqlite3_step(stmt) == SQLITE_ROW) {
        std::printf("%s [%s] %s (%d votes)\n", sqlite3_column_text(stmt, 0),
                    sqlite3_column_int(stmt, 2) ? "x" : " ", sqlite3_column_text(stmt, 1),
                    sqlite3_column_int(stmt, 3));
    }
    sqlite3_finalize(stmt);
}

// One command line; returns false on quit.
bool command(const std::string& line, store::Writer& writer, const peer::Node& node) {
    std::istringstream in(line);
    std::string verb, rest;
    in >> verb;
    std::getline(in >> std::ws, rest);
    Status st;
    if (verb == "add") {
        st = writer.transaction([&](sqlite3* db) {
            return exec(db, "INSERT INTO todos(id, title) VALUES (lower(hex(randomblob(4))), ?)",
                        rest);
        });
    } else if (verb == "done" || verb == "vote") {
        auto sql = verb == "done" ? "UPDATE todos SET done = 1 WHERE id = ?"
                                  : "UPDATE todos SET votes = votes + 1 WHERE id = ?";
        st = writer.transaction([&](sqlite3* db) { return exec(db, sql, rest); });
    } else if (verb == "list") {
        list(writer.handle());
    } else if (verb == "peers") {
        for (const auto& p : node.peers()) {
            std::printf("%s %s %s\n", p.member.id.short_string().c_str(), p.member.endpoint.c_str(),
                        std::string(peer::state_name(p.state)).c_str());
        }
    } else if (verb == "sleep") {
        std::this_thread::sleep_for(
            std::chrono::milliseconds(std::stoi(rest.empty() ? "0" : rest)));
    } else if (verb == "quit") {
        return false;
    } else if (!verb.empty()) {
        std::printf("commands: add TITLE | done ID | vote ID | list | peers | sleep MS | quit\n");
    }
    if (!st.ok()) {
        std::printf("error: %s\n", st.to_string().c_str());
    }
    std::fflush(stdout);
    return true;
}

} // namespace

int main(int argc, char** argv) {
    Args args;
    if (!parse(argc, argv, args)) {
        std::fprintf(stderr, "usage: todo [--db FILE] [--listen ENDPOINT] [--peer ENDPOINT]... "
                             "[--key PREFIX] [--trust PUBLIC-KEY]...\n");
        return 2;
    }
    if (auto st = create_schema(args.db); !st.ok()) {
        std::fprintf(stderr, "todo: %s\n", st.to_string().c_str());
        return 1;
    }
    peer::NodeOptions options;
    options.database = args.db;
    options.tables = {{"todos", {{"votes", crdt::MergeRule::counter}}}};
    options.transport.listen = args.listen;
    options.transport.plaintext = args.key_prefix.empty();
    if (!args.key_prefix.empty()) {
        auto keys = peer::read_key_file(args.key_prefix + ".key");
        if (!keys) {
            std::fprintf(stderr, "todo: %s\n", keys.status().to_string().c_str());
            return 2;
        }
        options.transport.keys = *keys;
        options.transport.trusted.insert(args.trusted.begin(), args.trusted.end());
    }
    for (const auto& endpoint : args.peers) {
        // With CURVE a seed's key is needed to connect; this example trusts one peer key.
        options.seeds.push_back({endpoint, args.trusted.empty() ? "" : args.trusted.front()});
    }
    // The node runs on its own thread: unreachable peers only delay syncing, never writes.
    auto node = peer::Node::start(options);
    if (!node) {
        std::fprintf(stderr, "todo: %s\n", node.status().to_string().c_str());
        return 1;
    }
    auto writer = store::Writer::open(args.db);
    if (!writer) {
        std::fprintf(stderr, "todo: %s\n", writer.status().to_string().c_str());
        return 1;
    }
    std::printf("todo: %s, node %s on %s\n", args.db.c_str(), (*node)->id().short_string().c_str(),
                (*node)->endpoint().c_str());
    std::fflush(stdout);
    for (std::string line; std::getline(std::cin, line);) {
        if (!command(line, **writer, **node)) {
            break;
        }
    }
    return 0;
}
