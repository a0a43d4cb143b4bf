#include "bench_daemons.hpp"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace peerlite::bench {

namespace {

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

} // namespace

std::string peerlited_binary() {
    if (const char* path = std::getenv("PEERLITED")) {
        return path;
    }
    return PEERLITED_PATH; // set by benchmarks/meson.build
}

void fail(const std::string& what) {
    std::fprintf(stderr, "benchmark setup failed: %s\n", what.c_str());
    std::exit(1);
}

void exec(sqlite3* db, const std::string& sql) {
    char* error = nullptr;
    if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
        std::string message = error ? error : "?";
        sqlite3_free(error);
        fail(sql.substr(0, 60) + ": " + message);
    }
}

std::int64_t scalar(sqlite3* db, const std::string& sql) {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) != SQLITE_OK) {
        fail(sql + ": " + sqlite3_errmsg(db));
    }
    auto rc = sqlite3_step(s);
    auto value = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
    sqlite3_finalize(s);
    return value;
}

sqlite3* open_plain(const std::string& path) {
    sqlite3* db = nullptr;
    if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) {
        fail("open " + path);
    }
    sqlite3_busy_timeout(db, 5000);
    exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL");
    return db;
}

std::string make_key(const std::string& dir, const std::string& name) {
    auto out = dir + "/" + name + ".keygen";
    auto command = peerlited_binary() + " --keygen '" + dir + "/" + name + "' > '" + out + "' 2>&1";
    if (std::system(command.c_str()) != 0) {
        fail(command + ": " + read_file(out));
    }
    auto key = read_file(out);
    key.erase(key.find_last_not_of('\n') + 1);
    return key;
}

std::string write_config(const std::string& dir, const DaemonConfig& c) {
    std::ostringstream out;
    out << "[node]\nname = \"" << c.name << "\"\nsecret_key_file = \"" << c.name
        << ".key\"\nadmin = \"" << (c.admin ? c.name + ".admin.sock" : "off")
        << "\"\n\n[mesh]\ntrusted_keys = [";
    for (const auto& k : c.trusted_keys) {
        out << "\"" << k << "\", ";
    }
    out << "]\n\n[[database]]\npath = \"" << c.database << "\"\nseeds = [";
    for (const auto& [endpoint, key] : c.seeds) {
        out << "{ endpoint = \"" << endpoint << "\", public_key = \"" << key << "\" }, ";
    }
    out << "]\n" << c.tables << "\n" << c.extra;
    auto path = dir + "/" + c.name + ".toml";
    std::ofstream(path) << out.str();
    return path;
}

DaemonConfig daemon_config(std::string name, std::vector<std::string> trusted_keys,
                           std::string database,
                           std::vector<std::pair<std::string, std::string>> seeds) {
    DaemonConfig c;
    c.name = std::move(name);
    c.trusted_keys = std::move(trusted_keys);
    c.database = std::move(database);
    c.seeds = std::move(seeds);
    return c;
}

std::string admin_endpoint(const std::string& dir, const std::string& name) {
    return "ipc://" + dir + "/" + name + ".admin.sock";
}

Memory memory_of(pid_t pid) {
    Memory m;
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line)) {
        auto value = [&] {
            return std::strtoull(line.c_str() + 6, nullptr, 10);
        };
        if (line.rfind("VmRSS:", 0) == 0) {
            m.rss_kib = value();
        } else if (line.rfind("VmHWM:", 0) == 0) {
            m.peak_kib = value();
        }
    }
    return m;
}

Daemon::Daemon(std::string config, std::string log)
    : config_(std::move(config)), log_(std::move(log)) {
    auto bin = peerlited_binary();
    pid_ = fork();
    if (pid_ < 0) {
        fail("fork");
    }
    if (pid_ == 0) {
        // A benchmark that dies (even by SIGKILL) takes its daemons with it.
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        auto fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        execl(bin.c_str(), bin.c_str(), "--config", config_.c_str(), nullptr);
        _exit(127);
    }
}

Daemon::~Daemon() {
    if (pid_ > 0) {
        ::kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
    }
}

void Daemon::wait_ready(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (log().find("ready:") == std::string::npos) {
        int status = 0;
        if (waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;
            fail("peerlited " + config_ + " exited before it was ready; its log:\n" + log());
        }
        if (std::chrono::steady_clock::now() > deadline) {
            fail("peerlited " + config_ + " not ready in time; its log:\n" + log());
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
}

std::string Daemon::endpoint() const {
    // "ready: database D as node N on tcp://127.0.0.1:PORT, public key K"
    auto text = log();
    auto at = text.find(" on tcp://", text.find("ready:"));
    if (at == std::string::npos) {
        fail("no endpoint in the ready line of " + config_);
    }
    at += 4;
    return text.substr(at, text.find(',', at) - at);
}

int Daemon::stop() {
    ::kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string Daemon::log() const {
    return read_file(log_);
}

double mib(std::uint64_t kib) {
    return static_cast<double>(kib) / 1024.0;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

} // namespace peerlite::bench
