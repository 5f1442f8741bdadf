"""Needle's own BERT forward pass gives the vectors transformers gives, for every model it ships or finds."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from codeneedle.indexer.encoder import CODE_MAX_TOKENS, Encoder, _transformers_model
from codeneedle.indexer.models import TUNED_MODEL, resolve_model

TEXTS = [
    "src/config.py parse config\ndef parse_config(path):\n    return json.load(open(path))",
    "hello",
    "token " * 600,  # longer than any truncation length
    "Ünïcode ß 中文 text\twith tabs and emoji 🎉",
    "",
]


@pytest.mark.slow  # loads transformers and each model twice
@pytest.mark.parametrize("model", ["minilm", TUNED_MODEL])
def test_vectors_match_the_transformers_implementation(model):
    from codeneedle.indexer.bert import BertEncoder, BertTokenizer

    name, folder = resolve_model(model)
    tokenizer = BertTokenizer(folder)
    ours = Encoder(name, folder, BertEncoder(folder), tokenizer, "ours", 384)
    hf_model, hf_tokenizer = _transformers_model(folder)
    for max_length in (CODE_MAX_TOKENS, 64):
        ids, mask = tokenizer(TEXTS, max_length)
        hf_ids, hf_mask = hf_tokenizer(TEXTS, max_length)
        assert torch.equal(ids, hf_ids) and torch.equal(mask, hf_mask)
        assert ids.shape[1] <= max_length
    reference = Encoder(name, folder, hf_model, hf_tokenizer, ours.model_id, ours.dim)
    a, b = ours.encode(TEXTS), reference.encode(TEXTS)
    assert a.shape == (len(TEXTS), 384)
    np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)


def test_a_folder_that_is_not_bert_is_refused_by_the_fast_path(tmp_path):
    from codeneedle.indexer.bert import BertEncoder

    (tmp_path / "config.json").write_text('{"model_type": "t5"}')
    with pytest.raises(ValueError, match="not a BERT model"):
        BertEncoder(tmp_path)


def test_mean_pooling_is_the_same_in_numpy_and_torch():
    """One pooling per framework (indexer/pooling.py): numpy serves queries and ONNX Runtime, torch the torch
    and CUDA engines and training; they must agree, padding and an empty row included."""
    from codeneedle.indexer.pooling import mean_pool, mean_pool_torch

    rng = np.random.default_rng(7)
    hidden = rng.normal(size=(4, 9, 16)).astype(np.float32)
    mask = np.zeros((4, 9), dtype=np.int64)
    for row, length in enumerate((9, 5, 1, 0)):
        mask[row, :length] = 1
    hidden[1, 5:] = 1e6  # padding states must not leak into the mean
    ours = mean_pool(hidden, mask)
    theirs = mean_pool_torch(torch.from_numpy(hidden).requires_grad_(), torch.from_numpy(mask))
    assert theirs.dtype == torch.float32 and theirs.requires_grad
    np.testing.assert_allclose(theirs.detach().numpy(), ours, atol=1e-6)
    expected = hidden[1, :5].mean(0) / np.linalg.norm(hidden[1, :5].mean(0))
    np.testing.assert_allclose(ours[1], expected, atol=1e-6)
    assert np.allclose(np.linalg.norm(ours[:3], axis=1), 1) and not ours[3].any()
    half = mean_pool_torch(torch.from_numpy(hidden[:3, :5]).bfloat16(), torch.from_numpy(mask[:3, :5]))
    assert half.dtype == torch.float32  # summed in float32 under autocast too
    np.testing.assert_allclose(half.numpy(), mean_pool(hidden[:3, :5], mask[:3, :5]), atol=2e-2)
