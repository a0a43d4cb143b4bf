// One node per database file. The store keeps its clock and version vector in memory and
// is their only writer: a second Store on the same file (another daemon, an app embedding
// peerlite beside a daemon, a tool) would stamp changes under the same node id without
// either knowing, and replicas would diverge. Store::open takes an exclusive lock on
// "<database>.peerlite.lock" for its lifetime; a second open fails with Code::busy.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <peerlite/status.hpp>

namespace peerlite::store {

//
// The lock file also remembers, outside the database, the node it was last held for and
// the highest clock of that node's own changes the file held at its last commit. A file
// that comes back holding less (a backup put back, a restore) is told apart by it
// (Store::rolled_back()). Format, one line each: the holder's pid, then
// "peerlite-node <node id> <own clock>".
class NodeLock {
public:
    struct Record {
        std::string node;            // node id as text
        std::uint64_t own_clock = 0; // raw HLC
    };

    // Code::busy naming the holder's pid when another Store holds the file, in this
    // process or another. The lock file is left in place on release.
    static Result<NodeLock> acquire(const std::string& database);
    // What the file's last holder recorded (nothing for a new or unreadable lock file).
    const std::optional<Record>& recorded() const { return recorded_; }
    // Records `record`; a failure to write it only loses the rollback check.
    void record(Record record);
    NodeLock(NodeLock&& other) noexcept : fd_(other.fd_), recorded_(std::move(other.recorded_)) {
        other.fd_ = -1;
    }
    NodeLock& operator=(NodeLock&& other) noexcept;
    ~NodeLock();

private:
    explicit NodeLock(int fd) : fd_(fd) {}
    void write();
    int fd_ = -1;
    std::optional<Record> recorded_;
};

} // namespace peerlite::store
