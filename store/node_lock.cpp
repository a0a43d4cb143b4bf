#include "node_lock.hpp"

#include <cstring>
#include <fcntl.h>
#include <sstream>
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
                          (n > 0 ? std::string(pid, std::strcspn(pid, "\n")) : "?") +
                          " (a peerlited, or an app embedding peerlite); one node per file, "
                          "since two would stamp changes under one node id");
    }
    NodeLock lock(fd);
    std::string text(256, '\0');
    auto n = ::pread(fd, text.data(), text.size(), 0);
    text.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
    std::istringstream lines(text);
    std::string line;
    while (std::getline(lines, line)) {
        std::istringstream words(line);
        std::string tag;
        Record r;
        if (words >> tag >> r.node >> r.own_clock && tag == "peerlite-node") {
            lock.recorded_ = r;
        }
    }
    lock.write();
    return lock;
}

void NodeLock::record(Record record) {
    recorded_ = std::move(record);
    write();
}

void NodeLock::write() {
    auto text = std::to_string(::getpid()) + "\n";
    if (recorded_) {
        text +=
            "peerlite-node " + recorded_->node + " " + std::to_string(recorded_->own_clock) + "\n";
    }
    // Written in place, then cut: a crash between the two leaves a readable first part.
    if (::pwrite(fd_, text.data(), text.size(), 0) < 0 ||
        ::ftruncate(fd_, static_cast<off_t>(text.size())) != 0) {
        // Only the pid in the busy message and the rollback check depend on it.
    }
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
