#include "node_index.hpp"

namespace peerlite::store {

Status NodeIndex::load(sqlite3* db) {
    ids_.clear();
    index_.clear();
    auto select = sql::Stmt::prepare(db, "SELECT idx, id FROM _peerlite_nodes ORDER BY idx");
    if (!select) {
        return select.status();
    }
    sql::Reset reset(*select);
    while (select->step() == SQLITE_ROW) {
        auto idx = static_cast<std::uint64_t>(select->column_int(0));
        auto blob = select->column_blob(1);
        auto id = crdt::NodeId::from_bytes(std::span<const std::uint8_t>(
            reinterpret_cast<const std::uint8_t*>(blob.data()), blob.size()));
        if (!id || idx != ids_.size() + 1) {
            return Status(Code::corruption, "_peerlite_nodes row " + std::to_string(idx) +
                                                " is not a 16-byte node id in sequence");
        }
        ids_.push_back(*id);
        index_.emplace(*id, idx);
    }
    auto insert = sql::Stmt::prepare(db, "INSERT INTO _peerlite_nodes(idx, id) VALUES (?1, ?2)");
    if (!insert) {
        return insert.status();
    }
    insert_ = std::move(*insert);
    return Status::success();
}

Result<std::uint64_t> NodeIndex::index_of(const crdt::NodeId& id) {
    if (auto it = index_.find(id); it != index_.end()) {
        return it->second;
    }
    auto idx = ids_.size() + 1;
    auto bytes = id.bytes();
    insert_.bind_int(1, static_cast<std::int64_t>(idx));
    insert_.bind_blob(2, bytes.data(), bytes.size());
    if (auto s = insert_.run("recording node " + id.to_string()); !s.ok()) {
        return s;
    }
    ids_.push_back(id);
    index_.emplace(id, idx);
    return idx;
}

Result<crdt::NodeId> NodeIndex::id_at(std::uint64_t index) const {
    if (index == 0 || index > ids_.size()) {
        return Status(Code::corruption, "metadata names node #" + std::to_string(index) +
                                            ", which _peerlite_nodes does not hold");
    }
    return ids_[index - 1];
}

void NodeIndex::rollback_to(std::size_t size) {
    while (ids_.size() > size) {
        index_.erase(ids_.back());
        ids_.pop_back();
    }
}

} // namespace peerlite::store
