"""Account tokens and passwords, kept outside DuckDB in a file only its owner can read.

``admin/accounts/create`` shows a new account's token once. The store keeps it, and the
password we chose, in ``<dir>/<server>.json`` (directory 0700, file 0600), written atomically
and fsynced before the next call, so a crash cannot lose a token the file already had. The
password is written *before* the account is created, with the time it was chosen: if a crash
then loses the token, the publisher signs in with it (README: "Lost account tokens"), and an
account created before that time is someone else's.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
import threading
from datetime import UTC, datetime
from pathlib import Path

from botpipeline.clients.sharkey.client import server_slug


def default_token_dir() -> Path:
    env = os.environ.get("SHARKEY_TOKEN_STORE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "botpipeline" / "sharkey-tokens"


class TokenStoreError(RuntimeError):
    pass


class TokenStore:
    """``{username: {"password": ..., "token": ..., "user_id": ...}}`` for one server."""

    def __init__(self, directory: str | Path, server: str):
        self.directory = Path(directory)
        self.path = self.directory / f"{server_slug(server)}.json"
        self._lock = threading.Lock()
        self._data = self._load()

    def __repr__(self) -> str:
        return f"TokenStore({str(self.path)!r}, {len(self._data)} accounts)"

    def _load(self) -> dict:
        if not self.path.exists():
            return {}
        mode = self.path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise TokenStoreError(f"{self.path} is readable by other users "
                                  f"(mode {stat.filemode(mode)}); run chmod 600 on it")
        try:
            return json.loads(self.path.read_text())
        except json.JSONDecodeError as exc:
            raise TokenStoreError(f"{self.path} is not valid JSON (line {exc.lineno}); "
                                  f"restore it from a backup") from None

    def _save(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.directory, 0o700)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tokens-", suffix=".tmp")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w") as handle:
                json.dump(self._data, handle, indent=1, sort_keys=True)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
            dir_fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def entry(self, username: str) -> dict:
        with self._lock:
            return dict(self._data.get(username.lower(), {}))

    def token(self, username: str) -> str | None:
        return self.entry(username).get("token")

    def password_for(self, username: str, new_password) -> str:
        """The account's password, choosing and saving one first if it has none."""
        with self._lock:
            entry = self._data.setdefault(username.lower(), {})
            if "password" not in entry:
                entry["password"] = new_password()
                entry["password_set_at"] = datetime.now(UTC).isoformat()
                self._save()
            return entry["password"]

    def put(self, username: str, **values: str) -> None:
        with self._lock:
            self._data.setdefault(username.lower(), {}).update(values)
            self._save()
