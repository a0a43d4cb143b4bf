// peerlite keygen (a CURVE keypair) and peerlite init (a commented starter config).
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <sys/stat.h>
#include <unistd.h>

#include <peerlite/transport/hub.hpp>

#include "cli_common.hpp"

namespace peerlite::cli {

namespace {

// Creates `path` with `text`; refuses an existing file (O_EXCL, so no race either).
Status write_new(const std::string& path, const std::string& text, mode_t mode) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, mode);
    if (fd < 0) {
        return Status(errno == EEXIST ? Code::invalid_argument : Code::io_error,
                      path + (errno == EEXIST ? " exists; refusing to overwrite it"
                                              : ": " + std::string(std::strerror(errno))));
    }
    (void)fchmod(fd, mode); // whatever the umask
    auto written = ::write(fd, text.data(), text.size());
    ::close(fd);
    return written == static_cast<ssize_t>(text.size())
               ? Status::success()
               : Status(Code::io_error, "writing " + path + " failed");
}

// PREFIX.key (secret, mode 600) and PREFIX.pub; returns the public key.
Result<std::string> make_keys(const std::string& prefix) {
    for (const auto* ext : {".key", ".pub"}) {
        if (std::filesystem::exists(prefix + ext)) {
            return Status(Code::invalid_argument,
                          prefix + ext + " exists; refusing to overwrite a key");
        }
    }
    auto keys = transport::generate_keys();
    if (!keys) {
        return keys.status();
    }
    if (auto st = write_new(prefix + ".key", keys->secret_key + "\n", 0600); !st.ok()) {
        return st;
    }
    if (auto st = write_new(prefix + ".pub", keys->public_key + "\n", 0644); !st.ok()) {
        return st;
    }
    return keys->public_key;
}

int keygen(const std::string& prefix) {
    auto key = make_keys(prefix);
    if (!key) {
        return fail(key.status());
    }
    std::printf("%s\n", key->c_str());
    std::fprintf(stderr, "wrote %s.key (secret, mode 600) and %s.pub\n", prefix.c_str(),
                 prefix.c_str());
    return kOk;
}

struct InitOptions {
    std::string name = "node", database, out;
};

std::string config_text(const InitOptions& o, const std::string& database,
                        const std::string& public_key) {
    return "# peerlite node config (docs/config.md describes every key).\n"
           "[node]\n"
           "name = \"" +
           o.name +
           "\"\n"
           "secret_key_file = \"" +
           o.name +
           ".key\"   # made with this file; keep it secret\n"
           "# admin = \"" +
           o.name +
           ".admin.sock\"   # where `peerlite status` reaches this daemon\n"
           "\n"
           "[mesh]\n"
           "# Public keys allowed to connect: this node's, then each peer's (their .pub files).\n"
           "trusted_keys = [ \"" +
           public_key +
           "\" ]\n"
           "\n"
           "[[database]]\n"
           "path = \"" +
           database +
           "\"\n"
           "listen = \"tcp://0.0.0.0:7400\"\n"
           "seeds = [ ]   # { endpoint = \"tcp://10.0.0.5:7400\", public_key = \"...\" }\n"
           "# One block per synced table (it must exist, with a PRIMARY KEY).\n"
           "[[database.table]]\n"
           "name = \"items\"\n"
           "rules = { }   # column = \"lww\" | \"counter\" | \"max\" | \"min\"\n"
           "\n"
           "[log]\n"
           "level = \"info\"\n";
}

int init(InitOptions o) {
    if (o.out.empty()) {
        o.out = o.name + ".toml";
    }
    auto database = o.database.empty() ? o.name + ".db" : o.database;
    if (std::filesystem::exists(o.out)) {
        return fail(Status(Code::invalid_argument, o.out + " exists; refusing to overwrite it"));
    }
    auto dir = std::filesystem::path(o.out).parent_path();
    auto prefix = (dir / o.name).string();
    std::string public_key;
    if (std::filesystem::exists(prefix + ".key")) {
        std::ifstream in(prefix + ".key");
        std::string secret;
        std::getline(in, secret);
        auto key = transport::public_key_of(secret);
        if (!key) {
            return fail(Status(key.status().code(), prefix + ".key: " + key.status().message()));
        }
        public_key = *key;
    } else {
        auto key = make_keys(prefix);
        if (!key) {
            return fail(key.status());
        }
        public_key = *key;
        std::printf("wrote %s.key (secret, mode 600) and %s.pub\n", prefix.c_str(), prefix.c_str());
    }
    if (auto st = write_new(o.out, config_text(o, database, public_key), 0644); !st.ok()) {
        return fail(st);
    }
    std::printf("wrote %s: edit the tables and seeds, then `peerlited --check --config %s`\n",
                o.out.c_str(), o.out.c_str());
    return kOk;
}

} // namespace

void add_keygen(CLI::App& app, Command& run_command) {
    auto prefix = std::make_shared<std::string>("node");
    auto* cmd = app.add_subcommand(
        "keygen", "a new CURVE keypair: PREFIX.key (secret, mode 600) and PREFIX.pub; prints "
                  "the public key. Never overwrites");
    cmd->add_option("PREFIX", *prefix, "file name prefix (default: node)");
    cmd->footer("Example:\n"
                "  peerlite keygen alpha     # alpha.key, alpha.pub; put the printed key in every\n"
                "                            # node's [mesh] trusted_keys");
    cmd->callback([&run_command, prefix] {
        run_command = [prefix] {
            return keygen(*prefix);
        };
    });
}

void add_init(CLI::App& app, Command& run_command) {
    auto o = std::make_shared<InitOptions>();
    auto* cmd = app.add_subcommand(
        "init", "a commented starter config (and NAME.key/NAME.pub beside it unless NAME.key "
                "exists). Never overwrites");
    cmd->add_option("--name", o->name, "the node's name (default: node)");
    cmd->add_option("--database", o->database, "the SQLite file to sync (default: NAME.db)");
    cmd->add_option("OUT", o->out, "the config file to write (default: NAME.toml)");
    cmd->footer("Example:\n"
                "  peerlite init --name alpha --database /srv/app/app.db alpha.toml");
    cmd->callback([&run_command, o] {
        run_command = [o] {
            return init(*o);
        };
    });
}

} // namespace peerlite::cli
