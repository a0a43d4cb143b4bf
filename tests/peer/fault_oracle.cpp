#include "fault_oracle.hpp"

#include <algorithm>

namespace peerlite::testing::fault {

namespace {

std::string describe(const Episode& e) {
    return "node " + std::to_string(e.node) + " key k" + std::to_string(e.key);
}

} // namespace

std::optional<Effect> resolve(const Episode& episode, std::vector<std::string>& problems) {
    if (episode.writes.empty()) {
        return std::nullopt;
    }
    // The lives the writes moved through, as the writer saw them; the last insert starts
    // the life the episode ends in.
    auto life = episode.start_life;
    std::optional<std::size_t> last_insert;
    for (std::size_t i = 0; i < episode.writes.size(); ++i) {
        bool exists = life % 2 == 1;
        auto op = episode.writes[i].op;
        if ((op == Op::insert) == exists) {
            problems.push_back(describe(episode) + ": write " + std::to_string(i) +
                               " of an episode starting in life " +
                               std::to_string(episode.start_life) +
                               " does not fit the row's existence");
            return std::nullopt;
        }
        if (op != Op::update) {
            ++life;
        }
        if (op == Op::insert) {
            last_insert = i;
        }
    }
    if (life % 2 == 0) {
        // Ends deleted: the pickup skips inserts and updates of a row that is gone, and
        // one delete moves a live row's life once.
        if (episode.start_life % 2 == 0) {
            return std::nullopt;
        }
        Effect deleted;
        deleted.node = episode.node;
        deleted.life = episode.start_life + 1;
        return deleted;
    }
    Effect out;
    out.node = episode.node;
    out.life = life;
    const auto& last = episode.writes.back();
    out.name = last.name;
    out.best = last.best;
    for (auto i = last_insert.value_or(0); i < episode.writes.size(); ++i) {
        const auto& w = episode.writes[i];
        bool insert = w.op == Op::insert;
        out.name_stamped |= insert || w.sets_name;
        out.best_stamped |= insert || w.sets_best;
        if (insert || w.sets_qty) {
            out.qty += w.qty;
        }
    }
    if (!last_insert) {
        out.observed = episode.name_before; // same life: the episode only updated
    }
    return out;
}

Expected expect(const std::vector<Effect>& effects, std::vector<std::string>& problems) {
    Expected x;
    for (const auto& e : effects) {
        x.life = std::max(x.life, e.life);
    }
    x.present = x.life % 2 == 1;
    if (!x.present) {
        return x;
    }
    for (const auto& e : effects) {
        if (e.life != x.life) {
            continue;
        }
        x.qty += e.qty;
        if (e.best_stamped) {
            x.best = std::max(x.best.value_or(e.best), e.best);
        }
        if (e.name_stamped) {
            x.stamped.insert(e.name);
        }
    }
    // A name some episode of the final life began with and then overwrote was stamped
    // before that episode's write: it cannot be the winner.
    std::set<std::string> replaced;
    for (const auto& e : effects) {
        if (e.life != x.life || !e.name_stamped || !e.observed) {
            continue;
        }
        if (!x.stamped.count(*e.observed)) {
            problems.push_back("node " + std::to_string(e.node) + " showed name '" + *e.observed +
                               "' in life " + std::to_string(x.life) +
                               ", which no write of that life left");
            continue;
        }
        replaced.insert(*e.observed);
    }
    for (const auto& name : x.stamped) {
        if (!replaced.count(name)) {
            x.names.insert(name);
        }
    }
    if (x.names.empty()) {
        problems.push_back("life " + std::to_string(x.life) +
                           ": every name was overwritten "
                           "knowingly by another (a cycle in the write order)");
    }
    return x;
}

std::string to_string(const Episode& e, const std::optional<Effect>& effect) {
    std::string out = "node " + std::to_string(e.node) + " from life " +
                      std::to_string(e.start_life) + " (name " + e.name_before.value_or("-") + "):";
    for (const auto& w : e.writes) {
        switch (w.op) {
        case Op::insert:
            out += " insert(" + w.name + ", " + std::to_string(w.qty) + ", " +
                   std::to_string(w.best) + ")";
            break;
        case Op::remove: out += " delete"; break;
        case Op::update:
            out += " update(";
            out += w.sets_name ? "name=" + w.name + " " : "";
            out += w.sets_qty ? "qty+=" + std::to_string(w.qty) + " " : "";
            out += w.sets_best ? "best=" + std::to_string(w.best) + " " : "";
            out.back() = ')';
            break;
        }
    }
    if (!effect) {
        return out + " => nothing";
    }
    out += " => life " + std::to_string(effect->life);
    if (effect->exists()) {
        out += std::string(" name ") + (effect->name_stamped ? effect->name : "-") + " qty " +
               std::to_string(effect->qty) + " best " +
               (effect->best_stamped ? std::to_string(effect->best) : "-");
    }
    return out;
}

std::vector<std::string> check(const std::string& where, const Expected& x,
                               const std::optional<Row>& row) {
    std::vector<std::string> out;
    auto life = " (life " + std::to_string(x.life) + ")";
    if (row.has_value() != x.present) {
        out.push_back(where + (row ? " exists but must be deleted" : " is missing") + life);
        return out;
    }
    if (!row) {
        return out;
    }
    if (row->qty != std::optional<std::int64_t>(x.qty)) {
        out.push_back(where + ": qty " + (row->qty ? std::to_string(*row->qty) : "NULL") +
                      ", expected the sum of the life's increments " + std::to_string(x.qty) +
                      life);
    }
    if (row->best != x.best) {
        out.push_back(where + ": best " + (row->best ? std::to_string(*row->best) : "NULL") +
                      ", expected the greatest written " +
                      (x.best ? std::to_string(*x.best) : "NULL") + life);
    }
    if (!row->name || !x.names.count(*row->name)) {
        std::string may;
        for (const auto& n : x.names) {
            may += " '" + n + "'";
        }
        auto shown = row->name ? "'" + *row->name + "'" : std::string("NULL");
        out.push_back(where + ": name " + shown +
                      (row->name && x.stamped.count(*row->name)
                           ? " was knowingly overwritten"
                           : " was never left by a write of this life") +
                      "; may be one of" + may + life);
    }
    return out;
}

} // namespace peerlite::testing::fault
