"""Choosing the engine (GPU, int8) and reporting progress honestly: in chunks, with a rate and an ETA."""

from __future__ import annotations

import pytest

from codeneedle.errors import NeedleError
from codeneedle.indexer import embedding
from codeneedle.indexer.backends import (
    MAX_INT8_MRR_LOSS,
    default_code_tokens,
    default_precision,
    int8_allowed,
    select_device,
)
from codeneedle.indexer.index import Index
from codeneedle.indexer.progress import RateMeter, progress_text
from tests.conftest import copy_fixture


def test_cuda_is_used_exactly_when_torch_sees_a_gpu():
    yes, no = (lambda: True), (lambda: False)
    assert select_device({}, gpu_present=yes, cuda_available=yes) == "cuda"
    assert select_device({}, gpu_present=yes, cuda_available=no) == "cpu"  # a driver but no usable CUDA
    # No NVIDIA device node: torch is not even asked (importing it costs seconds).
    assert select_device({}, gpu_present=no, cuda_available=lambda: pytest.fail("torch was asked")) == "cpu"
    assert select_device({"NEEDLE_DEVICE": "cpu"}, gpu_present=yes, cuda_available=yes) == "cpu"


def test_this_machine_without_a_gpu_indexes_on_the_cpu():
    assert select_device({}) == "cpu"


def test_cuda_forced_where_torch_sees_none_is_a_one_line_error(tmp_path):
    # It was torch's AssertionError ("Torch not compiled with CUDA enabled"), a traceback from every command.
    with pytest.raises(NeedleError, match="NEEDLE_DEVICE=cuda, but torch sees no CUDA GPU here"):
        select_device({"NEEDLE_DEVICE": "cuda"}, cuda_available=lambda: False)
    assert select_device({"NEEDLE_DEVICE": "CUDA"}, cuda_available=lambda: True) == "cuda"


def test_int8_becomes_the_default_only_when_the_measured_mrr_loss_is_small_enough():
    def record(fp32, int8):
        return {"needle-code-v1": {"fp32_mrr10": fp32, "int8_mrr10": int8}}

    assert default_precision("needle-code-v1", {}, record(0.530, 0.530 - MAX_INT8_MRR_LOSS)) == "int8"
    assert default_precision("needle-code-v1", {}, record(0.530, 0.515)) == "fp32"
    assert default_precision("needle-code-v1", {}, {}) == "fp32"  # never measured: never quantized
    assert default_precision("minilm", {}, record(0.5, 0.5)) == "fp32"  # measured for another model
    assert default_precision("needle-code-v1", {"NEEDLE_PRECISION": "int8"}, {}) == "int8"
    assert not int8_allowed({"fp32_mrr10": "n/a"})


def test_a_shorter_code_cut_is_the_default_only_when_measured_safe_end_to_end():
    def record(full, cut, tokens=128):
        return {"needle-code-v1": {"code_tokens": {"tokens": tokens, "mrr10_256": full, "mrr10": cut}}}

    assert default_code_tokens("needle-code-v1", {}, record(0.550, 0.550 - MAX_INT8_MRR_LOSS)) == 128
    assert default_code_tokens("needle-code-v1", {}, record(0.550, 0.530)) == 256
    assert default_code_tokens("needle-code-v1", {}, record(0.550, 0.560, tokens=4)) == 256  # nonsense cut
    assert default_code_tokens("needle-code-v1", {}, {}) == 256  # never measured: the full 256
    assert default_code_tokens("minilm", {}, record(0.5, 0.5)) == 256  # measured for another model
    assert default_code_tokens("needle-code-v1", {"NEEDLE_CODE_TOKENS": "96"}, {}) == 96
    assert default_code_tokens("needle-code-v1", {"NEEDLE_CODE_TOKENS": "9000"}, record(0.5, 0.5)) == 128


def test_the_shipped_record_and_the_default_agree():
    from codeneedle.indexer.backends import load_quantization_record

    for name, measured in load_quantization_record().items():
        loss = measured["fp32_mrr10"] - measured["int8_mrr10"]
        assert default_precision(name, {}) == ("int8" if loss <= MAX_INT8_MRR_LOSS else "fp32"), name
        cut = measured.get("code_tokens")
        if cut:
            safe = cut["mrr10_256"] - cut["mrr10"] <= MAX_INT8_MRR_LOSS
            assert default_code_tokens(name, {}) == (cut["tokens"] if safe else 256), name


def test_rate_and_eta_follow_the_recent_pace():
    meter = RateMeter(window_s=10)
    assert meter.eta(100) is None  # no rate yet: no made-up ETA
    for t in range(0, 21):
        meter.update(done=5 * t, now=float(t))
    assert meter.rate == pytest.approx(5.0)
    assert meter.eta(50) == pytest.approx(10.0)


def test_progress_text_counts_files_while_reading_then_chunks():
    text, pct = progress_text("index", 30, 100, 0, 0, 0.0, None)
    assert text == "reading 30/100 files" and pct == 1
    text, pct = progress_text("embed", 100, 100, 250, 1000, 31.25, 24.0)
    assert text == "embedding 250/1000 chunks, 31.2/s, ETA 0:24" and 5 < pct < 99
    text, _ = progress_text("embed", 100, 100, 250, 1000, 0.0, None)  # so far all from the shared cache
    assert text == "embedding 250/1000 chunks"
    text, pct = progress_text("embed", 100, 100, 0, 1000, 0.0, None)  # the editors' first run, graph building
    assert text == "embedding 0/1000 chunks, loading the encoder" and pct == 5


def test_an_update_reports_chunks_with_a_rate_and_eta(tmp_path, monkeypatch):
    repo = copy_fixture("minirepo", tmp_path / "repo")
    monkeypatch.setattr(embedding, "FIRST_GROUP", 4)  # several commits even on a small tree
    monkeypatch.setattr(embedding, "MIN_GROUP", 4)
    monkeypatch.setattr(embedding, "MAX_GROUP", 8)
    seen = []
    with Index.open(repo) as index:
        stats = index.update(progress=seen.append)
        total = index.status().chunks
    phases = [p.phase for p in seen]
    assert phases.index("index") < phases.index("embed") < phases.index("done")
    embeds = [p for p in seen if p.phase == "embed"]
    assert {p.chunks_to_embed for p in embeds} == {total} == {stats.chunks_embedded}
    done = [p.chunks_embedded for p in embeds]
    assert done == sorted(done) and done[-1] == total
    assert any(p.eta_s is not None and p.rate > 0 for p in embeds)


def test_progress_counts_texts_to_embed_so_it_ends_full_when_files_repeat_code(tmp_path):
    # Two copies of one file: their chunks share content hashes, and each text is embedded once. Counting chunk
    # rows made the bar end at "done 3859/4629" on this repository, as if a sixth of it had been left out.
    repo = copy_fixture("minirepo", tmp_path / "repo")
    source = next(p for p in sorted(repo.rglob("*.py")) if p.stat().st_size > 200)
    (repo / "copy").mkdir()
    (repo / "copy" / source.name).write_bytes(source.read_bytes())
    seen = []
    with Index.open(repo) as index:
        stats = index.update(progress=seen.append)
        chunks = index.status().chunks
    last = [p for p in seen if p.phase == "embed"][-1]
    assert stats.chunks_embedded < chunks  # the copies' chunks were not embedded twice
    assert last.chunks_embedded == last.chunks_to_embed == stats.chunks_embedded


def test_the_bar_ends_on_done_without_an_eta(monkeypatch):
    from rich.console import Console

    from codeneedle import console
    from codeneedle.indexer.types import Progress

    screen = Console(record=True, width=120, force_terminal=True)
    monkeypatch.setattr(console, "err", screen)
    with console.index_progress() as update:
        update(Progress("index", 8, 8))
        update(Progress("embed", 8, 8, 10, 21, 50.0, 0.2))
        update(Progress("embed", 8, 8, 21, 21, 50.0, 0.0))
        update(Progress("save", 8, 8))
        update(Progress("done", 8, 8))
    text = screen.export_text()
    last = text[text.rindex("done"):]  # the live display's redraws are recorded one after another
    assert "21/21 chunks" in last and "ETA" not in last


def test_off_a_terminal_progress_is_written_as_lines_while_it_runs_not_only_at_the_end(monkeypatch):
    # A build of a big repository with stderr in a log (CI, `needle index . 2> log`) wrote nothing until it
    # finished, minutes later: the live bar is drawn once off a terminal. Now a plain line per phase, then one
    # every 30 s, each with the counts, the rate and the ETA.
    import io

    from rich.console import Console

    from codeneedle import console
    from codeneedle.indexer.types import Progress

    stream = io.StringIO()
    monkeypatch.setattr(console, "err", Console(file=stream, force_terminal=False, width=120))
    with console.index_progress() as update:
        update(Progress("scan"))
        update(Progress("index", 3, 8))
        assert "reading 3/8 files" in stream.getvalue()  # written now, not when the run ends
        update(Progress("index", 8, 8))
        update(Progress("embed", 8, 8, 10, 21, 50.0, 0.2))
        assert "embedding 10/21 chunks, 50.0/s, ETA 0:00" in stream.getvalue()
        update(Progress("embed", 8, 8, 21, 21, 50.0, 0.0))
        update(Progress("done", 8, 8))
    lines = stream.getvalue().splitlines()
    assert [line for line in lines if line.startswith(("reading", "embedding"))] == [
        "reading 3/8 files", "embedding 10/21 chunks, 50.0/s, ETA 0:00"]  # once per phase within 30 s
    assert lines[-1].startswith("done") and "21/21 chunks" in lines[-1]


def test_force_color_off_a_terminal_colours_the_progress_lines_but_draws_no_live_bar(monkeypatch):
    """FORCE_COLOR=1 (set in many CI setups for coloured logs) made rich take the log for a terminal: the bar
    redrew itself ten times a second into it (carriage returns and erase-line codes, thousands of times in a long
    build) and the plain progress lines were gone. The colours stay; the log gets the lines."""
    import io

    from rich.console import Console

    from codeneedle import console
    from codeneedle.indexer.types import Progress
    from codeneedle.terminal_encoding import redraws

    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.delenv("TTY_INTERACTIVE", raising=False)
    stream = io.StringIO()
    monkeypatch.setattr(console, "err", Console(file=stream, width=120, force_interactive=redraws(stream)))
    with console.index_progress() as update:
        update(Progress("index", 3, 8))
        update(Progress("embed", 8, 8, 10, 21, 50.0, 0.2))
        update(Progress("embed", 8, 8, 21, 21, 50.0, 0.0))
        update(Progress("done", 8, 8))
    written = stream.getvalue()
    assert "\r" not in written and "\x1b[2K" not in written  # nothing redrawn
    assert "\x1b[" in written  # still in colour, as asked
    # rich still hides the cursor meanwhile and shows it again (harmless in a log)
    lines = [line for line in written.replace("\x1b[?25l", "").replace("\x1b[?25h", "").splitlines() if line]
    assert lines[:2] == ["reading 3/8 files", "embedding 10/21 chunks, 50.0/s, ETA 0:00"]
    assert "done" in lines[-1] and "21/21" in lines[-1]


def test_force_color_leaves_a_real_terminal_and_rich_s_own_switch_as_they_are(monkeypatch):
    import io
    import os
    import pty

    from codeneedle.terminal_encoding import redraws

    log = io.StringIO()
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    assert redraws(log) is None  # no FORCE_COLOR: rich decides
    monkeypatch.setenv("FORCE_COLOR", "1")
    leader, follower = pty.openpty()
    try:
        with os.fdopen(follower, "w", closefd=False) as tty:
            assert redraws(tty) is None  # a terminal keeps its live bar
    finally:
        os.close(leader)
        os.close(follower)
    monkeypatch.setenv("TTY_INTERACTIVE", "1")
    assert redraws(log) is None


def test_the_progress_log_repeats_a_phase_every_30_seconds_and_skips_phases_with_nothing_to_do():
    import io

    from rich.console import Console

    from codeneedle.console import _ProgressLog
    from codeneedle.indexer.types import Progress

    stream, now = io.StringIO(), [0.0]
    log = _ProgressLog(Console(file=stream, force_terminal=False, width=120), every_s=30.0, clock=lambda: now[0])
    log.update(Progress("index", 0, 0))
    log.update(Progress("embed", 0, 0, 0, 0))  # an index already up to date: no "embedding 0/0" line
    for t, done in [(1, 100), (20, 2000), (31, 3000), (50, 5000), (62, 6000)]:
        now[0] = t
        log.update(Progress("embed", 5, 5, done, 9000, 100.0, (9000 - done) / 100))
    assert stream.getvalue().splitlines() == ["embedding 100/9000 chunks, 100.0/s, ETA 1:29",
                                              "embedding 3000/9000 chunks, 100.0/s, ETA 1:00",
                                              "embedding 6000/9000 chunks, 100.0/s, ETA 0:30"]


def test_the_eta_holds_steady_over_the_sawtooth_pace_of_length_sorted_windows():
    # embed_pending embeds 4,096 pending chunks at a time, short ones first: the pace falls within each window
    # and leaps at the next (measured on 52,745 chunks of site-packages: ~160/s down to ~85/s, ~40 s a window).
    # The default meter's ETA must not follow that sawtooth: it swung from -36 % to +22 % of the time left.
    from codeneedle.indexer.embedding import WINDOW

    total, fast, slow = 8 * WINDOW, 160.0, 80.0
    times, t = [], 0.0
    for i in range(total):  # the time each chunk ends: its cost grows across its window
        t += 1 / (fast + (slow - fast) * (i % WINDOW) / WINDOW)
        times.append(t)
    meter, errors, sample = RateMeter(), [], 0.0
    for done, end in enumerate(times, 1):
        if end < sample:
            continue
        sample = end + 0.5
        meter.update(done, now=end)
        left = times[-1] - end
        if end > 60 and left > 30:
            errors.append(abs(meter.eta(total - done) - left) / left)
    assert max(errors) < 0.15, max(errors)


def test_a_partial_index_whose_chunks_all_have_vectors_says_files_are_left_to_read():
    # Killed while reading a big folder back (its vectors still cached): "partial (46447 of 46447 chunks
    # embedded; indexing was interrupted)" read as a contradiction; the files not read yet are what is left.
    from codeneedle.indexer.progress import Completeness

    assert Completeness("partial", 46447, 46447).message() == (
        "partial (46447 of 46447 chunks embedded; files still to read; indexing was interrupted: "
        "run `needle index` to finish)")
    assert Completeness("indexing", 10, 10).message() == "indexing (10 of 10 chunks embedded; files still to read)"
    assert Completeness("partial", 5, 9).message().startswith("partial (5 of 9 chunks embedded; indexing was")
