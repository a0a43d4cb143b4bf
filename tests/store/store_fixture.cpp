#include "store_fixture.hpp"

#include <algorithm>
#include <random>

#include <catch2/catch.hpp>

#include <peerlite/crdt/value.hpp>

namespace peerlite::testing {

ScratchDir::ScratchDir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() /
            ("peerlite-test-" + std::to_string(rd()) + std::to_string(rd()));
    std::filesystem::create_directories(path_);
}

ScratchDir::~ScratchDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
}

PlainDb::PlainDb(const std::string& path) {
    REQUIRE(sqlite3_open(path.c_str(), &db_) == SQLITE_OK);
    sqlite3_busy_timeout(db_, 5000);
    exec("PRAGMA journal_mode=WAL");
}

PlainDb::~PlainDb() {
    sqlite3_close_v2(db_);
}

int PlainDb::try_exec(const std::string& sql) {
    return sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr);
}

void PlainDb::exec(const std::string& sql) {
    char* error = nullptr;
    int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error);
    INFO(sql << " -> " << (error ? error : ""));
    sqlite3_free(error);
    REQUIRE(rc == SQLITE_OK);
}

std::vector<std::string> PlainDb::rows(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    INFO(sql << " -> " << sqlite3_errmsg(db_));
    REQUIRE(sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK);
    std::vector<std::string> out;
    while (sqlite3_step(stmt) == SQLITE_ROW) {
        std::string line;
        for (int i = 0; i < sqlite3_column_count(stmt); ++i) {
            crdt::Value v;
            switch (sqlite3_column_type(stmt, i)) {
            case SQLITE_INTEGER: v = crdt::Value::integer(sqlite3_column_int64(stmt, i)); break;
            case SQLITE_FLOAT: v = crdt::Value::real(sqlite3_column_double(stmt, i)); break;
            case SQLITE_TEXT:
                v = crdt::Value::text(reinterpret_cast<const char*>(sqlite3_column_text(stmt, i)));
                break;
            case SQLITE_BLOB: {
                auto* p = static_cast<const std::uint8_t*>(sqlite3_column_blob(stmt, i));
                v = crdt::Value::blob(
                    std::vector<std::uint8_t>(p, p + sqlite3_column_bytes(stmt, i)));
                break;
            }
            default: break;
            }
            line += (i ? "|" : "") + v.to_string();
        }
        out.push_back(line);
    }
    sqlite3_finalize(stmt);
    return out;
}

std::int64_t PlainDb::scalar(const std::string& sql) {
    auto r = rows(sql);
    REQUIRE(r.size() == 1);
    return std::stoll(r.front());
}

std::vector<std::string> dump(const std::string& path, const std::string& table) {
    PlainDb db(path);
    return db.rows("SELECT * FROM \"" + table + "\" ORDER BY 1");
}

std::unique_ptr<store::Store> open_store(const std::string& path, store::StoreOptions options) {
    auto s = store::Store::open(path, std::move(options));
    INFO(s.status().to_string());
    REQUIRE(s.ok());
    return std::move(s.value());
}

store::ApplyStats sync(store::Store& from, store::Store& to, std::size_t page) {
    {
        auto captured = from.capture();
        INFO(captured.status().to_string());
        REQUIRE(captured.ok()); // versions() reflects writes once captured
    }
    // What a node claims leaves out what it holds but cannot serve (a stopped table).
    auto wanted = from.versions().minus(from.unserved()).minus(to.versions());
    store::ReadCursor cursor;
    wire::ChangeSet all;
    while (!cursor.done) {
        auto part = from.read_changes(wanted, cursor, page);
        INFO(part.status().to_string());
        REQUIRE(part.ok());
        for (auto& r : part->rows) {
            all.rows.push_back(std::move(r));
        }
    }
    all.covers = wanted;
    auto decoded = wire::decode(wire::encode(all));
    REQUIRE(decoded.ok());
    REQUIRE(decoded->covers == all.covers);
    REQUIRE(decoded->rows.size() == all.rows.size());
    for (std::size_t i = 0; i < all.rows.size(); ++i) {
        INFO("row " << i << " of table " << all.rows[i].table);
        REQUIRE(decoded->rows[i].table == all.rows[i].table);
        REQUIRE(decoded->rows[i].key == all.rows[i].key);
        REQUIRE(decoded->rows[i].life == all.rows[i].life);
        REQUIRE(decoded->rows[i].cells == all.rows[i].cells);
        REQUIRE(decoded->rows[i].counters == all.rows[i].counters);
    }
    auto stats = to.apply(*decoded);
    INFO(stats.status().to_string());
    REQUIRE(stats.ok());
    return *stats;
}

std::size_t repair(store::Store& from, store::Store& to) {
    REQUIRE(from.capture().ok());
    REQUIRE(to.capture().ok());
    auto mine = from.digests(true);
    auto theirs = to.digests(true);
    REQUIRE(mine.ok());
    REQUIRE(theirs.ok());
    std::size_t differing = 0;
    for (const auto& d : *mine) {
        auto other = std::find_if(theirs->begin(), theirs->end(),
                                  [&](const auto& t) { return t.table == d.table; });
        if (other == theirs->end() || other->schema != d.schema || other->total == d.total) {
            continue;
        }
        std::vector<std::uint32_t> buckets;
        for (std::uint32_t b = 0; b < wire::kDigestBuckets; ++b) {
            if (d.buckets[b] != other->buckets[b]) {
                buckets.push_back(b);
            }
        }
        REQUIRE_FALSE(buckets.empty()); // totals differ, so some bucket does
        differing += buckets.size();
        store::ReadCursor cursor;
        while (!cursor.done) {
            auto part = from.read_buckets(d.table, buckets, cursor, 100);
            INFO(part.status().to_string());
            REQUIRE(part.ok());
            auto decoded = wire::decode(wire::encode(*part));
            REQUIRE(decoded.ok());
            auto stats = to.repair(*decoded);
            INFO(stats.status().to_string());
            REQUIRE(stats.ok());
        }
    }
    return differing;
}

void require_digests_consistent(store::Store& store) {
    auto kept = store.digests(true);
    auto fresh = store.recompute_digests();
    REQUIRE(kept.ok());
    REQUIRE(fresh.ok());
    REQUIRE(*kept == *fresh);
}

int run_shell(const std::string& command) {
    return std::system(command.c_str());
}

TestWall::TestWall()
    : ms_(std::make_shared<std::atomic<std::int64_t>>(
          std::chrono::duration_cast<std::chrono::milliseconds>(
              std::chrono::system_clock::now().time_since_epoch())
              .count())) {}

crdt::WallClock TestWall::clock() const {
    return [ms = ms_] {
        return std::chrono::milliseconds(ms->load());
    };
}

store::StoreOptions TestWall::options() const {
    store::StoreOptions o;
    o.wall = clock();
    return o;
}

void TestWall::advance(std::chrono::milliseconds by) {
    *ms_ += by.count();
}

} // namespace peerlite::testing
