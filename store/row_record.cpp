#include "row_record.hpp"

#include <algorithm>

#include <peerlite/wire/binary_codec.hpp>

namespace peerlite::store {

CellEntry* RowRecord::cell(int column) {
    auto it = std::lower_bound(cells.begin(), cells.end(), column,
                               [](const CellEntry& e, int c) { return e.column < c; });
    return it != cells.end() && it->column == column ? &*it : nullptr;
}

std::int64_t RowRecord::counter_sum(int column) const {
    std::int64_t sum = 0;
    for (const auto& c : counters) {
        if (c.column == column && c.write.life == life.life) {
            sum = crdt::counter_add(sum, c.write.total);
        }
    }
    return sum;
}

crdt::Hlc RowRecord::max_clock() const {
    auto m = life.stamp.hlc;
    for (const auto& c : cells) {
        m = std::max(m, c.write.stamp.hlc);
    }
    for (const auto& c : counters) {
        m = std::max(m, c.write.stamp.hlc);
    }
    return m;
}

namespace {
std::uint64_t back(crdt::Hlc vmax, crdt::Hlc h) {
    return vmax.raw() - h.raw();
}
} // namespace

Result<std::string> encode_record(const RowRecord& r, NodeIndex& nodes) {
    wire::ByteWriter w;
    w.u8(1);
    auto vmax = r.max_clock();
    auto node = [&](const crdt::NodeId& id) -> Status {
        auto idx = nodes.index_of(id);
        if (!idx) {
            return idx.status();
        }
        w.varint(*idx);
        return Status::success();
    };
    w.varint(r.life.life.value());
    w.varint(back(vmax, r.life.stamp.hlc));
    if (auto s = node(r.life.stamp.node); !s.ok()) {
        return s;
    }
    w.varint(r.cells.size());
    for (const auto& c : r.cells) {
        bool own_life = c.write.life != r.life.life;
        bool own_node = c.write.stamp.node != r.life.stamp.node;
        w.varint(static_cast<std::uint64_t>(c.column) << 3 | (c.has_value ? 4u : 0u) |
                 (own_life ? 2u : 0u) | (own_node ? 1u : 0u));
        if (own_life) {
            w.varint(c.write.life.value());
        }
        w.varint(back(vmax, c.write.stamp.hlc));
        if (own_node) {
            if (auto s = node(c.write.stamp.node); !s.ok()) {
                return s;
            }
        }
        auto replaced = c.write.replaced;
        w.varint(replaced == crdt::Hlc() || replaced > c.write.stamp.hlc
                     ? 0
                     : 1 + (c.write.stamp.hlc.raw() - replaced.raw()));
        if (c.has_value) {
            w.value(c.write.value);
        }
    }
    w.varint(r.counters.size());
    for (const auto& c : r.counters) {
        w.varint(static_cast<std::uint64_t>(c.column));
        if (auto s = node(c.write.stamp.node); !s.ok()) {
            return s;
        }
        w.varint(c.write.life.value());
        w.varint(back(vmax, c.write.stamp.hlc));
        w.zigzag(c.write.total);
    }
    return w.take();
}

Result<RowRecord> decode_record(std::string_view bytes, crdt::Hlc vmax, const NodeIndex& nodes) {
    auto corrupt = [](const std::string& what) {
        return Status(Code::corruption, "row record: " + what);
    };
    auto clock = [&](std::uint64_t b) {
        return crdt::Hlc::from_raw(vmax.raw() - b);
    };
    wire::ByteReader in(bytes);
    RowRecord r;
    std::uint8_t format;
    std::uint64_t life, life_back, node_idx, n;
    if (!in.u8(format) || format != 1) {
        return corrupt("unknown format byte");
    }
    if (!in.varint(life) || !in.varint(life_back) || !in.varint(node_idx)) {
        return corrupt("truncated header");
    }
    auto life_node = nodes.id_at(node_idx);
    if (!life_node) {
        return life_node.status();
    }
    r.life = crdt::RowWrite{crdt::CausalLength(life), crdt::Stamp{clock(life_back), *life_node}};
    if (!in.varint(n) || n > bytes.size()) {
        return corrupt("bad cell count");
    }
    r.cells.resize(n);
    for (auto& c : r.cells) {
        std::uint64_t head, cell_life = life, b, replaced;
        if (!in.varint(head) || ((head & 2) && !in.varint(cell_life)) || !in.varint(b)) {
            return corrupt("truncated cell");
        }
        c.column = static_cast<int>(head >> 3);
        c.has_value = (head & 4) != 0;
        c.write.life = crdt::CausalLength(cell_life);
        c.write.stamp = crdt::Stamp{clock(b), *life_node};
        if (head & 1) {
            if (!in.varint(node_idx)) {
                return corrupt("truncated cell");
            }
            auto id = nodes.id_at(node_idx);
            if (!id) {
                return id.status();
            }
            c.write.stamp.node = *id;
        }
        if (!in.varint(replaced)) {
            return corrupt("truncated cell");
        }
        if (replaced != 0) {
            c.write.replaced = crdt::Hlc::from_raw(c.write.stamp.hlc.raw() - (replaced - 1));
        }
        if (c.has_value && !in.value(c.write.value)) {
            return corrupt("truncated value");
        }
    }
    if (!in.varint(n) || n > bytes.size()) {
        return corrupt("bad counter count");
    }
    r.counters.resize(n);
    for (auto& c : r.counters) {
        std::uint64_t col, counter_life, b;
        if (!in.varint(col) || !in.varint(node_idx) || !in.varint(counter_life) || !in.varint(b) ||
            !in.zigzag(c.write.total)) {
            return corrupt("truncated counter");
        }
        auto id = nodes.id_at(node_idx);
        if (!id) {
            return id.status();
        }
        c.column = static_cast<int>(col);
        c.write.life = crdt::CausalLength(counter_life);
        c.write.stamp = crdt::Stamp{clock(b), *id};
    }
    if (!in.at_end()) {
        return corrupt("trailing bytes");
    }
    return r;
}

RowRecord
record_from_change(const wire::RowChange& change,
                   const std::function<std::optional<ColumnRef>(std::string_view)>& column) {
    RowRecord r;
    r.life = change.life;
    for (const auto& c : change.cells) {
        if (auto col = column(c.column)) {
            r.cells.push_back(
                {col->index, c.write, col->rule != crdt::MergeRule::last_writer_wins});
        }
    }
    for (const auto& c : change.counters) {
        if (auto col = column(c.column)) {
            r.counters.push_back({col->index, c.write});
        }
    }
    std::sort(r.cells.begin(), r.cells.end(),
              [](const auto& a, const auto& b) { return a.column < b.column; });
    std::sort(r.counters.begin(), r.counters.end(), [](const auto& a, const auto& b) {
        return std::tie(a.column, a.write.stamp.node) < std::tie(b.column, b.write.stamp.node);
    });
    return r;
}

} // namespace peerlite::store
