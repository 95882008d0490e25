"""Prometheus metrics of the service, through ``ray.serve.metrics`` (exported by every Ray node's
metrics agent, with Serve's deployment/replica/application tags added).

Outside a Ray worker (plain unit tests) ``RouterMetrics.create()`` returns no-op metrics, so the
service logic runs the same with or without Ray.
"""

from __future__ import annotations

from typing import Any

# Milliseconds; the encoder dominates (tens of ms per batch on CPU), backends take seconds.
LATENCY_BOUNDARIES_MS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000, 60000]
BATCH_BOUNDARIES = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]


class _Noop:
    def inc(self, *a: Any, **k: Any) -> None:
        pass

    def observe(self, *a: Any, **k: Any) -> None:
        pass

    def set(self, *a: Any, **k: Any) -> None:
        pass


class RouterMetrics:
    """The dispatcher's metrics (names are prefixed ``ray_`` by Ray's exporter)."""

    def __init__(self, counter, histogram, gauge):
        self.requests = counter(
            "router_requests", description="HTTP requests by endpoint and status.", tag_keys=("endpoint", "status")
        )
        self.decisions = counter(
            "router_decisions", description="Routing decisions by chosen model.", tag_keys=("model", "endpoint")
        )
        self.predicted_cost = counter(
            "router_predicted_cost_usd",
            description="Sum of the predicted cost (USD) of the chosen models.",
            tag_keys=("model",),
        )
        self.observed_cost = counter(
            "router_observed_cost_usd",
            description="Cost (USD) of answered chat requests from backend usage and configured prices.",
            tag_keys=("model",),
        )
        self.fallbacks = counter(
            "router_fallbacks",
            description="Backend attempts that failed and moved on to the next-best model.",
            tag_keys=("model", "reason"),
        )
        self.latency = histogram(
            "router_stage_latency_ms",
            description="Latency per stage: predict (embed+score), decide, backend, total.",
            boundaries=LATENCY_BOUNDARIES_MS,
            tag_keys=("stage", "endpoint"),
        )
        self.pool_size = gauge("router_pool_backends", description="Pool models with a configured backend.")
        # Per caller key (serve_app.auth): the label is the key's id, never its secret.
        self.key_requests = counter(
            "router_key_requests", description="Admitted requests per caller key.", tag_keys=("key", "endpoint")
        )
        self.key_refusals = counter(
            "router_key_refusals",
            description="Refused requests per caller key (key '-' when no valid key was given): 401, 403, 429 by reason.",
            tag_keys=("key", "status", "reason"),
        )
        self.key_tokens = counter("router_key_tokens", description="Backend tokens (usage) per caller key.", tag_keys=("key",))
        self.key_spend = counter(
            "router_key_spend_usd", description="Spend (USD, usage x prices) per caller key.", tag_keys=("key",)
        )
        self.key_lambda = gauge("router_key_lambda", description="λ used by the last request of each caller key.", tag_keys=("key",))

    @classmethod
    def create(cls) -> "RouterMetrics":
        try:
            import ray

            if ray.is_initialized():
                from ray.serve import metrics

                return cls(metrics.Counter, metrics.Histogram, metrics.Gauge)
        except Exception:  # pragma: no cover - metrics must never break serving
            pass
        return cls.noop()

    @classmethod
    def noop(cls) -> "RouterMetrics":
        return cls(lambda *a, **k: _Noop(), lambda *a, **k: _Noop(), lambda *a, **k: _Noop())


def batch_metrics(stage: str):
    """(batch-size histogram, batch latency histogram) for a batched deployment, or no-ops outside Ray."""
    try:
        import ray

        if ray.is_initialized():
            from ray.serve import metrics

            size = metrics.Histogram(
                f"router_{stage}_batch_size", description=f"Prompts per {stage} batch.", boundaries=BATCH_BOUNDARIES
            )
            latency = metrics.Histogram(
                f"router_{stage}_batch_latency_ms",
                description=f"Time to run one {stage} batch.",
                boundaries=LATENCY_BOUNDARIES_MS,
            )
            return size, latency
    except Exception:  # pragma: no cover
        pass
    return _Noop(), _Noop()
