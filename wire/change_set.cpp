// msgpack encoding of change sets; the format is specified in docs/protocol.md.
//
//   change_set := [nodes, rows, covers, complete:bool]
//   nodes      := [bin(16) ...]                         ids referred to by index below
//   rows       := [row ...]
//   row        := [table:str, key:[value ...], life, cells, counters]
//   life       := [causal_length:uint, hlc:uint, node:uint]
//   cells      := [[column:str, life:uint, hlc:uint, node:uint, replaced:uint, value] ...]
//   counters   := [[column:str, life:uint, hlc:uint, node:uint, total:int] ...]
//   covers     := [[node:uint, [[first:uint, last:uint] ...]] ...]
//   value      := nil | int | float64 | str | bin       (SQLite's storage classes)
#include <cstring>
#include <map>

#include <msgpack.hpp>

#include <peerlite/wire/change_set.hpp>

namespace peerlite::wire {

namespace {

using Packer = msgpack::packer<msgpack::sbuffer>;

// A msgpack buffer that only counts, so a row's encoded size is known without copying
// its values.
struct ByteCounter {
    std::size_t bytes = 0;
    void write(const char*, std::size_t n) { bytes += n; }
};

class NodeRefs {
public:
    std::uint32_t ref(const crdt::NodeId& id) {
        auto [it, fresh] = refs_.try_emplace(id, static_cast<std::uint32_t>(order_.size()));
        if (fresh) {
            order_.push_back(id);
        }
        return it->second;
    }
    const std::vector<crdt::NodeId>& order() const { return order_; }

private:
    std::map<crdt::NodeId, std::uint32_t> refs_;
    std::vector<crdt::NodeId> order_;
};

// Always a float64 (0xcb). msgpack-c 4.1's pack_double writes integral doubles as
// integers, which would turn SQLite's REAL 1.0 into INTEGER 1 and -0.0 into 0 on the
// receiver: a different value, and a different merge result.
template <class Buffer>
void pack_float64(Buffer& out, double d) {
    std::uint64_t bits;
    std::memcpy(&bits, &d, sizeof bits);
    char buf[9];
    buf[0] = static_cast<char>(0xcb);
    for (int i = 0; i < 8; ++i) {
        buf[1 + i] = static_cast<char>(bits >> (56 - 8 * i));
    }
    out.write(buf, sizeof buf);
}

template <class Buffer>
void pack_value(msgpack::packer<Buffer>& p, Buffer& out, const crdt::Value& v) {
    using crdt::StorageClass;
    switch (v.storage_class()) {
    case StorageClass::null: p.pack_nil(); break;
    case StorageClass::integer: p.pack_int64(v.as_integer()); break;
    case StorageClass::real: pack_float64(out, v.as_real()); break;
    case StorageClass::text:
        p.pack_str(static_cast<std::uint32_t>(v.as_text().size()));
        p.pack_str_body(v.as_text().data(), static_cast<std::uint32_t>(v.as_text().size()));
        break;
    case StorageClass::blob: {
        const auto& b = v.as_blob();
        p.pack_bin(static_cast<std::uint32_t>(b.size()));
        p.pack_bin_body(reinterpret_cast<const char*>(b.data()),
                        static_cast<std::uint32_t>(b.size()));
        break;
    }
    }
}

template <class Buffer>
void pack_str(msgpack::packer<Buffer>& p, const std::string& s) {
    p.pack_str(static_cast<std::uint32_t>(s.size()));
    p.pack_str_body(s.data(), static_cast<std::uint32_t>(s.size()));
}

template <class Buffer>
void pack_row(msgpack::packer<Buffer>& p, Buffer& out, const RowChange& row, NodeRefs& nodes) {
    p.pack_array(5);
    pack_str(p, row.table);
    p.pack_array(static_cast<std::uint32_t>(row.key.size()));
    for (const auto& k : row.key) {
        pack_value(p, out, k);
    }
    p.pack_array(3);
    p.pack_uint64(row.life.life.value());
    p.pack_uint64(row.life.stamp.hlc.raw());
    p.pack_uint32(nodes.ref(row.life.stamp.node));
    p.pack_array(static_cast<std::uint32_t>(row.cells.size()));
    for (const auto& c : row.cells) {
        p.pack_array(6);
        pack_str(p, c.column);
        p.pack_uint64(c.write.life.value());
        p.pack_uint64(c.write.stamp.hlc.raw());
        p.pack_uint32(nodes.ref(c.write.stamp.node));
        p.pack_uint64(c.write.replaced.raw());
        pack_value(p, out, c.write.value);
    }
    p.pack_array(static_cast<std::uint32_t>(row.counters.size()));
    for (const auto& c : row.counters) {
        p.pack_array(5);
        pack_str(p, c.column);
        p.pack_uint64(c.write.life.value());
        p.pack_uint64(c.write.stamp.hlc.raw());
        p.pack_uint32(nodes.ref(c.write.stamp.node));
        p.pack_int64(c.write.total);
    }
}

// Where in a change set a field is, rendered only when something there is wrong (the
// happy path builds no strings): "rows[3].cells[1].hlc".
struct Path {
    const Path* parent = nullptr;
    const char* name = "";
    long index = -1;

    std::string render() const {
        std::string out = parent ? parent->render() : "";
        if (*name) {
            out += (out.empty() ? "" : ".") + std::string(name);
        }
        if (index >= 0) {
            out += "[" + std::to_string(index) + "]";
        }
        return out;
    }
};

// Decoding: each helper checks the msgpack type and fails with the path to the bad field.
struct Decoder {
    const DecodeLimits& limits;
    std::vector<crdt::NodeId> nodes;
    Status error;

    bool fail(const Path& at, const std::string& what) {
        error = Status(Code::corruption, "malformed change set: " + at.render() + " " + what);
        return false;
    }
    bool array(const msgpack::object& o, std::size_t n, const Path& at) {
        if (o.type != msgpack::type::ARRAY || o.via.array.size != n) {
            return fail(at, "must be an array of " + std::to_string(n));
        }
        return true;
    }
    bool list(const msgpack::object& o, std::size_t max, const Path& at) {
        if (o.type != msgpack::type::ARRAY) {
            return fail(at, "must be an array");
        }
        if (o.via.array.size > max) {
            error = Status(Code::limit_exceeded,
                           at.render() + " has " + std::to_string(o.via.array.size) +
                               " entries, over the limit of " + std::to_string(max));
            return false;
        }
        return true;
    }
    bool uint(const msgpack::object& o, std::uint64_t& out, const Path& at) {
        if (o.type != msgpack::type::POSITIVE_INTEGER) {
            return fail(at, "must be an unsigned integer");
        }
        out = o.via.u64;
        return true;
    }
    bool str(const msgpack::object& o, std::string& out, const Path& at) {
        if (o.type != msgpack::type::STR) {
            return fail(at, "must be a string");
        }
        out.assign(o.via.str.ptr, o.via.str.size);
        return true;
    }
    bool node(const msgpack::object& o, crdt::NodeId& out, const Path& at) {
        std::uint64_t ref = 0;
        if (!uint(o, ref, at)) {
            return false;
        }
        if (ref >= nodes.size()) {
            return fail(at, "refers to node #" + std::to_string(ref) + " of " +
                                std::to_string(nodes.size()));
        }
        out = nodes[ref];
        return true;
    }
    bool value(const msgpack::object& o, crdt::Value& out, const Path& at) {
        switch (o.type) {
        case msgpack::type::NIL: out = crdt::Value::null(); return true;
        case msgpack::type::POSITIVE_INTEGER:
            if (o.via.u64 > static_cast<std::uint64_t>(INT64_MAX)) {
                return fail(at, "is an integer beyond 64-bit signed range");
            }
            out = crdt::Value::integer(static_cast<std::int64_t>(o.via.u64));
            return true;
        case msgpack::type::NEGATIVE_INTEGER: out = crdt::Value::integer(o.via.i64); return true;
        case msgpack::type::FLOAT32:
        case msgpack::type::FLOAT64: out = crdt::Value::real(o.via.f64); return true;
        case msgpack::type::STR:
            out = crdt::Value::text(std::string(o.via.str.ptr, o.via.str.size));
            return true;
        case msgpack::type::BIN: {
            auto* p = reinterpret_cast<const std::uint8_t*>(o.via.bin.ptr);
            out = crdt::Value::blob(std::vector<std::uint8_t>(p, p + o.via.bin.size));
            return true;
        }
        default: return fail(at, "is not a SQLite value (nil, int, float, str or bin)");
        }
    }

    bool stamp(const msgpack::object& life, const msgpack::object& hlc, const msgpack::object& who,
               crdt::CausalLength& cl, crdt::Stamp& s, const Path& at) {
        std::uint64_t l = 0, h = 0;
        if (!uint(life, l, Path{&at, "life"}) || !uint(hlc, h, Path{&at, "hlc"}) ||
            !node(who, s.node, Path{&at, "node"})) {
            return false;
        }
        cl = crdt::CausalLength(l);
        s.hlc = crdt::Hlc::from_raw(h);
        return true;
    }

    bool row(const msgpack::object& o, RowChange& r, const Path& at) {
        if (!array(o, 5, at)) {
            return false;
        }
        const auto* f = o.via.array.ptr;
        Path key{&at, "key"}, life{&at, "life"}, cells{&at, "cells"}, counters{&at, "counters"};
        if (!str(f[0], r.table, Path{&at, "table"}) || !list(f[1], limits.max_columns, key)) {
            return false;
        }
        if (f[1].via.array.size == 0) {
            return fail(key, "is empty");
        }
        r.key.reserve(f[1].via.array.size);
        for (std::uint32_t i = 0; i < f[1].via.array.size; ++i) {
            r.key.emplace_back();
            if (!value(f[1].via.array.ptr[i], r.key.back(), Path{&key, "", i})) {
                return false;
            }
        }
        if (!array(f[2], 3, life) ||
            !stamp(f[2].via.array.ptr[0], f[2].via.array.ptr[1], f[2].via.array.ptr[2], r.life.life,
                   r.life.stamp, life)) {
            return false;
        }
        if (!list(f[3], limits.max_columns, cells) || !list(f[4], limits.max_columns, counters)) {
            return false;
        }
        r.cells.resize(f[3].via.array.size);
        for (std::uint32_t i = 0; i < f[3].via.array.size; ++i) {
            Path here{&cells, "", i};
            const auto& c = f[3].via.array.ptr[i];
            auto& cell = r.cells[i];
            std::uint64_t replaced = 0;
            if (!array(c, 6, here) ||
                !str(c.via.array.ptr[0], cell.column, Path{&here, "column"}) ||
                !stamp(c.via.array.ptr[1], c.via.array.ptr[2], c.via.array.ptr[3], cell.write.life,
                       cell.write.stamp, here) ||
                !uint(c.via.array.ptr[4], replaced, Path{&here, "replaced"}) ||
                !value(c.via.array.ptr[5], cell.write.value, Path{&here, "value"})) {
                return false;
            }
            cell.write.replaced = crdt::Hlc::from_raw(replaced);
        }
        r.counters.resize(f[4].via.array.size);
        for (std::uint32_t i = 0; i < f[4].via.array.size; ++i) {
            Path here{&counters, "", i};
            const auto& c = f[4].via.array.ptr[i];
            auto& counter = r.counters[i];
            if (!array(c, 5, here) ||
                !str(c.via.array.ptr[0], counter.column, Path{&here, "column"}) ||
                !stamp(c.via.array.ptr[1], c.via.array.ptr[2], c.via.array.ptr[3],
                       counter.write.life, counter.write.stamp, here)) {
                return false;
            }
            crdt::Value t;
            if (!value(c.via.array.ptr[4], t, Path{&here, "total"}) ||
                t.storage_class() != crdt::StorageClass::integer) {
                return fail(Path{&here, "total"}, "must be an integer");
            }
            counter.write.total = t.as_integer();
        }
        return true;
    }

    bool change_set(const msgpack::object& o, ChangeSet& out) {
        Path root{nullptr, "change set"};
        if (!array(o, 4, root)) {
            return false;
        }
        const auto* f = o.via.array.ptr;
        Path nodes_at{nullptr, "nodes"}, rows_at{nullptr, "rows"}, covers_at{nullptr, "covers"};
        if (!list(f[0], limits.max_nodes, nodes_at)) {
            return false;
        }
        for (std::uint32_t i = 0; i < f[0].via.array.size; ++i) {
            const auto& n = f[0].via.array.ptr[i];
            if (n.type != msgpack::type::BIN || n.via.bin.size != crdt::NodeId::kSize) {
                return fail(Path{&nodes_at, "", i}, "must be 16 bytes of bin");
            }
            crdt::NodeId::Bytes b{};
            std::copy_n(reinterpret_cast<const std::uint8_t*>(n.via.bin.ptr), b.size(), b.begin());
            auto id = crdt::NodeId::from_bytes(b);
            if (id.is_nil()) {
                return fail(Path{&nodes_at, "", i}, "is the nil node id");
            }
            nodes.push_back(id);
        }
        if (!list(f[1], limits.max_rows, rows_at)) {
            return false;
        }
        out.rows.resize(f[1].via.array.size);
        for (std::uint32_t i = 0; i < f[1].via.array.size; ++i) {
            if (!row(f[1].via.array.ptr[i], out.rows[i], Path{&rows_at, "", i})) {
                return false;
            }
        }
        if (!list(f[2], limits.max_nodes, covers_at)) {
            return false;
        }
        for (std::uint32_t i = 0; i < f[2].via.array.size; ++i) {
            Path here{&covers_at, "", i};
            const auto& c = f[2].via.array.ptr[i];
            crdt::NodeId origin;
            Path ranges_at{&here, "ranges"};
            if (!array(c, 2, here) || !node(c.via.array.ptr[0], origin, Path{&here, "node"}) ||
                !list(c.via.array.ptr[1], limits.max_rows, ranges_at)) {
                return false;
            }
            const auto& ranges = c.via.array.ptr[1].via.array;
            for (std::uint32_t j = 0; j < ranges.size; ++j) {
                Path range{&ranges_at, "", j};
                std::uint64_t first = 0, last = 0;
                if (!array(ranges.ptr[j], 2, range) ||
                    !uint(ranges.ptr[j].via.array.ptr[0], first, range) ||
                    !uint(ranges.ptr[j].via.array.ptr[1], last, range)) {
                    return false;
                }
                if (first > last) {
                    return fail(range, "has a first clock after its last");
                }
                out.covers.add(origin, crdt::ClockRange{crdt::Hlc::from_raw(first),
                                                        crdt::Hlc::from_raw(last)});
            }
        }
        if (f[3].type != msgpack::type::BOOLEAN) {
            return fail(Path{nullptr, "complete"}, "must be a boolean");
        }
        out.complete = f[3].via.boolean;
        return true;
    }
};

} // namespace

std::string encode(const ChangeSet& set) {
    NodeRefs nodes;
    // Rows and covers first into their own buffer, so the node list can lead.
    msgpack::sbuffer body;
    Packer p(body);
    p.pack_array(static_cast<std::uint32_t>(set.rows.size()));
    for (const auto& row : set.rows) {
        pack_row(p, body, row, nodes);
    }
    p.pack_array(static_cast<std::uint32_t>(set.covers.origins().size()));
    for (const auto& [origin, ranges] : set.covers.origins()) {
        p.pack_array(2);
        p.pack_uint32(nodes.ref(origin));
        p.pack_array(static_cast<std::uint32_t>(ranges.ranges().size()));
        for (const auto& r : ranges.ranges()) {
            p.pack_array(2);
            p.pack_uint64(r.first.raw());
            p.pack_uint64(r.last.raw());
        }
    }
    p.pack(set.complete);
    msgpack::sbuffer out;
    Packer head(out);
    head.pack_array(4);
    head.pack_array(static_cast<std::uint32_t>(nodes.order().size()));
    for (const auto& id : nodes.order()) {
        auto b = id.bytes();
        head.pack_bin(static_cast<std::uint32_t>(b.size()));
        head.pack_bin_body(reinterpret_cast<const char*>(b.data()),
                           static_cast<std::uint32_t>(b.size()));
    }
    out.write(body.data(), body.size());
    return std::string(out.data(), out.size());
}

Result<ChangeSet> decode(std::string_view bytes, const DecodeLimits& limits) {
    if (bytes.size() > limits.max_bytes) {
        return Status(Code::limit_exceeded, "change set of " + std::to_string(bytes.size()) +
                                                " bytes is over the limit of " +
                                                std::to_string(limits.max_bytes));
    }
    msgpack::object_handle handle;
    try {
        std::size_t offset = 0;
        auto array_limit = std::max(limits.max_rows, limits.max_columns);
        msgpack::unpack_limit bounds(array_limit, 0, limits.max_value_bytes, limits.max_value_bytes,
                                     0, 8);
        handle = msgpack::unpack(bytes.data(), bytes.size(), offset, nullptr, nullptr, bounds);
        if (offset != bytes.size()) {
            return Status(Code::corruption,
                          "malformed change set: " + std::to_string(bytes.size() - offset) +
                              " trailing bytes");
        }
    } catch (const msgpack::size_overflow& e) {
        return Status(Code::limit_exceeded,
                      std::string("change set exceeds a decode limit: ") + e.what());
    } catch (const std::exception& e) {
        return Status(Code::corruption, std::string("malformed change set: ") + e.what());
    }
    Decoder decoder{limits, {}, {}};
    ChangeSet out;
    if (!decoder.change_set(handle.get(), out)) {
        return decoder.error;
    }
    return out;
}

std::size_t encoded_size(const RowChange& row) {
    ByteCounter counter;
    msgpack::packer<ByteCounter> p(counter);
    NodeRefs nodes;
    pack_row(p, counter, row, nodes);
    // Each distinct node id of the row may add an entry (bin 16) to the set's node list,
    // and a reference into that list takes up to 4 more bytes than the first ones did.
    return counter.bytes + nodes.order().size() * 18 + 4 * (1 + row.column_changes());
}

std::string encode(const RowChange& row) {
    return encode(ChangeSet{{row}, {}, true});
}

Result<RowChange> decode_row(std::string_view bytes, const DecodeLimits& limits) {
    auto set = decode(bytes, limits);
    if (!set) {
        return set.status();
    }
    if (set->rows.size() != 1) {
        return Status(Code::corruption, "expected exactly one row change");
    }
    return std::move(set->rows.front());
}

} // namespace peerlite::wire
