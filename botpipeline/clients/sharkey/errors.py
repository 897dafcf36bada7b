"""Typed Sharkey/Misskey API errors, built from the server's error body.

Messages carry the endpoint, the HTTP status and the server's code and message, never a token.
"""

from __future__ import annotations

from botpipeline.clients.http import ApiError


class SharkeyError(ApiError):
    """The server answered with an error body ``{"error": {message, code, id, kind, info}}``."""

    def __init__(self, endpoint: str, status: int, code: str | None, message: str,
                 kind: str | None = None, info: dict | None = None):
        super().__init__(status, f"{endpoint}: {code or 'error'}: {message}", code)
        self.endpoint, self.kind, self.info = endpoint, kind, info or {}


class AuthenticationError(SharkeyError):
    """401: no token or a bad token (CREDENTIAL_REQUIRED, AUTHENTICATION_FAILED)."""


class PermissionDenied(SharkeyError):
    """403 or ACCESS_DENIED: the token may not do this (e.g. not an admin, or not root)."""


class InvalidParam(SharkeyError):
    """400 INVALID_PARAM (``info.param`` names the field) or a text over the length limit."""


class NotFound(SharkeyError):
    """A referenced object does not exist: NO_SUCH_USER, NO_SUCH_NOTE, NO_SUCH_REPLY_TARGET…"""


class AlreadyDone(SharkeyError):
    """The action was already applied: ALREADY_FOLLOWING, ALREADY_REACTED. Treat as success."""


class DuplicateUsername(SharkeyError):
    """The username is taken (a 500 INTERNAL_ERROR whose ``info.e.message`` says so)."""


class RateLimited(SharkeyError):
    """429; ``retry_in`` is how long the server asks us to wait, in seconds."""

    def __init__(self, endpoint: str, retry_in: float, message: str = "rate limited"):
        super().__init__(endpoint, 429, "RATE_LIMIT_EXCEEDED", message, "client")
        self.retry_in = retry_in


class ServerError(SharkeyError):
    """5xx that is not a known conflict; may or may not have been applied."""


class Unreachable(SharkeyError):
    """No answer (connection refused or dropped, timeout) after every retry."""

    def __init__(self, endpoint: str, what: str):
        super().__init__(endpoint, 0, "UNREACHABLE", what, "server")


class Ambiguous(SharkeyError):
    """A non-idempotent call failed in transit (5xx, dropped connection, timeout): the server
    may have applied it. The caller must look before trying again."""

    def __init__(self, endpoint: str, why: str):
        super().__init__(endpoint, 0, "AMBIGUOUS", why, "server")


ALREADY_DONE = {"ALREADY_FOLLOWING", "ALREADY_REACTED"}
NOT_FOUND = {"NO_SUCH_USER", "NO_SUCH_NOTE", "NO_SUCH_REPLY_TARGET", "NO_SUCH_RENOTE_TARGET",
             "NO_SUCH_FILE", "NO_SUCH_AVATAR", "NO_SUCH_BANNER"}
DUPLICATE_USERNAME = {"DUPLICATED_USERNAME", "USED_USERNAME"}


def error_from_body(endpoint: str, status: int, body: object) -> SharkeyError:
    """The typed error for an error response (``body`` is the parsed JSON or None)."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        cls = ServerError if status >= 500 else SharkeyError
        return cls(endpoint, status, None, f"HTTP {status} without an error body")
    code, message = error.get("code"), str(error.get("message") or "")
    kind, info = error.get("kind"), error.get("info") if isinstance(error.get("info"), dict) \
        else {}
    inner = info.get("e", {}).get("message") if isinstance(info.get("e"), dict) else None
    args = (endpoint, status, code, message, kind, info)
    if code in DUPLICATE_USERNAME or inner in DUPLICATE_USERNAME:
        return DuplicateUsername(endpoint, status, inner if inner in DUPLICATE_USERNAME
                                 else code, message, kind, info)
    if status == 401:
        return AuthenticationError(*args)
    if status == 403 or code in {"ACCESS_DENIED", "PERMISSION_DENIED",
                                 "ROLE_PERMISSION_DENIED"}:
        return PermissionDenied(*args)
    if code in ALREADY_DONE:
        return AlreadyDone(*args)
    if code in NOT_FOUND or status == 404:
        return NotFound(*args)
    if code in {"INVALID_PARAM", "MAX_LENGTH"}:
        return InvalidParam(*args)
    if status >= 500:
        return ServerError(*args)
    return SharkeyError(*args)
