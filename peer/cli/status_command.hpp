// `peerlite status`: asks a running peerlited, through its admin endpoint, for its members,
// their health and lag, its version vectors and counters.
#pragma once

#include <string>

namespace peerlite::cli {

struct StatusArgs {
    std::string config; // the daemon's config file: its [node] admin endpoint is used
    std::string node;   // or the admin endpoint itself: ipc://FILE, tcp://HOST:PORT, or FILE
    bool json = false;
    int timeout_ms = 3000;
};

// Prints the status; exit status 0 when the daemon answered, 1 when it did not, 2 on bad
// usage.
int status_command(const StatusArgs& args);

} // namespace peerlite::cli
