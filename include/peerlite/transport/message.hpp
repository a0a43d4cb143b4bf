// The gossip protocol's messages and their msgpack encoding (docs/protocol.md).
//
// Every message is one ZeroMQ frame: [version, type, sender, body]. Messages are one-way;
// a "reply" is a new message to the sender's own listening socket. decode() checks the
// version first, then bounds and type-checks every field: nothing from a message that
// fails is used.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <peerlite/crdt/node_id.hpp>
#include <peerlite/crdt/version_vector.hpp>
#include <peerlite/status.hpp>
#include <peerlite/wire/change_set.hpp>

namespace peerlite::transport {

// Fixed values. A receiver refuses a higher version with Code::unsupported.
// Version 2: senders and member entries carry the salt their id is derived with.
inline constexpr std::uint32_t kProtocolVersion = 2;

enum class MessageType : std::uint8_t {
    hello = 1,         // first contact: who I am, where I listen, whom I know
    members = 2,       // membership gossip
    push = 3,          // fresh changes
    sync_request = 4,  // anti-entropy: here is what I have
    sync_response = 5, // ... one part of what you lack
    ping = 6,          // failure detection: are you there? (direct or on behalf of another)
    ack = 7,           // yes
    digests = 8,       // content check: per-table digests, when version vectors agree
    repair = 9,        // ... the full state of the rows in buckets whose digests differ
};

// A member as gossiped: identity, address, CURVE public key (Z85, empty in plaintext
// meshes) and an incarnation number that only its owner raises (to refute suspicion).
struct Member {
    crdt::NodeId id;
    std::string endpoint;
    std::string public_key;
    std::uint64_t incarnation = 0;
    // What the id is derived from with the key (crdt::NodeId::derive); nil in plaintext
    // meshes. A receiver refuses an entry whose id is not the one key and salt derive.
    crdt::NodeId id_salt;
    friend bool operator==(const Member&, const Member&) = default;
};

struct Hello {
    Member self;
    std::vector<Member> members;
};
struct Members {
    std::vector<Member> members;
};
struct Push {
    wire::ChangeSet changes;
    // Whether receivers pass what is new to them on (epidemic push); false when the
    // sender already sent it to every live member itself.
    bool forward = true;
};
struct SyncRequest {
    std::uint64_t session = 0;
    crdt::VersionVector have;
};
struct SyncResponse {
    std::uint64_t session = 0;
    wire::ChangeSet changes; // changes.complete is false while more parts follow
    crdt::VersionVector sender_has;
};
struct Ping {
    std::uint64_t seq = 0;
    crdt::NodeId on_behalf_of; // nil for a direct ping; else ack goes to that node too
    crdt::NodeId target;       // the node being probed (this receiver for direct pings)
};
struct Ack {
    std::uint64_t seq = 0;
    crdt::NodeId target; // whose liveness this confirms
    std::uint64_t incarnation = 0;
};

// Sent by a node that holds exactly `at` (its version vector): the receiver compares only
// if it holds the same, so changes still on their way are never mistaken for divergence.
// Tables are listed with their totals; a table whose total differs is sent back with
// its buckets (one level down), and a bucket that differs is repaired.
struct Digests {
    crdt::VersionVector at;
    std::vector<wire::TableDigest> tables;
};
// The sender's full state of `table`'s rows in `buckets` (one part of possibly several;
// rows.covers is empty). `reply`: send yours of the same buckets back.
struct Repair {
    std::string table;
    std::vector<std::uint32_t> buckets;
    wire::ChangeSet rows;
    bool reply = false;
};

using Body =
    std::variant<Hello, Members, Push, SyncRequest, SyncResponse, Ping, Ack, Digests, Repair>;

struct Message {
    crdt::NodeId sender;
    // The sender's id salt: a receiver refuses a message whose sender is not the id the
    // connection's key and this salt derive (nil in plaintext meshes).
    crdt::NodeId sender_salt;
    Body body;
    MessageType type() const;
};

struct MessageLimits {
    std::size_t max_bytes = 16 << 20;
    std::size_t max_members = 10'000;
    wire::DecodeLimits change_set;
};

std::string encode(const Message& message);
Result<Message> decode(std::string_view bytes, const MessageLimits& limits = {});

std::string_view type_name(MessageType type);

} // namespace peerlite::transport
