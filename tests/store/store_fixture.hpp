// Helpers for store tests: scratch directories, plain SQLite connections (the kind an
// application or the sqlite3 shell uses), table dumps, and syncing two stores.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <sqlite3.h>

#include <peerlite/store/store.hpp>

namespace peerlite::testing {

// A fresh directory under the system temp dir, removed with the object.
class ScratchDir {
public:
    ScratchDir();
    ~ScratchDir();
    std::string file(const std::string& name) const { return (path_ / name).string(); }
    const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path path_;
};

// A plain connection with nothing of peerlite loaded.
class PlainDb {
public:
    explicit PlainDb(const std::string& path);
    ~PlainDb();
    PlainDb(const PlainDb&) = delete;
    PlainDb& operator=(const PlainDb&) = delete;

    // Runs SQL; fails the test on error.
    void exec(const std::string& sql);
    // Runs SQL and returns the SQLite result code instead of failing.
    int try_exec(const std::string& sql);
    // Every row of a query, each as "v1|v2|..." with SQL-literal values.
    std::vector<std::string> rows(const std::string& sql);
    std::int64_t scalar(const std::string& sql);
    sqlite3* get() { return db_; }

private:
    sqlite3* db_ = nullptr;
};

// A whole table, ordered by its first column: compares replicas cell by cell.
std::vector<std::string> dump(const std::string& path, const std::string& table);

std::unique_ptr<store::Store> open_store(const std::string& path, store::StoreOptions options = {});

// Sends everything `from` has and `to` lacks, through the msgpack codec, in pages of
// `page` rows. Returns the apply stats summed.
store::ApplyStats sync(store::Store& from, store::Store& to, std::size_t page = 1000);

// What anti-entropy does once version vectors agree: compares the content digests of
// every table both sync and sends `to` the full state of the rows of `from` in the
// buckets that differ (Store::repair). Returns how many buckets differed.
std::size_t repair(store::Store& from, store::Store& to);

// Fails the test unless the digests `store` maintains equal those computed afresh.
void require_digests_consistent(store::Store& store);

// One wall clock for the stores of a test, moved only by the test (StoreOptions::wall): a
// write "later" than another is a step of the test, not a sleep that a slow machine may
// not honour.
class TestWall {
public:
    TestWall();
    crdt::WallClock clock() const;
    // Options whose HLC reads this clock.
    store::StoreOptions options() const;
    void advance(std::chrono::milliseconds by = std::chrono::milliseconds(5));

private:
    std::shared_ptr<std::atomic<std::int64_t>> ms_;
};

// Runs a shell command; returns its exit status.
int run_shell(const std::string& command);

} // namespace peerlite::testing

namespace Catch {
template <>
struct StringMaker<peerlite::wire::CellChange> {
    static std::string convert(const peerlite::wire::CellChange& c) {
        return c.column + "=" + c.write.value.to_string() + " life " +
               std::to_string(c.write.life.value()) + " " + c.write.stamp.to_string() + " repl " +
               std::to_string(c.write.replaced.raw());
    }
};
} // namespace Catch
