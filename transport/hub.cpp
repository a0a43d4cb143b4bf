#include <spdlog/spdlog.h>
#include <zmq.hpp>

#include <peerlite/transport/hub.hpp>

namespace peerlite::transport {

namespace {
constexpr const char* kZapEndpoint = "inproc://zeromq.zap.01";

std::string z85(const std::uint8_t* key) {
    char text[41];
    zmq_z85_encode(text, key, 32);
    return std::string(text, 40);
}
} // namespace

Result<CurveKeys> generate_keys() {
    char pub[41], sec[41];
    if (zmq_curve_keypair(pub, sec) != 0) {
        return Status(Code::unsupported, "libzmq cannot make CURVE keys (built without CURVE?)");
    }
    return CurveKeys{std::string(pub, 40), std::string(sec, 40)};
}

Result<std::string> public_key_of(const std::string& secret_key) {
    char pub[41];
    if (secret_key.size() != 40 || zmq_curve_public(pub, secret_key.c_str()) != 0) {
        return Status(Code::invalid_argument,
                      "not a CURVE secret key (40 characters of Z85 expected)");
    }
    return std::string(pub, 40);
}

struct Hub::Impl {
    HubOptions options;
    zmq::context_t context;
    zmq::socket_t router{context, zmq::socket_type::router};
    zmq::socket_t zap{context, zmq::socket_type::rep};
    std::map<crdt::NodeId, zmq::socket_t> dealers;
    std::map<crdt::NodeId, std::string> dealer_endpoints;
    std::string endpoint;
    HubCounters counters;

    void answer_zap();
};

Hub::Hub(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Hub::~Hub() {
    // Sockets close before the context (members are destroyed in reverse order, but the
    // dealers map is declared after the context too); nothing lingers.
    for (auto& [id, socket] : impl_->dealers) {
        socket.set(zmq::sockopt::linger, 0);
        socket.close();
    }
    impl_->router.set(zmq::sockopt::linger, 0);
    impl_->router.close();
    impl_->zap.set(zmq::sockopt::linger, 0);
    impl_->zap.close();
}

Result<std::unique_ptr<Hub>> Hub::open(HubOptions options) {
    auto impl = std::make_unique<Impl>();
    impl->options = std::move(options);
    auto& o = impl->options;
    try {
        if (!o.plaintext) {
            if (o.keys.public_key.size() != 40 || o.keys.secret_key.size() != 40) {
                return Status(Code::invalid_argument,
                              "CURVE keys are missing (40 characters of Z85 each)");
            }
            o.trusted.insert(o.keys.public_key);
            impl->zap.bind(kZapEndpoint);
            impl->router.set(zmq::sockopt::zap_domain, "peerlite");
            impl->router.set(zmq::sockopt::curve_server, 1);
            impl->router.set(zmq::sockopt::curve_secretkey, o.keys.secret_key);
        } else {
            spdlog::warn("PLAINTEXT MODE: traffic is neither encrypted nor authenticated; any "
                         "process that can reach {} can read and write this node's data",
                         o.listen);
        }
        // A hard bound well above the configured limit: oversized frames below it are
        // received, counted and logged; above it the sender is disconnected.
        impl->router.set(zmq::sockopt::maxmsgsize,
                         static_cast<std::int64_t>(o.max_message_bytes) * 2 + 1024);
        impl->router.set(zmq::sockopt::linger, 0);
        impl->router.bind(o.listen);
        impl->endpoint = impl->router.get(zmq::sockopt::last_endpoint);
    } catch (const zmq::error_t& e) {
        return Status(Code::io_error, "cannot listen on " + o.listen + ": " + e.what());
    }
    return std::unique_ptr<Hub>(new Hub(std::move(impl)));
}

const std::string& Hub::endpoint() const {
    return impl_->endpoint;
}
const HubCounters& Hub::counters() const {
    return impl_->counters;
}

Status Hub::connect(const crdt::NodeId& peer, const std::string& endpoint,
                    const std::string& public_key) {
    auto& s = *impl_;
    if (auto it = s.dealer_endpoints.find(peer);
        it != s.dealer_endpoints.end() && it->second == endpoint) {
        return Status::success();
    }
    disconnect(peer);
    try {
        zmq::socket_t dealer(s.context, zmq::socket_type::dealer);
        dealer.set(zmq::sockopt::linger, 0);
        dealer.set(zmq::sockopt::immediate, 1); // queue nothing for a peer that is not there
        dealer.set(zmq::sockopt::sndhwm, s.options.send_queue);
        if (!s.options.plaintext) {
            if (public_key.size() != 40) {
                return Status(Code::invalid_argument, "peer " + peer.to_string() + " at " +
                                                          endpoint + " has no CURVE public key");
            }
            dealer.set(zmq::sockopt::curve_serverkey, public_key);
            dealer.set(zmq::sockopt::curve_publickey, s.options.keys.public_key);
            dealer.set(zmq::sockopt::curve_secretkey, s.options.keys.secret_key);
        }
        dealer.connect(endpoint);
        s.dealers.emplace(peer, std::move(dealer));
        s.dealer_endpoints[peer] = endpoint;
    } catch (const zmq::error_t& e) {
        return Status(Code::invalid_argument, "cannot connect to " + endpoint + ": " + e.what());
    }
    return Status::success();
}

void Hub::disconnect(const crdt::NodeId& peer) {
    auto& s = *impl_;
    if (auto it = s.dealers.find(peer); it != s.dealers.end()) {
        it->second.close();
        s.dealers.erase(it);
    }
    s.dealer_endpoints.erase(peer);
}

bool Hub::connected(const crdt::NodeId& peer) const {
    return impl_->dealers.count(peer) == 1;
}

bool Hub::send(const crdt::NodeId& peer, const std::string& bytes) {
    auto& s = *impl_;
    auto it = s.dealers.find(peer);
    if (it == s.dealers.end()) {
        ++s.counters.send_dropped;
        return false;
    }
    try {
        auto sent = it->second.send(zmq::buffer(bytes), zmq::send_flags::dontwait);
        if (!sent) {
            ++s.counters.send_dropped; // "would block" is flow control, not an error
            return false;
        }
    } catch (const zmq::error_t&) {
        ++s.counters.send_dropped;
        return false;
    }
    return true;
}

void Hub::Impl::answer_zap() {
    // ZAP request: version, request id, domain, address, identity, mechanism, credentials.
    std::vector<zmq::message_t> frames;
    while (true) {
        zmq::message_t frame;
        if (!zap.recv(frame, zmq::recv_flags::dontwait)) {
            break;
        }
        bool more = frame.more();
        frames.push_back(std::move(frame));
        if (!more) {
            break;
        }
    }
    if (frames.size() < 6) {
        return;
    }
    std::string mechanism = frames[5].to_string();
    std::string key;
    if (mechanism == "CURVE" && frames.size() >= 7 && frames[6].size() == 32) {
        key = z85(static_cast<const std::uint8_t*>(frames[6].data()));
    }
    bool allowed = !key.empty() && options.trusted.count(key) == 1;
    if (!allowed) {
        ++counters.refused_keys;
        spdlog::warn("refused a connection from {} with {} key {}: not in the trusted keys",
                     frames[3].to_string(), mechanism, key.empty() ? "(none)" : key);
    }
    std::array<std::string, 6> reply = {"1.0",
                                        frames[1].to_string(),
                                        allowed ? "200" : "400",
                                        allowed ? "OK" : "untrusted key",
                                        allowed ? key : "",
                                        ""};
    for (std::size_t i = 0; i < reply.size(); ++i) {
        zap.send(zmq::buffer(reply[i]),
                 i + 1 < reply.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
}

std::vector<Incoming> Hub::poll(std::chrono::milliseconds timeout, std::size_t max) {
    auto& s = *impl_;
    std::vector<Incoming> out;
    std::vector<zmq::pollitem_t> items = {{s.router.handle(), 0, ZMQ_POLLIN, 0}};
    if (!s.options.plaintext) {
        items.push_back({s.zap.handle(), 0, ZMQ_POLLIN, 0});
    }
    try {
        zmq::poll(items.data(), items.size(), timeout);
        if (items.size() > 1 && (items[1].revents & ZMQ_POLLIN)) {
            s.answer_zap();
        }
        while (out.size() < max) {
            zmq::message_t routing;
            if (!s.router.recv(routing, zmq::recv_flags::dontwait)) {
                break;
            }
            std::vector<zmq::message_t> parts;
            bool more = routing.more();
            while (more) {
                zmq::message_t part;
                if (!s.router.recv(part, zmq::recv_flags::dontwait)) {
                    break;
                }
                more = part.more();
                parts.push_back(std::move(part));
            }
            if (parts.size() != 1) {
                continue; // peerlite frames are single-part; anything else is not ours
            }
            auto& payload = parts.front();
            Incoming in;
            // The C call, not cppzmq's gets(): a property that is absent (User-Id without
            // ZAP, i.e. in plaintext) is no error here, it is an empty key.
            const char* user = zmq_msg_gets(payload.handle(), "User-Id");
            in.peer_key = user ? user : "";
            const char* address = zmq_msg_gets(payload.handle(), "Peer-Address");
            in.peer_address = address ? address : "?";
            if (payload.size() > s.options.max_message_bytes) {
                ++s.counters.oversized;
                spdlog::warn("dropped a {}-byte message from {} (limit {} bytes)", payload.size(),
                             in.peer_address, s.options.max_message_bytes);
                continue;
            }
            in.bytes.assign(static_cast<const char*>(payload.data()), payload.size());
            out.push_back(std::move(in));
        }
    } catch (const zmq::error_t& e) {
        spdlog::error("socket error while polling: {}", e.what());
    }
    return out;
}

} // namespace peerlite::transport
