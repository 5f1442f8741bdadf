"""Needle's own BERT forward pass gives the vectors transformers gives, for every model it ships or finds."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from codeneedle.indexer.encoder import CODE_MAX_TOKENS, Encoder, _transformers_model
from codeneedle.indexer.models import resolve_model

TEXTS = [
    "src/config.py parse config\ndef parse_config(path):\n    return json.load(open(path))",
    "hello",
    "token " * 600,  # longer than any truncation length
    "Ünïcode ß 中文 text\twith tabs and emoji 🎉",
    "",
]


@pytest.mark.parametrize("model", ["minilm", "needle-code-v1"])
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
