// peerlited's configuration file (TOML), one per node; every key is documented with its
// default and allowed range in docs/config.md. Loading is strict: an unknown key, a wrong
// type, a number outside its range or a bad value stops the daemon with an error naming
// the file, line and key (and, for a number, the value and the range).
//
// One daemon serves one or more databases ([[database]] blocks). Each database is its own
// mesh: it listens on its own address, has its own seeds and its own node id (kept in the
// database file), and is gossiped by its own engine thread. Keys, trust, gossip timing and
// limits are the daemon's and apply to every database.
#pragma once

#include <string>
#include <vector>

#include <peerlite/peer/node.hpp>
#include <peerlite/status.hpp>

namespace peerlite::peer {

struct DaemonConfig {
    std::string path; // the config file itself
    std::string name; // [node] name: how logs call this node
    std::string log_level = "info";
    // ZeroMQ endpoint of the admin socket `peerlite status` queries; "ipc://<file>" unless
    // the config says otherwise. Empty when the config turns it off.
    std::string admin;
    std::vector<NodeOptions> databases; // one engine each, paths resolved
};

Result<DaemonConfig> load_config(const std::string& path);

// Only the admin endpoint of a config (what `peerlite status --config` needs): reads no key
// file and checks nothing else, so an operator who may not read the node's secret key can
// still ask the daemon how it is doing.
Result<std::string> load_admin_endpoint(const std::string& path);

// Reads a CURVE secret key file (40 characters of Z85, surrounding whitespace ignored).
Result<transport::CurveKeys> read_key_file(const std::string& path);

} // namespace peerlite::peer
