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
#include <peerlite/store/change_set.hpp>

namespace peerlite::transport {

// Fixed values. A receiver refuses a higher version with Code::unsupported.
inline constexpr std::uint32_t kProtocolVersion = 1;

enum class MessageType : std::uint8_t {
    hello = 1,         // first contact: who I am, where I listen, whom I know
    members = 2,       // membership gossip
    push = 3,          // fresh changes
    sync_request = 4,  // anti-entropy: here is what I have
    sync_response = 5, // ... one part of what you lack
    ping = 6,          // failure detection: are you there? (direct or on behalf of another)
    ack = 7,           // yes
};

// A member as gossiped: identity, address, CURVE public key (Z85, empty in plaintext
// meshes) and an incarnation number that only its owner raises (to refute suspicion).
struct Member {
    crdt::NodeId id;
    std::string endpoint;
    std::string public_key;
    std::uint64_t incarnation = 0;
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
    store::ChangeSet changes;
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
    store::ChangeSet changes; // changes.complete is false while more parts follow
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

using Body = std::variant<Hello, Members, Push, SyncRequest, SyncResponse, Ping, Ack>;

struct Message {
    crdt::NodeId sender;
    Body body;
    MessageType type() const;
};

struct MessageLimits {
    std::size_t max_bytes = 16 << 20;
    std::size_t max_members = 10'000;
    store::DecodeLimits change_set;
};

std::string encode(const Message& message);
Result<Message> decode(std::string_view bytes, const MessageLimits& limits = {});

std::string_view type_name(MessageType type);

} // namespace peerlite::transport
