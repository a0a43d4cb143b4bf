// The embedded write path: preupdate-hook capture, one log row per table per transaction.
#define SQLITE_ENABLE_PREUPDATE_HOOK 1 // declares sqlite3_preupdate_*; Debian's library has them
#include <algorithm>
#include <cctype>
#include <cstring>
#include <map>
#include <vector>

#include <peerlite/store/writer.hpp>
#include <peerlite/wire/binary_codec.hpp>

#include "../schema/capture_sql.hpp"
#include "../schema/table_schema.hpp"
#include "../sql/sqlite.hpp"

namespace peerlite::store {

namespace {

crdt::Value value_of(sqlite3_value* v) {
    switch (sqlite3_value_type(v)) {
    case SQLITE_INTEGER: return crdt::Value::integer(sqlite3_value_int64(v));
    case SQLITE_FLOAT: return crdt::Value::real(sqlite3_value_double(v));
    case SQLITE_TEXT:
        return crdt::Value::text(std::string(reinterpret_cast<const char*>(sqlite3_value_text(v)),
                                             static_cast<std::size_t>(sqlite3_value_bytes(v))));
    case SQLITE_BLOB: {
        auto* p = static_cast<const std::uint8_t*>(sqlite3_value_blob(v));
        return crdt::Value::blob(std::vector<std::uint8_t>(p, p + sqlite3_value_bytes(v)));
    }
    default: return crdt::Value::null();
    }
}

// The same value in the same storage class, bytewise (what the triggers' "IS NOT ...
// COLLATE BINARY" decides).
bool same(sqlite3_value* a, sqlite3_value* b) {
    int type = sqlite3_value_type(a);
    if (type != sqlite3_value_type(b)) {
        return false;
    }
    switch (type) {
    case SQLITE_NULL: return true;
    case SQLITE_INTEGER: return sqlite3_value_int64(a) == sqlite3_value_int64(b);
    case SQLITE_FLOAT: {
        double x = sqlite3_value_double(a), y = sqlite3_value_double(b);
        return std::memcmp(&x, &y, sizeof x) == 0;
    }
    default: {
        auto* pa = type == SQLITE_TEXT ? static_cast<const void*>(sqlite3_value_text(a))
                                       : sqlite3_value_blob(a);
        auto* pb = type == SQLITE_TEXT ? static_cast<const void*>(sqlite3_value_text(b))
                                       : sqlite3_value_blob(b);
        int n = sqlite3_value_bytes(a);
        return n == sqlite3_value_bytes(b) &&
               (n == 0 || std::memcmp(pa, pb, static_cast<std::size_t>(n)) == 0);
    }
    }
}

// One synced table as the hook sees it: column positions and the entries captured in
// the current transaction, already in the log's batch format (docs/metadata-format.md).
struct TableCapture {
    schema::TableSchema schema;
    std::vector<int> key_pos;   // table column position of each key column
    std::vector<int> value_pos; // ... of each value column
    wire::ByteWriter entries;
    std::uint64_t count = 0;
    sql::Stmt append;
};

// What a statement does to savepoints, read from its SQL text (SQLite tells no hook about
// ROLLBACK TO): SAVEPOINT n, RELEASE [SAVEPOINT] n, ROLLBACK [TRANSACTION] TO [SAVEPOINT] n.
struct SavepointStatement {
    enum class Kind { none, open, release, rollback_to } kind = Kind::none;
    std::string name; // lower case: savepoint names compare case-insensitively
};

// Words and identifiers of `sql`, lower-cased, comments skipped, quotes removed; stops at
// the first ';' or after `max` tokens.
std::vector<std::string> leading_tokens(std::string_view sql, std::size_t max) {
    std::vector<std::string> out;
    std::size_t i = 0;
    auto lower = [](char c) {
        return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    };
    while (i < sql.size() && out.size() < max) {
        char c = sql[i];
        if (std::isspace(static_cast<unsigned char>(c))) {
            ++i;
        } else if (sql.substr(i, 2) == "--") {
            i = sql.find('\n', i);
            i = i == std::string_view::npos ? sql.size() : i + 1;
        } else if (sql.substr(i, 2) == "/*") {
            i = sql.find("*/", i + 2);
            i = i == std::string_view::npos ? sql.size() : i + 2;
        } else if (c == '"' || c == '`' || c == '[' || c == '\'') {
            char close = c == '[' ? ']' : c;
            std::string token;
            for (++i; i < sql.size(); ++i) {
                if (sql[i] == close) {
                    if (close != ']' && i + 1 < sql.size() && sql[i + 1] == close) {
                        token += close; // a doubled quote inside the name
                        ++i;
                        continue;
                    }
                    ++i;
                    break;
                }
                token += lower(sql[i]);
            }
            out.push_back(std::move(token));
        } else if (c == ';') {
            break;
        } else {
            std::string token;
            while (i < sql.size() && !std::isspace(static_cast<unsigned char>(sql[i])) &&
                   sql[i] != ';' && sql[i] != '"' && sql[i] != '`' && sql[i] != '[' &&
                   sql[i] != '\'' && sql.substr(i, 2) != "--" && sql.substr(i, 2) != "/*") {
                token += lower(sql[i++]);
            }
            out.push_back(std::move(token));
        }
    }
    return out;
}

SavepointStatement savepoint_statement(std::string_view sql) {
    // Most statements are writes: settle them by their first character, without
    // tokenizing (this runs for every statement the Writer executes).
    auto first = sql.find_first_not_of(" \t\r\n");
    if (first == std::string_view::npos) {
        return {};
    }
    switch (sql[first]) {
    case 's':
    case 'S':
    case 'r':
    case 'R':
    case '-':
    case '/': break;
    default: return {};
    }
    auto t = leading_tokens(sql, 5);
    auto at = [&](std::size_t i) {
        return i < t.size() ? t[i] : std::string();
    };
    using Kind = SavepointStatement::Kind;
    if (at(0) == "savepoint" && t.size() >= 2) {
        return {Kind::open, at(1)};
    }
    if (at(0) == "release" && t.size() >= 2) {
        return {Kind::release, at(1) == "savepoint" ? at(2) : at(1)};
    }
    if (at(0) == "rollback") {
        std::size_t i = at(1) == "transaction" ? 2 : 1;
        if (at(i) == "to") {
            ++i;
            if (at(i) == "savepoint") {
                ++i;
            }
            return {Kind::rollback_to, at(i)};
        }
    }
    return {};
}

} // namespace

struct Writer::Impl {
    sql::DbHandle db;
    std::map<std::string, TableCapture, std::less<>> tables;
    std::int64_t schema_version = -1;
    bool in_transaction = false;
    bool stray_write = false; // a synced table written outside transaction()
    Status hook_error;
    // Open savepoints, innermost last, each with how far every table's entries reached
    // when it was opened: ROLLBACK TO cuts the entries back to that point.
    struct Savepoint {
        std::string name;
        std::map<std::string, std::pair<std::size_t, std::uint64_t>, std::less<>> marks;
    };
    std::vector<Savepoint> savepoints;

    // Hooks off before the members go: closing a connection with a transaction open rolls
    // it back, which would call on_rollback on a half-destroyed Impl.
    ~Impl() {
        if (auto* handle = db.get()) {
            sqlite3_preupdate_hook(handle, nullptr, nullptr);
            sqlite3_commit_hook(handle, nullptr, nullptr);
            sqlite3_rollback_hook(handle, nullptr, nullptr);
            sqlite3_trace_v2(handle, 0, nullptr, nullptr);
        }
    }

    Status load_tables();
    void clear() {
        for (auto& [name, t] : tables) {
            t.entries = wire::ByteWriter();
            t.count = 0;
        }
        savepoints.clear();
    }
    void statement(std::string_view sql);
    Status flush();
    void capture(int op, const char* table);
};

Status Writer::Impl::load_tables() {
    auto* handle = db.get();
    auto version = sql::Stmt::prepare(handle, "PRAGMA schema_version");
    if (!version) {
        return version.status();
    }
    std::int64_t current;
    {
        sql::Reset reset(*version);
        if (version->step() != SQLITE_ROW) {
            return sql::error(handle, "reading schema_version");
        }
        current = version->column_int(0);
    }
    if (current == schema_version) {
        return Status::success();
    }
    tables.clear();
    // The registry may not exist yet (no table synced): then nothing is captured.
    auto registry = sql::Stmt::prepare(
        handle, "SELECT tbl, name, rule FROM _peerlite_columns ORDER BY tbl, idx");
    if (registry) {
        std::map<std::string, schema::TableSpec> specs;
        {
            sql::Reset reset(*registry);
            while (registry->step() == SQLITE_ROW) {
                auto& spec = specs[registry->column_text(0)];
                spec.table = registry->column_text(0);
                spec.rules.push_back({registry->column_text(1),
                                      static_cast<crdt::MergeRule>(registry->column_int(2))});
            }
        }
        auto positions =
            sql::Stmt::prepare(handle, "SELECT name FROM pragma_table_info(?1) ORDER BY cid");
        if (!positions) {
            return positions.status();
        }
        for (const auto& [name, spec] : specs) {
            auto schema = schema::inspect_table(handle, spec);
            if (!schema) {
                return schema.status();
            }
            TableCapture t;
            t.schema = *schema;
            std::map<std::string, int> pos;
            positions->bind_text(1, name);
            {
                sql::Reset reset(*positions);
                for (int i = 0; positions->step() == SQLITE_ROW; ++i) {
                    pos[positions->column_text(0)] = i;
                }
            }
            for (const auto& k : t.schema.key) {
                t.key_pos.push_back(pos.at(k));
            }
            for (const auto& v : t.schema.values) {
                t.value_pos.push_back(pos.at(v.name));
            }
            auto append = sql::Stmt::prepare(
                handle, "INSERT INTO " + sql::quote(schema::log_table(name)) +
                            "(op, cols, at, k0) VALUES (4, NULL, julianday(), ?1)");
            if (!append) {
                return append.status();
            }
            t.append = std::move(*append);
            tables.emplace(name, std::move(t));
        }
    }
    schema_version = current;
    return Status::success();
}

void Writer::Impl::capture(int op, const char* table) {
    auto it = tables.find(std::string_view(table));
    if (it == tables.end()) {
        return;
    }
    if (!in_transaction) {
        stray_write = true;
        return;
    }
    auto& t = it->second;
    auto* handle = db.get();
    auto column = [&](bool is_new, int pos) {
        sqlite3_value* v = nullptr;
        if ((is_new ? sqlite3_preupdate_new(handle, pos, &v)
                    : sqlite3_preupdate_old(handle, pos, &v)) != SQLITE_OK) {
            hook_error = sql::error(handle, "reading a changed row of '" + t.schema.name + "'");
        }
        return v;
    };
    auto write_key = [&](bool is_new) {
        for (int pos : t.key_pos) {
            auto* v = column(is_new, pos);
            t.entries.value(v ? value_of(v) : crdt::Value());
        }
    };
    ++t.count;
    if (op == SQLITE_INSERT || op == SQLITE_DELETE) {
        t.entries.u8(static_cast<std::uint8_t>(op == SQLITE_INSERT ? schema::LogOp::insert
                                                                   : schema::LogOp::remove));
        t.entries.varint(0);
        write_key(op == SQLITE_INSERT);
        return;
    }
    std::uint64_t mask = 0;
    for (std::size_t i = 0; i < t.value_pos.size(); ++i) {
        auto* a = column(false, t.value_pos[i]);
        auto* b = column(true, t.value_pos[i]);
        if (a && b && !same(a, b)) {
            mask |= std::uint64_t{1} << i;
        }
    }
    bool key_changed = false;
    for (int pos : t.key_pos) {
        auto* a = column(false, pos);
        auto* b = column(true, pos);
        key_changed = key_changed || (a && b && !same(a, b));
    }
    // Op 2 with the old key appended marks a changed primary key, as the trigger's o0.. do.
    t.entries.u8(static_cast<std::uint8_t>(schema::LogOp::update) | (key_changed ? 0x80 : 0));
    t.entries.varint(mask);
    write_key(true);
    if (key_changed) {
        write_key(false);
    }
}

// Follows the savepoints the transaction body opens, releases and rolls back to, so
// that writes a ROLLBACK TO undid leave no captured entry (SQLite's preupdate hook saw
// them happen, and nothing tells it they were undone).
void Writer::Impl::statement(std::string_view sql) {
    if (!in_transaction) {
        return;
    }
    auto sp = savepoint_statement(sql);
    using Kind = SavepointStatement::Kind;
    if (sp.kind == Kind::none) {
        return;
    }
    if (sp.kind == Kind::open) {
        Savepoint mark{sp.name, {}};
        for (const auto& [name, t] : tables) {
            mark.marks[name] = {t.entries.size(), t.count};
        }
        savepoints.push_back(std::move(mark));
        return;
    }
    // The innermost savepoint of that name; one SQLite does not know fails the statement.
    auto it = std::find_if(savepoints.rbegin(), savepoints.rend(),
                           [&](const Savepoint& s) { return s.name == sp.name; });
    if (it == savepoints.rend()) {
        return;
    }
    auto keep = static_cast<std::size_t>(savepoints.rend() - it); // through the named one
    if (sp.kind == Kind::release) {
        savepoints.resize(keep - 1);
        return;
    }
    // ROLLBACK TO undoes everything since the savepoint and keeps it open.
    savepoints.resize(keep);
    for (auto& [name, t] : tables) {
        auto mark = savepoints.back().marks.find(name);
        auto [size, count] = mark == savepoints.back().marks.end()
                                 ? std::pair<std::size_t, std::uint64_t>{0, 0}
                                 : mark->second;
        t.entries.truncate(size);
        t.count = count;
    }
}

Status Writer::Impl::flush() {
    for (auto& [name, t] : tables) {
        if (t.count == 0) {
            continue;
        }
        wire::ByteWriter batch;
        batch.varint(t.count);
        std::string bytes = batch.take() + t.entries.data();
        t.append.bind_blob(1, bytes.data(), bytes.size());
        if (auto s = t.append.run("logging captured writes to '" + name + "'"); !s.ok()) {
            return s;
        }
    }
    return Status::success();
}

namespace {
void on_preupdate(void* ctx, sqlite3*, int op, const char* db, const char* table, sqlite3_int64,
                  sqlite3_int64) {
    if (std::strcmp(db, "main") == 0) {
        static_cast<Writer::Impl*>(ctx)->capture(op, table);
    }
}
int on_commit(void* ctx) {
    // Non-zero turns the COMMIT into a ROLLBACK: a write we could not log must not land.
    return static_cast<Writer::Impl*>(ctx)->stray_write ? 1 : 0;
}
int on_trace(unsigned type, void* ctx, void* stmt, void* sql) {
    // X is the statement's text, or a "-- ..." comment for a statement run by a trigger.
    // (sqlite3_stmt_readonly() cannot filter: it is true for SAVEPOINT and RELEASE.)
    (void)stmt;
    if (type == SQLITE_TRACE_STMT && sql != nullptr) {
        static_cast<Writer::Impl*>(ctx)->statement(static_cast<const char*>(sql));
    }
    return 0;
}
void on_rollback(void* ctx) {
    auto* impl = static_cast<Writer::Impl*>(ctx);
    impl->stray_write = false;
    impl->clear();
}
} // namespace

Writer::Writer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Writer::~Writer() = default;

sqlite3* Writer::handle() const {
    return impl_->db.get();
}

Result<std::unique_ptr<Writer>> Writer::open(const std::string& path, int busy_timeout_ms) {
    auto impl = std::make_unique<Impl>();
    auto db = sql::open(path, busy_timeout_ms);
    if (!db) {
        return db.status();
    }
    impl->db = std::move(*db);
    auto* handle = impl->db.get();
    sqlite3_db_config(handle, SQLITE_DBCONFIG_ENABLE_TRIGGER, 0, nullptr);
    sqlite3_preupdate_hook(handle, on_preupdate, impl.get());
    sqlite3_commit_hook(handle, on_commit, impl.get());
    sqlite3_rollback_hook(handle, on_rollback, impl.get());
    sqlite3_trace_v2(handle, SQLITE_TRACE_STMT, on_trace, impl.get());
    if (auto s = impl->load_tables(); !s.ok()) {
        return s;
    }
    return std::unique_ptr<Writer>(new Writer(std::move(impl)));
}

Status Writer::transaction(const std::function<Status(sqlite3*)>& body) {
    auto& s = *impl_;
    auto tx = sql::Transaction::begin(s.db.get());
    if (!tx) {
        return tx.status();
    }
    if (auto st = s.load_tables(); !st.ok()) {
        return st;
    }
    s.clear();
    s.hook_error = Status::success();
    s.in_transaction = true;
    auto st = body(s.db.get());
    s.in_transaction = false;
    if (st.ok()) {
        st = s.hook_error;
    }
    if (st.ok()) {
        st = s.flush();
    }
    if (st.ok()) {
        st = tx->commit();
    }
    s.clear();
    return st;
}

} // namespace peerlite::store
