"""Ranking rules, through the CLI on a small real repository (tests/fixtures/rankrepo):
definitions before references, implementations before stubs (a documented prototype leads to its definition), code before its tests, its benchmarks and text windows,
old-style JavaScript methods as named chunks with their doc comments, and functions named in a sentence's words lifted."""

from __future__ import annotations

import json

import pytest

from codeneedle.indexer.ranking import (
    WEIGHTS,
    QueryRules,
    has_test_attribute,
    is_stub,
    is_test,
    mention_tier,
    mentioned_names,
    name_tier,
    normalise,
    query_names,
)
from codeneedle.indexer.store import ChunkRow
from tests.conftest import copy_fixture, run_needle

QUERIES = [
    "slugify",
    "turn a title into a url slug",
    "test slugify turns a title into a url slug",
    "chunk",
    "split an array into groups of elements",
    "CaseInsensitiveDict",
    "case insensitive dict",
    "Session.request",
    "send a JSON response",
    "parse a cookie header into an object",
    "serialise a cookie into a set-cookie header",
    "keep the first words of a text adding an ellipsis",
    "benchmark the word truncation",
    "why does chunkPairs drop the last element",
    "chunkPairs returns pairs of neighbours",
    "Gets a signed 32 bit integer from `self` in little-endian byte order.",
    "tree_free",
    "release a parse tree and every node it owns",
]


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[str, list[dict]]:
    repo = copy_fixture("rankrepo", tmp_path_factory.mktemp("rank") / "rankrepo")
    proc = run_needle("search", "--path", str(repo), "--json", "--top-k", "10", "--queries", "-",
                      input="\n".join(QUERIES) + "\n")
    assert proc.returncode == 0, proc.stderr
    return {o["query"]: o["results"] for o in map(json.loads, proc.stdout.splitlines())}


def top(results, query: str) -> tuple[str, str]:
    first = results[query][0]
    return first["path"], first["name"]


def rank_of(results, query: str, path: str) -> int:
    """0-based rank of the first result in ``path``; past the end when it is not in the list."""
    return next((i for i, r in enumerate(results[query]) if r["path"] == path), len(results[query]))


def test_an_exact_name_puts_its_definition_first(results):
    assert top(results, "CaseInsensitiveDict") == ("httpkit/structures.py", "CaseInsensitiveDict")
    assert top(results, "Session.request") == ("httpkit/sessions.py", "Session.request")
    assert top(results, "chunk") == ("src/chunk.ts", "chunk")


def test_a_function_a_sentence_mentions_comes_first(results):
    # Go's doc comments start with the function's name; people mention the code they ask about.
    assert top(results, "why does chunkPairs drop the last element") == ("src/index.ts", "chunkPairs")
    assert top(results, "chunkPairs returns pairs of neighbours") == ("src/index.ts", "chunkPairs")


def test_a_name_typed_as_words_finds_the_definition(results):
    assert top(results, "case insensitive dict") == ("httpkit/structures.py", "CaseInsensitiveDict")


def test_an_implementation_ranks_above_its_stub(results):
    assert top(results, "slugify") == ("strutils/slugify.py", "slugify")
    assert rank_of(results, "split an array into groups of elements", "src/chunk.ts") == 0
    assert rank_of(results, "chunk", "types/chunk.d.ts") > 0


def test_a_header_prototype_leads_to_its_implementation_right_above_it(results):
    # cparse/tree.h holds the only doc comment ("Release a parse tree and every node it owns"); tree.c the code.
    for query in ("tree_free", "release a parse tree and every node it owns"):
        assert [(r["path"], r["name"]) for r in results[query][:2]] == [
            ("cparse/tree.c", "tree_free"), ("cparse/tree.h", "tree_free")]


def test_code_ranks_above_its_test_unless_the_query_asks_for_tests(results):
    assert top(results, "turn a title into a url slug") == ("strutils/slugify.py", "slugify")
    assert top(results, "test slugify turns a title into a url slug")[0] == "tests/test_slugify.py"


def test_code_ranks_above_a_benchmark_copy_unless_the_query_asks_for_benchmarks(results):
    # benchmarks/bench_truncate.py keeps the old truncate_words, whose doc matches the query more closely.
    assert top(results, "keep the first words of a text adding an ellipsis") == ("strutils/slugify.py", "truncate_words")
    assert top(results, "benchmark the word truncation")[0] == "benchmarks/bench_truncate.py"


def test_a_sentence_lifts_the_functions_named_in_its_words(results):
    # bytes/buf.rs: the encoder puts get_u32 second; "signed 32 bit" and "little-endian" are get_i32 and _le.
    names = [r["name"] for r in results["Gets a signed 32 bit integer from `self` in little-endian byte order."]]
    assert set(names[:2]) == {"Buf.get_i32", "Buf.get_i32_le"}
    assert names.index("Buf.get_u32") > names.index("Buf.get_i32_le")


def test_commonjs_methods_are_named_chunks_with_their_doc(results):
    assert top(results, "send a JSON response") == ("lib/response.js", "res.json")
    assert top(results, "parse a cookie header into an object") == ("lib/response.js", "cookies.parse")
    assert top(results, "serialise a cookie into a set-cookie header") == ("lib/response.js", "cookies.serialize")


def row(path: str, kind: str = "function", text: str = "def f(): pass", language: str = "python",
        name: str = "f") -> ChunkRow:
    return ChunkRow(1, path, language, kind, name, 1, 1, 0, 1, text, "", "h")


def test_what_counts_as_a_stub_or_a_test():
    assert is_stub(row("pkg/mod.pyi"))
    assert is_stub(row("types/index.d.ts", language="typescript"))
    assert is_stub(row("src/a.ts", text="export function f(x: string): string;", language="typescript"))
    assert is_stub(row("include/a.h", text="int f(int x);", language="c"))
    assert not is_stub(row("include/a.h", text="#define CLAMP(x, lo, hi) ((x) < (lo) ? (lo) : (x))", language="c"))
    assert not is_stub(row("src/a.ts", text="export function f() { return 1; }", language="typescript"))
    # An arrow function with an expression body ends in ";" without a brace, but it is assigned, not declared.
    assert not is_stub(row("src/p.ts", text="export const proxy = <T = unknown>(\n  cb: Callback,\n): T => inner(cb, []);",
                           language="typescript"))
    assert not is_stub(row("src/p.ts", text="handler = (e: Event) => this.emit(e);", language="typescript"))
    assert is_stub(row("src/p.ts", text="export function f<T = unknown>(x: T, n = 2): T;", language="typescript"))
    assert is_stub(row("src/p.ts", text="onChange: (value: string) => void;", language="typescript"))
    assert all(is_test(p) for p in ("tests/test_a.py", "pkg/a_test.go", "src/a.spec.ts", "src/test/java/ATest.java",
                                     "__tests__/a.js", "test/a.js"))
    assert not any(is_test(p) for p in ("src/testing_utils_doc.md.py", "src/attest.py", "lib/contest.js"))
    assert is_test("src/a.py", "TestParser.test_empty")
    assert is_test("benchmarks/bench_match.py") and is_test("benches/map.rs")
    assert not is_test("src/benchmark_utils.py")
    # Tests beside the code, in lib.rs or a Java class: known by their attribute or annotation.
    assert has_test_attribute("#[test]\nfn basic() {}") and has_test_attribute("#[tokio::test]\nasync fn f() {}")
    assert has_test_attribute("@DisplayName(\"x\")\n@Test\nvoid reads() {}")
    assert not has_test_attribute("#[inline]\npub fn left(self) -> Option<L> {}")
    assert not has_test_attribute("@Override\npublic String toString() {}")
    assert has_test_attribute("[Fact]\npublic void Adds() {}") and has_test_attribute("[TestCase(1)]\nvoid T(int x) {}")
    assert has_test_attribute("#[Test]\npublic function adds(): void {}")
    assert not has_test_attribute("[Obsolete]\npublic void Add() {}")
    assert all(is_test(p) for p in ("tests/Unit/CartTest.php", "src/Shop.Tests/Helpers.cs", "OrderServiceTests.cs",
                                     "src/test/kotlin/QueueTest.kt", "Tests/AppTests/ThermostatTests.swift",
                                     "core/src/WordCountSpec.scala", "spec/stack_spec.lua", "lua/stack_spec.lua"))
    assert not any(is_test(p) for p in ("src/Latest.cs", "Sources/App/Contest.swift", "lib/deploy.sh"))
    assert all(is_test(p) for p in ("test/cart_test.dart", "lib/src/cart_test.dart", "test/shop/repo_test.exs",
                                     "RCTBridgeTests.m", "ios/PlayerTest.mm"))
    assert not any(is_test(p) for p in ("lib/contest.dart", "lib/shop/repo.ex", "ios/RCTTestModule.m", "src/ring.zig"))
    assert all(is_test(p) for p in ("test/QueueSpec.hs", "t/inventory.t", "lib/t/basic.t", "test/test_lru.ml",
                                     "test/runtests.jl"))
    assert not any(is_test(p) for p in ("src/Data/Queue.hs", "lib/Shop/Inventory.pm", "lib/lru.ml", "src/Geometry.jl"))
    assert all(is_test(p) for p in ("tests/main.tftest.hcl", "test/Vault.t.sol", "Deploy.Tests.ps1",
                                     "src/InventoryTests.fs", "test_moving_average.m", "src/test_vectors.f90",
                                     "kernels/saxpy_test.cu", "db/test/orders.sql"))
    assert not any(is_test(p) for p in ("main.tf", "src/Vault.sol", "Deploy.ps1", "src/Inventory.fs",
                                         "moving_average.m", "src/vectors.f90", "kernels/saxpy.cu", "db/orders.sql",
                                         "src/Latest.fs"))
    assert has_test_attribute('test "push wraps around" {\n}') and has_test_attribute("test {\n}")
    assert not has_test_attribute("fn testing() void {}")


def test_which_queries_name_a_definition():
    assert query_names("Session.request") == ("sessionrequest", "request")
    assert query_names("parse_args()") == ("parseargs", "parseargs")
    assert query_names("case insensitive dict") == ("caseinsensitivedict", "caseinsensitivedict")
    assert query_names("how do I parse a config file with sections") is None
    # an Objective-C selector names its methods (PlaybackQueue.initWithItems:repeat:)
    assert query_names("initWithItems:repeat:") == ("initwithitemsrepeat", "initwithitemsrepeat")
    assert query_names("PlaybackQueue.dealloc:") == ("playbackqueuedealloc", "dealloc")
    assert query_names("see: the docs") is None
    assert normalise("HTTP_Response-v2") == "httpresponsev2"


def test_which_words_of_a_sentence_are_code():
    assert mentioned_names("NFlag returns the number of flags that have been set") == ("NFlag",)
    assert mentioned_names("why does chunkPairs fail") == ("chunkPairs",)  # short phrases too
    assert mentioned_names("self.parse_args exits early") == ("parse_args",)
    # camelCase and snake_case are surer code than PascalCase (product names), so they go first.
    assert mentioned_names("IPSliceVar defines an ipSlice flag") == ("ipSlice", "IPSliceVar")
    assert mentioned_names("the JavaScript GitHub plugin calls parseConfig")[0] == "parseConfig"
    assert mentioned_names("URLs and APIs on iOS") == ()
    assert mentioned_names("where does Session.getUser read the token") == ("Session.getUser",)
    assert mentioned_names("why would load_config fail on an empty file") == ("load_config",)
    # Capitalised words start sentences; a query that is itself a name is handled by query_names.
    assert mentioned_names("Args returns the non-flag arguments") == ()
    assert mentioned_names("CaseInsensitiveDict") == ()
    # A doc comment's cross-reference names another function: the one it calls, not the one it describes.
    assert mentioned_names("Calls {@link Query#onOnline} on every cached query, in one batch.") == ()
    assert mentioned_names("Like {@linkcode fetchQuery} but for infiniteQuery options") == ("infiniteQuery",)
    method = row("cli/flags.go", kind="method", name="FlagSet.NFlag", language="go")
    assert mention_tier(method, ("NFlag",)) == 1 and mention_tier(method, ("FlagSet.NFlag",)) == 1
    assert mention_tier(row("cli/flags.go", kind="class", name="NFlag", language="go"), ("NFlag",)) == 0


def test_a_kotlin_companion_member_is_found_by_the_name_kotlin_calls_it():
    # stored as Temp.Companion.zero (Temp.zero is the instance member's name); Kotlin code calls it Temp.zero()
    member = row("src/Temp.kt", kind="method", name="Temp.Companion.zero", language="kotlin")
    assert name_tier(member, query_names("Temp.zero"), "Temp.zero") == 2
    assert name_tier(member, query_names("Temp.Companion.zero"), "Temp.Companion.zero") == 2
    assert mention_tier(member, ("Temp.zero",)) == 1
    assert name_tier(member, query_names("Other.zero"), "Other.zero") == 0


def test_a_javascript_constructor_mentioned_in_prose_is_context_like_a_class():
    # "Look up the parent DirectoryEntry containing this Entry" asks for getParent, not the constructor.
    constructor = row("www/DirectoryEntry.js", kind="function", name="DirectoryEntry", language="javascript")
    assert mention_tier(constructor, ("DirectoryEntry",)) == 0
    go_function = row("flags.go", kind="function", name="NewFlagSet", language="go")  # Go exports by capital
    assert mention_tier(go_function, ("NewFlagSet",)) == 1
    helper = row("www/utils.js", kind="function", name="parseConfig", language="javascript")
    assert mention_tier(helper, ("parseConfig",)) == 1


def test_methods_of_a_class_the_query_mentions_rank_a_little_higher():
    rules = QueryRules.of("Clears the `IndexSet` in the given index range, returning a drain iterator.")
    ours = row("src/set.rs", kind="method", name="IndexSet.drain", language="rust")
    other = row("src/map/core.rs", kind="method", name="IndexMapCore.drain", language="rust")
    free = row("src/set.rs", kind="function", name="drain", language="rust")
    assert rules.demotion(ours) == WEIGHTS.member > 1.0
    assert rules.demotion(other) == rules.demotion(free) == 1.0
    # A boost, not a tier: a much better match of another class still wins, and the class itself is no method.
    assert rules.tier(ours) == rules.tier(other) == 0
    assert rules.demotion(row("src/set.rs", kind="class", name="IndexSet", language="rust")) == WEIGHTS.container
    assert QueryRules.of("clears the set in the given index range").demotion(ours) == 1.0


def test_names_are_cached_but_whole_long_queries_are_not():
    from codeneedle.indexer.ranking import _normalised_name, normalise

    before = _normalised_name.cache_info().currsize
    for i in range(50):
        assert normalise(f"Parse_{i}.Config" + "X" * 300) == f"parse{i}config" + "x" * 300
    assert _normalised_name.cache_info().currsize == before
    assert normalise("Session.request") == "sessionrequest"
    assert _normalised_name.cache_info().currsize <= before + 1


def test_a_demoted_class_does_not_fall_below_code_that_is_nothing_like_the_query(tmp_path):
    # Ten chunks: a demotion of fused scores alone put the class seventh, behind fib and fetchUser.
    repo = copy_fixture("smallrepo", tmp_path / "smallrepo")
    proc = run_needle("search", "--path", str(repo), "--json", "--no-rerank", "-k", "10", "retry backoff")
    assert proc.returncode == 0, proc.stderr
    names = [r["name"] for r in json.loads(proc.stdout)["results"]]
    assert names.index("RetryPolicy") < names.index("fib") and names.index("RetryPolicy") <= 2, names


def test_which_definition_implements_a_stub():
    from codeneedle.indexer.declarations import implements

    def stub(path: str, name: str = "parse", language: str = "typescript") -> ChunkRow:
        return row(path, text=f"export function {name}(s: string): Doc;", language=language, name=name)

    def code(path: str, name: str = "parse", language: str = "typescript") -> ChunkRow:
        return row(path, text=f"export function {name}(s: string) {{ return s; }}", language=language, name=name)

    assert implements(code("src/markdown.ts"), stub("types/markdown.d.ts"))  # a distinctive stem, anywhere
    assert implements(code("src/tree.c", "tree_free", "c"), stub("src/tree.h", "tree_free", "c"))
    assert implements(code("lib/api.js", language="javascript"), stub("lib/index.d.ts"))  # the same folder
    # every package has an index or __init__: alike in name only, an unrelated parse is no implementation
    assert not implements(code("plugins/csv/index.js", language="javascript"), stub("types/index.d.ts"))
    assert not implements(code("pkg_b/__init__.py", "load", "python"), stub("pkg_a/__init__.pyi", "load", "python"))
    assert not implements(code("src/markdown.py", language="python"), stub("types/markdown.d.ts"))  # language
    assert not implements(code("src/markdown.ts", "render"), stub("types/markdown.d.ts"))  # name
