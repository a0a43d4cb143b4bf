#include "pickup_journal.hpp"

#include <cerrno>
#include <chrono>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>
#include <utility>

#include <peerlite/wire/binary_codec.hpp>

#include "../schema/capture_sql.hpp"
#include "../sql/sqlite.hpp"

namespace peerlite::store {

namespace {

std::string read_all(int fd) {
    std::string text;
    char buf[65536];
    off_t at = 0;
    for (;;) {
        auto n = ::pread(fd, buf, sizeof buf, at);
        if (n <= 0) {
            return text;
        }
        text.append(buf, static_cast<std::size_t>(n));
        at += n;
    }
}

Status write_all(int fd, const std::string& text, const std::string& what) {
    std::size_t done = 0;
    while (done < text.size()) {
        auto n = ::write(fd, text.data() + done, text.size() - done);
        if (n < 0) {
            return Status(Code::io_error, "cannot write the pick-up journal (" + what + ")");
        }
        done += static_cast<std::size_t>(n);
    }
    return Status::success();
}

// Reads the journal's header and every complete round; a frame cut short ends it.
void parse(const std::string& text, PickupJournal::Contents& out) {
    wire::ByteReader frames(text);
    std::string_view frame;
    if (!frames.bytes(frame)) {
        return;
    }
    {
        wire::ByteReader header(frame);
        std::string_view node;
        std::uint64_t base = 0;
        if (!header.bytes(node) || !header.varint(base)) {
            return;
        }
        out.node = std::string(node);
        out.base = base;
        out.started = true;
    }
    while (frames.bytes(frame)) {
        wire::ByteReader in(frame);
        PickupJournal::Round round;
        std::uint64_t n = 0;
        if (!in.varint(round.end_clock) || !in.varint(n) || n > frame.size()) {
            break;
        }
        bool ok = true;
        for (std::uint64_t i = 0; i < n && ok; ++i) {
            std::string_view table;
            PickupJournal::Through through;
            ok = in.bytes(table) && in.zigzag(through.seq) && in.zigzag(through.at_ms);
            through.table = std::string(table);
            round.through.push_back(std::move(through));
        }
        std::string_view rows, write_backs;
        if (!ok || !in.bytes(rows) || !in.bytes(write_backs)) {
            break;
        }
        round.rows = std::string(rows);
        round.write_backs = std::string(write_backs);
        out.rounds.push_back(std::move(round));
    }
}

std::string journal_path(const std::string& database) {
    return database + ".peerlite.journal";
}

} // namespace

Result<PickupJournal> PickupJournal::open(const std::string& database) {
    auto path = journal_path(database);
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        return Status(Code::io_error, "cannot open the pick-up journal " + path);
    }
    PickupJournal journal(fd);
    parse(read_all(fd), journal.contents_);
    return journal;
}

PickupJournal::Hold::Hold(PickupJournal* journal) : journal_(journal) {
    if (journal_ == nullptr || journal_->held_) {
        journal_ = nullptr; // already held by an enclosing Hold, or no journal
        return;
    }
    // Waits for readers (a few statements long); EINTR retried.
    while (::flock(journal_->fd_, LOCK_EX) != 0 && errno == EINTR) {
    }
    journal_->held_ = true;
}

PickupJournal::Hold::~Hold() {
    if (journal_ != nullptr) {
        ::flock(journal_->fd_, LOCK_UN);
        journal_->held_ = false;
    }
}

PickupJournal::Hold PickupJournal::hold() {
    return Hold(this);
}

Result<PickupJournal::View> PickupJournal::read_held(const std::string& database, bool create,
                                                     std::chrono::milliseconds wait) {
    auto path = journal_path(database);
    View view;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | (create ? O_CREAT : 0), 0644);
    if (fd < 0 && errno == ENOENT && !create) {
        return view; // no store ever ran on the file here
    }
    if (fd < 0) {
        return Status(Code::io_error, "cannot open the pick-up journal " + path);
    }
    view.fd_ = fd;
    // A store holds the lock for one pick-up round (milliseconds), unless its process is
    // stopped (SIGSTOP, a debugger) in the middle of one: then give up rather than hang.
    auto deadline = std::chrono::steady_clock::now() + wait;
    while (::flock(fd, LOCK_SH | LOCK_NB) != 0) {
        if (errno != EWOULDBLOCK && errno != EINTR) {
            return Status(Code::io_error, "cannot lock the pick-up journal " + path);
        }
        if (std::chrono::steady_clock::now() >= deadline) {
            return Status(Code::busy, "the daemon serving " + database +
                                          " holds its pick-up journal " + path +
                                          " (is it stopped?); try again");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    parse(read_all(fd), view.contents);
    return view;
}

wire::DecodeLimits PickupJournal::decode_limits() {
    wire::DecodeLimits limits;
    limits.max_bytes = SIZE_MAX;
    limits.max_rows = SIZE_MAX;
    limits.max_columns = SIZE_MAX;
    limits.max_value_bytes = SIZE_MAX;
    limits.max_nodes = SIZE_MAX;
    return limits;
}

PickupJournal::View::View(View&& other) noexcept
    : contents(std::move(other.contents)), fd_(std::exchange(other.fd_, -1)) {}

PickupJournal::View::~View() {
    if (fd_ >= 0) {
        ::close(fd_); // releases the shared lock
    }
}

PickupJournal::PickupJournal(PickupJournal&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), contents_(std::move(other.contents_)) {}

PickupJournal& PickupJournal::operator=(PickupJournal&& other) noexcept {
    if (this != &other) {
        if (fd_ >= 0) {
            ::close(fd_);
        }
        fd_ = std::exchange(other.fd_, -1);
        contents_ = std::move(other.contents_);
    }
    return *this;
}

PickupJournal::~PickupJournal() {
    if (fd_ >= 0) {
        ::close(fd_);
    }
}

Result<std::vector<PickupJournal::Round>>
PickupJournal::Contents::rounds_for(sqlite3* db, const std::string& of) const {
    if (!started || of != node || rounds.empty()) {
        return std::vector<Round>{};
    }
    auto clock = sql::Stmt::prepare(db, "SELECT value FROM _peerlite_meta WHERE key = 'clock'");
    if (!clock) {
        return clock.status();
    }
    sql::Reset reset_clock(*clock);
    if (clock->step() != SQLITE_ROW || static_cast<std::uint64_t>(clock->column_int(0)) < base) {
        return std::vector<Round>{}; // a file from before the journal started
    }
    for (const auto& through : rounds.back().through) {
        auto entry = sql::Stmt::prepare(db, "SELECT at FROM " +
                                                sql::quote(schema::log_table(through.table)) +
                                                " WHERE seq = ?1");
        if (!entry) {
            return std::vector<Round>{}; // the table is gone
        }
        sql::Reset reset(*entry);
        entry->bind_int(1, through.seq);
        if (entry->step() != SQLITE_ROW ||
            log_time_ms(sqlite3_column_double(entry->get(), 0)) != through.at_ms) {
            return std::vector<Round>{}; // the writes they stamped are not in this file
        }
    }
    return rounds;
}

std::vector<PickupJournal::Round> PickupJournal::rounds_for(const std::string& node) const {
    if (!contents_.started || contents_.node != node) {
        return {};
    }
    return contents_.rounds;
}

Status PickupJournal::append(const Round& round) {
    if (!contents_.started) {
        return Status(Code::io_error, "the pick-up journal was not started");
    }
    wire::ByteWriter payload;
    payload.varint(round.end_clock);
    payload.varint(round.through.size());
    for (const auto& through : round.through) {
        payload.bytes(through.table);
        payload.zigzag(through.seq);
        payload.zigzag(through.at_ms);
    }
    payload.bytes(round.rows);
    payload.bytes(round.write_backs);
    wire::ByteWriter frame;
    frame.bytes(payload.data());
    if (auto st = write_all(fd_, frame.data(), "a round"); !st.ok()) {
        contents_.started =
            false; // a partial frame ends the journal: nothing more may be relied on
        return st;
    }
    contents_.rounds.push_back(round);
    return Status::success();
}

Status PickupJournal::restart(const std::string& node, std::uint64_t base) {
    if (::ftruncate(fd_, 0) != 0) {
        contents_.started = false;
        return Status(Code::io_error, "cannot empty the pick-up journal");
    }
    contents_ = Contents{node, base, true, {}};
    wire::ByteWriter header;
    header.bytes(node);
    header.varint(base);
    wire::ByteWriter frame;
    frame.bytes(header.data());
    return write_all(fd_, frame.data(), "its header");
}

} // namespace peerlite::store
