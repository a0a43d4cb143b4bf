#include <peerlite/status.hpp>

namespace peerlite {

std::string_view code_name(Code code) {
    switch (code) {
    case Code::ok: return "ok";
    case Code::invalid_argument: return "invalid_argument";
    case Code::corruption: return "corruption";
    case Code::clock_drift: return "clock_drift";
    case Code::schema_mismatch: return "schema_mismatch";
    case Code::unknown_table: return "unknown_table";
    case Code::unknown_column: return "unknown_column";
    case Code::io_error: return "io_error";
    case Code::busy: return "busy";
    case Code::not_found: return "not_found";
    case Code::unsupported: return "unsupported";
    case Code::limit_exceeded: return "limit_exceeded";
    case Code::identity_conflict: return "identity_conflict";
    }
    return "unknown_code";
}

std::string Status::to_string() const {
    if (ok()) {
        return "ok";
    }
    std::string out(code_name(code_));
    out += ": ";
    out += message_;
    return out;
}

} // namespace peerlite
