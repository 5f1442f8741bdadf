"""Every engine that embeds gives the vectors of the torch reference (bert.py, itself checked against
transformers): numpy for queries (no torch import), ONNX Runtime fp32 for code in bulk, int8 close to them."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from codeneedle.indexer.encoder import CODE_MAX_TOKENS, QUERY_MAX_TOKENS, Encoder
from codeneedle.indexer.models import TUNED_MODEL, resolve_model

pytestmark = pytest.mark.slow  # every engine loads real models

QUERIES = ["parse a config file", "getHTTPResponse", "Ünïcode ß 中文 🎉", "", "token " * 100]
CODE = [
    "src/config.py parse config\ndef parse_config(path):\n    return json.load(open(path))",
    "x",
    "token " * 600,  # longer than the truncation length
    "func main() {\n\tfmt.Println(\"hi\")\n}",
]


def torch_reference(folder, texts: list[str], max_length: int) -> np.ndarray:
    from codeneedle.indexer.bert import BertEncoder, BertTokenizer

    return Encoder("ref", folder, BertEncoder(folder), BertTokenizer(folder), "ref", 384).encode(
        texts, max_length=max_length)


@pytest.fixture(scope="module", params=[TUNED_MODEL, "minilm"])
def model(request):
    return resolve_model(request.param)


def test_torch_free_query_vectors_equal_the_torch_path(model):
    name, folder = model
    # The shared weights: a query tower (the shipped model's query/) has its own parity test below.
    ours = Encoder.from_folder(name, folder).encode_queries(QUERIES, tower=False)
    ref = torch_reference(folder, QUERIES, QUERY_MAX_TOKENS)
    np.testing.assert_allclose(ours, ref, atol=2e-5)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_query_vectors_through_the_shipped_query_tower_equal_the_torch_path(monkeypatch):
    from safetensors.torch import load_file

    from codeneedle.indexer.bert import BertEncoder, BertTokenizer

    monkeypatch.delenv("NEEDLE_QUERY_TOWER", raising=False)
    name, folder = resolve_model(TUNED_MODEL)
    shipped = Encoder.from_folder(name, folder)
    assert shipped.query_tower is not None
    reference = BertEncoder(folder)  # the shared weights, with the tower's layers laid over them
    reference.w.update({k.removeprefix("bert."): v.float().contiguous()
                        for k, v in load_file(str(shipped.query_tower / "model.safetensors")).items()})
    ref = Encoder("ref", folder, reference, BertTokenizer(folder), "ref", 384).encode(
        QUERIES, max_length=QUERY_MAX_TOKENS)
    np.testing.assert_allclose(shipped.encode_queries(QUERIES), ref, atol=2e-5)
    assert not np.allclose(shipped.encode_queries(QUERIES, tower=False), ref, atol=1e-3)


def test_onnx_fp32_bulk_vectors_equal_the_torch_path(model):
    name, folder = model
    encoder = Encoder.from_folder(name, folder, precision="fp32")
    encoder.workers = 2  # two sessions side by side: results must land at their own rows
    ours = encoder.encode(CODE * 5, batch_size=3)
    ref = torch_reference(folder, CODE, encoder.code_tokens)
    np.testing.assert_allclose(ours, np.tile(ref, (5, 1)), atol=2e-5)


def test_token_states_of_the_onnx_and_torch_engines_agree(model):
    """Late interaction reads each text's token states from whichever bulk engine the machine has: ONNX Runtime on
    a CPU, torch on a GPU (here on the CPU)."""
    from codeneedle.indexer.backends import OnnxBulk, TorchBulk

    _name, folder = model
    ours = OnnxBulk(folder, "fp32", workers=2).token_states(CODE, 64)
    ref = TorchBulk(folder, "cpu").token_states(CODE, 64)
    assert [s.shape for s in ours] == [s.shape for s in ref] == [(n, 384) for n in (38, 3, 64, 19)]
    for a, b in zip(ours, ref, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-3, rtol=1e-4)


def test_the_torch_engines_token_states_run_between_the_batches_of_an_update(model):
    """On a GPU the torch engine serves both an index update and late interaction: a search waits for one batch
    at most, not for the whole update."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from codeneedle.indexer.backends import TorchBulk

    _name, folder = model
    bulk = TorchBulk(folder, "cpu")
    first_done, release = threading.Event(), threading.Event()

    def done(i: int, _vectors) -> None:
        if i == 0:
            first_done.set()
            release.wait(30)  # the update is between its batches here

    with ThreadPoolExecutor(2) as pool:
        update = pool.submit(bulk.encode_batches, [CODE[:2], CODE[2:]], 64, done)
        assert first_done.wait(60)
        try:
            states = pool.submit(bulk.token_states, CODE[:1], 64).result(timeout=30)
        finally:
            release.set()
        update.result(timeout=60)
    assert states[0].shape == (38, 384)


def test_int8_vectors_stay_close_and_are_another_models():
    name, folder = resolve_model(TUNED_MODEL)
    int8 = Encoder.from_folder(name, folder, precision="int8")
    fp32 = Encoder.from_folder(name, folder, precision="fp32")
    # Never mixed with fp32 vectors in one index: the same weights, another id.
    assert int8.model_id.split("+")[0] == fp32.model_id.split("+")[0]
    assert "int8" in int8.model_id.split("+") and "int8" not in fp32.model_id
    cos = (int8.encode(CODE) * fp32.encode(CODE)).sum(axis=1)
    # A one-token text is the worst case (0.980: the fused attention's QKV projection is int8 too); what decides
    # the default is the measured MRR loss in models/quantization.json.
    assert cos.min() > 0.97 and np.median(cos) > 0.99, cos


def test_a_shorter_code_cut_embeds_the_first_tokens_only_and_is_another_models(monkeypatch):
    name, folder = resolve_model(TUNED_MODEL)
    monkeypatch.setenv("NEEDLE_CODE_TOKENS", str(CODE_MAX_TOKENS))
    full = Encoder.from_folder(name, folder, precision="fp32")
    monkeypatch.setenv("NEEDLE_CODE_TOKENS", "128")
    cut = Encoder.from_folder(name, folder, precision="fp32")
    assert (cut.code_tokens, cut.model_id) == (128, full.model_id + "+t128")  # never mixed in one index
    np.testing.assert_allclose(cut.encode(CODE), torch_reference(folder, CODE, 128), atol=2e-5)
    long_code = "\n".join(f"def step_{i}(state):\n    return state.apply({i})" for i in range(60))  # ~900 tokens
    assert float(cut.encode([long_code])[0] @ full.encode([long_code])[0]) < 0.999  # the tail was cut


def test_a_one_shot_search_never_imports_torch(tmp_path):
    """The CLI's whole search path (open, refresh, encode the query, search) in a fresh interpreter."""
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "conf.py").write_text("def parse_config(path):\n    return open(path).read()\n")
    build = subprocess.run([sys.executable, "-m", "codeneedle.cli", "index", str(repo), "-q"],
                           capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    probe = (
        "import sys\n"
        "from codeneedle.cli import main\n"
        f"code = main(['search', 'read a configuration file', '--path', {str(repo)!r}, '--json'])\n"
        "assert code == 0\n"
        "print('torch' in sys.modules, 'transformers' in sys.modules, file=sys.stderr)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert '"name": "parse_config"' in out.stdout
    assert out.stderr.strip().splitlines()[-1] == "False False"


def test_embedding_after_the_vector_index_is_loaded_does_not_crash():
    """usearch loaded first, then the ONNX engine: the import order that segfaulted before vectors.py fixed it."""
    probe = (
        "from codeneedle.indexer.vectors import VectorIndex\n"
        "from codeneedle.indexer.encoder import Encoder\n"
        "VectorIndex(384)\n"
        "print(Encoder.load(precision='int8').encode(['def f(): pass']).shape)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "(1, 384)", (out.returncode, out.stderr[-2000:])


def test_cache_entries_of_a_model_folder_that_is_gone_are_dropped_when_the_next_is_written(tmp_path, monkeypatch):
    """Each trained or temporary model gets its own ~90 MB of laid-out weights and graphs; they must not pile up."""
    import shutil

    from codeneedle.indexer.numpy_bert import NumpyBert
    from codeneedle.indexer.onnx_bert import model_file

    monkeypatch.setenv("NEEDLE_CACHE_DIR", str(tmp_path / "cache"))
    _, shipped = resolve_model(TUNED_MODEL)
    first = shutil.copytree(shipped, tmp_path / "first")
    NumpyBert(first)
    model_file(first, "fp32")
    made = {p.name for p in (tmp_path / "cache").rglob("*") if p.is_file()}
    assert any(n.startswith("first-") and n.endswith(".f32") for n in made)
    assert any(n.startswith("first-") and n.endswith("-fp32.onnx") for n in made)

    shutil.rmtree(first)
    second = shutil.copytree(shipped, tmp_path / "second")
    NumpyBert(second)
    model_file(second, "fp32")
    left = {p.name for p in (tmp_path / "cache").rglob("*") if p.is_file()}
    assert not any(n.startswith("first-") for n in left), left
    assert any(n.startswith("second-") and n.endswith(".f32") for n in left)
    assert any(n.startswith("second-") and n.endswith("-fp32.onnx") for n in left)


def test_cache_entries_of_weights_that_changed_since_are_dropped_when_the_next_is_written(tmp_path, monkeypatch):
    """A new checkout or a reinstall gives the same model folder new weights' mtimes, hence new cache entries: the
    old ones, and those an older Needle wrote without recording the weights, go when the next entry is written."""
    import os
    import shutil

    from codeneedle.indexer.numpy_bert import NumpyBert
    from codeneedle.indexer.onnx_bert import model_file

    cache = tmp_path / "cache"
    monkeypatch.setenv("NEEDLE_CACHE_DIR", str(cache))
    _, shipped = resolve_model(TUNED_MODEL)
    model = shutil.copytree(shipped, tmp_path / "model")
    NumpyBert(model)
    before = model_file(model, "fp32")
    old = {p.name for p in cache.rglob("*") if p.is_file()}
    # an entry an older Needle left: its sidecar names the folder only, and it predates the weights below
    legacy = cache / "onnx" / "model-0123456789abcdef-int8.onnx"
    legacy.write_bytes(b"graph")
    legacy.with_name(legacy.name + ".source").write_text(str(model))

    weights = model / "model.safetensors"
    st = weights.stat()
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns + 10**12))  # the same folder, reinstalled later
    os.utime(legacy.with_name(legacy.name + ".source"), ns=(st.st_atime_ns, st.st_mtime_ns + 10**11))
    NumpyBert(model)
    after = model_file(model, "fp32")
    left = {p.name for p in cache.rglob("*") if p.is_file()}
    assert after != before and after.is_file()
    assert not old & left, old & left
    assert legacy.name not in left
    NumpyBert(model)  # entries for the current weights stay
    assert {p.name for p in cache.rglob("*") if p.is_file()} == left


def test_the_bulk_engine_keeps_to_the_cores_it_was_given():
    """A Ray actor granted one CPU runs one session on one thread, not one per core of its node."""
    name, folder = resolve_model(TUNED_MODEL)
    encoder = Encoder.from_folder(name, folder, precision="int8")
    encoder.cores = 1
    bulk = encoder.bulk()
    assert bulk.workers == 1
    assert bulk._sessions.get().session.get_session_options().intra_op_num_threads == 1
    two = Encoder.from_folder(name, folder, precision="int8")
    two.cores, two.workers = 2, 1
    assert two.bulk()._sessions.get().session.get_session_options().intra_op_num_threads == 2


def test_building_an_int8_graph_prints_nothing(tiny_reranker, tmp_path):
    """onnxruntime's quantizer gives advice on the root logger that does not apply to our graphs; a user's first
    index must not print it."""
    probe = (
        "from pathlib import Path\n"
        "from codeneedle.indexer.onnx_bert import model_file\n"
        f"print(model_file(Path({str(tiny_reranker)!r}), 'int8').name)\n"
        "import logging\n"
        "print(len(logging.getLogger().handlers))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "NEEDLE_CACHE_DIR": str(tmp_path / "cache")})
    assert out.returncode == 0, out.stderr
    name, handlers = out.stdout.split()
    assert name.endswith("-int8.onnx") and handlers == "0"  # and the root logger was left as it was
    assert out.stderr == ""



def test_an_int8_graph_leaves_no_fp32_graph_in_the_cache_and_is_the_same_graph(tiny_reranker, tmp_path, monkeypatch):
    """The fp32 graph is only the quantizer's input when int8 is asked for (the defaults): kept in the cache it
    took 159 of the 350 MB a first run left there."""
    from codeneedle.indexer.onnx_bert import model_file

    monkeypatch.setenv("NEEDLE_CACHE_DIR", str(tmp_path / "direct"))
    direct = model_file(tiny_reranker, "int8")
    assert sorted(p.name for p in direct.parent.iterdir() if p.suffix == ".onnx") == [direct.name]
    assert not [p for p in direct.parent.iterdir() if p.name.startswith(".")]  # the scratch fp32 is gone
    monkeypatch.setenv("NEEDLE_CACHE_DIR", str(tmp_path / "via-fp32"))
    model_file(tiny_reranker, "fp32")  # asked for first: kept, and quantized from
    via = model_file(tiny_reranker, "int8")
    assert via.read_bytes() == direct.read_bytes()


def test_two_processes_building_the_same_int8_graph_at_once_both_get_it(tiny_reranker, tmp_path):
    """The quantizer writes a scratch file beside its input and deletes it: two processes quantizing one graph (a
    language server and a CLI on a fresh machine, two test workers on a fresh clone) deleted each other's."""
    cache = tmp_path / "cache"
    subprocess.run([sys.executable, "-c", "from pathlib import Path\nfrom codeneedle.indexer.onnx_bert import model_file\n"
                    f"model_file(Path({str(tiny_reranker)!r}), 'fp32')"], check=True, timeout=300,
                   env={**os.environ, "NEEDLE_CACHE_DIR": str(cache)})
    probe = ("from pathlib import Path\nfrom codeneedle.indexer.onnx_bert import model_file\n"
             f"print(model_file(Path({str(tiny_reranker)!r}), 'int8').name)\n")
    env = {**os.environ, "NEEDLE_CACHE_DIR": str(cache)}
    procs = [subprocess.Popen([sys.executable, "-c", probe], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env) for _ in range(3)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outs]
    assert len({out.strip() for out, _ in outs}) == 1
    assert not [f.name for f in (cache / "onnx").iterdir() if "inferred" in f.name or f.name.startswith(".quantize")]


def test_a_model_loading_in_the_background_while_a_search_opens_the_vector_index_does_not_break_imports():
    """The index loads its encoder on a worker thread while the first search opens the usearch file; both import
    onnxruntime. With the imports unserialised, a thread that came to onnxruntime while the other was inside its
    package import deadlocked on Python's module locks and got a half-initialised module ("cannot import name
    'ExecutionMode'"): `needle search --collection` failed on CI that way."""
    from pathlib import Path

    _, folder = resolve_model(TUNED_MODEL)
    from codeneedle.indexer.onnx_bert import model_file

    model_file(folder, "int8")  # built here, so the probe only races the imports
    probe = Path(__file__).parent / "probes" / "onnxruntime_import_race.py"
    out = subprocess.run([sys.executable, str(probe)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "[]", (out.stdout, out.stderr[-2000:])


def test_the_quantizer_s_info_lines_and_advice_stay_out_of_the_log_but_its_warnings_do_not(caplog):
    """The language server logs at INFO, which editors show: the quantizer's ~60 "Quantization parameters for
    tensor" lines and its pre-processing advice (both on the root logger) are dropped while it runs."""
    import logging

    from codeneedle.indexer.onnx_bert import _quiet_quantizer

    with caplog.at_level(logging.INFO):
        with _quiet_quantizer():
            logging.info("Quantization parameters for tensor:'x' not specified")
            logging.warning("Please consider to run pre-processing before quantization.")
            logging.warning("the model has an unsupported op")
        logging.info("after the quantizer")
    assert [r.getMessage() for r in caplog.records] == ["the model has an unsupported op", "after the quantizer"]
