"""RouterBench's SVM router: one ``LinearSVR`` per model with scikit-learn's defaults (as
RouterBench), predicting the model's quality from the prompt embedding."""

from __future__ import annotations

from router.baselines.base import BASELINE_REWARD, PerModelRegressor
from router.registry import BuildContext, RouterEntry


def make_svm(seed: int) -> PerModelRegressor:
    def regressor():
        from sklearn.svm import LinearSVR

        return LinearSVR(random_state=seed)

    return PerModelRegressor(regressor)


def build_family(ctx: BuildContext) -> list[RouterEntry]:
    return [RouterEntry(make_svm(ctx.seed), {"svm": BASELINE_REWARD})]
