// The daemon's admin endpoint: a ZeroMQ REP socket (an IPC socket file by default, mode
// 600) through which `peerlite status` asks a running peerlited how it is doing.
//
// Protocol: one request frame, one reply frame, both UTF-8.
//   request "status" -> a JSON document (format in docs/cli.md, "peerlite status"):
//     the node's name, pid and uptime, and per database: its node id, endpoint, clock,
//     version vector, counters (sent, received, applied, rejected by reason), and per
//     member: state, silence, and what it lacked at the last exchange.
//   request "digests" -> {"format": 1, "databases": [digests_json() of each database]}:
//     what `peerlite diff --digests` compares between two live nodes.
//   anything else    -> {"error": "..."}.
// The endpoint only reads; it never changes the node.
#pragma once

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include <peerlite/inspect/inspector.hpp>
#include <peerlite/peer/node.hpp>
#include <peerlite/status.hpp>

namespace peerlite::peer {

// The status document for `nodes` (borrowed for the call).
std::string status_json(const std::string& name, const std::vector<const Node*>& nodes,
                        std::chrono::seconds uptime);

// One database's content digests as JSON: {"path", "versions": {origin: [[first, last],
// ...]} (raw clocks, exact), "tables": [{"table", "schema", "total", "buckets": [...]}]}.
// Integers are unsigned 64-bit.
nlohmann::json digests_json(const std::string& path, const store::ContentDigests& digests);

class AdminServer {
public:
    // Binds `endpoint` and answers on a thread of its own until destroyed. `nodes` are
    // borrowed: they must outlive the server.
    static Result<std::unique_ptr<AdminServer>>
    start(const std::string& endpoint, const std::string& name, std::vector<const Node*> nodes);
    ~AdminServer(); // stops answering, closes the socket and removes an IPC socket file

    struct Impl;

private:
    explicit AdminServer(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// Sends `request` to the admin endpoint and waits up to `timeout` for the reply.
// Code::io_error when no daemon answers in time.
Result<std::string> query_admin(const std::string& endpoint, const std::string& request,
                                std::chrono::milliseconds timeout);

} // namespace peerlite::peer
