"""Sharkey's per-user rate limits and what they cost a publisher.

Sharkey 2024.11 meters each (user, endpoint) with a leaky bucket of ``max`` slots draining one
slot per ``duration / max``: the first ``max`` calls go at once, then one per interval.
Endpoints without a declared limit get 10 per second. Values: shared/specs/sharkey-api.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Limit:
    max: int
    duration_ms: float

    @property
    def interval_s(self) -> float:
        return self.duration_ms / self.max / 1000.0

    def min_seconds(self, calls: int) -> float:
        """Least time ``calls`` calls can take from an empty bucket."""
        return max(0, calls - self.max) * self.interval_s


DEFAULT = Limit(10, 1_000)
SHARKEY_LIMITS: dict[str, Limit] = {
    "notes/create": Limit(300, 3_600_000),
    "following/create": Limit(100, 3_600_000),
    "i/update": Limit(20, 3_600_000),
    "drive/files/create": Limit(120, 3_600_000),
    "notes/reactions/create": Limit(10, 5_000),
    "users/show": Limit(5, 2_000),
    "notes/show": Limit(2, 1_000),
}


def limit_for(endpoint: str, limits: Mapping[str, Limit] = SHARKEY_LIMITS) -> Limit:
    return limits.get(endpoint, limits.get("*", DEFAULT))


def scaled(limits: Mapping[str, Limit], *, max_divisor: float = 1.0,
           time_divisor: float = 1.0) -> dict[str, Limit]:
    """The same table with smaller buckets and/or faster drains (test servers, benchmarks)."""
    out = {k: Limit(max(1, int(v.max / max_divisor)), v.duration_ms / max_divisor / time_divisor)
           for k, v in limits.items()}
    out.setdefault("*", Limit(max(1, int(DEFAULT.max / max_divisor)),
                              DEFAULT.duration_ms / max_divisor / time_divisor))
    return out


def lower_bound_seconds(calls: Mapping[tuple[str, str], int], admin: str = "admin",
                        limits: Mapping[str, Limit] = SHARKEY_LIMITS) -> dict:
    """The least wall time the server's limits allow for a publish.

    ``calls`` counts calls per (owner, endpoint); owner ``admin`` creates the accounts, every
    other owner is one account that can act only once it exists. Account k (in creation order)
    exists no earlier than ``t_k`` (the admin's bucket for ``admin/accounts/create``), and then
    needs ``w`` = the slowest of its own endpoint buckets. Creating the accounts with the most
    work first minimises ``max_k(t_k + w_k)``, so that is the bound (network time ignored).
    """
    per_owner: dict[str, float] = {}
    admin_seconds = 0.0
    creations = 0
    for (owner, endpoint), n in calls.items():
        seconds = limit_for(endpoint, limits).min_seconds(n)
        if owner == admin:
            admin_seconds = max(admin_seconds, seconds)
            if endpoint == "admin/accounts/create":
                creations = n
        else:
            per_owner[owner] = max(per_owner.get(owner, 0.0), seconds)
    create = limit_for("admin/accounts/create", limits)
    work = sorted(per_owner.values(), reverse=True)
    work += [0.0] * max(0, creations - len(work))
    chained = max((create.min_seconds(k + 1) + w for k, w in enumerate(work)), default=0.0) \
        if creations else max(work, default=0.0)
    bottleneck = max(per_owner.items(), key=lambda kv: kv[1], default=(None, 0.0))
    return {"seconds": max(chained, admin_seconds), "account_creation_seconds":
            create.min_seconds(creations), "slowest_account_seconds": bottleneck[1],
            "slowest_account": bottleneck[0]}
