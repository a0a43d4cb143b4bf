// One node per file: a second Store on a file whose node is open would stamp changes under
// the same node id, and replicas would diverge.
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "store_fixture.hpp"

using namespace peerlite;
using namespace peerlite::testing;

TEST_CASE("a second store on an open file is refused, in this process and in another") {
    ScratchDir dir;
    auto path = dir.file("a.db");
    PlainDb(path).exec("CREATE TABLE t(id INTEGER PRIMARY KEY NOT NULL, v TEXT)");
    auto first = open_store(path);

    auto second = store::Store::open(path);
    REQUIRE_FALSE(second.ok());
    CHECK(second.status().code() == Code::busy);
    CHECK_THAT(
        second.status().message(),
        Catch::Contains("already open as a peerlite node by process " + std::to_string(getpid())));

    pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        auto other = store::Store::open(path);
        _exit(!other.ok() && other.status().code() == Code::busy ? 0 : 1);
    }
    int status = 0;
    waitpid(child, &status, 0);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);

    // Plain connections and writers are welcome beside it; a closed node frees the file.
    PlainDb(path).exec("INSERT INTO t VALUES (1, 'plain')");
    first.reset();
    CHECK(store::Store::open(path).ok());
}
