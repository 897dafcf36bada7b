"""The Sharkey client against the contract: typed errors, rate limits, retries, secrets."""

from __future__ import annotations

import time

import pytest

from botpipeline.clients.sharkey.client import SharkeyClient, server_label
from botpipeline.clients.sharkey.errors import (Ambiguous, AlreadyDone, AuthenticationError,
                                                DuplicateUsername, InvalidParam, NotFound,
                                                PermissionDenied, RateLimited, ServerError,
                                                error_from_body)
from botpipeline.clients.sharkey.limits import SHARKEY_LIMITS, Limit, scaled
from botpipeline.clients.sharkey.tokens import TokenStore, TokenStoreError
from botpipeline_tests.misskey_server import FaultConfig, MisskeyTestServer


def body(code, status_kind="client", **info):
    return {"error": {"message": "m", "code": code, "id": "x", "kind": status_kind,
                      **({"info": info} if info else {})}}


def test_error_bodies_become_typed_errors():
    assert isinstance(error_from_body("x", 401, body("CREDENTIAL_REQUIRED")), AuthenticationError)
    assert isinstance(error_from_body("x", 403, body("ROLE_PERMISSION_DENIED")), PermissionDenied)
    assert isinstance(error_from_body("x", 400, body("ACCESS_DENIED")), PermissionDenied)
    assert isinstance(error_from_body("x", 400, body("ALREADY_REACTED")), AlreadyDone)
    assert isinstance(error_from_body("x", 400, body("NO_SUCH_REPLY_TARGET")), NotFound)
    assert isinstance(error_from_body("x", 400, body("MAX_LENGTH")), InvalidParam)
    dup = error_from_body("x", 500, body("INTERNAL_ERROR", "server",
                                         e={"message": "DUPLICATED_USERNAME"}))
    assert isinstance(dup, DuplicateUsername) and dup.code == "DUPLICATED_USERNAME"
    assert isinstance(error_from_body("x", 502, None), ServerError)


def test_server_label_drops_credentials_query_and_fragment():
    assert server_label("https://u:p@host.example:8443/base/?i=tok#x") == \
        "https://host.example:8443/base"
    with pytest.raises(ValueError):
        server_label("host-without-scheme")


def test_tls_is_verified_unless_told_otherwise():
    assert SharkeyClient("https://example.org", "t").verify is True
    assert SharkeyClient("https://example.org", "t", verify="/etc/ca.pem").verify == "/etc/ca.pem"


def test_tokens_never_appear_in_errors():
    with MisskeyTestServer() as srv:
        client = SharkeyClient(srv.url, "not-a-real-token-123")
        with pytest.raises(AuthenticationError) as caught:
            client.call("i", {})
        assert "not-a-real-token-123" not in str(caught.value) + repr(caught.value)
        assert caught.value.__cause__ is None and caught.value.__context__ is None
        assert "not-a-real-token-123" not in repr(client)


def test_rate_limits_are_waited_out_per_token():
    # users/show: 5 per 2 s, leaky bucket; scaled to 5 per 100 ms (the client is told).
    with MisskeyTestServer(rate_limit_scale=0.05) as srv:
        client = SharkeyClient(srv.url, srv.admin_token,
                               limits=scaled(SHARKEY_LIMITS, time_divisor=20))
        start = time.monotonic()
        for _ in range(12):
            assert client.call("users/show", {"username": "admin"})["username"] == "admin"
        assert time.monotonic() - start >= 0.12  # 7 calls past the burst, 20 ms apart
        with pytest.raises(RateLimited) as caught:
            for _ in range(10):
                client.call("users/show", {"username": "admin"}, wait=False)
        assert 0 < caught.value.retry_in <= 0.1
        other = client.call("admin/accounts/create", {"username": "bob", "password": "pw"})
        # Another user's bucket is untouched by the admin's.
        assert client.call("users/show", {"username": "admin"}, token=other["token"],
                           wait=False)["username"] == "admin"


def test_misskey_windows_are_learnt_from_429_bodies_and_not_knocked_on_again():
    """Misskey sends no X-RateLimit-* headers and its window counts refused calls: a client
    that knows no limit learns it from the first 429 (info.total, epoch resetMs) and then stays
    under it instead of knocking."""
    with MisskeyTestServer(flavor="misskey", limits={"notes/create": (3, 1000)}) as srv:
        client = SharkeyClient(srv.url, srv.admin_token, limits={})
        with pytest.raises(RateLimited) as caught:
            for i in range(4):
                client.call("notes/create", {"text": f"n{i}"}, wait=False)
        assert 0 < caught.value.retry_in <= 1.1  # the epoch resetMs, understood
        assert client.pacer.windowed and client.pacer.refused["notes/create"] == 1
        assert client.pacer.windows("notes/create") == pytest.approx({3: 1.0}, abs=0.15)
        start = time.monotonic()
        for i in range(9):
            client.call("notes/create", {"text": f"m{i}"})
        assert client.pacer.refused["notes/create"] == 1  # never refused again
        assert time.monotonic() - start >= 2.0  # three windows of three
        assert srv.request_counts["notes/create"] == 13
        assert len(srv.notes()) == 12


def test_signin_is_paced_by_its_per_ip_limit_without_knocking():
    """Misskey's sign-in answers 429 with neither info nor Retry-After; once refused, the
    client paces by the known limit (here 2 per 600 ms, 100 ms apart), counting the refused
    call, so it is never refused again."""
    with MisskeyTestServer(flavor="misskey", limits={"signin-flow": (2, 600, 100)}) as srv:
        client = SharkeyClient(srv.url, srv.admin_token, limits={
            "signin-flow": Limit(2, 600, min_interval_ms=100)})
        client.call("admin/accounts/create", {"username": "carol", "password": "pw"})
        start = time.monotonic()
        tokens = {client.call("signin-flow", {"username": "carol", "password": "pw"},
                              token="")["i"] for _ in range(5)}
        assert len(tokens) == 1  # the account's own token, every time
        assert time.monotonic() - start >= 1.2  # 5 sign-ins: windows of 2 per 600 ms
        assert client.pacer.refused["signin-flow"] <= 1  # the first back-to-back call
        with pytest.raises(PermissionDenied):  # a wrong password: 403 with only an id
            client.call("signin-flow", {"username": "carol", "password": "no"}, token="")


def test_idempotent_calls_are_retried_and_creates_are_never_blindly_repeated():
    with MisskeyTestServer(rate_limit_scale=0) as srv:
        client = SharkeyClient(srv.url, srv.admin_token, backoff=0.01)
        srv.faults = FaultConfig(rate=1.0, kinds=("drop",), endpoints={"notes/create"})
        with pytest.raises(Ambiguous):
            client.call("notes/create", {"text": "hello"})
        assert srv.request_counts["notes/create"] == 1  # not retried
        srv.faults = FaultConfig(rate=0.5, kinds=("error500", "drop"), seed=1,
                                 endpoints={"i"})
        for _ in range(5):
            assert client.call("i", {})["username"] == "admin"
        # An answer cut off mid-body after the server acted: never repeated blindly.
        srv.faults = FaultConfig(rate=1.0, kinds=("cut_after",), endpoints={"notes/create"})
        with pytest.raises(Ambiguous):
            client.call("notes/create", {"text": "cut"})
        assert [n["text"] for n in srv.notes()] == ["cut"]
        # ... and an idempotent call is simply asked again.
        srv.faults = FaultConfig(rate=0.5, kinds=("cut_after",), seed=2, endpoints={"i"})
        for _ in range(5):
            assert client.call("i", {})["username"] == "admin"
        assert srv.fault_counts["cut_after"] >= 3


def test_the_token_store_is_private_and_refuses_loose_permissions(tmp_path):
    store = TokenStore(tmp_path / "store", "https://sandbox.example")
    assert store.password_for("alice", lambda: "pw1") == "pw1"
    assert store.password_for("alice", lambda: "pw2") == "pw1"  # chosen once, kept
    store.put("alice", token="s3cr3t-token")
    assert oct(store.path.stat().st_mode & 0o777) == "0o600"
    assert oct(store.directory.stat().st_mode & 0o777) == "0o700"
    assert TokenStore(tmp_path / "store", "https://sandbox.example").token("ALICE") == "s3cr3t-token"
    assert "s3cr3t" not in repr(store)
    store.path.chmod(0o644)
    with pytest.raises(TokenStoreError, match="chmod 600"):
        TokenStore(tmp_path / "store", "https://sandbox.example")


def test_missing_sharkey_settings_are_named_at_once(monkeypatch):
    import dagster as dg

    from botpipeline.defs.sharkey.resources import SharkeyResource

    monkeypatch.delenv("SHARKEY_URL", raising=False)
    monkeypatch.delenv("SHARKEY_ADMIN_TOKEN", raising=False)
    with pytest.raises(dg.Failure) as caught:
        SharkeyResource().client()
    assert "SHARKEY_URL" in str(caught.value) and "SHARKEY_ADMIN_TOKEN" in str(caught.value)


def test_admin_token_is_an_env_var_never_text_in_run_config(monkeypatch):
    import dagster as dg

    from botpipeline.definitions import defs
    from botpipeline.defs.sharkey.resources import SharkeyResource

    bound = defs.resources["sharkey"]
    assert isinstance(bound.admin_token, dg.EnvVar) and bound.admin_token == "SHARKEY_ADMIN_TOKEN"
    # What a run stores: the variable's name, resolved when the step starts.
    monkeypatch.setenv("SHARKEY_ADMIN_TOKEN", "from-the-environment")
    assert SharkeyResource(admin_token="from-the-environment").admin_token  # resolved value
    with pytest.raises(Exception, match="EnvVar"):  # a token typed into config
        SharkeyResource(admin_token="typed-into-the-launchpad")
    # Unbound (the collector's resource): the variable, read when a step calls the server.
    monkeypatch.setenv("SHARKEY_URL", "http://127.0.0.1:9")
    client = SharkeyResource().client()
    assert client._admin_token == "from-the-environment"
    client.close()
    # Publishing without the variable is refused at launch, naming it.
    monkeypatch.delenv("SHARKEY_ADMIN_TOKEN")
    job = defs.resolve_job_def("sharkey_threads")
    with pytest.raises(dg.DagsterInvalidConfigError, match="SHARKEY_ADMIN_TOKEN"):
        job.execute_in_process(partition_key="2021-01-02",
                               instance=dg.DagsterInstance.ephemeral())
