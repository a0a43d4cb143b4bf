// Owning handles for SQLite connections and statements, and the conversion of SQLite
// errors into Status. Internal to peerlite (not installed).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <sqlite3.h>

#include <peerlite/crdt/value.hpp>
#include <peerlite/status.hpp>

namespace peerlite::sql {

// Quotes an identifier for SQL text: "name" with inner quotes doubled.
std::string quote(std::string_view identifier);

struct DbCloser {
    void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using DbHandle = std::unique_ptr<sqlite3, DbCloser>;

// Opens (creating if needed) a database file in WAL mode with a busy timeout. The mode
// the file was in before ("wal" when it already was) goes to `journal_mode_before`.
Result<DbHandle> open(const std::string& path, int busy_timeout_ms = 5000,
                      std::string* journal_mode_before = nullptr);

// Status from the connection's last error; `what` says what was being done.
Status error(sqlite3* db, std::string_view what);

// Runs statements that return no rows.
Status exec(sqlite3* db, std::string_view sql);

// A prepared statement. Each step()/row cycle ends with reset() (done by the next bind
// cycle or by Reset guards), so one statement is reused across calls.
class Stmt {
public:
    Stmt() = default;
    static Result<Stmt> prepare(sqlite3* db, std::string_view sql);

    // Bind by 1-based index.
    void bind(int index, const crdt::Value& value);
    void bind_int(int index, std::int64_t v) { sqlite3_bind_int64(get(), index, v); }
    void bind_blob(int index, const void* data, std::size_t size) {
        sqlite3_bind_blob64(get(), index, data, size, SQLITE_TRANSIENT);
    }
    void bind_text(int index, std::string_view text) {
        sqlite3_bind_text64(get(), index, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
    }

    // SQLITE_ROW, SQLITE_DONE, or an error code.
    int step() { return sqlite3_step(get()); }
    // Steps to completion; ok on SQLITE_DONE.
    Status run(std::string_view what);
    void reset() {
        sqlite3_reset(get());
        sqlite3_clear_bindings(get());
    }

    crdt::Value column(int index) const;
    std::int64_t column_int(int index) const { return sqlite3_column_int64(get(), index); }
    bool column_is_null(int index) const {
        return sqlite3_column_type(get(), index) == SQLITE_NULL;
    }
    std::string column_text(int index) const;
    std::string_view column_blob(int index) const;

    sqlite3_stmt* get() const { return stmt_.get(); }
    sqlite3* db() const { return sqlite3_db_handle(get()); }
    explicit operator bool() const { return stmt_ != nullptr; }

private:
    struct Finalizer {
        void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
    };
    std::unique_ptr<sqlite3_stmt, Finalizer> stmt_;
};

// Resets a statement when leaving scope, so every error path leaves it reusable.
class Reset {
public:
    explicit Reset(Stmt& stmt) : stmt_(stmt) {}
    ~Reset() { stmt_.reset(); }
    Reset(const Reset&) = delete;
    Reset& operator=(const Reset&) = delete;

private:
    Stmt& stmt_;
};

// BEGIN IMMEDIATE ... COMMIT, rolled back unless commit() succeeded.
class Transaction {
public:
    // BEGIN IMMEDIATE: takes SQLite's write lock now (waiting up to the busy timeout).
    static Result<Transaction> begin(sqlite3* db);
    // BEGIN: a read transaction whose snapshot is taken at its first read; takes no write
    // lock, so other connections' writers never wait for it.
    static Result<Transaction> begin_read(sqlite3* db);
    Transaction(Transaction&& other) noexcept : db_(other.db_) { other.db_ = nullptr; }
    Transaction& operator=(Transaction&&) = delete;
    ~Transaction();
    Status commit();

private:
    explicit Transaction(sqlite3* db) : db_(db) {}
    sqlite3* db_;
};

} // namespace peerlite::sql
