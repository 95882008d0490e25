"""The cross-attention router network (arXiv 2509.09782, "One Head, Many Models").

A pool of M LLMs, each with a learned model embedding living in the encoder's space (so it can be
initialised from the encoder's embedding of the model's name). The prompt is its sentence
embedding ``x`` (N, D) and, for the ``model_queries`` variant, a short sequence of token features
``tokens`` (N, T, D) with a boolean ``mask`` (N, T) (True = real token).

ONE single-head cross-attention block, then two heads that predict, for every model, the quality
of its answer (a logit; sigmoid gives 0..1) and its cost on a normalised log scale
(``z = (log(cost + eps) - mu) / sigma``; :mod:`router.model.estimator` maps it back to USD).

The paper does not say which side is the query, so both readings are here (``variant``):

* ``prompt_queries`` (b): the prompt is the query and attends over the M model embeddings (keys
  and values). The attended context is one vector per prompt: a prompt-dependent mixture of the
  models, i.e. "which models does this prompt look like it needs".
* ``model_queries`` (a): each model embedding is a query that attends over the prompt's tokens
  (keys and values), giving one context vector per (prompt, model): "what in this prompt matters
  to this model". The sentence embedding is always appended as one extra, never-masked token, so
  a prompt with no token features (or all padding) still has something to attend to.

The model side is, by ``model_repr``, the learned embedding (``name``, above), a fixed
performance profile per model (``profile``: mean quality and log cost per k-means cluster of the
training prompts, :mod:`router.model.profile`) projected to the hidden space, or their sum
(``both``: the learned embedding as a residual on the profile).

In both variants the per-model heads read ``[context, model embedding, prompt embedding]`` (the
context is the attention output; the model and prompt terms are residual paths, our choice: the
paper is silent, and without them reading (b) could not tell models apart at all). The first layer
of each head is linear in the concatenation, so it is computed as a broadcast sum of three
projections: (N, 1, d) + (1, M, d) + (N, M or 1, d), never materialising (N, M, 3d) inputs.
"""

from __future__ import annotations

import math

import torch
from torch import nn

VARIANTS = ("prompt_queries", "model_queries")
MODEL_REPRS = ("name", "profile", "both")


class CrossAttentionRouter(nn.Module):
    def __init__(
        self,
        input_dim: int,
        n_models: int,
        hidden_dim: int = 128,
        dropout: float = 0.1,
        variant: str = "prompt_queries",
        model_init: torch.Tensor | None = None,
        product: bool = False,
        model_repr: str = "name",
        model_profile: torch.Tensor | None = None,
        profile_centroids: torch.Tensor | None = None,
        profile_stats: torch.Tensor | None = None,
    ):
        super().__init__()
        if model_repr not in MODEL_REPRS:
            raise ValueError(f"unknown model_repr {model_repr!r}; choose one of {MODEL_REPRS}")
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r}; choose one of {VARIANTS}")
        self.input_dim, self.n_models, self.hidden_dim, self.variant = input_dim, n_models, hidden_dim, variant
        # Model embeddings in the encoder's space (D), shared projection to the hidden space.
        init = torch.randn(n_models, input_dim) / math.sqrt(input_dim) if model_init is None else model_init.clone().float()
        if init.shape != (n_models, input_dim):
            raise ValueError(f"model_init must be ({n_models}, {input_dim}), got {tuple(init.shape)}")
        self.model_embedding = nn.Parameter(init)
        self.prompt_proj = nn.Linear(input_dim, hidden_dim)
        self.model_proj = nn.Linear(input_dim, hidden_dim)
        self.model_repr = model_repr
        if model_repr != "name":
            # Performance profiles (router.model.profile): fixed per model, (M, 2K), projected to the
            # hidden space. The centroids and the log-cost standardisation travel with the weights so
            # an artifact can place a new model from a probe set (router.model.extend.place_model).
            if model_profile is None or profile_centroids is None or profile_stats is None:
                raise ValueError(f"model_repr {model_repr!r} needs model_profile, profile_centroids and profile_stats")
            if model_profile.shape[0] != n_models or model_profile.shape[1] != 2 * profile_centroids.shape[0] \
                    or profile_centroids.shape[1] != input_dim:
                raise ValueError(f"profiles {tuple(model_profile.shape)} / centroids {tuple(profile_centroids.shape)} "
                                 f"do not fit {n_models} models of {input_dim}-d prompts")  # fmt: skip
            self.register_buffer("model_profile", model_profile.clone().float())
            self.register_buffer("profile_centroids", profile_centroids.clone().float())
            self.register_buffer("profile_stats", profile_stats.clone().double())  # logc_mu, logc_sigma, eps
            self.profile_proj = nn.Linear(model_profile.shape[1], hidden_dim)
        # The single attention head.
        self.q = nn.Linear(hidden_dim, hidden_dim, bias=False)
        self.k = nn.Linear(hidden_dim, hidden_dim, bias=False)
        self.v = nn.Linear(hidden_dim, hidden_dim, bias=False)
        if variant == "model_queries":
            self.token_proj = nn.Linear(input_dim, hidden_dim)
        self.norm = nn.LayerNorm(hidden_dim)
        self.dropout = nn.Dropout(dropout)
        self.product = product
        self.quality_head = _Head(hidden_dim, dropout, product)
        self.cost_head = _Head(hidden_dim, dropout, product)

    @property
    def needs_tokens(self) -> bool:
        return self.variant == "model_queries"

    def models_hidden(self, model_embedding: torch.Tensor | None = None, model_profile: torch.Tensor | None = None) -> torch.Tensor:
        """(M, d) hidden model representations: the projected learned embedding ('name'), the
        projected profile ('profile') or their sum ('both'). ``model_embedding``/``model_profile``
        override the stored ones (e.g. for a model being added)."""
        out = None
        if self.model_repr in ("name", "both"):
            out = self.model_proj(self.model_embedding if model_embedding is None else model_embedding)
        if self.model_repr in ("profile", "both"):
            prof = self.profile_proj(self.model_profile if model_profile is None else model_profile)
            out = prof if out is None else out + prof
        return out

    def forward(
        self,
        x: torch.Tensor,
        tokens: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        model_embedding: torch.Tensor | None = None,
        return_attention: bool = False,
        model_profile: torch.Tensor | None = None,
    ):
        """x: (N, D); tokens: (N, T, D) or None; mask: (N, T) bool, True = real token.

        Returns quality logits (N, M) and normalised log costs (N, M) (and the attention weights
        when ``return_attention``: (N, M) for prompt_queries, (N, M, T+1) for model_queries).
        """
        p = self.prompt_proj(x)  # (N, d)
        m = self.models_hidden(model_embedding, model_profile)  # (M, d)
        scale = 1.0 / math.sqrt(self.hidden_dim)
        if self.variant == "prompt_queries":
            scores = (self.q(p) @ self.k(m).T) * scale  # (N, M)
            attn = scores.softmax(dim=-1)
            context = (attn @ self.v(m)).unsqueeze(1)  # (N, 1, d)
        else:
            seq = p.unsqueeze(1)  # the sentence embedding as one always-present token
            keep = torch.ones(x.shape[0], 1, dtype=torch.bool, device=x.device)
            if tokens is not None and tokens.shape[1] > 0:
                if tokens.shape[0] != x.shape[0] or tokens.shape[2] != self.input_dim:
                    raise ValueError(f"tokens must be (N={x.shape[0]}, T, {self.input_dim}), got {tuple(tokens.shape)}")
                tok_mask = torch.ones(tokens.shape[:2], dtype=torch.bool, device=x.device) if mask is None else mask.bool()
                seq = torch.cat([seq, self.token_proj(tokens.float())], dim=1)  # (N, T+1, d)
                keep = torch.cat([keep, tok_mask], dim=1)
            scores = torch.einsum("md,ntd->nmt", self.q(m), self.k(seq)) * scale  # (N, M, T+1)
            scores = scores.masked_fill(~keep.unsqueeze(1), float("-inf"))
            attn = scores.softmax(dim=-1)
            context = torch.einsum("nmt,ntd->nmd", attn, self.v(seq))  # (N, M, d)
        context = self.norm(self.dropout(context))
        quality = self.quality_head(context, m, p)
        cost = self.cost_head(context, m, p)
        return (quality, cost, attn) if return_attention else (quality, cost)


class _Head(nn.Module):
    """Per-model MLP on [context, model, prompt] (and, with ``product``, prompt ⊙ model: an explicit
    multiplicative interaction); one scalar per (prompt, model)."""

    def __init__(self, hidden_dim: int, dropout: float, product: bool = False):
        super().__init__()
        self.c = nn.Linear(hidden_dim, hidden_dim)
        self.m = nn.Linear(hidden_dim, hidden_dim, bias=False)
        self.p = nn.Linear(hidden_dim, hidden_dim, bias=False)
        self.x = nn.Linear(hidden_dim, hidden_dim, bias=False) if product else None
        self.out = nn.Sequential(nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden_dim, 1))

    def forward(self, context: torch.Tensor, m: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        h = self.c(context) + self.m(m).unsqueeze(0) + self.p(p).unsqueeze(1)  # (N, M, d)
        if self.x is not None:
            h = h + self.x(p.unsqueeze(1) * m.unsqueeze(0))
        return self.out(h).squeeze(-1)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
