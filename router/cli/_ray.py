"""The Ray session a CLI command runs in: an existing one, a cluster at ``--ray-address``, or a
local one started (and stopped) here."""

from __future__ import annotations

import contextlib
import os


@contextlib.contextmanager
def ray_session(address: str | None, num_cpus: int | None):
    import ray

    if ray.is_initialized():
        yield
        return
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    if address:
        ray.init(address=address, log_to_driver=False)
    else:
        # address="local": never attach to someone else's cluster by accident.
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()
