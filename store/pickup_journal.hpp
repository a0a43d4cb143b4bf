// What each pick-up stamped since the store last committed (docs/design/neighbour.md). A
// pick-up stamps log entries into row records kept in memory, and the daemon pushes them
// at once, but writes them into the file only later. The journal keeps each round's
// result (the records it changed, whole, with their stamps, and the write-backs they
// owe the user table) beside the file, written before anything of the round is pushed,
// so that a store reopened after a crash takes those records back as they were pushed
// instead of computing them again from user rows that may have changed since.
//
// File <database>.peerlite.journal, binary, a sequence of frames, each a varint length
// and that many bytes (wire/binary_codec.hpp):
//   header := node id (text) , base clock (varint: the clock the file held at the start)
//   round  := end clock (varint) , n (varint) ,
//             n x (table (bytes) , last log seq (zigzag) , its time in ms (zigzag)) ,
//             rows (bytes: an encoded change set) , write-backs (bytes: an encoded change set)
// A frame cut short by a crash ends the journal: that round was not complete, so nothing
// it stamped was pushed. A journal whose header names another node or clock describes
// another state of the file (a restore, a copy) and is ignored.
//
// Another process reading the journal (peerlite's inspection, the fault test's oracle)
// must see whole rounds that match the file: the store holds an exclusive flock(2) on the
// journal from the start of a pick-up's read transaction to its append, and from the
// commit of a transaction that writes picked-up rows into the file to the journal's
// restart; a reader holds it shared (read_held()).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <sqlite3.h>

#include <peerlite/status.hpp>
#include <peerlite/wire/change_set.hpp>

namespace peerlite::store {

// A capture-log entry's `at` (julianday() of the write) in milliseconds since 1970.
inline std::int64_t log_time_ms(double julianday) {
    return static_cast<std::int64_t>((julianday - 2440587.5) * 86'400'000.0);
}

class PickupJournal {
public:
    // The last capture-log entry of a table a round picked up. Its time tells it apart
    // from another write that took the same seq in another state of the file (seqs are
    // reused once a log is emptied).
    struct Through {
        std::string table;
        std::int64_t seq = 0;
        std::int64_t at_ms = 0; // the entry's `at`, as log_time_ms() reads it
    };
    struct Round {
        std::uint64_t end_clock = 0; // raw HLC after the round
        std::vector<Through> through;
        std::string rows;        // encoded wire::ChangeSet: each changed record, whole
        std::string write_backs; // encoded wire::ChangeSet: each changed row's pending write-backs
    };
    struct Contents {
        std::string node;
        std::uint64_t base = 0;
        bool started = false; // a header was read (or written)
        std::vector<Round> rounds;
        // The rounds, if the journal speaks for the file `db` holds now (call inside a
        // transaction): started for node `of`, at a clock the file has reached, and every
        // capture-log entry the rounds picked up still in the file. A file restored from
        // a backup, or copied, that lacks those writes is another state: nothing.
        Result<std::vector<Round>> rounds_for(sqlite3* db, const std::string& of) const;
    };

    // Excludes readers (and other holders) while it lives; nested holds are no-ops.
    class Hold {
    public:
        Hold(Hold&& other) noexcept : journal_(std::exchange(other.journal_, nullptr)) {}
        Hold& operator=(Hold&&) = delete;
        ~Hold();

    private:
        friend class PickupJournal;
        explicit Hold(PickupJournal* journal);
        PickupJournal* journal_;
    };

    // The journal as read under a shared lock, which is held while this lives: no round
    // is added and the journal is not emptied meanwhile.
    class View {
    public:
        View(View&& other) noexcept;
        View& operator=(View&&) = delete;
        ~View();
        Contents contents;

    private:
        friend class PickupJournal;
        View() = default;
        int fd_ = -1;
    };

    // Opens (creating) the journal beside `database` and reads the rounds it holds.
    static Result<PickupJournal> open(const std::string& database);
    // Reads the journal beside `database` from another process. `create`: make an empty
    // one if there is none, so that a store starting meanwhile waits for the returned
    // lock; otherwise no journal reads as empty, and nothing is held.
    // Code::busy if a store holds it for longer than `wait` (its process stopped mid-round).
    static Result<View> read_held(const std::string& database, bool create,
                                  std::chrono::milliseconds wait = std::chrono::seconds(2));
    // Limits for decoding a round's change sets: written by a store, so trusted, and
    // bounded by StoreOptions::max_picked_up_rows.
    static wire::DecodeLimits decode_limits();
    PickupJournal(PickupJournal&& other) noexcept;
    PickupJournal& operator=(PickupJournal&& other) noexcept;
    ~PickupJournal();

    // The complete rounds read at open (or appended since), if it was started for `node`.
    // For the file this store has open; Contents::rounds_for() checks another.
    const Contents& contents() const { return contents_; }
    std::vector<Round> rounds_for(const std::string& node) const;
    // Appends one round in a single write. A failure means it must not be relied on.
    Status append(const Round& round);
    // Empties the journal and starts it for `node` at `base` (after a commit).
    Status restart(const std::string& node, std::uint64_t base);
    // The exclusive lock, for a pick-up round or a commit followed by restart().
    [[nodiscard]] Hold hold();

private:
    explicit PickupJournal(int fd) : fd_(fd) {}
    int fd_ = -1;
    bool held_ = false;
    Contents contents_;
};

} // namespace peerlite::store
