"""Mean pooling: token states -> one unit vector per text, the same arithmetic in every engine.

One function per framework: ``mean_pool`` (numpy: the query path and ONNX Runtime) and ``mean_pool_torch``
(the torch and CUDA engines and training, which needs gradients). tests/test_encoder_bert.py checks they agree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


def mean_pool(hidden: np.ndarray, mask: np.ndarray, normalize: bool = True) -> np.ndarray:
    """Masked mean over tokens, L2-normalised (unless not ``normalize``: the re-ranker's head reads its length
    too): float32 (batch, hidden)."""
    m = mask[..., None].astype(np.float32)
    pooled = (hidden * m).sum(1) / np.maximum(m.sum(1), 1e-9)
    if not normalize:
        return pooled.astype(np.float32)
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)


def mean_pool_torch(hidden: torch.Tensor, mask: torch.Tensor, normalize: bool = True) -> torch.Tensor:
    """Masked mean over tokens, L2-normalised, float32 (batch, hidden); keeps gradients.

    Sums are taken in float32 whatever ``hidden`` is (fp16 on CUDA, bf16 under autocast): a half-precision
    sum over 256 tokens loses digits the index's float32 vectors keep.
    """
    import torch

    m = mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * m).sum(1).float() / m.sum(1).float().clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, p=2, dim=1) if normalize else pooled
