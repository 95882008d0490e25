"""What a predictor built around fitted cross-attention networks (the ensemble, the gated router)
reports about itself: the pool, the input width, the cost scale and prices of its first network.
One place for these facts, so the wrappers answer them alike."""

from __future__ import annotations


class WrapsNetworks:
    """Mixin: ``_first_network()`` returns the inner fitted network or None; ``_check_fitted()`` raises when unfitted."""

    config: object

    def _first_network(self):
        raise NotImplementedError

    def _check_fitted(self) -> None:
        raise NotImplementedError

    @property
    def models(self) -> tuple[str, ...]:
        net = self._first_network()
        return net.models if net is not None else ()

    @property
    def needs_tokens(self) -> bool:
        return self.config.needs_tokens

    @property
    def input_dim(self) -> int:
        self._check_fitted()
        return self._first_network().input_dim

    @property
    def c_ref_(self) -> float:
        self._check_fitted()
        return self._first_network().c_ref_

    @property
    def prices_(self) -> dict[str, float]:
        self._check_fitted()
        return self._first_network().prices_
