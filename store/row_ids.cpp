#include <chrono>

#include <boost/uuid/random_generator.hpp>

#include <peerlite/store/row_ids.hpp>

namespace peerlite::store {

std::array<std::uint8_t, 16> new_id() {
    thread_local boost::uuids::random_generator random;
    auto uuid = random();
    std::array<std::uint8_t, 16> id{};
    std::copy(uuid.begin(), uuid.end(), id.begin());
    auto ms = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                             std::chrono::system_clock::now().time_since_epoch())
                                             .count());
    for (int i = 0; i < 6; ++i) {
        id[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(ms >> (40 - 8 * i));
    }
    id[6] = static_cast<std::uint8_t>(0x70 | (id[6] & 0x0f)); // version 7
    id[8] = static_cast<std::uint8_t>(0x80 | (id[8] & 0x3f)); // RFC 4122 variant
    return id;
}

std::string new_id_text() {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (auto b : new_id()) {
        out += kHex[b >> 4];
        out += kHex[b & 15];
    }
    return out;
}

std::string_view id_sql() {
    return "printf('%012x', CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)) || "
           "'7' || substr(lower(hex(randomblob(10))), 2)";
}

} // namespace peerlite::store
