#include "node_lock.hpp"

#include <fcntl.h>
#include <string>
#include <sys/file.h>
#include <unistd.h>

namespace peerlite::store {

Result<NodeLock> NodeLock::acquire(const std::string& database) {
    auto path = database + ".peerlite.lock";
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        return Status(Code::io_error, "cannot create the node lock " + path);
    }
    // flock locks belong to the open file description: a second open in this same
    // process conflicts too, as it must.
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
        char pid[32] = {};
        auto n = ::pread(fd, pid, sizeof pid - 1, 0);
        ::close(fd);
        return Status(Code::busy,
                      database + " is already open as a peerlite node by process " +
                          (n > 0 ? std::string(pid, static_cast<std::size_t>(n)) : "?") +
                          " (a peerlited, or an app embedding peerlite); one node per file, "
                          "since two would stamp changes under one node id");
    }
    auto me = std::to_string(::getpid());
    if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, me.data(), me.size(), 0) < 0) {
        // The pid is only for the message above; the lock itself holds.
    }
    return NodeLock(fd);
}

NodeLock& NodeLock::operator=(NodeLock&& other) noexcept {
    if (this != &other) {
        if (fd_ >= 0) {
            ::close(fd_);
        }
        fd_ = other.fd_;
        other.fd_ = -1;
    }
    return *this;
}

NodeLock::~NodeLock() {
    if (fd_ >= 0) {
        ::close(fd_);
    }
}

} // namespace peerlite::store
