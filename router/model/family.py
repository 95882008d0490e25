"""The ``cross_attention`` family for ``router eval --routers``: ONE predictor, two result rows.

``cross_attention_linear`` scores it with the linear reward (q̂ − λ·ĉ/c_ref) and
``cross_attention_exp`` with the exponential one (q̂·exp(−λ·ĉ/c_ref)); ``c_ref`` is the
predictor's (training mean cost per prompt over the pool). With ``ctx.artifact`` the predictor is
loaded from that directory (already fitted) instead of trained.

``ctx.options`` may hold ``cross_attention``: a dict of :class:`TrainConfig` fields (or a
TrainConfig), or ``train_config``: a path to a YAML/JSON file of them. ``ctx.seed`` is the seed
unless the options set one. ``encoder``: the prompts' encoder, used to initialise the model
embeddings from the model names (as ``router train`` does; without it they start at random) and to
check that an artifact was trained with the same encoder.
"""

from __future__ import annotations

from router.registry import BuildContext, RouterEntry

ROWS = {"cross_attention_linear": "linear", "cross_attention_exp": "exponential"}


def config_from_context(ctx: BuildContext):
    from router.model.training import TrainConfig, load_train_config

    opts = ctx.options or {}
    given = opts.get("cross_attention")
    if isinstance(given, TrainConfig):
        return given
    fields = dict(given or {})
    if opts.get("train_config"):
        fields = {**load_train_config(opts["train_config"]).model_dump(exclude_unset=True), **fields}
    fields.setdefault("seed", ctx.seed)
    return TrainConfig(**fields)


def build_family(ctx: BuildContext) -> list[RouterEntry]:
    from router.model.predictor import CrossAttentionPredictor

    if ctx.artifact:
        from router.model.artifact import load_artifact

        encoder = (ctx.options or {}).get("encoder")
        artifact = load_artifact(
            ctx.artifact,
            expect_encoder=getattr(encoder, "name", None),
            expect_dim=getattr(encoder, "dim", None),
        )
        return [RouterEntry(artifact.predictor, dict(ROWS), fitted=True)]
    predictor = CrossAttentionPredictor(config_from_context(ctx))
    predictor.name_encoder = (ctx.options or {}).get("encoder")
    return [RouterEntry(predictor, dict(ROWS), fitted=False)]
