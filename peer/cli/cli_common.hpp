// Shared pieces of the `peerlite` commands: registration, exit codes, opening databases
// without creating or locking them, and the text and JSON forms of values, keys, stamps
// and times.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>

#include <peerlite/crdt/hlc.hpp>
#include <peerlite/crdt/value.hpp>
#include <peerlite/inspect/inspector.hpp>
#include <peerlite/status.hpp>

namespace peerlite::cli {

// Exit status of every command.
inline constexpr int kOk = 0;      // success; diff: identical; verify: clean
inline constexpr int kFailure = 1; // runtime failure; diff: differences; verify: violations
inline constexpr int kUsage = 2;   // bad usage, missing file, not a peerlite database, unknown
                                   // table/column, bad key

// What runs once the command line is parsed; set by the selected subcommand.
using Command = std::function<int()>;

// Each adds one subcommand to `app` and, if it is selected, sets `run`.
void add_conflicts(CLI::App& app, Command& run);
void add_history(CLI::App& app, Command& run);
void add_diff(CLI::App& app, Command& run);
void add_resolve(CLI::App& app, Command& run);
void add_changes(CLI::App& app, Command& run);
void add_snapshot(CLI::App& app, Command& run);
void add_forget_owner(CLI::App& app, Command& run);
void add_untrack(CLI::App& app, Command& run);
void add_verify(CLI::App& app, Command& run);
void add_keygen(CLI::App& app, Command& run);
void add_init(CLI::App& app, Command& run);
void add_status(CLI::App& app, Command& run);

// Prints "peerlite: <message>" to stderr and returns the exit status for its code.
int fail(const Status& status);

// Opens a database read-only (never creating it, never taking the write lock); on
// failure prints why and leaves `exit_code` set.
std::unique_ptr<store::Inspector> open_read_only(const std::string& path, int& exit_code);

// "2026-11-23T10:00:00.123Z" for milliseconds since the Unix epoch.
std::string format_ms(std::int64_t ms);
// ISO-8601 UTC ("2026-11-23T10:00:00Z", optional ".123") or a relative age ("90s",
// "10m", "2h", "3d") before `now_ms`; milliseconds since the epoch.
Result<std::int64_t> parse_time(std::string_view text, std::int64_t now_ms);
std::int64_t now_ms();

// A value typed on the command line: integers and reals as numbers, x'00ff' as a BLOB,
// anything else as TEXT (SQLite's column affinity converts it further on write).
crdt::Value parse_value(std::string_view text);

// A value for a terminal: SQL-literal form, cut to `width` characters with "...".
std::string value_text(const crdt::Value& v, std::size_t width = 40);
// "2026-11-23T10:00:00.500Z+0 by 1a2b3c4d"
std::string stamp_text(const crdt::Stamp& s);
// "items[k1]"
std::string row_text(const std::string& table, const std::vector<crdt::Value>& key);

// JSON forms: NULL null, numbers as numbers, TEXT as strings, BLOB {"blob": "<hex>"}.
nlohmann::json value_json(const crdt::Value& v);
nlohmann::json key_json(const std::vector<crdt::Value>& key);
// {"clock": "2026-...Z+0", "hlc": <raw>, "node": "<36-char id>"}
nlohmann::json stamp_json(const crdt::Stamp& s);
nlohmann::json conflict_json(const store::Conflict& c);

// Prints JSON (pretty for documents, one line for streams) to stdout.
void print_json(const nlohmann::json& j, bool one_line = false);

} // namespace peerlite::cli
