// The seams of peerlited-testing; see test_seams.hpp.
#include "test_seams.hpp"

#include <charconv>
#include <cstdlib>
#include <fstream>

#include <spdlog/spdlog.h>

#include "node_testing.hpp"

namespace peerlite::peer::test_seams {

Status apply_clock_offset(store::StoreOptions& options) {
    const char* text = std::getenv("PEERLITE_TEST_CLOCK_OFFSET_MS");
    if (text == nullptr || *text == '\0') {
        return Status::success();
    }
    std::int64_t offset = 0;
    std::string_view s(text);
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), offset);
    if (ec != std::errc() || end != s.data() + s.size()) {
        return Status(Code::invalid_argument,
                      "PEERLITE_TEST_CLOCK_OFFSET_MS is not an integer: '" + std::string(s) + "'");
    }
    spdlog::warn("test seam: wall clock offset by {} ms (PEERLITE_TEST_CLOCK_OFFSET_MS)", offset);
    options.wall = [offset] {
        return std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch()) +
               std::chrono::milliseconds(offset);
    };
    return Status::success();
}

std::optional<BlockFile> BlockFile::from_env() {
    const char* path = std::getenv("PEERLITE_TEST_BLOCK_FILE");
    if (path == nullptr || *path == '\0') {
        return std::nullopt;
    }
    spdlog::warn("test seam: peers listed in {} are blocked (PEERLITE_TEST_BLOCK_FILE)", path);
    return BlockFile(path);
}

void BlockFile::apply(const std::vector<std::unique_ptr<Node>>& nodes) {
    std::set<crdt::NodeId> wanted;
    std::ifstream in(path_);
    for (std::string line; std::getline(in, line);) {
        if (line.empty() || line.front() == '#') {
            continue;
        }
        auto id = crdt::NodeId::parse(line);
        if (!id) {
            spdlog::warn("test seam: {}: not a node id: '{}'", path_, line);
            continue;
        }
        wanted.insert(*id);
    }
    if (wanted == blocked_) {
        return;
    }
    for (const auto& node : nodes) {
        for (const auto& id : blocked_) {
            if (!wanted.count(id)) {
                NodeTesting::block(*node, id, false);
            }
        }
        for (const auto& id : wanted) {
            NodeTesting::block(*node, id, true);
        }
    }
    spdlog::info("test seam: {} peers blocked", wanted.size());
    blocked_ = std::move(wanted);
}

} // namespace peerlite::peer::test_seams
