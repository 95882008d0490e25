"""A new LLM joins the pool without retraining the network (beyond the paper).

Everything trained stays frozen (projections, attention, heads, the other models' embeddings). Only
the new model's embedding — one vector in the encoder's space — is fitted, on a small labelled set
(50–200 prompts with the new model's quality and cost), with the training loss (quality loss +
``cost_loss_weight`` × cost loss). Its cost statistics come from that set: with per-model cost
normalisation, its own log-cost mean and std; with pooled normalisation the pool's (the embedding
then has to carry the price level). The embedding starts from ``init`` (e.g. the encoder's embedding
of the model's name) or from the mean of the existing model embeddings, and is kept near its start
by an L2 penalty (``l2``), since 100 prompts cannot pin down 384 free numbers. Steps: full-batch
Adam, the best step chosen on a seeded 20% of the small set.

:func:`place_model` is the gradient-free alternative for a router whose model representation is a
performance profile (``TrainConfig.model_repr`` ``profile`` or ``both``, :mod:`router.model.profile`):
the new model's profile is computed from the same small set (its mean quality and log cost on each
training cluster, shrunk toward its overall mean where the set has few prompts) and appended; with
``both`` its learned residual is ``init`` (e.g. its name's embedding) or the pool's mean. No
optimiser runs.
"""

from __future__ import annotations

import copy

import numpy as np

from router.model.estimator import CostScaler, CrossAttentionPredictor


def _through_fallback(grow):
    """``grow`` (add_model / place_model) for the default router too: a
    :class:`router.model.gated.GatedPredictor` has its network grown, and its neighbour index and
    priors get a column for the new model. The stored training prompts were never answered by the
    new model, so that column is the grown network's own prediction for them (the KNN blend then
    averages the network over the neighbours for this model), and its prior quality and cost are
    the probe set's means. The chosen knobs (α, d0, s) stay as they are."""
    import functools

    @functools.wraps(grow)
    def wrapper(predictor, name, X_small, quality_small, cost_small, *args, **kwargs):
        from router.gate import NeighbourIndex
        from router.model.gated import GatedPredictor

        if not isinstance(predictor, GatedPredictor):
            return grow(predictor, name, X_small, quality_small, cost_small, *args, **kwargs)
        predictor._check_fitted()
        network = grow(predictor.network_, name, X_small, quality_small, cost_small, *args, **kwargs)
        old = predictor.neighbours_
        column = network.predict(old.X).quality[:, -1:]
        neighbours = NeighbourIndex(old.X, np.concatenate([old.quality, column], axis=1), old.k, old.blend_k)
        # grow() has checked the probe set.
        prior = np.append(predictor.prior_, float(np.mean(quality_small)))
        prior_cost = np.append(predictor.prior_cost_, float(np.mean(cost_small)))
        return GatedPredictor.from_fitted(predictor.config, network, neighbours, predictor.params_, prior, prior_cost,
                                          predictor.selection_, predictor.train_seconds_)  # fmt: skip

    return wrapper


@_through_fallback
def add_model(
    predictor: CrossAttentionPredictor,
    name: str,
    X_small,
    quality_small,
    cost_small,
    init=None,
    steps: int = 300,
    lr: float = 0.02,
    l2: float = 1e-3,
    val_fraction: float = 0.2,
    seed: int = 0,
) -> CrossAttentionPredictor:
    """A new predictor whose pool is ``predictor.models + (name,)``; ``predictor`` is unchanged.

    ``X_small`` (n, D) embeddings of the small set; ``quality_small``/``cost_small`` (n,) the new
    model's quality (0..1) and cost (USD) on them."""
    import torch

    X, q, c = _check_probe(predictor, name, X_small, quality_small, cost_small)
    net = predictor.network_
    if predictor.needs_tokens:
        raise ValueError("add_model supports the prompt_queries variant (sentence embeddings only)")
    if net.model_repr != "name":
        raise ValueError(f"add_model fits a learned embedding; this router's model_repr is {net.model_repr!r}: use place_model")

    old = predictor.scaler_
    mu, sigma = _cost_stats(old, c)
    # Keep the pool's eps so free answers map the same way for every model.
    z = ((np.log(c + old.eps) - mu) / sigma).astype(np.float32)

    cfg = predictor.config
    order = np.random.default_rng(seed).permutation(len(X))
    n_val = max(1, int(round(len(X) * val_fraction)))
    val, fit = order[:n_val], order[n_val:]
    old_emb = net.model_embedding.detach().clone()
    start = old_emb.mean(dim=0) if init is None else torch.as_tensor(np.asarray(init, dtype=np.float32)).reshape(-1)
    if start.shape != (net.input_dim,):
        raise ValueError(f"init must be a ({net.input_dim},) vector, got {tuple(start.shape)}")

    old_threads = torch.get_num_threads()
    try:
        if cfg.num_threads:
            torch.set_num_threads(cfg.num_threads)
        torch.manual_seed(seed)
        new = torch.nn.Parameter(start.clone())
        opt = torch.optim.Adam([new], lr=lr)
        tX, tQ, tZ = torch.from_numpy(X), torch.from_numpy(q.astype(np.float32)), torch.from_numpy(z)
        net.eval()  # frozen: no dropout, no gradient into the network
        for p in net.parameters():
            p.requires_grad_(False)

        def loss_on(rows, emb):
            q_logit, zc = net(tX[rows], model_embedding=emb[None, :])
            if cfg.quality_loss == "bce":
                lq = torch.nn.functional.binary_cross_entropy_with_logits(q_logit[:, 0], tQ[rows])
            else:
                lq = torch.nn.functional.mse_loss(torch.sigmoid(q_logit[:, 0]), tQ[rows])
            return lq + cfg.cost_loss_weight * torch.nn.functional.mse_loss(zc[:, 0], tZ[rows])

        t_fit, t_val = torch.from_numpy(fit), torch.from_numpy(val)
        with torch.no_grad():
            best, best_emb = float(loss_on(t_val, new)), new.detach().clone()
        for _ in range(steps):
            loss = loss_on(t_fit, new) + l2 * ((new - start) ** 2).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():
                v = float(loss_on(t_val, new))
            if v < best:
                best, best_emb = v, new.detach().clone()
    finally:
        for p in net.parameters():
            p.requires_grad_(True)
        torch.set_num_threads(old_threads)

    return _grow(predictor, name, best_emb, None, c, mu, sigma)


@_through_fallback
def place_model(predictor: CrossAttentionPredictor, name: str, X_small, quality_small, cost_small, init=None) -> CrossAttentionPredictor:
    """A new predictor whose pool is ``predictor.models + (name,)``, placed with no gradient step
    from its performance profile on the small set (``model_repr`` profile/both); ``predictor`` is
    unchanged. Arguments as :func:`add_model`."""
    import torch

    from router.model.profile import Profiler

    X, q, c = _check_probe(predictor, name, X_small, quality_small, cost_small)
    net = predictor.network_
    if net.model_repr == "name":
        raise ValueError("place_model needs a router trained with model_repr 'profile' or 'both' (this one is 'name': use add_model)")
    mu_l, sigma_l, eps = (float(v) for v in net.profile_stats)
    profiler = Profiler(net.profile_centroids.detach().numpy(), mu_l, sigma_l, eps)
    profile = torch.from_numpy(profiler.profiles(X, q[:, None], c[:, None])[0])
    old_emb = net.model_embedding.detach()
    emb = old_emb.mean(dim=0) if init is None else torch.as_tensor(np.asarray(init, dtype=np.float32)).reshape(-1)
    if emb.shape != (net.input_dim,):
        raise ValueError(f"init must be a ({net.input_dim},) vector, got {tuple(emb.shape)}")
    mu, sigma = _cost_stats(predictor.scaler_, c)
    return _grow(predictor, name, emb, profile, c, mu, sigma)


def _check_probe(predictor, name, X_small, quality_small, cost_small):
    if not isinstance(predictor, CrossAttentionPredictor):
        # An ensemble has K networks: growing it is not supported (a fallback router is grown
        # through its network, _through_fallback).
        raise TypeError(f"adding a model needs a single cross-attention network, got {type(predictor).__name__}")
    predictor._check_fitted()
    if name in predictor.models:
        raise ValueError(f"model {name!r} is already in the pool")
    X = np.asarray(X_small, dtype=np.float32)
    q = np.asarray(quality_small, dtype=np.float64).reshape(-1)
    c = np.asarray(cost_small, dtype=np.float64).reshape(-1)
    dim = predictor.network_.input_dim
    if X.ndim != 2 or X.shape[1] != dim or len(q) != len(X) or len(c) != len(X):
        raise ValueError(f"need X (n, {dim}), quality (n,) and cost (n,); got {X.shape}, {q.shape}, {c.shape}")
    if len(X) < 5:
        raise ValueError(f"need at least 5 labelled prompts for the new model, got {len(X)}")
    if (q < 0).any() or (q > 1).any() or (c < 0).any() or not (np.isfinite(q).all() and np.isfinite(c).all()):
        raise ValueError("quality must be in [0, 1] and cost finite and >= 0")
    return X, q, c


def _cost_stats(scaler: CostScaler, c: np.ndarray) -> tuple[float, float]:
    """The new model's log-cost mean/std: its own from the small set, or the pool's when pooled."""
    if scaler.pooled:
        return scaler.mu[0], scaler.sigma[0]
    one = CostScaler.fit(c[:, None])
    return one.mu[0], one.sigma[0]


def _grow(predictor: CrossAttentionPredictor, name: str, new_emb, new_profile, c: np.ndarray, mu: float, sigma: float) -> CrossAttentionPredictor:
    """``predictor`` with one more model: its embedding (and profile) appended, everything else copied."""
    import torch

    from router.model.cross_attention import CrossAttentionRouter

    net, cfg, old = predictor.network_, predictor.config, predictor.scaler_
    state = copy.deepcopy(net.state_dict())
    state["model_embedding"] = torch.cat([net.model_embedding.detach(), new_emb.reshape(1, -1)], dim=0)
    extra = {}
    if net.model_repr != "name":
        state["model_profile"] = torch.cat([net.model_profile, new_profile.reshape(1, -1)], dim=0)
        extra = {"model_profile": state["model_profile"], "profile_centroids": net.profile_centroids, "profile_stats": net.profile_stats}
    grown = CrossAttentionRouter(net.input_dim, net.n_models + 1, net.hidden_dim, cfg.dropout, net.variant, product=net.product,
                                 model_repr=net.model_repr, **extra)  # fmt: skip
    grown.load_state_dict(state)
    grown.eval()

    prices = {**predictor.prices_, name: float(c.mean())}
    return CrossAttentionPredictor.from_fitted(
        cfg,
        grown,
        tuple(predictor.models_) + (name,),
        CostScaler(list(old.mu) + [float(mu)], list(old.sigma) + [float(sigma)], old.eps, old.pooled),
        # c_ref keeps its meaning: mean cost per prompt over the (new) pool.
        c_ref=float(np.mean(list(prices.values()))),
        prices=prices,
        best_epoch=predictor.best_epoch_,
        train_seconds=predictor.train_seconds_,
    )
