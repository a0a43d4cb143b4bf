// Opening a database read-only, its table registry, keys given as text, and plain reads.
#include <charconv>
#include <cmath>
#include <filesystem>

#include <peerlite/inspect/inspector.hpp>

#include "../schema/capture_sql.hpp"
#include "../store/conflict_log.hpp"
#include "inspector_impl.hpp"

namespace peerlite::store {

Result<ReadTx> ReadTx::begin(sqlite3* db) {
    if (auto st = sql::exec(db, "BEGIN"); !st.ok()) {
        return st;
    }
    return ReadTx(db);
}

ReadTx::~ReadTx() {
    if (db_ != nullptr) {
        sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr); // nothing was written
    }
}

std::string meta_key_match(std::size_t nkeys) {
    std::string out;
    for (std::size_t i = 0; i < nkeys; ++i) {
        out += (i ? " AND k" : "k") + std::to_string(i) + " = ?" + std::to_string(i + 1);
    }
    return out;
}

int TableInfo::column_index(std::string_view name) const {
    for (std::size_t i = 0; i < columns.size(); ++i) {
        if (columns[i].name == name) {
            return static_cast<int>(i);
        }
    }
    return -1;
}

namespace {

Status read_identity(Inspector::Impl& s) {
    auto stmt = sql::Stmt::prepare(s.db.get(), "SELECT key, value FROM _peerlite_meta");
    if (!stmt) {
        return Status(Code::invalid_argument,
                      s.path + " is not a peerlite database (" + stmt.status().message() + ")");
    }
    sql::Reset reset(*stmt);
    s.self = crdt::NodeId();
    while (stmt->step() == SQLITE_ROW) {
        auto key = stmt->column_text(0);
        if (key == "format" && stmt->column_int(1) != 1) {
            return Status(Code::unsupported, s.path + " has peerlite metadata format " +
                                                 stmt->column_text(1) + "; this build reads 1");
        }
        if (key == "node_id") {
            auto id = crdt::NodeId::parse(stmt->column_text(1));
            if (!id) {
                return Status(Code::corruption, s.path + ": stored node id is unreadable");
            }
            s.self = *id;
        }
    }
    return Status::success();
}

Result<std::map<std::string, std::vector<ColumnInfo>>> read_registry(sqlite3* db) {
    auto stmt =
        sql::Stmt::prepare(db, "SELECT tbl, name, rule FROM _peerlite_columns ORDER BY tbl, idx");
    if (!stmt) {
        return stmt.status();
    }
    sql::Reset reset(*stmt);
    std::map<std::string, std::vector<ColumnInfo>> out;
    while (stmt->step() == SQLITE_ROW) {
        auto rule = stmt->column_int(2);
        if (rule < 0 || rule > 3) {
            return Status(Code::corruption, "_peerlite_columns holds unknown rule " +
                                                std::to_string(rule) + " for table '" +
                                                stmt->column_text(0) + "'");
        }
        out[stmt->column_text(0)].push_back(
            {stmt->column_text(1), static_cast<crdt::MergeRule>(rule)});
    }
    return out;
}

} // namespace

Status Inspector::Impl::load() {
    if (auto st = read_identity(*this); !st.ok()) {
        return st;
    }
    if (auto st = nodes.load(db.get()); !st.ok()) {
        return st;
    }
    auto registry = read_registry(db.get());
    if (!registry) {
        return registry.status();
    }
    tables.clear();
    schemas.clear();
    broken.clear();
    for (const auto& [name, columns] : *registry) {
        schema::TableSpec spec{name, {}};
        for (const auto& c : columns) {
            spec.rules.push_back({c.name, c.rule});
        }
        auto table = schema::inspect_table(db.get(), spec);
        if (!table) {
            broken.push_back(
                {name, "", "synced table cannot be read: " + table.status().message()});
            continue;
        }
        tables.push_back(TableInfo{name, table->key, table->key_types, columns});
        schemas.emplace(name, std::move(*table));
    }
    return Status::success();
}

const TableInfo* Inspector::Impl::find(std::string_view name) const {
    for (const auto& t : tables) {
        if (t.name == name) {
            return &t;
        }
    }
    return nullptr;
}

Result<std::optional<RowRecord>> Inspector::Impl::record(const TableInfo& t,
                                                         const std::vector<crdt::Value>& key) {
    auto stmt = sql::Stmt::prepare(db.get(), "SELECT rec, vmax FROM " +
                                                 sql::quote(schema::rows_table(t.name)) +
                                                 " WHERE " + meta_key_match(key.size()));
    if (!stmt) {
        return stmt.status();
    }
    sql::Reset reset(*stmt);
    for (std::size_t i = 0; i < key.size(); ++i) {
        stmt->bind(static_cast<int>(i) + 1, key[i]);
    }
    int rc = stmt->step();
    if (rc == SQLITE_DONE) {
        return std::optional<RowRecord>();
    }
    if (rc != SQLITE_ROW) {
        return sql::error(db.get(), "reading the record of a row of '" + t.name + "'");
    }
    auto vmax = crdt::Hlc::from_raw(static_cast<std::uint64_t>(stmt->column_int(1)));
    auto r = decode_record(stmt->column_blob(0), vmax, nodes);
    if (!r) {
        // Nodes met since the list was read (a long-lived Inspector beside a daemon).
        if (auto st = nodes.load(db.get()); !st.ok()) {
            return st;
        }
        r = decode_record(stmt->column_blob(0), vmax, nodes);
    }
    if (!r) {
        return Status(Code::corruption, "table '" + t.name + "', key " + format_key(key) + ": " +
                                            r.status().message());
    }
    return std::optional<RowRecord>(std::move(*r));
}

Result<std::optional<std::vector<crdt::Value>>>
Inspector::Impl::user_row(const TableInfo& t, const std::vector<crdt::Value>& key) {
    std::string cols;
    for (const auto& c : t.columns) {
        cols += (cols.empty() ? "" : ", ") + sql::quote(c.name);
    }
    std::string match;
    for (std::size_t i = 0; i < t.key.size(); ++i) {
        match += (i ? " AND " : "") + sql::quote(t.key[i]) + " = ?" + std::to_string(i + 1);
    }
    auto stmt = sql::Stmt::prepare(db.get(), "SELECT " + (cols.empty() ? "1" : cols) + " FROM " +
                                                 sql::quote(t.name) + " WHERE " + match);
    if (!stmt) {
        return stmt.status();
    }
    sql::Reset reset(*stmt);
    for (std::size_t i = 0; i < key.size(); ++i) {
        stmt->bind(static_cast<int>(i) + 1, key[i]);
    }
    int rc = stmt->step();
    if (rc == SQLITE_DONE) {
        return std::optional<std::vector<crdt::Value>>();
    }
    if (rc != SQLITE_ROW) {
        return sql::error(db.get(), "reading a row of '" + t.name + "'");
    }
    std::vector<crdt::Value> values;
    for (std::size_t i = 0; i < t.columns.size(); ++i) {
        values.push_back(stmt->column(static_cast<int>(i)));
    }
    return std::optional(std::move(values));
}

Result<sql::Transaction> open_for_write(Inspector::Impl& s, const std::string& path) {
    if (auto st = open_file(s, path, SQLITE_OPEN_READWRITE); !st.ok()) {
        return st;
    }
    auto tx = sql::Transaction::begin(s.db.get());
    if (!tx) {
        return tx.status();
    }
    if (auto st = s.load(); !st.ok()) { // again, under the write lock
        return st;
    }
    return tx;
}

Inspector::Inspector(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Inspector::~Inspector() = default;

Status open_file(Inspector::Impl& s, const std::string& path, int flags) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) {
        return Status(Code::not_found, path + ": no such file");
    }
    s.path = path;
    sqlite3* raw = nullptr;
    int rc = sqlite3_open_v2(path.c_str(), &raw, flags | SQLITE_OPEN_NOMUTEX, nullptr);
    s.db.reset(raw);
    if (rc != SQLITE_OK) {
        return Status(Code::io_error, path + ": " + (raw ? sqlite3_errmsg(raw) : "out of memory"));
    }
    sqlite3_extended_result_codes(raw, 1);
    sqlite3_busy_timeout(raw, 5000);
    auto tx = ReadTx::begin(raw);
    if (!tx) {
        return tx.status();
    }
    auto probe =
        sql::Stmt::prepare(raw, "SELECT 1 FROM sqlite_schema WHERE name = '_peerlite_meta'");
    if (!probe || probe->step() != SQLITE_ROW) {
        return Status(Code::invalid_argument,
                      path + " is not a peerlite database (no _peerlite_meta table)");
    }
    probe->reset();
    return s.load();
}

Result<std::unique_ptr<Inspector>> Inspector::open(const std::string& path) {
    auto impl = std::make_unique<Impl>();
    if (auto st = open_file(*impl, path, SQLITE_OPEN_READONLY); !st.ok()) {
        return st;
    }
    return std::unique_ptr<Inspector>(new Inspector(std::move(impl)));
}

const std::string& Inspector::path() const {
    return impl_->path;
}
const crdt::NodeId& Inspector::node_id() const {
    return impl_->self;
}
const std::vector<TableInfo>& Inspector::tables() const {
    return impl_->tables;
}

Result<const TableInfo*> Inspector::table(std::string_view name) const {
    if (const auto* t = impl_->find(name)) {
        return t;
    }
    std::string known;
    for (const auto& t : impl_->tables) {
        known += (known.empty() ? "" : ", ") + t.name;
    }
    return Status(Code::unknown_table, "table '" + std::string(name) + "' is not synced in " +
                                           impl_->path +
                                           " (synced: " + (known.empty() ? "none" : known) + ")");
}

Status Inspector::refresh() {
    auto tx = ReadTx::begin(impl_->db.get());
    if (!tx) {
        return tx.status();
    }
    return impl_->load();
}

Result<std::vector<Conflict>> Inspector::conflicts(const ConflictQuery& query) {
    auto tx = ReadTx::begin(impl_->db.get());
    if (!tx) {
        return tx.status();
    }
    return read_conflicts(impl_->db.get(), query);
}

Result<TableContents> Inspector::contents(const TableInfo& t) {
    std::string cols;
    for (const auto& k : t.key) {
        cols += (cols.empty() ? "" : ", ") + sql::quote(k);
    }
    for (const auto& c : t.columns) {
        cols += ", " + sql::quote(c.name);
    }
    auto tx = ReadTx::begin(impl_->db.get());
    if (!tx) {
        return tx.status();
    }
    auto stmt =
        sql::Stmt::prepare(impl_->db.get(), "SELECT " + cols + " FROM " + sql::quote(t.name));
    if (!stmt) {
        return stmt.status();
    }
    sql::Reset reset(*stmt);
    TableContents out;
    auto nkeys = static_cast<int>(t.key.size());
    int rc;
    while ((rc = stmt->step()) == SQLITE_ROW) {
        std::vector<crdt::Value> key, values;
        for (int i = 0; i < nkeys; ++i) {
            key.push_back(stmt->column(i));
        }
        for (std::size_t i = 0; i < t.columns.size(); ++i) {
            values.push_back(stmt->column(nkeys + static_cast<int>(i)));
        }
        out.emplace(std::move(key), std::move(values));
    }
    if (rc != SQLITE_DONE) {
        return sql::error(impl_->db.get(), "reading table '" + t.name + "'");
    }
    return out;
}

Result<std::int64_t> Inspector::data_version() {
    auto stmt = sql::Stmt::prepare(impl_->db.get(), "PRAGMA data_version");
    if (!stmt) {
        return stmt.status();
    }
    sql::Reset reset(*stmt);
    if (stmt->step() != SQLITE_ROW) {
        return sql::error(impl_->db.get(), "reading data_version");
    }
    return stmt->column_int(0);
}

} // namespace peerlite::store
