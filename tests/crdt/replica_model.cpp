#include "replica_model.hpp"

#include <algorithm>

namespace peerlite::crdt::testing {

Stamp ModelChange::version() const {
    switch (kind) {
    case Kind::row: return row_write.stamp;
    case Kind::cell: return cell_write.stamp;
    case Kind::counter: return counter_write.stamp;
    }
    return {};
}

std::string ModelChange::to_string() const {
    std::string where = "row " + std::to_string(row);
    switch (kind) {
    case Kind::row:
        return where + " life " + std::to_string(row_write.life.value()) + " " +
               row_write.stamp.to_string();
    case Kind::cell:
        return where + " col " + std::to_string(column) + " life " +
               std::to_string(cell_write.life.value()) + " = " + cell_write.value.to_string() +
               " " + cell_write.stamp.to_string();
    case Kind::counter:
        return where + " col " + std::to_string(column) + " life " +
               std::to_string(counter_write.life.value()) + " total " +
               std::to_string(counter_write.total) + " " + counter_write.stamp.to_string();
    }
    return where;
}

bool operator==(const ModelChange& a, const ModelChange& b) {
    if (a.kind != b.kind || a.row != b.row) {
        return false;
    }
    switch (a.kind) {
    case ModelChange::Kind::row: return a.row_write == b.row_write;
    case ModelChange::Kind::cell: return a.column == b.column && a.cell_write == b.cell_write;
    case ModelChange::Kind::counter:
        return a.column == b.column && a.counter_write == b.counter_write;
    }
    return false;
}

ModelReplica::ModelReplica(NodeId id, std::vector<MergeRule> rules, WallClock wall)
    : id_(id), rules_(std::move(rules)), wall_(wall), clock_(std::move(wall)) {}

ModelReplica::ModelReplica(const ModelReplica& other)
    : id_(other.id_), rules_(other.rules_), wall_(other.wall_), clock_(other.wall_),
      rows_(other.rows_), seen_(other.seen_), latest_(other.latest_) {
    clock_.restore(other.clock_.last());
}

Stamp ModelReplica::stamp() {
    auto hlc = clock_.now();
    seen_.add(id_, hlc);
    latest_ = std::max(latest_, hlc);
    return Stamp{hlc, id_};
}

ModelChange ModelReplica::local_cell(int row, int column, const Value& value, CausalLength life) {
    ModelChange c;
    c.kind = ModelChange::Kind::cell;
    c.row = row;
    c.column = column;
    auto& cells = rows_[row].cells;
    auto it = cells.find(column);
    c.cell_write =
        CellWrite{life, stamp(), value, it == cells.end() ? Hlc() : it->second.stamp.hlc};
    merge(c);
    return c;
}

ModelChange ModelReplica::local_counter(int row, int column, std::int64_t total,
                                        CausalLength life) {
    ModelChange c;
    c.kind = ModelChange::Kind::counter;
    c.row = row;
    c.column = column;
    c.counter_write = CounterWrite{life, stamp(), total};
    merge(c);
    return c;
}

std::vector<ModelChange> ModelReplica::insert(int row, const std::vector<Value>& values) {
    auto& r = rows_[row];
    if (r.life.life.exists()) {
        return {};
    }
    std::vector<ModelChange> out;
    ModelChange life;
    life.kind = ModelChange::Kind::row;
    life.row = row;
    life.row_write = RowWrite{r.life.life.inserted(), stamp()};
    merge(life);
    out.push_back(life);
    for (int col = 0; col < static_cast<int>(rules_.size()); ++col) {
        if (rules_[col] == MergeRule::counter) {
            auto total = values[col].is_null() ? 0 : values[col].as_integer();
            out.push_back(local_counter(row, col, total, life.row_write.life));
        } else {
            out.push_back(local_cell(row, col, values[col], life.row_write.life));
        }
    }
    return out;
}

std::vector<ModelChange> ModelReplica::update(int row, int column, const Value& value) {
    auto it = rows_.find(row);
    if (it == rows_.end() || !it->second.life.life.exists() ||
        rules_[column] == MergeRule::counter) {
        return {};
    }
    return {local_cell(row, column, value, it->second.life.life)};
}

std::vector<ModelChange> ModelReplica::increment(int row, int column, std::int64_t delta) {
    auto it = rows_.find(row);
    if (it == rows_.end() || !it->second.life.life.exists() ||
        rules_[column] != MergeRule::counter) {
        return {};
    }
    auto life = it->second.life.life;
    std::int64_t total = delta;
    auto& mine = it->second.counters[column];
    if (auto own = mine.find(id_); own != mine.end() && own->second.life == life) {
        total = counter_add(own->second.total, delta);
    }
    return {local_counter(row, column, total, life)};
}

std::vector<ModelChange> ModelReplica::remove(int row) {
    auto it = rows_.find(row);
    if (it == rows_.end() || !it->second.life.life.exists()) {
        return {};
    }
    ModelChange c;
    c.kind = ModelChange::Kind::row;
    c.row = row;
    c.row_write = RowWrite{it->second.life.life.deleted(), stamp()};
    merge(c);
    return {c};
}

void ModelReplica::merge(const ModelChange& change) {
    auto& row = rows_[change.row];
    switch (change.kind) {
    case ModelChange::Kind::row:
        if (decide_row(row.life, change.row_write) == Winner::incoming) {
            row.life = change.row_write;
        }
        break;
    case ModelChange::Kind::cell: {
        auto [it, fresh] = row.cells.try_emplace(change.column, change.cell_write);
        if (!fresh &&
            decide_cell(rules_[change.column], it->second, change.cell_write) == Winner::incoming) {
            it->second = change.cell_write;
        }
        break;
    }
    case ModelChange::Kind::counter: {
        auto& contributions = row.counters[change.column];
        auto [it, fresh] =
            contributions.try_emplace(change.counter_write.stamp.node, change.counter_write);
        if (!fresh && decide_counter(it->second, change.counter_write) == Winner::incoming) {
            it->second = change.counter_write;
        }
        break;
    }
    }
}

bool ModelReplica::apply(const ModelChange& change) {
    auto version = change.version();
    if (!clock_.observe(version.hlc, version.node).ok()) {
        return false;
    }
    latest_ = std::max(latest_, version.hlc);
    merge(change);
    seen_.add(version.node, version.hlc);
    return true;
}

std::vector<ModelChange> ModelReplica::held() const {
    std::vector<ModelChange> out;
    for (const auto& [row_id, row] : rows_) {
        if (row.life.life.value() > 0) {
            ModelChange c;
            c.kind = ModelChange::Kind::row;
            c.row = row_id;
            c.row_write = row.life;
            out.push_back(c);
        }
        for (const auto& [col, write] : row.cells) {
            ModelChange c;
            c.row = row_id;
            c.column = col;
            c.cell_write = write;
            out.push_back(c);
        }
        for (const auto& [col, contributions] : row.counters) {
            for (const auto& [node, write] : contributions) {
                ModelChange c;
                c.kind = ModelChange::Kind::counter;
                c.row = row_id;
                c.column = col;
                c.counter_write = write;
                out.push_back(c);
            }
        }
    }
    return out;
}

void ModelReplica::sync_to(ModelReplica& to) const {
    auto missing = seen_.minus(to.seen_);
    for (const auto& change : held()) {
        auto v = change.version();
        if (missing.contains(v.node, v.hlc)) {
            if (!to.apply(change)) {
                return; // refused: claim no coverage either
            }
        }
    }
    to.seen_.merge(missing);
}

ModelView ModelReplica::view() const {
    ModelView out;
    for (const auto& [row_id, row] : rows_) {
        auto life = row.life.life;
        if (!life.exists()) {
            continue;
        }
        std::vector<Value> values(rules_.size());
        for (int col = 0; col < static_cast<int>(rules_.size()); ++col) {
            if (rules_[col] == MergeRule::counter) {
                std::int64_t sum = 0;
                if (auto it = row.counters.find(col); it != row.counters.end()) {
                    for (const auto& [node, write] : it->second) {
                        if (write.life == life) {
                            sum = counter_add(sum, write.total);
                        }
                    }
                }
                values[col] = Value::integer(sum);
            } else if (auto it = row.cells.find(col);
                       it != row.cells.end() && it->second.life == life) {
                values[col] = it->second.value;
            }
        }
        out.emplace(row_id, std::move(values));
    }
    return out;
}

} // namespace peerlite::crdt::testing
