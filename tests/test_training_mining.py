"""Mining: doc-comment removal per language, CodeSearchNet filters, query styles, repository splits."""

from __future__ import annotations

import json
import random
from dataclasses import asdict, replace
from pathlib import Path

from codeneedle.indexer.chunker import chunk_source
from codeneedle.indexer.chunks import Chunk
from codeneedle.training import corpus
from codeneedle.training.mining import (
    Pair,
    Repo,
    build_dataset,
    clean_doc,
    discover_repos,
    first_sentence,
    is_test_path,
    iter_source_files,
    keep_function,
    keep_query,
    mine_chunks,
    mine_file,
    mine_repo,
    split_repos,
    training_examples,
    web_query,
)

FIXTURES = Path(__file__).parent / "fixtures"

PY = b'''import os


class Store:
    def load_items(self, path, limit=10):
        """Load the stored items from a JSON file.

        Args:
            path: where the file is.
        """
        with open(path) as fh:
            data = json.load(fh)
        return data[:limit]

    def __repr__(self):
        """Return a readable representation of the store."""
        return "Store()"


def test_load_items():
    """Check that loading items from a file works."""
    assert Store().load_items("x") == []
'''

JS = b'''/**
 * Compute the checksum of a buffer using CRC32.
 * @param {Buffer} buf the data
 * @returns {number}
 */
function crc32(buf) {
  let c = 0;
  for (const b of buf) c = table[(c ^ b) & 0xff] ^ (c >>> 8);
  return c >>> 0;
}
'''

GO = b'''package x

// ParseDuration parses a duration string such as "1h30m".
// It returns an error for malformed input.
func ParseDuration(s string) (Duration, error) {
	d, err := parse(s)
	if err != nil {
		return 0, err
	}
	return d, nil
}
'''

RUST = b'''/// Returns the number of set bits in the word.
///
/// # Examples
#[inline]
pub fn popcount(mut x: u64) -> u32 {
    let mut n = 0;
    while x != 0 { x &= x - 1; n += 1; }
    n
}
'''


def chunk_named(path: str, language: str, data: bytes, name: str) -> Chunk:
    """The chunker's own chunk of that name (the miner reads where its doc comment sits from it)."""
    return next(c for c in chunk_source(path, data, language) if c.name == name)


def test_python_docstring_removed_and_first_sentence() -> None:
    ch = chunk_named("pkg/store.py", "python", PY, "Store.load_items")
    (pair,) = list(mine_chunks([ch], PY, "pypi:pkg"))
    assert pair.query == "Load the stored items from a JSON file."
    assert '"""' not in pair.code and "Args" not in pair.code
    assert pair.code.startswith("def load_items(self, path, limit=10):\n        with open(path)")
    assert '"""Load the stored items' in pair.code_with_doc


def test_a_file_in_its_declared_legacy_encoding_gives_its_own_words() -> None:
    source = ('# -*- coding: latin-1 -*-\n\ndef prix_du_café(commande):\n'
              '    """Calcule le prix d\'une commande au café, taxes comprises."""\n'
              '    total = sum(ligne.prix * ligne.quantité for ligne in commande.lignes)\n'
              '    remise = commande.remise or 0\n    return round((total - remise) * 1.2, 2)\n')
    (pair,) = mine_file("menu.py", source.encode("latin-1"), "pypi:menu")
    assert pair.name == "prix_du_café"
    assert pair.query == "Calcule le prix d'une commande au café, taxes comprises."
    assert "\ufffd" not in pair.code and pair.code.startswith("def prix_du_café(commande):")


def test_dunders_and_tests_are_filtered() -> None:
    chunks = [chunk_named("pkg/store.py", "python", PY, "Store.__repr__"),
              chunk_named("pkg/store.py", "python", PY, "test_load_items")]
    assert list(mine_chunks(chunks, PY, "pypi:pkg")) == []
    assert is_test_path("pkg/tests/test_x.py") and is_test_path("net/http/server_test.go")
    assert is_test_path("src/foo.spec.ts") and not is_test_path("pkg/testament.py")
    assert all(is_test_path(p) for p in ("src/CartTest.php", "Shop.Tests/Helpers.cs", "OrderServiceTests.cs",
                                         "core/src/FooSpec.scala", "lua/x_spec.lua", "Tests/AppTests/AppTests.swift"))
    assert not any(is_test_path(p) for p in ("src/Latest.cs", "src/Manifest.kt", "src/contest.php"))


def test_jsdoc_above_function() -> None:
    ch = chunk_named("lib/crc.js", "javascript", JS, "crc32")
    (pair,) = list(mine_chunks([ch], JS, "npm:crc"))
    assert pair.query == "Compute the checksum of a buffer using CRC32."
    assert "/**" not in pair.code and pair.code.startswith("function crc32")
    assert pair.code_with_doc.startswith("/**")


def test_go_doc_comment_drops_leading_name() -> None:
    ch = chunk_named("time/format.go", "go", GO, "ParseDuration")
    (pair,) = list(mine_chunks([ch], GO, "go:time"))
    assert pair.query == 'Parses a duration string such as "1h30m".'


def test_rust_doc_comment_through_attribute() -> None:
    ch = chunk_named("core/bits.rs", "rust", RUST, "popcount")
    (pair,) = list(mine_chunks([ch], RUST, "rust:core"))
    assert pair.query == "Returns the number of set bits in the word."


def test_doc_comment_after_an_annotation_is_stripped_from_the_code() -> None:
    java = b"class Cache {\n    @Override\n    /** Look up a value by key and mark it used. */\n" \
           b"    public V get(K key) {\n        V v = map.get(key);\n        touch(key);\n        return v;\n    }\n}\n"
    ch = chunk_named("Cache.java", "java", java, "Cache.get")
    assert ch.doc_inside and (ch.start_line, ch.doc_start_line, ch.doc_end_line) == (2, 3, 3)
    (pair,) = list(mine_chunks([ch], java, "java:cache"))
    assert pair.query == "Look up a value by key and mark it used."
    assert pair.code.startswith("@Override\n    public V get(K key) {") and "/**" not in pair.code
    assert pair.code_with_doc == ch.text


def test_chunks_record_where_their_doc_comment_sits() -> None:
    """The chunker records the doc comment's lines and bytes: inside the range for a docstring, above it for a
    comment; the miner and embed_text read them instead of guessing."""
    py = chunk_named("pkg/store.py", "python", PY, "Store.load_items")
    assert py.doc_inside and (py.doc_start_line, py.doc_end_line) == (6, 10)
    assert PY[py.doc_start_byte:py.doc_end_byte].startswith(b'"""Load the stored') and py.leading_doc == ""
    js = chunk_named("lib/crc.js", "javascript", JS, "crc32")
    assert not js.doc_inside and (js.doc_start_line, js.doc_end_line) == (1, 5)
    assert JS[js.doc_start_byte:js.doc_end_byte] == JS[:JS.index(b" */") + 3]
    assert js.leading_doc == js.doc.strip() != ""
    bom = chunk_named("lib/crc.js", "javascript", b"\xef\xbb\xbf" + JS, "crc32")
    assert (bom.doc_start_byte, bom.doc_end_byte) == (js.doc_start_byte + 3, js.doc_end_byte + 3)
    # Where the doc sits is not part of a chunk's identity: moving a function keeps its cached vector.
    assert js.content_hash == replace(js, doc_start_byte=0, doc_end_byte=0, doc_start_line=0,
                                      doc_end_line=0).content_hash


def test_mining_gives_the_pairs_recorded_before_it_read_doc_spans() -> None:
    """tests/fixtures/mined_pairs.json was written by the previous miner (which re-parsed docstrings with ast and
    re-scanned comments in the file's bytes, and walked the tree with os.walk) over four fixture trees, one of
    them (docrepo) made of edge cases: the chunker's doc spans and the indexer's walker must give the same."""
    recorded = json.loads((FIXTURES / "mined_pairs.json").read_text())
    for name, old in recorded.items():
        files = list(iter_source_files(FIXTURES / name))
        assert [f.path for f in files] == old["files"], name
        pairs = [asdict(p) for p in mine_repo(Repo("r", FIXTURES / name))[0]]
        assert pairs == old["pairs"], name
    # 55 recorded by the previous miner; 19 more from the C#, PHP, Kotlin, Swift, Scala, Lua and Bash fixtures
    assert sum(len(old["pairs"]) for old in recorded.values()) == 74


def test_clean_doc_and_first_sentence() -> None:
    assert clean_doc("/**\n * Use {@link Foo#bar} to <b>read</b>.\n */") == "Use Foo#bar to read."
    assert clean_doc('"""Call :func:`os.path.join` on ``parts``."""') == "Call os.path.join on parts."
    assert first_sentence("Return the x, e.g. a number. More text.") == "Return the x, e.g. a number."
    assert first_sentence("Run adapters (e.g. Flask) here. More.") == "Run adapters (e.g. Flask) here."
    assert first_sentence("Pick one, i.e. The first. More.") == "Pick one, i.e. The first."
    assert first_sentence("Summary line\ncontinued here.\n\nDetails.") == "Summary line continued here."
    assert first_sentence("Args:\n  x: y") == ""
    assert clean_doc('/// <summary>Place an <see cref="T:Shop.Order"/>.</summary>\n/// <param name="o">x</param>',
                     "csharp") == "Place an Shop.Order.\n\n@param o x"
    assert clean_doc("--- Create a stack.\n-- @return a stack", "lua") == "Create a stack.\n@return a stack"
    assert clean_doc("# Print usage.\n## and exit", "bash") == "Print usage.\nand exit"


def test_query_and_function_filters() -> None:
    assert keep_query("Load the stored items from a file.")
    assert not keep_query("Getter.")  # under 3 words
    assert not keep_query("TODO: make this faster please")
    assert not keep_query("See https://example.com for details")
    assert not keep_query("Возвращает список всех элементов коллекции")
    ch = Chunk("a.py", "python", "function", "f", 1, 2, 0, 10, "")  # keep_function reads only the name
    assert not keep_function(ch, "def f():\n    pass")  # fewer than 3 lines
    assert keep_function(ch, "def f():\n    x = 1\n    return x")


def test_query_styles_and_code_variants() -> None:
    rng = random.Random(0)
    assert web_query("Returns the current working directory.", "python", random.Random(1)).islower()
    pair = Pair("pypi:p", "python", "p/m.py", "cwd", "function", 3, "Returns the current working directory.",
                "Returns the current working directory.\n\nMore.", "def cwd():\n    x = 1\n    return x",
                'def cwd():\n    """Returns the current working directory.\n\n    More.\n    """\n    x = 1\n    return x')
    recs = [training_examples(pair, rng) for _ in range(300)]
    variants = {r["code_variant"] for r in recs}
    styles = {r["query_style"] for r in recs}
    assert variants == {"nodoc", "rest", "full"} and styles == {"doc", "web"}
    for r in recs:
        assert r["code"].startswith("p/m.py cwd\n")  # embed_text: path, split name, code
        if r["code_variant"] == "rest":
            assert "Returns the current" not in r["code"] and "More." in r["code"]
        if r["code_variant"] == "nodoc":
            assert '"""' not in r["code"]


def test_repo_split_has_no_leakage(tmp_path: Path) -> None:
    for eco, names in (("pypi", corpus.PYPI_TRAIN[:12] + corpus.PYPI_HELDOUT[:3]),
                       ("npm", corpus.NPM_TRAIN[:4] + corpus.NPM_HELDOUT[:2])):
        for n in names:
            (tmp_path / eco / n.replace("/", "__")).mkdir(parents=True)
    repos = split_repos(discover_repos(tmp_path), valid_fraction=0.2, seed=1)
    by_split: dict[str, set[str]] = {}
    for r in repos:
        by_split.setdefault(r.split, set()).add(r.id)
    assert by_split["heldout"] == {f"pypi:{n}" for n in corpus.PYPI_HELDOUT[:3]} | {
        f"npm:{n}" for n in corpus.NPM_HELDOUT[:2]}
    assert not (by_split["train"] & by_split["heldout"]) and not (by_split["train"] & by_split["valid"])
    assert by_split["valid"] and not (by_split["valid"] & by_split["heldout"])
    assert split_repos(discover_repos(tmp_path), valid_fraction=0.2, seed=1) == repos  # deterministic
    assert all(isinstance(r, Repo) for r in repos)


def test_build_dataset_keeps_heldout_code_out_of_training(tmp_path: Path) -> None:
    src = tmp_path / "src"
    body = b'def shared(x):\n    """Compute the shared value of an input."""\n    y = x * 2\n    return y + 1\n'
    other = b'def only_train(x):\n    """Compute a value only the training repo has."""\n    y = x * 3\n    return y\n'
    held = corpus.PYPI_HELDOUT[0]
    (src / "pypi" / held / held).mkdir(parents=True)
    (src / "pypi" / held / held / "core.py").write_bytes(body)
    (src / "pypi" / "vendoring" / "vendoring").mkdir(parents=True)
    (src / "pypi" / "vendoring" / "vendoring" / "copy.py").write_bytes(body + b"\n\n" + other)
    build_dataset(src, tmp_path / "pairs", stdlib=None)
    train = [json.loads(x) for x in (tmp_path / "pairs" / "train.jsonl").read_text().splitlines()]
    heldout = [json.loads(x) for x in (tmp_path / "pairs" / "heldout.jsonl").read_text().splitlines()]
    valid = (tmp_path / "pairs" / "valid.jsonl").read_text().splitlines()
    assert [h["name"] for h in heldout] == ["shared"]
    assert all(r["name"] != "shared" for r in train)
    assert {r["name"] for r in train} | {json.loads(v)["name"] for v in valid} == {"only_train"}


def test_mine_repository_uses_walker_and_skips_tests(tmp_path: Path) -> None:
    from codeneedle.training.adapt import mine_repository

    (tmp_path / "pkg").mkdir()
    (tmp_path / "tests").mkdir()
    (tmp_path / "pkg" / "store.py").write_bytes(PY)
    (tmp_path / "pkg" / "crc.js").write_bytes(JS)
    (tmp_path / "tests" / "test_store.py").write_bytes(PY)
    pairs = mine_repository(tmp_path)
    assert sorted(p.name for p in pairs) == ["Store.load_items", "crc32"]
    assert all(not p.path.startswith("tests/") for p in pairs)


def test_no_heldout_candidate_carries_its_query(tmp_path: Path) -> None:
    """The held-out benchmark searches doc sentences among functions whose doc comments are removed: no
    candidate text may contain its own query (a leak once handed 892 of 1,571 queries their answer verbatim)."""
    src = tmp_path / "src"
    held = corpus.PYPI_HELDOUT[0]
    (src / "pypi" / held / held).mkdir(parents=True)
    (src / "pypi" / held / held / "core.py").write_bytes(PY.replace(b"def test_load_items", b"def check_items"))
    (src / "npm" / corpus.NPM_HELDOUT[0] / "package").mkdir(parents=True)
    (src / "npm" / corpus.NPM_HELDOUT[0] / "package" / "crc.js").write_bytes(JS)
    (src / "npm" / corpus.NPM_HELDOUT[0] / "package" / "dur.go").write_bytes(GO)
    build_dataset(src, tmp_path / "pairs", stdlib=None)
    pool = {(r["repo"], r["id"]): r for r in map(json.loads, (tmp_path / "pairs" / "heldout_corpus.jsonl")
                                                 .read_text().splitlines())}
    queries = [json.loads(x) for x in (tmp_path / "pairs" / "heldout.jsonl").read_text().splitlines()]
    assert {q["name"] for q in queries} == {"Store.load_items", "crc32", "ParseDuration"}
    for q in queries:
        target = pool[(q["repo"], q["target"])]
        words = " ".join(q["query"].lower().rstrip(".").split())
        for cand in (c for (repo, _), c in pool.items() if repo == q["repo"]):
            assert words not in " ".join(cand["code"].lower().split()), (q["query"], cand["code"])
        assert q["name"].rsplit(".", 1)[-1] in target["code_plain"]  # the answer is in the pool, doc-free


def test_dropping_the_first_sentence_keeps_a_signature_the_docstring_repeats() -> None:
    from codeneedle.training.mining import _drop_first_sentence

    code = "def scale(value, factor):\n    x = value * factor\n    return x"
    with_doc = ('def scale(value, factor):\n    """scale(value, factor): multiply the value.\n\n    Details here.\n'
                '    """\n    x = value * factor\n    return x')
    out = _drop_first_sentence(with_doc, "scale(value, factor): multiply the value.", code)
    assert out.startswith("def scale(value, factor):\n")
    assert "multiply the value" not in out and "Details here." in out
    js_code = "function crc32(buf) {\n  return 0;\n}"
    js = "/**\n * crc32(buf) computes a checksum.\n */\n" + js_code
    assert _drop_first_sentence(js, "crc32(buf) computes a checksum.", js_code).endswith(js_code)


def test_extra_query_styles_come_from_the_doc_and_the_name() -> None:
    from codeneedle.training.mining import STYLE_MIX, doc_params, doc_sentences, name_query

    doc = ("Load the stored items from a JSON file. Items past the limit are silently dropped.\n\n"
           "Args:\n    path: where the stored file lives on disk.\n    limit: x\n\n"
           "Returns:\n    the list of decoded item records.")
    assert doc_sentences(doc) == ["Items past the limit are silently dropped."]
    assert doc_params(doc) == ["where the stored file lives on disk", "the list of decoded item records"]
    assert doc_params("Send it.\n@param {string} url the address to fetch from\n@returns the response body text") \
        == ["the address to fetch from", "the response body text"]
    assert name_query("Store.load_items") == "store load items"
    pair = Pair("pypi:p", "python", "p/m.py", "Store.load_items", "method", 3, "Load the stored items from a JSON file.",
                doc, "def load_items(self, path, limit):\n    x = 1\n    return x",
                f'def load_items(self, path, limit):\n    """{doc}"""\n    x = 1\n    return x')
    rng = random.Random(0)
    recs = [training_examples(pair, rng, {**STYLE_MIX, "name": 0.3, "sentence": 0.3, "param": 0.3})
            for _ in range(200)]
    styles = {r["query_style"] for r in recs}
    assert styles == {"doc", "web", "name", "sentence", "param"}
    for r in recs:
        if r["query_style"] in ("sentence", "param", "name"):
            assert r["code_variant"] == "nodoc" and '"""' not in r["code"]
    # off by default: the shipped recipe's data is unchanged
    rng = random.Random(1)
    assert {r["query_style"] for r in (training_examples(pair, rng) for _ in range(100))} == {"doc", "web"}


def test_a_debian_rust_crate_is_a_repository_of_its_own(tmp_path: Path) -> None:
    crate = tmp_path / "debian" / "librust-tinyqueue-dev" / "usr" / "share" / "cargo" / "registry" / "tinyqueue-0.3.1"
    (crate / "src").mkdir(parents=True)
    (crate / "src" / "lib.rs").write_text(
        "pub struct Queue { items: Vec<u32> }\n\nimpl Queue {\n"
        "    /// Removes the oldest item and returns it, if there is one.\n"
        "    pub fn pop_front(&mut self) -> Option<u32> {\n"
        "        if self.items.is_empty() { None } else { Some(self.items.remove(0)) }\n    }\n}\n")
    (repo,) = discover_repos(tmp_path)
    assert repo.id == "crate:tinyqueue" and repo.root == crate
    pairs, _ = mine_repo(repo)
    assert [(p.name, p.query) for p in pairs] == [("Queue.pop_front", "Removes the oldest item and returns it, if there is one.")]
    assert "oldest" not in pairs[0].code
