// The fault run (fault_harness.hpp). Long because one randomized schedule drives every
// fault (kills, pauses, partitions, skew, app locks) against one oracle; the cluster and
// the oracle are their own files.
#include "fault_harness.hpp"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include <catch2/catch.hpp>
#include <sqlite3.h>

#include <peerlite/inspect/inspector.hpp>

#include "fault_cluster.hpp"
#include "fault_oracle.hpp"
#include "mesh_fixture.hpp"

namespace peerlite::testing::fault {

namespace {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

std::string key_name(int key) {
    return "k" + std::to_string(key);
}

// The column rolled out across the nodes while the workload runs (an app's migration
// applied one node at a time), and what rows hold in it on nodes that wrote none.
constexpr const char* kAddColumn = "ALTER TABLE items ADD COLUMN note TEXT NOT NULL DEFAULT 'none'";
constexpr const char* kNoteDefault = "none";

// Name sizes of the big writes, against the cluster's max_message_bytes (Cluster): a
// large name syncs like any other; an oversized one is refused at its origin, which
// keeps the row until the next write makes it smaller (the workload's "shrink").
constexpr std::size_t kLargeName = 150'000;
constexpr std::size_t kOversizedName = 300'000;
constexpr std::size_t kShownName = 40; // of a name in a problem line

// The randomized writes, and the episodes (fault_oracle.hpp) they form on each node.
class Workload {
public:
    Workload(Cluster& cluster, int slots, std::uint64_t seed) : rng_(seed) {
        for (int i = 0; i < cluster.size(); ++i) {
            conns_.push_back(std::make_unique<Conn>(cluster.db_path(i), cluster.vfs(i)));
            paths_.push_back(cluster.db_path(i));
        }
        inspectors_.resize(paths_.size());
        has_note_.assign(static_cast<std::size_t>(cluster.size()), false);
        for (int i = 0; i < slots; ++i) {
            slots_.push_back(keys_used_++);
        }
    }

    // The key written through `slot` (of the `slots` being written at a time).
    int key(int slot) const { return slots_[static_cast<std::size_t>(slot)]; }
    // Retires the slot's key, which is written no more, and gives the slot a fresh one.
    // Each retired key's final state is checked at the end, so rotating keys checks
    // many more outcomes than the few keys written last.
    void rotate(int slot) { slots_[static_cast<std::size_t>(slot)] = keys_used_++; }
    // Keys 0 .. keys_used() - 1 were written.
    int keys_used() const { return keys_used_; }

    // What a write does beyond a random one: `large` and `oversized` rename an existing
    // row to a big name (a missing row gets an ordinary insert); `shrink` renames it to
    // an ordinary one.
    enum class Kind { random, large, oversized, shrink };

    // One write of `key` on `node`; whether it committed. An oversized name that
    // committed is shrunk by a later write of the same node (shrink_due).
    bool write(int node, int key, Kind kind = Kind::random) {
        auto& c = *conns_[static_cast<std::size_t>(node)];
        if (c.exec("BEGIN IMMEDIATE") != SQLITE_OK) {
            ++busy;
            return false;
        }
        // Until the commit, the daemon neither picks up (stamps) nor writes back: what
        // the inspector shows of the key stays true (episodes are cut where it picked up).
        auto* inspector = inspect(node);
        // A daemon paused (SIGSTOP) in the middle of a pick-up holds its journal until the
        // pause ends: the write is skipped as busy, as one blocked by its write lock is.
        auto hold = inspector ? inspector->hold_pick_ups(std::chrono::milliseconds(50))
                              : Result<store::Inspector::PickUpHold>(Status(Code::io_error, ""));
        if (hold.status().code() == Code::busy) {
            c.exec("ROLLBACK");
            ++busy;
            return false;
        }
        if (inspector && !hold) {
            problems.push_back("node " + std::to_string(node) +
                               ": cannot hold pick-ups: " + hold.status().message());
        }
        auto w = hold ? write_locked(node, key, kind) : std::nullopt;
        if (w && c.exec("COMMIT") == SQLITE_OK) {
            open_[{node, key}].writes.push_back(*w);
            ++writes;
            for (auto& note : pending_notes_) {
                notes_[key].insert(std::move(note));
            }
            pending_notes_.clear();
            if (w->name.size() >= kOversizedName) {
                ++oversized;
                shrinks_.push_back({node, key});
            } else if (w->name.size() >= kLargeName) {
                ++large;
            }
            return true;
        }
        pending_notes_.clear();
        if (sqlite3_errcode(c.get()) == SQLITE_BUSY) {
            ++busy;
        } else {
            problems.push_back("node " + std::to_string(node) + ": write failed: " + c.error());
        }
        c.exec("ROLLBACK");
        return false;
    }

    // Every episode, once the run is over and every capture log is empty.
    std::vector<Episode> episodes() {
        auto all = closed_;
        for (auto& [at, e] : open_) {
            all.push_back(e);
        }
        return all;
    }

    // Writes the ordinary name over every oversized one committed so far; whether all
    // are done (a busy node is tried again on the next call).
    bool shrink_due() {
        std::vector<std::pair<int, int>> left;
        for (auto [node, key] : shrinks_) {
            if (!write(node, key, Kind::shrink)) {
                left.emplace_back(node, key);
            }
        }
        shrinks_ = std::move(left);
        return shrinks_.empty();
    }

    // Adds the rolled-out column on `node`; whether it is there now.
    bool add_column(int node) {
        auto i = static_cast<std::size_t>(node);
        if (!has_note_[i] && conns_[i]->exec(kAddColumn) == SQLITE_OK) {
            has_note_[i] = true;
            ++columns_added;
        }
        return has_note_[i];
    }

    // Problems with the rolled-out column on one node: a row holds a note nobody wrote
    // to it (the default is what rows hold before any node wrote one).
    void check_notes(int node, const std::string& path, std::vector<std::string>& out) const {
        Conn c(path);
        Stmt rows(c, "SELECT id, note FROM items");
        if (!rows.ok()) {
            out.push_back("n" + std::to_string(node) + ": no column 'note': " + c.error());
            return;
        }
        while (rows.step() == SQLITE_ROW) {
            auto id = rows.text(0).value_or("");
            auto note = rows.text(1).value_or("(NULL)");
            auto written = notes_.find(std::stoi(id.substr(1)));
            if (note != kNoteDefault &&
                (written == notes_.end() || written->second.count(note) == 0)) {
                out.push_back("n" + std::to_string(node) + " " + id + ": note '" + note +
                              "' was never written to it");
            }
        }
    }

    std::vector<std::string> problems;
    int writes = 0, busy = 0, large = 0, oversized = 0, columns_added = 0;

private:
    std::optional<Write> write_locked(int node, int key, Kind kind) {
        auto& c = *conns_[static_cast<std::size_t>(node)];
        auto k = key_name(key);
        Stmt user(c, "SELECT name, qty, best FROM items WHERE id = ?1");
        // The record as the daemon holds it: written into the file or only picked up.
        auto& items = items_[static_cast<std::size_t>(node)];
        auto history =
            inspectors_[static_cast<std::size_t>(node)]->history(items, {crdt::Value::text(k)});
        if (!history && history.status().code() != Code::not_found) {
            problems.push_back("node " + std::to_string(node) + " key " + k +
                               ": history: " + history.status().message());
            return std::nullopt;
        }
        std::uint64_t life = history ? history->life : 0;
        std::size_t pending = history ? history->pending : 0;
        std::optional<Row> row;
        if (int rc = user.bind(1, k).step(); rc == SQLITE_ROW) {
            row = Row{user.text(0), user.integer(1), user.integer(2)};
        } else if (rc != SQLITE_DONE) {
            return std::nullopt;
        }
        auto& open = open_[{node, key}];
        if (pending == 0) {
            // The store picked up everything before: the next write starts an episode.
            if (!open.writes.empty()) {
                closed_.push_back(open);
            }
            if ((life % 2 == 1) != row.has_value()) {
                problems.push_back("node " + std::to_string(node) + " key " + k + ": record life " +
                                   std::to_string(life) + " but the row " +
                                   (row ? "exists" : "is missing") + " (everything picked up)");
            }
            open = Episode{node, key, life, row ? row->name : std::nullopt, {}};
        }
        auto w = choose(node, row);
        if (row && kind != Kind::random) {
            // A rename only, so the big name is the one thing the write adds.
            w = Write{Op::update, true, false, false, 0, fresh(node), row->best.value_or(0)};
            if (kind != Kind::shrink) {
                w.name.resize(kind == Kind::large ? kLargeName : kOversizedName, '.');
            }
        }
        if (!run(c, k, w)) {
            return std::nullopt;
        }
        if (w.op != Op::remove && has_note_[static_cast<std::size_t>(node)] && pick(0, 2) == 0) {
            auto note = "note." + fresh(node);
            Stmt s(c, "UPDATE items SET note = ?2 WHERE id = ?1");
            if (s.bind(1, k).bind(2, note).step() != SQLITE_DONE) {
                return std::nullopt;
            }
            pending_notes_.push_back(std::move(note));
        }
        return w;
    }

    // The node's inspector, opened at its first write (the daemon has made the file a
    // peerlite database by then); nullptr after a problem.
    store::Inspector* inspect(int node) {
        auto i = static_cast<std::size_t>(node);
        if (!inspectors_[i]) {
            auto opened = store::Inspector::open(paths_[i]);
            auto items = opened ? (*opened)->table("items")
                                : Result<const store::TableInfo*>(opened.status());
            if (!items) {
                problems.push_back("node " + std::to_string(node) +
                                   ": cannot inspect: " + items.status().message());
                return nullptr;
            }
            items_.resize(paths_.size());
            items_[i] = **items;
            inspectors_[i] = std::move(*opened);
        }
        return inspectors_[i].get();
    }

    int pick(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
    std::string fresh(int node) {
        return "n" + std::to_string(node) + "." + std::to_string(++names_);
    }

    Write choose(int node, const std::optional<Row>& row) {
        Write w;
        if (!row) {
            w.op = Op::insert;
            w.name = fresh(node);
            w.qty = pick(0, 20);
            w.best = pick(0, 999);
            return w;
        }
        w.name = row->name.value_or("");
        w.best = row->best.value_or(0);
        auto r = pick(0, 99);
        if (r < 12) {
            w.op = Op::remove;
            return w;
        }
        w.sets_name = r < 37 || r >= 82;
        w.sets_qty = (r >= 37 && r < 62) || r >= 82;
        w.sets_best = r >= 62;
        if (w.sets_name) {
            w.name = fresh(node);
        }
        if (w.sets_qty) {
            w.qty = pick(-5, 9);
            w.qty += w.qty >= 0 ? 1 : 0; // never 0
        }
        if (w.sets_best) {
            w.best = pick(0, 999);
        }
        return w;
    }

    static bool run(Conn& c, const std::string& k, const Write& w) {
        if (w.op == Op::insert) {
            // Columns named: the rolled-out column may be there or not.
            Stmt s(c, "INSERT INTO items(id, name, qty, best) VALUES (?1, ?2, ?3, ?4)");
            return s.bind(1, k).bind(2, w.name).bind(3, w.qty).bind(4, w.best).step() ==
                   SQLITE_DONE;
        }
        if (w.op == Op::remove) {
            Stmt s(c, "DELETE FROM items WHERE id = ?1");
            return s.bind(1, k).step() == SQLITE_DONE;
        }
        Stmt s(c, "UPDATE items SET name = CASE WHEN ?2 THEN ?3 ELSE name END, "
                  "qty = qty + ?4, best = CASE WHEN ?5 THEN ?6 ELSE best END WHERE id = ?1");
        return s.bind(1, k)
                   .bind(2, std::int64_t{w.sets_name})
                   .bind(3, w.name)
                   .bind(4, w.sets_qty ? w.qty : 0)
                   .bind(5, std::int64_t{w.sets_best})
                   .bind(6, w.best)
                   .step() == SQLITE_DONE;
    }

    std::vector<int> slots_;
    int keys_used_ = 0;
    std::mt19937_64 rng_;
    std::vector<std::unique_ptr<Conn>> conns_;
    std::vector<std::string> paths_;
    std::vector<std::unique_ptr<store::Inspector>> inspectors_;
    std::vector<store::TableInfo> items_; // as each inspector read it
    std::map<std::pair<int, int>, Episode> open_;
    std::vector<Episode> closed_;
    int names_ = 0;
    std::vector<bool> has_note_;                 // per node: the rolled-out column added
    std::map<int, std::set<std::string>> notes_; // per key: every note committed
    std::vector<std::string> pending_notes_;     // of the write being made
    std::vector<std::pair<int, int>> shrinks_;   // (node, key) of oversized names
};

// The fault schedule: each fault is injected at a random moment and lifted after a random
// while (an "undo" event), unless the run ends first.
class Faults {
public:
    Faults(Cluster& cluster, std::uint64_t seed) : c_(cluster), rng_(seed) {
        for (int i = 0; i < cluster.size(); ++i) {
            lockers_.push_back(std::make_unique<Conn>(cluster.db_path(i), cluster.vfs(i)));
        }
        locked_.assign(static_cast<std::size_t>(cluster.size()), false);
    }

    void tick(SteadyClock::time_point now) {
        check_exits();
        std::sort(undo_.begin(), undo_.end(),
                  [](const auto& a, const auto& b) { return a.at > b.at; });
        while (!undo_.empty() && undo_.back().at <= now) {
            auto u = undo_.back();
            undo_.pop_back();
            lift(u, now);
        }
        if (now >= next_) {
            inject(now);
            next_ = now + ms(400, 2000);
        }
    }

    // Lifts every fault now: all daemons running, no partition. A skewed clock stays.
    void lift_all(SteadyClock::time_point now) {
        for (const auto& u : undo_) {
            if (u.kind != Kind::unskew) {
                lift(u, now);
            }
        }
        undo_.clear();
        check_exits();
    }

    void check_exits() {
        for (int i = 0; i < c_.size(); ++i) {
            if (c_.state(i) == Cluster::State::down) {
                continue;
            }
            if (auto status = c_.daemon(i).exited()) {
                if (c_.daemon(i).log().find("Address already in use") != std::string::npos) {
                    // Its fixed port was taken, while it was down, by another process's
                    // outgoing connection (any ephemeral port may be): not peerlite's
                    // doing. Try again.
                    ++port_retries;
                    std::this_thread::sleep_for(100ms);
                    c_.daemon(i).restart();
                    continue;
                }
                problems.push_back("daemon n" + std::to_string(i) +
                                   " exited by itself with status " + std::to_string(*status) +
                                   "; its log ends:\n" + tail(c_.daemon(i).log(), 15));
                c_.daemon(i).restart();
                c_.state(i) = Cluster::State::running;
            }
        }
    }

    std::string summary() const {
        std::ostringstream out;
        out << kills << " SIGKILLs, " << stops << " SIGTERMs, " << pauses << " pauses, "
            << partitions << " partitions, " << skews << " clock skews, " << locks
            << " write locks held by an app";
        if (port_retries > 0) {
            out << ", " << port_retries << " restarts retried (port taken)";
        }
        return out.str();
    }

    std::vector<std::string> problems;
    int kills = 0, stops = 0, pauses = 0, partitions = 0, skews = 0, locks = 0, port_retries = 0;

private:
    enum class Kind { restart, resume, heal, unskew, unlock };
    struct Undo {
        SteadyClock::time_point at;
        Kind kind;
        int node;
    };

    SteadyClock::duration ms(int lo, int hi) {
        return std::chrono::milliseconds(std::uniform_int_distribution<int>(lo, hi)(rng_));
    }
    int pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }

    void inject(SteadyClock::time_point now) {
        std::vector<int> running;
        int stopped = 0;
        for (int i = 0; i < c_.size(); ++i) {
            if (c_.state(i) == Cluster::State::running) {
                running.push_back(i);
            } else {
                ++stopped;
            }
        }
        auto r = pick(100);
        // At most two nodes stopped or paused at once, so the rest still form a mesh.
        bool may_stop = stopped < 2 && !running.empty();
        if (r < 35 && may_stop) {
            int i = running[static_cast<std::size_t>(pick(static_cast<int>(running.size())))];
            // SIGTERM only once the daemon said it is ready: before it blocks the signal
            // (while it reads its config), SIGTERM's default action ends it.
            if (pick(4) == 0 && c_.daemon(i).ready(1, 0ms)) {
                ++stops;
                if (int status = c_.daemon(i).stop(); status != 0) {
                    problems.push_back("daemon n" + std::to_string(i) +
                                       ": SIGTERM gave exit status " + std::to_string(status));
                }
            } else {
                ++kills;
                c_.daemon(i).kill();
            }
            c_.state(i) = Cluster::State::down;
            undo_.push_back({now + ms(200, 4000), Kind::restart, i});
        } else if (r < 55 && may_stop) {
            int i = running[static_cast<std::size_t>(pick(static_cast<int>(running.size())))];
            ++pauses;
            c_.daemon(i).pause();
            c_.state(i) = Cluster::State::paused;
            undo_.push_back({now + ms(300, 3000), Kind::resume, i});
        } else if (r < 72 && !partitioned_) {
            // One or two nodes on one side, the rest on the other.
            std::vector<bool> side(static_cast<std::size_t>(c_.size()), false);
            for (int n = 1 + pick(2); n > 0; --n) {
                side[static_cast<std::size_t>(pick(c_.size()))] = true;
            }
            ++partitions;
            c_.partition(side);
            partitioned_ = true;
            undo_.push_back({now + ms(1000, 6000), Kind::heal, 0});
        } else if (r < 86) {
            // An app on one node holds SQLite's write lock past the daemon's busy timeout:
            // its captures, and applies of what peers send, fail until it commits.
            int i = pick(c_.size());
            auto& locker = *lockers_[static_cast<std::size_t>(i)];
            if (!locked_[static_cast<std::size_t>(i)] &&
                locker.exec("BEGIN IMMEDIATE") == SQLITE_OK) {
                ++locks;
                locked_[static_cast<std::size_t>(i)] = true;
                undo_.push_back({now + ms(150, 1200), Kind::unlock, i});
            }
        } else if (skewed_ < 0 && !running.empty()) {
            // Within the drift bound (1 s) even against clocks another skew pushed ahead.
            int i = running[static_cast<std::size_t>(pick(static_cast<int>(running.size())))];
            int offset = (100 + pick(350)) * (pick(2) ? 1 : -1);
            ++skews;
            skewed_ = i;
            c_.set_clock_offset(i, offset);
            c_.daemon(i).restart(); // SIGKILL, then start with the new clock
            undo_.push_back({now + ms(3000, 10000), Kind::unskew, i});
        }
    }

    void lift(const Undo& u, SteadyClock::time_point now) {
        switch (u.kind) {
        case Kind::restart:
            c_.daemon(u.node).restart();
            c_.state(u.node) = Cluster::State::running;
            break;
        case Kind::resume:
            c_.daemon(u.node).resume();
            c_.state(u.node) = Cluster::State::running;
            break;
        case Kind::heal:
            c_.heal();
            partitioned_ = false;
            break;
        case Kind::unlock:
            lockers_[static_cast<std::size_t>(u.node)]->exec("ROLLBACK");
            locked_[static_cast<std::size_t>(u.node)] = false;
            break;
        case Kind::unskew:
            c_.set_clock_offset(u.node, 0);
            if (c_.state(u.node) == Cluster::State::paused) {
                undo_.push_back({now + 500ms, Kind::unskew, u.node}); // once it runs again
                return;
            }
            if (c_.state(u.node) == Cluster::State::running) {
                c_.daemon(u.node).restart();
            }
            skewed_ = -1;
            break;
        }
    }

    Cluster& c_;
    std::mt19937_64 rng_;
    std::vector<Undo> undo_;
    SteadyClock::time_point next_ = SteadyClock::now() + 500ms;
    bool partitioned_ = false;
    int skewed_ = -1;
    std::vector<std::unique_ptr<Conn>> lockers_; // one plain connection per node
    std::vector<bool> locked_;
};

// What one node shows once the mesh is quiet.
struct NodeState {
    std::vector<std::string> dump;     // the items table, ordered by key
    std::vector<std::string> versions; // covered ranges per origin
    std::int64_t pending = 0;          // capture-log rows not picked up
    std::int64_t kept_aside = 0;       // rows in _peerlite_pending (a column missing)
    std::map<std::string, Row> rows;
    std::map<std::string, std::uint64_t> lives; // from the row records
};

NodeState read_node(const std::string& path) {
    NodeState s;
    s.dump = dump(path, "items");
    PlainDb db(path);
    s.versions = db.rows("SELECT hex(n.id), v.first, v.last FROM _peerlite_versions v "
                         "JOIN _peerlite_nodes n ON n.idx = v.node ORDER BY 1, 2");
    s.pending = db.scalar("SELECT count(*) FROM _peerlite_log_items");
    s.kept_aside = db.scalar("SELECT count(*) FROM _peerlite_pending");
    Conn c(path);
    Stmt rows(c, "SELECT id, name, qty, best FROM items");
    while (rows.step() == SQLITE_ROW) {
        s.rows[*rows.text(0)] = Row{rows.text(1), rows.integer(2), rows.integer(3)};
    }
    Stmt lives(c, "SELECT k0, rec FROM _peerlite_rows_items");
    while (lives.step() == SQLITE_ROW) {
        s.lives[*lives.text(0)] = lives.life(1).value_or(~std::uint64_t{0});
    }
    return s;
}

int count(const std::string& text, const std::string& what) {
    int n = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) {
        ++n;
    }
    return n;
}

// Problem lines quote names; a big one is cut to its unique prefix and its size.
void shorten_names(std::string& line) {
    std::string out;
    for (std::size_t i = 0; i < line.size();) {
        auto dots = line.find_first_not_of('.', i);
        auto run = (dots == std::string::npos ? line.size() : dots) - i;
        if (line[i] == '.' && run > kShownName) {
            out += "...(" + std::to_string(run) + " dots)";
            i += run;
        } else {
            out += line[i++];
        }
    }
    line = std::move(out);
}

bool same(const std::vector<NodeState>& nodes) {
    for (const auto& n : nodes) {
        if (n.pending != 0 || n.kept_aside != 0 || n.dump != nodes.front().dump ||
            n.versions != nodes.front().versions) {
            return false;
        }
    }
    return true;
}

// Every check of the converged mesh against the oracle.
// `exact`: how many present keys had a single possible winner for the LWW column.
std::vector<std::string> check_all(const std::vector<NodeState>& nodes,
                                   const std::vector<Episode>& episodes, int keys, int& exact) {
    std::vector<std::string> problems;
    std::map<int, std::vector<Effect>> effects;
    for (const auto& e : episodes) {
        if (auto effect = resolve(e, problems)) {
            effects[e.key].push_back(*effect);
        }
    }
    for (std::size_t i = 1; i < nodes.size(); ++i) {
        if (nodes[i].dump != nodes[0].dump) {
            problems.push_back("n" + std::to_string(i) + "'s table differs from n0's");
        }
    }
    for (int key = 0; key < keys; ++key) {
        auto k = key_name(key);
        auto before = problems.size();
        auto x = expect(effects[key], problems);
        exact += x.present && x.names.size() == 1;
        for (std::size_t i = 0; i < nodes.size(); ++i) {
            auto where = "n" + std::to_string(i) + " " + k;
            auto row = nodes[i].rows.find(k);
            auto found = row == nodes[i].rows.end() ? std::nullopt : std::optional(row->second);
            for (auto& p : check(where, x, found)) {
                problems.push_back(std::move(p));
            }
            auto life = nodes[i].lives.find(k);
            auto shown = life == nodes[i].lives.end() ? 0 : life->second;
            if (shown != x.life) {
                problems.push_back(where + ": record life " + std::to_string(shown) +
                                   ", expected " + std::to_string(x.life));
            }
        }
        if (problems.size() > before) {
            // The key's history from the life before the last one, to tell why.
            std::string history = k + ": episodes reaching life " +
                                  std::to_string(x.life > 2 ? x.life - 2 : 0) + " or later:";
            for (const auto& e : episodes) {
                std::vector<std::string> ignored;
                auto effect = resolve(e, ignored);
                if (e.key == key &&
                    (e.start_life + 2 >= x.life || (effect && effect->life + 2 >= x.life))) {
                    history += "\n  " + to_string(e, effect);
                }
            }
            problems.push_back(history);
        }
    }
    return problems;
}

} // namespace

FaultOptions FaultOptions::from_env(std::chrono::seconds duration) {
    FaultOptions o;
    o.duration = duration;
    if (const char* seed = std::getenv("PEERLITE_FAULT_SEED"); seed && *seed) {
        o.seed = std::stoull(seed);
    } else {
        std::random_device rd;
        o.seed = (std::uint64_t{rd()} << 32) ^ rd();
    }
    if (const char* seconds = std::getenv("PEERLITE_FAULT_SECONDS"); seconds && *seconds) {
        o.duration = std::chrono::seconds(std::stoll(seconds));
    }
    return o;
}

namespace {

// The workload and the faults, for o.duration. Returns how many writes went to a node
// whose daemon was down.
int drive(const FaultOptions& o, Cluster& cluster, Workload& workload, Faults& faults) {
    std::mt19937_64 rng(o.seed + 1);
    auto pick = [&](int lo, int hi) {
        return std::uniform_int_distribution<int>(lo, hi)(rng);
    };
    int offline_writes = 0;
    auto start = SteadyClock::now();
    auto next_rotation = start + 1s;
    // The column is added node by node from a quarter into the run, 1-3 s apart, while
    // every node writes: the nodes without it meanwhile get rows they keep aside.
    std::vector<int> rollout(static_cast<std::size_t>(o.nodes));
    std::iota(rollout.begin(), rollout.end(), 0);
    std::shuffle(rollout.begin(), rollout.end(), rng);
    std::size_t rolled = 0;
    auto next_column = start + o.duration / 4;
    auto next_shrink = start;
    for (auto now = start; now < start + o.duration; now = SteadyClock::now()) {
        faults.tick(now);
        if (now >= next_rotation) {
            workload.rotate(pick(0, o.keys - 1));
            next_rotation = now + std::chrono::milliseconds(pick(500, 2500));
        }
        if (rolled < rollout.size() && now >= next_column && workload.add_column(rollout[rolled])) {
            ++rolled;
            next_column = now + std::chrono::milliseconds(pick(1000, 3000));
        }
        if (now >= next_shrink) {
            // An oversized name stays a while (the daemon may refuse it) before it is
            // made smaller, as its app would once it saw the refusal.
            workload.shrink_due();
            next_shrink = now + std::chrono::milliseconds(pick(200, 800));
        }
        int node = pick(0, o.nodes - 1);
        int key = workload.key(pick(0, o.keys - 1));
        // Now and then a big name, one that syncs or one too big to.
        if (pick(0, 39) == 0) {
            workload.write(node, key,
                           pick(0, 1) ? Workload::Kind::large : Workload::Kind::oversized);
            continue;
        }
        // Now and then a burst on one row, faster than the daemon picks writes up: several
        // writes reach the mesh as one change while it runs, not only after a restart.
        int burst = pick(0, 9) == 0 ? 3 : 1;
        for (int i = 0; i < burst; ++i) {
            bool down = cluster.state(node) == Cluster::State::down;
            offline_writes += workload.write(node, key) && down;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(pick(2, 15)));
    }
    return offline_writes;
}

// Once the faults are lifted: the rollout completed on every node and every oversized
// name shrunk, retried while a node is busy.
void finish_writes(const FaultOptions& o, Workload& workload, std::vector<std::string>& problems) {
    bool done = Mesh::eventually(
        [&] {
            bool all = workload.shrink_due();
            for (int i = 0; i < o.nodes; ++i) {
                all = workload.add_column(i) && all;
            }
            return all;
        },
        30s);
    if (!done) {
        problems.push_back("the column rollout or the shrinking of oversized names did not "
                           "finish within 30 s of lifting the faults");
    }
}

// Waits until every daemon runs and said ready (a restart whose port was taken is
// retried); a problem for each that does not.
void await_ready(Cluster& cluster, Faults& faults, std::vector<std::string>& problems) {
    auto ready = [&](int i) {
        return cluster.daemon(i).running() && cluster.daemon(i).ready(1, 0ms);
    };
    Mesh::eventually(
        [&] {
            faults.check_exits();
            for (int i = 0; i < cluster.size(); ++i) {
                if (!ready(i)) {
                    return false;
                }
            }
            return true;
        },
        30s);
    for (int i = 0; i < cluster.size(); ++i) {
        if (!ready(i)) {
            problems.push_back("n" + std::to_string(i) +
                               " did not start again: " + tail(cluster.daemon(i).log(), 15));
        }
    }
}

} // namespace

FaultReport run_faults(const FaultOptions& o) {
    Cluster cluster(o.nodes);
    Workload workload(cluster, o.keys, o.seed);
    Faults faults(cluster, o.seed ^ 0x9e3779b97f4a7c15ull);
    int offline_writes = drive(o, cluster, workload, faults);
    faults.lift_all(SteadyClock::now());
    FaultReport report;
    finish_writes(o, workload, report.problems);
    await_ready(cluster, faults, report.problems);
    auto quiet = SteadyClock::now();
    std::vector<NodeState> nodes;
    bool converged = Mesh::eventually(
        [&] {
            nodes.clear();
            for (int i = 0; i < o.nodes; ++i) {
                nodes.push_back(read_node(cluster.db_path(i)));
            }
            return same(nodes);
        },
        o.converge_timeout);
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - quiet);
    faults.check_exits();
    if (!converged) {
        report.problems.push_back("no convergence within " +
                                  std::to_string(o.converge_timeout.count()) +
                                  " s of lifting the faults (tables, version vectors or "
                                  "capture logs still differ)");
    }
    auto episodes = workload.episodes();
    for (auto* from : {&workload.problems, &faults.problems}) {
        report.problems.insert(report.problems.end(), from->begin(), from->end());
    }
    int exact = 0;
    auto found = check_all(nodes, episodes, workload.keys_used(), exact);
    report.problems.insert(report.problems.end(), found.begin(), found.end());
    int refused = 0;
    for (int i = 0; i < o.nodes; ++i) {
        workload.check_notes(i, cluster.db_path(i), report.problems);
        if (nodes.size() == static_cast<std::size_t>(o.nodes) &&
            nodes[static_cast<std::size_t>(i)].kept_aside != 0) {
            report.problems.push_back(
                "n" + std::to_string(i) + " still keeps " +
                std::to_string(nodes[static_cast<std::size_t>(i)].kept_aside) +
                " rows aside after every node added the column");
        }
        refused += count(cluster.daemon(i).log(), "over what one message may carry");
        // Each local write keeps the one stamp it was pushed under, across kills between
        // its push and its write into the file (docs/design/neighbour.md): otherwise a
        // peer holds a version of this node that this node never issued.
        if (cluster.whole_log(i).find("holds changes under this node's id") != std::string::npos) {
            report.problems.push_back("n" + std::to_string(i) +
                                      ": a peer holds changes under its id that it never "
                                      "wrote (a write stamped twice across a restart?)");
        }
    }
    for (auto& p : report.problems) {
        shorten_names(p);
    }
    std::ostringstream s;
    s << "seed " << o.seed << ": " << workload.writes << " writes (" << offline_writes
      << " to nodes whose daemon was down, " << workload.busy << " skipped as busy) in "
      << episodes.size() << " episodes; " << faults.summary() << "; converged "
      << (converged ? "in " + std::to_string(took.count()) + " ms" : "NOT") << "; "
      << (nodes.empty() ? 0 : nodes.front().dump.size()) << " rows at the end (of "
      << workload.keys_used() << " keys written), " << exact << " with a single possible name; "
      << workload.large << " large and " << workload.oversized << " oversized names (" << refused
      << " refusals logged), the column added on " << workload.columns_added << " nodes";
    report.summary = s.str();
    return report;
}

} // namespace peerlite::testing::fault
