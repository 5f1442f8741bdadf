"""Searching a repository finds described code at the right place, through the library API."""

from __future__ import annotations

import json
import shutil
import sqlite3
import threading

import pytest

from codeneedle.errors import NeedleError
from codeneedle.indexer import embedding
from codeneedle.indexer.index import Index
from codeneedle.indexer.search import IDENTIFIER_LEXICAL_WEIGHT, LEXICAL_WEIGHT, lexical_weight
from tests.conftest import FIXTURES, run_needle

# (query in words, expected path, expected qualified name, expected first line)
DESCRIBED = [
    ("read a json config file from disk", "src/config/loader.py", "load_json_config", 9),
    ("merge two nested dictionaries", "src/config/loader.py", "merge_settings", 15),
    ("retry a call with exponential backoff", "src/net/retry.go", "RetryWithBackoff", 9),
    ("format money amount as currency", "web/format.ts", "formatCurrency", 2),
    ("make a url slug from a title", "lib/text/slug.rb", "Text.slugify", 3),
    ("crc32 checksum of bytes", "src/hash/checksum.c", "crc32_checksum", 5),
    ("least recently used cache eviction", "src/main/java/cache/LruCache.java", "LruCache.removeEldestEntry", 16),
]


@pytest.fixture(scope="module")
def index(minirepo):
    idx = Index.open(minirepo)
    idx.update()
    yield idx
    idx.close()


@pytest.mark.parametrize(("query", "path", "name", "line"), DESCRIBED)
def test_a_described_function_is_found_in_the_top_three_at_its_lines(index, query, path, name, line):
    results = index.search(query, k=3)
    hits = [(r.path, r.name, r.start_line) for r in results]
    assert (path, name, line) in hits, hits


def test_results_carry_location_kind_language_score_and_snippet(index):
    top = index.search("read a json config file from disk", k=1)[0]
    assert (top.path, top.name, top.kind, top.language) == (
        "src/config/loader.py", "load_json_config", "function", "python")
    assert (top.start_line, top.end_line) == (9, 12)
    assert 0 < top.score <= 1
    assert top.snippet.startswith("def load_json_config(path):")


@pytest.mark.parametrize("query", ["least recently used cache eviction", "Format a money amount as currency."])
def test_a_search_prepared_ahead_answers_as_one_that_was_not(index, query):
    # the CLI readies the query's vector and the second stage's model while it refreshes the index
    qvec = index.prepare(query).result(timeout=60)
    assert qvec.shape == (index.encoder.dim,) and abs(float(qvec @ qvec) - 1) < 1e-3
    assert index.search(query, k=5, qvec=qvec) == index.search(query, k=5)


def test_a_method_is_named_after_its_class(index):
    results = index.search("environment variables with a prefix", k=5)
    method = next(r for r in results if r.name == "EnvironmentReader.read_environment")
    assert method.kind == "method"
    assert method.start_line == 32


def test_language_filter_keeps_only_that_language(index):
    results = index.search("checksum", k=10, lang="go,rb")
    assert results
    assert {r.language for r in results} <= {"go", "ruby"}


def test_glob_filter_keeps_only_matching_paths(index):
    results = index.search("format text", k=10, glob="web/**")
    assert results
    assert all(r.path.startswith("web/") for r in results)


def test_identifier_queries_hit_through_the_lexical_side(index):
    top = index.search("crc32_checksum", k=1)[0]
    assert top.name == "crc32_checksum"


def test_similar_code_excludes_the_function_itself(index):
    results = index.similar("src/config/loader.py", 16, k=3)
    assert results
    assert all(not (r.path == "src/config/loader.py" and r.name == "merge_settings") for r in results)


NEW_LOADER = """

def load_toml_settings(path):
    \"\"\"Read a TOML settings file from disk.\"\"\"
    with open(path, "rb") as fh:
        return tomllib.load(fh)
"""


def test_similar_reads_the_unsaved_text_an_editor_sends(index, minirepo):
    # a function being written, not saved yet: what one most wants code like
    saved = (minirepo / "src/config/loader.py").read_text()
    text = saved + NEW_LOADER
    line = len(text.splitlines()) - 1  # inside load_toml_settings
    results = index.similar("src/config/loader.py", line, k=3, text=text)
    assert results[0].name == "load_json_config", [r.name for r in results]
    with pytest.raises(NeedleError, match="no indexed code"):  # the saved file has no such line
        index.similar("src/config/loader.py", line, k=3)


def test_similar_on_unsaved_edits_leaves_out_the_saved_version_of_the_same_function(index, minirepo):
    saved = (minirepo / "src/config/loader.py").read_text()
    text = saved.replace('import os\n', 'import os\nimport sys\nimport copy\n').replace("result = dict(base)",
                                                                                      "result = copy.deepcopy(base)")
    line = text.splitlines().index("def merge_settings(base, override):") + 3  # shifted by the two new lines
    results = index.similar("src/config/loader.py", line, k=5, text=text)
    assert results and all(r.name != "merge_settings" for r in results), [r.name for r in results]


def test_similar_in_a_new_file_that_was_never_saved(index):
    results = index.similar("src/config/toml_loader.py", 3, k=3, text=NEW_LOADER.strip() + "\n")
    assert results[0].name == "load_json_config"
    with pytest.raises(NeedleError, match="no code at"):
        index.similar("src/config/toml_loader.py", 40, k=3, text=NEW_LOADER)


def test_similar_embeds_a_chunk_the_index_has_not_embedded_yet(tmp_path, monkeypatch):
    # an update cancelled after its first vectors: the rest of the chunks wait for theirs
    repo = shutil.copytree(FIXTURES / "minirepo", tmp_path / "repo")
    monkeypatch.setattr(embedding, "FIRST_GROUP", 4)
    cancel = threading.Event()
    with Index.open(repo) as idx:
        assert idx.update(progress=lambda p: p.chunks_embedded and cancel.set(), cancel=cancel).cancelled
        store = idx.reader()
        keys, _ = store.chunk_vectors(idx.model_id, idx.vectors().dim)
        waiting = [r for path in ("src/config/loader.py", "src/net/retry.go") for r in store.chunks_in_file(path)
                   if r.id not in set(keys.tolist()) and r.kind == "function"]
        assert waiting, "every chunk got its vector before the cancel"
        target = waiting[0]
        results = idx.similar(target.path, target.start_line, k=3)
        assert results and all((r.path, r.start_line) != (target.path, target.start_line) for r in results)


def test_status_counts_what_was_indexed(index):
    status = index.status()
    assert status.files == 7
    assert status.chunks >= 12
    assert status.languages["python"] == 1
    assert status.model.startswith(index.model_name)
    assert status.last_update is not None


def test_the_index_folder_ignores_itself_for_git(index):
    assert (index.index_dir / ".gitignore").read_text().strip().endswith("*")
    assert index.index_dir == index.root / ".needle"


def test_paths_outside_the_root_are_refused(index):
    from codeneedle.errors import PathOutsideRootError

    with pytest.raises(PathOutsideRootError):
        index.similar("../../etc/passwd", 1)


def test_keywords_count_fully_for_code_a_little_for_sentences_and_not_for_short_questions():
    for code in ("parse_args", "os.path.join", "Session::new", "getUserName", "read(file)", "CaseInsensitiveDict"):
        assert lexical_weight(code) == IDENTIFIER_LEXICAL_WEIGHT, code
    # A sentence stays a sentence with its full stop, a colon or an "e.g.".
    for prose in ("Removes and returns the smallest key in the priority queue, or None when it is empty.",
                  "Note: deletes the folder and everything in it, e.g. after a test run."):
        assert lexical_weight(prose) == LEXICAL_WEIGHT, prose
    for question in ("how to read a file line by line", "Removes and returns the smallest key."):
        assert lexical_weight(question) == 0.0, question
    # A sentence that names code is still a sentence: the name keeps BM25's small share, not the identifier weight.
    for named in ("Returns the most recently computed `QueryObserverResult` for the observed query.",
                  "GetBool return the bool value of a flag with the given name", "where does loadConfig read it"):
        assert lexical_weight(named) == LEXICAL_WEIGHT, named
    for code in ("def load_config(path)", "Session.request timeout", "parse_args argv"):
        assert lexical_weight(code) == IDENTIFIER_LEXICAL_WEIGHT, code



def test_a_reader_takes_in_another_writers_commits_without_rebuilding_its_vectors(tmp_path):
    """A process that only reads (the MCP server, a second editor) while another one indexes: after each commit
    it adds the new chunks' vectors and drops the removed ones, instead of rebuilding the whole index."""
    from tests.conftest import copy_fixture

    repo = copy_fixture("minirepo", tmp_path / "repo")
    with Index.open(repo) as writer:
        writer.update()
    with Index.open(repo, create=False) as reader:
        assert reader.search("crc32 checksum of bytes", k=1, rerank=False)[0].name == "crc32_checksum"
        vectors = reader.vectors()
        (repo / "src/hash/checksum.c").unlink()
        (repo / "src/geo.py").write_text("def haversine_distance(lat1, lon1, lat2, lon2):\n"
                                         "    '''Great-circle distance between two points on the earth.'''\n"
                                         "    return 6371 * 2\n")
        with Index.open(repo) as writer:
            writer.update()
        top = reader.search("distance between two points on a sphere", k=1, rerank=False)[0]
        assert reader.vectors() is vectors  # caught up in place
        assert top.name == "haversine_distance"
        held = set(vectors.keys().tolist())
        assert held == reader.reader().embedded_chunk_ids(reader.model_id)
        assert all(r.path != "src/hash/checksum.c" for r in reader.search("crc32 checksum of bytes", rerank=False))


def test_vectors_by_id_are_read_by_key_not_by_walking_every_embedding(index):
    """A filtered search reads the allowed chunks' vectors by id: the planner must not scan the model's whole
    embedding table for each batch of ids (5 s for a filtered search at 20k chunks)."""
    store = index.reader()
    ids = sorted(store.embedded_chunk_ids(index.model_id))[:3]
    statements: list[str] = []
    store.conn.set_trace_callback(statements.append)  # what chunk_vectors runs, with its values inlined
    try:
        keys, vecs = store.chunk_vectors(index.model_id, 384, ids=ids)
    finally:
        store.conn.set_trace_callback(None)
    assert sorted(keys.tolist()) == ids and vecs.shape == (3, 384)
    (query,) = [s for s in statements if "embeddings" in s]
    plan = " ".join(row[3] for row in store.conn.execute(f"EXPLAIN QUERY PLAN {query}"))
    assert "USING INTEGER PRIMARY KEY" in plan and "(model=? AND hash=?)" in plan, plan


def test_the_read_connections_of_threads_that_ended_are_closed(index):
    """The MCP server answers each call on a pooled thread that ends when idle: one connection per thread that
    ever searched would leak file handles for as long as the server runs."""
    import threading

    def one_search():
        index.search("merge two nested dictionaries", k=1, rerank=False)

    stores = []
    for _ in range(30):
        thread = threading.Thread(target=lambda: (one_search(), stores.append(index.reader())))
        thread.start()
        thread.join()
    # Each new thread's reader closed those of the threads that had ended before it: all but the last.
    assert len(index._readers) <= 4  # this thread's, the BM25 pool's two, the last thread's
    for store in stores[:-1]:
        with pytest.raises(sqlite3.ProgrammingError):
            store.conn.execute("SELECT 1")


def test_the_no_good_match_note_never_rounds_the_best_score_up_to_the_line():
    from codeneedle.indexer.scores import GOOD_MATCH, no_match_note

    note = no_match_note([{"score": GOOD_MATCH - 0.0004}, {"score": 0.1}])
    assert note is not None and f"above {GOOD_MATCH:.2f}" in note and "(best 0.34)" in note
    assert no_match_note([{"score": GOOD_MATCH}]) is None


def test_a_result_not_embedded_yet_shows_its_real_score(minirepo, tmp_path):
    """While an index is still embedding, keyword hits are results too: their score is their cosine (embedded on
    the spot), not a 0 that reads as "no good match"."""
    import shutil

    repo = shutil.copytree(minirepo, tmp_path / "repo", ignore=shutil.ignore_patterns(".needle"))
    with Index.open(repo) as index:
        index.update()
        query = "crc32 checksum of bytes"
        before = {r.name: r.score for r in index.search(query, k=3)}
        assert before["crc32_checksum"] > 0.35
        with sqlite3.connect(repo / ".needle" / "index.db") as conn:  # as if the embedder had not reached it
            conn.execute("DELETE FROM embeddings WHERE hash IN (SELECT hash FROM chunks WHERE name = ?)",
                         ("crc32_checksum",))
        after = {r.name: r.score for r in index.search(query, k=3)}  # this process has the bulk engine
    assert after["crc32_checksum"] == pytest.approx(before["crc32_checksum"], abs=0.03)  # stored vectors are int8
    # A one-shot reader (no bulk engine) scores it through the numpy pass: the same weights, fp32 against int8.
    proc = run_needle("search", "--json", "--no-refresh", "-k", "3", query, str(repo))
    assert proc.returncode == 0, proc.stderr
    shown = {r["name"]: r["score"] for r in json.loads(proc.stdout)["results"]}
    assert shown["crc32_checksum"] == pytest.approx(before["crc32_checksum"], abs=0.03)


def test_language_aliases_name_the_languages_the_chunker_knows():
    from codeneedle.indexer.filters import KNOWN_LANGUAGES, check_languages
    from codeneedle.indexer.search import parse_languages

    assert parse_languages("cs,C#,kt,sh,shell,php,swift,scala,lua") == (
        "csharp", "kotlin", "bash", "php", "swift", "scala", "lua")
    assert check_languages(parse_languages("csharp,kotlin,bash")) == ("csharp", "kotlin", "bash")
    assert {"csharp", "php", "kotlin", "swift", "scala", "lua", "bash"} < set(KNOWN_LANGUAGES)


def test_language_aliases_name_elixir_and_objective_c_as_their_files_do():
    from codeneedle.indexer.search import parse_languages

    assert parse_languages("ex,exs,objective-c,ObjC,m,dart,zig") == ("elixir", "objc", "dart", "zig")
    assert parse_languages("hs,jl,ml,mli,pl,pm") == ("haskell", "julia", "ocaml", "ocaml_interface", "perl")
    assert parse_languages("sql,terraform,TF,hcl,sol,F#,fs,fsx,fsi,ps1,pwsh,powershell,matlab,cu,cuda,f90,fortran") == (
        "sql", "hcl", "solidity", "fsharp", "fsharp_signature", "powershell", "matlab", "cuda", "fortran")


def test_a_language_filter_takes_in_the_dialects_its_users_write_it_in(tmp_path):
    """`--lang typescript` in a React project means its .tsx files too, `--lang ocaml` the .mli interfaces and
    `--lang fsharp` the .fsi signatures; naming the dialect itself still selects it alone."""
    repo = tmp_path / "app"
    (repo / "src").mkdir(parents=True)
    (repo / "src/price.ts").write_text(
        "/** Format a price in cents as dollars. */\nexport function formatPrice(cents: number): string {\n"
        "  return `$${(cents / 100).toFixed(2)}`;\n}\n")
    (repo / "src/PriceTag.tsx").write_text(
        "/** Show a price tag for a product. */\nexport function PriceTag({ cents }: { cents: number }) {\n"
        "  return <span className=\"price\">{cents / 100}</span>;\n}\n")
    (repo / "src/lru.ml").write_text("(** Evict the least recently used entry. *)\nlet evict cache = cache\n")
    (repo / "src/lru.mli").write_text("(** Evict the least recently used entry. *)\nval evict : 'a t -> 'a t\n")
    (repo / "src/Lru.fs").write_text("module Lru\n\n/// Evict the least recently used entry.\nlet evict cache = cache\n")
    (repo / "src/Lru.fsi").write_text("module Lru\n\n/// Evict the least recently used entry.\nval evict : 'a -> 'a\n")
    with Index.open(repo) as index:
        index.update()
        assert {r.language for r in index.search("price", k=10, lang="typescript")} == {"typescript", "tsx"}
        assert {r.language for r in index.search("price", k=10, lang="ts")} == {"typescript", "tsx"}
        assert {r.language for r in index.search("price", k=10, lang="tsx")} == {"tsx"}
        assert {r.language for r in index.search("evict", k=10, lang="ocaml")} == {"ocaml", "ocaml_interface"}
        assert {r.language for r in index.search("evict", k=10, lang="mli")} == {"ocaml_interface"}
        assert {r.language for r in index.search("evict", k=10, lang="fsharp")} == {"fsharp", "fsharp_signature"}
        assert {r.language for r in index.search("evict", k=10, lang="fsi")} == {"fsharp_signature"}
