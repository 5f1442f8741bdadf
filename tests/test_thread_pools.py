"""Thread pools that wait politely: Needle shares a small machine with the editor and whatever else runs.

Spinning waiters win a little on an idle machine and lose badly on a busy one (figures in the code's comments):
ONNX Runtime's pools do not spin, and libgomp (torch's OpenMP) spins briefly unless the user says otherwise.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from codeneedle.indexer import native

ENCODER = Path(__file__).resolve().parent.parent / "codeneedle" / "models" / "needle-code-v3"


def test_onnx_sessions_with_several_threads_do_not_spin_while_they_wait() -> None:
    from codeneedle.indexer.onnx_bert import OnnxBert

    session = OnnxBert(ENCODER, "int8", threads=2).session
    assert session.get_session_options().get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_the_needle_command_shortens_openmp_spinning_before_torch_loads_unless_the_user_set_it(monkeypatch,
                                                                                              tmp_path) -> None:
    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    native.calm_thread_pools()
    assert os.environ["GOMP_SPINCOUNT"] == native.SPIN_COUNT
    monkeypatch.setenv("GOMP_SPINCOUNT", "infinite")
    native.calm_thread_pools()
    assert os.environ["GOMP_SPINCOUNT"] == "infinite"
    # The entry point sets it before any command imports torch (libgomp reads it once, when it loads).
    code = ("import os, sys\nfrom codeneedle import cli\nassert 'torch' not in sys.modules\n"
            "cli.main(['status', '--json', os.getcwd()])\nprint(os.environ.get('GOMP_SPINCOUNT'))")
    env = {k: v for k, v in os.environ.items() if k != "GOMP_SPINCOUNT"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert out.stdout.strip().splitlines()[-1] == native.SPIN_COUNT, out.stderr
