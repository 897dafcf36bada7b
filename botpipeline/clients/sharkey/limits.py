"""Sharkey's and Misskey's per-user rate limits and what they cost a publisher.

Sharkey 2024.11 meters each (user, endpoint) with a leaky bucket of ``max`` slots draining one
slot per ``duration / max``: the first ``max`` calls go at once, then one per interval.
Endpoints without a declared limit get 10 per second. Misskey 2025.7 meters the same endpoints
with a sliding window: at most ``max`` calls in any ``duration``, refused calls counted too, and
leaves the others unlimited. Sign-in is metered per IP, and also needs ``min_interval_ms``
between attempts. Values: shared/specs/sharkey-api.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Limit:
    max: int
    duration_ms: float
    min_interval_ms: float = 0.0

    @property
    def interval_s(self) -> float:
        return self.duration_ms / self.max / 1000.0

    def min_seconds(self, calls: int, windowed: bool = False) -> float:
        """Least time ``calls`` calls can take from a fresh limiter: a leaky bucket (Sharkey),
        or a sliding window (``windowed``, Misskey), each call at least ``min_interval`` apart."""
        if calls <= 0:
            return 0.0
        spaced = (calls - 1) * self.min_interval_ms / 1000.0
        if windowed:
            return max(spaced, (calls - 1) // self.max * self.duration_ms / 1000.0)
        return max(spaced, max(0, calls - self.max) * self.interval_s)


DEFAULT = Limit(10, 1_000)
SHARKEY_LIMITS: dict[str, Limit] = {
    "notes/create": Limit(300, 3_600_000),
    "following/create": Limit(100, 3_600_000),
    "i/update": Limit(20, 3_600_000),
    "drive/files/create": Limit(120, 3_600_000),
    "notes/reactions/create": Limit(10, 5_000),
    "users/show": Limit(5, 2_000),
    "notes/show": Limit(2, 1_000),
    "signin-flow": Limit(10, 3_600_000, min_interval_ms=1_000),  # per IP
}


def limit_for(endpoint: str, limits: Mapping[str, Limit] = SHARKEY_LIMITS) -> Limit:
    return limits.get(endpoint, limits.get("*", DEFAULT))


def scaled(limits: Mapping[str, Limit], *, max_divisor: float = 1.0,
           time_divisor: float = 1.0) -> dict[str, Limit]:
    """The same table with smaller buckets and/or faster drains (test servers, benchmarks)."""
    out = {k: Limit(max(1, int(v.max / max_divisor)), v.duration_ms / max_divisor / time_divisor,
                    v.min_interval_ms / time_divisor)
           for k, v in limits.items()}
    out.setdefault("*", Limit(max(1, int(DEFAULT.max / max_divisor)),
                              DEFAULT.duration_ms / max_divisor / time_divisor))
    return out


def lower_bound_seconds(calls: Mapping[tuple[str, str], int], admin: str = "admin",
                        limits: Mapping[str, Limit] = SHARKEY_LIMITS, *,
                        windowed: bool = False, latency: Mapping[str, float] | None = None,
                        create_workers: int = 1) -> dict:
    """The least wall time the server allows for a publish: its limits and its own latency.

    ``calls`` counts calls per (owner, endpoint); owner ``admin`` creates the accounts, every
    other owner is one account that can act only once it exists. Each (owner, endpoint) has one
    call in flight, so it needs at least its limit's time and its calls' summed ``latency``
    (seconds per call, as the server answered). Account k (in creation order) exists no earlier
    than ``t_k``: the admin's limit for ``admin/accounts/create``, or, with ``create_workers``
    accounts created at once, ``ceil((k + 1) / create_workers)`` creation latencies. Then it
    needs ``w`` = its slowest endpoint. Creating the accounts with the most work first minimises
    ``max_k(t_k + w_k)``, so that is the bound. ``windowed``: Misskey's sliding windows, where
    endpoints missing from ``limits`` are unlimited.
    """
    latency = latency or {}

    def least(endpoint: str, n: int) -> float:
        limit = limits.get(endpoint) if windowed else limit_for(endpoint, limits)
        by_limit = limit.min_seconds(n, windowed) if limit is not None else 0.0
        return max(by_limit, n * latency.get(endpoint, 0.0))

    per_owner: dict[str, float] = {}
    admin_seconds = 0.0
    creations = 0
    for (owner, endpoint), n in calls.items():
        if owner == admin:
            if endpoint == "admin/accounts/create":
                creations = n
            else:
                admin_seconds = max(admin_seconds, least(endpoint, n))
        else:
            per_owner[owner] = max(per_owner.get(owner, 0.0), least(endpoint, n))
    create = limits.get("admin/accounts/create") if windowed \
        else limit_for("admin/accounts/create", limits)
    create_latency = latency.get("admin/accounts/create", 0.0)
    workers = max(1, create_workers)

    def created(k: int) -> float:  # when the (k+1)-th account exists at the earliest
        by_limit = create.min_seconds(k + 1, windowed) if create is not None else 0.0
        return max(by_limit, math.ceil((k + 1) / workers) * create_latency)

    work = sorted(per_owner.values(), reverse=True)
    work += [0.0] * max(0, creations - len(work))
    chained = max((created(k) + w for k, w in enumerate(work)), default=0.0) \
        if creations else max(work, default=0.0)
    bottleneck = max(per_owner.items(), key=lambda kv: kv[1], default=(None, 0.0))
    return {"seconds": max(chained, admin_seconds),
            "account_creation_seconds": created(creations - 1) if creations else 0.0,
            "slowest_account_seconds": bottleneck[1], "slowest_account": bottleneck[0],
            "latency_seconds": dict(latency), "windowed": windowed,
            "create_workers": workers}
