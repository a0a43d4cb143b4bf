#include "cli_common.hpp"

#include <charconv>
#include <chrono>
#include <cstdio>
#include <ctime>

namespace peerlite::cli {

int fail(const Status& status) {
    std::fprintf(stderr, "peerlite: %s\n", status.message().c_str());
    switch (status.code()) {
    case Code::invalid_argument:
    case Code::unknown_table:
    case Code::unknown_column:
    case Code::not_found:
    case Code::unsupported: return kUsage;
    default: return kFailure;
    }
}

std::unique_ptr<store::Inspector> open_read_only(const std::string& path, int& exit_code) {
    auto inspector = store::Inspector::open(path);
    if (!inspector) {
        exit_code = fail(inspector.status());
        return nullptr;
    }
    return std::move(*inspector);
}

std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string format_ms(std::int64_t ms) {
    auto seconds = static_cast<std::time_t>(ms / 1000);
    std::tm utc{};
    gmtime_r(&seconds, &utc);
    char buf[48];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900,
                  utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                  static_cast<int>(ms % 1000));
    return buf;
}

Result<std::int64_t> parse_time(std::string_view text, std::int64_t now) {
    auto bad =
        Status(Code::invalid_argument,
               "bad time '" + std::string(text) +
                   "': use ISO-8601 UTC (2026-11-23T10:00:00Z) or an age (90s, 10m, 2h, 3d)");
    std::int64_t n = 0;
    auto r = std::from_chars(text.data(), text.data() + text.size(), n);
    if (r.ec == std::errc() && r.ptr + 1 == text.data() + text.size() && n >= 0) {
        switch (*r.ptr) {
        case 's': return now - n * 1000;
        case 'm': return now - n * 60'000;
        case 'h': return now - n * 3'600'000;
        case 'd': return now - n * 86'400'000;
        default: return bad;
        }
    }
    std::tm tm{};
    int ms = 0, consumed = 0;
    std::string s(text);
    if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                    &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &consumed) != 6) {
        return bad;
    }
    auto rest = s.substr(static_cast<std::size_t>(consumed));
    if (rest.size() == 5 && rest[0] == '.' && rest[4] == 'Z') {
        auto rm = std::from_chars(rest.data() + 1, rest.data() + 4, ms);
        if (rm.ec != std::errc() || rm.ptr != rest.data() + 4) {
            return bad;
        }
    } else if (rest != "Z") {
        return bad;
    }
    if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
        tm.tm_min > 59 || tm.tm_sec > 60) {
        return bad;
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return static_cast<std::int64_t>(timegm(&tm)) * 1000 + ms;
}

crdt::Value parse_value(std::string_view text) {
    std::int64_t i = 0;
    auto ri = std::from_chars(text.data(), text.data() + text.size(), i);
    if (!text.empty() && ri.ec == std::errc() && ri.ptr == text.data() + text.size()) {
        return crdt::Value::integer(i);
    }
    double d = 0;
    auto rd = std::from_chars(text.data(), text.data() + text.size(), d);
    if (!text.empty() && rd.ec == std::errc() && rd.ptr == text.data() + text.size()) {
        return crdt::Value::real(d);
    }
    bool quoted = text.size() >= 3 && (text[0] == 'x' || text[0] == 'X') && text[1] == '\'' &&
                  text.back() == '\'' && (text.size() - 3) % 2 == 0;
    if (quoted) {
        std::vector<std::uint8_t> bytes;
        for (std::size_t p = 2; p + 1 < text.size(); p += 2) {
            std::uint8_t b = 0;
            auto r = std::from_chars(text.data() + p, text.data() + p + 2, b, 16);
            if (r.ec != std::errc() || r.ptr != text.data() + p + 2) {
                return crdt::Value::text(std::string(text));
            }
            bytes.push_back(b);
        }
        return crdt::Value::blob(std::move(bytes));
    }
    return crdt::Value::text(std::string(text));
}

std::string value_text(const crdt::Value& v, std::size_t width) {
    auto s = v.to_string();
    for (auto& c : s) {
        if (static_cast<unsigned char>(c) < 0x20) {
            c = ' '; // keep one value on one line
        }
    }
    return s.size() <= width ? s : s.substr(0, width - 3) + "...";
}

std::string stamp_text(const crdt::Stamp& s) {
    return s.hlc.to_string() + " by " + s.node.short_string();
}

std::string row_text(const std::string& table, const std::vector<crdt::Value>& key) {
    return table + "[" + crdt::format_key(key) + "]";
}

nlohmann::json value_json(const crdt::Value& v) {
    switch (v.storage_class()) {
    case crdt::StorageClass::null: return nullptr;
    case crdt::StorageClass::integer: return v.as_integer();
    case crdt::StorageClass::real: return v.as_real();
    case crdt::StorageClass::text: return v.as_text();
    case crdt::StorageClass::blob: break;
    }
    std::string hex;
    for (auto b : v.as_blob()) {
        char buf[3];
        std::snprintf(buf, sizeof buf, "%02x", b);
        hex += buf;
    }
    return {{"blob", hex}};
}

nlohmann::json key_json(const std::vector<crdt::Value>& key) {
    auto out = nlohmann::json::array();
    for (const auto& k : key) {
        out.push_back(value_json(k));
    }
    return out;
}

nlohmann::json stamp_json(const crdt::Stamp& s) {
    return {{"clock", s.hlc.to_string()}, {"hlc", s.hlc.raw()}, {"node", s.node.to_string()}};
}

nlohmann::json conflict_json(const store::Conflict& c) {
    nlohmann::json resolved = nullptr;
    if (c.resolved) {
        resolved = {{"at", format_ms(c.resolved->at_ms)},
                    {"at_ms", c.resolved->at_ms},
                    {"by", c.resolved->by}};
    }
    auto side = [](const crdt::Value& v, const crdt::Stamp& s) {
        auto j = stamp_json(s);
        j["value"] = value_json(v);
        return j;
    };
    return {{"id", c.id},
            {"decided_at", format_ms(c.decided_at_ms)},
            {"decided_at_ms", c.decided_at_ms},
            {"table", c.table},
            {"key", key_json(c.key)},
            {"key_text", crdt::format_key(c.key)},
            {"column", c.column},
            {"rule", store::rule_text(c)},
            {"winner", side(c.winner_value, c.winner)},
            {"loser", side(c.loser_value, c.loser)},
            {"reason", store::reason_text(c)},
            {"resolved", resolved}};
}

void print_json(const nlohmann::json& j, bool one_line) {
    // Replace invalid UTF-8 instead of throwing: values are user data.
    auto text = j.dump(one_line ? -1 : 2, ' ', false, nlohmann::json::error_handler_t::replace);
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fputc('\n', stdout);
}

} // namespace peerlite::cli
