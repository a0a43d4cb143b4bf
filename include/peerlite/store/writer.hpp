// A connection for an embedding application's own writes, captured in memory.
//
// Writes through a Writer are captured without triggers: SQLite's preupdate hook notes
// each changed row of a synced table, and the transaction appends one log row per
// touched table just before COMMIT, in the same transaction. This costs the writer far
// less than the triggers that capture every other connection (see docs/performance.md),
// and it is just as durable: a committed write always has its change logged, a rolled
// back one never does.
//
// Rules:
//   * write inside transaction(); a write made outside it (autocommit) is refused at
//     COMMIT with SQLITE_CONSTRAINT_COMMITHOOK, because it could not be logged;
//   * SQLite triggers do not fire on this connection, the application's own included
//     (capture triggers must not fire twice); use another connection for tables whose
//     triggers matter, or do their work in the transaction body;
//   * savepoints work as in SQLite: writes undone by ROLLBACK TO are not captured. The
//     Writer follows SAVEPOINT, RELEASE and ROLLBACK TO by reading each statement's text
//     (a trace callback), so issue them as SQL statements, not through other means;
//   * one thread at a time, like a plain sqlite3 connection.
// The Writer picks up ALTER TABLE and newly synced tables by itself (it checks the
// schema version at each transaction). It does not need a Store open in the process;
// any Store or daemon on the file picks its log up.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <sqlite3.h>

#include <peerlite/status.hpp>

namespace peerlite::store {

class Writer {
public:
    // Opens its own connection to `path` (WAL mode, busy timeout as given).
    static Result<std::unique_ptr<Writer>> open(const std::string& path,
                                                int busy_timeout_ms = 5000);
    ~Writer();

    // BEGIN IMMEDIATE; body(handle()); log captured changes; COMMIT. A non-ok status from
    // the body, or any failure, rolls everything back and is returned.
    Status transaction(const std::function<Status(sqlite3*)>& body);

    // The connection, for preparing statements. Owned by the Writer; valid until it is
    // destroyed. Do not close it or install hooks or a trace callback on it.
    sqlite3* handle() const;

    struct Impl;

private:
    explicit Writer(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

} // namespace peerlite::store
