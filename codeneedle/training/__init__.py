"""Fine-tuning Needle's code encoder: mining, negatives, losses, curriculum, training loop, evaluation.

Library entry points for the CLI (imported lazily: torch and scipy load only when called):

- :func:`codeneedle.training.train.train_model` ``(config: TrainConfig, progress=None, resume=True) -> Path``
- :func:`codeneedle.training.evaluate.evaluate_model` ``(model_path, benchmark, progress=None, ...) -> dict``
- :func:`codeneedle.training.adapt.adapt_to_repo` ``(repo, base_model, out_dir, time_budget_s=600, ...) -> Path``
- :func:`codeneedle.training.train.export_model` ``(model_dir, dest, fp16=True) -> Path``
"""

from __future__ import annotations

from typing import Any

__all__ = ["TrainConfig", "train_model", "evaluate_model", "adapt_to_repo", "export_model"]


def __getattr__(name: str) -> Any:
    if name in ("TrainConfig", "train_model", "export_model"):
        from codeneedle.training import train

        return getattr(train, name)
    if name == "evaluate_model":
        from codeneedle.training.evaluate import evaluate_model

        return evaluate_model
    if name == "adapt_to_repo":
        from codeneedle.training.adapt import adapt_to_repo

        return adapt_to_repo
    raise AttributeError(name)
