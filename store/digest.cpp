#include "digest.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <tuple>
#include <xxhash.h>

#include <peerlite/wire/binary_codec.hpp>

#include "store_impl.hpp"

namespace peerlite::store {

namespace {

// The bytes a row hash covers, in the encoding of bytes.hpp's ByteWriter (varints,
// tagged values), hashed with XXH3. Runs for every record written: the bytes go to a
// fixed buffer through a raw pointer, and an input longer than it streams through an
// XXH3 state, which gives the same hash as one call over all the bytes.
class HashInput {
public:
    void varint(std::uint64_t v) {
        room(10);
        while (v >= 0x80) {
            buf_[n_++] = static_cast<char>((v & 0x7f) | 0x80);
            v >>= 7;
        }
        buf_[n_++] = static_cast<char>(v);
    }
    void zigzag(std::int64_t v) {
        varint((static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63));
    }
    void u8(std::uint8_t v) {
        room(1);
        buf_[n_++] = static_cast<char>(v);
    }
    void raw(const void* p, std::size_t len) {
        if (len > buf_.size() - n_) {
            spill();
            if (len > buf_.size()) {
                XXH3_64bits_update(state(), p, len);
                return;
            }
        }
        std::memcpy(buf_.data() + n_, p, len);
        n_ += len;
    }
    void bytes(const void* p, std::size_t len) {
        varint(len);
        raw(p, len);
    }
    // ByteWriter::value's encoding: tag, then zigzag integer, 8 little-endian bytes of
    // the double, or length and bytes.
    void value(const crdt::Value& v) {
        using crdt::StorageClass;
        u8(static_cast<std::uint8_t>(v.storage_class()));
        switch (v.storage_class()) {
        case StorageClass::null: break;
        case StorageClass::integer: zigzag(v.as_integer()); break;
        case StorageClass::real: {
            double d = v.as_real();
            std::uint64_t bits;
            std::memcpy(&bits, &d, sizeof bits);
            room(8);
            for (int i = 0; i < 8; ++i) {
                buf_[n_++] = static_cast<char>(bits >> (8 * i));
            }
            break;
        }
        case StorageClass::text: bytes(v.as_text().data(), v.as_text().size()); break;
        case StorageClass::blob: bytes(v.as_blob().data(), v.as_blob().size()); break;
        }
    }
    void stamp(const crdt::Stamp& s) {
        varint(s.hlc.raw());
        constexpr std::size_t kId = crdt::NodeId::kSize;
        room(1 + kId);
        buf_[n_++] = static_cast<char>(kId); // the length, a one-byte varint
        std::memcpy(buf_.data() + n_, s.node.data(), kId);
        n_ += kId;
    }
    std::uint64_t finish() {
        if (!streaming_) {
            return XXH3_64bits(buf_.data(), n_);
        }
        spill();
        streaming_ = false;
        return XXH3_64bits_digest(state_);
    }

private:
    void room(std::size_t len) {
        if (buf_.size() - n_ < len) {
            spill();
        }
    }
    XXH3_state_t* state() {
        if (!streaming_) {
            // One per thread, kept: rows longer than the buffer are rare.
            thread_local std::unique_ptr<XXH3_state_t, XXH_errorcode (*)(XXH3_state_t*)> kept(
                XXH3_createState(), XXH3_freeState);
            state_ = kept.get();
            XXH3_64bits_reset(state_);
            streaming_ = true;
        }
        return state_;
    }
    void spill() {
        XXH3_64bits_update(state(), buf_.data(), n_);
        n_ = 0;
    }

    std::array<char, 1024> buf_;
    std::size_t n_ = 0;
    bool streaming_ = false;
    XXH3_state_t* state_ = nullptr;
};

// Calls `put` on every entry in hash order: as they are when `in_order`, else through
// `scratch`, pointers sorted by `less`.
template <class Entry, class Less, class Put>
void put_in_order(const std::vector<Entry>& entries, bool in_order,
                  std::vector<const Entry*>& scratch, Less less, Put put) {
    if (in_order) {
        for (const auto& e : entries) {
            put(e);
        }
        return;
    }
    scratch.clear();
    for (const auto& e : entries) {
        scratch.push_back(&e);
    }
    std::sort(scratch.begin(), scratch.end(), less);
    for (const auto* e : scratch) {
        put(*e);
    }
}

} // namespace

std::uint32_t key_bucket(const std::vector<crdt::Value>& key) {
    HashInput in;
    for (const auto& v : key) {
        in.value(v);
    }
    return static_cast<std::uint32_t>(in.finish() % wire::kDigestBuckets);
}

std::uint64_t row_hash(const TableState& t, const std::vector<crdt::Value>& key,
                       const RowRecord& record) {
    if (record.life.life.value() == 0) {
        return 0;
    }
    thread_local std::vector<const CellEntry*> cells;
    thread_local std::vector<const CounterEntry*> counters;
    HashInput in;
    for (const auto& v : key) {
        in.value(v);
    }
    in.varint(record.life.life.value());
    in.stamp(record.life.stamp);
    auto rank = [&](int column) {
        return t.name_rank[static_cast<std::size_t>(column)];
    };
    auto name = [&](int column) -> const std::string& {
        return t.schema.values[static_cast<std::size_t>(column)].name;
    };
    auto put_cell = [&](const CellEntry& c) {
        in.bytes(name(c.column).data(), name(c.column).size());
        in.varint(c.write.life.value());
        in.stamp(c.write.stamp);
        in.u8(c.has_value ? 1 : 0);
        if (c.has_value) {
            in.value(c.write.value);
        }
    };
    auto put_counter = [&](const CounterEntry& c) {
        in.bytes(name(c.column).data(), name(c.column).size());
        in.varint(c.write.life.value());
        in.stamp(c.write.stamp);
        in.zigzag(c.write.total);
    };
    // By column name, then contributing node: positions differ between files. The record
    // keeps cells by position and counters by (position, node), so where positions
    // already sort by name (TableState::names_in_order) it is in hash order as it is
    // (checked, not assumed: a few compares).
    bool in_order = t.names_in_order &&
                    std::is_sorted(record.cells.begin(), record.cells.end(),
                                   [](const CellEntry& a, const CellEntry& b) {
                                       return a.column < b.column;
                                   }) &&
                    std::is_sorted(record.counters.begin(), record.counters.end(),
                                   [](const CounterEntry& a, const CounterEntry& b) {
                                       return std::tie(a.column, a.write.stamp.node) <
                                              std::tie(b.column, b.write.stamp.node);
                                   });
    in.varint(record.cells.size());
    put_in_order(
        record.cells, in_order, cells,
        [&](const CellEntry* a, const CellEntry* b) { return rank(a->column) < rank(b->column); },
        put_cell);
    in.varint(record.counters.size());
    put_in_order(
        record.counters, in_order, counters,
        [&](const CounterEntry* a, const CounterEntry* b) {
            return std::make_pair(rank(a->column), a->write.stamp.node) <
                   std::make_pair(rank(b->column), b->write.stamp.node);
        },
        put_counter);
    auto h = in.finish();
    return h == 0 ? 1 : h; // 0 means "no row"
}

} // namespace peerlite::store

namespace peerlite::store {

Result<std::vector<std::uint64_t>> Store::Impl::compute_buckets(TableState& t) {
    std::vector<std::uint64_t> buckets(wire::kDigestBuckets, 0);
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
    if (auto kept = read_sums(db.get(), digest_select, t.schema.name);
        kept || kept.status().code() != Code::not_found) {
        return kept.status();
    }
    auto buckets = compute_buckets(t);
    if (!buckets) {
        return buckets.status();
    }
    if (auto st = put_digests(t.schema.name, *buckets); !st.ok()) {
        return st;
    }
    // Deltas noted before now are part of what was just computed.
    t.drop_digest_deltas();
    return Status::success();
}

Status Store::Impl::put_digests(const std::string& table,
                                const std::vector<std::uint64_t>& buckets) {
    auto bytes = encode_digest_sums(buckets);
    digest_put.bind_text(1, table);
    digest_put.bind_blob(2, bytes.data(), bytes.size());
    return digest_put.run("writing digests");
}

Status Store::Impl::flush_digests() {
    for (auto& [name, t] : tables) {
        if (t.digest_touched.empty()) {
            continue;
        }
        // ensure_digests() put the row in when the table was installed.
        auto buckets = read_sums(db.get(), digest_select, name);
        if (!buckets) {
            return buckets.status();
        }
        for (auto b : t.digest_touched) {
            (*buckets)[b] += t.digest_delta[b]; // wraps, as the sums do
            t.digest_delta[b] = 0;              // a bucket listed twice adds once
        }
        t.digest_touched.clear();
        if (auto st = put_digests(name, *buckets); !st.ok()) {
            return st;
        }
    }
    return Status::success();
}

std::string encode_digest_sums(const std::vector<std::uint64_t>& buckets) {
    std::string out(buckets.size() * 8, '\0');
    for (std::size_t i = 0; i < buckets.size(); ++i) {
        for (int j = 0; j < 8; ++j) {
            out[i * 8 + static_cast<std::size_t>(j)] = static_cast<char>(buckets[i] >> (8 * j));
        }
    }
    return out;
}

Result<std::vector<std::uint64_t>> decode_digest_sums(std::string_view bytes,
                                                      const std::string& table) {
    if (bytes.size() != wire::kDigestBuckets * 8) {
        return Status(Code::corruption, "_peerlite_digest_sums: the sums of table '" + table +
                                            "' are " + std::to_string(bytes.size()) +
                                            " bytes, not " +
                                            std::to_string(wire::kDigestBuckets * 8));
    }
    std::vector<std::uint64_t> buckets(wire::kDigestBuckets, 0);
    for (std::size_t i = 0; i < buckets.size(); ++i) {
        for (int j = 0; j < 8; ++j) {
            buckets[i] |=
                std::uint64_t{static_cast<std::uint8_t>(bytes[i * 8 + static_cast<std::size_t>(j)])}
                << (8 * j);
        }
    }
    return buckets;
}

wire::TableDigest summarize(const std::string& table, std::uint64_t schema,
                            std::vector<std::uint64_t> buckets, bool with_buckets) {
    wire::TableDigest d{table, schema, 0, {}};
    for (auto b : buckets) {
        d.total += b;
    }
    if (with_buckets) {
        d.buckets = std::move(buckets);
    }
    return d;
}

Result<std::vector<std::uint64_t>> read_sums(sqlite3* db, sql::Stmt& select,
                                             const std::string& table) {
    sql::Reset reset(select);
    select.bind_text(1, table);
    int rc = select.step();
    if (rc == SQLITE_DONE) {
        return Status(Code::not_found, "no content digests are kept for table '" + table +
                                           "' yet: a node computes them when it opens the "
                                           "file with the table synced");
    }
    if (rc != SQLITE_ROW) {
        return sql::error(db, "reading digests of '" + table + "'");
    }
    return decode_digest_sums(select.column_blob(0), table);
}

Result<std::vector<std::uint64_t>> read_digest_buckets(sqlite3* db, const std::string& table) {
    // Prepared per call: for readers (the inspector, Store::digests), not the upkeep.
    auto stmt = sql::Stmt::prepare(db, "SELECT sums FROM _peerlite_digest_sums WHERE tbl = ?1");
    if (!stmt) {
        return stmt.status();
    }
    return read_sums(db, *stmt, table);
}

Result<std::vector<wire::TableDigest>> Store::digests(bool with_buckets) {
    auto& s = *impl_;
    if (auto st = refresh_schema(); !st.ok()) {
        return st;
    }
    std::vector<wire::TableDigest> out;
    for (auto& [name, t] : s.tables) {
        auto buckets = read_digest_buckets(s.db.get(), name);
        if (!buckets) {
            return buckets.status();
        }
        out.push_back(
            summarize(t.mesh_name, t.schema.identity(), std::move(*buckets), with_buckets));
    }
    return out;
}

Result<std::vector<wire::TableDigest>> Store::recompute_digests() {
    auto& s = *impl_;
    auto tx = sql::Transaction::begin_read(s.db.get());
    if (!tx) {
        return tx.status();
    }
    std::vector<wire::TableDigest> out;
    for (auto& [name, t] : s.tables) {
        auto buckets = s.compute_buckets(t);
        if (!buckets) {
            return buckets.status();
        }
        out.push_back(summarize(t.mesh_name, t.schema.identity(), std::move(*buckets), true));
    }
    if (auto st = s.commit(*tx); !st.ok()) {
        return st;
    }
    return out;
}

} // namespace peerlite::store
