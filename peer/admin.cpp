#include <atomic>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

#include <spdlog/spdlog.h>
#include <zmq.hpp>

#include <peerlite/peer/admin.hpp>

namespace peerlite::peer {

namespace {

using nlohmann::json;

json versions_json(const crdt::VersionVector& versions) {
    json out = json::object();
    for (const auto& [origin, ranges] : versions.origins()) {
        out[origin.to_string()] = {
            {"contiguous_through", ranges.contiguous_through().to_string()},
            {"highest", ranges.highest().to_string()},
            {"ranges", ranges.ranges().size()},
        };
    }
    return out;
}

// What a peer lacked at its last exchange, of what this node held at that moment: origins
// it was missing changes of, and how far (in the origins' own wall-clock milliseconds) its
// copy trailed. Dated, since it may have caught up since.
json lag_json(const PeerStatus& peer) {
    if (!peer.versions || !peer.lacked) {
        return {{"known", false}};
    }
    std::uint64_t behind_ms = 0;
    for (const auto& [origin, ranges] : peer.lacked->origins()) {
        auto theirs = peer.versions->of(origin).contiguous_through().physical_ms();
        auto newest = ranges.highest().physical_ms();
        behind_ms = std::max(behind_ms, newest > theirs ? newest - theirs : 0);
    }
    return {{"known", true},
            {"as_of_ms_ago", peer.versions_age.count()},
            {"up_to_date", peer.lacked->empty()},
            {"origins_lacking", peer.lacked->origins().size()},
            {"behind_ms", behind_ms},
            {"sent_since", peer.lacked_sent}};
}

json counters_json(const NodeCounters& c) {
    return {{"messages_sent", c.messages_sent},
            {"messages_received", c.messages_received},
            {"bytes_sent", c.bytes_sent},
            {"bytes_received", c.bytes_received},
            {"messages_rejected", c.messages_rejected},
            {"rejected_by_reason", c.rejected_by_reason},
            {"column_changes_received", c.column_changes_received},
            {"column_changes_applied", c.column_changes_won},
            {"rows_applied", c.rows_applied},
            {"local_changes_captured", c.captured},
            {"pushes_sent", c.pushes_sent},
            {"syncs_started", c.syncs_started},
            {"pulls_retried", c.pulls_retried},
            {"rows_too_large", c.rows_too_large},
            {"local_writes_refused", c.local_writes_refused},
            {"digests_sent", c.digests_sent},
            {"repairs_started", c.repairs_started},
            {"column_changes_repaired", c.column_changes_repaired},
            {"foreign_own_changes", c.foreign_own_changes},
            {"connections_refused", c.connections_refused}};
}

json database_json(const Node& node) {
    json peers = json::array();
    for (const auto& p : node.peers()) {
        peers.push_back({{"node_id", p.member.id.to_string()},
                         {"endpoint", p.member.endpoint},
                         {"state", std::string(state_name(p.state))},
                         {"last_heard_ms_ago", p.since_heard.count()},
                         {"lag", lag_json(p)}});
    }
    json stopped = json::array();
    for (const auto& t : node.stopped_tables()) {
        stopped.push_back({{"table", t.table}, {"reason", t.reason}});
    }
    return {{"path", node.database()},
            {"node_id", node.id().to_string()},
            {"endpoint", node.endpoint()},
            {"public_key", node.public_key()},
            {"id_salt", node.id_salt().to_string()},
            {"versions", versions_json(node.versions())},
            {"counters", counters_json(node.counters())},
            {"members", peers},
            {"stopped_tables", stopped}};
}

} // namespace

nlohmann::json digests_json(const std::string& path, const store::ContentDigests& digests) {
    json versions = json::object();
    for (const auto& [origin, ranges] : digests.versions.origins()) {
        json list = json::array();
        for (const auto& r : ranges.ranges()) {
            list.push_back({r.first.raw(), r.last.raw()});
        }
        versions[origin.to_string()] = list;
    }
    json tables = json::array();
    for (const auto& t : digests.tables) {
        tables.push_back(
            {{"table", t.table}, {"schema", t.schema}, {"total", t.total}, {"buckets", t.buckets}});
    }
    return {{"path", path}, {"versions", versions}, {"tables", tables}};
}

std::string status_json(const std::string& name, const std::vector<const Node*>& nodes,
                        std::chrono::seconds uptime) {
    json dbs = json::array();
    for (const auto* node : nodes) {
        dbs.push_back(database_json(*node));
    }
    json doc = {{"format", 1},
                {"name", name},
                {"pid", getpid()},
                {"uptime_s", uptime.count()},
                {"databases", dbs}};
    return doc.dump(2);
}

struct AdminServer::Impl {
    std::string endpoint;
    std::string name;
    std::vector<const Node*> nodes;
    zmq::context_t context{1};
    zmq::socket_t socket{context, zmq::socket_type::rep};
    std::atomic<bool> running{true};
    std::thread thread;
    std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();

    std::string answer(const std::string& request) const {
        if (request == "status") {
            return status_json(name, nodes,
                               std::chrono::duration_cast<std::chrono::seconds>(
                                   std::chrono::steady_clock::now() - started));
        }
        if (request == "digests") {
            // Read from the files (read-only, beside the engines): one snapshot each.
            json dbs = json::array();
            for (const auto* node : nodes) {
                auto inspector = store::Inspector::open(node->database());
                auto digests = inspector ? (*inspector)->digests()
                                         : Result<store::ContentDigests>(inspector.status());
                if (!digests) {
                    return json{{"error", node->database() + ": " + digests.status().message()}}
                        .dump();
                }
                dbs.push_back(digests_json(node->database(), *digests));
            }
            return json{{"format", 1}, {"databases", dbs}}.dump();
        }
        return json{
            {"error", "unknown request '" + request + "' (this daemon answers: status, digests)"}}
            .dump();
    }

    void loop() {
        zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
        while (running) {
            try {
                zmq::poll(&item, 1, std::chrono::milliseconds(100));
                if (!(item.revents & ZMQ_POLLIN)) {
                    continue;
                }
                zmq::message_t request;
                if (!socket.recv(request, zmq::recv_flags::dontwait)) {
                    continue;
                }
                auto reply = answer(request.to_string());
                socket.send(zmq::buffer(reply), zmq::send_flags::dontwait);
            } catch (const zmq::error_t& e) {
                spdlog::warn("admin endpoint {}: {}", endpoint, e.what());
            }
        }
    }
};

AdminServer::AdminServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

AdminServer::~AdminServer() {
    impl_->running = false;
    impl_->thread.join();
    impl_->socket.close();
    if (impl_->endpoint.starts_with("ipc://")) {
        std::error_code ignored;
        std::filesystem::remove(impl_->endpoint.substr(6), ignored);
    }
}

Result<std::unique_ptr<AdminServer>> AdminServer::start(const std::string& endpoint,
                                                        const std::string& name,
                                                        std::vector<const Node*> nodes) {
    auto impl = std::make_unique<Impl>();
    impl->endpoint = endpoint;
    impl->name = name;
    impl->nodes = std::move(nodes);
    try {
        impl->socket.set(zmq::sockopt::linger, 0);
        // Status names members and keys: only this user may connect to the socket file.
        auto old = umask(077);
        impl->socket.bind(endpoint);
        umask(old);
    } catch (const zmq::error_t& e) {
        return Status(Code::io_error, "admin endpoint " + endpoint + ": " + e.what());
    }
    auto* raw = impl.get();
    raw->thread = std::thread([raw] { raw->loop(); });
    return std::unique_ptr<AdminServer>(new AdminServer(std::move(impl)));
}

Result<std::string> query_admin(const std::string& endpoint, const std::string& request,
                                std::chrono::milliseconds timeout) {
    if (endpoint.starts_with("ipc://") && !std::filesystem::exists(endpoint.substr(6))) {
        return Status(Code::io_error, "no admin socket at " + endpoint.substr(6) +
                                          " (is peerlited running with this config?)");
    }
    try {
        zmq::context_t context{1};
        zmq::socket_t socket{context, zmq::socket_type::req};
        socket.set(zmq::sockopt::linger, 0);
        socket.connect(endpoint);
        socket.send(zmq::buffer(request), zmq::send_flags::none);
        zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
        zmq::poll(&item, 1, timeout);
        zmq::message_t reply;
        if (!(item.revents & ZMQ_POLLIN) || !socket.recv(reply, zmq::recv_flags::dontwait)) {
            return Status(Code::io_error, "no answer from " + endpoint + " within " +
                                              std::to_string(timeout.count()) +
                                              " ms (is peerlited running?)");
        }
        return reply.to_string();
    } catch (const zmq::error_t& e) {
        return Status(Code::io_error, endpoint + ": " + e.what());
    }
}

} // namespace peerlite::peer
