"""Token features for the ``model_queries`` variant (each model attends over the prompt's tokens).

Contextual token embeddings would need a second full encoder pass over every prompt (~30-47
prompts/s on this CPU: ~10 min for the two bundled datasets) and 21k prompts × 256 tokens × 384
floats do not fit a cache comfortably. We use a cheaper construction instead, and say so:

* the prompt is tokenised with the sentence encoder's own WordPiece tokenizer (truncated to the
  encoder's 256-token limit, no special tokens);
* each token is looked up in the encoder's *static input embedding table* (the first layer of
  all-MiniLM-L6-v2, before any transformer layer: no model forward pass, microseconds per prompt);
* the sequence is cut into at most ``segments`` contiguous, near-equal chunks, each mean-pooled,
  so a prompt becomes ≤ ``segments`` vectors of the encoder's width (float16) plus a mask
  (True = real segment; prompts shorter than ``segments`` tokens get one segment per token).

This gives the attention real per-position content to choose from while costing only
tokenisation, so serving and batch paths could afford it too.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


class StaticTokenFeaturizer:
    """Segment-pooled static WordPiece embeddings of a sentence-transformers encoder."""

    def __init__(self, encoder_model: str = "all-MiniLM-L6-v2", segments: int = 16, max_tokens: int = 256):
        from router.embeddings.sentence_transformer import SentenceTransformerEncoder

        if segments < 1:
            raise ValueError(f"segments must be >= 1, got {segments}")
        name = encoder_model[3:] if encoder_model.startswith("st:") else encoder_model
        st = SentenceTransformerEncoder(name, device="cpu").model
        self.tokenizer = st.tokenizer
        table = st[0].auto_model.get_input_embeddings().weight.detach().cpu().numpy()
        self.table = table.astype(np.float32)
        self.segments, self.max_tokens = segments, max_tokens

    @property
    def dim(self) -> int:
        return int(self.table.shape[1])

    def __call__(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """tokens (N, segments, D) float16 and mask (N, segments) bool."""
        texts = list(texts)
        ids = self.tokenizer(texts, add_special_tokens=False, truncation=True, max_length=self.max_tokens)["input_ids"]
        out = np.zeros((len(texts), self.segments, self.dim), dtype=np.float16)
        mask = np.zeros((len(texts), self.segments), dtype=bool)
        for i, seq in enumerate(ids):
            if not seq:
                continue
            vecs = self.table[np.asarray(seq)]
            chunks = np.array_split(np.arange(len(seq)), min(self.segments, len(seq)))
            for s, rows in enumerate(chunks):
                out[i, s] = vecs[rows].mean(axis=0)
                mask[i, s] = True
        return out, mask
