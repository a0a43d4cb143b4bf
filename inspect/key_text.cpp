// Keys given as text on a command line, parsed with SQLite's type affinity (printing them
// is crdt::format_key()).
#include <cctype>
#include <charconv>
#include <cmath>

#include <peerlite/inspect/inspector.hpp>

namespace peerlite::store {

namespace {

enum class Affinity { integer, text, blob, real, numeric };

// SQLite's rules for a declared type (https://sqlite.org/datatype3.html, 3.1).
Affinity affinity_of(std::string type) {
    for (auto& c : type) {
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    auto has = [&](const char* s) {
        return type.find(s) != std::string::npos;
    };
    if (has("INT")) {
        return Affinity::integer;
    }
    if (has("CHAR") || has("CLOB") || has("TEXT")) {
        return Affinity::text;
    }
    if (has("BLOB") || type.empty()) {
        return Affinity::blob;
    }
    if (has("REAL") || has("FLOA") || has("DOUB")) {
        return Affinity::real;
    }
    return Affinity::numeric;
}

std::optional<crdt::Value> hex_blob(std::string_view s) {
    if (s.size() < 3 || (s[0] != 'x' && s[0] != 'X') || s[1] != '\'' || s.back() != '\'' ||
        (s.size() - 3) % 2 != 0) {
        return std::nullopt;
    }
    std::vector<std::uint8_t> bytes;
    for (std::size_t i = 2; i + 1 < s.size(); i += 2) {
        std::uint8_t b = 0;
        auto r = std::from_chars(s.data() + i, s.data() + i + 2, b, 16);
        if (r.ec != std::errc() || r.ptr != s.data() + i + 2) {
            return std::nullopt;
        }
        bytes.push_back(b);
    }
    return crdt::Value::blob(std::move(bytes));
}

// As a column with `affinity` would store the text `s`.
crdt::Value convert(std::string_view s, Affinity affinity) {
    if (auto blob = hex_blob(s)) {
        return *blob;
    }
    if (affinity == Affinity::text || affinity == Affinity::blob || s.empty()) {
        return crdt::Value::text(std::string(s));
    }
    std::int64_t i = 0;
    auto ri = std::from_chars(s.data(), s.data() + s.size(), i);
    if (ri.ec == std::errc() && ri.ptr == s.data() + s.size()) {
        return affinity == Affinity::real ? crdt::Value::real(static_cast<double>(i))
                                          : crdt::Value::integer(i);
    }
    double d = 0;
    auto rd = std::from_chars(s.data(), s.data() + s.size(), d);
    if (rd.ec != std::errc() || rd.ptr != s.data() + s.size()) {
        return crdt::Value::text(std::string(s));
    }
    // INTEGER and NUMERIC store a real that is exactly an integer as that integer.
    if (affinity != Affinity::real && std::trunc(d) == d && std::fabs(d) < 9.2e18) {
        return crdt::Value::integer(static_cast<std::int64_t>(d));
    }
    return crdt::Value::real(d);
}

std::vector<std::string> split(std::string_view text) {
    std::vector<std::string> parts(1);
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '\\' && i + 1 < text.size()) {
            parts.back() += text[++i];
        } else if (text[i] == ',') {
            parts.emplace_back();
        } else {
            parts.back() += text[i];
        }
    }
    return parts;
}

} // namespace

Result<std::vector<crdt::Value>> Inspector::parse_key(const TableInfo& table,
                                                      std::string_view text) const {
    auto parts = split(text);
    if (parts.size() != table.key.size()) {
        std::string cols;
        for (const auto& k : table.key) {
            cols += (cols.empty() ? "" : ",") + k;
        }
        return Status(Code::invalid_argument,
                      "bad key '" + std::string(text) + "' for table '" + table.name +
                          "': its key is (" + cols + "), " + std::to_string(table.key.size()) +
                          " value(s) separated by commas (\\, for a literal comma)");
    }
    std::vector<crdt::Value> key;
    for (std::size_t i = 0; i < parts.size(); ++i) {
        auto v = convert(parts[i], affinity_of(table.key_types[i]));
        auto type = table.key_types[i];
        for (auto& ch : type) {
            ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
        }
        bool rowid = table.key.size() == 1 && type == "INTEGER";
        if (rowid && v.storage_class() != crdt::StorageClass::integer) {
            return Status(Code::invalid_argument, "bad key '" + parts[i] + "' for table '" +
                                                      table.name + "': column '" + table.key[i] +
                                                      "' is an INTEGER PRIMARY KEY");
        }
        key.push_back(std::move(v));
    }
    return key;
}

} // namespace peerlite::store
