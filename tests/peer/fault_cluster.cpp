#include "fault_cluster.hpp"

#include <filesystem>
#include <fstream>
#include <type_traits>

#include <catch2/catch.hpp>

namespace peerlite::testing::fault {

std::optional<std::uint64_t> Stmt::life(int i) const {
    auto* p = static_cast<const std::uint8_t*>(sqlite3_column_blob(stmt_, i));
    auto n = sqlite3_column_bytes(stmt_, i);
    if (p == nullptr || n < 2 || p[0] != 1) {
        return std::nullopt;
    }
    std::uint64_t v = 0;
    for (int at = 1, shift = 0; at < n && shift < 64; ++at, shift += 7) {
        v |= std::uint64_t{p[at] & 0x7fu} << shift;
        if ((p[at] & 0x80) == 0) {
            return v;
        }
    }
    return std::nullopt;
}

SkewedClock::SkewedClock(std::string name) : name_(std::move(name)) {
    static_assert(std::is_standard_layout_v<SkewedClock>);
    base_ = sqlite3_vfs_find(nullptr);
    REQUIRE(base_ != nullptr);
    REQUIRE(base_->iVersion >= 2);
    vfs_ = *base_; // pAppData stays the base's: its xOpen reads it
    vfs_.pNext = nullptr;
    vfs_.zName = name_.c_str();
    vfs_.xCurrentTime = current_time;
    vfs_.xCurrentTimeInt64 = current_time_int64;
    REQUIRE(sqlite3_vfs_register(&vfs_, 0) == SQLITE_OK);
}

SkewedClock::~SkewedClock() {
    sqlite3_vfs_unregister(&vfs_);
}

int SkewedClock::current_time_int64(sqlite3_vfs* vfs, sqlite3_int64* out) {
    auto* self = reinterpret_cast<SkewedClock*>(vfs);
    int rc = self->base_->xCurrentTimeInt64(self->base_, out);
    *out += self->offset_ms_.load(); // milliseconds since the Julian epoch
    return rc;
}

int SkewedClock::current_time(sqlite3_vfs* vfs, double* out) {
    sqlite3_int64 ms = 0;
    int rc = current_time_int64(vfs, &ms);
    *out = static_cast<double>(ms) / 86'400'000.0;
    return rc;
}

std::string tail(const std::string& log, std::size_t lines) {
    auto at = log.size();
    for (std::size_t n = 0; n <= lines && at != std::string::npos && at > 0; ++n) {
        at = log.rfind('\n', at - 1);
    }
    return at == std::string::npos ? log : log.substr(at + 1);
}

Cluster::Cluster(int n) {
    std::vector<KeyFiles> keys;
    for (int i = 0; i < n; ++i) {
        names_.push_back("n" + std::to_string(i));
        clocks_.push_back(std::make_unique<SkewedClock>(
            "peerlite-fault-" + std::to_string(reinterpret_cast<std::uintptr_t>(this)) + "-" +
            names_.back()));
        keys.push_back(make_keys(dir_, names_.back()));
        ports_.push_back(free_port());
        Conn(db_path(i)).exec(kTable);
    }
    for (int i = 0; i < n; ++i) {
        DaemonConfig c;
        c.name = names_[static_cast<std::size_t>(i)];
        c.secret_key_file = c.name + ".key";
        DatabaseConfig db{c.name + ".db"};
        db.listen = endpoint(i);
        db.tables = kTableConfig;
        for (int j = 0; j < n; ++j) {
            c.trusted_keys.push_back(keys[static_cast<std::size_t>(j)].public_key);
            if (j != i) {
                db.seeds.emplace_back(endpoint(j), keys[static_cast<std::size_t>(j)].public_key);
            }
        }
        c.databases = {db};
        // Tiny parts, so pushes and catch-ups of a few dozen rows come in many parts and
        // a fault can land between two of them; a short busy timeout, so an app holding
        // the write lock (a fault of its own) makes captures and applies fail; small
        // messages, so the workload's big names fill parts by bytes or cannot be sent.
        c.other_extra = "[limits]\nmax_rows_per_message = 4\nbusy_timeout_ms = 50\n"
                        "max_message_bytes = 262144\n";
        std::ofstream(block_path(i)); // empty: nothing blocked
        daemons_.push_back(
            std::make_unique<Daemon>(write_config(dir_, c), dir_.file(c.name + ".log"), env(i, 0)));
        states_.push_back(State::running);
    }
    for (int i = 0; i < n; ++i) {
        if (!daemon(i).ready()) {
            FAIL("n" << i << " did not start:\n" << daemon(i).log());
        }
        Conn c(db_path(i));
        Stmt s(c, "SELECT value FROM _peerlite_meta WHERE key = 'node_id'");
        REQUIRE(s.step() == SQLITE_ROW);
        ids_.push_back(*s.text(0));
    }
}

void Cluster::partition(const std::vector<bool>& side) {
    for (int i = 0; i < size(); ++i) {
        std::string blocked;
        for (int j = 0; j < size(); ++j) {
            if (!side.empty() &&
                side[static_cast<std::size_t>(i)] != side[static_cast<std::size_t>(j)]) {
                blocked += ids_[static_cast<std::size_t>(j)] + "\n";
            }
        }
        // Replaced whole, so the daemon never reads half a file.
        auto tmp = block_path(i) + ".tmp";
        std::ofstream(tmp) << blocked;
        std::filesystem::rename(tmp, block_path(i));
    }
}

Daemon::Environment Cluster::env(int i, int offset_ms) const {
    Daemon::Environment e{{"PEERLITE_TEST_BLOCK_FILE", block_path(i)}};
    if (offset_ms != 0) {
        e.emplace_back("PEERLITE_TEST_CLOCK_OFFSET_MS", std::to_string(offset_ms));
    }
    return e;
}

} // namespace peerlite::testing::fault
