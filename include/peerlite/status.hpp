// The one error type of peerlite: a closed set of codes plus a message for people.
//
// Callers branch on code(), never on the message text. Messages name what was wrong
// (the peer, table, column, key or file) so that a log line alone explains a failure.
// Exceptions thrown by libraries are caught at one boundary per module and turned into a
// Status there; peerlite's own interfaces do not throw.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace peerlite {

// Fixed values: they are written to logs and the admin protocol. Append only.
enum class Code : std::uint8_t {
    ok = 0,
    invalid_argument = 1, // the caller passed something that can never work
    corruption = 2,       // bytes that do not decode: truncated, wrong types, bad lengths
    clock_drift = 3,      // a remote clock further ahead of ours than the drift bound
    schema_mismatch = 4,  // a table's shape differs from what a change expects
    unknown_table = 5,
    unknown_column = 6,
    io_error = 7,           // the operating system or SQLite failed to read or write
    busy = 8,               // the resource is locked by someone else; retrying later may succeed
    not_found = 9,          // a lookup found nothing
    unsupported = 10,       // a protocol or format version this build does not speak
    limit_exceeded = 11,    // a configured bound (size, count, time) was passed
    identity_conflict = 12, // a node id already bound to another owner: a copied file
};

// Stable lower-case name of a code, e.g. "clock_drift".
std::string_view code_name(Code code);

class [[nodiscard]] Status {
public:
    // A default-constructed Status is ok.
    Status() = default;
    Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

    static Status success() { return {}; }

    bool ok() const { return code_ == Code::ok; }
    Code code() const { return code_; }
    const std::string& message() const { return message_; }

    // "clock_drift: peer 3f2a... is 120000 ms ahead ..." or "ok".
    std::string to_string() const;

private:
    Code code_ = Code::ok;
    std::string message_;
};

// Either a value or the Status explaining why there is none.
template <class T>
class [[nodiscard]] Result {
public:
    Result(T value) : state_(std::move(value)) {}
    // Precondition: !status.ok(); a Result never holds an ok Status without a value.
    Result(Status status) : state_(std::move(status)) {}

    bool ok() const { return std::holds_alternative<T>(state_); }
    explicit operator bool() const { return ok(); }

    // Precondition: ok().
    T& value() & { return std::get<T>(state_); }
    const T& value() const& { return std::get<T>(state_); }
    T&& value() && { return std::get<T>(std::move(state_)); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T&& operator*() && { return std::move(*this).value(); }

    // The error; Status::success() when a value is held.
    Status status() const { return ok() ? Status{} : std::get<Status>(state_); }

private:
    std::variant<T, Status> state_;
};

} // namespace peerlite
