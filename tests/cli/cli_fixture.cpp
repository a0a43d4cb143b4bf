#include "cli_fixture.hpp"

#include <csignal>
#include <fcntl.h>
#include <fstream>
#include <poll.h>
#include <sstream>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

namespace peerlite::testing {

namespace {

std::string binary() {
    const char* path = std::getenv("PEERLITE");
    REQUIRE(path != nullptr);
    return path;
}

std::string slurp(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

[[noreturn]] void exec_peerlite(const std::vector<std::string>& args) {
    auto bin = binary();
    std::vector<char*> argv{bin.data()};
    std::vector<std::string> copy = args;
    for (auto& a : copy) {
        argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    execv(bin.c_str(), argv.data());
    _exit(127);
}

int exit_status(int status) {
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

} // namespace

CliRun run_cli(const std::vector<std::string>& args) {
    ScratchDir io;
    auto out = io.file("out"), err = io.file("err");
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(o, 1);
        dup2(e, 2);
        exec_peerlite(args);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CliRun run{exit_status(status), slurp(out), slurp(err)};
    std::string line = "peerlite";
    for (const auto& a : args) {
        line += " " + a;
    }
    UNSCOPED_INFO(line << "\n-> exit " << run.status << "\nstdout:\n"
                       << run.out << "stderr:\n"
                       << run.err);
    return run;
}

std::vector<std::string> lines(const std::string& text) {
    std::vector<std::string> out;
    std::stringstream in(text);
    for (std::string line; std::getline(in, line);) {
        out.push_back(line);
    }
    return out;
}

std::vector<nlohmann::json> json_lines(const std::string& text) {
    std::vector<nlohmann::json> out;
    for (const auto& line : lines(text)) {
        out.push_back(nlohmann::json::parse(line));
    }
    return out;
}

CliProcess::CliProcess(const std::vector<std::string>& args) {
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    pid_ = fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        exec_peerlite(args);
    }
    close(fds[1]);
    fd_ = fds[0];
}

CliProcess::~CliProcess() {
    if (pid_ > 0) {
        kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
    }
    if (fd_ >= 0) {
        close(fd_);
    }
}

std::string CliProcess::next_line(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (auto nl = buffer_.find('\n'); nl != std::string::npos) {
            auto line = buffer_.substr(0, nl);
            buffer_.erase(0, nl + 1);
            return line;
        }
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        pollfd p{fd_, POLLIN, 0};
        if (left.count() <= 0 || poll(&p, 1, static_cast<int>(left.count())) <= 0) {
            return "";
        }
        char buf[4096];
        auto n = read(fd_, buf, sizeof buf);
        if (n <= 0) {
            return "";
        }
        buffer_.append(buf, static_cast<std::size_t>(n));
    }
}

int CliProcess::stop(int signal) {
    kill(pid_, signal);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return exit_status(status);
}

void declare_tables(store::Store& s) {
    REQUIRE(s.sync_table({"items",
                          {{"qty", crdt::MergeRule::counter}, {"best", crdt::MergeRule::max_wins}}})
                .ok());
    REQUIRE(s.sync_table({"stock", {}}).ok());
}

store::StoreOptions Replicas::clock_at(std::int64_t offset_ms) const {
    store::StoreOptions o;
    auto at = t0 + offset_ms;
    o.wall = [at] {
        return std::chrono::milliseconds(at);
    };
    return o;
}

Replicas::Replicas()
    : t0(std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
             .count() -
         5000),
      a_path(dir.file("a.db")), b_path(dir.file("b.db")) {
    for (const auto& p : {a_path, b_path}) {
        PlainDb db(p);
        db.exec(kItems);
        db.exec(kStock);
    }
    a = open_store(a_path, clock_at(0));
    b = open_store(b_path, clock_at(100));
    declare_tables(*a);
    declare_tables(*b);
    PlainDb pa(a_path), pb(b_path);
    pa.exec("INSERT INTO items VALUES ('k1', 'pen', 1, 5), ('k2', 'cup', 0, 0)");
    pa.exec("INSERT INTO stock VALUES ('north', 42, 7)");
    sync(*a, *b);
    pa.exec("UPDATE items SET title = 'from a', qty = qty + 2 WHERE id = 'k1'");
    pb.exec("UPDATE items SET title = 'from b', qty = qty + 3 WHERE id = 'k1'");
    pb.exec("DELETE FROM items WHERE id = 'k2'");
    REQUIRE(a->capture().ok());
    REQUIRE(b->capture().ok());
}

void Replicas::converge() {
    sync(*b, *a);
    sync(*a, *b);
}

} // namespace peerlite::testing
