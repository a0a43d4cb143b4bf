#include <cstring>

#include <peerlite/wire/binary_codec.hpp>

namespace peerlite::wire {

void ByteWriter::varint(std::uint64_t v) {
    if (v < 0x80) {
        out_.push_back(static_cast<char>(v));
        return;
    }
    // Clocks take 9-10 bytes: one append, not a capacity check per byte (records and
    // row hashes write several per row).
    char buf[10];
    std::size_t n = 0;
    while (v >= 0x80) {
        buf[n++] = static_cast<char>((v & 0x7f) | 0x80);
        v >>= 7;
    }
    buf[n++] = static_cast<char>(v);
    out_.append(buf, n);
}

void ByteWriter::value(const crdt::Value& v) {
    using crdt::StorageClass;
    u8(static_cast<std::uint8_t>(v.storage_class()));
    switch (v.storage_class()) {
    case StorageClass::null: break;
    case StorageClass::integer: zigzag(v.as_integer()); break;
    case StorageClass::real: {
        double d = v.as_real();
        std::uint64_t bits;
        std::memcpy(&bits, &d, sizeof bits);
        for (int i = 0; i < 8; ++i) {
            u8(static_cast<std::uint8_t>(bits >> (8 * i)));
        }
        break;
    }
    case StorageClass::text: bytes(v.as_text()); break;
    case StorageClass::blob: {
        const auto& b = v.as_blob();
        bytes(std::string_view(reinterpret_cast<const char*>(b.data()), b.size()));
        break;
    }
    }
}

bool ByteReader::u8(std::uint8_t& v) {
    if (pos_ >= in_.size()) {
        return false;
    }
    v = static_cast<std::uint8_t>(in_[pos_++]);
    return true;
}

bool ByteReader::varint(std::uint64_t& v) {
    v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        std::uint8_t b;
        if (!u8(b)) {
            return false;
        }
        v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
        if ((b & 0x80) == 0) {
            return true;
        }
    }
    return false; // more than 10 bytes: not a varint we wrote
}

bool ByteReader::zigzag(std::int64_t& v) {
    std::uint64_t u;
    if (!varint(u)) {
        return false;
    }
    v = static_cast<std::int64_t>((u >> 1) ^ (~(u & 1) + 1));
    return true;
}

bool ByteReader::bytes(std::string_view& v) {
    std::uint64_t n;
    if (!varint(n) || n > in_.size() - pos_) {
        return false;
    }
    v = in_.substr(pos_, n);
    pos_ += n;
    return true;
}

bool ByteReader::value(crdt::Value& v) {
    using crdt::StorageClass;
    std::uint8_t tag;
    if (!u8(tag)) {
        return false;
    }
    switch (static_cast<StorageClass>(tag)) {
    case StorageClass::null: v = crdt::Value::null(); return true;
    case StorageClass::integer: {
        std::int64_t i;
        if (!zigzag(i)) {
            return false;
        }
        v = crdt::Value::integer(i);
        return true;
    }
    case StorageClass::real: {
        std::uint64_t bits = 0;
        for (int i = 0; i < 8; ++i) {
            std::uint8_t b;
            if (!u8(b)) {
                return false;
            }
            bits |= static_cast<std::uint64_t>(b) << (8 * i);
        }
        double d;
        std::memcpy(&d, &bits, sizeof d);
        v = crdt::Value::real(d);
        return true;
    }
    case StorageClass::text: {
        std::string_view s;
        if (!bytes(s)) {
            return false;
        }
        v = crdt::Value::text(std::string(s));
        return true;
    }
    case StorageClass::blob: {
        std::string_view s;
        if (!bytes(s)) {
            return false;
        }
        v = crdt::Value::blob(std::vector<std::uint8_t>(s.begin(), s.end()));
        return true;
    }
    }
    return false;
}

} // namespace peerlite::wire
