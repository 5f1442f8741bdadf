"""The feedback loop: the local log of opened results (bounded, opt-out), `needle search --open N` as a user
runs it, and `needle train --repo` turning the log into triplets beside the mined pairs."""

from __future__ import annotations

import json
import os
import shutil
import stat
import sysconfig
from pathlib import Path

import pytest

from codeneedle.indexer.feedback import LOG_NAME, Shown, read_events, record_open
from tests.conftest import run_needle

pytestmark = pytest.mark.slow  # a training run and CLI subprocesses

STDLIB = Path(sysconfig.get_paths()["stdlib"])
MODULES = ("textwrap.py", "shlex.py", "fnmatch.py", "base64.py")


def test_the_log_is_bounded_and_keeps_the_newest_events(tmp_path):
    for i in range(400):
        assert record_open(tmp_path, f"query number {i}", Shown("a.py", i + 1, "f"), [Shown("b.py", 3)],
                           max_bytes=8192)
    assert (tmp_path / LOG_NAME).stat().st_size <= 8192
    events = read_events(tmp_path)
    assert 40 < len(events) < 400 and events[-1]["query"] == "query number 399"
    assert [e["opened"]["start_line"] for e in events] == sorted(e["opened"]["start_line"] for e in events)


def test_recording_can_be_turned_off_and_bad_lines_are_skipped(tmp_path, monkeypatch):
    assert not record_open(tmp_path, "q", Shown("a.py", 1), setting=False)
    monkeypatch.setenv("NEEDLE_FEEDBACK", "off")
    assert not record_open(tmp_path, "q", Shown("a.py", 1))
    assert not (tmp_path / LOG_NAME).exists()
    monkeypatch.delenv("NEEDLE_FEEDBACK")
    assert not record_open(tmp_path, "   ", Shown("a.py", 1))  # nothing to learn from
    assert record_open(tmp_path, "read a file", Shown("a.py", 1), [Shown("a.py", 1), Shown("c.py", 9)])
    with open(tmp_path / LOG_NAME, "a") as fh:
        fh.write('{"half": \n[1, 2]\n')
    (event,) = read_events(tmp_path)
    assert event["above"] == [{"path": "c.py", "start_line": 9, "name": ""}]  # the opened one is not "above"


def test_two_writers_trimming_the_same_log_at_once_lose_nothing_but_old_events(tmp_path):
    """The language server and a CLI run record into one log; each trims it past its bound."""
    import threading

    errors: list[BaseException] = []

    def writer(who: str) -> None:
        try:
            for i in range(150):
                record_open(tmp_path, f"{who} query {i}", Shown("a.py", i + 1), max_bytes=4096)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(who,)) for who in ("server", "cli")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    events = read_events(tmp_path)
    assert events and all(e["query"].split()[0] in ("server", "cli") for e in events)
    assert not list(tmp_path.glob("*.tmp"))


def test_an_event_that_is_not_valid_unicode_is_not_recorded_and_the_log_stays_readable(tmp_path):
    assert record_open(tmp_path, "read a file", Shown("a.py", 1))
    assert not record_open(tmp_path, "read \ud800 file", Shown("a.py", 1))  # a lone surrogate: unusable
    assert not record_open(tmp_path, "read a file", Shown("b\udcff.py", 1))  # a path from bytes that are not UTF-8
    assert [e["query"] for e in read_events(tmp_path)] == ["read a file"]


@pytest.fixture(scope="module")
def documented_repo(tmp_path_factory) -> Path:
    repo = tmp_path_factory.mktemp("feedback") / "textutils"
    repo.mkdir()
    for name in MODULES:
        shutil.copy(STDLIB / name, repo / name)
    return repo


def test_search_open_records_the_choice_and_hands_it_to_the_editor(documented_repo, tmp_path):
    editor = tmp_path / "editor.sh"
    editor.write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/editor-args\n')
    editor.chmod(editor.stat().st_mode | stat.S_IXUSR)
    query = "split a shell command line into tokens"
    listed = json.loads(run_needle("search", query, "--path", str(documented_repo), "--json").stdout)["results"]
    proc = run_needle("search", query, "--path", str(documented_repo), "--open", "3",
                      env={"EDITOR": str(editor), "VISUAL": " "})  # a blank $VISUAL does not hide $EDITOR
    assert proc.returncode == 0, proc.stderr
    third = listed[2]
    assert proc.stdout == f"{documented_repo / third['path']}:{third['start_line']}\n"
    assert (tmp_path / "editor-args").read_text().split() == [f"+{third['start_line']}",
                                                              str(documented_repo / third["path"])]
    (event,) = read_events(documented_repo / ".needle")
    assert event["query"] == query and event["opened"]["path"] == third["path"]
    assert [(a["path"], a["start_line"]) for a in event["above"]] == [(h["path"], h["start_line"])
                                                                    for h in listed[:2]]

    quiet = run_needle("search", query, "--path", str(documented_repo), "--open", "1", "--no-feedback",
                       env={"EDITOR": "", "VISUAL": ""})
    assert quiet.returncode == 0 and quiet.stdout.endswith(f":{listed[0]['start_line']}\n")
    assert len(read_events(documented_repo / ".needle")) == 1
    bad = run_needle("search", query, "--path", str(documented_repo), "--open", "99")
    assert bad.returncode == 1 and "--open 99" in bad.stderr and bad.stderr.count("\n") == 1


@pytest.mark.parametrize("editor", ["/nonexistent/editor", 'vim "unclosed'])
def test_an_editor_that_cannot_start_is_one_clear_error_and_records_nothing(documented_repo, editor):
    before = len(read_events(documented_repo / ".needle"))
    for json_flag in ((), ("--json",)):
        proc = run_needle("search", "split a shell command line into tokens", "--path", str(documented_repo),
                          "--open", "1", *json_flag, env={"EDITOR": editor, "VISUAL": ""})
        assert proc.returncode == 1 and "Traceback" not in proc.stderr
        assert proc.stderr.startswith("needle: error: cannot ") and "$EDITOR" in proc.stderr
        assert proc.stdout == ""  # nothing says it was opened
    assert len(read_events(documented_repo / ".needle")) == before


def test_open_with_json_prints_the_answer_and_the_opened_result(documented_repo):
    query = "split a shell command line into tokens"
    proc = run_needle("search", query, "--path", str(documented_repo), "--open", "2", "--json", "--no-feedback",
                      env={"EDITOR": "", "VISUAL": ""})
    assert proc.returncode == 0, proc.stderr
    answer = json.loads(proc.stdout)
    assert answer["query"] == query and answer["opened"] == {
        **answer["results"][1], "file": str(documented_repo / answer["results"][1]["path"])}


def test_train_repo_learns_from_the_log_beside_the_mined_pairs(documented_repo, tmp_path):
    from codeneedle.training.feedback import feedback_records

    index = documented_repo / ".needle"
    for q, opened, above in (
        ("wrap long paragraphs to a width", Shown("textwrap.py", 99999, "wrap"), [Shown("shlex.py", 99998, "split")]),
        ("encode bytes for a url", Shown("base64.py", 99999, "urlsafe_b64encode"), [Shown("base64.py", 99998, "b64encode")]),
    ):
        assert record_open(index, q, opened, above)
    records = feedback_records(documented_repo, index, "local:textutils")
    by_query = {r["query"]: r for r in records}
    wrap = by_query["wrap long paragraphs to a width"]
    assert wrap["name"] == "wrap" and "def wrap(" in wrap["code"] and wrap["query_style"] == "feedback"
    assert len(wrap["negatives"]) == 1 and "def split(" in wrap["negatives"][0]

    out = tmp_path / "adapted"
    proc = run_needle("train", "--repo", str(documented_repo), "--steps", "2", "--minutes", "3", "--out", str(out),
                      "--batch-size", "4", "--code-max-tokens", "64", "--no-reindex", "--json", env={"NEEDLE_FEEDBACK": os.environ.get("NEEDLE_FEEDBACK", "")})
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["steps"] == 2 and summary["feedback_events"] == len(read_events(index)) >= 2
    trained_on = [json.loads(line) for line in (out / "repo_pairs.jsonl").read_text().splitlines()]
    learned = [r for r in trained_on if r["query_style"] == "feedback"]
    assert {r["query"]: len(r["negatives"]) for r in learned} == {q: len(r["negatives"]) for q, r in by_query.items()}
    assert by_query["encode bytes for a url"]["negatives"]
    assert len(trained_on) > len(learned)  # beside the mined doc-comment pairs


def test_the_hint_to_learn_from_opens_is_said_once_when_a_fit_becomes_due(documented_repo, tmp_path):
    from codeneedle.indexer.query_adapter import MIN_EVENTS

    repo = shutil.copytree(documented_repo, tmp_path / "repo")
    shutil.rmtree(repo / ".needle", ignore_errors=True)
    hints = []
    for _ in range(MIN_EVENTS + 2):
        proc = run_needle("search", "split a shell command line into tokens", "--path", str(repo), "--open", "1",
                          env={"EDITOR": "", "VISUAL": ""})
        assert proc.returncode == 0, proc.stderr
        hints.append("can learn from the results you opened" in proc.stderr)
    assert len(read_events(repo / ".needle")) == MIN_EVENTS + 2
    assert hints == [n == MIN_EVENTS - 1 for n in range(MIN_EVENTS + 2)]  # on the open that makes it due


def test_an_open_in_an_objective_c_header_is_found_again_as_the_index_read_it(tmp_path):
    """The chunks an open is matched against are the index's: an Objective-C `.h` header is Objective-C (its
    @interface a class), not C, as the file's extension alone would say."""
    from codeneedle.indexer.index import Index
    from codeneedle.training.feedback import feedback_records

    repo = tmp_path / "repo"
    repo.mkdir()
    source = (Path(__file__).parent / "fixtures" / "polyglot" / "Playback.m").read_text()
    (repo / "Playback.h").write_text(source.split("@implementation")[0])
    with Index.open(repo) as index:
        index.update()
        rows = index.store.chunks_in_file("Playback.h")
    assert {r.language for r in rows} == {"objc"}
    queue = next(r for r in rows if r.name == "PlaybackQueue")
    assert record_open(repo / ".needle", "a queue of items played in turn", Shown("Playback.h", queue.start_line,
                                                                                  "PlaybackQueue"), [])
    records = feedback_records(repo, repo / ".needle", "local:playback")
    assert [(r["name"], r["language"]) for r in records] == [("PlaybackQueue", "objc")]


def test_the_log_of_what_was_typed_is_readable_by_its_owner_only(tmp_path):
    old = os.umask(0o022)
    try:
        assert record_open(tmp_path, "how do we rotate the staging password", Shown("a.py", 1))
        assert stat.S_IMODE((tmp_path / LOG_NAME).stat().st_mode) == 0o600
        (tmp_path / LOG_NAME).chmod(0o644)  # a log an earlier version wrote
        assert record_open(tmp_path, "another query", Shown("a.py", 1))
        assert stat.S_IMODE((tmp_path / LOG_NAME).stat().st_mode) == 0o600
    finally:
        os.umask(old)
