// Globally unique, time-ordered ids for new primary keys.
//
// Random keys (UUIDv4) scatter inserts across the B-tree and cost SQLite about ten times
// its insert speed; these ids start with the creation time in milliseconds (the UUIDv7
// layout: 48-bit Unix milliseconds, version 7, 74 random bits), so new rows land at the
// end of the index like integer keys, while two nodes never pick the same id.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace peerlite::store {

// 16 bytes: store as a BLOB primary key.
std::array<std::uint8_t, 16> new_id();

// The same id as 32 lower-case hex digits: store as a TEXT primary key.
std::string new_id_text();

// A SQL expression producing a time-ordered 32-hex-digit TEXT id in any connection with
// nothing loaded, for use as a column default:
//   CREATE TABLE notes(id TEXT PRIMARY KEY NOT NULL DEFAULT (<this>), body TEXT);
// (SQLite 3.40 cannot build a BLOB from hex in SQL, hence text.)
std::string_view id_sql();

} // namespace peerlite::store
