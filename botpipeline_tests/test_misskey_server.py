"""Tests of the Misskey/Sharkey test server itself, against the contract in shared/specs/sharkey-api.md."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest
import requests

from botpipeline_tests.misskey_server import FaultConfig, MisskeyTestServer

PROJECT_ROOT = Path(__file__).resolve().parent.parent
AID_EPOCH_MS = 946_684_800_000
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


def call(server, endpoint, token=None, *, in_body=False, session=None, **params):
    headers = {}
    if token is not None and in_body:
        params["i"] = token
    elif token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return (session or requests).post(f"{server.url}/api/{endpoint}", json=params, headers=headers, timeout=5)


def make_user(server, username, token=None):
    r = call(server, "admin/accounts/create", token or server.admin_token, username=username, password="pw")
    assert r.status_code == 200, r.text
    body = r.json()
    return body, body["token"]


def error(r):
    return r.json()["error"]


def upload(server, token, data=PNG, *, name="pic.png", content_type=None, force=None):
    fields = {"i": token, "name": name}
    if force is not None:
        fields["force"] = "true" if force else "false"
    part = ("upload.bin", data) if content_type is None else ("upload.bin", data, content_type)
    return requests.post(f"{server.url}/api/drive/files/create", data=fields, files={"file": part}, timeout=5)


@pytest.fixture
def server():
    with MisskeyTestServer(rate_limit_scale=0) as s:
        yield s


@pytest.fixture
def alice(server):
    return make_user(server, "alice")


# --------------------------------------------------------------------------------- auth and accounts

def test_token_in_header_or_body_and_header_wins(server):
    assert call(server, "i", server.admin_token).json()["username"] == "admin"
    assert call(server, "i", server.admin_token, in_body=True).json()["username"] == "admin"
    r = requests.post(f"{server.url}/api/i", json={"i": "wrong"}, timeout=5,
                      headers={"Authorization": f"Bearer {server.admin_token}"})
    assert r.status_code == 200 and r.json()["isAdmin"] is True
    r = requests.post(f"{server.url}/api/i", json={"i": server.admin_token}, timeout=5,
                      headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401 and error(r)["code"] == "AUTHENTICATION_FAILED"


def test_credential_and_permission_errors(server, alice):
    _, token = alice
    r = call(server, "i")
    assert r.status_code == 401 and error(r)["code"] == "CREDENTIAL_REQUIRED"
    assert set(error(r)) >= {"message", "code", "id", "kind"}
    r = call(server, "i", "nope")
    assert r.status_code == 401 and error(r)["code"] == "AUTHENTICATION_FAILED"
    r = call(server, "admin/accounts/create", token, username="bob", password="pw")
    assert r.status_code == 403 and error(r)["code"] == "ROLE_PERMISSION_DENIED"
    assert error(r)["kind"] == "permission"
    r = call(server, "admin/roles/update-default-policies", token, policies={"rateLimitFactor": 0})
    assert r.status_code == 403 and error(r)["code"] == "ROLE_PERMISSION_DENIED"
    r = call(server, "admin/accounts/create", username="bob", password="pw")  # anonymous once users exist
    assert r.status_code == 401 and error(r)["code"] == "CREDENTIAL_REQUIRED"
    r = call(server, "nope/nothing", token)
    assert r.status_code == 404 and error(r)["code"] == "NO_SUCH_ENDPOINT"


def test_account_creation_rules(server, alice):
    user, token = alice
    assert user["username"] == "alice" and len(token) >= 16 and "token" not in call(server, "i", token).json()
    assert call(server, "i", token).json()["id"] == user["id"]
    root = server.user_by_username("admin")
    assert root["isRoot"] and root["isAdmin"]
    r = call(server, "admin/accounts/create", server.admin_token, username="ALICE", password="pw")
    assert r.status_code == 500
    err = error(r)
    assert err["code"] == "INTERNAL_ERROR" and err["kind"] == "server"
    assert err["info"]["e"]["message"] == "DUPLICATED_USERNAME"
    for bad in ("bad-name", "", "x" * 21, "ünï", 5):
        r = call(server, "admin/accounts/create", server.admin_token, username=bad, password="pw")
        assert r.status_code == 400 and error(r)["code"] == "INVALID_PARAM", bad
        assert error(r)["info"]["param"] == "username"
    make_user(server, "x" * 20)
    # Sharkey: any admin may create accounts.
    make_user(server, "second_admin")
    server.grant_admin("second_admin")
    admin2 = server.mint_token("second_admin")
    make_user(server, "made_by_admin2", admin2)


def test_mint_token_and_users_show(server, alice):
    user, _ = alice
    fresh = server.mint_token("Alice")
    assert call(server, "i", fresh).json()["id"] == user["id"]
    shown = call(server, "users/show", username="ALICE", host=None).json()
    assert shown["id"] == user["id"] and shown["notesCount"] == 0 and "token" not in shown
    assert call(server, "users/show", userId=user["id"]).json()["username"] == "alice"
    r = call(server, "users/show", username="ghost", host=None)
    assert r.status_code == 404 and error(r)["code"] == "NO_SUCH_USER"
    with pytest.raises(KeyError):
        server.mint_token("ghost")


def test_empty_204_bodies(server, alice):
    _, token = alice
    note = call(server, "notes/create", token, text="hi").json()["createdNote"]
    for endpoint, params, tok in (
        ("notes/reactions/create", {"noteId": note["id"], "reaction": "👍"}, token),
        ("drive/files/upload-from-url", {"url": "https://example.org/a.png"}, token),
        ("admin/roles/update-default-policies", {"policies": {"rateLimitFactor": 0}}, server.admin_token),
    ):
        r = call(server, endpoint, tok, **params)
        assert r.status_code == 204 and r.content == b"", endpoint
    assert server.files() == []  # upload-from-url does nothing here


def test_body_over_one_mib_is_413(server):
    r = call(server, "notes/create", server.admin_token, text="x" * (1 << 20))
    assert r.status_code == 413 and error(r)["code"]
    assert call(server, "meta").status_code == 200


# ------------------------------------------------------------------------------ follows and reactions

def test_following(server, alice):
    a, atoken = alice
    b, _ = make_user(server, "bob")
    r = call(server, "following/create", atoken, userId=b["id"])
    assert r.status_code == 200 and r.json()["id"] == b["id"] and r.json()["followersCount"] == 1
    assert server.follows() == {(a["id"], b["id"])}
    assert call(server, "i", atoken).json()["followingCount"] == 1
    for user_id, code in ((b["id"], "ALREADY_FOLLOWING"), (a["id"], "FOLLOWEE_IS_YOURSELF"),
                          ("0000000000000000", "NO_SUCH_USER")):
        r = call(server, "following/create", atoken, userId=user_id)
        assert r.status_code == 400 and error(r)["code"] == code
    assert len(server.follows()) == 1


def test_reactions(server, alice):
    _, atoken = alice
    _, btoken = make_user(server, "bob")
    note = call(server, "notes/create", atoken, text="react to me").json()["createdNote"]
    assert call(server, "notes/reactions/create", btoken, noteId=note["id"], reaction="👍🏽").status_code == 204
    r = call(server, "notes/reactions/create", btoken, noteId=note["id"], reaction="👍🏽")
    assert r.status_code == 400 and error(r)["code"] == "ALREADY_REACTED"
    r = call(server, "notes/reactions/create", btoken, noteId="0000000000000000", reaction="👍")
    assert r.status_code == 400 and error(r)["code"] == "NO_SUCH_NOTE"
    (key, reaction), = server.reactions().items()
    assert key[1] == note["id"] and reaction == "👍🏽"
    # Unknown custom emoji and garbage fall back to ❤.
    for user, garbage in (("carol", ":no_such_emoji:"), ("dave", ""), ("erin", "hello")):
        _, tok = make_user(server, user)
        assert call(server, "notes/reactions/create", tok, noteId=note["id"], reaction=garbage).status_code == 204
    assert sorted(server.reactions().values()) == sorted(["👍🏽", "❤", "❤", "❤"])
    assert call(server, "notes/show", noteId=note["id"]).json()["reactions"] == {"👍🏽": 1, "❤": 3}


# ------------------------------------------------------------------------------------------- notes

def test_note_errors_and_renotes(server, alice):
    user, token = alice
    for text in (None, "", "   \n"):
        r = call(server, "notes/create", token, **({} if text is None else {"text": text}))
        assert r.status_code == 400 and error(r)["code"] == "INVALID_PARAM" and error(r)["info"]["param"] == "text"
    original = call(server, "notes/create", token, text="  original  ", createdAt="2001-01-01T00:00:00Z").json()
    original = original["createdNote"]
    assert original["text"] == "original" and original["user"]["username"] == "alice"
    assert not original["createdAt"].startswith("2001")
    for params, code in (({"text": "x", "replyId": "0000000000000000"}, "NO_SUCH_REPLY_TARGET"),
                         ({"renoteId": "0000000000000000"}, "NO_SUCH_RENOTE_TARGET")):
        r = call(server, "notes/create", token, **params)
        assert r.status_code == 400 and error(r)["code"] == code
    pure = call(server, "notes/create", token, renoteId=original["id"]).json()["createdNote"]
    assert pure["text"] is None and pure["renoteId"] == original["id"]
    r = call(server, "notes/create", token, renoteId=pure["id"])
    assert r.status_code == 400 and error(r)["code"] == "CANNOT_RENOTE_TO_A_PURE_RENOTE"
    r = call(server, "notes/create", token, text="reply", replyId=pure["id"])
    assert r.status_code == 400 and error(r)["code"] == "CANNOT_REPLY_TO_A_PURE_RENOTE"
    quote = call(server, "notes/create", token, text="quote", renoteId=original["id"]).json()["createdNote"]
    reply = call(server, "notes/create", token, text="reply", replyId=quote["id"], visibility="home",
                 noExtractMentions=True, localOnly=True).json()["createdNote"]
    assert reply["replyId"] == quote["id"] and reply["visibility"] == "home"
    r = call(server, "notes/create", token, text="x", visibility="everyone")
    assert r.status_code == 400 and error(r)["info"]["param"] == "visibility"
    assert call(server, "users/show", userId=user["id"]).json()["notesCount"] == 4
    r = call(server, "notes/show", noteId="0000000000000000")
    assert r.status_code == 400 and error(r)["code"] == "NO_SUCH_NOTE"
    assert call(server, "notes/show", noteId=quote["id"]).json()["renoteId"] == original["id"]


def test_note_length_limits_sharkey():
    with MisskeyTestServer(rate_limit_scale=0, max_note_length=20) as server:
        _, token = make_user(server, "alice")
        assert call(server, "meta").json()["maxNoteTextLength"] == 20
        assert call(server, "notes/create", token, text="x" * 20).status_code == 200
        r = call(server, "notes/create", token, text="x" * 21)
        assert r.status_code == 400 and error(r)["code"] == "MAX_LENGTH"
        assert call(server, "notes/create", token, text="x", cw="c" * 500).status_code == 200
        r = call(server, "notes/create", token, text="x", cw="c" * 501)
        assert r.status_code == 400 and error(r)["code"] == "INVALID_PARAM"


def test_aidx_ids_and_users_notes_paging(server, alice):
    user, token = alice
    before = time.time() * 1000
    notes = [call(server, "notes/create", token, text=f"n{i}").json()["createdNote"] for i in range(12)]
    after = time.time() * 1000
    ids = [n["id"] for n in notes]
    assert ids == sorted(ids) and len(set(ids)) == 12
    for note in notes:
        nid = note["id"]
        assert len(nid) == 16 and all(c in "0123456789abcdefghijklmnopqrstuvwxyz" for c in nid)
        ms = int(nid[:8], 36) + AID_EPOCH_MS
        assert before - 1 <= ms <= after + 1
        created = datetime.fromisoformat(note["createdAt"]).timestamp() * 1000
        assert note["createdAt"].endswith("Z") and round(created) == ms
    page = call(server, "users/notes", userId=user["id"]).json()
    assert [n["id"] for n in page] == ids[::-1][:10]  # default limit 10, newest first
    page = call(server, "users/notes", userId=user["id"], limit=3, untilId=ids[5]).json()
    assert [n["id"] for n in page] == [ids[4], ids[3], ids[2]]
    page = call(server, "users/notes", userId=user["id"], limit=3, sinceId=ids[5]).json()
    assert [n["id"] for n in page] == [ids[8], ids[7], ids[6]]
    page = call(server, "users/notes", userId=user["id"], limit=100, sinceId=ids[9]).json()
    assert [n["id"] for n in page] == [ids[11], ids[10]]
    for limit in (0, 101, "5"):
        assert call(server, "users/notes", userId=user["id"], limit=limit).status_code == 400
    assert [n["id"] for n in server.notes()] == ids


def test_users_notes_hides_replies_unless_asked_and_renotes_can_repeat(server, alice):
    user, token = alice
    root = call(server, "notes/create", token, text="root").json()["createdNote"]
    reply = call(server, "notes/create", token, text="re", replyId=root["id"]).json()["createdNote"]
    renotes = [call(server, "notes/create", token, renoteId=root["id"]).json()["createdNote"]
               for _ in range(2)]  # the same renote twice: a real Misskey accepts both
    assert renotes[0]["id"] != renotes[1]["id"]
    listed = [n["id"] for n in call(server, "users/notes", userId=user["id"]).json()]
    assert reply["id"] not in listed and root["id"] in listed and renotes[0]["id"] in listed
    listed = [n["id"] for n in call(server, "users/notes", userId=user["id"], withReplies=True,
                                    withRenotes=False).json()]
    assert listed == [reply["id"], root["id"]]


def test_signin_flow_returns_the_accounts_own_token(server, alice):
    user, token = alice
    r = call(server, "signin-flow", username="ALICE", password="pw")
    assert r.status_code == 200 and r.json() == {"finished": True, "id": user["id"], "i": token}
    assert call(server, "signin-flow", username="alice").json() == {"finished": False,
                                                                   "next": "password"}
    r = call(server, "signin-flow", username="alice", password="wrong")
    assert r.status_code == 403 and r.json() == {"error": {"id": "932c904e-9460-45b7-9ce6-7ed33be7eb2c"}}
    r = call(server, "signin-flow", username="nobody", password="pw")
    assert r.status_code == 404 and set(error(r)) == {"id"}
    server.change_password("alice", "new")
    assert call(server, "signin-flow", username="alice", password="pw").status_code == 403
    assert call(server, "signin-flow", username="alice", password="new").json()["i"] == token


def test_misskey_signin_is_limited_per_ip_and_answers_without_info():
    with MisskeyTestServer(flavor="misskey", limits={"signin-flow": (3, 60_000, 200)}) as server:
        make_user(server, "alice")
        first = call(server, "signin-flow", username="alice", password="pw")
        assert first.status_code == 200
        r = call(server, "signin-flow", username="alice", password="pw")  # under 200 ms
        assert r.status_code == 429 and error(r)["code"] == "TOO_MANY_AUTHENTICATION_FAILURES"
        assert "info" not in error(r) and "Retry-After" not in r.headers
        time.sleep(0.25)
        assert call(server, "signin-flow", username="alice", password="pw").status_code == 200
        time.sleep(0.25)  # 3 attempts in the window, the refused one included: closed
        assert call(server, "signin-flow", username="alice", password="pw").status_code == 429


def test_misskey_sliding_window_counts_refused_calls():
    with MisskeyTestServer(flavor="misskey", limits={"i/update": (2, 2000)}) as server:
        _, token = make_user(server, "alice")
        assert [call(server, "i/update", token, name="a").status_code for _ in range(2)] == [200, 200]
        r = call(server, "i/update", token, name="a")
        info = error(r)["info"]
        assert r.status_code == 429 and info["total"] == 2 and info["remaining"] == 0
        assert not any(h.startswith("X-RateLimit") for h in r.headers)
        # Knocking every 100 ms keeps the window closed: each refusal is logged too.
        for _ in range(8):
            time.sleep(0.1)
            assert call(server, "i/update", token, name="a").status_code == 429
        time.sleep(2.1)  # a quiet window: open again
        assert call(server, "i/update", token, name="a").status_code == 200
        # Misskey leaves users/show, notes/show and reactions unlimited.
        assert all(call(server, "users/show", token, username="alice").status_code == 200
                   for _ in range(20))


def test_latency_overlaps_like_a_real_server():
    with MisskeyTestServer(rate_limit_scale=0, latency={"admin/accounts/create": 0.5}) as server:
        def create(i):
            make_user(server, f"slow{i}")
        start = time.monotonic()
        threads = [threading.Thread(target=create, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert 0.5 <= time.monotonic() - start < 2.0  # concurrent, not 6 x 0.5 s
        start = time.monotonic()
        call(server, "meta")
        assert time.monotonic() - start < 0.5


def test_concurrent_posting_is_consistent(server):
    tokens = [make_user(server, f"user{i}")[1] for i in range(4)]

    def post(token):
        with requests.Session() as session:
            for i in range(20):
                assert call(server, "notes/create", token, session=session, text=f"t{i}").status_code == 200

    threads = [threading.Thread(target=post, args=(tokens[i % 4],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    notes = server.notes()
    assert len({n["id"] for n in notes}) == 160
    assert sorted(u["notesCount"] for u in server.users() if u["username"] != "admin") == [40] * 4


# ------------------------------------------------------------------------------------------- drive

def test_drive_upload_dedupe_force_and_avatar(server, alice):
    user, token = alice
    r = upload(server, token, content_type="application/octet-stream")
    assert r.status_code == 200, r.text
    f = r.json()
    assert f["type"] == "image/png" and f["size"] == len(PNG) and f["name"] == "pic.png"
    assert f["userId"] == user["id"] and len(f["md5"]) == 32
    assert requests.get(f["url"], timeout=5).content == PNG
    assert upload(server, token).json()["id"] == f["id"]  # same md5: the existing file
    forced = upload(server, token, force=True).json()
    assert forced["id"] != f["id"] and forced["md5"] == f["md5"]
    text = upload(server, token, b"just text", name="t.txt", content_type="text/plain").json()
    assert text["type"] == "text/plain"
    r = call(server, "drive/files/create", token, name="x")  # JSON instead of multipart
    assert r.status_code == 400 and error(r)["code"] == "INVALID_PARAM"
    # i/update: own image files only.
    r = call(server, "i/update", token, name="Alice A.", description="bio", avatarId=f["id"],
             bannerId=forced["id"], isBot=True)
    assert r.status_code == 200
    me = r.json()
    assert (me["name"], me["avatarId"], me["bannerId"], me["isBot"]) == ("Alice A.", f["id"], forced["id"], True)
    r = call(server, "i/update", token, avatarId=text["id"])
    assert r.status_code == 400 and error(r)["code"] == "AVATAR_NOT_AN_IMAGE"
    r = call(server, "i/update", token, bannerId=text["id"])
    assert r.status_code == 400 and error(r)["code"] == "BANNER_NOT_AN_IMAGE"
    _, btoken = make_user(server, "bob")
    r = call(server, "i/update", btoken, avatarId=f["id"])
    assert r.status_code == 400 and error(r)["code"] == "NO_SUCH_AVATAR"
    r = call(server, "i/update", btoken, bannerId="0000000000000000")
    assert r.status_code == 400 and error(r)["code"] == "NO_SUCH_BANNER"
    for params in ({"name": ""}, {"name": "n" * 51}, {"description": "d" * 1501}):
        r = call(server, "i/update", token, **params)
        assert r.status_code == 400 and error(r)["code"] == "INVALID_PARAM", params
    assert len(server.files()) == 3
    note = call(server, "notes/create", token, fileIds=[f["id"]]).json()["createdNote"]
    assert note["fileIds"] == [f["id"]] and note["text"] is None


# ------------------------------------------------------------------------------------- rate limits

def test_sharkey_leaky_bucket():
    with MisskeyTestServer(limits={"meta": (3, 1500)}) as server:
        _, token = make_user(server, "alice")
        token_headers = {"Authorization": f"Bearer {server.admin_token}"}
        with requests.Session() as s:
            def meta():
                return s.post(f"{server.url}/api/meta", json={}, headers=token_headers, timeout=5)
            ok = [meta() for _ in range(3)]
            assert [r.status_code for r in ok] == [200] * 3
            assert [r.headers["X-RateLimit-Remaining"] for r in ok] == ["2", "1", "0"]
            assert 1.0 < float(ok[-1].headers["X-RateLimit-Clear"]) <= 1.5
            for _ in range(4):  # rejected calls must not take slots
                r = meta()
                assert r.status_code == 429 and error(r)["code"] == "RATE_LIMIT_EXCEEDED"
            assert r.headers["Retry-After"] == "1"
            reset = float(r.headers["X-RateLimit-Reset"])
            assert 0 < reset <= 0.5 and "X-RateLimit-Clear" in r.headers
            info = error(r)["info"]
            assert 0 < info["resetMs"] <= 500 and 500 < info["fullResetMs"] <= 1500
            assert call(server, "meta", token).status_code == 200  # per user
            time.sleep(reset + 0.05)
            assert meta().status_code == 200
            assert meta().status_code == 429
        # Endpoints without a limit of their own get 10/s.
        with requests.Session() as s:
            statuses = [call(server, "i", token, session=s).status_code for _ in range(20)]
        assert statuses[:10] == [200] * 10 and 429 in statuses[10:]


def test_rate_limit_factor_policy_and_scale():
    with MisskeyTestServer(limits={"meta": (1, 60_000)}) as server:
        assert call(server, "meta", server.admin_token).json()["policies"]["rateLimitFactor"] == 1
        assert call(server, "meta", server.admin_token).status_code == 429
        r = call(server, "admin/roles/update-default-policies", server.admin_token, policies={"rateLimitFactor": 0})
        assert r.status_code == 204
        for _ in range(5):
            r = call(server, "meta", server.admin_token)
            assert r.status_code == 200 and "X-RateLimit-Remaining" not in r.headers
        assert r.json()["policies"]["rateLimitFactor"] == 0
    with MisskeyTestServer(limits={"meta": (1, 60_000)}, rate_limit_scale=0.005) as server:  # 300 ms per slot
        assert call(server, "meta").status_code == 200
        assert call(server, "meta").status_code == 429
        time.sleep(0.35)
        assert call(server, "meta").status_code == 200


def test_misskey_flavor():
    with MisskeyTestServer(flavor="misskey", limits={"meta": (1, 2000)}, max_note_length=10) as server:
        r = call(server, "meta", server.admin_token)
        assert r.json()["version"] == "2025.7.0" and not any(h.startswith("X-RateLimit") for h in r.headers)
        r = call(server, "meta", server.admin_token)
        assert r.status_code == 429 and r.headers["Retry-After"] == "2"
        assert not any(h.startswith("X-RateLimit") for h in r.headers)
        info, now = error(r)["info"], time.time()
        assert now < info["reset"] <= now + 3 and now * 1000 < info["resetMs"] <= (now + 2.1) * 1000
        # No default limit on Misskey.
        _, token = make_user(server, "alice")
        assert all(call(server, "i", token).status_code == 200 for _ in range(15))
        # Only root may create accounts once users exist.
        server.grant_admin("alice")
        r = call(server, "admin/accounts/create", token, username="bob", password="pw")
        assert r.status_code == 400 and error(r)["code"] == "ACCESS_DENIED"
        r = call(server, "notes/create", token, text="x" * 11)
        assert r.status_code == 400 and error(r)["code"] == "INVALID_PARAM"
        r = call(server, "notes/create", token, text="x", cw="c" * 101)
        assert r.status_code == 400 and error(r)["code"] == "INVALID_PARAM"
    with MisskeyTestServer(flavor="misskey") as server:  # default limits do not touch meta
        assert call(server, "meta").json()["version"] == "2025.7.0"


# ------------------------------------------------------------------------------------------ faults

def test_fault_error500_and_drop_do_not_process(server, alice):
    _, token = alice
    server.faults = FaultConfig(rate=1.0, kinds=("error500",), endpoints={"notes/create"})
    r = call(server, "notes/create", token, text="lost")
    assert r.status_code == 500 and error(r)["code"] == "INTERNAL_ERROR" and error(r)["kind"] == "server"
    assert call(server, "meta").status_code == 200  # endpoint filter
    server.faults = FaultConfig(rate=1.0, kinds=("drop",))
    with pytest.raises(requests.ConnectionError):
        call(server, "notes/create", token, text="lost")
    assert server.notes() == [] and server.users()  # inspection bypasses faults
    assert server.fault_counts == {"error500": 1, "drop": 1}


def test_fault_drop_after_and_slow_process(server, alice):
    _, token = alice
    server.faults = FaultConfig(rate=1.0, kinds=("drop_after",))
    with requests.Session() as session:
        with pytest.raises(requests.ConnectionError):
            call(server, "notes/create", token, session=session, text="kept")
        assert [n["text"] for n in server.notes()] == ["kept"]
        server.faults = FaultConfig(rate=1.0, kinds=("slow",), slow_seconds=0.2)
        start = time.monotonic()
        assert call(server, "notes/create", token, session=session, text="late").status_code == 200
        assert time.monotonic() - start >= 0.2
        server.faults = None
        assert call(server, "notes/create", token, session=session, text="fine").status_code == 200
    assert server.fault_counts == {"drop_after": 1, "slow": 1}


def test_fault_cut_after_and_error500_after_process(server, alice):
    _, token = alice
    server.faults = FaultConfig(rate=1.0, kinds=("cut_after",), endpoints={"notes/create"})
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        call(server, "notes/create", token, text="kept")  # the body stops half-way
    server.faults = FaultConfig(rate=1.0, kinds=("error500_after",), endpoints={"notes/create"})
    r = call(server, "notes/create", token, text="kept too")
    assert r.status_code == 500 and error(r)["code"] == "INTERNAL_ERROR"
    assert [n["text"] for n in server.notes()] == ["kept", "kept too"]
    assert server.fault_counts == {"cut_after": 1, "error500_after": 1}


def test_faults_are_seeded(server):
    def pattern():
        server.faults = FaultConfig(rate=0.5, kinds=("error500",), seed=7)
        return [call(server, "meta").status_code for _ in range(20)]
    first = pattern()
    assert first == pattern() and 200 in first and 500 in first


def test_on_request_kill_before_and_after(server, alice):
    _, token = alice
    seen, kills = [], []
    server.kill_hook = lambda: kills.append(len(seen))

    def hook(seq, endpoint):
        seen.append((seq, endpoint))
        if endpoint == "notes/create":
            return "kill_before" if len(seen) == 2 else "kill_after" if len(seen) == 3 else None
        return None

    server.on_request = hook
    earlier = sum(server.request_counts.values())  # alice's account creation; the bootstrap is not counted
    assert earlier == 1
    assert call(server, "meta").status_code == 200
    with pytest.raises(requests.ConnectionError):
        call(server, "notes/create", token, text="never")
    assert server.notes() == [] and kills == [2]
    with pytest.raises(requests.ConnectionError):
        call(server, "notes/create", token, text="committed")
    assert [n["text"] for n in server.notes()] == ["committed"] and kills == [2, 3]
    assert seen == [(2, "meta"), (3, "notes/create"), (4, "notes/create")]
    assert server.request_counts["notes/create"] == 2 and server.request_counts["meta"] == 1


# --------------------------------------------------------------------------------------- lifecycle

def test_stop_closes_kept_alive_connections_and_restart_keeps_state(alice, server):
    user, token = alice
    with requests.Session() as session:
        assert call(server, "i", token, session=session).status_code == 200
        server.stop()
        with pytest.raises(requests.ConnectionError):
            call(server, "i", token, session=session)
        server.start()
        assert call(server, "i", token, session=session).json()["id"] == user["id"]


def test_python_m_entry_point():
    proc = subprocess.Popen([sys.executable, "-m", "botpipeline_tests.misskey_server", "--flavor", "misskey",
                             "--rate-limit-scale", "0", "--limits", '{"meta": [5, 1000]}'],
                            cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        info = json.loads(proc.stdout.readline())
        r = requests.post(info["url"] + "/api/meta", json={"i": info["admin_token"]}, timeout=5)
        assert r.status_code == 200 and r.json()["version"] == "2025.7.0"
        assert r.json()["policies"]["rateLimitFactor"] == 0
    finally:
        proc.kill()
        proc.wait(timeout=5)
