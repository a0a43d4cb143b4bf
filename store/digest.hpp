// Content digests of row state (docs/design/digests.md): a node keeps, per synced table,
// kDigestBuckets 64-bit sums of row hashes, bucketed by key, maintained in the same
// transaction as every row record it writes. Two nodes whose version vectors agree but
// whose digests differ hold different content somewhere: anti-entropy then compares the
// buckets and exchanges the full state of the rows in those that differ.
//
// A row's hash covers its record in a form that is the same on every node: key values,
// the life with its stamp, every cell's column name and stamp (and the value, for
// max/min columns, whose record keeps it), and every counter contribution. Node ids, not
// this file's node indexes; column names, not positions. Last-writer-wins values live in
// the user table and are not hashed: they follow from the stamps on every honest node.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <sqlite3.h>

#include <peerlite/crdt/value.hpp>
#include <peerlite/status.hpp>
#include <peerlite/wire/change_set.hpp>

#include "../sql/sqlite.hpp"
#include "row_record.hpp"

namespace peerlite::store {

struct TableState;

std::uint32_t key_bucket(const std::vector<crdt::Value>& key);

// 0 for a record that was never stored (it contributes nothing to its bucket).
std::uint64_t row_hash(const TableState& t, const std::vector<crdt::Value>& key,
                       const RowRecord& record);

// A table's kDigestBuckets sums as stored in _peerlite_digest_sums.sums: 8 bytes each,
// little-endian, in bucket order. One row per table, so a transaction's upkeep is one
// read and one write per table it touched, whatever the number of buckets.
std::string encode_digest_sums(const std::vector<std::uint64_t>& buckets);
Result<std::vector<std::uint64_t>> decode_digest_sums(std::string_view bytes,
                                                      const std::string& table);

// The stored buckets of one table; not_found if the file keeps none for it yet (a node
// computes them when it first opens the file with the table synced).
Result<std::vector<std::uint64_t>> read_digest_buckets(sqlite3* db, const std::string& table);
// The same through `select`, a prepared `SELECT sums FROM _peerlite_digest_sums WHERE
// tbl = ?1` (the store's own, for its upkeep).
Result<std::vector<std::uint64_t>> read_sums(sqlite3* db, sql::Stmt& select,
                                             const std::string& table);

// A table's digest from its buckets: the total always, the buckets if asked for.
wire::TableDigest summarize(const std::string& table, std::uint64_t schema,
                            std::vector<std::uint64_t> buckets, bool with_buckets);

} // namespace peerlite::store
