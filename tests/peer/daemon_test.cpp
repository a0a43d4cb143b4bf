// peerlited as a real process: config errors, clean stops, one daemon per database, and
// two daemons converging through writes from plain connections.
#include <csignal>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "mesh_fixture.hpp"

using namespace peerlite;
using namespace peerlite::testing;
using namespace std::chrono_literals;

namespace {

std::string binary() {
    const char* path = std::getenv("PEERLITED");
    REQUIRE(path != nullptr);
    return path;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

// Runs peerlited with `args` to completion; returns its exit status and output.
std::pair<int, std::string> run(const std::string& args, const std::string& out) {
    int status = std::system((binary() + " " + args + " > '" + out + "' 2>&1").c_str());
    return {WEXITSTATUS(status), read_file(out)};
}

struct Daemon {
    pid_t pid = -1;
    std::string log;
    Daemon(const std::string& config, std::string log_path) : log(std::move(log_path)) {
        pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            auto fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
            dup2(fd, 1);
            dup2(fd, 2);
            auto bin = binary();
            execl(bin.c_str(), bin.c_str(), "--config", config.c_str(), nullptr);
            _exit(127);
        }
    }
    bool ready() {
        return Mesh::eventually([&] { return read_file(log).find("ready:") != std::string::npos; },
                                10s);
    }
    int stop() {
        kill(pid, SIGTERM);
        int status = 0;
        waitpid(pid, &status, 0);
        pid = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    ~Daemon() {
        if (pid > 0) {
            kill(pid, SIGKILL);
            waitpid(pid, nullptr, 0);
        }
    }
};

std::string write_config(ScratchDir& dir, const std::string& name, const std::string& extra) {
    auto path = dir.file(name + ".toml");
    std::ofstream(path) << "[node]\nname = \"" << name << "\"\ndatabase = \"" << name << ".db\"\n"
                        << "listen = \"tcp://127.0.0.1:*\"\nsecret_key_file = \"" << name
                        << ".key\"\n"
                        << extra
                        << "\n[[table]]\nname = \"items\"\nrules = { qty = \"counter\" }\n";
    return path;
}

} // namespace

TEST_CASE("a config with an unknown key is refused with file, line and key") {
    ScratchDir dir;
    PlainDb(dir.file("a.db")).exec(kMeshTable);
    REQUIRE(run("--keygen " + dir.file("a"), dir.file("keygen.out")).first == 0);
    auto config = write_config(dir, "a", "[mesh]\nfanot = 3\n");
    auto [status, out] = run("--check --config " + config, dir.file("out"));
    CHECK(status == 2);
    CHECK_THAT(out, Catch::Contains(config + ":7: mesh.fanot: unknown key"));
    auto bad_rule = write_config(dir, "a", "");
    std::ofstream(bad_rule, std::ios::app)
        << "\n[[table]]\nname = \"items\"\nrules = { qty = \"sum\" }\n";
    auto [status2, out2] = run("--check --config " + bad_rule, dir.file("out2"));
    CHECK(status2 == 2);
    CHECK_THAT(out2, Catch::Contains("table.rules.qty: unknown merge rule 'sum'"));
    auto good = write_config(dir, "a", "");
    CHECK(run("--check --config " + good, dir.file("out3")).first == 0);
}

TEST_CASE("two daemons converge; a second daemon on one database is refused; SIGTERM exits 0") {
    ScratchDir dir;
    PlainDb a(dir.file("a.db")), b(dir.file("b.db"));
    a.exec(kMeshTable);
    b.exec(kMeshTable);
    auto key_a = run("--keygen " + dir.file("a"), dir.file("ka")).second;
    auto key_b = run("--keygen " + dir.file("b"), dir.file("kb")).second;
    key_a.erase(key_a.find_last_not_of("\n") + 1);
    key_b.erase(key_b.find_last_not_of("\n") + 1);
    auto trusted = "trusted_keys = [\"" + key_a + "\", \"" + key_b + "\"]\n";
    Daemon da(write_config(dir, "a", "[mesh]\n" + trusted), dir.file("a.log"));
    REQUIRE(da.ready());
    auto log = read_file(dir.file("a.log"));
    auto at = log.find("on tcp://", log.find("ready:"));
    REQUIRE(at != std::string::npos);
    auto endpoint = log.substr(at + 3, log.find(',', at) - at - 3);
    Daemon db(write_config(dir, "b",
                           "[mesh]\n" + trusted + "seeds = [{ endpoint = \"" + endpoint +
                               "\", public_key = \"" + key_a + "\" }]\n"),
              dir.file("b.log"));
    REQUIRE(db.ready());

    a.exec("INSERT INTO items VALUES ('x', 'from a', 1)");
    b.exec("INSERT INTO items VALUES ('y', 'from b', 2)");
    b.exec("UPDATE items SET qty = qty + 1 WHERE id = 'y'");
    REQUIRE(Mesh::eventually(
        [&] {
            return a.rows("SELECT * FROM items ORDER BY id") ==
                       b.rows("SELECT * FROM items ORDER BY id") &&
                   a.scalar("SELECT count(*) FROM items") == 2;
        },
        10s));

    Daemon second(dir.file("a.toml"), dir.file("a2.log"));
    int status = 0;
    waitpid(second.pid, &status, 0);
    second.pid = -1;
    CHECK(WEXITSTATUS(status) == 3);
    CHECK_THAT(read_file(dir.file("a2.log")), Catch::Contains("already serves"));

    CHECK(da.stop() == 0);
    CHECK(db.stop() == 0);
    CHECK_THAT(read_file(dir.file("a.log")), Catch::Contains("stopped cleanly"));
}
