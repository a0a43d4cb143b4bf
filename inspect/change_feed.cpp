// The change feed: Inspector::changes().
//
// A cursor is a version vector: the changes already delivered. Its text form names
// origins by their _peerlite_nodes index (so a cursor is valid for this database and
// copies of it) with clocks in hex:
//   cursor := [origin ("," origin)*]      origin := idx ":" range ("+" range)*
//   range  := first "-" last
// A read delivers the entries whose stamp the replica covers (_peerlite_versions, read
// in the same snapshot as the records) and the cursor does not, in stamp order. The
// cursor after an entry with stamp s is the old cursor plus every covered version <= s,
// so a later arrival with an older clock is still delivered (it is not covered yet when
// the cursor is made). Entries sharing one stamp (an insert and its cells) are one
// step: the cursor moves past their stamp only at the last of them.
#include <algorithm>
#include <charconv>
#include <tuple>

#include <peerlite/inspect/inspector.hpp>

#include "../schema/capture_sql.hpp"
#include "inspector_impl.hpp"

namespace peerlite::store {

namespace {

std::string hex(std::uint64_t v) {
    char buf[20];
    auto r = std::to_chars(buf, buf + sizeof buf, v, 16);
    return std::string(buf, r.ptr);
}

Result<std::string> encode_cursor(const crdt::VersionVector& v, NodeIndex& nodes) {
    std::string out;
    for (const auto& [origin, ranges] : v.origins()) {
        if (ranges.empty()) {
            continue;
        }
        auto idx = nodes.index_of(origin); // every origin in it came from this file
        if (!idx) {
            return idx.status();
        }
        out += (out.empty() ? "" : ",") + std::to_string(*idx) + ":";
        bool first = true;
        for (const auto& r : ranges.ranges()) {
            out += (first ? "" : "+") + hex(r.first.raw()) + "-" + hex(r.last.raw());
            first = false;
        }
    }
    return out;
}

Result<crdt::VersionVector> parse_cursor(std::string_view text, const NodeIndex& nodes) {
    crdt::VersionVector out;
    auto bad = [&](const std::string& why) {
        return Status(Code::invalid_argument, "bad cursor '" + std::string(text) + "': " + why);
    };
    const char* p = text.data();
    const char* end = p + text.size();
    auto number = [&](std::uint64_t& v, int base) {
        auto r = std::from_chars(p, end, v, base);
        p = r.ptr;
        return r.ec == std::errc();
    };
    while (p < end) {
        std::uint64_t idx = 0;
        if (!number(idx, 10) || p == end || *p++ != ':') {
            return bad("expected <node index>:");
        }
        auto origin = nodes.id_at(idx);
        if (!origin) {
            return bad("node #" + std::to_string(idx) + " is unknown here (another database?)");
        }
        do {
            std::uint64_t first = 0, last = 0;
            if (!number(first, 16) || p == end || *p++ != '-' || !number(last, 16) ||
                first > last) {
                return bad("expected <first>-<last> in hex");
            }
            out.add(*origin,
                    crdt::ClockRange{crdt::Hlc::from_raw(first), crdt::Hlc::from_raw(last)});
        } while (p < end && *p == '+' && ++p);
        if (p < end && *p++ != ',') {
            return bad("expected ','");
        }
    }
    return out;
}

// `base` plus the versions of `covered` at or below `s` (strictly below if !inclusive).
crdt::VersionVector clip(const crdt::VersionVector& base, const crdt::VersionVector& covered,
                         const crdt::Stamp& s, bool inclusive) {
    auto out = base;
    for (const auto& [origin, ranges] : covered.origins()) {
        bool same_clock_ok = inclusive ? origin <= s.node : origin < s.node;
        auto limit = same_clock_ok ? s.hlc.raw() : s.hlc.raw() - 1;
        for (const auto& r : ranges.ranges()) {
            if (r.first.raw() <= limit) {
                out.add(origin, crdt::ClockRange{
                                    r.first, crdt::Hlc::from_raw(std::min(r.last.raw(), limit))});
            }
        }
    }
    return out;
}

struct Sorted {
    FeedEntry entry;
    int order; // within one stamp and row: the row's life first, then columns
};

// The entries of one row record whose stamps are in `fresh`; `user(col)` reads the
// user row's current value of a column (NULL when the row is gone).
template <class UserValue>
void row_entries(const TableInfo& t, const RowRecord& rec, const FeedEntry& base,
                 const UserValue& user, const crdt::VersionVector& fresh,
                 std::vector<Sorted>& out) {
    auto wanted = [&](const crdt::Stamp& st) {
        return fresh.contains(st.node, st.hlc);
    };
    auto ncols = static_cast<int>(t.columns.size());
    if (wanted(rec.life.stamp)) {
        auto e = base;
        e.kind = rec.life.life.exists() ? FeedEntry::Kind::insert : FeedEntry::Kind::remove;
        e.stamp = rec.life.stamp;
        out.push_back({std::move(e), -1});
    }
    for (const auto& c : rec.cells) {
        if (wanted(c.write.stamp) && c.column < ncols) {
            auto e = base;
            e.column = t.columns[static_cast<std::size_t>(c.column)].name;
            e.value = c.has_value                     ? c.write.value
                      : c.write.life == rec.life.life ? user(c.column)
                                                      : crdt::Value();
            e.stamp = c.write.stamp;
            out.push_back({std::move(e), c.column});
        }
    }
    for (const auto& c : rec.counters) {
        if (wanted(c.write.stamp) && c.column < ncols) {
            auto e = base;
            e.kind = FeedEntry::Kind::counter;
            e.column = t.columns[static_cast<std::size_t>(c.column)].name;
            e.value = user(c.column);
            e.contribution = c.write.total;
            e.stamp = c.write.stamp;
            out.push_back({std::move(e), c.column});
        }
    }
}

// Entries of one table whose stamps are in `fresh`.
Status scan_table(Inspector::Impl& s, const TableInfo& t, const crdt::VersionVector& fresh,
                  std::uint64_t low, std::vector<Sorted>& out) {
    std::string keys, join, vals;
    for (std::size_t i = 0; i < t.key.size(); ++i) {
        keys += "r.k" + std::to_string(i) + ", ";
        join += (i ? " AND t." : "t.") + sql::quote(t.key[i]) + " = r.k" + std::to_string(i);
    }
    for (const auto& c : t.columns) {
        vals += ", t." + sql::quote(c.name);
    }
    auto stmt = sql::Stmt::prepare(
        s.db.get(), "SELECT " + keys + "r.rec, r.vmax, t." + sql::quote(t.key[0]) + " IS NOT NULL" +
                        vals + " FROM " + sql::quote(schema::rows_table(t.name)) + " r LEFT JOIN " +
                        sql::quote(t.name) + " t ON " + join + " WHERE r.vmax >= ?1");
    if (!stmt) {
        return stmt.status();
    }
    sql::Reset reset(*stmt);
    stmt->bind_int(1, static_cast<std::int64_t>(low));
    auto nk = static_cast<int>(t.key.size());
    int rc;
    while ((rc = stmt->step()) == SQLITE_ROW) {
        auto rec = decode_record(
            stmt->column_blob(nk),
            crdt::Hlc::from_raw(static_cast<std::uint64_t>(stmt->column_int(nk + 1))), s.nodes);
        if (!rec) {
            return Status(Code::corruption, "table '" + t.name + "': " + rec.status().message());
        }
        bool present = stmt->column_int(nk + 2) != 0;
        FeedEntry base;
        base.table = t.name;
        for (int i = 0; i < nk; ++i) {
            base.key.push_back(stmt->column(i));
        }
        auto user = [&](int col) {
            return present ? stmt->column(nk + 3 + col) : crdt::Value();
        };
        row_entries(t, *rec, base, user, fresh, out);
    }
    return rc == SQLITE_DONE ? Status::success()
                             : sql::error(s.db.get(), "scanning '" + t.name + "'");
}

} // namespace

Result<crdt::VersionVector> read_versions(sqlite3* db, const NodeIndex& nodes) {
    auto stmt = sql::Stmt::prepare(db, "SELECT node, first, last FROM _peerlite_versions");
    if (!stmt) {
        return stmt.status();
    }
    sql::Reset reset(*stmt);
    crdt::VersionVector out;
    while (stmt->step() == SQLITE_ROW) {
        auto origin = nodes.id_at(static_cast<std::uint64_t>(stmt->column_int(0)));
        if (!origin) {
            return origin.status();
        }
        out.add(*origin, crdt::ClockRange{
                             crdt::Hlc::from_raw(static_cast<std::uint64_t>(stmt->column_int(1))),
                             crdt::Hlc::from_raw(static_cast<std::uint64_t>(stmt->column_int(2)))});
    }
    return out;
}

Result<FeedPage> Inspector::changes(const std::string& cursor) {
    auto& s = *impl_;
    auto tx = ReadTx::begin(s.db.get());
    if (!tx) {
        return tx.status();
    }
    if (auto st = s.load(); !st.ok()) { // tables or nodes may have been added
        return st;
    }
    auto since = parse_cursor(cursor, s.nodes);
    auto covered = read_versions(s.db.get(), s.nodes);
    if (!since || !covered) {
        return !since ? since.status() : covered.status();
    }
    auto fresh = covered->minus(*since);
    std::uint64_t low = UINT64_MAX;
    for (const auto& [origin, ranges] : fresh.origins()) {
        if (!ranges.empty()) {
            low = std::min(low, ranges.ranges().front().first.raw());
        }
    }
    std::vector<Sorted> found;
    for (const auto& t : s.tables) {
        if (low == UINT64_MAX) {
            break;
        }
        if (auto st = scan_table(s, t, fresh, low, found); !st.ok()) {
            return st;
        }
    }
    std::sort(found.begin(), found.end(), [](const Sorted& a, const Sorted& b) {
        return std::tie(a.entry.stamp, a.entry.table, a.entry.key, a.order) <
               std::tie(b.entry.stamp, b.entry.table, b.entry.key, b.order);
    });
    FeedPage page;
    for (std::size_t i = 0; i < found.size(); ++i) {
        bool last_of_stamp =
            i + 1 == found.size() || found[i + 1].entry.stamp != found[i].entry.stamp;
        auto text =
            encode_cursor(clip(*since, *covered, found[i].entry.stamp, last_of_stamp), s.nodes);
        if (!text) {
            return text.status();
        }
        found[i].entry.cursor = std::move(*text);
        page.entries.push_back(std::move(found[i].entry));
    }
    auto all = *since;
    all.merge(*covered);
    auto text = encode_cursor(all, s.nodes);
    if (!text) {
        return text.status();
    }
    page.cursor = std::move(*text);
    return page;
}

} // namespace peerlite::store
