"""Bulk encoding on the CPU with ONNX Runtime: the BERT graph written straight from the safetensors weights.

Why ONNX Runtime: its kernels (fused LayerNorm/GELU, int8 MatMulInteger) beat torch's eager CPU path, it releases
the GIL so worker threads run batches side by side, and it needs no torch import. Why build the graph ourselves
rather than ``torch.onnx.export``: the exporter needs torch, onnxscript and transformers' model code (and trips on
transformers 5's keyword-only arguments); the BERT encoder is twenty nodes per layer, written below, the same
arithmetic as ``bert.py`` and ``numpy_bert.py`` (a test compares them).

Graphs are built once per model and precision and kept in the user cache (``$XDG_CACHE_HOME/needle/onnx``).
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
from pathlib import Path

import numpy as np

from codeneedle.indexer.numpy_bert import bert_config, load_weights, user_cache

OPSET = 17  # LayerNormalization is a standard op from 17


def cache_dir() -> Path:
    """Where built ONNX graphs live: ``onnx/`` in the user cache (``numpy_bert.user_cache``)."""
    return user_cache() / "onnx"


def model_file(folder: Path, precision: str) -> Path:
    """The ONNX graph of the BERT model in ``folder`` at ``precision`` ("fp32" or "int8"), built if missing."""
    weights = folder / "model.safetensors"
    st = weights.stat()
    key = hashlib.blake2b(f"{weights.resolve()}:{st.st_size}:{st.st_mtime_ns}:v1".encode(), digest_size=8).hexdigest()
    dest = cache_dir() / f"{folder.name}-{key}-{precision}.onnx"
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    if precision == "fp32":
        _atomic(dest, lambda tmp: build_graph(folder, tmp))
    elif precision == "int8":
        fp32 = model_file(folder, "fp32")
        _atomic(dest, lambda tmp: quantize(fp32, tmp))
    else:
        raise ValueError(f"unknown precision {precision!r} (fp32 or int8)")
    return dest


def _atomic(dest: Path, write) -> None:
    # Two processes may build the same graph at once: each writes its own temp file, the rename is atomic.
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=dest.name, suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, dest)
    finally:
        Path(tmp).unlink(missing_ok=True)


def build_graph(folder: Path, dest: Path) -> None:
    """Write the ONNX graph of the BERT encoder in ``folder``: (input_ids, attention_mask) -> last_hidden_state."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    config = bert_config(folder)
    hidden, heads = int(config["hidden_size"]), int(config["num_attention_heads"])
    layers, eps = int(config["num_hidden_layers"]), float(config.get("layer_norm_eps", 1e-12))
    head_dim = hidden // heads
    w = load_weights(folder)
    inits: list = []
    nodes: list = []

    def const(name: str, value) -> str:
        inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(op: str, inputs: list[str], name: str, **attrs) -> str:
        nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    def linear(x: str, prefix: str, out: str) -> str:
        # MatMul by a (in, out) initializer: the form ORT's dynamic quantizer turns into MatMulInteger.
        wt = const(f"{prefix}.wT", w[f"{prefix}.weight"].T.copy())
        b = const(f"{prefix}.b", w[f"{prefix}.bias"])
        return node("Add", [node("MatMul", [x, wt], f"{out}_mm"), b], out)

    def layer_norm(x: str, prefix: str, out: str) -> str:
        g, b = const(f"{prefix}.g", w[f"{prefix}.weight"]), const(f"{prefix}.beta", w[f"{prefix}.bias"])
        return node("LayerNormalization", [x, g, b], out, axis=-1, epsilon=eps)

    const("zero", np.array(0, dtype=np.int64))
    const("one", np.array(1, dtype=np.int64))
    const("one_f", np.array(1.0, dtype=np.float32))
    const("neg_big", np.array(-1e30, dtype=np.float32))
    const("scale", np.array(1.0 / math.sqrt(head_dim), dtype=np.float32))
    const("half", np.array(0.5, dtype=np.float32))
    const("inv_sqrt2", np.array(1 / math.sqrt(2), dtype=np.float32))
    const("axes12", np.array([1, 2], dtype=np.int64))
    const("heads_shape", np.array([0, 0, heads, head_dim], dtype=np.int64))
    const("merge_shape", np.array([0, 0, hidden], dtype=np.int64))
    const("word", w["embeddings.word_embeddings.weight"])
    const("pos", w["embeddings.position_embeddings.weight"])
    const("type0", w["embeddings.token_type_embeddings.weight"][0])

    length = node("Gather", [node("Shape", ["input_ids"], "ids_shape"), "one"], "seq_len")
    positions = node("Range", ["zero", length, "one"], "positions")
    x = node("Add", [node("Gather", ["word", "input_ids"], "word_emb"),
                     node("Gather", ["pos", positions], "pos_emb")], "emb_sum")
    x = node("Add", [x, "type0"], "emb")
    x = layer_norm(x, "embeddings.LayerNorm", "emb_ln")
    maskf = node("Cast", ["attention_mask"], "mask_f", to=TensorProto.FLOAT)
    bias = node("Mul", [node("Sub", ["one_f", maskf], "mask_inv"), "neg_big"], "mask_bias_flat")
    bias = node("Unsqueeze", [bias, "axes12"], "mask_bias")
    for i in range(layers):
        p = f"encoder.layer.{i}."

        def split_heads(t: str, perm: list[int], name: str) -> str:
            return node("Transpose", [node("Reshape", [t, "heads_shape"], name + "_r")], name, perm=perm)

        q = split_heads(linear(x, p + "attention.self.query", f"l{i}_q"), [0, 2, 1, 3], f"l{i}_qh")
        k = split_heads(linear(x, p + "attention.self.key", f"l{i}_k"), [0, 2, 3, 1], f"l{i}_kh")
        v = split_heads(linear(x, p + "attention.self.value", f"l{i}_v"), [0, 2, 1, 3], f"l{i}_vh")
        scores = node("Mul", [node("MatMul", [q, k], f"l{i}_att_qk"), "scale"], f"l{i}_scores_s")
        probs = node("Softmax", [node("Add", [scores, bias], f"l{i}_scores")], f"l{i}_probs", axis=-1)
        ctx = node("Transpose", [node("MatMul", [probs, v], f"l{i}_att_pv")], f"l{i}_ctx_t", perm=[0, 2, 1, 3])
        ctx = node("Reshape", [ctx, "merge_shape"], f"l{i}_ctx")
        a = linear(ctx, p + "attention.output.dense", f"l{i}_ao")
        x = layer_norm(node("Add", [a, x], f"l{i}_res1"), p + "attention.output.LayerNorm", f"l{i}_ln1")
        h = linear(x, p + "intermediate.dense", f"l{i}_inter")
        erf = node("Erf", [node("Mul", [h, "inv_sqrt2"], f"l{i}_gs")], f"l{i}_erf")
        h = node("Mul", [node("Mul", [h, "half"], f"l{i}_gh"), node("Add", [erf, "one_f"], f"l{i}_ge")],
                 f"l{i}_gelu")
        h = linear(h, p + "output.dense", f"l{i}_out")
        x = layer_norm(node("Add", [h, x], f"l{i}_res2"), p + "output.LayerNorm", f"l{i}_ln2")
    nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"], name="output"))
    graph = helper.make_graph(
        nodes, "needle_bert",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"])],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "seq", hidden])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="needle")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(dest))


def quantize(src: Path, dest: Path) -> None:
    """Dynamic int8 quantization of the weight MatMuls (per output channel); attention products stay fp32."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(src), str(dest), weight_type=QuantType.QInt8, per_channel=True,
                     op_types_to_quantize=["MatMul"],
                     nodes_to_exclude=[n for i in range(64) for n in (f"l{i}_att_qk", f"l{i}_att_pv")])


class OnnxBert:
    """An ONNX Runtime session over the built graph; ``__call__`` is thread-safe and releases the GIL."""

    def __init__(self, folder: Path, precision: str = "fp32", threads: int = 1):
        import onnxruntime as ort

        self.path = model_file(folder, precision)
        self.precision = precision
        self.hidden = int(bert_config(folder)["hidden_size"])
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])

    def __call__(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return self.session.run(["last_hidden_state"], {"input_ids": ids, "attention_mask": mask})[0]
