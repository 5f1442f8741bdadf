"""What a new user meets outside the checkout: the wheel holds every file the code loads and runs from it alone,
the command's help and its doors (`python -m codeneedle`, `needle` alone, `needle mcp` without its extra), and
the first run on a fresh or read-only home (no telemetry written, a cache that cannot be written is no error)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "codeneedle"
# In the source tree for people, not loaded by any code.
NOT_SHIPPED = {"codeneedle/indexer/queries/README.md"}


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
