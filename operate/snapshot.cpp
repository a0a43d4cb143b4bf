// A copy of a live database that can seed a new node: store::snapshot() (operator_commands.hpp).
//
// The copy is made with VACUUM INTO on a read-only connection, which reads one consistent
// snapshot of the file while other connections keep writing. Two things must not travel
// with it:
//   * the source's identity: two live nodes sharing a node id would issue different
//     writes under the same stamps. The copy's _peerlite_meta.node_id is deleted; the
//     first Store::open of the copy draws a new id and appends it to _peerlite_nodes.
//     Everything else stays: the source's versions remain the source's (so neither side
//     sends them again), and _peerlite_meta.clock keeps the new node's clock above
//     everything the source had seen.
//   * unstamped capture-log entries: the source stamps them as its own writes, so the
//     copy stamping them too would count a counter increment twice. A copy that caught
//     some is made again once the daemon has stamped them.
#include <chrono>
#include <filesystem>
#include <thread>

#include <peerlite/operate/operator_commands.hpp>
#include <peerlite/store/store.hpp>

#include "../inspect/inspector_impl.hpp"
#include "../schema/capture_sql.hpp"
#include "../store/node_lock.hpp"

namespace peerlite::store {

namespace {

constexpr auto kRetryEvery = std::chrono::milliseconds(50);
constexpr int kRetries = 20; // about a second for a daemon to stamp pending writes

void remove_copy(const std::string& out) {
    std::error_code ignored;
    for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
        std::filesystem::remove(out + suffix, ignored);
    }
}

Status copy(sqlite3* source, const std::string& out) {
    auto stmt = sql::Stmt::prepare(source, "VACUUM INTO ?1");
    if (!stmt) {
        return stmt.status();
    }
    stmt->bind_text(1, out);
    auto st = stmt->run("copying to " + out);
    if (!st.ok()) {
        remove_copy(out);
    }
    return st;
}

// True when every capture log in the copy is empty; then removes the copy's identity.
Result<bool> finish_copy(const std::string& out, const std::vector<TableInfo>& tables) {
    auto db = sql::open(out);
    if (!db) {
        return db.status();
    }
    for (const auto& t : tables) {
        auto stmt = sql::Stmt::prepare(db->get(), "SELECT EXISTS (SELECT 1 FROM " +
                                                      sql::quote(schema::log_table(t.name)) + ")");
        if (!stmt) {
            return stmt.status();
        }
        sql::Reset reset(*stmt);
        if (stmt->step() != SQLITE_ROW) {
            return sql::error(db->get(), "checking the copy's capture log");
        }
        if (stmt->column_int(0) != 0) {
            return false;
        }
    }
    // The identity and what only that identity's file knew about itself: its owner and
    // a rollback's gap of its own clocks (the new node's own clocks start fresh).
    if (auto st = sql::exec(db->get(),
                            "DELETE FROM _peerlite_meta WHERE key IN "
                            "('node_id', 'id_salt', 'owner', 'own_gap_first', 'own_gap_last')");
        !st.ok()) {
        return st;
    }
    return true;
}

} // namespace

Status snapshot(const std::string& path, const std::string& out) {
    std::error_code ec;
    if (std::filesystem::exists(out, ec)) {
        return Status(Code::invalid_argument, out + " exists; refusing to overwrite it");
    }
    Inspector::Impl source; // read-only: never creates, never takes the write lock
    if (auto st = open_file(source, path, SQLITE_OPEN_READONLY); !st.ok()) {
        return st;
    }
    for (int attempt = 0; attempt <= kRetries + 1; ++attempt) {
        if (attempt == kRetries + 1) {
            // Nothing stamped the pending writes. If no node has the file open (no daemon
            // runs), a Store may; if one does, it is the only one allowed to stamp.
            auto store = Store::open(path);
            if (!store) {
                return Status(store.status().code(),
                              "captured writes in " + path +
                                  " are waiting to be stamped and the node holding the file "
                                  "did not stamp them within a second; try again (" +
                                  store.status().message() + ")");
            }
            if (auto st = (*store)->capture(); !st.ok()) {
                return st.status();
            }
        }
        if (auto st = copy(source.db.get(), out); !st.ok()) {
            return st;
        }
        auto done = finish_copy(out, source.tables);
        if (done && *done) {
            return Status::success();
        }
        remove_copy(out);
        if (!done) {
            return done.status();
        }
        std::this_thread::sleep_for(kRetryEvery);
    }
    return Status(Code::busy, "writes kept arriving while copying " + path + "; try again");
}

Status forget_owner(const std::string& path) {
    // Only while no node runs on the file: a running one keeps its owner in memory.
    auto lock = NodeLock::acquire(path);
    if (!lock) {
        return Status(lock.status().code(), lock.status().message() + "; stop its daemon first");
    }
    Inspector::Impl s;
    if (auto st = open_file(s, path, SQLITE_OPEN_READWRITE); !st.ok()) {
        return st;
    }
    return sql::exec(s.db.get(), "DELETE FROM _peerlite_meta WHERE key = 'owner'");
}

} // namespace peerlite::store
