// Loading peerlited's TOML config strictly (config.hpp). Long because it is one table of
// keys: each key's type, default, range and error message (docs/config.md mirrors it),
// read through the small Loader helpers at the top.
#include <cassert>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <utility>

#include <toml++/toml.h>

#include <peerlite/peer/config.hpp>

namespace peerlite::peer {

namespace {

namespace fs = std::filesystem;

// An allowed interval of a numeric key, both ends included.
struct Range {
    std::int64_t min;
    std::int64_t max;
};

// Bounds shared by several keys (docs/config.md gives each key's own).
constexpr std::int64_t kHourMs = 3'600'000;
constexpr Range kInterval{1, kHourMs}; // 0 would fire on every turn of the loop

class Loader {
public:
    explicit Loader(std::string path) : path_(std::move(path)) {}

    Status error(const toml::node* where, const std::string& key, const std::string& what) const {
        auto line = where ? where->source().begin.line : 0;
        return Status(Code::invalid_argument,
                      path_ + (line ? ":" + std::to_string(line) : "") + ": " + key + ": " + what);
    }

    // Refuses keys the table does not define: a typo must not silently fall back to a default.
    Status only(const toml::table& t, const std::string& prefix,
                std::initializer_list<const char*> allowed) const {
        std::set<std::string> ok(allowed.begin(), allowed.end());
        for (const auto& [key, value] : t) {
            if (!ok.count(std::string(key.str()))) {
                std::string list;
                for (const auto* a : allowed) {
                    list += (list.empty() ? "" : ", ") + std::string(a);
                }
                return error(&value, prefix + std::string(key.str()),
                             "unknown key (expected one of: " + list + ")");
            }
        }
        return Status::success();
    }

    // A string or a boolean; numbers go through number(), which needs their range.
    template <class T>
    Status get(const toml::table& t, const std::string& prefix, const char* key, T& out) const {
        static_assert(std::is_same_v<T, std::string> || std::is_same_v<T, bool>,
                      "numeric keys are read with number(), which takes their range");
        const auto* node = t.get(key);
        if (!node) {
            return Status::success(); // keep the default
        }
        if constexpr (std::is_same_v<T, std::string>) {
            auto v = node->value<std::string>();
            if (!v) {
                return error(node, prefix + key, "must be a string");
            }
            out = *v;
        } else {
            auto v = node->value<bool>();
            if (!v) {
                return error(node, prefix + key, "must be true or false");
            }
            out = *v;
        }
        return Status::success();
    }

    // The one way to read a numeric key: an integer within `range` (both ends allowed), or
    // "FILE:LINE: key: VALUE is out of range [MIN, MAX]". A value of 0 where the node
    // needs progress (rows per message, intervals) would silently stop it, so every
    // numeric key has a range; docs/config.md lists them beside the defaults.
    template <class T>
    Status number(const toml::table& t, const std::string& prefix, const char* key, T& out,
                  Range range) const {
        // A range wider than the field is a bug in this file, not in the user's config.
        assert(std::in_range<T>(range.min) && std::in_range<T>(range.max));
        const auto* node = t.get(key);
        if (!node) {
            return Status::success(); // keep the default
        }
        auto v = node->value<std::int64_t>();
        if (!v || !node->is_integer()) {
            return error(node, prefix + key, "must be an integer");
        }
        if (*v < range.min || *v > range.max) {
            return error(node, prefix + key,
                         std::to_string(*v) + " is out of range [" + std::to_string(range.min) +
                             ", " + std::to_string(range.max) + "]");
        }
        out = static_cast<T>(*v);
        return Status::success();
    }

    Status millis(const toml::table& t, const std::string& prefix, const char* key,
                  std::chrono::milliseconds& out, Range range) const {
        std::int64_t v = out.count();
        if (auto st = number(t, prefix, key, v, range); !st.ok()) {
            return st;
        }
        out = std::chrono::milliseconds(v);
        return Status::success();
    }

    // Two keys that must keep an order (`low` <= `high`, or < when `strict`), whichever of
    // them the file sets; the error points at the line of the one that is set.
    Status ordered(const toml::table& t, const std::string& prefix, const char* low_key,
                   std::int64_t low, const char* high_key, std::int64_t high, bool strict) const {
        if (strict ? low < high : low <= high) {
            return Status::success();
        }
        const auto* where = t.get(low_key) ? t.get(low_key) : t.get(high_key);
        return error(where, prefix + low_key,
                     std::to_string(low) + (strict ? " must be less than " : " must not exceed ") +
                         prefix + high_key + " (" + std::to_string(high) + ")");
    }

    std::string resolve(const std::string& relative) const {
        fs::path p(relative);
        return p.is_absolute() ? p.string()
                               : (fs::path(path_).parent_path() / p).lexically_normal().string();
    }

    const std::string& path() const { return path_; }

private:
    std::string path_;
};

Status load_mesh(const Loader& l, const toml::table& mesh, NodeOptions& node) {
    const std::string p = "mesh.";
    if (auto st = l.only(mesh, p,
                         {"trusted_keys", "plaintext", "fanout", "direct_push_limit",
                          "anti_entropy_interval_ms", "probe_interval_ms", "probe_timeout_ms",
                          "gossip_interval_ms", "suspect_after_ms", "dead_after_ms",
                          "forget_unheard_after_s"});
        !st.ok()) {
        return st;
    }
    Status st;
    if (!(st = l.get(mesh, p, "plaintext", node.transport.plaintext)).ok() ||
        !(st = l.number(mesh, p, "fanout", node.fanout, {1, 64})).ok() ||
        !(st = l.number(mesh, p, "direct_push_limit", node.direct_push_limit, {0, 1024})).ok() ||
        !(st = l.millis(mesh, p, "anti_entropy_interval_ms", node.anti_entropy_interval, kInterval))
             .ok() ||
        !(st = l.millis(mesh, p, "probe_interval_ms", node.probe_interval, kInterval)).ok() ||
        !(st = l.millis(mesh, p, "probe_timeout_ms", node.probe_timeout, kInterval)).ok() ||
        !(st = l.millis(mesh, p, "gossip_interval_ms", node.gossip_interval, kInterval)).ok() ||
        !(st = l.millis(mesh, p, "suspect_after_ms", node.membership.suspect_after, kInterval))
             .ok() ||
        !(st = l.millis(mesh, p, "dead_after_ms", node.membership.dead_after, kInterval)).ok()) {
        return st;
    }
    std::int64_t forget_s = node.membership.forget_unheard_after.count() / 1000;
    if (!(st = l.number(mesh, p, "forget_unheard_after_s", forget_s, {1, 30 * 86'400})).ok()) {
        return st;
    }
    node.membership.forget_unheard_after = std::chrono::seconds(forget_s);
    // A member dead before it was suspect never gets the suspect phase's grace; one dead
    // before its probe timed out never gets the indirect probes that keep one lost packet
    // or one bad link from being taken for death (Node::Impl::probe).
    const auto& m = node.membership;
    if (!(st = l.ordered(mesh, p, "suspect_after_ms", m.suspect_after.count(), "dead_after_ms",
                         m.dead_after.count(), false))
             .ok() ||
        !(st = l.ordered(mesh, p, "probe_timeout_ms", node.probe_timeout.count(), "dead_after_ms",
                         m.dead_after.count(), true))
             .ok()) {
        return st;
    }
    if (const auto* trusted = mesh.get("trusted_keys")) {
        const auto* list = trusted->as_array();
        if (!list) {
            return l.error(trusted, p + "trusted_keys", "must be an array of public keys");
        }
        for (const auto& k : *list) {
            auto key = k.value<std::string>();
            if (!key || key->size() != 40) {
                return l.error(&k, p + "trusted_keys",
                               "each key must be 40 characters of Z85 (see peerlited --keygen)");
            }
            node.transport.trusted.insert(*key);
        }
    }
    return Status::success();
}

Status load_tables(const Loader& l, const toml::table& db, const std::string& prefix,
                   NodeOptions& node) {
    const auto* tables = db.get("table");
    if (!tables) {
        return l.error(&db, prefix + "table",
                       "at least one [[database.table]] is required (which tables to sync)");
    }
    const auto* list = tables->as_array();
    if (!list) {
        return l.error(tables, prefix + "table", "must be written as [[database.table]] blocks");
    }
    const std::string p = prefix + "table.";
    for (const auto& entry : *list) {
        const auto* t = entry.as_table();
        if (!t) {
            return l.error(&entry, prefix + "table", "must be a table");
        }
        if (auto st = l.only(*t, p, {"name", "rules"}); !st.ok()) {
            return st;
        }
        schema::TableSpec spec;
        if (auto st = l.get(*t, p, "name", spec.table); !st.ok()) {
            return st;
        }
        if (spec.table.empty()) {
            return l.error(&entry, p + "name", "is required");
        }
        if (const auto* rules = t->get("rules")) {
            const auto* rt = rules->as_table();
            if (!rt) {
                return l.error(rules, p + "rules",
                               "must be an inline table, e.g. { qty = \"counter\" }");
            }
            for (const auto& [column, rule] : *rt) {
                auto name = rule.value<std::string>();
                auto parsed = name ? crdt::parse_rule(*name)
                                   : Result<crdt::MergeRule>(
                                         Status(Code::invalid_argument, "must be a string"));
                if (!parsed) {
                    return l.error(&rule, p + "rules." + std::string(column.str()),
                                   parsed.status().message());
                }
                spec.rules.push_back({std::string(column.str()), *parsed});
            }
        }
        node.tables.push_back(std::move(spec));
    }
    return Status::success();
}

Status load_seeds(const Loader& l, const toml::node& seeds, const std::string& key,
                  NodeOptions& node) {
    const auto* list = seeds.as_array();
    if (!list) {
        return l.error(&seeds, key,
                       "must be an array of { endpoint = \"...\", public_key = \"...\" }");
    }
    for (const auto& s : *list) {
        const auto* t = s.as_table();
        if (!t) {
            return l.error(&s, key,
                           "each seed must be { endpoint = \"...\", public_key = \"...\" }");
        }
        if (auto st = l.only(*t, key + ".", {"endpoint", "public_key"}); !st.ok()) {
            return st;
        }
        Seed seed;
        if (auto st = l.get(*t, key + ".", "endpoint", seed.endpoint); !st.ok()) {
            return st;
        }
        if (auto st = l.get(*t, key + ".", "public_key", seed.public_key); !st.ok()) {
            return st;
        }
        if (seed.endpoint.empty()) {
            return l.error(&s, key + ".endpoint", "is required");
        }
        if (!node.transport.plaintext && seed.public_key.size() != 40) {
            return l.error(&s, key + ".public_key",
                           "is required: the seed's public key, 40 characters of Z85");
        }
        node.seeds.push_back(seed);
    }
    return Status::success();
}

// One [[database]] block: the daemon-wide settings in `shared`, plus its own file,
// address, seeds and tables.
Result<NodeOptions> load_database(const Loader& l, const toml::table& db, std::size_t index,
                                  const NodeOptions& shared) {
    const std::string p = "database[" + std::to_string(index) + "].";
    if (auto st = l.only(db, p, {"path", "listen", "seeds", "table"}); !st.ok()) {
        return st;
    }
    NodeOptions node = shared;
    Status st;
    if (!(st = l.get(db, p, "path", node.database)).ok() ||
        !(st = l.get(db, p, "listen", node.transport.listen)).ok()) {
        return st;
    }
    if (node.database.empty()) {
        return l.error(&db, p + "path", "is required: the SQLite file to sync");
    }
    node.database = l.resolve(node.database);
    if (const auto* seeds = db.get("seeds")) {
        if (!(st = load_seeds(l, *seeds, p + "seeds", node)).ok()) {
            return st;
        }
    }
    if (!(st = load_tables(l, db, p, node)).ok()) {
        return st;
    }
    return node;
}

Status load_limits(const Loader& l, const toml::table& t, NodeOptions& node) {
    const std::string p = "limits.";
    if (auto st =
            l.only(t, p,
                   {"max_message_bytes", "max_rows_per_message", "max_clock_drift_ms",
                    "conflict_retention_hours", "apply_batch_rows", "busy_timeout_ms",
                    "poll_interval_ms", "write_idle_ms", "max_picked_up_rows", "max_held_back_rows",
                    "apply_delay_ms", "apply_quiet_ms", "write_max_delay_ms"});
        !st.ok()) {
        return st;
    }
    std::int64_t retention_hours = node.store.conflict_retention.count() / 3'600'000;
    Status st;
    if (!(st = l.number(t, p, "max_message_bytes", node.transport.max_message_bytes,
                        {64 << 10, 1 << 30}))
             .ok() ||
        !(st = l.number(t, p, "max_rows_per_message", node.max_rows_per_message, {1, 1'000'000}))
             .ok() ||
        !(st = l.millis(t, p, "max_clock_drift_ms", node.store.max_clock_drift, kInterval)).ok() ||
        !(st = l.number(t, p, "conflict_retention_hours", retention_hours, {0, 87'600})).ok() ||
        !(st = l.number(t, p, "apply_batch_rows", node.store.apply_batch_rows, {1, 1'000'000}))
             .ok() ||
        !(st = l.number(t, p, "busy_timeout_ms", node.store.busy_timeout_ms, kInterval)).ok() ||
        !(st = l.millis(t, p, "poll_interval_ms", node.poll_interval, {1, 1000})).ok() ||
        !(st = l.millis(t, p, "write_idle_ms", node.write_idle, {0, 60'000})).ok() ||
        !(st = l.millis(t, p, "apply_delay_ms", node.apply_delay, {0, 10'000})).ok() ||
        !(st = l.millis(t, p, "apply_quiet_ms", node.apply_quiet, {1, 10'000})).ok() ||
        !(st = l.millis(t, p, "write_max_delay_ms", node.write_max_delay, {1, 3'600'000})).ok() ||
        !(st = l.number(t, p, "max_held_back_rows", node.store.max_held_back_rows,
                        {0, 1'000'000'000}))
             .ok() ||
        !(st = l.number(t, p, "max_picked_up_rows", node.store.max_picked_up_rows, {1, 10'000'000}))
             .ok()) {
        return st;
    }
    node.store.conflict_retention = std::chrono::hours(retention_hours);
    node.limits.max_bytes = node.transport.max_message_bytes;
    return Status::success();
}

Status load_node(const Loader& l, const toml::table& root, DaemonConfig& config,
                 std::string& key_file) {
    static const toml::table none; // every [node] key has a default
    const auto* n = root.get_as<toml::table>("node");
    if (!n) {
        n = &none;
    }
    if (auto st = l.only(*n, "node.", {"name", "secret_key_file", "admin"}); !st.ok()) {
        return st;
    }
    Status st;
    if (!(st = l.get(*n, "node.", "name", config.name)).ok() ||
        !(st = l.get(*n, "node.", "secret_key_file", key_file)).ok()) {
        return st;
    }
    std::string admin = config.name + ".admin.sock";
    if (!(st = l.get(*n, "node.", "admin", admin)).ok()) {
        return st;
    }
    // A bare file name is an IPC socket beside the config; "off" turns the endpoint off.
    if (admin == "off") {
        config.admin.clear();
    } else if (admin.find("://") != std::string::npos) {
        config.admin = admin;
    } else {
        config.admin = "ipc://" + fs::absolute(l.resolve(admin)).lexically_normal().string();
        if (config.admin.size() - 6 > 107) { // sockaddr_un's sun_path
            return l.error(n, "node.admin",
                           "socket path " + config.admin.substr(6) +
                               " is longer than the 107 bytes a Unix socket allows; give a "
                               "shorter path");
        }
    }
    return Status::success();
}

Status load_keys(const Loader& l, const toml::table& root, const std::string& key_file,
                 NodeOptions& shared) {
    if (shared.transport.plaintext) {
        return Status::success();
    }
    const auto* n = root.get_as<toml::table>("node");
    if (key_file.empty()) {
        return l.error(n, "node.secret_key_file",
                       "is required unless mesh.plaintext = true (make one with peerlite keygen "
                       "or peerlited --keygen)");
    }
    auto keys = read_key_file(l.resolve(key_file));
    if (!keys) {
        return l.error(n ? n->get("secret_key_file") : nullptr, "node.secret_key_file",
                       keys.status().message());
    }
    shared.transport.keys = *keys;
    return Status::success();
}

Status load_log(const Loader& l, const toml::table& root, DaemonConfig& config) {
    const auto* log = root.get_as<toml::table>("log");
    if (!log) {
        return Status::success();
    }
    Status st;
    if (!(st = l.only(*log, "log.", {"level"})).ok() ||
        !(st = l.get(*log, "log.", "level", config.log_level)).ok()) {
        return st;
    }
    static const std::set<std::string> levels = {"trace", "debug", "info", "warn", "error", "off"};
    if (!levels.count(config.log_level)) {
        return l.error(log->get("level"), "log.level",
                       "must be one of trace, debug, info, warn, error, off");
    }
    return Status::success();
}

// The TOML library's one boundary: its exception becomes "FILE:LINE: what is wrong".
Result<toml::table> parse(const std::string& path) {
    try {
        return toml::parse_file(path);
    } catch (const toml::parse_error& e) {
        return Status(Code::invalid_argument, path + ":" + std::to_string(e.source().begin.line) +
                                                  ": " + std::string(e.description()));
    }
}

} // namespace

Result<transport::CurveKeys> read_key_file(const std::string& path) {
    std::ifstream in(path);
    if (!in) {
        return Status(Code::io_error, "cannot read key file " + path);
    }
    std::stringstream text;
    text << in.rdbuf();
    auto secret = text.str();
    secret.erase(0, secret.find_first_not_of(" \t\r\n"));
    secret.erase(secret.find_last_not_of(" \t\r\n") + 1);
    auto pub = transport::public_key_of(secret);
    if (!pub) {
        return Status(Code::invalid_argument, path + ": " + pub.status().message());
    }
    return transport::CurveKeys{*pub, secret};
}

Result<std::string> load_admin_endpoint(const std::string& path) {
    Loader l(path);
    auto parsed = parse(path);
    if (!parsed) {
        return parsed.status();
    }
    const auto& root = *parsed;
    DaemonConfig config;
    config.name = fs::path(path).stem().string();
    std::string key_file;
    if (auto st = load_node(l, root, config, key_file); !st.ok()) {
        return st;
    }
    if (config.admin.empty()) {
        return Status(Code::not_found, path + ": node.admin is \"off\": this daemon has no "
                                              "admin endpoint");
    }
    return config.admin;
}

Result<DaemonConfig> load_config(const std::string& path) {
    Loader l(path);
    auto parsed = parse(path);
    if (!parsed) {
        return parsed.status();
    }
    const auto& root = *parsed;
    if (auto st = l.only(root, "", {"node", "mesh", "database", "limits", "log"}); !st.ok()) {
        return st;
    }
    DaemonConfig config;
    config.path = path;
    config.name = fs::path(path).stem().string();
    NodeOptions shared; // what every database's engine shares
    Status st;
    std::string key_file;
    if (!(st = load_node(l, root, config, key_file)).ok()) {
        return st;
    }
    if (auto mesh = root.get_as<toml::table>("mesh")) {
        if (!(st = load_mesh(l, *mesh, shared)).ok()) {
            return st;
        }
    }
    if (!(st = load_keys(l, root, key_file, shared)).ok()) {
        return st;
    }
    if (auto limits = root.get_as<toml::table>("limits")) {
        if (!(st = load_limits(l, *limits, shared)).ok()) {
            return st;
        }
    }
    if (!(st = load_log(l, root, config)).ok()) {
        return st;
    }
    const auto* dbs = root.get("database");
    const auto* list = dbs ? dbs->as_array() : nullptr;
    if (!list || list->empty()) {
        return l.error(dbs, "database",
                       "at least one [[database]] block is required (path, listen, seeds, "
                       "[[database.table]])");
    }
    for (std::size_t i = 0; i < list->size(); ++i) {
        const auto* t = (*list)[i].as_table();
        if (!t) {
            return l.error(&(*list)[i], "database", "must be written as [[database]] blocks");
        }
        auto node = load_database(l, *t, i, shared);
        if (!node) {
            return node.status();
        }
        for (const auto& other : config.databases) {
            if (other.database == node->database) {
                return l.error(t, "database[" + std::to_string(i) + "].path",
                               node->database + " is listed twice");
            }
            if (other.transport.listen == node->transport.listen &&
                node->transport.listen.find('*') == std::string::npos) {
                return l.error(t, "database[" + std::to_string(i) + "].listen",
                               node->transport.listen +
                                   " is already used by another database of this node");
            }
        }
        config.databases.push_back(std::move(*node));
    }
    return config;
}

} // namespace peerlite::peer
