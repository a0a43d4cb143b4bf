// Node identity: a 128-bit id (a random UUID) that names one replica forever.
//
// Every change carries the id of the node that made it, and the id breaks ties between
// equal clocks, so two live nodes must never share one: a copied database must get a new
// id before it syncs (peerlite's snapshot tool does that). Ids are ordered bytewise, so
// every node sorts them the same way.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <string_view>

#include <boost/uuid/random_generator.hpp>
#include <boost/uuid/uuid.hpp>

#include <peerlite/status.hpp>

namespace peerlite::crdt {

class NodeId {
public:
    static constexpr std::size_t kSize = 16;
    using Bytes = std::array<std::uint8_t, kSize>;

    // The nil id (all zero bytes). Never a real node's id.
    NodeId() = default;

    static NodeId from_bytes(const Bytes& bytes);
    // Fails with Code::corruption unless exactly 16 bytes are given.
    static Result<NodeId> from_bytes(std::span<const std::uint8_t> bytes);
    // Accepts the canonical 36-character form ("0b9e...-...") in either case.
    static Result<NodeId> parse(std::string_view text);
    // A version-4 random id drawn from `rng`; the caller picks the entropy source
    // (std::random_device in production, a seeded engine in tests).
    template <class Rng>
    static NodeId random(Rng& rng) {
        boost::uuids::basic_random_generator<Rng> generate(rng);
        NodeId id;
        id.uuid_ = generate();
        return id;
    }

    // The id `owner` (a node's public key) gives the file with random `salt`: a
    // name-based UUID (SHA-1, version 5) of both. Whoever checks the owner's key and the
    // salt checks the id: another key cannot make it, so no one can speak as a node, or
    // take the id of one not heard from yet, without its secret key. The salt gives each
    // file its own id when one key runs several (a daemon with several databases).
    static NodeId derive(std::string_view owner, const NodeId& salt);

    Bytes bytes() const;
    // The same 16 bytes in place, for code that reads them per row (content digests).
    const std::uint8_t* data() const { return uuid_.begin(); }
    bool is_nil() const { return uuid_.is_nil(); }
    // Canonical lower-case 36-character form.
    std::string to_string() const;
    // The first 8 hex digits: enough to tell nodes apart in logs and tables.
    std::string short_string() const;

    friend bool operator==(const NodeId& a, const NodeId& b) { return a.uuid_ == b.uuid_; }
    friend std::strong_ordering operator<=>(const NodeId& a, const NodeId& b);

private:
    boost::uuids::uuid uuid_{};
};

} // namespace peerlite::crdt
