// Little building blocks of peerlite's binary formats: LEB128 varints, zigzag for signed
// numbers, and values tagged with their storage class. Readers are bounded: every read
// checks the remaining length and fails instead of reading past the end.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <peerlite/crdt/value.hpp>

namespace peerlite::wire {

class ByteWriter {
public:
    void u8(std::uint8_t v) { out_.push_back(static_cast<char>(v)); }
    void varint(std::uint64_t v);
    void zigzag(std::int64_t v) {
        varint((static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63));
    }
    void bytes(std::string_view b) {
        varint(b.size());
        out_.append(b);
    }
    // tag (StorageClass) then payload: zigzag integer, 8-byte IEEE double, or length+bytes.
    void value(const crdt::Value& v);

    const std::string& data() const { return out_; }
    std::string take() { return std::move(out_); }
    std::size_t size() const { return out_.size(); }
    void truncate(std::size_t size) { out_.resize(size); }
    void clear() { out_.clear(); } // keeps the capacity

private:
    std::string out_;
};

class ByteReader {
public:
    explicit ByteReader(std::string_view in) : in_(in) {}
    // Each returns false (and leaves the reader failed) if the input is too short or
    // malformed.
    bool u8(std::uint8_t& v);
    bool varint(std::uint64_t& v);
    bool zigzag(std::int64_t& v);
    bool bytes(std::string_view& v);
    bool value(crdt::Value& v);
    bool at_end() const { return pos_ == in_.size(); }

private:
    std::string_view in_;
    std::size_t pos_ = 0;
};

} // namespace peerlite::wire
