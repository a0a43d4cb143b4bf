#include <algorithm>
#include <cstring>

#include <boost/uuid/name_generator_sha1.hpp>
#include <boost/uuid/uuid_io.hpp>

#include <peerlite/crdt/node_id.hpp>

namespace peerlite::crdt {

NodeId NodeId::from_bytes(const Bytes& bytes) {
    NodeId id;
    std::copy(bytes.begin(), bytes.end(), id.uuid_.begin());
    return id;
}

Result<NodeId> NodeId::from_bytes(std::span<const std::uint8_t> bytes) {
    if (bytes.size() != kSize) {
        return Status(Code::corruption,
                      "node id must be 16 bytes, got " + std::to_string(bytes.size()));
    }
    Bytes fixed{};
    std::copy(bytes.begin(), bytes.end(), fixed.begin());
    return from_bytes(fixed);
}

namespace {
int hex_digit(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}
} // namespace

Result<NodeId> NodeId::parse(std::string_view text) {
    // Boost's string_generator throws on bad input and accepts braces; a strict parser
    // of the one canonical form keeps config errors precise.
    auto bad = [&] {
        return Status(Code::invalid_argument,
                      "'" + std::string(text) +
                          "' is not a node id (expected 8-4-4-4-12 hex digits, "
                          "e.g. 0b9e4c3a-1f2d-4e5f-8a6b-7c8d9e0f1a2b)");
    };
    if (text.size() != 36) {
        return bad();
    }
    Bytes bytes{};
    std::size_t out = 0;
    for (std::size_t i = 0; i < text.size();) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (text[i] != '-') {
                return bad();
            }
            ++i;
            continue;
        }
        int hi = hex_digit(text[i]);
        int lo = hex_digit(text[i + 1]);
        if (hi < 0 || lo < 0) {
            return bad();
        }
        bytes[out++] = static_cast<std::uint8_t>(hi * 16 + lo);
        i += 2;
    }
    return from_bytes(bytes);
}

NodeId NodeId::derive(std::string_view owner, const NodeId& salt) {
    // peerlite's own namespace: the same names give other UUIDs elsewhere.
    static constexpr boost::uuids::uuid kNamespace = {0x0d, 0x6c, 0x1e, 0x52, 0x7f, 0x3a,
                                                      0x4b, 0x8e, 0x9a, 0x41, 0x5e, 0x2c,
                                                      0x8d, 0x7b, 0x3f, 0x60};
    boost::uuids::name_generator_sha1 generate(kNamespace);
    std::string name(owner);
    name.append(reinterpret_cast<const char*>(salt.data()), kSize);
    NodeId id;
    id.uuid_ = generate(name);
    return id;
}

NodeId::Bytes NodeId::bytes() const {
    Bytes out{};
    std::copy(uuid_.begin(), uuid_.end(), out.begin());
    return out;
}

std::string NodeId::to_string() const {
    return boost::uuids::to_string(uuid_);
}

std::string NodeId::short_string() const {
    return to_string().substr(0, 8);
}

std::strong_ordering operator<=>(const NodeId& a, const NodeId& b) {
    int c = std::memcmp(a.uuid_.data, b.uuid_.data, NodeId::kSize);
    return c <=> 0;
}

} // namespace peerlite::crdt
