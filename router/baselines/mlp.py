"""RouterBench's MLP router: one ``MLPRegressor`` per model (relu, Adam with a constant learning
rate 0.001, at most 200 epochs, scikit-learn's default stopping on the training loss), hidden
layers (100,) and (100, 100). One regressor per model, as RouterBench does: a single multi-output
regressor would share its hidden layers between models and is not equivalent."""

from __future__ import annotations

from router.baselines.base import BASELINE_REWARD, PerModelRegressor
from router.registry import BuildContext, RouterEntry

HIDDEN = {"mlp_100": (100,), "mlp_100x100": (100, 100)}


def make_mlp(hidden: tuple[int, ...], seed: int) -> PerModelRegressor:
    def regressor():
        from sklearn.neural_network import MLPRegressor

        return MLPRegressor(
            hidden_layer_sizes=hidden,
            activation="relu",
            learning_rate="constant",
            learning_rate_init=0.001,
            max_iter=200,
            random_state=seed,
        )

    return PerModelRegressor(regressor)


def build_family(ctx: BuildContext) -> list[RouterEntry]:
    return [RouterEntry(make_mlp(hidden, ctx.seed), {name: BASELINE_REWARD}) for name, hidden in HIDDEN.items()]
