"""A BERT encoder's forward pass in plain torch, read straight from safetensors, with a `tokenizers` tokenizer.

Why not transformers: importing its BERT model code pulls in some 1,400 modules (torch.distributed, dynamo,
sympy, scipy), about 125 MB of resident memory and a second of start-up, for a model whose inference is a
dozen lines. Training keeps using transformers; a test checks both give the same vectors.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F

from codeneedle.indexer.numpy_bert import NumpyTokenizer


class BertEncoder:
    """Inference-only BERT (absolute positions, GELU): token ids -> last hidden states."""

    def __init__(self, folder: Path):
        from safetensors.torch import load_file

        config = json.loads((folder / "config.json").read_text())
        if config.get("model_type") != "bert":
            raise ValueError(f"{folder}: not a BERT model (model_type {config.get('model_type')!r})")
        self.hidden = int(config["hidden_size"])
        self.heads = int(config["num_attention_heads"])
        self.layers = int(config["num_hidden_layers"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        if not (folder / "model.safetensors").is_file():
            raise FileNotFoundError(f"{folder}: no model.safetensors")
        weights = load_file(str(folder / "model.safetensors"))
        # Checkpoints saved from a task model prefix the encoder's names with "bert.".
        self.w = {k.removeprefix("bert."): v.float().contiguous() for k, v in weights.items()}

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        w, eps = self.w, self.eps
        length = input_ids.shape[1]
        x = (w["embeddings.word_embeddings.weight"][input_ids]
             + w["embeddings.position_embeddings.weight"][:length]
             + w["embeddings.token_type_embeddings.weight"][0])
        x = F.layer_norm(x, (self.hidden,), w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
        keep = attention_mask[:, None, None, :].bool()
        batch, head_dim = x.shape[0], self.hidden // self.heads
        for i in range(self.layers):
            p = f"encoder.layer.{i}."

            q, k, v = (
                F.linear(x, w[f"{p}attention.self.{name}.weight"], w[f"{p}attention.self.{name}.bias"])
                .view(batch, length, self.heads, head_dim).transpose(1, 2)
                for name in ("query", "key", "value")
            )
            ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=keep, scale=1.0 / math.sqrt(head_dim))
            ctx = ctx.transpose(1, 2).reshape(batch, length, self.hidden)
            a = F.linear(ctx, w[f"{p}attention.output.dense.weight"], w[f"{p}attention.output.dense.bias"])
            x = F.layer_norm(a + x, (self.hidden,), w[f"{p}attention.output.LayerNorm.weight"],
                             w[f"{p}attention.output.LayerNorm.bias"], eps)
            h = F.gelu(F.linear(x, w[f"{p}intermediate.dense.weight"], w[f"{p}intermediate.dense.bias"]))
            h = F.linear(h, w[f"{p}output.dense.weight"], w[f"{p}output.dense.bias"])
            x = F.layer_norm(h + x, (self.hidden,), w[f"{p}output.LayerNorm.weight"], w[f"{p}output.LayerNorm.bias"],
                             eps)
        return x


class BertTokenizer(NumpyTokenizer):
    """The model folder's fast tokenizer (tokenizer.json): padded, truncated batches as torch tensors."""

    def __call__(self, texts: list[str], max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
        ids, mask = super().__call__(texts, max_length)
        return torch.from_numpy(ids), torch.from_numpy(mask)
