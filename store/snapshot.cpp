// A copy of a live database that can seed a new node: Store::snapshot().
//
// The copy is made with VACUUM INTO, which reads one consistent snapshot of the file
// while other connections keep writing. Two things must not travel with it:
//   * this node's identity: two live nodes sharing a node id would issue different
//     writes under the same stamps. The copy's _peerlite_meta.node_id is deleted; the
//     first Store::open of the copy draws a new id and appends it to _peerlite_nodes.
//     Everything else stays: this node's versions remain this node's (so neither side
//     sends them again), and _peerlite_meta.clock keeps the new node's clock above
//     everything the source had seen.
//   * unstamped capture-log entries: the source stamps them as its own writes, so the
//     copy stamping them too would count a counter increment twice. Pending writes are
//     stamped just before copying, and a copy that still caught new ones is made again.
#include <filesystem>

#include <peerlite/store/store.hpp>

#include "store_impl.hpp"

namespace peerlite::store {

namespace {

constexpr int kAttempts = 5;

// Whether every capture log in the copy is empty; then removes the copy's identity.
Result<bool> finish_copy(const std::string& out, const std::vector<std::string>& tables) {
    auto db = sql::open(out);
    if (!db) {
        return db.status();
    }
    for (const auto& t : tables) {
        auto stmt = sql::Stmt::prepare(db->get(), "SELECT EXISTS (SELECT 1 FROM " +
                                                      sql::quote(schema::log_table(t)) + ")");
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
    if (auto st = sql::exec(db->get(), "DELETE FROM _peerlite_meta WHERE key = 'node_id'");
        !st.ok()) {
        return st;
    }
    return true;
}

void remove_copy(const std::string& out) {
    std::error_code ignored;
    for (const char* suffix : {"", "-wal", "-shm"}) {
        std::filesystem::remove(out + suffix, ignored);
    }
}

} // namespace

Status Store::snapshot(const std::string& out) {
    auto& s = *impl_;
    std::error_code ec;
    if (std::filesystem::exists(out, ec)) {
        return Status(Code::invalid_argument, out + " exists; refusing to overwrite it");
    }
    for (int attempt = 0; attempt < kAttempts; ++attempt) {
        if (auto st = capture(); !st.ok()) {
            return st.status();
        }
        auto stmt = sql::Stmt::prepare(s.db.get(), "VACUUM INTO ?1");
        if (!stmt) {
            return stmt.status();
        }
        stmt->bind_text(1, out);
        if (auto st = stmt->run("copying " + s.path + " to " + out); !st.ok()) {
            remove_copy(out);
            return st;
        }
        auto done = finish_copy(out, synced_tables());
        if (!done || *done) {
            if (!done) {
                remove_copy(out);
            }
            return done.status();
        }
        remove_copy(out); // a write slipped in between stamping and copying: again
    }
    return Status(Code::busy, "writes kept arriving while copying " + s.path + "; try again");
}

} // namespace peerlite::store
