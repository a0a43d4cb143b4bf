#include "daemon_fixture.hpp"

#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <fstream>
#include <netinet/in.h>
#include <sstream>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <peerlite/peer/admin.hpp>

#include "mesh_fixture.hpp"

namespace peerlite::testing {

using namespace std::chrono_literals;

std::string peerlited_binary() {
    const char* path = std::getenv("PEERLITED");
    REQUIRE(path != nullptr);
    return path;
}

std::string peerlite_binary() {
    const char* path = std::getenv("PEERLITE");
    REQUIRE(path != nullptr);
    return path;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

std::pair<int, std::string> run_binary(const std::string& binary, const std::string& args,
                                       const std::string& out) {
    int status = std::system((binary + " " + args + " > '" + out + "' 2>&1").c_str());
    return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), read_file(out)};
}

KeyFiles make_keys(const ScratchDir& dir, const std::string& name) {
    auto [status, out] =
        run_binary(peerlited_binary(), "--keygen " + dir.file(name), dir.file(name + ".keygen"));
    REQUIRE(status == 0);
    out.erase(out.find_last_not_of("\n") + 1);
    return {dir.file(name + ".key"), out};
}

int free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    ::close(fd);
    return ntohs(addr.sin_port);
}

std::string write_config(const ScratchDir& dir, const DaemonConfig& c) {
    std::ostringstream out;
    out << "[node]\nname = \"" << c.name << "\"\nsecret_key_file = \"" << c.secret_key_file
        << "\"\n\n[mesh]\ntrusted_keys = [";
    for (const auto& k : c.trusted_keys) {
        out << "\"" << k << "\", ";
    }
    out << "]\n" << c.mesh_extra << "\n";
    for (const auto& db : c.databases) {
        out << "[[database]]\npath = \"" << db.path << "\"\nlisten = \"" << db.listen
            << "\"\nseeds = [";
        for (const auto& [endpoint, key] : db.seeds) {
            out << "{ endpoint = \"" << endpoint << "\", public_key = \"" << key << "\" }, ";
        }
        out << "]\n" << db.tables << "\n";
    }
    out << c.other_extra;
    auto path = dir.file(c.name + ".toml");
    std::ofstream(path) << out.str();
    return path;
}

Daemon::Daemon(std::string config, std::string log, Environment env)
    : config_(std::move(config)), log_(std::move(log)), env_(std::move(env)) {
    spawn();
}

Daemon::~Daemon() {
    if (pid_ > 0) {
        ::kill(pid_, SIGCONT);
        kill();
    }
}

void Daemon::spawn() {
    log_start_ = read_file(log_).size();
    auto bin = peerlited_binary();
    // The child's environment, built before fork: only async-signal-safe calls after it.
    std::vector<std::string> vars;
    for (char** e = environ; *e != nullptr; ++e) {
        std::string var(*e);
        bool replaced = false;
        for (const auto& [name, value] : env_) {
            replaced |= var.rfind(name + "=", 0) == 0;
        }
        if (!replaced) {
            vars.push_back(std::move(var));
        }
    }
    for (const auto& [name, value] : env_) {
        vars.push_back(name + "=" + value);
    }
    std::vector<char*> envp;
    for (auto& v : vars) {
        envp.push_back(v.data());
    }
    envp.push_back(nullptr);
    std::vector<char*> argv{bin.data(), const_cast<char*>("--config"), config_.data(), nullptr};
    pid_ = fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
        auto fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        execve(bin.c_str(), argv.data(), envp.data());
        _exit(127);
    }
}

std::string Daemon::log() const {
    auto all = read_file(log_);
    return all.size() > log_start_ ? all.substr(log_start_) : "";
}

bool Daemon::ready(int databases, std::chrono::milliseconds timeout) {
    return Mesh::eventually(
        [&] {
            auto text = log();
            int n = 0;
            for (auto at = text.find("ready:"); at != std::string::npos;
                 at = text.find("ready:", at + 1)) {
                ++n;
            }
            return n >= databases;
        },
        timeout);
}

std::string Daemon::endpoint(int index) const {
    auto text = log();
    auto at = text.find("ready:");
    for (int i = 0; i < index && at != std::string::npos; ++i) {
        at = text.find("ready:", at + 1);
    }
    REQUIRE(at != std::string::npos);
    at = text.find(" on tcp://", at);
    REQUIRE(at != std::string::npos);
    at += 4;
    return text.substr(at, text.find(',', at) - at);
}

int Daemon::wait_exit(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        int status = 0;
        if (waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        std::this_thread::sleep_for(10ms);
    }
    return -1;
}

std::optional<int> Daemon::exited() {
    int status = 0;
    if (pid_ <= 0 || waitpid(pid_, &status, WNOHANG) != pid_) {
        return std::nullopt;
    }
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int Daemon::stop() {
    REQUIRE(pid_ > 0);
    ::kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void Daemon::kill() {
    REQUIRE(pid_ > 0);
    ::kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
}

void Daemon::pause() {
    REQUIRE(pid_ > 0);
    ::kill(pid_, SIGSTOP);
}

void Daemon::resume() {
    REQUIRE(pid_ > 0);
    ::kill(pid_, SIGCONT);
}

void Daemon::restart() {
    if (pid_ > 0) {
        kill();
    }
    spawn();
}

std::string Trio::write(const std::string& name, DatabaseConfig db,
                        const std::string& extra) const {
    DaemonConfig c;
    c.name = name;
    c.secret_key_file = name + ".key";
    for (const auto& k : keys) {
        c.trusted_keys.push_back(k.public_key);
    }
    c.databases = {std::move(db)};
    c.mesh_extra = "anti_entropy_interval_ms = 300\n";
    c.other_extra = extra;
    return write_config(dir, c);
}

std::string Trio::write_seeded(const std::string& name, const Daemon& seed, int seed_key,
                               const std::string& extra) const {
    DatabaseConfig db{name + ".db"};
    db.seeds = {{seed.endpoint(), pub(seed_key)}};
    return write(name, db, extra);
}

nlohmann::json status_of(const Trio& t, const std::string& name) {
    auto reply = peer::query_admin("ipc://" + t.dir.file(name + ".admin.sock"), "status",
                                   std::chrono::seconds(5));
    REQUIRE(reply.ok());
    return nlohmann::json::parse(*reply);
}

} // namespace peerlite::testing
