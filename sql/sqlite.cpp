#include "sqlite.hpp"

#include <chrono>
#include <cstdint>
#include <thread>

namespace peerlite::sql {

std::string quote(std::string_view identifier) {
    std::string out = "\"";
    for (char c : identifier) {
        out += c;
        if (c == '"') {
            out += '"';
        }
    }
    return out + "\"";
}

Status error(sqlite3* db, std::string_view what) {
    int code = sqlite3_extended_errcode(db);
    auto primary = code & 0xff;
    Code mapped = Code::io_error;
    if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) {
        mapped = Code::busy;
    } else if (primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB) {
        mapped = Code::corruption;
    } else if (primary == SQLITE_CONSTRAINT || primary == SQLITE_MISMATCH ||
               primary == SQLITE_ERROR) {
        mapped = Code::invalid_argument;
    }
    return Status(mapped, std::string(what) + ": " + sqlite3_errmsg(db) + " (SQLite code " +
                              std::to_string(code) + ")");
}

namespace {

// SQLite's own busy handler sleeps 1, 2, 5, 10 ms... between tries: an app committing
// thousands of short transactions a second leaves the lock free for a few microseconds at
// a time, so those sleeps add milliseconds to every wait, during which the app writes on
// and the daemon's transaction then has more to do while the app waits for it in turn.
// Tries every 100 us for the first 20 ms, then every millisecond, up to the timeout.
int busy_wait(void* timeout_ms, int tries) {
    using namespace std::chrono;
    thread_local steady_clock::time_point since; // one wait at a time per thread
    auto now = steady_clock::now();
    if (tries == 0) {
        since = now;
    }
    auto limit = milliseconds(reinterpret_cast<std::intptr_t>(timeout_ms));
    if (now - since >= limit) {
        return 0;
    }
    std::this_thread::sleep_for(now - since < 20ms ? microseconds(100) : milliseconds(1));
    return 1;
}

} // namespace

Result<DbHandle> open(const std::string& path, int busy_timeout_ms,
                      std::string* journal_mode_before) {
    sqlite3* raw = nullptr;
    int rc =
        sqlite3_open_v2(path.c_str(), &raw,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
    DbHandle db(raw);
    if (rc != SQLITE_OK) {
        auto status = raw ? error(raw, "opening " + path)
                          : Status(Code::io_error, "opening " + path + ": out of memory");
        return status;
    }
    sqlite3_extended_result_codes(raw, 1);
    if (busy_timeout_ms > 0) {
        sqlite3_busy_handler(raw, busy_wait,
                             reinterpret_cast<void*>(static_cast<std::intptr_t>(busy_timeout_ms)));
    }
    if (journal_mode_before) {
        auto mode = Stmt::prepare(raw, "PRAGMA journal_mode");
        if (!mode) {
            return Status(mode.status().code(), "opening " + path + ": " + mode.status().message());
        }
        Reset reset(*mode);
        *journal_mode_before = mode->step() == SQLITE_ROW ? mode->column_text(0) : "";
    }
    if (auto s = exec(raw, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"); !s.ok()) {
        return Status(s.code(), "opening " + path + ": " + s.message());
    }
    return db;
}

Status exec(sqlite3* db, std::string_view sql) {
    std::string text(sql);
    char* message = nullptr;
    if (sqlite3_exec(db, text.c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
        sqlite3_free(message);
        return error(db, "running '" + text.substr(0, 200) + "'");
    }
    return Status::success();
}

Result<Stmt> Stmt::prepare(sqlite3* db, std::string_view sql) {
    sqlite3_stmt* raw = nullptr;
    if (sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT,
                           &raw, nullptr) != SQLITE_OK) {
        return error(db, "preparing '" + std::string(sql.substr(0, 200)) + "'");
    }
    Stmt stmt;
    stmt.stmt_.reset(raw);
    return stmt;
}

void Stmt::bind(int index, const crdt::Value& value) {
    using crdt::StorageClass;
    switch (value.storage_class()) {
    case StorageClass::null: sqlite3_bind_null(get(), index); break;
    case StorageClass::integer: sqlite3_bind_int64(get(), index, value.as_integer()); break;
    case StorageClass::real: sqlite3_bind_double(get(), index, value.as_real()); break;
    case StorageClass::text: bind_text(index, value.as_text()); break;
    case StorageClass::blob: {
        const auto& b = value.as_blob();
        // A zero-length blob must stay a blob, not become NULL.
        if (b.empty()) {
            sqlite3_bind_zeroblob(get(), index, 0);
        } else {
            bind_blob(index, b.data(), b.size());
        }
        break;
    }
    }
}

Status Stmt::run(std::string_view what) {
    Reset guard(*this);
    int rc = step();
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        return error(db(), what);
    }
    return Status::success();
}

crdt::Value Stmt::column(int index) const {
    switch (sqlite3_column_type(get(), index)) {
    case SQLITE_INTEGER: return crdt::Value::integer(sqlite3_column_int64(get(), index));
    case SQLITE_FLOAT: return crdt::Value::real(sqlite3_column_double(get(), index));
    case SQLITE_TEXT: return crdt::Value::text(column_text(index));
    case SQLITE_BLOB: {
        auto bytes = column_blob(index);
        return crdt::Value::blob(std::vector<std::uint8_t>(bytes.begin(), bytes.end()));
    }
    default: return crdt::Value::null();
    }
}

std::string Stmt::column_text(int index) const {
    auto* p = reinterpret_cast<const char*>(sqlite3_column_text(get(), index));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(get(), index)))
             : std::string();
}

std::string_view Stmt::column_blob(int index) const {
    auto* p = static_cast<const char*>(sqlite3_column_blob(get(), index));
    return p ? std::string_view(p, static_cast<std::size_t>(sqlite3_column_bytes(get(), index)))
             : std::string_view();
}

Result<Transaction> Transaction::begin(sqlite3* db) {
    if (auto s = exec(db, "BEGIN IMMEDIATE"); !s.ok()) {
        return s;
    }
    return Transaction(db);
}

Result<Transaction> Transaction::begin_read(sqlite3* db) {
    if (auto s = exec(db, "BEGIN"); !s.ok()) {
        return s;
    }
    return Transaction(db);
}

Transaction::~Transaction() {
    if (db_ != nullptr) {
        sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    }
}

Status Transaction::commit() {
    auto s = exec(db_, "COMMIT");
    if (s.ok()) {
        db_ = nullptr;
    }
    return s;
}

} // namespace peerlite::sql
