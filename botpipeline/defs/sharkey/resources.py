"""The Sharkey resource: which server, with which admin token, and where account tokens live.

``url`` and ``admin_token`` come from $SHARKEY_URL and $SHARKEY_ADMIN_TOKEN, read when a
step first talks to the server (so steps that never do, e.g. a collector with nothing to
collect from Sharkey, run without them, and the token is never part of any run config). Account tokens go to a file readable only
by its owner under ``token_store`` (default $SHARKEY_TOKEN_STORE, else
~/.config/botpipeline/sharkey-tokens), never to DuckDB, logs or metadata.
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
from pydantic import Field

from botpipeline.clients.sharkey.client import SharkeyClient, server_label
from botpipeline.clients.sharkey.limits import SHARKEY_LIMITS, Limit
from botpipeline.clients.sharkey.tokens import TokenStore, default_token_dir


class SharkeyResource(dg.ConfigurableResource):
    url: str = Field(default="", description="Base URL of the instance, e.g. "
                     "https://sandbox.example.org; empty: $SHARKEY_URL.")
    admin_token: str = Field(default="", description="An admin's API token (Misskey: "
                             "root's); empty: $SHARKEY_ADMIN_TOKEN. Prefer the variable.")
    verify_tls: bool = Field(default=True, description="Verify the server's certificate.")
    ca_bundle: str = Field(default="", description="A CA bundle to verify against instead "
                           "of the system's (a sandbox with its own CA).")
    token_store: str = Field(default="", description="Directory of the account-token files; "
                             "empty: $SHARKEY_TOKEN_STORE or ~/.config/botpipeline/"
                             "sharkey-tokens.")
    timeout_seconds: float = Field(default=30.0, description="Per-call timeout.")
    max_retries: int = Field(default=6, description="Retries of a call on 5xx, timeouts and "
                             "dropped connections (exponential backoff from 0.25 s).")
    rate_limits: dict[str, list[float]] = Field(
        default_factory=dict, description="Per-endpoint limits the server applies, "
        "{endpoint: [max, duration_ms(, min_interval_ms)]}, '*' for the default; empty: "
        "Sharkey 2024.11's (Misskey's match where Misskey has a limit). Used for pacing and for "
        "the lower bound reported after a publish.")

    def __repr__(self) -> str:  # never show the token
        return f"SharkeyResource(url={self._url()!r})"

    def _url(self) -> str:
        return self.url or os.environ.get("SHARKEY_URL", "")

    @property
    def server(self) -> str:
        if not self._url():
            raise dg.Failure("No Sharkey server: set SHARKEY_URL (e.g. https://sandbox.example.org)")
        return server_label(self._url())

    def limits(self) -> dict[str, Limit]:
        table = dict(SHARKEY_LIMITS)
        table.update({k: Limit(int(v[0]), float(v[1]), float(v[2]) if len(v) > 2 else 0.0)
                      for k, v in self.rate_limits.items()})
        return table

    def client(self) -> SharkeyClient:
        token = self.admin_token or os.environ.get("SHARKEY_ADMIN_TOKEN", "")
        missing = [f"{name} ({what})" for name, value, what in (
            ("SHARKEY_URL", self._url(), "e.g. https://sandbox.example.org"),
            ("SHARKEY_ADMIN_TOKEN", token, "an admin's API token; Misskey: root's"))
            if not value]
        if missing:  # every missing setting at once, not one per run
            raise dg.Failure("Sharkey settings missing: set " + " and ".join(missing))
        verify = self.ca_bundle or self.verify_tls
        return SharkeyClient(self.server, token, verify=verify,
                             timeout=self.timeout_seconds, max_retries=self.max_retries,
                             limits=self.limits())

    def tokens(self) -> TokenStore:
        return TokenStore(Path(self.token_store) if self.token_store else default_token_dir(),
                          self.server)
