"""Which model answers a request: the stable one, or the canary for its share of the traffic.

With an `X-Caller-Id` the choice is sticky: the caller's id hashes (BLAKE2b, the same in every
process and Python run, unlike `hash()`) to one of 10,000 buckets, and buckets below the
share go to the canary, so raising the share keeps every caller already on the canary there.
Without one, each request draws at random. A process started with `SERVING_ROLE=canary` is
all canary (a Kubernetes canary Deployment beside the stable one) and splits nothing.

The share lives in this process: with WORKERS>1, `PUT /admin/canary` reaches the one worker
that answers it (as `/admin/reload` does), so split traffic in a single-worker process, or
by replicas (the canary Deployment).
"""

from __future__ import annotations

import random
from hashlib import blake2b
from typing import NamedTuple

from .model_store import LoadedModel
from .runtime import ModelSlot
from .settings import Role

BUCKETS = 10_000


class Served(NamedTuple):
    role: Role
    model: LoadedModel


class CanarySplit:
    def __init__(
        self, stable: ModelSlot, canary: ModelSlot | None, percent: float, role: Role
    ) -> None:
        self.stable = stable
        self.canary = canary
        self.role = role  # of the process: what the requests that score nothing are labelled
        self._threshold = 0
        self.percent = 0.0
        self.set_percent(percent)

    def set_percent(self, percent: float) -> float:
        """Send `percent` (0-100) of the traffic to the canary from now on; returns the old."""
        if not 0 <= percent <= 100:
            raise ValueError(f"canary percent must be within 0-100, not {percent}")
        if percent > 0 and self.canary is None:
            raise ValueError("no canary model is loaded: start the service with CANARY_MODEL_DIR")
        previous, self.percent = self.percent, percent
        # One integer compare a request; the int is rebound whole, so no lock is needed.
        self._threshold = round(percent * BUCKETS / 100)
        return previous

    @property
    def active(self) -> bool:
        """The canary takes traffic (set_percent refuses a share without a canary model)."""
        return self._threshold > 0

    def choose(self, caller_id: str | None) -> Served:
        threshold = self._threshold
        if threshold == 0 or self.canary is None:  # (0 whenever there is no canary: for mypy)
            return Served(self.role, self.stable.current)
        if caller_id is None:
            bucket = random.randrange(BUCKETS)  # noqa: S311 - a traffic split, not a secret
        else:
            digest = blake2b(caller_id.encode(), digest_size=8).digest()
            bucket = int.from_bytes(digest) % BUCKETS
        if bucket < threshold:
            return Served(Role.CANARY, self.canary.current)
        return Served(Role.STABLE, self.stable.current)

    def version(self, version: str) -> Served | None:
        """The model of that version (a versioned request pins it: no split), or None."""
        if self.stable.current.version == version:
            return Served(self.role, self.stable.current)
        if self.canary is not None and self.canary.current.version == version:
            return Served(Role.CANARY, self.canary.current)
        return None

    def versions(self) -> list[str]:
        """The versions served: the stable model's, then the canary's."""
        canary = [self.canary.current.version] if self.canary is not None else []
        return [self.stable.current.version, *canary]

    def labels(self) -> tuple[str, str]:
        """(role, model version) of a request that no model scored (/health, /metrics...)."""
        return self.role.value, self.stable.current.version
