"""The training loop of the cross-attention network: joint loss, AdamW, early stopping, fixed seeds.

Loss = quality loss + ``cost_loss_weight`` × cost loss, where the quality loss is BCE on the
quality logit (targets may be fractional) or MSE on its sigmoid, and the cost loss is the MSE on
the normalised log cost (see :class:`router.model.estimator.CostScaler`). The paper gives neither
loss; the defaults are what the validation split preferred (README, section cross-attention).

A decision-aware term can be added (``TrainConfig.loss``, weight ``decision_loss_weight``):

* ``listwise``: per prompt a λ from the linear reward's grid (drawn anew each epoch for training
  rows; fixed per row for the validation rows, so the early-stopping loss is not noisy), the
  observed reward r_j = q_j − λ·c_j/c_ref and the predicted one r̂_j = q̂_j − λ·ĉ_j/c_ref (ĉ in USD
  from the predicted normalised log cost); the loss is the cross-entropy of softmax(r̂/T) against
  softmax(r/T) over the models: it trains what the decision reads, the order of the rewards. T is
  ``decision_temperature`` × (1 + λ·mean_j c_j/c_ref), the reward's own scale at that λ.
* ``pairwise``: for every pair of models whose observed quality differs on a prompt, a logistic
  loss on the difference of their quality logits (weighted by the quality gap): the order of the
  qualities, not their level.

Early stopping watches the validation loss on a seeded ``val_fraction`` of the training rows and
restores the best epoch's weights. The same seed gives the same numbers: seeded init, seeded
shuffles, a fixed thread count and ``torch.use_deterministic_algorithms`` during training (all
three restored afterwards, since they are process-wide).

This module knows tensors and the network only; :class:`router.model.estimator.CrossAttentionPredictor`
owns fitting (``fit``) and calls :func:`fit_network`.
"""

from __future__ import annotations

import contextlib
import copy
import math
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from router.model.config import TrainConfig

EpochCallback = Callable[[int, dict], None]
# Scores the network being trained on the validation rows (e.g. their AIQ); None when unknown.
ValScore = Callable[[object, np.ndarray], "float | None"]


def check_training_inputs(X, quality, cost, models) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]]:
    """Arrays of the right dtype and shape, or a ValueError naming what is wrong."""
    X = np.asarray(X, dtype=np.float32)
    quality = np.asarray(quality, dtype=np.float64)
    cost = np.asarray(cost, dtype=np.float64)
    models = tuple(str(m) for m in models)
    if X.ndim != 2:
        raise ValueError(f"X must be an (N, D) array of embeddings, got shape {X.shape}")
    n, m = len(X), len(models)
    if m == 0:
        raise ValueError("the pool of models is empty")
    if len(set(models)) != m:
        raise ValueError(f"duplicate model names in the pool: {list(models)}")
    for name, arr in (("quality", quality), ("cost", cost)):
        if arr.shape != (n, m):
            raise ValueError(f"{name} must be (N={n}, M={m}), got shape {arr.shape}")
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} contains NaN or infinite values")
    if not np.isfinite(X).all():
        raise ValueError("X contains NaN or infinite values")
    if (quality < 0).any() or (quality > 1).any():
        raise ValueError("quality must be in [0, 1]")
    if (cost < 0).any():
        raise ValueError("cost must be >= 0")
    if n < 2:
        raise ValueError(f"need at least 2 training prompts, got {n}")
    return X, quality, cost, models


def check_token_inputs(tokens, mask, n: int, dim: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Token features as float32 (N, T, D) with a bool (N, T) mask (all True when not given)."""
    if tokens is None:
        return None, None
    tokens = np.asarray(tokens, dtype=np.float32)
    mask = np.ones(tokens.shape[:2], dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if tokens.ndim != 3 or tokens.shape[0] != n or tokens.shape[2] != dim or mask.shape != tokens.shape[:2]:
        raise ValueError(f"tokens must be (N={n}, T, {dim}) with mask (N, T); got {tokens.shape}, {mask.shape}")
    return tokens, mask


@contextlib.contextmanager
def deterministic_torch(num_threads: int | None, seed: int):
    """Fixed threads, deterministic kernels and a seeded generator for the block; restored after
    (they are process-wide, and a Serve replica or a Tune trial shares its process)."""
    import torch

    old_threads = torch.get_num_threads()
    old_det = torch.are_deterministic_algorithms_enabled()
    try:
        if num_threads:
            torch.set_num_threads(num_threads)
        torch.use_deterministic_algorithms(True)
        torch.manual_seed(seed)
        yield torch.Generator().manual_seed(seed)
    finally:
        torch.use_deterministic_algorithms(old_det)
        torch.set_num_threads(old_threads)


@dataclass
class TrainingResult:
    network: object  # CrossAttentionRouter with the best epoch's weights, in eval mode
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    seconds: float = 0.0


@dataclass
class DecisionTarget:
    """What the listwise loss needs beyond the pointwise targets: the USD costs, ``c_ref`` and the
    cost normalisation (to turn predicted z back into USD)."""

    cost: np.ndarray  # (N, M) USD
    c_ref: float
    mu: np.ndarray  # (M,) of the CostScaler
    sigma: np.ndarray  # (M,)
    eps: float


class _Batches:
    """The training tensors and the joint loss on a set of rows."""

    def __init__(self, net, cfg: TrainConfig, X, quality, z_cost, tokens, mask, decision: DecisionTarget | None = None,
                 generator=None):  # fmt: skip
        import torch

        from router.rewards import NORMALISED_GRID

        self.net, self.cfg = net, cfg
        self.X, self.Q, self.C = torch.from_numpy(X), torch.from_numpy(quality.astype(np.float32)), torch.from_numpy(z_cost)
        self.T = None if tokens is None else torch.from_numpy(tokens)
        self.M = None if tokens is None else torch.from_numpy(mask)
        self.gen = generator
        if cfg.loss == "listwise":
            if decision is None:
                raise ValueError("loss 'listwise' needs the USD costs and c_ref (DecisionTarget)")
            self.usd = torch.from_numpy(np.asarray(decision.cost, dtype=np.float32))
            self.c_ref = float(decision.c_ref)
            self.mu = torch.as_tensor(np.asarray(decision.mu, dtype=np.float32))
            self.sigma = torch.as_tensor(np.asarray(decision.sigma, dtype=np.float32))
            self.eps = float(decision.eps)
            self.grid = torch.tensor(NORMALISED_GRID, dtype=torch.float32)
            # A fixed λ per row for validation losses (seeded), a fresh draw per step for training.
            fixed = np.random.default_rng(cfg.seed).integers(0, len(NORMALISED_GRID), len(X))
            self.fixed_lam = self.grid[torch.from_numpy(fixed)]

    def loss(self, rows, training: bool = False):
        import torch.nn.functional as F

        q_logit, z = self.net(self.X[rows], None if self.T is None else self.T[rows], None if self.M is None else self.M[rows])
        if self.cfg.quality_loss == "bce":
            lq = F.binary_cross_entropy_with_logits(q_logit, self.Q[rows])
        else:
            lq = F.mse_loss(q_logit.sigmoid(), self.Q[rows])
        total = lq + self.cfg.cost_loss_weight * F.mse_loss(z, self.C[rows])
        if self.cfg.loss == "listwise":
            total = total + self.cfg.decision_loss_weight * self._listwise(rows, q_logit, z, training)
        elif self.cfg.loss == "pairwise":
            total = total + self.cfg.decision_loss_weight * self._pairwise(rows, q_logit)
        return total

    def _listwise(self, rows, q_logit, z, training: bool):
        import torch

        if training:
            lam = self.grid[torch.randint(len(self.grid), (len(rows),), generator=self.gen)]
        else:
            lam = self.fixed_lam[rows]
        lam = lam[:, None] / self.c_ref
        cost_hat = torch.clamp(torch.exp(z * self.sigma + self.mu) - self.eps, min=0.0)
        r_hat = q_logit.sigmoid() - lam * cost_hat
        usd = self.usd[rows]
        r = self.Q[rows] - lam * usd
        # The temperature in units of the reward's own range at that λ (quality's 1 plus the cost
        # term's typical size): at λ = 1000 the rewards are thousands of times larger than at 0.
        t = self.cfg.decision_temperature * (1.0 + lam * usd.mean(dim=1, keepdim=True))
        return -(torch.softmax(r / t, dim=1) * torch.log_softmax(r_hat / t, dim=1)).sum(dim=1).mean()

    def _pairwise(self, rows, q_logit):
        import torch.nn.functional as F

        q = self.Q[rows]
        gap = q[:, :, None] - q[:, None, :]  # (B, M, M): > 0 where model j beat model k
        diff = q_logit[:, :, None] - q_logit[:, None, :]
        weight = gap.clamp(min=0.0)
        return (weight * F.softplus(-diff)).sum() / weight.sum().clamp(min=1e-6)

    def epoch(self, opt, train_rows, generator) -> float:
        """One pass over ``train_rows`` in a seeded order; the mean training loss."""
        import torch

        self.net.train()
        perm = train_rows[torch.randperm(len(train_rows), generator=generator)]
        total, count = 0.0, 0
        for start in range(0, len(perm), self.cfg.batch_size):
            rows = perm[start : start + self.cfg.batch_size]
            loss = self.loss(rows, training=True)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(rows)
            count += len(rows)
        return total / max(count, 1)


def _print_epoch(metrics: dict, improved: bool) -> None:
    aiq = metrics.get("val_aiq")
    print(
        f"epoch {metrics['epoch']:3d}  train loss {metrics['train_loss']:.4f}  val loss {metrics['val_loss']:.4f}"
        + (f"  val AIQ {aiq:.4f}" if aiq is not None else "")
        + ("  *" if improved else ""),
        file=sys.stderr,
        flush=True,
    )


def fit_network(
    cfg: TrainConfig,
    X: np.ndarray,
    quality: np.ndarray,
    z_cost: np.ndarray,
    n_models: int,
    train_rows: np.ndarray,
    val_rows: np.ndarray,
    tokens=None,
    mask=None,
    model_init=None,
    val_score: ValScore | None = None,
    on_epoch: EpochCallback | None = None,
    progress: bool = False,
    profile=None,
    decision: DecisionTarget | None = None,
) -> TrainingResult:
    """Train a fresh network on ``train_rows`` with early stopping on the loss of ``val_rows``
    (on the training loss when there are none). ``z_cost`` is the normalised log cost.
    ``profile``: ``(Profiler, (M, 2K) profiles)`` for ``model_repr`` profile/both;
    ``decision``: the listwise loss's targets."""
    import torch

    from router.model.cross_attention import CrossAttentionRouter

    started = time.perf_counter()
    with deterministic_torch(cfg.num_threads, cfg.seed) as gen:
        net = CrossAttentionRouter(
            X.shape[1], n_models, hidden_dim=cfg.hidden_dim, dropout=cfg.dropout, variant=cfg.variant,
            model_init=None if model_init is None else torch.from_numpy(model_init), product=cfg.product,
            model_repr=cfg.model_repr, **profile_tensors(profile),
        )  # fmt: skip
        opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        data = _Batches(net, cfg, X, quality, z_cost, tokens, mask, decision, gen)
        t_train, t_val = torch.from_numpy(train_rows), torch.from_numpy(val_rows)
        result = TrainingResult(net)
        best, best_state, bad = math.inf, None, 0
        for epoch in range(1, cfg.max_epochs + 1):
            metrics = {"epoch": epoch, "train_loss": data.epoch(opt, t_train, gen)}
            net.eval()
            if len(val_rows):
                with torch.no_grad():
                    metrics["val_loss"] = float(data.loss(t_val))
                metrics["val_aiq"] = val_score(net, val_rows) if val_score is not None else None
            else:
                metrics["val_loss"] = metrics["train_loss"]
            metrics["seconds"] = time.perf_counter() - started
            result.history.append(metrics)
            improved = metrics["val_loss"] < best - 1e-6
            if improved:
                best, best_state, result.best_epoch, bad = metrics["val_loss"], copy.deepcopy(net.state_dict()), epoch, 0
            else:
                bad += 1
            if progress:
                _print_epoch(metrics, improved)
            if on_epoch is not None:
                on_epoch(epoch, dict(metrics))
            if bad >= cfg.patience:
                break
        if best_state is not None:
            net.load_state_dict(best_state)
        net.eval()
    result.seconds = time.perf_counter() - started
    if progress:
        print(f"best epoch {result.best_epoch} (val loss {best:.4f}), {result.seconds:.1f} s", file=sys.stderr, flush=True)
    return result


def profile_tensors(profile) -> dict:
    """The network's profile arguments from ``(Profiler, profiles)`` (none for model_repr 'name')."""
    if profile is None:
        return {}
    import torch

    profiler, profiles = profile
    return {
        "model_profile": torch.from_numpy(np.asarray(profiles, dtype=np.float32)),
        "profile_centroids": torch.from_numpy(np.asarray(profiler.centroids, dtype=np.float32)),
        "profile_stats": torch.tensor([profiler.logc_mu, profiler.logc_sigma, profiler.eps], dtype=torch.float64),
    }


def check_model_init(model_init, models: Sequence[str], dim: int, wanted: bool) -> np.ndarray | None:
    """``model_init`` as an (M, D) float32 array when the config wants name initialisation, else None."""
    if model_init is None or not wanted:
        return None
    model_init = np.asarray(model_init, dtype=np.float32)
    if model_init.shape != (len(models), dim):
        raise ValueError(f"model_init must be (M={len(models)}, D={dim}), got {model_init.shape}")
    return model_init
