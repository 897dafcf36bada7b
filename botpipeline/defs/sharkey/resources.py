"""The Sharkey resource: which server, with which admin token, and where account tokens live.

``url`` comes from $SHARKEY_URL. The admin token is ``dg.EnvVar("SHARKEY_ADMIN_TOKEN")``: the
code location binds it so for the publishing jobs (run config holds the variable's name, never
the token, and a run without it is refused at launch), and a resource left unbound (the
collector, whose steps may never talk to the server) reads the same variable when a step first
does. A literal token in config is refused. Account tokens go to a file readable only by its
owner under ``token_store`` (default $SHARKEY_TOKEN_STORE, else
~/.config/botpipeline/sharkey-tokens), never to DuckDB, logs or metadata.
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
from pydantic import Field, field_validator

from botpipeline.clients.sharkey.client import SharkeyClient, server_label
from botpipeline.clients.sharkey.limits import SHARKEY_LIMITS, Limit
from botpipeline.clients.sharkey.tokens import TokenStore, default_token_dir


ADMIN_TOKEN_VARIABLE = "SHARKEY_ADMIN_TOKEN"


class SharkeyResource(dg.ConfigurableResource):
    url: str = Field(default="", description="Base URL of the instance, e.g. "
                     "https://sandbox.example.org; empty: $SHARKEY_URL.")
    admin_token: str | None = Field(
        default=None, description="An admin's API token (Misskey: root's), only as "
        "dg.EnvVar('SHARKEY_ADMIN_TOKEN') ({env: SHARKEY_ADMIN_TOKEN} in run config); a literal "
        "token is refused. Unset: $SHARKEY_ADMIN_TOKEN when a step first calls the server.")
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

    @field_validator("admin_token", mode="before")
    @classmethod
    def _token_from_the_environment(cls, value: object) -> object:
        # Bound in code: the dg.EnvVar itself; resolved for a run: the variable's value. Any
        # other text was typed into config, where it would be stored with the run.
        if value is None or isinstance(value, dg.EnvVar) or \
                value == os.environ.get(ADMIN_TOKEN_VARIABLE):
            return value
        raise ValueError(f"admin_token: give it as dg.EnvVar({ADMIN_TOKEN_VARIABLE!r}) "
                         f"({{env: {ADMIN_TOKEN_VARIABLE}}} in run config), not as text")

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
        token = self.admin_token or dg.EnvVar(ADMIN_TOKEN_VARIABLE).get_value("")
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
