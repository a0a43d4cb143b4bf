#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

#include <peerlite/crdt/value.hpp>

namespace peerlite::crdt {

Value Value::real(double v) {
    if (std::isnan(v)) {
        return null();
    }
    return Value(Storage(v));
}

// Out of line on purpose: inlined, GCC 12 reports a false -Wfree-nonheap-object on the
// variant's string alternative.
Value Value::text(std::string v) {
    return Value(Storage(std::move(v)));
}

Value Value::blob(std::vector<std::uint8_t> v) {
    return Value(Storage(Blob{std::move(v)}));
}

namespace {

// Exact comparison of an integer with a finite or infinite double. Converting the
// integer to double would round above 2^53 and make distinct values compare equal.
std::strong_ordering compare_int_real(std::int64_t i, double d) {
    constexpr double two63 = 9223372036854775808.0; // 2^63, exactly representable
    if (d >= two63) {
        return std::strong_ordering::less;
    }
    if (d < -two63) {
        return std::strong_ordering::greater;
    }
    double whole = std::trunc(d); // now within int64 range
    auto w = static_cast<std::int64_t>(whole);
    if (i != w) {
        return i <=> w;
    }
    double fraction = d - whole;
    if (fraction > 0) {
        return std::strong_ordering::less;
    }
    if (fraction < 0) {
        return std::strong_ordering::greater;
    }
    return std::strong_ordering::equal;
}

std::strong_ordering compare_real(double a, double b) {
    if (a < b) {
        return std::strong_ordering::less;
    }
    if (a > b) {
        return std::strong_ordering::greater;
    }
    // Numerically equal: only -0.0 and 0.0 can still differ.
    return std::signbit(b) <=> std::signbit(a);
}

template <class Bytes>
std::strong_ordering compare_bytes(const Bytes& a, const Bytes& b) {
    auto n = std::min(a.size(), b.size());
    int c = n == 0 ? 0 : std::memcmp(a.data(), b.data(), n);
    if (c != 0) {
        return c <=> 0;
    }
    return a.size() <=> b.size();
}

bool is_number(StorageClass c) {
    return c == StorageClass::integer || c == StorageClass::real;
}

// Rank of a class in the cross-class order; INTEGER and REAL share one.
int class_rank(StorageClass c) {
    switch (c) {
    case StorageClass::null: return 0;
    case StorageClass::integer:
    case StorageClass::real: return 1;
    case StorageClass::text: return 2;
    case StorageClass::blob: return 3;
    }
    return 4;
}

} // namespace

std::strong_ordering operator<=>(const Value& a, const Value& b) {
    auto ca = a.storage_class();
    auto cb = b.storage_class();
    if (class_rank(ca) != class_rank(cb)) {
        return class_rank(ca) <=> class_rank(cb);
    }
    if (is_number(ca)) {
        if (ca == StorageClass::integer && cb == StorageClass::integer) {
            return a.as_integer() <=> b.as_integer();
        }
        if (ca == StorageClass::real && cb == StorageClass::real) {
            return compare_real(a.as_real(), b.as_real());
        }
        auto numeric = ca == StorageClass::integer
                           ? compare_int_real(a.as_integer(), b.as_real())
                           : 0 <=> compare_int_real(b.as_integer(), a.as_real());
        if (numeric != 0) {
            return numeric;
        }
        return ca == StorageClass::integer ? std::strong_ordering::less
                                           : std::strong_ordering::greater;
    }
    switch (ca) {
    case StorageClass::text: return compare_bytes(a.as_text(), b.as_text());
    case StorageClass::blob: return compare_bytes(a.as_blob(), b.as_blob());
    default: return std::strong_ordering::equal; // both NULL
    }
}

std::string Value::to_string() const {
    switch (storage_class()) {
    case StorageClass::null: return "NULL";
    case StorageClass::integer: return std::to_string(as_integer());
    case StorageClass::real: {
        char buffer[40];
        std::snprintf(buffer, sizeof buffer, "%.17g", as_real());
        return buffer;
    }
    case StorageClass::text: {
        std::string out = "'";
        for (char c : as_text()) {
            out += c;
            if (c == '\'') {
                out += '\'';
            }
        }
        return out + "'";
    }
    case StorageClass::blob: {
        static constexpr char kHex[] = "0123456789abcdef";
        std::string out = "x'";
        for (auto byte : as_blob()) {
            out += kHex[byte >> 4];
            out += kHex[byte & 15];
        }
        return out + "'";
    }
    }
    return "?";
}

std::string format_key(const std::vector<crdt::Value>& key) {
    std::string out;
    for (std::size_t i = 0; i < key.size(); ++i) {
        out += i ? "," : "";
        const auto& v = key[i];
        if (v.storage_class() != crdt::StorageClass::text) {
            out += v.to_string();
            continue;
        }
        for (char c : v.as_text()) {
            if (c == ',' || c == '\\') {
                out += '\\';
            }
            out += c;
        }
    }
    return out;
}

} // namespace peerlite::crdt
