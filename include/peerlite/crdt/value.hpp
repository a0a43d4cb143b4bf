// A cell value with SQLite's storage classes, and one total order over all values.
//
// The order follows SQLite's own (NULL < numbers < TEXT < BLOB; INTEGER and REAL compare
// by numeric value; TEXT and BLOB bytewise, as the BINARY collation) and then breaks the
// ties SQLite leaves open, so that two values compare equal only when they are the same
// value of the same class: at equal numeric value INTEGER sorts before REAL, and -0.0
// before 0.0. NaN cannot be stored: SQLite turns it into NULL, and so does Value::real().
// Merge rules use this order as their last tie-break and for max-wins / min-wins.
#pragma once

#include <compare>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace peerlite::crdt {

// Fixed values: stored on disk and sent on the wire; they match SQLITE_INTEGER..SQLITE_NULL
// only by accident of naming, not number.
enum class StorageClass : std::uint8_t { null = 0, integer = 1, real = 2, text = 3, blob = 4 };

struct Blob {
    std::vector<std::uint8_t> bytes;
    friend bool operator==(const Blob&, const Blob&) = default;
};

class Value {
public:
    Value() = default; // NULL
    static Value null() { return {}; }
    static Value integer(std::int64_t v) { return Value(Storage(v)); }
    static Value real(double v); // NaN becomes NULL
    static Value text(std::string v);
    static Value blob(std::vector<std::uint8_t> v);

    StorageClass storage_class() const { return static_cast<StorageClass>(storage_.index()); }
    bool is_null() const { return storage_class() == StorageClass::null; }

    // Preconditions: the matching storage_class().
    std::int64_t as_integer() const { return std::get<std::int64_t>(storage_); }
    double as_real() const { return std::get<double>(storage_); }
    const std::string& as_text() const { return std::get<std::string>(storage_); }
    const std::vector<std::uint8_t>& as_blob() const { return std::get<Blob>(storage_).bytes; }

    // Bytes of a TEXT or BLOB value, 8 for a number, 0 for NULL (SQLite's sizes).
    std::size_t byte_size() const {
        switch (storage_class()) {
        case StorageClass::null: return 0;
        case StorageClass::text: return as_text().size();
        case StorageClass::blob: return as_blob().size();
        default: return 8;
        }
    }

    // SQL-literal-like rendering for people: NULL, 42, 1.5, 'text', x'00ff'.
    std::string to_string() const;

    friend std::strong_ordering operator<=>(const Value& a, const Value& b);
    friend bool operator==(const Value& a, const Value& b) { return (a <=> b) == 0; }

private:
    // The index of each alternative is its StorageClass value.
    using Storage = std::variant<std::monostate, std::int64_t, double, std::string, Blob>;
    explicit Value(Storage s) : storage_(std::move(s)) {}
    Storage storage_;
};

// A row key as people read and type it (log lines, the CLI): values separated by commas,
// text as is (commas and backslashes escaped with a backslash), numbers as numbers, BLOBs
// as x'00ff', NULL as NULL.
std::string format_key(const std::vector<Value>& key);

} // namespace peerlite::crdt
