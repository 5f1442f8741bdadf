"""Old and unusual x86-64 CPUs: what Needle's native libraries do without AVX-512 VNNI, AVX2 or x86-64-v2.

Under qemu's user-mode emulator (Debian: qemu-user, 7.2 or later for AVX2) each of numpy, usearch (SimSIMD),
onnxruntime, tree-sitter and SQLite ran on the Nehalem, SandyBridge and Haswell models with the results of a
native run, but for two things these tests pin: int8 on a CPU with AVX2 and no VNNI, and a CPU older than
x86-64-v2."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from codeneedle.indexer import native

ROOT = Path(__file__).resolve().parent.parent
ENCODER = ROOT / "codeneedle" / "models" / "needle-code-v3"
QEMU = shutil.which("qemu-x86_64")
needs_qemu = pytest.mark.skipif(QEMU is None, reason="qemu-x86_64 not installed (Debian: apt-get install qemu-user)")

HASWELL = {"SSE42": True, "AVX": True, "FMA3": True, "AVX2": True}
NUMPY_REFUSAL = ("NumPy was built with baseline optimizations: \n(X86_V2) but your machine doesn't support:\n"
                 "(X86_V2).")


def emulated(cpu: str, code: str, env: dict[str, str], timeout: int = 600) -> subprocess.CompletedProcess:
    """``python -c code`` on qemu's ``cpu`` model (OPENBLAS_CORETYPE dropped: a forced kernel the model lacks
    would kill numpy's import, which is no part of what is tested)."""
    env = {k: v for k, v in {**os.environ, **env}.items() if k != "OPENBLAS_CORETYPE"}
    return subprocess.run([QEMU, "-cpu", cpu, sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=ROOT)


def test_int8_saturates_only_on_avx2_without_vnni():
    """ONNX Runtime's u8 x s8 kernel clips pair sums on AVX2 and AVX-512 without VNNI only."""
    assert native.int8_saturates(HASWELL)  # Haswell to Comet Lake, Zen 1 to 3
    assert native.int8_saturates({**HASWELL, "AVX512F": True, "AVX512BW": True})  # Skylake-SP
    assert not native.int8_saturates({**HASWELL, "AVX512F": True, "AVX512VNNI": True})  # Cascade Lake, Zen 4
    assert not native.int8_saturates({**HASWELL, "AVX_VNNI": True})
    assert not native.int8_saturates({"SSE42": True, "AVX": True})  # SandyBridge: widened first, exact
    assert not native.int8_saturates({"SSE42": True})  # Nehalem
    assert not native.int8_saturates({"NEON": True, "ASIMD": True})
    assert isinstance(native.int8_saturates(), bool)  # this machine's: CPUID, then ONNX Runtime where it is open


def test_an_older_cpu_than_numpy_needs_gets_one_line_that_says_what_to_do():
    message = native.old_cpu_message(NUMPY_REFUSAL, "/venv/bin/python")
    assert "\n" not in message
    assert message.startswith("this CPU lacks X86_V2 (SSE4.2 and POPCNT")
    assert message.endswith("/venv/bin/python -m pip install 'numpy<2' 'ml-dtypes<0.6'")


def test_the_int8_probe_graph_is_one_matmulinteger_as_onnx_builds_it():
    """The probe's bytes (kept so that asking imports no onnx) are onnx.helper's serialization of its graph."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "b"], ["y"])], "int8_probe",
        [helper.make_tensor_value_info("a", TensorProto.UINT8, [4, 256]),
         helper.make_tensor_value_info("b", TensorProto.INT8, [256, 64])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [4, 64])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="needle")
    model.ir_version = 8
    onnx.checker.check_model(model)
    assert model.SerializeToString() == native.INT8_PROBE_GRAPH


@pytest.mark.skipif(not native.cpu_features().get("AVX512VNNI"), reason="needs a CPU with AVX-512 VNNI")
def test_where_the_cpu_adds_in_32_bits_the_probe_finds_no_clipping():
    """The probe itself, on a CPU whose int8 kernel is exact (this project's machines: AVX-512 VNNI); its clipping
    side runs under qemu's Haswell model below."""
    native._int8_kernel_clips.cache_clear()
    assert native._int8_kernel_clips() is False


@pytest.mark.slow
def test_int8_weights_are_seven_bit_where_the_cpu_would_clip_them(tmp_path, monkeypatch):
    """A 7-bit graph is another file, and no weight reaches past [-64, 63]: 255 * 64 * 2 fits in 16 bits."""
    import onnx
    from onnx import numpy_helper

    from codeneedle.indexer.onnx_bert import model_file

    monkeypatch.setenv("NEEDLE_CACHE_DIR", str(tmp_path))
    eight, seven = model_file(ENCODER, "int8", seven_bit=False), model_file(ENCODER, "int8", seven_bit=True)
    assert eight != seven and eight.name.endswith("-int8.onnx") and seven.name.endswith("-int8.onnx")

    def widest(path: Path) -> int:
        weights = [numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer
                   if t.data_type == onnx.TensorProto.INT8 and t.name.endswith("_quantized")]
        assert len(weights) == 6 * 4  # per layer: QKV, attention output, intermediate, output
        return max(int(np.abs(w.astype(np.int16)).max()) for w in weights)

    assert widest(eight) == 127
    assert widest(seven) <= 64


@pytest.mark.slow
@needs_qemu
def test_on_an_avx2_cpu_without_vnni_int8_vectors_are_what_the_graph_computes_elsewhere(tmp_path):
    """On qemu's Haswell model the encoder picks the 7-bit graph and computes what a native run of that graph
    does (to float noise); the 8-bit graph there was off by up to 0.33 in the hidden states (cosine 0.99)."""
    from codeneedle.indexer.numpy_bert import NumpyTokenizer
    from codeneedle.indexer.onnx_bert import model_file

    env = {"NEEDLE_CACHE_DIR": str(tmp_path / "cache")}
    os.environ.update(env)  # graphs built natively first: quantizing under emulation takes minutes
    try:
        seven, _ = model_file(ENCODER, "int8", seven_bit=True), model_file(ENCODER, "int8", seven_bit=False)
    finally:
        del os.environ["NEEDLE_CACHE_DIR"]
    text = "class LRUCache:\n    def get(self, key):\n        return self.data.pop(key)"
    probe = (
        "import sys, numpy as np\nfrom pathlib import Path\nfrom codeneedle.indexer import native\n"
        "if not native.cpu_features().get('AVX2'): print('no-avx2'); sys.exit()\n"
        "from codeneedle.indexer.onnx_bert import OnnxBert\nfrom codeneedle.indexer.numpy_bert import NumpyTokenizer\n"
        f"folder = Path({str(ENCODER)!r})\nm = OnnxBert(folder, 'int8')\n"
        f"ids, mask = NumpyTokenizer(folder)([{text!r}], 64)\n"
        f"np.save({str(tmp_path / 'haswell.npy')!r}, m(ids, mask)); print(m.path)\n")
    out = emulated("Haswell", probe, env)
    assert out.returncode == 0, out.stderr[-2000:]
    if out.stdout.strip() == "no-avx2":
        pytest.skip("this qemu does not emulate AVX2 (7.2 and later do)")
    assert Path(out.stdout.strip()) == seven
    session = native.onnxruntime().InferenceSession(str(seven), providers=["CPUExecutionProvider"])
    ids, mask = NumpyTokenizer(ENCODER)([text], 64)
    here = session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
    assert np.abs(np.load(tmp_path / "haswell.npy") - here).max() < 1e-3


@pytest.mark.slow
@needs_qemu
def test_a_cpu_older_than_x86_64_v2_gets_one_line_not_a_traceback(tmp_path):
    """qemu's Penryn model (Core 2: SSE4.1, no SSE4.2 or POPCNT): `needle status` says what is missing."""
    out = emulated("Penryn", "import sys; from codeneedle.cli import main; sys.exit(main(['status', '.']))",
                   {"NEEDLE_CACHE_DIR": str(tmp_path / "cache")}, timeout=300)
    lines = [line for line in out.stderr.splitlines() if "TCG doesn't support" not in line]
    assert out.returncode == 1
    assert len(lines) == 1 and "this CPU lacks X86_V2" in lines[0], out.stderr[-2000:]
