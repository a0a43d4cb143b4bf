// peerlited's configuration file (TOML), one per node; every key is documented with its
// default in docs/config.md. Loading is strict: an unknown key, a wrong type or a bad
// value stops the daemon with an error naming the file, line and key.
#pragma once

#include <string>

#include <peerlite/peer/node.hpp>
#include <peerlite/status.hpp>

namespace peerlite::peer {

struct DaemonConfig {
    std::string path; // the config file itself
    std::string name; // [node] name: how logs call this node
    std::string log_level = "info";
    NodeOptions node; // everything the engine needs, paths resolved
};

Result<DaemonConfig> load_config(const std::string& path);

// Reads a CURVE secret key file (40 characters of Z85, surrounding whitespace ignored).
Result<transport::CurveKeys> read_key_file(const std::string& path);

} // namespace peerlite::peer
