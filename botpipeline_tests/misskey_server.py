"""A Misskey/Sharkey-compatible HTTP test server (stdlib only).

It stands in for a real Sharkey 2024.11 / Misskey 2025.7 instance in tests and benchmarks and follows
the API contract in ``shared/specs/sharkey-api.md`` (transport, error bodies, rate limits, endpoints,
``aidx`` ids), not any particular client. Two flavors: ``"sharkey"`` (leaky-bucket limits on every
endpoint with ``X-RateLimit-*`` headers, ``MAX_LENGTH``, any admin may create accounts) and
``"misskey"``, as a real Misskey 2025.7 behaves (the spec's last section): only listed endpoints
limited, by a sliding window that also counts refused calls, no ``X-RateLimit-*`` headers, 429
bodies with ``info {remaining, reset, resetMs, total}``, ``INVALID_PARAM`` for long text, only
root may create accounts (400 ``ACCESS_DENIED``). Both: ``users/notes`` hides replies unless
``withReplies: true``; the same renote can be made twice; ``signin-flow`` returns an account's
token for its password, limited per IP (10 an hour, 1 s apart); ``latency`` makes endpoints slow
(``admin/accounts/create`` hashes a password and makes a key pair: about 1 s on a real server).

Faults (``FaultConfig``) and the ``on_request`` hook let resilience tests make the server fail (5xx
before or after the work), drop connections before or after the work, cut an answer off mid-body
after the work (``cut_after``), answer slowly, or "kill" the client at an exact request; the hook
may also name a fault kind for that one request. The inspection methods (``users()``,
``notes()``, ...) read the state directly, with no HTTP and no faults.

Run standalone: ``python -m botpipeline_tests.misskey_server [--port N] [--flavor F]
[--rate-limit-scale F] [--limits JSON]`` prints ``{"url": ..., "admin_token": ...}`` and serves.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import math
import random
import re
import secrets
import signal
import socket
import string
import sys
import threading
import time
import unicodedata
import urllib.request
import uuid
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from email.parser import HeaderParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

JSON_BODY_LIMIT = 1 << 20          # the contract's 1 MiB for JSON bodies
MULTIPART_BODY_LIMIT = 64 << 20    # uploads may be larger; real servers cap by maxFileSize
_DRAIN_LIMIT = 128 << 20           # beyond this we close instead of reading an oversized body

# (max, duration_ms[, min_interval_ms]) per user per endpoint; the contract's "limits that matter".
DEFAULT_LIMITS: dict[str, tuple | None] = {
    "notes/create": (300, 3_600_000),
    "following/create": (100, 3_600_000),
    "i/update": (20, 3_600_000),
    "drive/files/create": (120, 3_600_000),
    "notes/reactions/create": (10, 5_000),
    "users/show": (5, 2_000),
    "notes/show": (2, 1_000),
    "signin-flow": (10, 3_600_000, 1_000),  # per IP, not per user; attempts 1 s apart
}
MISSKEY_UNLIMITED = ("notes/reactions/create", "users/show", "notes/show")
SHARKEY_DEFAULT_LIMIT = (10, 1_000)  # Sharkey limits endpoints that declare no limit to 10/s

VERSIONS = {"sharkey": "2024.11.2", "misskey": "2025.7.0"}
MAX_CW_LENGTH = {"sharkey": 500, "misskey": 100}
FALLBACK_REACTION = "\u2764"  # ❤
FAULT_KINDS = ("error500", "error500_after", "drop", "drop_after", "cut_after", "slow")

_AID_EPOCH_MS = 946_684_800_000  # 2000-01-01T00:00:00Z
_B36 = string.digits + string.ascii_lowercase
_USERNAME_RE = re.compile(r"[A-Za-z0-9_]{1,20}", re.ASCII)
_CUSTOM_EMOJI_RE = re.compile(r":([\w+-]+)(?:@\.)?:", re.ASCII)
_TOKEN_ALPHABET = string.ascii_letters + string.digits
_EPS = 1e-9
_EMOJI_GLUE = {0x200D, 0xFE0E, 0xFE0F, 0x20E3}  # ZWJ, variation selectors, keycap


def _b36(n: int, width: int) -> str:
    out = []
    while n:
        n, r = divmod(n, 36)
        out.append(_B36[r])
    return "".join(reversed(out)).rjust(width, "0")


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def _is_unicode_emoji(s: str) -> bool:
    """Rough stand-in for Misskey's emoji regex: symbols plus joiners, selectors, modifiers, keycaps."""
    if not s or len(s) > 32:
        return False
    has_symbol = False
    for ch in s:
        cp = ord(ch)
        if unicodedata.category(ch) == "So":
            has_symbol = True
        elif not (cp in _EMOJI_GLUE or 0x1F3FB <= cp <= 0x1F3FF or 0xE0020 <= cp <= 0xE007F or ch in "0123456789#*"):
            return False  # letters, digits outside keycaps, punctuation: not an emoji
    return has_symbol or "\u20e3" in s


# ---------------------------------------------------------------------------------------------- errors

class ApiError(Exception):
    """An API error rendered as ``{"error": {message, code, id, kind, info?}}``."""

    def __init__(self, status: int, code: str, message: str, *, kind: str = "client",
                 info: dict | None = None, headers: dict | None = None, err_id: str | None = None):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.kind = status, code, message, kind
        self.info, self.headers = info, headers or {}
        # Real servers use one fixed UUID per error; a stable uuid5 of the code plays that role.
        self.err_id = err_id or str(uuid.uuid5(uuid.NAMESPACE_URL, "misskey-error:" + code))

    def body(self) -> dict:
        if not self.code:  # the sign-in service answers errors with an id only
            return {"error": {"id": self.err_id}}
        err = {"message": self.message, "code": self.code, "id": self.err_id, "kind": self.kind}
        if self.info is not None:
            err["info"] = self.info
        return {"error": err}


def _invalid(param: str, reason: str) -> ApiError:
    return ApiError(400, "INVALID_PARAM", "Invalid param.", info={"param": param, "reason": reason})


def _client(code: str, message: str, status: int = 400) -> ApiError:
    return ApiError(status, code, message)


def _internal(message: str, code: str = "Error") -> ApiError:
    return ApiError(500, "INTERNAL_ERROR", "Internal error occurred. Please contact us if the error persists.",
                    kind="server", info={"e": {"message": message, "code": code, "id": str(uuid.uuid4())}})


# ------------------------------------------------------------------------------------ param checking

def _opt_str(p: dict, name: str, *, min_len: int = 0, max_len: int | None = None) -> str | None:
    v = p.get(name)
    if v is None:
        return None
    if not isinstance(v, str):
        raise _invalid(name, "must be string")
    if len(v) < min_len:
        raise _invalid(name, f"must NOT have fewer than {min_len} characters")
    if max_len is not None and len(v) > max_len:
        raise _invalid(name, f"must NOT have more than {max_len} characters")
    return v


def _req_str(p: dict, name: str, **kw) -> str:
    v = _opt_str(p, name, **kw)
    if v is None:
        raise _invalid(name, f"must have required property '{name}'")
    return v


def _opt_bool(p: dict, name: str) -> bool | None:
    v = p.get(name)
    if v is not None and not isinstance(v, bool):
        raise _invalid(name, "must be boolean")
    return v


def _form_bool(p: dict, name: str) -> bool:
    """Multipart fields are strings; Misskey's validator coerces "true"/"false"."""
    v = p.get(name)
    if v is None or isinstance(v, bool):
        return bool(v)
    if v in ("true", "false"):
        return v == "true"
    raise _invalid(name, "must be boolean")


def _opt_id_list(p: dict, name: str, max_items: int) -> list[str] | None:
    v = p.get(name)
    if v is None:
        return None
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise _invalid(name, "must be array of strings")
    if not 1 <= len(v) <= max_items or len(set(v)) != len(v):
        raise _invalid(name, f"must have 1 to {max_items} unique items")
    return v


def _parse_multipart(ctype: str, body: bytes) -> tuple[dict, list[dict]]:
    holder = Message()
    holder["Content-Type"] = ctype
    boundary = holder.get_param("boundary")
    if not boundary:
        raise _invalid("body", "multipart body without boundary")
    fields: dict[str, str] = {}
    files: list[dict] = []
    # The delimiter includes the CRLF before "--boundary", so part data needs no trimming.
    pieces = (b"\r\n" + body).split(b"\r\n--" + str(boundary).encode("latin-1"))
    for piece in pieces[1:]:
        if piece.startswith(b"--"):
            break
        head, sep, data = piece.partition(b"\r\n\r\n")
        if not sep:
            continue
        headers = HeaderParser().parsestr(head.lstrip(b" \t").lstrip(b"\r\n").decode("utf-8", "replace"))
        name = headers.get_param("name", header="content-disposition")
        filename = headers.get_filename()
        if filename is None and name != "file":
            fields[str(name)] = data.decode("utf-8", "replace")
        else:
            files.append({"field": name, "filename": filename, "type": headers.get_content_type()
                          if headers.get("Content-Type") else None, "data": data})
    return fields, files


def _sniff_type(data: bytes, declared: str | None) -> str:
    # Real servers detect the type from the bytes; the declared type is only a fallback.
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return declared or "application/octet-stream"


# ------------------------------------------------------------------------------------ rate limiting

class _LeakyBuckets:
    """Sharkey's limiter: a bucket of ``size`` slots that drains one slot per ``duration / size``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state: dict[tuple, tuple[float, float]] = {}

    def hit(self, key: tuple, size: int, duration_ms: float) -> tuple[bool, int, float, float]:
        """Returns (blocked, remaining, reset_ms, full_reset_ms); a blocked call takes no slot."""
        rate = size / duration_ms  # slots drained per ms
        now = time.monotonic()
        with self._lock:
            level, last = self._state.get(key, (0.0, now))
            level = max(0.0, level - (now - last) * 1000.0 * rate)
            if level + 1 > size + _EPS:
                self._state[key] = (level, now)
                return True, 0, (level + 1 - size) / rate, level / rate
            level += 1
            self._state[key] = (level, now)
            return False, max(0, int(size - level + _EPS)), 0.0, level / rate


class _SlidingWindows:
    """Misskey's limiter (the ``ratelimiter`` package on Redis): every call, refused or not, is
    logged; a call is refused while ``max`` calls lie within the last ``duration``. Hammering a
    closed window therefore keeps it closed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._log: dict[tuple, collections.deque] = {}

    def hit(self, key: tuple, size: int, duration_ms: float) -> tuple[bool, int, float]:
        """Returns (blocked, remaining, reset epoch ms: when the oldest logged call leaves)."""
        now = time.time() * 1000
        with self._lock:
            log = self._log.setdefault(key, collections.deque())
            while log and log[0] <= now - duration_ms:
                log.popleft()
            blocked = len(log) >= size
            remaining = 0 if blocked else size - len(log) - 1
            log.append(now)
            return blocked, remaining, log[0] + duration_ms


# ----------------------------------------------------------------------------------------- faults

@dataclass
class FaultConfig:
    """Per-request fault injection: with probability ``rate`` one of ``kinds`` happens."""
    rate: float
    kinds: tuple = ("error500", "drop", "slow")
    seed: int = 0
    slow_seconds: float = 0.5
    endpoints: set | None = None

    def __post_init__(self) -> None:
        unknown = set(self.kinds) - set(FAULT_KINDS)
        if unknown or not self.kinds:
            raise ValueError(f"fault kinds must be a non-empty subset of {FAULT_KINDS}, got {self.kinds}")


# ------------------------------------------------------------------------------------------- state

_ENDPOINTS = {  # endpoint -> (method of _Instance, access: optional | required | admin)
    "admin/accounts/create": ("ep_accounts_create", "optional"),  # checks its own access (empty instance, flavor)
    "users/show": ("ep_users_show", "optional"),
    "i": ("ep_i", "required"),
    "i/update": ("ep_i_update", "required"),
    "drive/files/create": ("ep_drive_create", "required"),
    "drive/files/upload-from-url": ("ep_upload_from_url", "required"),
    "notes/create": ("ep_notes_create", "required"),
    "notes/reactions/create": ("ep_reactions_create", "required"),
    "following/create": ("ep_following_create", "required"),
    "notes/show": ("ep_notes_show", "optional"),
    "users/notes": ("ep_users_notes", "optional"),
    "meta": ("ep_meta", "optional"),
    "signin-flow": ("ep_signin_flow", "optional"),
    "admin/roles/update-default-policies": ("ep_update_policies", "admin"),
}


class _Instance:
    """All instance state and the endpoint logic; callers hold ``self.lock`` around ``ep_*`` calls."""

    def __init__(self, flavor: str, max_note_length: int, rate_limit_factor: float):
        self.lock = threading.Lock()
        self.flavor = flavor
        self.max_note_length = max_note_length
        self.policies: dict[str, Any] = {"rateLimitFactor": rate_limit_factor}
        self.base_url = ""
        self.custom_emojis: set[str] = set()
        self.users: dict[str, dict] = {}
        self.by_lower: dict[str, str] = {}
        self.tokens: dict[str, str] = {}
        self.notes: dict[str, dict] = {}
        self.notes_by_user: dict[str, list[str]] = collections.defaultdict(list)
        self.follows: set[tuple[str, str]] = set()
        self.reactions: dict[tuple[str, str], str] = {}
        self.files: dict[str, dict] = {}
        self.file_by_md5: dict[tuple[str, str], str] = {}
        self._last_ms = 0
        self._counter = 0

    # ids: aidx = 8 base-36 chars of ms since 2000 + 8 chars of a counter, so string order == creation order
    def new_id(self) -> tuple[str, int]:
        ms = max(int(time.time() * 1000), self._last_ms)  # never step back even if the clock does
        self._last_ms = ms
        self._counter += 1
        return _b36(ms - _AID_EPOCH_MS, 8) + _b36(self._counter, 8), ms

    def new_token(self, user_id: str) -> str:
        token = "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(16))
        self.tokens[token] = user_id
        return token

    # packing (plain dict copies)
    def pack_user(self, u: dict, detailed: bool = False) -> dict:
        out = {k: u[k] for k in ("id", "username", "host", "name", "description", "avatarId", "bannerId",
                                 "isBot", "notesCount", "followersCount", "followingCount", "createdAt")}
        out["avatarUrl"] = self.files[u["avatarId"]]["url"] if u["avatarId"] else None
        out["bannerUrl"] = self.files[u["bannerId"]]["url"] if u["bannerId"] else None
        if detailed:
            out["isAdmin"] = u["isAdmin"]
        return out

    def pack_note(self, n: dict) -> dict:
        u = self.users[n["userId"]]
        out = dict(n)
        out["user"] = {"id": u["id"], "username": u["username"], "name": u["name"], "host": None}
        out["fileIds"] = list(n["fileIds"])
        out["files"] = [self.pack_file(self.files[f]) for f in n["fileIds"]]
        out["reactions"] = dict(n["reactions"])
        return out

    @staticmethod
    def pack_file(f: dict) -> dict:
        return {k: v for k, v in f.items() if k != "content"}

    def user_by_username(self, username: str) -> dict | None:
        uid = self.by_lower.get(username.lower())
        return self.users[uid] if uid else None

    @staticmethod
    def is_pure_renote(n: dict) -> bool:
        return n["renoteId"] is not None and n["text"] is None and n["cw"] is None and not n["fileIds"]

    # ---- endpoints: (me: user dict | None, params, files) -> JSON object, or None (falling off) for 204
    def ep_accounts_create(self, me: dict | None, p: dict, _files) -> dict:
        if self.users:  # only an empty instance takes an anonymous call (its root admin)
            if me is None:
                raise ApiError(401, "CREDENTIAL_REQUIRED", "Credential required.")
            if not me["isAdmin"]:
                raise ApiError(403, "ROLE_PERMISSION_DENIED", "You are not assigned to a required role.",
                               kind="permission")
            if self.flavor == "misskey" and not me["isRoot"]:
                raise _client("ACCESS_DENIED", "Access denied.")
        username = p.get("username")
        if not isinstance(username, str) or not _USERNAME_RE.fullmatch(username):
            raise _invalid("username", 'must match pattern "^\\w{1,20}$"')
        password = _req_str(p, "password", min_len=1)
        if username.lower() in self.by_lower:
            raise _internal("DUPLICATED_USERNAME")
        uid, ms = self.new_id()
        salt = secrets.token_bytes(8)
        first = not self.users
        user = {"id": uid, "username": username, "host": None, "name": None, "description": None,
                "avatarId": None, "bannerId": None, "isBot": False, "notesCount": 0, "followersCount": 0,
                "followingCount": 0, "createdAt": _iso(ms), "isAdmin": first, "isRoot": first,
                "password": salt.hex() + ":" + hashlib.sha256(salt + password.encode()).hexdigest()}
        self.users[uid] = user
        self.by_lower[username.lower()] = uid
        user["token"] = self.new_token(uid)  # the native token: sign-in returns the same one
        out = self.pack_user(user, detailed=True)
        out["token"] = user["token"]
        return out

    def ep_signin_flow(self, me, p: dict, _files):
        """Misskey 2025.7's password sign-in: ``{finished, id, i}`` with the user's native token;
        errors carry only an ``id`` (wrong password 403, unknown user 404)."""
        username = _req_str(p, "username", min_len=1)
        user = self.user_by_username(username)
        if user is None:
            raise ApiError(404, "", "", err_id="6cc579cc-885d-43d8-95c2-b8c7fc963280")
        password = p.get("password")
        if password is None:
            return {"finished": False, "next": "password"}
        salt, digest = user["password"].split(":")
        if not isinstance(password, str) or \
                hashlib.sha256(bytes.fromhex(salt) + password.encode()).hexdigest() != digest:
            raise ApiError(403, "", "", err_id="932c904e-9460-45b7-9ce6-7ed33be7eb2c")
        return {"finished": True, "id": user["id"], "i": user["token"]}

    def ep_users_show(self, me, p: dict, _files):
        if p.get("userIds") is not None:
            ids = _opt_id_list(p, "userIds", 100) or []
            return [self.pack_user(self.users[i]) for i in ids if i in self.users]
        user_id = _opt_str(p, "userId")
        if user_id is not None:
            user = self.users.get(user_id)
        else:
            username = _opt_str(p, "username")
            if username is None:
                raise _invalid("userId", "must have required property 'userId' or 'username'")
            host = p.get("host")
            user = self.user_by_username(username) if host is None else None  # no remote users here
        if user is None:
            raise _client("NO_SUCH_USER", "No such user.", status=404)
        return self.pack_user(user)

    def ep_i(self, me, _p, _files):
        return self.pack_user(me, detailed=True)

    def ep_i_update(self, me, p: dict, _files):
        changes = {}
        if "name" in p:
            changes["name"] = _opt_str(p, "name", min_len=1, max_len=50)
        if "description" in p:
            changes["description"] = _opt_str(p, "description", min_len=1, max_len=1500)
        if "isBot" in p:
            is_bot = _opt_bool(p, "isBot")
            if is_bot is None:
                raise _invalid("isBot", "must be boolean")
            changes["isBot"] = is_bot
        for key, what in (("avatarId", "AVATAR"), ("bannerId", "BANNER")):
            if key not in p:
                continue
            fid = _opt_str(p, key)
            if fid is not None:
                f = self.files.get(fid)
                if f is None or f["userId"] != me["id"]:
                    raise _client(f"NO_SUCH_{what}", f"No such {what.lower()} file.")
                if not f["type"].startswith("image/"):
                    raise _client(f"{what}_NOT_AN_IMAGE", f"The file specified as an {what.lower()} is not an image.")
            changes[key] = fid
        me.update(changes)  # all checks passed: apply atomically
        return self.pack_user(me, detailed=True)

    def ep_drive_create(self, me, p: dict, files):
        part = next((f for f in files or () if f["field"] == "file"), None)
        if part is None:
            raise _invalid("file", "a multipart/form-data 'file' part is required")
        force = _form_bool(p, "force")
        sensitive = _form_bool(p, "isSensitive")
        name = _opt_str(p, "name", max_len=200) or part["filename"] or "untitled"
        data = part["data"]
        md5 = hashlib.md5(data).hexdigest()
        existing = self.file_by_md5.get((me["id"], md5))
        if existing and not force:
            return self.pack_file(self.files[existing])
        fid, ms = self.new_id()
        f = {"id": fid, "createdAt": _iso(ms), "name": name, "type": _sniff_type(data, part["type"]),
             "md5": md5, "size": len(data), "isSensitive": sensitive, "comment": _opt_str(p, "comment"),
             "url": f"{self.base_url}/files/{fid}", "thumbnailUrl": None, "folderId": None,
             "userId": me["id"], "properties": {}, "content": data}
        self.files[fid] = f
        self.file_by_md5.setdefault((me["id"], md5), fid)
        return self.pack_file(f)

    def ep_upload_from_url(self, me, p: dict, _files):
        # 204 at once: a real server fetches asynchronously and reports only on the stream.
        _req_str(p, "url", min_len=1)

    def ep_notes_create(self, me, p: dict, _files):
        text = _opt_str(p, "text")
        cw = _opt_str(p, "cw", max_len=MAX_CW_LENGTH[self.flavor])
        visibility = p.get("visibility", "public")
        if visibility not in ("public", "home", "followers", "specified"):
            raise _invalid("visibility", "must be equal to one of the allowed values")
        reply_id, renote_id = _opt_str(p, "replyId"), _opt_str(p, "renoteId")
        file_ids = _opt_id_list(p, "fileIds", 16) or []
        visible_ids = p.get("visibleUserIds") or []
        if not isinstance(visible_ids, list):
            raise _invalid("visibleUserIds", "must be array")
        local_only = bool(_opt_bool(p, "localOnly"))
        _opt_bool(p, "noExtractMentions")
        if text is not None and len(text) > self.max_note_length:
            if self.flavor == "sharkey":
                raise _client("MAX_LENGTH", "You tried posting a note which is too long.")
            raise _invalid("text", f"must NOT have more than {self.max_note_length} characters")
        if (text is None or not text.strip()) and renote_id is None and not file_ids:
            raise _invalid("text", "must not be blank without renoteId or fileIds")
        for fid in file_ids:
            f = self.files.get(fid)
            if f is None or f["userId"] != me["id"]:
                raise _client("NO_SUCH_FILE", "Some files are not found.")
        renote = reply = None
        if renote_id is not None:
            renote = self.notes.get(renote_id)
            if renote is None:
                raise _client("NO_SUCH_RENOTE_TARGET", "No such renote target.")
            if self.is_pure_renote(renote):
                raise _client("CANNOT_RENOTE_TO_A_PURE_RENOTE", "You can not Renote a pure Renote.")
        if reply_id is not None:
            reply = self.notes.get(reply_id)
            if reply is None:
                raise _client("NO_SUCH_REPLY_TARGET", "No such reply target.")
            if self.is_pure_renote(reply):
                raise _client("CANNOT_REPLY_TO_A_PURE_RENOTE", "You can not reply to a pure Renote.")
        text = (text.strip() or None) if text is not None else None  # servers store trimmed text
        nid, ms = self.new_id()  # createdAt is the time of the call; any createdAt param is ignored
        note = {"id": nid, "createdAt": _iso(ms), "userId": me["id"], "text": text, "cw": cw,
                "visibility": visibility, "localOnly": local_only, "replyId": reply_id, "renoteId": renote_id,
                "fileIds": file_ids, "visibleUserIds": list(visible_ids) if visibility == "specified" else [],
                "reactions": {}, "renoteCount": 0, "repliesCount": 0}
        self.notes[nid] = note
        self.notes_by_user[me["id"]].append(nid)  # ids increase, so each list stays sorted
        me["notesCount"] += 1
        if renote is not None:
            renote["renoteCount"] += 1
        if reply is not None:
            reply["repliesCount"] += 1
        return {"createdNote": self.pack_note(note)}

    def normalize_reaction(self, reaction: str) -> str:
        m = _CUSTOM_EMOJI_RE.fullmatch(reaction)
        if m:
            return f":{m.group(1)}@.:" if m.group(1) in self.custom_emojis else FALLBACK_REACTION
        return reaction if _is_unicode_emoji(reaction) else FALLBACK_REACTION

    def ep_reactions_create(self, me, p: dict, _files):
        note_id = _req_str(p, "noteId")
        reaction = p.get("reaction")
        if not isinstance(reaction, str):
            raise _invalid("reaction", "must be string")
        note = self.notes.get(note_id)
        if note is None:
            raise _client("NO_SUCH_NOTE", "No such note.")
        reaction = self.normalize_reaction(reaction)
        key = (me["id"], note_id)
        old = self.reactions.get(key)
        if old == reaction:
            raise _client("ALREADY_REACTED", "You are already reacting to that note.")
        if old is not None:  # one reaction per user per note: a different one replaces it (as Misskey does)
            note["reactions"][old] -= 1
            if not note["reactions"][old]:
                del note["reactions"][old]
        self.reactions[key] = reaction
        note["reactions"][reaction] = note["reactions"].get(reaction, 0) + 1

    def ep_following_create(self, me, p: dict, _files):
        user_id = _req_str(p, "userId")
        if user_id == me["id"]:
            raise _client("FOLLOWEE_IS_YOURSELF", "Followee is yourself.")
        followee = self.users.get(user_id)
        if followee is None:
            raise _client("NO_SUCH_USER", "No such user.")
        if (me["id"], user_id) in self.follows:
            raise _client("ALREADY_FOLLOWING", "You are already following that user.")
        self.follows.add((me["id"], user_id))
        me["followingCount"] += 1
        followee["followersCount"] += 1
        return self.pack_user(followee)

    def ep_notes_show(self, me, p: dict, _files):
        note = self.notes.get(_req_str(p, "noteId"))
        if note is None:
            raise _client("NO_SUCH_NOTE", "No such note.")
        return self.pack_note(note)

    def ep_users_notes(self, me, p: dict, _files):
        user_id = _req_str(p, "userId")
        limit = p.get("limit", 10)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 100:
            raise _invalid("limit", "must be an integer from 1 to 100")
        since, until = _opt_str(p, "sinceId"), _opt_str(p, "untilId")
        with_replies = bool(_opt_bool(p, "withReplies"))  # default false: replies are left out
        with_renotes = _opt_bool(p, "withRenotes") is not False
        if user_id not in self.users:
            raise _client("NO_SUCH_USER", "No such user.")
        ids = [i for i in self.notes_by_user.get(user_id, [])
               if (with_replies or self.notes[i]["replyId"] is None)
               and (with_renotes or not self.is_pure_renote(self.notes[i]))]
        window = ids[bisect_right(ids, since) if since else 0: bisect_left(ids, until) if until else len(ids)]
        # sinceId alone pages forward: the oldest `limit` after it (still returned newest first).
        chosen = window[:limit] if since and not until else window[-limit:]
        return [self.pack_note(self.notes[i]) for i in reversed(chosen)]

    def ep_meta(self, me, _p, _files):
        return {"name": "botpipeline test server", "version": VERSIONS[self.flavor],
                "maxNoteTextLength": self.max_note_length, "policies": dict(self.policies)}

    def ep_update_policies(self, me, p: dict, _files):
        policies = p.get("policies")
        if not isinstance(policies, dict):
            raise _invalid("policies", "must be object")
        factor = policies.get("rateLimitFactor", self.policies["rateLimitFactor"])
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or factor < 0:
            raise _invalid("policies", "rateLimitFactor must be a number >= 0")
        self.policies.update(policies)
        self.policies["rateLimitFactor"] = float(factor)


# -------------------------------------------------------------------------------------------- HTTP

class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    owner: MisskeyTestServer
    stopped = False

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], OSError):  # a client killed mid-request: expected
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "MisskeyTestServer/1.0"
    disable_nagle_algorithm = True
    wbufsize = 1 << 16  # one send per response; handle_one_request flushes after each request
    server: _HTTPServer

    def log_message(self, format, *args):  # the suite pushes thousands of requests: keep stderr quiet
        pass

    def setup(self):
        super().setup()
        self.server.owner._track(self.server, self.connection, True)

    def finish(self):
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.owner._track(self.server, self.connection, False)

    def do_POST(self):
        self.server.owner._handle_post(self)

    def do_GET(self):
        self.server.owner._handle_get(self)


class MisskeyTestServer:
    """See the module docstring. Use as a context manager or call ``start()`` / ``stop()``."""

    _INTERNAL_HEADER = "X-Test-Server-Internal"

    def __init__(self, *, flavor: str = "sharkey", limits: dict | None = None, rate_limit_scale: float = 1.0,
                 faults: FaultConfig | None = None, max_note_length: int = 3000, host: str = "127.0.0.1",
                 port: int = 0, latency: dict[str, float | tuple[float, float]] | None = None,
                 seed: int = 0):
        if flavor not in VERSIONS:
            raise ValueError(f"flavor must be one of {sorted(VERSIONS)}")
        self.flavor = flavor
        self._inst = _Instance(flavor, max_note_length, float(rate_limit_scale))
        self._limits = dict(DEFAULT_LIMITS)
        if flavor == "misskey":  # Misskey 2025.7 leaves these unlimited
            for endpoint in MISSKEY_UNLIMITED:
                self._limits[endpoint] = None
        self._default_limit = SHARKEY_DEFAULT_LIMIT if flavor == "sharkey" else None  # Misskey: unlimited
        for key, value in (limits or {}).items():
            value = tuple(value) if value is not None else None
            if key == "*":
                self._default_limit = value
            else:
                self._limits[key] = value
        self._buckets = _LeakyBuckets()
        self._windows = _SlidingWindows()
        # Seconds an endpoint takes before it acts (a number, or (low, high) drawn per call).
        self.latency = dict(latency or {})
        self._latency_rng = random.Random(seed)
        self._host, self._port = host, port
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._conns: set = set()
        self._conn_lock = threading.Lock()
        self._secret = secrets.token_hex(16)
        self._seq = 0
        self._fault_rng = random.Random(0)
        self._faults: FaultConfig | None = None
        self.faults = faults
        self.url: str = ""
        self.admin_token: str = ""
        self.on_request: Callable[[int, str], str | None] | None = None
        self.kill_hook: Callable[[], None] | None = None
        self.request_counts: collections.Counter = collections.Counter()
        self.fault_counts: collections.Counter = collections.Counter()

    # ---- lifecycle
    def start(self) -> MisskeyTestServer:
        if self._httpd is not None:
            return self
        httpd = _HTTPServer((self._host, self._port), _Handler)
        httpd.owner = self
        self._port = httpd.server_address[1]  # a restart after stop() keeps the port (and the state)
        host = "127.0.0.1" if self._host in ("", "0.0.0.0") else self._host
        self.url = f"http://{host}:{self._port}"
        self._inst.base_url = self.url
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"misskey-test-server:{self._port}", daemon=True)
        self._thread.start()
        if not self.admin_token:
            self._bootstrap()
        return self

    def _bootstrap(self) -> None:
        # The root admin comes from a real anonymous HTTP call, as on a fresh instance; the internal
        # header keeps it out of faults, on_request and the counters.
        body = json.dumps({"username": "admin", "password": secrets.token_urlsafe(12)}).encode()
        req = urllib.request.Request(self.url + "/api/admin/accounts/create", data=body, method="POST",
                                     headers={"Content-Type": "application/json", self._INTERNAL_HEADER: self._secret})
        with urllib.request.urlopen(req, timeout=10) as resp:
            self.admin_token = json.loads(resp.read())["token"]

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        with self._conn_lock:
            httpd.stopped = True
            conns = [c for (srv, c) in self._conns if srv is httpd]
        for conn in conns:  # kept-alive client connections must die with the server
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _track(self, httpd: _HTTPServer, conn, add: bool) -> None:
        with self._conn_lock:
            if add:
                self._conns.add((httpd, conn))
                if httpd.stopped:  # accepted just before stop() took its snapshot
                    try:
                        conn.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
            else:
                self._conns.discard((httpd, conn))

    # ---- faults
    @property
    def faults(self) -> FaultConfig | None:
        return self._faults

    @faults.setter
    def faults(self, config: FaultConfig | None) -> None:
        with self._inst.lock:
            self._faults = config
            self._fault_rng = random.Random(config.seed if config else 0)

    def _draw_fault(self, endpoint: str) -> tuple[str | None, float]:
        """(kind or None, slow_seconds), drawn from the seeded generator under the lock."""
        with self._inst.lock:
            cfg = self._faults
            if cfg is None or cfg.rate <= 0 or (cfg.endpoints is not None and endpoint not in cfg.endpoints):
                return None, 0.0
            if self._fault_rng.random() >= cfg.rate:
                return None, 0.0
            kind = self._fault_rng.choice(cfg.kinds)
            self.fault_counts[kind] += 1
            return kind, cfg.slow_seconds

    # ---- request handling
    def _handle_post(self, h: _Handler) -> None:
        path = h.path.split("?", 1)[0]
        body, too_large = self._read_body(h)
        if not path.startswith("/api/"):
            return self._send(h, 404, ApiError(404, "NOT_FOUND", "Not found.").body(), {})
        endpoint = path[len("/api/"):].rstrip("/")
        action = fault = None
        if h.headers.get(self._INTERNAL_HEADER) != self._secret:
            with self._inst.lock:
                self._seq += 1
                seq = self._seq
                self.request_counts[endpoint] += 1
            hook = self.on_request
            action = hook(seq, endpoint) if hook is not None else None
            if action == "kill_before":
                self._kill()
                return self._drop(h)
            fault, slow_seconds = self._draw_fault(endpoint)
            if action == "kill_after":
                # the kill must land: a fault drawn for this request (a 5xx or a drop before
                # the work) would end it first, leaving a doomed process alive to finish
                fault = None
            if action in FAULT_KINDS:  # the hook may also pick a fault for this exact request
                fault, slow_seconds = action, (self._faults.slow_seconds if self._faults else 0.5)
                with self._inst.lock:
                    self.fault_counts[action] += 1
            if fault == "error500":
                return self._send(h, 500, _internal("injected fault", "FaultInjection").body(), {})
            if fault == "drop":
                return self._drop(h)
            if fault == "slow":
                time.sleep(slow_seconds)
        delay = self._delay(endpoint)
        if delay:  # outside the lock: slow calls overlap, as on a real server
            time.sleep(delay)
        status, obj, headers = self._process(endpoint, h, body, too_large)
        if action == "kill_after":
            self._kill()
            return self._drop(h)
        if fault == "drop_after":
            return self._drop(h)
        if fault == "error500_after":  # e.g. a proxy that gave up after the server acted
            return self._send(h, 500, _internal("injected fault after the work", "FaultInjection").body(), {})
        if fault == "cut_after" and obj is not None:
            return self._send(h, status, obj, headers, cut=True)
        if fault == "cut_after":
            return self._drop(h)
        self._send(h, status, obj, headers)

    def _delay(self, endpoint: str) -> float:
        value = self.latency.get(endpoint, self.latency.get("*"))
        if value is None:
            return 0.0
        if isinstance(value, (int, float)):
            return float(value)
        with self._inst.lock:
            return self._latency_rng.uniform(*value)

    def _handle_get(self, h: _Handler) -> None:
        path = h.path.split("?", 1)[0]
        if path.startswith("/api/"):
            return self._send(h, 405, _client("METHOD_NOT_ALLOWED", "Use POST.", 405).body(), {})
        if path.startswith("/files/"):
            with self._inst.lock:
                f = self._inst.files.get(path[len("/files/"):])
            if f is not None:
                h.send_response(200)
                h.send_header("Content-Type", f["type"])
                h.send_header("Content-Length", str(f["size"]))
                h.end_headers()
                h.wfile.write(f["content"])
                return
        self._send(h, 404, ApiError(404, "NOT_FOUND", "Not found.").body(), {})

    def _kill(self) -> None:
        if self.kill_hook is not None:
            self.kill_hook()

    @staticmethod
    def _drop(h: _Handler) -> None:
        h.close_connection = True  # nothing was written; the socket closes after this request

    @staticmethod
    def _read_body(h: _Handler) -> tuple[bytes, bool]:
        is_multipart = h.headers.get("Content-Type", "").lower().startswith("multipart/")
        limit = MULTIPART_BODY_LIMIT if is_multipart else JSON_BODY_LIMIT
        if "chunked" in h.headers.get("Transfer-Encoding", "").lower():
            chunks, total = [], 0
            while True:
                size = int(h.rfile.readline(65537).split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while h.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                data = h.rfile.read(size)
                h.rfile.readline()
                total += size
                if total <= limit:
                    chunks.append(data)
            return (b"", True) if total > limit else (b"".join(chunks), False)
        try:
            length = int(h.headers.get("Content-Length") or 0)
        except ValueError:
            h.close_connection = True
            return b"", False
        if length <= limit:
            return h.rfile.read(length), False
        if length <= _DRAIN_LIMIT:  # read it so the client sees the 413 rather than a reset
            while length > 0:
                chunk = h.rfile.read(min(length, 1 << 16))
                if not chunk:
                    break
                length -= len(chunk)
        else:
            h.close_connection = True
        return b"", True

    def _process(self, endpoint: str, h: _Handler, body: bytes, too_large: bool) -> tuple[int, Any, dict]:
        headers: dict[str, str] = {}
        try:
            if too_large:
                raise ApiError(413, "PAYLOAD_TOO_LARGE", "Request body too large.")
            spec = _ENDPOINTS.get(endpoint)
            if spec is None:
                raise ApiError(404, "NO_SUCH_ENDPOINT", "No such endpoint.")
            method, access = spec
            params, files = self._parse_body(h, body)
            me_id = self._authenticate(h, params)
            # Order as in ApiCallService: authenticate, rate limit, then credential/role checks.
            headers = self._rate_limit(endpoint, me_id, h.client_address[0])
            with self._inst.lock:
                me = self._inst.users[me_id] if me_id else None
                if access in ("required", "admin") and me is None:
                    raise ApiError(401, "CREDENTIAL_REQUIRED", "Credential required.")
                if access == "admin" and not me["isAdmin"]:
                    raise ApiError(403, "ROLE_PERMISSION_DENIED", "You are not assigned to a required role.",
                                   kind="permission")
                result = getattr(self._inst, method)(me, params, files)
            return (204, None, headers) if result is None else (200, result, headers)
        except ApiError as e:
            headers.update(e.headers)
            return e.status, e.body(), headers
        except Exception as e:  # noqa: BLE001 - a bug here must still answer like a server, not hang the client
            return 500, _internal(f"{type(e).__name__}: {e}").body(), headers

    @staticmethod
    def _parse_body(h: _Handler, body: bytes) -> tuple[dict, list | None]:
        ctype = h.headers.get("Content-Type", "")
        if ctype.lower().startswith("multipart/form-data"):
            return _parse_multipart(ctype, body)
        if not body.strip():
            return {}, None
        try:
            params = json.loads(body)
        except ValueError:
            raise _invalid("body", "must be valid JSON") from None
        if not isinstance(params, dict):
            raise _invalid("body", "must be object")
        return params, None

    def _authenticate(self, h: _Handler, params: dict) -> str | None:
        auth = h.headers.get("Authorization", "")
        token = auth[len("Bearer "):] if auth.startswith("Bearer ") else params.get("i")
        if token is None:
            return None
        if not isinstance(token, str):
            raise _invalid("i", "must be string")
        with self._inst.lock:
            user_id = self._inst.tokens.get(token)
        if user_id is None:
            raise ApiError(401, "AUTHENTICATION_FAILED", "Authentication failed. Please ensure your token is correct.")
        return user_id

    def _rate_limit(self, endpoint: str, me_id: str | None, ip: str) -> dict[str, str]:
        spec = self._limits.get(endpoint, self._default_limit)
        factor = self._inst.policies["rateLimitFactor"]
        if spec is None or factor <= 0:
            return {}
        size, duration_ms = spec[:2]
        min_interval = spec[2] * factor if len(spec) > 2 else 0
        actor = "ip:" + ip if endpoint == "signin-flow" or me_id is None else me_id
        if self.flavor == "misskey":
            return self._misskey_limit(endpoint, actor, size, duration_ms * factor, min_interval)
        blocked, remaining, reset_ms, full_ms = self._buckets.hit(
            (endpoint, actor), size, duration_ms * factor)
        headers = {"X-RateLimit-Remaining": str(remaining), "X-RateLimit-Clear": f"{full_ms / 1000:.3f}"}
        if not blocked and min_interval:
            blocked, _, reset_ms, _ = self._buckets.hit((endpoint + ":min", actor), 1, min_interval)
        if not blocked:
            return headers
        headers["Retry-After"] = str(max(1, math.ceil(reset_ms / 1000)))
        headers["X-RateLimit-Reset"] = f"{reset_ms / 1000:.3f}"
        info = {"resetSec": math.ceil(reset_ms / 1000), "resetMs": math.ceil(reset_ms),
                "fullResetSec": math.ceil(full_ms / 1000), "fullResetMs": math.ceil(full_ms)}
        raise self._limited(endpoint, info, headers)

    def _misskey_limit(self, endpoint: str, actor: str, size: int, duration_ms: float,
                       min_interval: float) -> dict[str, str]:
        """A sliding window per (actor, endpoint) that logs refused calls too; no headers but
        Retry-After on a 429. Sign-in answers its own 429 without ``info``."""
        blocked, _, reset_ms = self._windows.hit((endpoint, actor), size, duration_ms)
        if not blocked and min_interval:
            blocked, _, reset_ms = self._windows.hit((endpoint + ":min", actor), 1, min_interval)
            size = 1
        if not blocked:
            return {}
        headers = {"Retry-After": str(max(1, math.ceil((reset_ms - time.time() * 1000) / 1000)))}
        info = {"remaining": 0, "reset": math.ceil(reset_ms / 1000), "resetMs": math.ceil(reset_ms), "total": size}
        raise self._limited(endpoint, info, headers)

    def _limited(self, endpoint: str, info: dict, headers: dict) -> ApiError:
        if endpoint == "signin-flow":
            if self.flavor == "misskey":
                return ApiError(429, "TOO_MANY_AUTHENTICATION_FAILURES",
                                "Too many failed attempts to sign in. Try again later.",
                                err_id="22d05606-fbcf-421a-a2db-b32610dcfd1b")
            return ApiError(429, "TOO_MANY_AUTHENTICATION_FAILURES",
                            "Too many failed attempts to sign in. Try again later.", info=info,
                            headers=headers, err_id="22d05606-fbcf-421a-a2db-b32610dcfd1b")
        return ApiError(429, "RATE_LIMIT_EXCEEDED", "Rate limit exceeded. Please try again later.",
                        info=info, headers=headers)

    @staticmethod
    def _send(h: _Handler, status: int, obj: Any, headers: dict[str, str], cut: bool = False) -> None:
        """``cut``: announce the whole body, send half of it and close (the work is done)."""
        body = b"" if obj is None else json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()
        if cut:
            h.close_connection = True
        try:
            h.send_response(status)
            for key, value in headers.items():
                h.send_header(key, value)
            if status != 204:  # a 204 carries neither a body nor a Content-Length
                h.send_header("Content-Type", "application/json; charset=utf-8")
                h.send_header("Content-Length", str(len(body)))
            if h.close_connection:
                h.send_header("Connection", "close")
            h.end_headers()
            if body:
                h.wfile.write(body[:len(body) // 2] if cut else body)
        except OSError:
            h.close_connection = True

    # ---- inspection: direct, thread-safe, no HTTP and no faults
    def users(self) -> list[dict]:
        with self._inst.lock:
            return [dict(self._inst.pack_user(u, detailed=True), isRoot=u["isRoot"])
                    for u in self._inst.users.values()]

    def notes(self) -> list[dict]:
        with self._inst.lock:
            return [self._inst.pack_note(n) for n in self._inst.notes.values()]

    def follows(self) -> set[tuple[str, str]]:
        with self._inst.lock:
            return set(self._inst.follows)

    def reactions(self) -> dict[tuple[str, str], str]:
        with self._inst.lock:
            return dict(self._inst.reactions)

    def files(self) -> list[dict]:
        with self._inst.lock:
            return [self._inst.pack_file(f) for f in self._inst.files.values()]

    def user_by_username(self, username: str) -> dict | None:
        with self._inst.lock:
            u = self._inst.user_by_username(username)
            return dict(self._inst.pack_user(u, detailed=True), isRoot=u["isRoot"]) if u else None

    def mint_token(self, username: str) -> str:
        """Test-only: what an operator does in the web UI (Settings > API) to recover a lost token."""
        with self._inst.lock:
            u = self._inst.user_by_username(username)
            if u is None:
                raise KeyError(username)
            return self._inst.new_token(u["id"])

    def change_password(self, username: str, password: str) -> None:
        """Test-only: an operator changes the account's password in the control panel."""
        with self._inst.lock:
            u = self._inst.user_by_username(username)
            if u is None:
                raise KeyError(username)
            salt = secrets.token_bytes(8)
            u["password"] = salt.hex() + ":" + hashlib.sha256(salt + password.encode()).hexdigest()

    def grant_admin(self, username: str) -> None:
        """Test-only: assign the admin role (control panel), e.g. to test Misskey's root-only rule."""
        with self._inst.lock:
            u = self._inst.user_by_username(username)
            if u is None:
                raise KeyError(username)
            u["isAdmin"] = True

    @property
    def custom_emojis(self) -> set[str]:
        """Names of the instance's custom emojis (``:name:`` reactions to others fall back to ❤)."""
        return self._inst.custom_emojis


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--flavor", choices=sorted(VERSIONS), default="sharkey")
    ap.add_argument("--rate-limit-scale", type=float, default=1.0)
    ap.add_argument("--limits", default=None, help='JSON, e.g. {"notes/create": [300, 3600000], "*": null}')
    ap.add_argument("--max-note-length", type=int, default=3000)
    ap.add_argument("--latency", default=None,
                    help='JSON seconds per endpoint, e.g. {"admin/accounts/create": [0.8, 1.2], "*": 0.005}')
    args = ap.parse_args(argv)
    limits = json.loads(args.limits) if args.limits else None
    latency = {k: tuple(v) if isinstance(v, list) else v
               for k, v in json.loads(args.latency).items()} if args.latency else None
    server = MisskeyTestServer(flavor=args.flavor, limits=limits, rate_limit_scale=args.rate_limit_scale,
                               max_note_length=args.max_note_length, host=args.host, port=args.port,
                               latency=latency).start()
    print(json.dumps({"url": server.url, "admin_token": server.admin_token}), flush=True)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    while not done.wait(0.5):
        pass
    server.stop()


if __name__ == "__main__":
    main()
