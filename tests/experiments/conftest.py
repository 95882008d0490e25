"""The experiments reuse the cross-attention tests' small fixtures."""

from tests.router.model.conftest import embedded_synthetic, fast, trained  # noqa: F401
