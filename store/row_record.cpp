#include "row_record.hpp"

#include <algorithm>

#include "bytes.hpp"

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
std::int64_t delta(crdt::Hlc a, crdt::Hlc b) {
    return static_cast<std::int64_t>(a.raw() - b.raw()); // wraps; undone by add()
}
crdt::Hlc add(crdt::Hlc base, std::int64_t d) {
    return crdt::Hlc::from_raw(base.raw() + static_cast<std::uint64_t>(d));
}
} // namespace

Result<std::string> encode_record(const RowRecord& r, NodeTable& nodes) {
    ByteWriter w;
    w.u8(1);
    auto base = r.life.stamp.hlc;
    auto node = [&](const crdt::NodeId& id) -> Status {
        auto idx = nodes.index_of(id);
        if (!idx) {
            return idx.status();
        }
        w.varint(*idx);
        return Status::success();
    };
    w.varint(r.life.life.value());
    w.varint(base.raw());
    if (auto s = node(r.life.stamp.node); !s.ok()) {
        return s;
    }
    w.varint(r.cells.size());
    for (const auto& c : r.cells) {
        w.varint(static_cast<std::uint64_t>(c.column) << 1 | (c.has_value ? 1 : 0));
        w.varint(c.write.life.value());
        w.zigzag(delta(c.write.stamp.hlc, base));
        if (auto s = node(c.write.stamp.node); !s.ok()) {
            return s;
        }
        if (c.write.replaced == crdt::Hlc()) {
            w.varint(0);
        } else {
            auto d = delta(c.write.stamp.hlc, c.write.replaced);
            w.varint(1 +
                     ((static_cast<std::uint64_t>(d) << 1) ^ static_cast<std::uint64_t>(d >> 63)));
        }
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
        w.zigzag(delta(c.write.stamp.hlc, base));
        w.zigzag(c.write.total);
    }
    return w.take();
}

Result<RowRecord> decode_record(std::string_view bytes, const NodeTable& nodes) {
    auto corrupt = [](const std::string& what) {
        return Status(Code::corruption, "row record: " + what);
    };
    ByteReader in(bytes);
    RowRecord r;
    std::uint8_t format;
    std::uint64_t life, base_raw, node_idx, n;
    if (!in.u8(format) || format != 1) {
        return corrupt("unknown format byte");
    }
    if (!in.varint(life) || !in.varint(base_raw) || !in.varint(node_idx)) {
        return corrupt("truncated header");
    }
    auto base = crdt::Hlc::from_raw(base_raw);
    auto life_node = nodes.id_at(node_idx);
    if (!life_node) {
        return life_node.status();
    }
    r.life = crdt::RowWrite{crdt::CausalLength(life), crdt::Stamp{base, *life_node}};
    if (!in.varint(n) || n > bytes.size()) {
        return corrupt("bad cell count");
    }
    r.cells.resize(n);
    for (auto& c : r.cells) {
        std::uint64_t col, cell_life, replaced;
        std::int64_t d;
        if (!in.varint(col) || !in.varint(cell_life) || !in.zigzag(d) || !in.varint(node_idx) ||
            !in.varint(replaced)) {
            return corrupt("truncated cell");
        }
        auto id = nodes.id_at(node_idx);
        if (!id) {
            return id.status();
        }
        c.column = static_cast<int>(col >> 1);
        c.has_value = (col & 1) != 0;
        c.write.life = crdt::CausalLength(cell_life);
        c.write.stamp = crdt::Stamp{add(base, d), *id};
        if (replaced != 0) {
            auto z = replaced - 1;
            auto back = static_cast<std::int64_t>((z >> 1) ^ (~(z & 1) + 1));
            c.write.replaced =
                crdt::Hlc::from_raw(c.write.stamp.hlc.raw() - static_cast<std::uint64_t>(back));
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
        std::uint64_t col, counter_life;
        std::int64_t d;
        if (!in.varint(col) || !in.varint(node_idx) || !in.varint(counter_life) || !in.zigzag(d) ||
            !in.zigzag(c.write.total)) {
            return corrupt("truncated counter");
        }
        auto id = nodes.id_at(node_idx);
        if (!id) {
            return id.status();
        }
        c.column = static_cast<int>(col);
        c.write.life = crdt::CausalLength(counter_life);
        c.write.stamp = crdt::Stamp{add(base, d), *id};
    }
    if (!in.at_end()) {
        return corrupt("trailing bytes");
    }
    return r;
}

} // namespace peerlite::store
