"""``TrainConfig``: every knob of the cross-attention network and its training, in one pydantic model
(its own module so that the estimator, the training loop, artifacts and the CLI can all import it
without importing each other)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class TrainConfig(BaseModel):
    """Every knob of the network and its training. Unknown fields are an error (typos fail loudly)."""

    model_config = ConfigDict(extra="forbid")

    variant: Literal["prompt_queries", "model_queries"] = Field(
        "prompt_queries",
        description="Which side is the attention query: 'prompt_queries' (the prompt attends over the model "
        "embeddings; needs sentence embeddings only) or 'model_queries' (each model attends over the prompt's "
        "token features; needs tokens).",
    )
    hidden_dim: int = Field(128, ge=4, le=4096, description="Width of the attention block and of the heads.")
    dropout: float = Field(0.1, ge=0.0, lt=1.0, description="Dropout on the attention output and inside the heads.")
    lr: float = Field(1e-3, gt=0.0, le=1.0, description="AdamW learning rate.")
    weight_decay: float = Field(1e-2, ge=0.0, le=10.0, description="AdamW weight decay.")
    cost_loss_weight: float = Field(0.5, ge=0.0, le=100.0, description="Weight of the cost loss in the joint loss.")
    # Chosen on the validation split carved from dcrouter's training data: val AIQ 0.635 with vs
    # 0.611 without (KNN k=40 on the same rows: 0.625); see README, section cross-attention.
    product: bool = Field(
        True, description="Heads also read prompt ⊙ model embedding (an explicit multiplicative interaction)."
    )
    quality_loss: Literal["bce", "mse"] = Field("bce", description="Quality loss: BCE on the logit or MSE on the sigmoid.")
    cost_norm: Literal["per_model", "pooled"] = Field(
        "per_model", description="Normalise log cost per model or with one mean/std pooled over the pool."
    )
    init_from_names: bool = Field(
        True, description="Initialise each model embedding from the encoder's embedding of the model's name (when given)."
    )
    model_repr: Literal["name", "profile", "both"] = Field(
        "name",
        description="What the single head's keys/values are built from: 'name' (a learned vector per model, "
        "initialised from its name: the paper's), 'profile' (the model's mean quality and mean log cost on each of "
        "profile_clusters k-means clusters of the training prompts, projected; a new model is placed from a small "
        "labelled probe set with no gradient step) or 'both' (the projected profile plus the learned vector as a residual).",
    )
    profile_clusters: int = Field(
        20, ge=2, le=256, description="model_repr profile/both: k-means clusters of the training prompts' embeddings."
    )
    loss: Literal["pointwise", "listwise", "pairwise"] = Field(
        "pointwise",
        description="Training objective besides the pointwise quality + cost loss: 'pointwise' (that alone), "
        "'listwise' (+ decision_loss_weight x cross-entropy between the softmax over models of the predicted and the "
        "observed reward q - λ·c/c_ref at a λ drawn per prompt from the linear reward's grid) or 'pairwise' "
        "(+ decision_loss_weight x a logistic ranking loss on every pair of models whose observed quality differs).",
    )
    decision_loss_weight: float = Field(
        1.0, ge=0.0, le=100.0, description="Weight of the listwise/pairwise term (loss != 'pointwise')."
    )
    decision_temperature: float = Field(
        0.1, gt=0.0, le=10.0, description="listwise: softmax temperature over the models' rewards."
    )
    # The default since issue 10's candidate runs (README, "Distance-gated fallback"): chosen on
    # training-side validation only, and above the network alone in all four bundled settings.
    fallback: Literal["off", "gate", "blend", "gate_blend"] = Field(
        "gate_blend",
        description="Around the network (router.gate): 'gate' shrinks q̂ and ĉ toward each model's training mean "
        "(the deployable no-router) with a weight that grows with the prompt's distance to its nearest training "
        "prompts; 'blend' mixes q̂ with the nearest training prompts' observed quality; 'gate_blend' both. The knobs "
        "are chosen on training-side folds (a random carve and leave-one-domain-out folds); 'off' = the network alone.",
    )
    fallback_k: int = Field(10, ge=1, le=1000, description="fallback gate: d = mean cosine distance to this many nearest training prompts.")
    fallback_blend_k: int = Field(40, ge=1, le=1000, description="fallback blend: q̂_knn = mean observed quality of this many nearest training prompts.")
    fallback_domain_folds: int = Field(
        3, ge=0, le=100, description="fallback gate: at most this many leave-one-domain-out folds of the training domains."
    )
    fallback_val_fraction: float = Field(
        0.2, gt=0.0, lt=0.9, description="fallback: the seeded random carve of the training rows the blend weight is chosen on."
    )
    fallback_objective: Literal["all_folds", "domain_folds"] = Field(
        "all_folds",
        description="fallback gate: (d0, s) maximise the mean validation AIQ over 'all_folds' (the random carve and "
        "the leave-one-domain-out folds) or over the 'domain_folds' only (the random carve then sets the blend alone).",
    )
    max_epochs: int = Field(60, ge=1, le=10_000, description="Upper bound on training epochs.")
    patience: int = Field(6, ge=1, le=1000, description="Epochs without validation-loss improvement before stopping.")
    batch_size: int = Field(256, ge=1, le=1_000_000, description="Prompts per optimiser step.")
    val_fraction: float = Field(
        0.1, ge=0.0, lt=0.9, description="Share of the training rows held out (seeded) for early stopping; 0 = none."
    )
    seed: int = Field(0, ge=0, description="Seed of initialisation, validation split and shuffling.")
    # 1 thread by default: the network is tiny, and on a shared 2-core machine 2 threads were measured
    # ~7x slower than 1 (thread synchronisation under oversubscription).
    num_threads: int | None = Field(
        1, ge=1, le=256, description="torch threads while training (fixed for reproducibility); null = leave as is."
    )
    token_segments: int = Field(
        16, ge=1, le=256, description="model_queries only: token features are mean-pooled into at most this many segments."
    )

    @property
    def needs_tokens(self) -> bool:
        """The ``model_queries`` variant reads token features besides the sentence embedding."""
        return self.variant == "model_queries"

    @field_validator("variant", mode="before")
    @classmethod
    def _variant_alias(cls, v):
        aliases = {"a": "model_queries", "b": "prompt_queries"}
        return aliases.get(v, v)

    @model_validator(mode="after")
    def _check(self):
        if self.patience > self.max_epochs:
            self.patience = self.max_epochs
        return self


def as_train_config(config: "TrainConfig | dict | None") -> "TrainConfig":
    """A TrainConfig from a TrainConfig, a dict of its fields, or None (the defaults)."""
    return config if isinstance(config, TrainConfig) else TrainConfig(**(config or {}))


def load_train_config(path) -> TrainConfig:
    """A :class:`TrainConfig` from a YAML or JSON file of its fields (e.g. written by ``router tune``).

    Raises ValueError naming the file and the offending field."""
    from pathlib import Path

    import yaml
    from pydantic import ValidationError

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"train config {p}: no such file")
    try:
        data = yaml.safe_load(p.read_text())  # JSON is valid YAML
    except yaml.YAMLError as exc:
        raise ValueError(f"train config {p}: not valid YAML/JSON ({exc})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValueError(f"train config {p}: expected a mapping of TrainConfig fields, got {type(data).__name__}")
    try:
        return TrainConfig(**data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'config'}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"train config {p}: {problems}") from None
