// The node's ZeroMQ sockets: one ROUTER that every peer sends to, one DEALER per known
// peer to send with, and the ZAP handler that decides who may connect.
//
// Messages are one-way frames. Security is CURVE by default: the ROUTER is a CURVE
// server, each DEALER a CURVE client that knows its peer's public key, and the ZAP
// handler admits only clients whose public key is in the trusted set; a refused key is
// counted and logged. Plaintext exists only when asked for, and the log says so loudly.
//
// Thread safety: none. One thread owns the Hub and runs every call (ZeroMQ sockets must
// not be shared between threads).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <peerlite/crdt/node_id.hpp>
#include <peerlite/status.hpp>

namespace peerlite::transport {

// A CURVE keypair, each key 40 characters of Z85.
struct CurveKeys {
    std::string public_key;
    std::string secret_key;
};

Result<CurveKeys> generate_keys();
// The public key belonging to a secret key (both Z85).
Result<std::string> public_key_of(const std::string& secret_key);

struct HubOptions {
    // Where to listen; "tcp://127.0.0.1:*" picks a free port (see Hub::endpoint()).
    std::string listen = "tcp://127.0.0.1:*";
    // No encryption, no authentication. Only for tests and trusted networks.
    bool plaintext = false;
    CurveKeys keys;
    // Public keys (Z85) allowed to connect; our own key is always allowed.
    std::set<std::string> trusted;
    // Frames larger than this are dropped on receipt and counted.
    std::size_t max_message_bytes = 16 << 20;
    // Outgoing frames queued per peer before further sends are dropped (anti-entropy
    // repairs drops). More smooths bursts; fewer bounds memory on a slow peer.
    int send_queue = 1000;
};

struct Incoming {
    std::string bytes;
    std::string peer_key;     // the sender's CURVE public key (Z85); empty in plaintext
    std::string peer_address; // "127.0.0.1" etc., for logs
};

struct HubCounters {
    std::uint64_t refused_keys = 0; // connections the ZAP handler denied
    std::uint64_t oversized = 0;    // frames dropped for size
    std::uint64_t send_dropped = 0; // sends that found no room or no connection
};

class Hub {
public:
    static Result<std::unique_ptr<Hub>> open(HubOptions options);
    ~Hub();

    // The bound endpoint, with the real port ("tcp://127.0.0.1:41231").
    const std::string& endpoint() const;

    // Opens, or re-points, the outgoing connection to `peer`.
    Status connect(const crdt::NodeId& peer, const std::string& endpoint,
                   const std::string& public_key);
    void disconnect(const crdt::NodeId& peer);
    bool connected(const crdt::NodeId& peer) const;

    // Queues one frame for `peer` without blocking; false if it was dropped.
    bool send(const crdt::NodeId& peer, const std::string& bytes);

    // Waits up to `timeout` for traffic and returns the frames that arrived (at most
    // `max`). Also answers ZAP requests.
    std::vector<Incoming> poll(std::chrono::milliseconds timeout, std::size_t max = 256);

    const HubCounters& counters() const;

    struct Impl;

private:
    explicit Hub(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

} // namespace peerlite::transport
