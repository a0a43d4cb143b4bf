// Store benchmark: capture overhead, merge apply rate and metadata size, each beside plain
// SQLite measured in the same run with the same schema and pragmas (WAL,
// synchronous=NORMAL, 1,000-row transactions), for an INTEGER key and a time-ordered
// 16-byte BLOB key. Prints ratios; absolute rates are for orientation only. The apply
// rate stands beside plain SQLite inserting the same rows into an empty file.
//
// Usage: store_bench [rows] [--unique]   (default 100,000 rows)
// --unique: the same with a UNIQUE index on the title column on both sides (peerlite then
// adds triggers that log rows INSERT OR REPLACE would delete: docs/design/constraints.md).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <unistd.h>
#include <vector>

#include <sqlite3.h>

#include <peerlite/store/row_ids.hpp>
#include <peerlite/store/store.hpp>
#include <peerlite/store/writer.hpp>

using namespace peerlite;
using Clock = std::chrono::steady_clock;

namespace {

void check(int rc, sqlite3* db, const char* what) {
    if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
        std::fprintf(stderr, "%s: %s\n", what, sqlite3_errmsg(db));
        std::exit(1);
    }
}

template <class T>
T must(Result<T> r, const char* what) {
    if (!r) {
        std::fprintf(stderr, "%s: %s\n", what, r.status().to_string().c_str());
        std::exit(1);
    }
    return std::move(r).value();
}

sqlite3* open_plain(const std::string& path) {
    sqlite3* db = nullptr;
    check(sqlite3_open(path.c_str(), &db), db, "open");
    check(sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", nullptr, nullptr,
                       nullptr),
          db, "pragmas");
    return db;
}

enum class Key { integer, blob16 };

bool g_unique = false; // --unique: titles differ per row, under a UNIQUE index

void bind_title(sqlite3_stmt* s, int index, int row) {
    if (!g_unique) {
        sqlite3_bind_text(s, index, "a product title of some length", -1, SQLITE_STATIC);
        return;
    }
    auto text = "a product title of some length #" + std::to_string(row);
    sqlite3_bind_text(s, index, text.c_str(), -1, SQLITE_TRANSIENT);
}

struct Keys {
    Key kind;
    std::vector<std::array<std::uint8_t, 16>> blobs;
    void bind(sqlite3_stmt* s, int index, int row) const {
        if (kind == Key::integer) {
            sqlite3_bind_int64(s, index, row + 1);
        } else {
            sqlite3_bind_blob(s, index, blobs[static_cast<std::size_t>(row)].data(), 16,
                              SQLITE_STATIC);
        }
    }
};

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

// Inserts then updates every row through plain connections to two files at once,
// alternating 1,000-row transactions between them so both see the same machine
// conditions (this machine's speed drifts by tens of percent between runs). Returns the
// rows per second of each file, insert and update.
struct WriteRates {
    double insert[2];
    double update[2];
};

WriteRates write_rows(const std::string (&paths)[2], const Keys& keys, int rows) {
    sqlite3* db[2];
    sqlite3_stmt* ins[2];
    sqlite3_stmt* upd[2];
    for (int i = 0; i < 2; ++i) {
        db[i] = open_plain(paths[i]);
        check(sqlite3_prepare_v2(db[i], "INSERT INTO items VALUES (?1, ?2, ?3, ?4)", -1, &ins[i],
                                 nullptr),
              db[i], "prep");
        check(sqlite3_prepare_v2(db[i], "UPDATE items SET qty = ?2 WHERE id = ?1", -1, &upd[i],
                                 nullptr),
              db[i], "prep");
    }
    auto run = [&](sqlite3_stmt*(&stmts)[2], bool insert, double(&rate)[2]) {
        double spent[2] = {0, 0};
        for (int chunk = 0; chunk < rows; chunk += 1000) {
            for (int i = 0; i < 2; ++i) {
                auto start = Clock::now();
                check(sqlite3_exec(db[i], "BEGIN", nullptr, nullptr, nullptr), db[i], "begin");
                for (int r = chunk; r < std::min(rows, chunk + 1000); ++r) {
                    auto* s = stmts[i];
                    keys.bind(s, 1, r);
                    if (insert) {
                        bind_title(s, 2, r);
                        sqlite3_bind_int64(s, 3, r);
                        sqlite3_bind_double(s, 4, r * 0.25);
                    } else {
                        sqlite3_bind_int64(s, 2, r + 7);
                    }
                    check(sqlite3_step(s), db[i], "step");
                    sqlite3_reset(s);
                }
                check(sqlite3_exec(db[i], "COMMIT", nullptr, nullptr, nullptr), db[i], "commit");
                spent[i] += seconds_since(start);
            }
        }
        for (int i = 0; i < 2; ++i) {
            rate[i] = rows / spent[i];
        }
    };
    WriteRates out{};
    run(ins, true, out.insert);
    run(upd, false, out.update);
    for (int i = 0; i < 2; ++i) {
        sqlite3_finalize(ins[i]);
        sqlite3_finalize(upd[i]);
        sqlite3_close(db[i]);
    }
    return out;
}

// Inserts through a plain connection to one file and through the embedded Writer to
// another, alternating 1,000-row transactions; returns {plain rows/s, writer rows/s}.
std::pair<double, double> writer_rows(const std::string& plain_path, const std::string& writer_path,
                                      const Keys& keys, int rows) {
    auto* plain = open_plain(plain_path);
    auto writer = must(store::Writer::open(writer_path), "open writer");
    sqlite3_stmt* ins[2];
    check(sqlite3_prepare_v2(plain, "INSERT INTO items VALUES (?1, ?2, ?3, ?4)", -1, &ins[0],
                             nullptr),
          plain, "prep");
    check(sqlite3_prepare_v2(writer->handle(), "INSERT INTO items VALUES (?1, ?2, ?3, ?4)", -1,
                             &ins[1], nullptr),
          writer->handle(), "prep");
    double spent[2] = {0, 0};
    for (int chunk = 0; chunk < rows; chunk += 1000) {
        auto body = [&](sqlite3_stmt* s, sqlite3* db) {
            for (int r = chunk; r < std::min(rows, chunk + 1000); ++r) {
                keys.bind(s, 1, r);
                bind_title(s, 2, r);
                sqlite3_bind_int64(s, 3, r);
                sqlite3_bind_double(s, 4, r * 0.25);
                check(sqlite3_step(s), db, "step");
                sqlite3_reset(s);
            }
        };
        auto start = Clock::now();
        check(sqlite3_exec(plain, "BEGIN", nullptr, nullptr, nullptr), plain, "begin");
        body(ins[0], plain);
        check(sqlite3_exec(plain, "COMMIT", nullptr, nullptr, nullptr), plain, "commit");
        spent[0] += seconds_since(start);
        start = Clock::now();
        auto st = writer->transaction([&](sqlite3* db) {
            body(ins[1], db);
            return Status::success();
        });
        if (!st.ok()) {
            std::fprintf(stderr, "writer: %s\n", st.to_string().c_str());
            std::exit(1);
        }
        spent[1] += seconds_since(start);
    }
    sqlite3_finalize(ins[0]);
    sqlite3_finalize(ins[1]);
    sqlite3_close(plain);
    return {rows / spent[0], rows / spent[1]};
}

void create_table(const std::string& path, Key key) {
    auto* db = open_plain(path);
    std::string sql = std::string("CREATE TABLE items(id ") +
                      (key == Key::integer ? "INTEGER" : "BLOB") +
                      " PRIMARY KEY NOT NULL, title TEXT, qty INTEGER, price REAL)";
    if (g_unique) {
        sql += "; CREATE UNIQUE INDEX items_title ON items(title)";
    }
    check(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), db, "create");
    sqlite3_close(db);
}

// The baseline for apply: plain SQLite inserting the same rows into an empty file in
// 2,000-row transactions (the daemon's apply_batch_rows); returns cells per second.
double plain_cells(const std::string& path, const Keys& keys, int rows) {
    for (const char* suffix : {"", "-wal", "-shm"}) {
        std::filesystem::remove(path + suffix);
    }
    create_table(path, keys.kind);
    auto* db = open_plain(path);
    sqlite3_stmt* s = nullptr;
    check(sqlite3_prepare_v2(db, "INSERT INTO items VALUES (?1, ?2, ?3, ?4)", -1, &s, nullptr), db,
          "prep");
    auto start = Clock::now();
    for (int chunk = 0; chunk < rows; chunk += 2000) {
        check(sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr), db, "begin");
        for (int r = chunk; r < std::min(rows, chunk + 2000); ++r) {
            keys.bind(s, 1, r);
            bind_title(s, 2, r);
            sqlite3_bind_int64(s, 3, r + 7);
            sqlite3_bind_double(s, 4, r * 0.25);
            check(sqlite3_step(s), db, "step");
            sqlite3_reset(s);
        }
        check(sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr), db, "commit");
    }
    auto rate = rows * 3 / seconds_since(start);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return rate;
}

std::int64_t metadata_bytes(const std::string& path) {
    auto* db = open_plain(path);
    check(sqlite3_exec(db, "VACUUM", nullptr, nullptr, nullptr), db, "vacuum");
    sqlite3_stmt* s = nullptr;
    check(sqlite3_prepare_v2(
              db,
              "SELECT sum(pgsize) FROM dbstat WHERE name LIKE '\\_peerlite\\_rows\\_%' ESCAPE '\\'",
              -1, &s, nullptr),
          db, "dbstat");
    sqlite3_step(s);
    auto bytes = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return bytes;
}

void run(Key key, int rows, const std::filesystem::path& dir) {
    Keys keys{key, {}};
    if (key == Key::blob16) {
        for (int r = 0; r < rows; ++r) {
            keys.blobs.push_back(store::new_id());
        }
    }
    const char* label = key == Key::integer ? "INTEGER key" : "16-byte time-ordered key";
    auto plain_path = (dir / "plain.db").string();
    auto synced_path = (dir / "synced.db").string();
    auto replica_path = (dir / "replica.db").string();
    schema::TableSpec spec{"items", {}};
    auto fresh = [&](const std::string& path, bool synced) {
        for (const char* suffix : {"", "-wal", "-shm"}) {
            std::filesystem::remove(path + suffix);
        }
        create_table(path, key);
        if (synced) {
            auto store = must(store::Store::open(path), "open");
            must(store->sync_table(spec), "sync_table");
        }
    };
    fresh(replica_path, true);
    auto replica = must(store::Store::open(replica_path), "open replica");

    std::vector<double> writer_ratio;
    std::pair<double, double> writer_rates;
    for (int round = 0; round < 3; ++round) {
        fresh(plain_path, false);
        fresh(synced_path, true);
        writer_rates = writer_rows(plain_path, synced_path, keys, rows);
        writer_ratio.push_back(writer_rates.second / writer_rates.first);
    }
    // The machine is noisy: alternate plain and synced three times, keep the median
    // ratio. Each round starts from fresh files.
    std::vector<double> insert_ratio, update_ratio;
    WriteRates rates{};
    for (int round = 0; round < 3; ++round) {
        fresh(plain_path, false);
        fresh(synced_path, true);
        rates = write_rows({plain_path, synced_path}, keys, rows);
        insert_ratio.push_back(rates.insert[1] / rates.insert[0]);
        update_ratio.push_back(rates.update[1] / rates.update[0]);
    }
    std::sort(writer_ratio.begin(), writer_ratio.end());
    std::sort(insert_ratio.begin(), insert_ratio.end());
    std::sort(update_ratio.begin(), update_ratio.end());

    // Opening the store picks up everything the triggers logged.
    auto start = Clock::now();
    auto source = must(store::Store::open(synced_path), "reopen synced");
    auto capture_rate = rows * 2 / seconds_since(start);

    auto wanted = source->versions();
    store::ReadCursor cursor;
    wire::ChangeSet set;
    start = Clock::now();
    while (!cursor.done) {
        auto part = must(source->read_changes(wanted, cursor, 10'000), "read_changes");
        for (auto& r : part.rows) {
            set.rows.push_back(std::move(r));
        }
    }
    auto read_rate = set.rows.size() * 3 / seconds_since(start);
    set.covers = wanted;
    std::size_t cells = 0;
    for (const auto& r : set.rows) {
        cells += r.column_changes();
    }
    auto encoded = wire::encode(set);
    start = Clock::now();
    auto decoded = must(wire::decode(encoded), "decode");
    auto decode_rate = cells / seconds_since(start);
    auto plain_apply_rate = plain_cells(plain_path, keys, rows); // just before, same conditions
    start = Clock::now();
    auto applied = must(replica->apply(decoded), "apply");
    auto apply_rate = applied.column_changes / seconds_since(start);
    start = Clock::now();
    auto again = must(replica->apply(decoded), "re-apply");
    auto reapply_rate = again.column_changes / seconds_since(start);
    auto meta = metadata_bytes(synced_path);

    std::printf("\n%s, %d rows, 3 value columns%s\n", label, rows,
                g_unique ? ", UNIQUE index on title" : "");
    std::printf("  %-44s %12s %12s %8s %8s\n", "workload", "plain/s", "peerlite/s", "ratio",
                "target");
    std::printf("  %-44s %12.0f %12.0f %7.2fx %8s\n", "insert through a plain connection (rows)",
                rates.insert[0], rates.insert[1], insert_ratio[1], ">=0.45");
    std::printf("  %-44s %12.0f %12.0f %7.2fx %8s\n", "update 1 column, plain connection (rows)",
                rates.update[0], rates.update[1], update_ratio[1], ">=0.35");
    std::printf("  %-44s %12.0f %12.0f %7.2fx %8s\n", "insert through the embedded Writer (rows)",
                writer_rates.first, writer_rates.second, writer_ratio[1], ">=0.70");
    std::printf("  %-44s %12s %12.0f\n", "capture pickup, off the writer path (entries)", "-",
                capture_rate);
    std::printf("  %-44s %12s %12.0f\n", "read changes for a peer (column changes)", "-",
                read_rate);
    std::printf("  %-44s %12s %12.0f\n", "decode msgpack change set (column changes)", "-",
                decode_rate);
    std::printf("  %-44s %12.0f %12.0f %7.2fx %8s\n", "apply into empty replica (column changes)",
                plain_apply_rate, apply_rate, apply_rate / plain_apply_rate, ">=500K/s");
    std::printf("  %-44s %12s %12.0f %7.1fx\n", "re-apply, all duplicates (column changes)", "-",
                reapply_rate, reapply_rate / apply_rate);
    std::printf("  %-44s %12s %12.1f %8s %8s\n", "metadata bytes per synced cell (after VACUUM)",
                "-", static_cast<double>(meta) / (static_cast<double>(rows) * 3), "", "<24");
    std::printf("  %-44s %12s %12.1f\n", "wire bytes per cell (msgpack, whole set)", "-",
                static_cast<double>(encoded.size()) / static_cast<double>(cells));
}

} // namespace

int main(int argc, char** argv) {
    int rows = 100'000;
    for (int i = 1; i < argc; ++i) {
        if (std::string(argv[i]) == "--unique") {
            g_unique = true;
        } else {
            rows = std::atoi(argv[i]);
        }
    }
    auto dir =
        std::filesystem::temp_directory_path() / ("peerlite-bench-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir);
    std::printf(
        "peerlite store benchmark (SQLite %s); ratios are peerlite / plain SQLite, same run\n",
        sqlite3_libversion());
    run(Key::integer, rows, dir);
    run(Key::blob16, rows, dir);
    std::filesystem::remove_all(dir);
    return 0;
}
