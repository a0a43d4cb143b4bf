// One node per database file. The store keeps its clock and version vector in memory and
// is their only writer: a second Store on the same file (another daemon, an app embedding
// peerlite beside a daemon, a tool) would stamp changes under the same node id without
// either knowing, and replicas would diverge. Store::open takes an exclusive lock on
// "<database>.peerlite.lock" for its lifetime; a second open fails with Code::busy.
#pragma once

#include <string>

#include <peerlite/status.hpp>

namespace peerlite::store {

class NodeLock {
public:
    // Code::busy naming the holder's pid when another Store holds the file, in this
    // process or another. The lock file holds the pid and is left in place on release.
    static Result<NodeLock> acquire(const std::string& database);
    NodeLock(NodeLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
    NodeLock& operator=(NodeLock&& other) noexcept;
    ~NodeLock();

private:
    explicit NodeLock(int fd) : fd_(fd) {}
    int fd_ = -1;
};

} // namespace peerlite::store
