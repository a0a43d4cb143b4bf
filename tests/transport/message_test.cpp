// The message codec against hostile bytes (issue 20): what a frame can make the decoder
// allocate is bounded by its size.
#include <random>
#include <string>

#include <catch2/catch.hpp>

#include <peerlite/transport/message.hpp>

using namespace peerlite;

TEST_CASE("a frame whose array headers declare more elements than it has bytes is refused "
          "before anything is reserved for them") {
    // 12 nested arrays, each declaring 10,000 elements (the decode limit), in 60 bytes:
    // unpack alone would reserve 12 x 10,000 objects (about 2.9 MB) for it.
    std::string frame;
    for (int depth = 0; depth < 12; ++depth) {
        frame += "\xdc\x27\x10"; // array 16, 10,000 elements
    }
    frame += std::string(24, '\x01');
    auto decoded = transport::decode(frame);
    REQUIRE_FALSE(decoded.ok());
    CHECK(decoded.status().code() == Code::corruption);
    CHECK(decoded.status().message().find("declare more elements") != std::string::npos);

    // A map declares two elements per pair.
    std::string map = "\xde\x10\x00"; // map 16, 4,096 pairs
    map += std::string(4096, '\x01');
    auto as_map = transport::decode(map);
    REQUIRE_FALSE(as_map.ok());
    CHECK(as_map.status().message().find("declare more elements") != std::string::npos);
}

TEST_CASE("a real message passes the element count, whatever its size") {
    std::mt19937_64 rng(1);
    auto sender = crdt::NodeId::random(rng);
    wire::ChangeSet set;
    for (int i = 0; i < 500; ++i) {
        set.rows.push_back({"items",
                            {crdt::Value::text("k" + std::to_string(i))},
                            {crdt::CausalLength(1), {crdt::Hlc::from_parts(1, 0), sender}},
                            {},
                            {}});
    }
    auto bytes = transport::encode(transport::Message{sender, {}, transport::Push{set}});
    auto decoded = transport::decode(bytes);
    INFO(decoded.status().to_string());
    REQUIRE(decoded.ok());
    CHECK(std::get<transport::Push>(decoded->body).changes.rows.size() == 500);
}

TEST_CASE("a sender's salt and its members' salts survive the wire") {
    std::mt19937_64 rng(2);
    auto salt = crdt::NodeId::random(rng);
    auto sender = crdt::NodeId::derive("key-of-the-sender", salt);
    transport::Member self{sender, "tcp://127.0.0.1:1", "key-of-the-sender", 7, salt};
    transport::Member other{crdt::NodeId::random(rng), "tcp://127.0.0.1:2", "key-other", 9,
                            crdt::NodeId::random(rng)};
    auto decoded = transport::decode(
        transport::encode(transport::Message{sender, salt, transport::Hello{self, {other}}}));
    INFO(decoded.status().to_string());
    REQUIRE(decoded.ok());
    CHECK(decoded->sender == sender);
    CHECK(decoded->sender_salt == salt);
    const auto& hello = std::get<transport::Hello>(decoded->body);
    CHECK(hello.self == self);
    REQUIRE(hello.members.size() == 1);
    CHECK(hello.members[0] == other);
}
