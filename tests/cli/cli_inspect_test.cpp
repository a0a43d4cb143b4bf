// The read-only commands as a real process: conflicts, history, diff, changes, and their
// errors. Databases come from real merges of concurrent writes (cli_fixture).
#include <filesystem>

#include <catch2/catch.hpp>

#include "cli_fixture.hpp"

using namespace peerlite;
using namespace peerlite::testing;
using Catch::Contains;

namespace {

nlohmann::json find_column(const nlohmann::json& history, const std::string& name) {
    for (const auto& c : history["columns"]) {
        if (c["name"] == name) {
            return c;
        }
    }
    FAIL("no column " << name);
    return {};
}

} // namespace

TEST_CASE("a missing file, a plain SQLite file and an unknown table exit 2 without creating "
          "anything") {
    ScratchDir dir;
    auto missing = dir.file("missing.db");
    for (const auto& cmd : {"conflicts", "verify", "changes"}) {
        auto r = run_cli({cmd, missing});
        CHECK(r.status == 2);
        CHECK_THAT(r.err, Contains("no such file"));
    }
    CHECK(run_cli({"history", missing, "items", "k1"}).status == 2);
    CHECK(run_cli({"diff", missing, missing}).status == 2);
    CHECK_FALSE(std::filesystem::exists(missing));

    auto plain = dir.file("plain.db");
    PlainDb(plain).exec("CREATE TABLE t(x)");
    auto r = run_cli({"conflicts", plain});
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Contains("not a peerlite database"));
    CHECK(PlainDb(plain).scalar("SELECT count(*) FROM sqlite_schema") == 1); // nothing added

    Replicas x;
    auto unknown = run_cli({"history", x.a_path, "nope", "k1"});
    CHECK(unknown.status == 2);
    CHECK_THAT(unknown.err, Contains("table 'nope' is not synced"));
    CHECK(run_cli({"conflicts", x.a_path, "--table", "nope"}).status == 2);
    auto bad_key = run_cli({"history", x.a_path, "stock", "north"});
    CHECK(bad_key.status == 2);
    CHECK_THAT(bad_key.err, Contains("bad key"));
    CHECK(run_cli({"conflicts", x.a_path, "--since", "yesterday"}).status == 2);
    CHECK(run_cli({"frobnicate"}).status == 2);
}

TEST_CASE("every command answers --help with examples") {
    for (const auto& cmd : {"conflicts", "history", "diff", "resolve", "changes", "snapshot",
                            "verify", "keygen", "init"}) {
        auto r = run_cli({cmd, "--help"});
        CHECK(r.status == 0);
        CHECK_THAT(r.out, Contains("Example"));
    }
}

TEST_CASE("conflicts shows kept and lost values with readable clocks, as text and JSON") {
    Replicas x;
    x.converge();
    auto text = run_cli({"conflicts", x.a_path});
    REQUIRE(text.status == 0);
    CHECK_THAT(text.out, Contains("items[k1].title  rule lww"));
    CHECK_THAT(text.out, Contains("kept  'from b'"));
    CHECK_THAT(text.out, Contains("lost  'from a'"));
    CHECK_THAT(text.out, Contains("lww: the later clock wins"));
    CHECK_THAT(text.out, Contains(crdt::Hlc::from_parts(static_cast<std::uint64_t>(x.t0 + 100), 0)
                                      .to_string()
                                      .substr(0, 19)));
    CHECK_THAT(text.out, Contains("by " + x.b->node_id().short_string()));

    auto json = nlohmann::json::parse(run_cli({"conflicts", x.a_path, "--json"}).out);
    REQUIRE(json.size() == 1);
    auto c = json[0];
    CHECK(c["table"] == "items");
    CHECK(c["key"] == nlohmann::json::array({"k1"}));
    CHECK(c["column"] == "title");
    CHECK(c["winner"]["value"] == "from b");
    CHECK(c["winner"]["node"] == x.b->node_id().to_string());
    CHECK(c["loser"]["value"] == "from a");
    CHECK(c["loser"]["node"] == x.a->node_id().to_string());
    CHECK(c["resolved"].is_null());
    CHECK(c["winner"]["hlc"].get<std::uint64_t>() > c["loser"]["hlc"].get<std::uint64_t>());

    CHECK(nlohmann::json::parse(run_cli({"conflicts", x.a_path, "--json", "--since", "1h"}).out)
              .size() == 1);
    CHECK(nlohmann::json::parse(run_cli({"conflicts", x.a_path, "--json", "--since", "1s"}).out)
              .empty());
    CHECK(nlohmann::json::parse(
              run_cli({"conflicts", x.a_path, "--json", "--since", "2000-01-01T00:00:00Z"}).out)
              .size() == 1);
    CHECK(nlohmann::json::parse(run_cli({"conflicts", x.a_path, "--json", "--table", "stock"}).out)
              .empty());
}

TEST_CASE("read-only commands run while another connection holds the write lock") {
    Replicas x;
    x.converge();
    PlainDb holder(x.a_path);
    holder.exec("BEGIN IMMEDIATE");
    holder.exec("INSERT INTO items VALUES ('k5', 'held', 0, 0)");
    auto started = std::chrono::steady_clock::now();
    CHECK(run_cli({"conflicts", x.a_path}).status == 0);
    CHECK(run_cli({"history", x.a_path, "items", "k1"}).status == 0);
    CHECK(run_cli({"changes", x.a_path}).status == 0);
    CHECK(run_cli({"verify", x.a_path}).status == 0);
    // Each would have waited out the 5 s busy timeout had it wanted the lock.
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(4));
    holder.exec("ROLLBACK");
}

TEST_CASE("history shows each column's value, writer, conflicts and the row's life") {
    Replicas x;
    x.converge();
    auto text = run_cli({"history", x.a_path, "items", "k1"});
    REQUIRE(text.status == 0);
    CHECK_THAT(text.out, Contains("items[k1]  exists (life 1"));
    CHECK_THAT(text.out, Contains("'from b'"));
    CHECK_THAT(text.out, Contains("conflict #"));

    auto h = nlohmann::json::parse(run_cli({"history", x.a_path, "items", "k1", "--json"}).out);
    CHECK(h["exists"] == true);
    CHECK(h["life"] == 1);
    CHECK(h["life_stamp"]["node"] == x.a->node_id().to_string());
    auto title = find_column(h, "title");
    CHECK(title["value"] == "from b");
    CHECK(title["written"]["node"] == x.b->node_id().to_string());
    REQUIRE(title["conflicts"].size() == 1);
    CHECK(title["conflicts"][0]["loser"]["value"] == "from a");
    auto qty = find_column(h, "qty");
    CHECK(qty["rule"] == "counter");
    CHECK(qty["value"] == 6); // 1 + 2 on a, + 3 on b
    CHECK(qty["contributions"].size() == 2);
    CHECK(find_column(h, "best")["conflicts"].empty());

    auto gone = nlohmann::json::parse(run_cli({"history", x.a_path, "items", "k2", "--json"}).out);
    CHECK(gone["exists"] == false);
    CHECK(gone["life"] == 2);
    CHECK(gone["life_stamp"]["node"] == x.b->node_id().to_string());
    CHECK_THAT(run_cli({"history", x.a_path, "items", "k2"}).out, Contains("DELETED (life 2"));

    auto stock =
        nlohmann::json::parse(run_cli({"history", x.a_path, "stock", "north,42", "--json"}).out);
    CHECK(stock["key"] == nlohmann::json::array({"north", 42}));
    CHECK(find_column(stock, "n")["value"] == 7);
    CHECK(run_cli({"history", x.a_path, "items", "nokey"}).status == 2);
}

TEST_CASE("diff lists differing cells and rows; exit 1 until the replicas converge, then 0") {
    Replicas x;
    auto before = run_cli({"diff", x.a_path, x.b_path});
    CHECK(before.status == 1);
    CHECK_THAT(before.out, Contains("items[k1].title: A 'from a'  B 'from b'"));
    CHECK_THAT(before.out, Contains("items[k2]: only in A"));
    auto json = nlohmann::json::parse(run_cli({"diff", x.a_path, x.b_path, "--json"}).out);
    CHECK(json["identical"] == false);
    bool saw_title = false;
    for (const auto& d : json["differences"]) {
        if (d["column"] == "title") {
            saw_title = d["a"] == "from a" && d["b"] == "from b" && d["key_text"] == "k1";
        }
    }
    CHECK(saw_title);
    CHECK(run_cli({"diff", x.a_path, x.b_path, "--table", "stock"}).status == 0);

    x.converge();
    auto after = run_cli({"diff", x.a_path, x.b_path});
    CHECK(after.status == 0);
    CHECK_THAT(after.out, Contains("identical"));
    CHECK(nlohmann::json::parse(run_cli({"diff", x.a_path, x.b_path, "--json"}).out)["identical"] ==
          true);
}

TEST_CASE("changes lists every change with a cursor that resumes exactly after it") {
    Replicas x;
    x.converge();
    auto all = json_lines(run_cli({"changes", x.a_path, "--json"}).out);
    REQUIRE(all.size() >= 6);
    CHECK(all[0]["op"] == "insert");
    bool saw_delete = false, saw_title = false;
    for (const auto& e : all) {
        saw_delete |=
            e["op"] == "delete" && e["key_text"] == "k2" && e["node"] == x.b->node_id().to_string();
        saw_title |= e["op"] == "set" && e["column"] == "title" && e["value"] == "from b";
        CHECK(e["clock"].get<std::string>().find('Z') != std::string::npos);
    }
    CHECK(saw_delete);
    CHECK(saw_title);
    for (std::size_t i = 1; i < all.size(); ++i) {
        CHECK(all[i - 1]["hlc"].get<std::uint64_t>() <= all[i]["hlc"].get<std::uint64_t>());
    }
    // Resuming after the last line of one stamp yields exactly the lines after it; inside
    // a group of lines sharing a stamp (an insert and its cells) the group comes again.
    auto same_stamp = [&](std::size_t i, std::size_t j) {
        return all[i]["hlc"] == all[j]["hlc"] && all[i]["node"] == all[j]["node"];
    };
    std::size_t checked = 0;
    for (std::size_t i = 0; i + 1 < all.size(); ++i) {
        auto rest = json_lines(
            run_cli({"changes", x.a_path, "--json", "--since", all[i]["cursor"].get<std::string>()})
                .out);
        std::size_t from = i + 1;
        if (same_stamp(i, i + 1)) {
            from = i;
            while (from > 0 && same_stamp(from - 1, i)) {
                --from;
            }
        }
        REQUIRE(rest.size() == all.size() - from);
        for (std::size_t k = 0; k < rest.size(); ++k) {
            CHECK(rest[k] == all[from + k]);
        }
        checked += from == i + 1;
    }
    CHECK(checked >= 3);
    auto text = lines(run_cli({"changes", x.a_path}).out);
    CHECK(text.size() == all.size());
    CHECK_THAT(text.back(), Contains(all.back()["cursor"].get<std::string>()));
    CHECK(run_cli({"changes", x.a_path, "--since", "garbage"}).status == 2);
}

TEST_CASE("a change with an older clock that arrives after the cursor is still delivered") {
    Replicas x;
    x.converge();
    auto last = json_lines(run_cli({"changes", x.a_path, "--json"}).out).back()["cursor"];
    // Node c wrote before everything above (older clock) but syncs only now.
    auto c_path = x.dir.file("c.db");
    PlainDb(c_path).exec(kItems);
    PlainDb(c_path).exec(kStock);
    auto c = open_store(c_path, x.clock_at(-2000));
    declare_tables(*c);
    PlainDb(c_path).exec("INSERT INTO items VALUES ('old', 'late', 0, 0)");
    sync(*c, *x.a);
    auto fresh = json_lines(
        run_cli({"changes", x.a_path, "--json", "--since", last.get<std::string>()}).out);
    REQUIRE_FALSE(fresh.empty());
    CHECK(fresh[0]["key_text"] == "old");
    CHECK(fresh[0]["node"] == c->node_id().to_string());
    for (const auto& e : fresh) {
        CHECK(e["key_text"] == "old");
    }
}
