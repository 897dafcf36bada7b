"""The Sharkey client against the contract: typed errors, rate limits, retries, secrets."""

from __future__ import annotations

import time

import pytest

from botpipeline.clients.sharkey.client import SharkeyClient, server_label
from botpipeline.clients.sharkey.errors import (Ambiguous, AlreadyDone, AuthenticationError,
                                                DuplicateUsername, InvalidParam, NotFound,
                                                PermissionDenied, RateLimited, ServerError,
                                                error_from_body)
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
    # users/show: 5 per 2 s, leaky bucket; scaled to 5 per 100 ms.
    with MisskeyTestServer(rate_limit_scale=0.05) as srv:
        client = SharkeyClient(srv.url, srv.admin_token)
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


def test_misskey_flavour_rate_limit_epochs_are_understood():
    with MisskeyTestServer(flavor="misskey", rate_limit_scale=0.05) as srv:
        client = SharkeyClient(srv.url, srv.admin_token)
        with pytest.raises(RateLimited) as caught:
            for _ in range(10):
                client.call("users/show", {"username": "admin"}, wait=False)
        assert 0 <= caught.value.retry_in < 1


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
