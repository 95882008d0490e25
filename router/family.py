"""The ``cross_attention`` family for ``router eval --routers``: ONE predictor (a :class:`router.core.Router`), two result rows.

``cross_attention_linear`` scores it with the linear reward (q̂ − λ·ĉ/c_ref) and
``cross_attention_exp`` with the exponential one (q̂·exp(−λ·ĉ/c_ref)); ``c_ref`` is the
predictor's (training mean cost per prompt over the pool). With ``ctx.artifact`` the predictor is
loaded from that directory (already fitted) instead of trained.

``ctx.options`` may hold ``cross_attention``: a dict of :class:`TrainConfig` fields (or a
TrainConfig), or ``train_config``: a path to a YAML/JSON file of them. ``ctx.seed`` is the seed
unless the options set one. ``encoder``: the prompts' encoder (``router.evaluation.evaluate`` puts
its own there), used to initialise the model embeddings from the model names (as ``router train``
does) and checked to be the encoder an artifact was trained with.
"""

from __future__ import annotations

from router.prediction import Prediction, Predictor
from router.registry import BuildContext, RouterEntry

ROWS = {"cross_attention_linear": "linear", "cross_attention_exp": "exponential"}


def config_from_context(ctx: BuildContext):
    from router.model.config import TrainConfig, load_train_config

    opts = ctx.options or {}
    given = opts.get("cross_attention")
    if isinstance(given, TrainConfig):
        return given
    fields = dict(given or {})
    if opts.get("train_config"):
        fields = {**load_train_config(opts["train_config"]).model_dump(exclude_unset=True), **fields}
    fields.setdefault("seed", ctx.seed)
    if opts.get("network_only"):
        # An ensemble member (router.uncertainty): the network alone, unless a fallback was asked for.
        fields.setdefault("fallback", "off")
    return TrainConfig(**fields)


class RouterPredictor(Predictor):
    """A :class:`router.core.Router` behind the registry's ``Predictor`` interface. It reads the
    prompts too (``uses_prompts``), so a ``model_queries`` router gets its token features."""

    uses_prompts = True

    def __init__(self, router):
        self.router = router

    @property
    def models(self) -> tuple[str, ...]:
        return self.router.models

    @property
    def wants_domains(self) -> bool:
        """A router with a fallback (``TrainConfig.fallback``) chooses its gate on leave-one-domain-out
        folds of the training rows: the runner then passes their domains."""
        return bool(getattr(self.router.predictor, "wants_domains", False))

    def fit(self, X, quality, cost, models, prompts=None, domains=None) -> "RouterPredictor":
        self.router.fit(X, quality, cost, models, prompts=prompts, domains=domains)
        return self

    def predict(self, X, prompts=None) -> Prediction:
        return self.router.predict_embedded(X, prompts)


def build_family(ctx: BuildContext) -> list[RouterEntry]:
    from router.core import Router

    encoder = (ctx.options or {}).get("encoder")
    if ctx.artifact:
        return [RouterEntry(RouterPredictor(Router.load(ctx.artifact, encoder=encoder)), dict(ROWS), fitted=True)]
    return [RouterEntry(RouterPredictor(Router.untrained(config_from_context(ctx), encoder)), dict(ROWS), fitted=False)]
