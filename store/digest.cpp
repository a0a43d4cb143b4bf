#include "digest.hpp"

#include <algorithm>
#include <xxhash.h>

#include "bytes.hpp"
#include "inspect_impl.hpp"
#include "store_impl.hpp"

namespace peerlite::store {

namespace {

void stamp(ByteWriter& w, const crdt::Stamp& s) {
    w.varint(s.hlc.raw());
    auto id = s.node.bytes();
    w.bytes(std::string_view(reinterpret_cast<const char*>(id.data()), id.size()));
}

} // namespace

std::uint32_t key_bucket(const std::vector<crdt::Value>& key) {
    thread_local ByteWriter w;
    w.clear();
    for (const auto& v : key) {
        w.value(v);
    }
    const auto& bytes = w.data();
    return static_cast<std::uint32_t>(XXH3_64bits(bytes.data(), bytes.size()) % kDigestBuckets);
}

std::uint64_t row_hash(const TableState& t, const std::vector<crdt::Value>& key,
                       const RowRecord& record) {
    if (record.life.life.value() == 0) {
        return 0;
    }
    // Runs for every record read and written: one buffer per thread, reused, and the
    // column-name order computed once per table (TableState::name_rank).
    thread_local ByteWriter w;
    thread_local std::vector<const CellEntry*> cells;
    thread_local std::vector<const CounterEntry*> counters;
    w.clear();
    for (const auto& v : key) {
        w.value(v);
    }
    w.varint(record.life.life.value());
    stamp(w, record.life.stamp);
    auto rank = [&](int column) {
        return t.name_rank[static_cast<std::size_t>(column)];
    };
    auto name = [&](int column) -> const std::string& {
        return t.schema.values[static_cast<std::size_t>(column)].name;
    };
    // By column name, then contributing node: positions differ between files.
    cells.clear();
    for (const auto& c : record.cells) {
        cells.push_back(&c);
    }
    std::sort(cells.begin(), cells.end(), [&](const CellEntry* a, const CellEntry* b) {
        return rank(a->column) < rank(b->column);
    });
    w.varint(cells.size());
    for (const auto* c : cells) {
        w.bytes(name(c->column));
        w.varint(c->write.life.value());
        stamp(w, c->write.stamp);
        w.u8(c->has_value ? 1 : 0);
        if (c->has_value) {
            w.value(c->write.value);
        }
    }
    counters.clear();
    for (const auto& c : record.counters) {
        counters.push_back(&c);
    }
    std::sort(counters.begin(), counters.end(), [&](const CounterEntry* a, const CounterEntry* b) {
        return std::make_pair(rank(a->column), a->write.stamp.node) <
               std::make_pair(rank(b->column), b->write.stamp.node);
    });
    w.varint(counters.size());
    for (const auto* c : counters) {
        w.bytes(name(c->column));
        w.varint(c->write.life.value());
        stamp(w, c->write.stamp);
        w.zigzag(c->write.total);
    }
    const auto& bytes = w.data();
    auto h = XXH3_64bits(bytes.data(), bytes.size());
    return h == 0 ? 1 : h; // 0 means "no row"
}

} // namespace peerlite::store

namespace peerlite::store {

Result<std::vector<std::uint64_t>> Store::Impl::compute_buckets(TableState& t) {
    std::vector<std::uint64_t> buckets(kDigestBuckets, 0);
    auto& scan = t.scan;
    sql::Reset reset(scan);
    scan.bind_int(1, -1);
    scan.bind_int(2, -1);
    int rc;
    while ((rc = scan.step()) == SQLITE_ROW) {
        auto row = scanned_row(t, scan);
        if (!row) {
            return row.status();
        }
        buckets[key_bucket(row->key)] += row_hash(t, row->key, row->record);
    }
    if (rc != SQLITE_DONE) {
        return sql::error(db.get(), "scanning row records of '" + t.schema.name + "'");
    }
    return buckets;
}

Status Store::Impl::ensure_digests(TableState& t) {
    auto has = sql::Stmt::prepare(db.get(), "SELECT 1 FROM _peerlite_digests WHERE tbl = ?1");
    if (!has) {
        return has.status();
    }
    sql::Reset reset(*has);
    has->bind_text(1, t.schema.name);
    int rc = has->step();
    if (rc == SQLITE_ROW) {
        return Status::success();
    }
    if (rc != SQLITE_DONE) {
        return sql::error(db.get(), "reading digests of '" + t.schema.name + "'");
    }
    auto buckets = compute_buckets(t);
    if (!buckets) {
        return buckets.status();
    }
    // Every bucket gets a row, even an empty one: "has digests" is then one lookup.
    for (std::uint32_t b = 0; b < kDigestBuckets; ++b) {
        digest_upsert.bind_text(1, t.schema.name);
        digest_upsert.bind_int(2, b);
        digest_upsert.bind_int(3, static_cast<std::int64_t>((*buckets)[b]));
        if (auto st = digest_upsert.run("writing digests"); !st.ok()) {
            return st;
        }
    }
    // Deltas noted before now are part of what was just computed.
    std::erase_if(digest_deltas, [&](const auto& d) { return d.first.first == t.schema.name; });
    return Status::success();
}

Status Store::Impl::flush_digests() {
    for (const auto& [where, delta] : digest_deltas) {
        digest_add.bind_text(1, where.first);
        digest_add.bind_int(2, where.second);
        digest_add.bind_int(3, static_cast<std::int64_t>(delta));
        if (auto st = digest_add.run("updating a digest"); !st.ok()) {
            return st;
        }
    }
    digest_deltas.clear();
    return Status::success();
}

namespace {
void wrapping_add(sqlite3_context* ctx, int, sqlite3_value** args) {
    auto a = static_cast<std::uint64_t>(sqlite3_value_int64(args[0]));
    auto b = static_cast<std::uint64_t>(sqlite3_value_int64(args[1]));
    sqlite3_result_int64(ctx, static_cast<sqlite3_int64>(a + b));
}
} // namespace

Status register_wrapping_add(sqlite3* db) {
    if (sqlite3_create_function(db, "peerlite_wrapping_add", 2,
                                SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_DIRECTONLY, nullptr,
                                wrapping_add, nullptr, nullptr) != SQLITE_OK) {
        return sql::error(db, "registering peerlite_wrapping_add");
    }
    return Status::success();
}

TableDigest summarize(const std::string& table, std::uint64_t schema,
                      std::vector<std::uint64_t> buckets, bool with_buckets) {
    TableDigest d{table, schema, 0, {}};
    for (auto b : buckets) {
        d.total += b;
    }
    if (with_buckets) {
        d.buckets = std::move(buckets);
    }
    return d;
}

Result<std::vector<std::uint64_t>> read_digest_buckets(sqlite3* db, const std::string& table) {
    auto stmt =
        sql::Stmt::prepare(db, "SELECT bucket, digest FROM _peerlite_digests WHERE tbl = ?1");
    if (!stmt) {
        return stmt.status();
    }
    std::vector<std::uint64_t> buckets(kDigestBuckets, 0);
    sql::Reset reset(*stmt);
    stmt->bind_text(1, table);
    int rc;
    while ((rc = stmt->step()) == SQLITE_ROW) {
        auto b = stmt->column_int(0);
        if (b < 0 || b >= static_cast<std::int64_t>(kDigestBuckets)) {
            return Status(Code::corruption, "_peerlite_digests: bucket " + std::to_string(b) +
                                                " of table '" + table + "' is out of range");
        }
        buckets[static_cast<std::size_t>(b)] = static_cast<std::uint64_t>(stmt->column_int(1));
    }
    if (rc != SQLITE_DONE) {
        return sql::error(db, "reading digests of '" + table + "'");
    }
    return buckets;
}

Result<std::vector<TableDigest>> Store::digests(bool with_buckets) {
    auto& s = *impl_;
    if (auto st = refresh_schema(); !st.ok()) {
        return st;
    }
    std::vector<TableDigest> out;
    for (auto& [name, t] : s.tables) {
        auto buckets = read_digest_buckets(s.db.get(), name);
        if (!buckets) {
            return buckets.status();
        }
        out.push_back(summarize(name, t.schema.identity(), std::move(*buckets), with_buckets));
    }
    return out;
}

Result<ContentDigests> Inspector::digests() {
    auto& s = *impl_;
    auto tx = ReadTx::begin(s.db.get());
    if (!tx) {
        return tx.status();
    }
    ContentDigests out;
    auto versions = read_versions(s.db.get(), s.nodes);
    if (!versions) {
        return versions.status();
    }
    out.versions = std::move(*versions);
    for (const auto& t : s.tables) {
        auto schema = s.schemas.find(t.name);
        if (schema == s.schemas.end()) {
            continue; // its definition cannot be read: verify() reports it
        }
        auto buckets = read_digest_buckets(s.db.get(), t.name);
        if (!buckets) {
            return buckets.status();
        }
        out.tables.push_back(
            summarize(t.name, schema->second.identity(), std::move(*buckets), true));
    }
    return out;
}

Result<std::vector<TableDigest>> Store::recompute_digests() {
    auto& s = *impl_;
    auto tx = sql::Transaction::begin_read(s.db.get());
    if (!tx) {
        return tx.status();
    }
    std::vector<TableDigest> out;
    for (auto& [name, t] : s.tables) {
        auto buckets = s.compute_buckets(t);
        if (!buckets) {
            return buckets.status();
        }
        out.push_back(summarize(name, t.schema.identity(), std::move(*buckets), true));
    }
    if (auto st = tx->commit(); !st.ok()) {
        return st;
    }
    return out;
}

} // namespace peerlite::store
