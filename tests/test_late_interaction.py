"""The second stage for typed questions (late interaction): which queries take it, MaxSim on the real encoder,
and its place in the search every door runs, through the CLI."""

from __future__ import annotations

import json
import queue
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from codeneedle.indexer.chunks import FUNCTION, METHOD
from codeneedle.indexer.encoder import Encoder
from codeneedle.indexer.index import Index
from codeneedle.indexer.late_interaction import CODE_TOKENS, DEPTH, is_typed_question, late_rerank, maxsim
from codeneedle.indexer.settings import IndexSettings
from codeneedle.indexer.store import ChunkRow
from tests.conftest import run_needle
from tests.test_rerank import CHUNK, PARSE_COOKIE, SLUGIFY, cli_search, row


@pytest.mark.parametrize("query", [
    "python check if a variable is iterable",
    "how to read a file line by line",
    "parse the cookie header of a request",
    "get distinct in list python",
    "python 3 remove directory recursively",
    "how to check if file doesn't exist in python",  # an apostrophe is prose
    "How do I read a file line by line?",  # a capital, but asked: a question mark
    "What is the fastest way to sort a list",  # or a question word first
    "Is this string a valid email address?",
])
def test_questions_typed_in_plain_words_take_late_interaction(query):
    assert is_typed_question(query)


@pytest.mark.parametrize("query", [
    "Return the sum of the values.",  # a doc comment's first sentence: capital, full stop
    "Parse a Cookie header into a dict",
    "Returns the sum of the values",  # a doc comment without its full stop
    "When adding a value to a list, the mean need not be computed again.",  # a question word, but a full stop
    "How does parse_cookie split the header?",  # asked, but about code
    "split a list into groups of equal size.",
    "slugify",  # one word: a name, or too little to compare token by token
    "Session.request",
    "what does parse_cookie return",  # names an identifier: the rules' name tiers and the cross-encoder
    "how to call len(items) on a generator",
    "sort the values with compareFn in place",
    "python 'worksheet' object is not callable",  # a quoted error message
    "how do i get the list of all the files in a folder and its sub folders and the files in those "
    "sub folders too please",  # more than 20 words: pasted text, not a question
    "   ",
])
def test_doc_comment_sentences_names_code_and_long_text_keep_the_cross_encoder(query):
    assert not is_typed_question(query)


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    return Encoder.load(None)


@pytest.mark.slow
def test_maxsim_prefers_the_code_whose_tokens_answer_the_question(encoder):
    rows = [row(1, "chunk", CHUNK), row(2, "slugify", SLUGIFY), row(3, "parse_cookie", PARSE_COOKIE)]
    cookies = maxsim(encoder, "read the cookies a browser sent", rows)
    assert int(np.argmax(cookies)) == 2
    assert abs(float(cookies.sum())) < 1e-5  # centred: only the differences between candidates move them
    assert int(np.argmax(maxsim(encoder, "turn a title into a url slug", rows))) == 1
    assert int(np.argmax(maxsim(encoder, "split a list into groups of equal size", rows))) == 0
    assert maxsim(encoder, "anything at all", []).shape == (0,)
    assert not maxsim(encoder, "\u200b \u200b", rows).any()  # no tokens the tokenizer keeps: no opinion


TRUNCATE = ('export function truncateText(text: string, max: number): string {\n'
            '  return text.length <= max ? text : text.slice(0, max - 1) + "…";\n}')
RUBY_SLUGIFY = 'def self.slugify(title)\n  title.downcase.strip.gsub(/[^a-z0-9]+/, "-").gsub(/^-|-$/, "")\nend'


@pytest.mark.slow
def test_a_doc_comment_above_the_code_is_read_with_it(encoder):
    """A JSDoc block is kept beside the chunk's text, not in it: MaxSim reads it, as the re-ranker does."""
    def truncate(doc: str) -> ChunkRow:
        return ChunkRow(1, "web/format.ts", "typescript", FUNCTION, "truncateText", 8, 10, 0, len(TRUNCATE),
                        TRUNCATE, doc, "")

    slugify = ChunkRow(2, "lib/text/slug.rb", "ruby", METHOD, "Text.slugify", 3, 5, 0, len(RUBY_SLUGIFY),
                       RUBY_SLUGIFY, "", "")
    query = "abbreviate a sentence"
    assert int(np.argmax(maxsim(encoder, query, [truncate(""), slugify]))) == 1  # the code alone says little
    assert int(np.argmax(maxsim(encoder, query, [truncate("Abbreviate a sentence."), slugify]))) == 0


@pytest.mark.slow
def test_a_candidates_token_states_do_not_depend_on_the_candidates_beside_it(encoder):
    """int8 activations are quantized per run: each candidate runs alone, so its score is the same in any list."""
    bulk = encoder.bulk()
    alone = bulk.token_states([CHUNK], CODE_TOKENS)[0]
    among = bulk.token_states([SLUGIFY, CHUNK, PARSE_COOKIE], CODE_TOKENS)[1]
    np.testing.assert_array_equal(alone, among)
    assert alone.shape == (min(CODE_TOKENS, alone.shape[0]), encoder.dim)
    long = bulk.token_states([CHUNK * 20], CODE_TOKENS)[0]
    assert long.shape[0] == CODE_TOKENS  # a long chunk is cut


@pytest.mark.slow
def test_a_typed_question_does_not_wait_for_the_chunks_being_embedded(encoder):
    """An index update keeps every embedding worker and session busy; a search's token states run beside them.
    Queued behind the update's batches, a typed question waited seconds while a repository was indexed."""
    bulk = encoder.bulk()
    release = threading.Event()
    sessions = []
    while True:  # every session in use, as when each worker is running a batch
        try:
            sessions.append(bulk._sessions.get_nowait())
        except queue.Empty:
            break
    blocked = [bulk._pool.submit(release.wait) for _ in range(bulk.workers)] if bulk._pool is not None else []
    search = ThreadPoolExecutor(1)
    try:
        states = search.submit(bulk.token_states, ["read the cookies", CHUNK], CODE_TOKENS).result(timeout=30)
        assert not any(f.done() for f in blocked)  # it ran while all of them waited
    finally:
        release.set()
        for session in sessions:
            bulk._sessions.put(session)
        search.shutdown()
    np.testing.assert_array_equal(states[1], bulk.token_states([CHUNK], CODE_TOKENS)[0])


def library_order(repo, query: str, k: int) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(the first stage's top k, the same re-ordered by late interaction), computed by the library's parts."""
    with Index.open(repo, IndexSettings(), create=False) as index:
        first = index.hits(query, k, rerank=False)
        found = [(h.row.id, h.score, h.row) for h in first]
        late = late_rerank(index.encoder, query, found)
    return [(h.row.path, h.row.name) for h in first], [(r.path, r.name) for _, _, r in late]


@pytest.mark.slow
def test_a_typed_question_is_reordered_by_late_interaction_whichever_cross_encoder_is_installed(
        rankrepo, tiny_reranker, monkeypatch):
    monkeypatch.delenv("NEEDLE_RERANKER", raising=False)
    query = "parse the cookie header of a request"
    first, expected = library_order(rankrepo, query, 20)
    shipped = cli_search(rankrepo, query, "-k", "20")
    assert shipped == expected
    assert sorted(shipped[:DEPTH]) == sorted(first[:DEPTH]) and shipped[DEPTH:] == first[DEPTH:]
    assert shipped[:DEPTH] != first[:DEPTH]  # it does move them here
    # The cross-encoder is not asked: another one installed changes nothing for this query.
    assert cli_search(rankrepo, query, "-k", "20", env={"NEEDLE_RERANKER": str(tiny_reranker)}) == shipped
    # --no-rerank and NEEDLE_RERANKER=off leave the first stage alone, as they do for every query.
    assert cli_search(rankrepo, query, "-k", "20", "--no-rerank") == first
    assert cli_search(rankrepo, query, "-k", "20", env={"NEEDLE_RERANKER": "off"}) == first


@pytest.mark.slow
@pytest.mark.parametrize("query", ["check if a value can be iterated", "Serialise a cookie into a Set-Cookie header."])
def test_a_second_stage_that_cannot_load_leaves_the_first_stages_answer(rankrepo, tmp_path, monkeypatch, query):
    """The second stage's model cannot be read (its graph in the cache is damaged): the query still gets its
    results, in the first stage's order, and is told why once, whichever second stage the query takes. (A cache
    that cannot be written no longer stops it: the graphs are then built in a temporary folder, test_install.py.)"""
    from codeneedle.indexer.models import RERANK_MODEL, SHIPPED_MODELS_DIR, resolve_model
    from codeneedle.indexer.onnx_bert import model_file

    cache = tmp_path / "cache"
    monkeypatch.setenv("NEEDLE_CACHE_DIR", str(cache))
    for folder in (resolve_model(None)[1], SHIPPED_MODELS_DIR / RERANK_MODEL):  # late interaction, re-ranker
        model_file(folder, "int8").write_bytes(b"not an ONNX graph")
    first = cli_search(rankrepo, query, "--no-rerank")
    proc = run_needle("search", query, "--path", str(rankrepo), "--json", "--no-refresh",
                      env={"NEEDLE_CACHE_DIR": str(cache)})
    assert proc.returncode == 0, proc.stderr
    assert [(r["path"], r["name"]) for r in json.loads(proc.stdout)["results"]] == first
    assert "cannot run" in proc.stderr and "first stage's order" in proc.stderr and "Traceback" not in proc.stderr
