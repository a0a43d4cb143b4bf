// The gossip messages' codec, both ways. Long because it is the whole wire envelope in one
// place (each body's encoder beside its bounded, type-checked decoder), which is how
// docs/protocol.md is checked against it; splitting encode from decode would separate
// each format's two halves.
//
// Message encoding:
//   message      := [version:uint, type:uint, sender:bin16, sender_salt:bin16, body]
//   hello        := [member, [member ...]]
//   members      := [[member ...]]
//   push         := [change_set:bin, forward:bool]
//   sync_request := [session:uint, vector]
//   sync_response:= [session:uint, change_set:bin, vector]
//   ping         := [seq:uint, on_behalf_of:bin16, target:bin16]
//   ack          := [seq:uint, target:bin16, incarnation:uint]
//   digests      := [vector, [[table:str, schema:uint, total:uint, [bucket:uint ...]] ...]]
//   repair       := [table:str, [bucket:uint ...], change_set:bin, reply:bool]
//   member       := [id:bin16, endpoint:str, public_key:str, incarnation:uint, id_salt:bin16]
//   vector       := [[node:bin16, [[first:uint, last:uint] ...]] ...]
// change_set is the wire library's encoding (wire/change_set.cpp), carried as bin.
#include <msgpack.hpp>

#include <peerlite/transport/message.hpp>

namespace peerlite::transport {

namespace {

using Packer = msgpack::packer<msgpack::sbuffer>;

// Bounds of the envelope's own msgpack, fixed by the format rather than tuned: its longest
// string is an endpoint or a table name (the change set's values travel inside bin, with
// their own limits), and its deepest nesting (message, body, vector, origin, ranges,
// range) is 6; twice that leaves room without letting a frame nest without end.
constexpr std::size_t kMaxStringBytes = 4096;
constexpr std::size_t kMaxDepth = 12;

void pack_id(Packer& p, const crdt::NodeId& id) {
    auto b = id.bytes();
    p.pack_bin(static_cast<std::uint32_t>(b.size()));
    p.pack_bin_body(reinterpret_cast<const char*>(b.data()), static_cast<std::uint32_t>(b.size()));
}

void pack_bytes(Packer& p, const std::string& bytes) {
    p.pack_bin(static_cast<std::uint32_t>(bytes.size()));
    p.pack_bin_body(bytes.data(), static_cast<std::uint32_t>(bytes.size()));
}

void pack_member(Packer& p, const Member& m) {
    p.pack_array(5);
    pack_id(p, m.id);
    p.pack(m.endpoint);
    p.pack(m.public_key);
    p.pack_uint64(m.incarnation);
    pack_id(p, m.id_salt);
}

void pack_members(Packer& p, const std::vector<Member>& members) {
    p.pack_array(static_cast<std::uint32_t>(members.size()));
    for (const auto& m : members) {
        pack_member(p, m);
    }
}

void pack_vector(Packer& p, const crdt::VersionVector& v) {
    p.pack_array(static_cast<std::uint32_t>(v.origins().size()));
    for (const auto& [origin, ranges] : v.origins()) {
        p.pack_array(2);
        pack_id(p, origin);
        p.pack_array(static_cast<std::uint32_t>(ranges.ranges().size()));
        for (const auto& r : ranges.ranges()) {
            p.pack_array(2);
            p.pack_uint64(r.first.raw());
            p.pack_uint64(r.last.raw());
        }
    }
}

struct Reader {
    const MessageLimits& limits;
    Status error;

    bool fail(const std::string& what) {
        error = Status(Code::corruption, what);
        return false;
    }
    bool array(const msgpack::object& o, std::size_t n, const char* what) {
        if (o.type != msgpack::type::ARRAY || o.via.array.size != n) {
            return fail(std::string(what) + " must be an array of " + std::to_string(n));
        }
        return true;
    }
    bool list(const msgpack::object& o, std::size_t max, const char* what) {
        if (o.type != msgpack::type::ARRAY) {
            return fail(std::string(what) + " must be an array");
        }
        if (o.via.array.size > max) {
            error = Status(Code::limit_exceeded, std::string(what) + " has too many entries");
            return false;
        }
        return true;
    }
    bool uint(const msgpack::object& o, std::uint64_t& out, const char* what) {
        if (o.type != msgpack::type::POSITIVE_INTEGER) {
            return fail(std::string(what) + " must be an unsigned integer");
        }
        out = o.via.u64;
        return true;
    }
    bool str(const msgpack::object& o, std::string& out, const char* what, std::size_t max = 1024) {
        if (o.type != msgpack::type::STR || o.via.str.size > max) {
            return fail(std::string(what) + " must be a string of at most " + std::to_string(max) +
                        " bytes");
        }
        out.assign(o.via.str.ptr, o.via.str.size);
        return true;
    }
    bool bin(const msgpack::object& o, std::string_view& out, const char* what) {
        if (o.type != msgpack::type::BIN) {
            return fail(std::string(what) + " must be bin");
        }
        out = std::string_view(o.via.bin.ptr, o.via.bin.size);
        return true;
    }
    bool id(const msgpack::object& o, crdt::NodeId& out, const char* what, bool allow_nil = false) {
        std::string_view b;
        if (!bin(o, b, what) || b.size() != crdt::NodeId::kSize) {
            return fail(std::string(what) + " must be 16 bytes of bin");
        }
        crdt::NodeId::Bytes bytes{};
        std::copy(b.begin(), b.end(), bytes.begin());
        out = crdt::NodeId::from_bytes(bytes);
        if (!allow_nil && out.is_nil()) {
            return fail(std::string(what) + " is the nil node id");
        }
        return true;
    }
    bool member(const msgpack::object& o, Member& m) {
        return array(o, 5, "member") && id(o.via.array.ptr[0], m.id, "member.id") &&
               str(o.via.array.ptr[1], m.endpoint, "member.endpoint") &&
               str(o.via.array.ptr[2], m.public_key, "member.public_key") &&
               uint(o.via.array.ptr[3], m.incarnation, "member.incarnation") &&
               id(o.via.array.ptr[4], m.id_salt, "member.id_salt", true);
    }
    bool members(const msgpack::object& o, std::vector<Member>& out) {
        if (!list(o, limits.max_members, "members")) {
            return false;
        }
        out.resize(o.via.array.size);
        for (std::uint32_t i = 0; i < o.via.array.size; ++i) {
            if (!member(o.via.array.ptr[i], out[i])) {
                return false;
            }
        }
        return true;
    }
    bool vector(const msgpack::object& o, crdt::VersionVector& out) {
        if (!list(o, limits.max_members, "version vector")) {
            return false;
        }
        for (std::uint32_t i = 0; i < o.via.array.size; ++i) {
            const auto& e = o.via.array.ptr[i];
            crdt::NodeId origin;
            if (!array(e, 2, "vector entry") || !id(e.via.array.ptr[0], origin, "vector origin") ||
                !list(e.via.array.ptr[1], limits.change_set.max_rows, "vector ranges")) {
                return false;
            }
            const auto& ranges = e.via.array.ptr[1].via.array;
            for (std::uint32_t j = 0; j < ranges.size; ++j) {
                std::uint64_t first = 0, last = 0;
                if (!array(ranges.ptr[j], 2, "range") ||
                    !uint(ranges.ptr[j].via.array.ptr[0], first, "range.first") ||
                    !uint(ranges.ptr[j].via.array.ptr[1], last, "range.last")) {
                    return false;
                }
                if (first > last) {
                    return fail("vector range runs backwards");
                }
                out.add(origin,
                        crdt::ClockRange{crdt::Hlc::from_raw(first), crdt::Hlc::from_raw(last)});
            }
        }
        return true;
    }
    bool change_set(const msgpack::object& o, wire::ChangeSet& out) {
        std::string_view bytes;
        if (!bin(o, bytes, "change set")) {
            return false;
        }
        auto decoded = wire::decode(bytes, limits.change_set);
        if (!decoded) {
            error = decoded.status();
            return false;
        }
        out = std::move(*decoded);
        return true;
    }

    bool table_digest(const msgpack::object& o, wire::TableDigest& d) {
        if (!array(o, 4, "table digest") || !str(o.via.array.ptr[0], d.table, "table") ||
            !uint(o.via.array.ptr[1], d.schema, "schema") ||
            !uint(o.via.array.ptr[2], d.total, "total") ||
            !list(o.via.array.ptr[3], wire::kDigestBuckets, "buckets")) {
            return false;
        }
        const auto& b = o.via.array.ptr[3].via.array;
        if (b.size != 0 && b.size != wire::kDigestBuckets) {
            return fail("a table digest has no buckets or exactly " +
                        std::to_string(wire::kDigestBuckets));
        }
        d.buckets.resize(b.size);
        for (std::uint32_t i = 0; i < b.size; ++i) {
            if (!uint(b.ptr[i], d.buckets[i], "bucket digest")) {
                return false;
            }
        }
        return true;
    }
    bool buckets(const msgpack::object& o, std::vector<std::uint32_t>& out) {
        if (!list(o, wire::kDigestBuckets, "buckets")) {
            return false;
        }
        for (std::uint32_t i = 0; i < o.via.array.size; ++i) {
            std::uint64_t b = 0;
            if (!uint(o.via.array.ptr[i], b, "bucket")) {
                return false;
            }
            if (b >= wire::kDigestBuckets) {
                return fail("bucket " + std::to_string(b) + " is out of range");
            }
            out.push_back(static_cast<std::uint32_t>(b));
        }
        return true;
    }

    bool body(MessageType type, const msgpack::object& o, Body& out) {
        const auto* f = o.type == msgpack::type::ARRAY ? o.via.array.ptr : nullptr;
        switch (type) {
        case MessageType::hello: {
            Hello h;
            if (!array(o, 2, "hello") || !member(f[0], h.self) || !members(f[1], h.members)) {
                return false;
            }
            out = std::move(h);
            return true;
        }
        case MessageType::members: {
            Members m;
            if (!array(o, 1, "members message") || !members(f[0], m.members)) {
                return false;
            }
            out = std::move(m);
            return true;
        }
        case MessageType::push: {
            Push p;
            if (!array(o, 2, "push") || !change_set(f[0], p.changes)) {
                return false;
            }
            if (f[1].type != msgpack::type::BOOLEAN) {
                return fail("push.forward must be a boolean");
            }
            p.forward = f[1].via.boolean;
            out = std::move(p);
            return true;
        }
        case MessageType::sync_request: {
            SyncRequest r;
            if (!array(o, 2, "sync_request") || !uint(f[0], r.session, "session") ||
                !vector(f[1], r.have)) {
                return false;
            }
            out = std::move(r);
            return true;
        }
        case MessageType::sync_response: {
            SyncResponse r;
            if (!array(o, 3, "sync_response") || !uint(f[0], r.session, "session") ||
                !change_set(f[1], r.changes) || !vector(f[2], r.sender_has)) {
                return false;
            }
            out = std::move(r);
            return true;
        }
        case MessageType::ping: {
            Ping p;
            if (!array(o, 3, "ping") || !uint(f[0], p.seq, "seq") ||
                !id(f[1], p.on_behalf_of, "on_behalf_of", true) || !id(f[2], p.target, "target")) {
                return false;
            }
            out = p;
            return true;
        }
        case MessageType::digests: {
            Digests d;
            if (!array(o, 2, "digests") || !vector(f[0], d.at) ||
                !list(f[1], limits.max_members, "tables")) {
                return false;
            }
            d.tables.resize(f[1].via.array.size);
            for (std::uint32_t i = 0; i < f[1].via.array.size; ++i) {
                if (!table_digest(f[1].via.array.ptr[i], d.tables[i])) {
                    return false;
                }
            }
            out = std::move(d);
            return true;
        }
        case MessageType::repair: {
            Repair r;
            if (!array(o, 4, "repair") || !str(f[0], r.table, "table") ||
                !buckets(f[1], r.buckets) || !change_set(f[2], r.rows)) {
                return false;
            }
            if (f[3].type != msgpack::type::BOOLEAN) {
                return fail("repair.reply must be a boolean");
            }
            if (!r.rows.covers.empty()) {
                return fail("a repair claims no coverage");
            }
            r.reply = f[3].via.boolean;
            out = std::move(r);
            return true;
        }
        case MessageType::ack: {
            Ack a;
            if (!array(o, 3, "ack") || !uint(f[0], a.seq, "seq") || !id(f[1], a.target, "target") ||
                !uint(f[2], a.incarnation, "incarnation")) {
                return false;
            }
            out = a;
            return true;
        }
        }
        return fail("unknown message type " + std::to_string(static_cast<int>(type)));
    }
};

} // namespace

MessageType Message::type() const {
    return static_cast<MessageType>(body.index() + 1);
}

std::string_view type_name(MessageType type) {
    switch (type) {
    case MessageType::hello: return "hello";
    case MessageType::members: return "members";
    case MessageType::push: return "push";
    case MessageType::sync_request: return "sync_request";
    case MessageType::sync_response: return "sync_response";
    case MessageType::ping: return "ping";
    case MessageType::ack: return "ack";
    case MessageType::digests: return "digests";
    case MessageType::repair: return "repair";
    }
    return "unknown";
}

std::string encode(const Message& m) {
    msgpack::sbuffer buffer;
    Packer p(buffer);
    p.pack_array(5);
    p.pack_uint32(kProtocolVersion);
    p.pack_uint8(static_cast<std::uint8_t>(m.type()));
    pack_id(p, m.sender);
    pack_id(p, m.sender_salt);
    std::visit(
        [&](const auto& b) {
            using T = std::decay_t<decltype(b)>;
            if constexpr (std::is_same_v<T, Hello>) {
                p.pack_array(2);
                pack_member(p, b.self);
                pack_members(p, b.members);
            } else if constexpr (std::is_same_v<T, Members>) {
                p.pack_array(1);
                pack_members(p, b.members);
            } else if constexpr (std::is_same_v<T, Push>) {
                p.pack_array(2);
                pack_bytes(p, wire::encode(b.changes));
                p.pack(b.forward);
            } else if constexpr (std::is_same_v<T, SyncRequest>) {
                p.pack_array(2);
                p.pack_uint64(b.session);
                pack_vector(p, b.have);
            } else if constexpr (std::is_same_v<T, SyncResponse>) {
                p.pack_array(3);
                p.pack_uint64(b.session);
                pack_bytes(p, wire::encode(b.changes));
                pack_vector(p, b.sender_has);
            } else if constexpr (std::is_same_v<T, Ping>) {
                p.pack_array(3);
                p.pack_uint64(b.seq);
                pack_id(p, b.on_behalf_of);
                pack_id(p, b.target);
            } else if constexpr (std::is_same_v<T, Ack>) {
                p.pack_array(3);
                p.pack_uint64(b.seq);
                pack_id(p, b.target);
                p.pack_uint64(b.incarnation);
            } else if constexpr (std::is_same_v<T, Digests>) {
                p.pack_array(2);
                pack_vector(p, b.at);
                p.pack_array(static_cast<std::uint32_t>(b.tables.size()));
                for (const auto& t : b.tables) {
                    p.pack_array(4);
                    p.pack(t.table);
                    p.pack_uint64(t.schema);
                    p.pack_uint64(t.total);
                    p.pack_array(static_cast<std::uint32_t>(t.buckets.size()));
                    for (auto d : t.buckets) {
                        p.pack_uint64(d);
                    }
                }
            } else {
                static_assert(std::is_same_v<T, Repair>);
                p.pack_array(4);
                p.pack(b.table);
                p.pack_array(static_cast<std::uint32_t>(b.buckets.size()));
                for (auto bucket : b.buckets) {
                    p.pack_uint32(bucket);
                }
                pack_bytes(p, wire::encode(b.rows));
                p.pack(b.reply);
            }
        },
        m.body);
    return std::string(buffer.data(), buffer.size());
}

namespace {

// msgpack::unpack reserves every element an array or map header declares before it reads
// them: a 60-byte frame of nested headers could make it allocate megabytes. Each element
// takes at least a byte, so a frame declaring more elements than it has bytes is
// malformed; this pass, which allocates nothing, refuses it first, and bounds what a
// frame can make unpack allocate to a small multiple of its size.
struct DeclaredElements : msgpack::v2::null_visitor {
    std::size_t total = 0;
    std::size_t limit = 0;
    bool start_array(std::uint32_t n) {
        total += n;
        return total <= limit;
    }
    bool start_map(std::uint32_t n) {
        total += 2 * static_cast<std::size_t>(n);
        return total <= limit;
    }
};

} // namespace

Result<Message> decode(std::string_view bytes, const MessageLimits& limits) {
    if (bytes.size() > limits.max_bytes) {
        return Status(Code::limit_exceeded, "message of " + std::to_string(bytes.size()) +
                                                " bytes is over the limit of " +
                                                std::to_string(limits.max_bytes));
    }
    {
        DeclaredElements declared;
        declared.limit = bytes.size();
        try {
            (void)msgpack::v2::parse(bytes.data(), bytes.size(), declared);
        } catch (const std::exception&) {
            // malformed: unpack below says how
        }
        if (declared.total > declared.limit) {
            return Status(Code::corruption,
                          "the message's arrays and maps declare more elements than its " +
                              std::to_string(bytes.size()) + " bytes can hold");
        }
    }
    msgpack::object_handle handle;
    try {
        std::size_t offset = 0;
        msgpack::unpack_limit bounds(std::max(limits.change_set.max_rows, limits.max_members), 0,
                                     kMaxStringBytes, limits.max_bytes, 0, kMaxDepth);
        handle = msgpack::unpack(bytes.data(), bytes.size(), offset, nullptr, nullptr, bounds);
        if (offset != bytes.size()) {
            return Status(Code::corruption, "trailing bytes after the message");
        }
    } catch (const msgpack::size_overflow& e) {
        return Status(Code::limit_exceeded,
                      std::string("message exceeds a decode limit: ") + e.what());
    } catch (const std::exception& e) {
        return Status(Code::corruption, std::string("not msgpack: ") + e.what());
    }
    const auto& o = handle.get();
    Reader r{limits, {}};
    // The version comes first, so a newer peer gets "unsupported", not "corrupt".
    if (o.type != msgpack::type::ARRAY || o.via.array.size < 1) {
        return Status(Code::corruption,
                      "a message must be an array starting with the protocol version");
    }
    std::uint64_t version = 0, type = 0;
    if (!r.uint(o.via.array.ptr[0], version, "version")) {
        return r.error;
    }
    if (version != kProtocolVersion) {
        return Status(Code::unsupported, "protocol version " + std::to_string(version) +
                                             " (this build speaks " +
                                             std::to_string(kProtocolVersion) + ")");
    }
    Message m;
    if (!r.array(o, 5, "message") || !r.uint(o.via.array.ptr[1], type, "type") ||
        !r.id(o.via.array.ptr[2], m.sender, "sender") ||
        !r.id(o.via.array.ptr[3], m.sender_salt, "sender_salt", true)) {
        return r.error;
    }
    if (type < 1 || type > static_cast<std::uint64_t>(MessageType::repair)) {
        return Status(Code::corruption, "unknown message type " + std::to_string(type));
    }
    if (!r.body(static_cast<MessageType>(type), o.via.array.ptr[4], m.body)) {
        return Status(r.error.code(), std::string(type_name(static_cast<MessageType>(type))) +
                                          ": " + r.error.message());
    }
    return m;
}

} // namespace peerlite::transport
