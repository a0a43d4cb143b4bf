// Operations on a synced database that run beside its daemon: an operator's resolution
// of a conflict, and a copy that seeds a new node.
//
// Neither opens a Store. A Store keeps its node's clock and version vector in memory, so
// a second Store on a file a daemon serves would stamp writes under the same node id
// without the daemon knowing: the two could issue one stamp twice. These functions
// write the way any application does (through a plain connection, captured by the
// triggers) and leave the stamping to the daemon, or to the next Store opened on the file.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include <peerlite/crdt/value.hpp>
#include <peerlite/status.hpp>

namespace peerlite::store {

// An operator's choice for one cell.
struct ResolveRequest {
    std::string table;
    std::vector<crdt::Value> key; // in key column order, as stored (see Inspector::parse_key)
    std::string column;
    crdt::Value value;
    std::string by; // who decided: recorded with the resolved conflicts
};

struct ResolveResult {
    bool written = false;           // false: the cell already held the value
    std::size_t conflicts_resolved; // conflicts of that cell marked resolved
};

// In one transaction on the file at `path` (which must exist: Code::not_found; and be a
// peerlite database: Code::invalid_argument): writes `request.value` to the cell with an
// UPDATE that the capture triggers log like any application write, and marks every
// unresolved conflict of the cell resolved by `request.by`. The daemon (or the next Store
// opened on the file) stamps the write with a clock above everything that node has issued
// or merged, so under last-writer-wins it wins on every node that has not seen a later
// write to the cell. Refused with Code::invalid_argument when it could not win
// everywhere: counter columns (every node's increments are kept; there is no single value
// to choose), and max/min columns when the value ranks below the current winner.
// Code::unknown_table, Code::unknown_column, and Code::not_found when the row does not
// exist (deleted: an update cannot bring it back; re-insert it instead).
Result<ResolveResult> resolve(const std::string& path, const ResolveRequest& request);

// An operator's settlement of a row set aside because it breaks a constraint once merged
// (Inspector::set_aside(), docs/design/constraints.md).
struct SettleRequest {
    enum class Action {
        drop,           // delete the row everywhere
        put_back,       // write it back into the table, with `set` changed
        replace_holder, // delete the rows holding its UNIQUE values, then put it back
    };
    std::string table;
    std::vector<crdt::Value> key;
    Action action = Action::put_back;
    std::vector<std::pair<std::string, crdt::Value>> set; // column, new value
};

struct SettleResult {
    std::vector<std::vector<crdt::Value>> deleted; // holders deleted (replace_holder)
};

// In one transaction on the file at `path`, writes the settlement the way an app would
// (captured by the triggers, stamped by the daemon or the next Store, so it syncs like any
// write): a logged delete of the row (drop), or an INSERT of the row as merged with `set`
// applied (put_back), after DELETEs of the rows holding its UNIQUE values
// (replace_holder). Code::not_found when no such row is set aside; Code::invalid_argument
// when the row put back would still break a constraint here (the message is SQLite's) or
// `set` names an unknown column.
Result<SettleResult> settle(const std::string& path, const SettleRequest& request);

// Writes a consistent copy of the database at `path`, sync metadata included, to `out`
// (which must not exist: Code::invalid_argument), while a daemon and applications keep
// writing (SQLite's VACUUM INTO from a read-only connection). The copy holds no
// unstamped capture log: stamping those writes in both files would count a counter
// increment twice. A copy that caught some is made again once the daemon has stamped
// them; if nothing stamps them within about a second (no daemon running), a Store opened
// here stamps them first. The copy carries no node identity: a Store opened on it draws a
// new node id, keeps the source's versions as the source's (nothing is sent twice or
// lost), and continues its clock above everything the source had seen.
Status snapshot(const std::string& path, const std::string& out);

// Forgets who runs the file (StoreOptions::owner), so that the next node opened on it
// records its own: for a node whose key pair was replaced on purpose. Refused with
// Code::busy while a node has the file open. Never the way to seed a node from a copy:
// the copy would still share the original's node id (use snapshot()).
Status forget_owner(const std::string& path);

} // namespace peerlite::store
