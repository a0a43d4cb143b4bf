// Inspector::digests(): the content digests the store maintains, read for `peerlite diff
// --digests` (docs/design/digests.md).
#include "../store/digest.hpp"
#include "inspector_impl.hpp"

namespace peerlite::store {

Result<ContentDigests> Inspector::digests() {
    auto& s = *impl_;
    auto tx = ReadTx::begin(s.db.get());
    if (!tx) {
        return tx.status();
    }
    ContentDigests out;
    auto versions = read_versions(s.db.get(), s.nodes);
    if (!versions) {
        return versions.status();
    }
    out.versions = std::move(*versions);
    for (const auto& t : s.tables) {
        auto schema = s.schemas.find(t.name);
        if (schema == s.schemas.end()) {
            continue; // its definition cannot be read: verify() reports it
        }
        auto buckets = read_digest_buckets(s.db.get(), t.name);
        if (!buckets) {
            return buckets.status();
        }
        out.tables.push_back(
            summarize(t.name, schema->second.identity(), std::move(*buckets), true));
    }
    return out;
}

} // namespace peerlite::store
