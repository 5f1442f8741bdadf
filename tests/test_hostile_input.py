"""Hostile patterns, files and messages through the real front doors: the CLI as a subprocess, the language
server over stdio, the MCP server through the MCP SDK's client, and a real watcher on a real tree.

Each test is a regression test for one class of attack that once hung, crashed or gave wrong answers. The
subprocess timeouts are hang guards (a regex over "*?*?...Q" once never finished), not speed targets.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest

from codeneedle.indexer.ignore import glob_match
from codeneedle.indexer.index import Index
from codeneedle.indexer.languages import parse_bounded
from codeneedle.indexer.lock import WriterLock
from codeneedle.indexer.search import ranked_rows
from codeneedle.indexer.watcher import Watcher
from tests.conftest import FIXTURES, NEEDLE, run_needle
from tests.lsp.rawclient import RawClient

pytestmark = pytest.mark.slow  # LSP and MCP servers, pathological inputs

# 25 characters: a backtracking regex needs ~n^12 steps on a 40-character name holding a Q (it never returned).
REDOS = "*?" * 12 + "Q"
TRAP = "a" * 30 + "Q" + "a" * 9 + ".py"  # contains Q, does not end with it: the regex's worst case
CAUGHT = "b" * 30 + "Q"  # ends with Q after 12+ characters: the pattern matches it
FUNCTION = "def {name}(value):\n    return value + 1\n"


def write(root: Path, files: dict[str, str | bytes]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return root


def search_json(root: Path, query: str, *extra: str, timeout: float = 300) -> list[dict]:
    out = run_needle("search", query, "--path", str(root), "--json", *extra, timeout=timeout)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)["results"]


def indexed_paths(root: Path, *extra: str) -> set[str]:
    out = run_needle("search", "value plus one", "--path", str(root), "--json", "-k", "50", *extra, timeout=300)
    assert out.returncode == 0, out.stderr
    return {r["path"] for r in json.loads(out.stdout)["results"]}


# -- one hostile repository, indexed once through the CLI (every CLI run loads the encoder: keep them few) ---------

FORGED = "x\nforged.py:1: fake  (function, python, 1.000).py"
ESCAPES = "esc\x1b[2J\x1b]0;owned\x07.py"
# Trojan Source: bidi overrides and isolates, a zero-width space, an 8-bit CSI (C1) and DEL, in a name and in code.
TROJAN = "invoice\u202efdp.py"
# Characters str.splitlines() breaks at, inside a string literal: one line for Python, editors and line numbers.
SEPARATORS_CODE = 'def separator_value(value="\u2028\x0c\x1e\x85"):\n    return value + 1\n'
TROJAN_CODE = 'def trojan_value(value):\n    s = "admin\u202e \u2066// check\u2069 \u200b\x9b31m\x7f"\n    return value + 1\n'


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> dict:
    """The repository, the stats of `needle index`, and every result of one broad `needle search --json`."""
    root = tmp_path_factory.mktemp("hostile") / "repo"
    write(root, {
        # globs: ignore files and --exclude with a pattern that froze a regex engine
        "g/.gitignore": f"{REDOS}\n", f"g/{TRAP}": FUNCTION.format(name="g_trap"),
        f"g/{CAUGHT}": FUNCTION.format(name="g_caught"),
        "n/.needleignore": f"{REDOS}\n", f"n/{TRAP}": FUNCTION.format(name="n_trap"),
        f"n/{CAUGHT}": FUNCTION.format(name="n_caught"),
        f"e/{TRAP}": FUNCTION.format(name="e_trap"), f"e/{CAUGHT}": FUNCTION.format(name="e_caught"),
        f"q/{CAUGHT}": FUNCTION.format(name="q_caught"),
        # names that are markup, line breaks and terminal escapes
        "a[/]b.py": FUNCTION.format(name="markup_value"),
        "[bold red]loud[/].py": FUNCTION.format(name="loud_value"),
        FORGED: FUNCTION.format(name="newline_value"),
        ESCAPES: FUNCTION.format(name="escape_value"),
        TROJAN: TROJAN_CODE,
        "separators.py": SEPARATORS_CODE,
        # minified code under ordinary names
        "static/app.bundle.js": b"".join(b"function f%d(a,b){return a*b+%d};" % (i, i) for i in range(20_000)),
        "data.json": json.dumps([{"id": i, "name": f"item{i}"} for i in range(9000)], separators=(",", ":")).encode(),
        "deep.json": b"[" * 5000 + b"]" * 5000,  # long but degenerate: one window, kept
        # classic Mac line endings and a byte-order mark
        "mac.py": b"import os\r\rdef mac_first(value):\r    return value + 1\r\rdef mac_second(value):\r"
                  b"    return value + 1\r",
        "bom.py": "\ufeffdef bom_only(value):\n    return value + 1\n".encode(),
    })
    out = run_needle("index", str(root), "--json", "--exclude", f"e/{REDOS}", timeout=280)
    assert out.returncode == 0, out.stderr
    hits = search_json(root, "value plus one", "--no-refresh", "-k", "100")
    return {"root": root, "stats": json.loads(out.stdout), "hits": hits, "paths": {h["path"] for h in hits}}


@pytest.mark.timeout(120)
def test_pathological_ignore_patterns_and_excludes_are_honoured(hostile: dict) -> None:
    for folder in "gne":
        assert f"{folder}/{TRAP}" in hostile["paths"]
        assert f"{folder}/{CAUGHT}" not in hostile["paths"]
    assert hostile["stats"]["skipped"]["gitignore"] == 1 and hostile["stats"]["skipped"]["needleignore"] == 1
    assert hostile["stats"]["skipped"]["excluded"] == 1


@pytest.mark.timeout(120)
def test_a_pathological_glob_in_a_search_answers_and_filters_correctly(hostile: dict) -> None:
    hits = search_json(hostile["root"], "value plus one", "--no-refresh", "--glob", REDOS, "-k", "20", timeout=100)
    assert {h["path"] for h in hits} == {f"q/{CAUGHT}"}


def test_glob_match_is_gitignore_semantics_and_linear() -> None:
    assert glob_match("*.py", "a/b/c.py") and not glob_match("*.py", "a/b/c.pyc")
    assert glob_match("src/**/*.py", "src/x.py") and glob_match("src/**/*.py", "src/a/b/x.py")
    assert not glob_match("src/**/*.py", "lib/src/x.py")
    assert glob_match("docs", "docs/a/b.md") and glob_match("docs/", "x/docs/b.md")
    assert not glob_match("docs/", "docs")  # a file named docs is not a folder
    assert glob_match("!tests/", "src/a.py") and not glob_match("!tests/", "tests/a.py")
    assert glob_match("\\!x.py", "!x.py")
    path = "/".join(["d" * 50] * 40) + "/" + TRAP
    assert not glob_match(REDOS, path) and glob_match(REDOS, path[:-3] + "Q")
    assert not glob_match("**/" * 30 + "*?" * 30 + "Z", path)


@pytest.mark.timeout(240)
async def test_a_pathological_glob_through_mcp_is_answered(hostile: dict, tmp_path: Path) -> None:
    mcp = pytest.importorskip("mcp")
    from mcp.client.stdio import stdio_client

    from tests.test_mcp import _params, _payload

    # A copy (the MCP server writes its own index, without the CLI's --exclude): e/ is searched here too.
    root = shutil.copytree(hostile["root"], tmp_path / "repo", ignore=shutil.ignore_patterns(".needle"))
    async with stdio_client(_params(root)) as (read, write_):
        async with mcp.ClientSession(read, write_) as session:
            await session.initialize()
            found = _payload(await session.call_tool("search", {"query": "value plus one", "glob": REDOS}))
    assert sorted(r["path"] for r in found["results"]) == [f"e/{CAUGHT}", f"q/{CAUGHT}"]


# -- quadratic parse -------------------------------------------------------------------------------------------

# tree-sitter-python is quadratic on a run of comment lines: 8,000 lines took 38 s on this machine.
COMMENTS = b"def first(value):\n    return value\n" + b"# a comment line\n" * 30_000 + b"def last():\n    pass\n"


def test_parsing_stops_at_its_deadline_and_normal_files_parse() -> None:
    assert parse_bounded("python", COMMENTS, seconds=0.2) is None
    tree = parse_bounded("python", FUNCTION.format(name="ok").encode())
    assert tree is not None and not tree.root_node.has_error


def test_a_parse_keeps_nothing_of_the_text_it_was_fed() -> None:
    """A parse reads its text through a callback, piece by piece; py-tree-sitter 0.25.2 and 0.26.1 kept every
    piece for good, so a language server or `needle watch` grew by the size of each file it chunked again on a
    save (and a first index by the repository's whole source). A text shorter than a piece is read as itself."""
    small = bytes(bytearray(FUNCTION.format(name="small").encode()))  # a new object, referenced here only
    before = sys.getrefcount(small)
    for _ in range(50):
        assert parse_bounded("python", small) is not None
    assert sys.getrefcount(small) == before
    big = "".join(FUNCTION.format(name=f"f{i}") for i in range(300)).encode()  # many pieces, each a new object
    parse_bounded("python", big)
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        for _ in range(20):
            assert parse_bounded("python", big) is not None
        assert parse_bounded("python", COMMENTS, seconds=0.05) is None  # cut short at its deadline
        grown = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
    assert grown < len(big) // 4, f"{grown} bytes kept by 21 parses of {len(big)}-byte texts"


# A read callback interrupted after it chose its piece and before the binding took it: Ctrl-C lands at the check
# after `returned.append(piece)`; a trace function raises at the line after it here. Each piece the callback chose
# is then counted against a piece no one else holds: 1 where the binding still holds it, never below 0.
_INTERRUPTED_READ = """
import linecache, sys
from codeneedle.indexer import languages
seen = []
def local(frame, event, arg):
    if event == "line" and "return piece" in linecache.getline(frame.f_code.co_filename, frame.f_lineno):
        seen.append(frame.f_locals["piece"])
        if len(seen) == 3:
            raise KeyboardInterrupt
    return local
def tracer(frame, event, arg):
    return local if frame.f_code.co_name == "read" and frame.f_globals is vars(languages) else None
languages.parse_bounded("python", b"x = 1\\n")  # the binding probed once, untraced
text = "".join(f"def f{i}(value):\\n    return value + {i}\\n" for i in range(2000)).encode()
sys.settrace(tracer)
try:
    languages.parse_bounded("python", text)
except KeyboardInterrupt:
    pass
sys.settrace(None)
seen.append(bytes(bytearray(b"x")))  # the control
counts = [sys.getrefcount(piece) for piece in seen]
print([n - counts[-1] for n in counts[:-1]])
"""


def test_a_parse_interrupted_in_its_read_callback_frees_no_piece_still_in_use() -> None:
    """The pieces a leaking py-tree-sitter kept are given back after a parse; after an interrupted one the piece it
    never took (Ctrl-C between the callback choosing it and returning it) was given back too, and freed while the
    parse still held it: a crash, or memory reused under it."""
    out = subprocess.run([sys.executable, "-c", _INTERRUPTED_READ], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    counts = json.loads(out.stdout)
    assert len(counts) == 3 and all(n in (0, 1) for n in counts), out.stdout


@pytest.mark.timeout(200)
def test_a_file_that_parses_in_quadratic_time_is_indexed_in_line_windows(tmp_path: Path) -> None:
    root = write(tmp_path / "repo", {"slow.py": COMMENTS, "ok.py": FUNCTION.format(name="fine")})
    hits = search_json(root, "a comment line", "-k", "50", timeout=180)  # builds the index first
    slow = sorted((h["start_line"], h["kind"]) for h in hits if h["path"] == "slow.py")
    assert slow and {kind for _, kind in slow} == {"block"}  # windows, since the parse was cut short
    assert max(line for line, _ in slow) > 1000  # real line numbers, not all on line 1


# -- FIFOs and devices where an indexed file was -----------------------------------------------------------------


@pytest.mark.timeout(300)
def test_a_fifo_dev_zero_or_a_pathological_glob_do_not_block_the_language_server(tmp_path: Path) -> None:
    root = write(tmp_path / "repo", {
        "pipe.py": FUNCTION.format(name="pipe_value"),
        "zero.py": FUNCTION.format(name="zero_value"),
        "fine.py": FUNCTION.format(name="fine_value"),
        f"src/{TRAP}": FUNCTION.format(name="trap"),
        f"src/{CAUGHT}": FUNCTION.format(name="caught"),
    })
    assert run_needle("index", str(root), "--quiet").returncode == 0
    # Another writer holds the index, so the server serves it as it is: stale while the files change.
    lock = WriterLock(root / ".needle")
    lock.acquire()
    (root / "pipe.py").unlink()
    os.mkfifo(root / "pipe.py")
    (root / "zero.py").unlink()
    os.symlink("/dev/zero", root / "zero.py")
    client = RawClient()
    try:
        client.initialize(root)
        client.wait_ready(200)
        for _ in range(3):  # a lost worker thread per search would exhaust the pool: ask more than once
            hits = client.command("needle.search", {"query": "value plus one", "k": 10}, timeout=60)["result"]
            by_uri = {h["uri"]: h["range"] for h in hits}
            assert {(root / n).as_uri() for n in ("pipe.py", "zero.py", "fine.py")} <= set(by_uri)
            # Unreadable now: the range falls back to the start of the following line.
            assert by_uri[(root / "pipe.py").as_uri()]["end"] == {"line": 2, "character": 0}
            assert by_uri[(root / "zero.py").as_uri()]["end"] == {"line": 2, "character": 0}
            assert by_uri[(root / "fine.py").as_uri()]["end"] == {"line": 1, "character": 20}
        # A glob that froze the server (the regex held the GIL): a status request is answered meanwhile.
        box = client.expect(9001)
        client.send({"jsonrpc": "2.0", "id": 9001, "method": "workspace/executeCommand",
                     "params": {"command": "needle.search", "arguments": [{"query": "value plus one", "glob": REDOS}]}})
        assert "folders" in client.command("needle.status", timeout=60)["result"]
        hits = client.wait_response(9001, box, timeout=60)["result"]
        assert [h["uri"] for h in hits] == [(root / "src" / CAUGHT).as_uri()]
    finally:
        client.close()
        lock.release()


# -- the watcher -----------------------------------------------------------------------------------------------


@pytest.fixture
def watched(tmp_path: Path):
    root = write(tmp_path / "repo", {"pkg/inner.py": FUNCTION.format(name="inner_value"),
                                     "top.py": FUNCTION.format(name="top_value")})
    index = Index.open(root)
    index.update()
    batches: list = []
    watcher = Watcher(index, debounce=0.05, on_batch=batches.append, reconcile_every=0.5)
    yield root, index, watcher, batches
    watcher.stop()
    index.close()


def _settle(watcher: Watcher) -> None:
    for _ in range(2):
        time.sleep(0.3)
        assert watcher.wait_idle(60)


def test_a_folder_moved_out_and_replaced_by_a_file_leaves_no_ghosts(watched, tmp_path: Path) -> None:
    root, index, watcher, _ = watched
    watcher.start()
    os.rename(root / "pkg", tmp_path / "parked")
    (root / "pkg").write_text(FUNCTION.format(name="now_a_file"))
    _settle(watcher)
    assert set(index.reader().file_records()) == {"pkg", "top.py"}
    assert {r.path for r in index.search("value plus one", k=10)} == {"pkg", "top.py"}


def test_the_periodic_reconcile_finds_changes_no_event_reported(watched) -> None:
    root, index, watcher, batches = watched
    # Written after the index was built but before watching began: no event will ever name it.
    (root / "unseen.py").write_text(FUNCTION.format(name="unseen_value"))
    watcher.start()
    deadline = time.monotonic() + 30
    while "unseen.py" not in index.reader().file_records() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "unseen.py" in index.reader().file_records()
    assert watcher.wait_idle(30)
    assert batches and batches[-1].full_scan


# -- terminal output -------------------------------------------------------------------------------------------


@pytest.mark.timeout(300)
def test_file_names_cannot_forge_lines_drive_the_terminal_or_break_markup(hostile: dict) -> None:
    out = run_needle("search", "value plus one", "--path", str(hostile["root"]), "--no-refresh", "-k", "100")
    assert out.returncode == 0, out.stderr
    assert "\x1b" not in out.stdout and "\x07" not in out.stdout
    result_lines = [ln for ln in out.stdout.splitlines() if not ln.startswith("    ")]
    assert len(result_lines) == len(hostile["hits"]), out.stdout  # one line per result: nothing forged
    assert "a[/]b.py:1: markup_value  (function, python," in out.stdout
    assert "[bold red]loud[/].py:1: loud_value  (function, python," in out.stdout
    assert "x\\nforged.py:1: fake  (function, python, 1.000).py:1: newline_value" in out.stdout
    assert "esc\\x1b[2J\\x1b]0;owned\\x07.py:1: escape_value" in out.stdout
    assert not any(ln.startswith("forged.py") for ln in result_lines)


@pytest.mark.timeout(300)
def test_open_prints_such_a_file_name_shown_and_hands_the_editor_the_file_itself(hostile: dict, tmp_path: Path) -> None:
    """`--open N` with no editor prints path:line: it wrote the name raw (a title change, or with OSC 52 a
    clipboard write, by a file in a cloned repository). The editor still gets the exact path, as one argument."""
    root = hostile["root"]
    printed = run_needle("search", "escape_value", "--path", str(root), "--no-refresh", "--open", "1",
                         "--no-feedback", env={"EDITOR": "", "VISUAL": ""})
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout == f"{root}/esc\\x1b[2J\\x1b]0;owned\\x07.py:1\n"
    editor = tmp_path / "editor.py"
    editor.write_text(f"#!{sys.executable}\nimport json, sys\njson.dump(sys.argv[1:], open({str(tmp_path / 'argv')!r}, 'w'))\n")
    editor.chmod(0o755)
    for name, query in ((ESCAPES, "escape_value"), (FORGED, "newline_value")):
        opened = run_needle("search", query, "--path", str(root), "--no-refresh", "--open", "1", "--no-feedback",
                            env={"EDITOR": str(editor), "VISUAL": ""})
        assert opened.returncode == 0, opened.stderr
        assert json.loads((tmp_path / "argv").read_text()) == ["+1", str(root / name)]


@pytest.mark.timeout(120)
def test_an_error_naming_such_a_path_shows_it_and_does_not_obey_it(hostile: dict) -> None:
    out = run_needle("similar", f"{hostile['root']}/gone\x1b]52;c;ZWNobyBvd25lZA==\x07.py:1")
    assert out.returncode == 1 and "\x1b" not in out.stderr and "\x07" not in out.stderr
    assert out.stderr.endswith("gone\\x1b]52;c;ZWNobyBvd25lZA==\\x07.py\n"), out.stderr


@pytest.mark.timeout(120)
def test_json_carries_bidi_and_control_characters_exactly_as_escapes_never_raw(hostile: dict) -> None:
    """JSON escapes only ASCII controls: U+202E, U+2066, U+200B, U+009B and DEL came out raw, to be reordered or
    obeyed by the terminal showing it. They are \\u escapes now; what a JSON reader gets is unchanged."""
    out = subprocess.run([str(NEEDLE), "search", "trojan_value", "--path", str(hostile["root"]), "--no-refresh",
                          "--json", "-k", "1"], capture_output=True, timeout=120)
    assert out.returncode == 0, out.stderr
    for raw in ("\u202e", "\u2066", "\u2069", "\u200b", "\x9b", "\x7f", "\x1b"):
        assert raw.encode() not in out.stdout, raw
    assert b"invoice\\u202efdp.py" in out.stdout and b"\\u009b31m\\u007f" in out.stdout
    (hit,) = json.loads(out.stdout)["results"]
    assert hit["path"] == TROJAN and hit["snippet"] == TROJAN_CODE.rstrip("\n")


@pytest.mark.timeout(120)
def test_a_line_holding_a_line_separator_or_form_feed_stays_one_line(hostile: dict) -> None:
    """Snippets were cut with str.splitlines(), which also breaks at U+2028, NEL, form feed and \\x1c-\\x1e: the
    def line above showed as `def separator_value(value="` in every door, the rest as another line."""
    (hit,) = [h for h in hostile["hits"] if h["name"] == "separator_value"]
    assert hit["snippet"] == SEPARATORS_CODE.rstrip("\n")
    out = run_needle("search", "separator_value", "--path", str(hostile["root"]), "--no-refresh", "-k", "1")
    assert out.stdout.splitlines()[1] == '    def separator_value(value="\\u2028\\x0c\\x1e\\x85"):', out.stdout


@pytest.mark.timeout(300)
def test_a_terminal_in_a_legacy_encoding_gets_escapes_not_a_traceback(tmp_path: Path) -> None:
    """A Latin-1 or ASCII terminal cannot show a CJK name or an emoji: the search ended in a UnicodeEncodeError
    traceback (people output and --json alike). Such characters are written as \\u escapes; the JSON stays exact."""
    repo = write(tmp_path / "repo", {"sums.py": 'def 合計(値):\n    """Summe … 😀"""\n    return 値\n'})
    people = run_needle("search", "合計", "--path", str(repo), "-n", "2", env={"PYTHONIOENCODING": "latin-1"})
    assert people.returncode == 0 and "Traceback" not in people.stderr, people.stderr
    assert people.stdout.splitlines()[0].startswith(f"{repo}/sums.py:1: \\u5408\\u8a08  (function, python,")
    assert people.stdout.splitlines()[2] == '      2     """Summe \\u2026 \\U0001f600"""'
    scripts = run_needle("search", "合計", "--path", str(repo), "--json", env={"PYTHONIOENCODING": "ascii"})
    assert scripts.returncode == 0 and scripts.stdout.isascii(), scripts.stderr
    assert json.loads(scripts.stdout)["results"][0]["snippet"].endswith('"""Summe … 😀"""\n    return 値')


def test_minified_code_under_any_name_is_skipped_and_counted(hostile: dict) -> None:
    assert hostile["stats"]["skipped"]["minified"] == 2  # not deep.json: long lines of one repeated character
    assert not {"static/app.bundle.js", "data.json"} & hostile["paths"]
    status = json.loads(run_needle("status", str(hostile["root"]), "--json").stdout)
    assert status["skipped"]["minified"] == 2


def test_cr_only_line_endings_and_a_byte_order_mark(hostile: dict) -> None:
    found = {(h["path"], h["name"]): (h["start_line"], h["end_line"], h["snippet"]) for h in hostile["hits"]}
    assert found[("mac.py", "mac_first")][:2] == (3, 4)
    assert found[("mac.py", "mac_second")][:2] == (6, 7)
    assert found[("bom.py", "bom_only")] == (1, 2, "def bom_only(value):\n    return value + 1")
    assert [name for path, name in found if path == "bom.py"] == ["bom_only"]  # no junk chunk for the mark


def test_stale_vector_ids_ranked_first_do_not_hide_real_hits(tmp_path: Path) -> None:
    root = write(tmp_path / "repo", {f"m{i}.py": FUNCTION.format(name=f"f{i}") for i in range(3)})
    with Index.open(root) as index:
        index.update()
        store = index.reader()
        real = sorted(r.id for p in store.file_records() for r in store.chunks_in_file(p))
        # What a reader sees when a writer replaced thousands of chunks between its ANN search and its row fetch.
        ranked = [(10_000_000 + i, 1.0) for i in range(3000)] + [(cid, 0.5) for cid in real]
        assert [row.name for _cid, _score, row in ranked_rows(store, ranked, k=10)] == ["f0", "f1", "f2"]


def test_a_negative_max_file_bytes_is_a_clear_error_and_touches_nothing(tmp_path: Path) -> None:
    root = write(tmp_path / "repo", {"a.py": FUNCTION.format(name="a")})
    out = run_needle("index", str(root), "--max-file-bytes", "-1")
    assert out.returncode == 2
    assert "--max-file-bytes: must be a positive number of bytes, got -1" in out.stderr
    assert not (root / ".needle").exists()


def test_a_malformed_time_setting_in_the_environment_is_set_aside(tmp_path: Path, monkeypatch) -> None:
    """NEEDLE_COMMIT_SECONDS=2s stopped every indexing command with a traceback, and NEEDLE_MCP_WAIT=abc the MCP
    server before its first answer; like the other knobs, a value that is no number of seconds is ignored."""
    from codeneedle.server.mcp_server import DEFAULT_WAIT_S, NeedleMCP

    root = write(tmp_path / "repo", {"a.py": FUNCTION.format(name="a")})
    proc = run_needle("search", "--json", "a", str(root), env={"NEEDLE_COMMIT_SECONDS": "2s",
                                                                "NEEDLE_BATCH_FILES": "many", "NEEDLE_BATCH_CHUNKS": "0"})
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert json.loads(proc.stdout)["results"][0]["name"] == "a"
    for value in ("abc", "-1", "nan"):
        monkeypatch.setenv("NEEDLE_MCP_WAIT", value)
        assert NeedleMCP(root).wait == DEFAULT_WAIT_S
    monkeypatch.setenv("NEEDLE_MCP_WAIT", "0")  # answer at once over what is indexed: a real choice, kept
    assert NeedleMCP(root).wait == 0
    ray = subprocess.run([sys.executable, "-c", "import codeneedle.indexer.ray_embed as r; "
                          "print(r.TEXTS_PER_CALL, r.ACTOR_START_TIMEOUT_S)"], capture_output=True, text=True,
                         env={**os.environ, "NEEDLE_RAY_BATCH": "lots", "NEEDLE_RAY_ACTOR_TIMEOUT": "2m"}, timeout=60)
    assert ray.returncode == 0 and ray.stdout.split() == ["64", "120.0"], ray.stderr


# -- LSP lifecycle -----------------------------------------------------------------------------------------------


def test_lsp_refuses_requests_before_initialize_and_a_second_initialize(tmp_path: Path) -> None:
    root = shutil.copytree(FIXTURES / "minirepo", tmp_path / "repo")
    other = write(tmp_path / "other", {"o.py": FUNCTION.format(name="other")})
    client = RawClient()
    try:
        early = client.request("shutdown", None, timeout=30)
        assert early["error"]["code"] == -32002
        first = client.initialize(root)
        assert "capabilities" in first["result"]  # shutdown before initialize did not poison the session
        again = client.request("initialize", {"processId": None, "rootUri": other.as_uri(), "capabilities": {}})
        assert again["error"]["code"] == -32600 and "only once" in again["error"]["message"]
        status = client.command("needle.status")["result"]
        assert [f["root"] for f in status["folders"]] == [str(root)]
        assert not (other / ".needle").exists()
    finally:
        client.close()


def test_a_query_of_bytes_that_are_not_utf8_is_a_clear_error(tmp_path: Path) -> None:
    """argv carries such bytes as lone surrogates; the tokenizer cannot take them, so the CLI says what is wrong."""
    repo = write(tmp_path / "repo", {"a.py": "def read_file(path):\n    return open(path).read()\n"})
    proc = run_needle("search", "read \udcff\udcfe file", "--path", str(repo))
    assert proc.returncode != 0 and "not valid Unicode" in proc.stderr and "Traceback" not in proc.stderr
    queries = tmp_path / "queries.txt"
    queries.write_bytes(b"read a file\nread \xff\xfe file\n")
    proc = run_needle("search", "--queries", str(queries), "--path", str(repo), "--json")
    assert "Traceback" not in proc.stderr, proc.stderr
    assert json.loads(proc.stdout.splitlines()[0])["results"][0]["name"] == "read_file"


def test_a_bad_line_in_a_batch_is_reported_by_number_and_the_batch_goes_on(tmp_path: Path) -> None:
    repo = write(tmp_path / "repo", {"a.py": "def read_file(path):\n    return open(path).read()\n"})
    batch = tmp_path / "batch.txt"
    batch.write_bytes(b"read a file\n" + b"y" * 5000 + b"\nread \xff file\nopen a file\nread\x00 file\n")
    proc = run_needle("search", "--queries", str(batch), "--path", str(repo), "--json", "-k", "1")
    answers = [json.loads(line) for line in proc.stdout.splitlines()]
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert [a.get("line") for a in answers] == [None, 2, 3, None, 5]
    assert "too long" in answers[1]["error"] and "not valid Unicode" in answers[2]["error"]
    assert "contains a NUL character (at character 4)" in answers[4]["error"]
    assert answers[3]["results"][0]["name"] == "read_file"  # the line after them is still answered
    proc = run_needle("search", "--queries", "-", "--path", str(repo), "-k", "1",
                      input=batch.read_bytes().decode("latin-1").replace("\xff", ""))
    assert proc.returncode == 1 and proc.stderr.startswith("needle: error: line 2: query is too long")
    assert [line for line in proc.stdout.splitlines() if line.startswith("# ")] == [
        "# read a file", "# read  file", "# open a file"]
