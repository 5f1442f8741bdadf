"""What a new user meets outside the checkout: the wheel holds every file the code loads and runs from it alone,
the command's help and its doors (`python -m codeneedle`, `needle` alone, `needle mcp` without its extra), and
the first run on a fresh or read-only home (no telemetry written, a cache that cannot be written is no error)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from codeneedle import __version__
from codeneedle.cli import build_parser, main
from tests.conftest import NEEDLE, run_needle

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "codeneedle"
# In the source tree for people, not loaded by any code.
NOT_SHIPPED = {"codeneedle/indexer/queries/README.md"}


def test_python_dash_m_codeneedle_is_the_needle_command(tmp_path):
    out = subprocess.run([sys.executable, "-m", "codeneedle", "--version"], capture_output=True, text=True,
                         timeout=60, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"needle {__version__}"


def test_needle_alone_lists_the_commands(capsys):
    assert main([]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: needle")
    for command in ("index", "search", "similar", "status", "watch", "lsp", "mcp", "train", "eval"):
        assert f"\n    {command} " in err, command


def test_every_command_says_what_it_does_and_every_option_has_help():
    parser = build_parser()
    for name, sub in parser._subparsers._group_actions[0].choices.items():
        assert sub.description, f"`needle {name} --help` has no description"
        bare = [a.option_strings or [a.dest] for a in sub._actions if not a.help]
        assert not bare, f"`needle {name} --help`: no help for {bare}"


def test_needle_mcp_without_the_mcp_sdk_says_how_to_install_it(monkeypatch, capsys):
    """`mcp` is an optional extra: installed from the wheel alone, `needle mcp` was a two-screen traceback."""
    # What Python does for a package that is not installed; its submodules too, should another test of this
    # process have imported them (an imported submodule is found without its parent).
    for name in ["mcp", *(m for m in sys.modules if m.startswith("mcp."))]:
        monkeypatch.setitem(sys.modules, name, None)
    for name in [m for m in sys.modules if m.startswith("codeneedle.server.mcp")]:
        monkeypatch.delitem(sys.modules, name)
    assert main(["mcp"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("needle: error: `needle mcp` needs the MCP SDK")
    assert f"codeneedle-{__version__}-py3-none-any.whl[mcp]" in err and "Traceback" not in err


def test_onnxruntime_writes_no_telemetry_into_a_fresh_home(tmp_path):
    """onnxruntime 1.32 writes a device id and a queue of events to upload into
    ~/.cache/Microsoft/DeveloperTools/.onnxruntime on its first session; Needle keeps everything on the machine."""
    probe = (
        "import numpy as np\n"
        "from onnx import TensorProto, helper\n"
        "from codeneedle.indexer import native\n"
        "ort = native.onnxruntime()\n"
        "io = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1]) for n in 'xy']\n"
        "graph = helper.make_graph([helper.make_node('Identity', ['x'], ['y'])], 'g', io[:1], io[1:])\n"
        "model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)])\n"
        "model.ir_version = 8\n"
        "session = ort.InferenceSession(model.SerializeToString(), providers=['CPUExecutionProvider'])\n"
        "print(session.run(None, {'x': np.ones(1, np.float32)})[0][0])\n"
    )
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY"}
    env.update(HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"))
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, env=env,
                         cwd=ROOT)
    assert out.returncode == 0 and out.stdout.strip() == "1.0", out.stderr
    assert not list(home.rglob("*")), [str(p.relative_to(home)) for p in home.rglob("*")]


def _shipped_paths() -> list[str]:
    """Every file the code loads from its own package, as the code names it (package-relative)."""
    from codeneedle.indexer.backends import QUANTIZATION_RECORD
    from codeneedle.indexer.encoder import QUERY_TOWER
    from codeneedle.indexer.languages import _QUERY_FILES, QUERY_DIR, SUPPORTED_LANGUAGES
    from codeneedle.indexer.models import RERANK_MODEL, SHIPPED_MODELS_DIR, TUNED_MODEL
    from codeneedle.indexer.rerank import HEAD_FILE
    from codeneedle.training.query_tower import TOWER_RECORD
    from codeneedle.training.repos import MANIFEST

    encoder, reranker = SHIPPED_MODELS_DIR / TUNED_MODEL, SHIPPED_MODELS_DIR / RERANK_MODEL
    paths = [QUERY_DIR / f"{_QUERY_FILES.get(name, name)}.scm" for name in SUPPORTED_LANGUAGES]
    paths += [encoder / f for f in ("config.json", "model.safetensors", "tokenizer.json", "replay.jsonl.gz")]
    paths += [encoder / QUERY_TOWER / TOWER_RECORD, encoder / QUERY_TOWER / "model.safetensors"]
    paths += [reranker / f for f in ("config.json", "model.safetensors", "tokenizer.json", HEAD_FILE)]
    paths += [QUANTIZATION_RECORD, MANIFEST]
    return sorted({p.resolve().relative_to(ROOT).as_posix() for p in paths})


@pytest.mark.slow  # builds the wheel (5 s), then indexes and searches from it alone (the graphs built anew)
def test_the_wheel_holds_every_file_the_code_loads_and_searches_from_it_alone(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(PACKAGE, src / "codeneedle", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                            "--wheel-dir", str(tmp_path / "dist"), str(src)],
                           capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("codeneedle-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())

    loaded = _shipped_paths()
    assert [p for p in loaded if p not in names] == []
    tree = sorted(p.relative_to(src).as_posix() for p in (src / "codeneedle").rglob("*") if p.is_file())
    assert [p for p in tree if p not in names and p not in NOT_SHIPPED] == []

    # From the unpacked wheel alone (the dependencies from this environment): index, then a sentence (the
    # re-ranker) and a typed question (late interaction through the encoder), and the status naming what it uses.
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "settings.py").write_text(
        'import json\n\n\ndef load_settings(path):\n    """Returns the parsed settings of a JSON file."""\n'
        "    with open(path) as fh:\n        return json.load(fh)\n\n\n"
        "def greet(name):\n    return f'hello {name}'\n")
    probe = (
        "import codeneedle, json, sys\n"
        "from codeneedle.cli import main\n"
        f"assert codeneedle.__file__.startswith({str(site)!r}), codeneedle.__file__\n"
        f"for query in ('Returns the parsed settings of a JSON file.', 'how to read a json config'):\n"
        f"    assert main(['search', query, '--path', {str(repo)!r}, '--json', '-k', '2']) == 0\n"
        f"assert main(['status', {str(repo)!r}, '--json']) == 0\n"
    )
    env = {**os.environ, "PYTHONPATH": str(site), "NEEDLE_CACHE_DIR": str(tmp_path / "cache")}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, env=env,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    *answers, status = [json.loads(line) for line in out.stdout.splitlines()]
    assert [a["results"][0]["name"] for a in answers] == ["load_settings", "load_settings"]
    assert status["state"] == "ready"
    assert status["reranker"].startswith(str(site)) and status["query_tower"].startswith(str(site))


@pytest.mark.slow  # a real index and search: the encoder's graph is built in the temporary folder
def test_a_model_cache_that_cannot_be_written_is_no_error(tmp_path, minirepo):
    """A read-only home (a container, a sandbox): every command failed with "cannot write the index in
    <repo>/.needle: Permission denied", naming the wrong folder. Now the graphs are built in a temporary folder
    for the run, and the user is told once how to keep them."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")  # a cache under a file cannot be made, whoever runs the test (root ignores modes)
    repo = tmp_path / "repo"
    shutil.copytree(minirepo, repo, ignore=shutil.ignore_patterns(".needle"))
    proc = run_needle("search", "parse a config file", "--path", str(repo), "--json",
                      env={"NEEDLE_CACHE_DIR": str(blocker / "needle")})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["results"]
    notes = [line for line in proc.stderr.splitlines() if "cannot be written" in line]
    assert len(notes) == 1 and "NEEDLE_CACHE_DIR" in notes[0], proc.stderr
    assert "cannot write the index" not in proc.stderr


def _last_frame(monkeypatch, *snapshots) -> str:
    """The bar's last drawing after these progress snapshots."""
    from rich.console import Console

    from codeneedle import console

    screen = Console(record=True, width=160, force_terminal=True)
    monkeypatch.setattr(console, "err", screen)
    with console.index_progress() as update:
        for snapshot in snapshots:
            update(snapshot)
    text = screen.export_text()
    return text[text.rindex("embedding"):]


def test_the_first_runs_wait_for_the_encoder_is_named(monkeypatch):
    """On a machine's first run the encoder's graph is built before the first batch: seconds at "0/680 chunks"
    with nothing said looked hung."""
    from codeneedle.indexer.types import Progress

    waiting = _last_frame(monkeypatch, Progress("index", 8, 8), Progress("embed", 8, 8, 0, 21))
    assert "0/21 chunks · loading the encoder" in waiting
    going = _last_frame(monkeypatch, Progress("embed", 8, 8, 0, 21), Progress("embed", 8, 8, 10, 21, 50.0, 0.2))
    assert "10/21 chunks · 50.0/s" in going and "loading" not in going


@pytest.mark.slow  # a real index, then three searches in fresh processes
def test_an_ascii_locale_or_output_keeps_non_ascii_names_in_the_index_and_prints_them(tmp_path):
    """Under ``LC_ALL=C PYTHONUTF8=0`` Python decoded file names as ASCII: a non-ASCII name was skipped as a bad
    name and dropped from the index (re-added by the next UTF-8 run), a non-ASCII query was refused, and a result
    with a non-ASCII path ended in a UnicodeEncodeError; so did any result under ``PYTHONIOENCODING=ascii``."""
    repo = tmp_path / "café repo"
    (repo / "sub dir").mkdir(parents=True)
    (repo / "sub dir" / "naïve_módulo.py").write_text(
        'def calcular_año(fecha):\n    """Devuelve el año de una fecha — «ñ»."""\n    return fecha.year\n',
        encoding="utf-8")
    (repo / "plain.py").write_text("def greet(name):\n    return 'hello ' + name\n")
    assert run_needle("index", str(repo), "-q").returncode == 0

    c_locale = {"LC_ALL": "C", "PYTHONUTF8": "0"}
    found = run_needle("search", "calcular_año", str(repo), "-k", "1", "-n", "1", env=c_locale)
    assert found.returncode == 0, found.stderr
    first, code = found.stdout.splitlines()[:2]
    assert first.startswith(f"{repo}/sub dir/naïve_módulo.py:1: calcular_año  (") and code.endswith("calcular_año(fecha):")
    status = json.loads(run_needle("status", str(repo), "--json", env=c_locale).stdout)
    assert status["files"] == 2 and status["skipped"] == {}

    ascii_out = {"PYTHONIOENCODING": "ascii"}
    shown = run_needle("search", "calcular_año", str(repo), "-k", "1", env=ascii_out)
    assert shown.returncode == 0, shown.stderr
    escaped = f"{repo}/sub dir/naïve_módulo.py:1: calcular_año".encode("ascii", "backslashreplace").decode()
    assert shown.stdout.startswith(escaped), shown.stdout
    answer = run_needle("search", "calcular_año", str(repo), "-k", "1", "--json", env=ascii_out)
    assert answer.returncode == 0 and answer.stdout.isascii(), answer.stderr
    assert json.loads(answer.stdout)["results"][0]["path"] == "sub dir/naïve_módulo.py"


@pytest.mark.slow  # a real index, then a search and an --open in fresh processes
def test_the_utf8_restart_leaves_an_editors_environment_and_a_legacy_terminals_encoding_as_they_were(tmp_path):
    """The restart under UTF-8 mode is Needle's own: the editor `--open` starts got ``PYTHONUTF8=1`` (every Python
    tool run from it in UTF-8 mode) and the restart's mark; a Latin-1 terminal got UTF-8 (``cafÃ©``), and a query
    typed there (``caf\\xe9``) was refused as "not valid Unicode", though both worked without the restart; its
    --json stays ASCII (JSON in Latin-1 is no JSON to a reader)."""
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "menu.py").write_text('def café_price():\n    """Price of a café au lait."""\n    return 3\n',
                                  encoding="utf-8")
    assert run_needle("index", str(repo), "-q").returncode == 0
    editor = tmp_path / "editor"
    editor.write_text(f'#!/bin/sh\nenv > "{tmp_path}/editor_env"\n')
    editor.chmod(0o755)
    opened = run_needle("search", "coffee price", str(repo), "--open", "1",
                        env={"LC_ALL": "C", "PYTHONUTF8": "0", "VISUAL": str(editor)})
    assert opened.returncode == 0, opened.stderr
    seen = (tmp_path / "editor_env").read_text().splitlines()
    assert "PYTHONUTF8=0" in seen and not any(line.startswith("NEEDLE_UTF8") for line in seen), seen

    locales = tmp_path / "locales"
    locales.mkdir()
    try:
        made = subprocess.run(["localedef", "-i", "de_DE", "-f", "ISO-8859-1", str(locales / "de_DE.ISO-8859-1")],
                              capture_output=True, timeout=120)
    except OSError:
        made = None
    if made is None or not (locales / "de_DE.ISO-8859-1").is_dir():
        pytest.skip("no localedef or no de_DE locale source: cannot make a Latin-1 locale here")
    latin1 = {k: v for k, v in os.environ.items() if k not in ("PYTHONUTF8", "PYTHONIOENCODING", "LANG")}
    latin1 |= {"LOCPATH": str(locales), "LC_ALL": "de_DE.ISO-8859-1"}
    found = subprocess.run([str(NEEDLE), "search", "café price".encode("latin-1"), str(repo), "-k", "1", "-n", "1"],
                           capture_output=True, timeout=300, env=latin1)
    assert found.returncode == 0, found.stderr.decode("latin-1")
    first, code = found.stdout.decode("latin-1").splitlines()[:2]
    assert first.startswith(f"{repo}/menu.py:1: café_price  (") and code.endswith("def café_price():"), first
    answer = subprocess.run([str(NEEDLE), "search", "café price".encode("latin-1"), str(repo), "-k", "1", "--json"],
                            capture_output=True, timeout=300, env=latin1)
    assert answer.returncode == 0 and answer.stdout.isascii(), answer.stdout  # JSON is UTF-8, or ASCII: never Latin-1
    assert json.loads(answer.stdout)["query"] == "café price"


def test_a_relative_xdg_cache_home_is_ignored_as_the_xdg_spec_asks(monkeypatch, tmp_path):
    """A relative $XDG_CACHE_HOME put ~200 MB of model cache inside whatever folder a command ran in: the
    repository being indexed."""
    from codeneedle.indexer.numpy_bert import user_cache

    monkeypatch.delenv("NEEDLE_CACHE_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", "cache")
    assert user_cache() == tmp_path / ".cache" / "needle"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert user_cache() == tmp_path / "xdg" / "needle"
    # a relative $HOME the same: this process's own temporary cache, not one inside the current folder
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", "me")
    assert user_cache().is_absolute() and user_cache().name.startswith("needle-cache-")


def test_what_a_killed_build_left_in_the_cache_goes_once_an_hour_old(tmp_path):
    """A first run killed while it built a graph (SIGKILL, a closed terminal) left a 90 MB `.fp32-*` folder and
    `.tmp` files that nothing removed; the next entry written sweeps them once they are an hour old."""
    from codeneedle.indexer.numpy_bert import remember_source

    cache = tmp_path / "onnx"
    (cache / ".fp32-abc").mkdir(parents=True)
    (cache / ".fp32-abc" / "model.onnx").write_bytes(b"x")
    (cache / "model-int8.onnx123.tmp").write_bytes(b"x")
    fresh = cache / ".fp32-now"  # a build under way in another process
    fresh.mkdir()
    for old in (cache / ".fp32-abc", cache / "model-int8.onnx123.tmp"):
        os.utime(old, (time.time() - 7200, time.time() - 7200))
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.safetensors").write_bytes(b"w")
    (cache / "entry").write_bytes(b"graph")
    remember_source(cache / "entry", model, [model / "model.safetensors"])
    assert sorted(p.name for p in cache.iterdir()) == [".fp32-now", "entry", "entry.source"]


@pytest.mark.slow  # a real index and search as another user
@pytest.mark.skipif(not hasattr(os, "getuid") or os.getuid() != 0 or not shutil.which("setpriv"),
                    reason="runs the command as a uid without a passwd entry: needs root and setpriv")
def test_a_user_without_a_home_folder_gets_results(minirepo):
    """No $HOME and no passwd entry (a container's arbitrary uid): Path.home() raises, and every command that
    embeds ended in "RuntimeError: Could not determine home directory"."""
    import tempfile

    uid = 54321
    as_user = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "NEEDLE_EMBEDDING_CACHE": "off"}
    if subprocess.run([*as_user, str(NEEDLE), "--version"], capture_output=True, env=env).returncode != 0:
        pytest.skip("this environment's needle cannot be run by another user (a private folder above it)")
    work = Path(tempfile.mkdtemp())  # pytest's own temporary folders are root's alone
    try:
        repo = work / "repo"
        shutil.copytree(minirepo, repo, ignore=shutil.ignore_patterns(".needle"))
        for path in [work, *repo.rglob("*"), repo]:
            os.chown(path, uid, uid)
        out = subprocess.run([*as_user, str(NEEDLE), "search", "parse a config file", "--path", str(repo), "--json"],
                             capture_output=True, text=True, timeout=300, env=env, cwd=repo)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout)["results"]
    assert out.stderr.count("no home folder") == 1 and "Traceback" not in out.stderr


def test_off_a_terminal_the_progress_is_plain_lines(monkeypatch):
    """`needle index 2>log`, a pipe or TERM=dumb: plain lines (a phase's as it starts, see
    test_indexing_progress.py) ending in the last state, without a row of bar glyphs."""
    from rich.console import Console

    from codeneedle import console
    from codeneedle.indexer.types import Progress

    log = Console(record=True, width=120, force_terminal=False)
    monkeypatch.setattr(console, "err", log)
    with console.index_progress() as update:
        update(Progress("embed", 8, 8, 10, 21, 50.0, 0.2))
        update(Progress("embed", 8, 8, 21, 21, 50.0, 0.0))
        update(Progress("done", 8, 8, 21, 21))
    text = log.export_text()
    assert text.splitlines()[-1].startswith("done 21/21 chunks") and "━" not in text, text
