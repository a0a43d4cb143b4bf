// The oracle of the fault-injection test: what a history of writes made through plain
// SQLite connections on several peerlite nodes must leave in table
// items(id, name LWW, qty counter, best max) once the mesh has converged, whatever order,
// loss, duplication or delay the faults caused. Pure: no SQLite, no processes.
//
// The unit the mesh sees is not a single write but an *episode*: the writes one node made
// to one key between two pickups by its store. A pickup folds the node's capture log
// into the row record reading the row's values at pickup time (docs/metadata-format.md,
// "The capture log"), so an episode reaches the mesh as at most one change per row life,
// carrying the values the row had at the end of the episode. The harness sees where
// episodes begin: a write to a key whose capture-log entries are gone starts a new one
// (the store's apply picks up local writes first, in the same transaction, so no remote
// change can touch the row inside an episode).
//
// What the rules then give (README, "How nodes converge"; crdt/merge.hpp):
//   * the row's final causal length is the greatest any episode produced; the row exists
//     iff it is odd;
//   * qty, a counter, is the sum of every contribution made in that final life: the qty
//     an insert wrote plus every increment, on every node;
//   * best, max, is the greatest value an episode of the final life left in the row;
//   * name, last-writer-wins, is one of the names an episode of the final life left, and
//     one that no other such episode overwrote knowingly: an episode that began with name
//     X visible was stamped after X, so X cannot be the winner. Which of the remaining
//     (concurrent) names wins depends on clocks the harness cannot see; when only one
//     remains, the check is exact.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace peerlite::testing::fault {

enum class Op { insert, update, remove };

// One write, with the row as the writer left it.
struct Write {
    Op op = Op::update;
    bool sets_name = false, sets_qty = false, sets_best = false; // updates only
    std::int64_t qty = 0; // insert: the qty inserted; update: the increment
    std::string name;     // row values after the write (insert, update)
    std::int64_t best = 0;
};

// The writes one node made to one key between two pickups.
struct Episode {
    int node = 0;
    int key = 0;
    std::uint64_t start_life = 0;           // causal length in the node's record at the start
    std::optional<std::string> name_before; // the visible name at the start, if the row existed
    std::vector<Write> writes;
};

// What an episode left in the mesh once picked up.
struct Effect {
    int node = 0;
    std::uint64_t life = 0; // the causal length it moved the row to, or wrote in
    bool name_stamped = false;
    std::string name;
    std::optional<std::string> observed; // a name of the same life it knowingly replaced
    std::int64_t qty = 0;                // its counter contribution in `life`
    bool best_stamped = false;
    std::int64_t best = 0;
    bool exists() const { return life % 2 == 1; }
};

// The effect of one episode, or nothing (e.g. a row inserted and deleted again before any
// pickup). Appends to `problems` if the writes contradict the start life (a row written
// while its record said it did not exist).
std::optional<Effect> resolve(const Episode& episode, std::vector<std::string>& problems);

// A row as a node shows it.
struct Row {
    std::optional<std::string> name;
    std::optional<std::int64_t> qty, best;
    friend bool operator==(const Row&, const Row&) = default;
};

// What every node must show for one key.
struct Expected {
    std::uint64_t life = 0;
    bool present = false;
    std::int64_t qty = 0;
    std::optional<std::int64_t> best;
    std::set<std::string> names;   // the names that may have won
    std::set<std::string> stamped; // every name the final life holds a write of
};

// The expectation for one key from the effects of all its episodes.
Expected expect(const std::vector<Effect>& effects, std::vector<std::string>& problems);

// One line per episode and its effect, for failure messages.
std::string to_string(const Episode& episode, const std::optional<Effect>& effect);

// Problems with `row` (nothing if the key is absent) against `expected`, each naming
// `where`.
std::vector<std::string> check(const std::string& where, const Expected& expected,
                               const std::optional<Row>& row);

} // namespace peerlite::testing::fault
