"""Publish a plan (transforms/sharkey/plan.py) to a Sharkey server, resumably.

Every object becomes one task (scheduler.py) whose success is written to the ledger at once.
Re-running skips what the ledger holds. Every call whose answer was not seen (a crash, a
timeout, a dropped connection, an answer cut off mid-body, a 5xx after the server may have
acted) is settled against the server before it is tried again, so nothing exists twice:

- notes, replies, quotes and renotes: the account's notes on the server (replies and renotes
  included, paged back over its whole history) are matched with the planned notes not yet in
  the ledger by content (text, reply target, renote target, files) and adopted; only what is
  not there is posted. This runs for every account before a resumed publish posts anything,
  and after each lost answer;
- accounts: ``users/show`` says whether the account exists; if it does and its token is not
  in the store, the publisher signs in with the password it stored before creating it
  (``signin-flow``, paced by its per-IP limit). Only a password changed on the server
  (``TOKEN_LOST``) or a name someone else owns (``USERNAME_TAKEN``) stops an account, with
  what to do;
- follows and reactions: the server refuses a repeat (ALREADY_FOLLOWING / ALREADY_REACTED,
  counted as done); uploads are de-duplicated by md5; profile updates are idempotent.

Each account posts its ready notes in dataset order; a reply waits only for its parent.
Accounts are created ``create_workers`` at a time (account creation is slow on real servers).
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime

import polars as pl

from botpipeline.clients.sharkey.client import SharkeyClient
from botpipeline.clients.sharkey.errors import (Ambiguous, AlreadyDone, AuthenticationError,
                                                DuplicateUsername, NotFound, PermissionDenied,
                                                RateLimited, SharkeyError, Unreachable)
from botpipeline.clients.sharkey.limits import limit_for, lower_bound_seconds
from botpipeline.clients.sharkey.scheduler import (Abort, Outcome, Retry, Task, TaskFailed,
                                                   run_tasks)
from botpipeline.clients.sharkey.tokens import TokenStore
from botpipeline.storage.sharkey_ledger import Ledger
from botpipeline.transforms.sharkey.images import avatar_png, banner_png
from botpipeline.transforms.sharkey.plan import ADMIN, Plan

log = logging.getLogger(__name__)

# What each selectable part of a publish creates (the Dagster assets of the sharkey group).
PARTS = {"accounts": ("account",), "profiles": ("avatar", "banner", "profile"),
         "notes": ("note",), "renotes": ("renote",), "follows": ("follow",),
         "reactions": ("reaction",)}
LEDGER_KIND = {"renote": "note"}
AMBIGUOUS_RETRIES = 8
PAGE = 100  # users/notes' largest page


@dataclass
class PublishReport:
    outcome: Outcome
    planned: Counter = field(default_factory=Counter)
    before: Counter = field(default_factory=Counter)      # already in the ledger at start
    reconciled: Counter = field(default_factory=Counter)  # adopted instead of re-created
    lower_bound: dict = field(default_factory=dict)
    signins: int = 0                                      # tokens recovered by signing in
    rate_limited: Counter = field(default_factory=Counter)  # 429s per endpoint

    def failed(self, kind: str) -> list[Task]:
        return [t for t in self.outcome.failed + self.outcome.blocked if t.kind == kind]

    def summary(self) -> dict[str, dict[str, int]]:
        return {kind: {"planned": n, "already_published": self.before[kind],
                       "published_now": self.outcome.done[kind],
                       "adopted_after_crash": self.reconciled[kind],
                       "failed": sum(t.kind == kind for t in self.outcome.failed),
                       "blocked": sum(t.kind == kind for t in self.outcome.blocked)}
                for kind, n in sorted(self.planned.items())}


class Publisher:
    def __init__(self, plan: Plan, client: SharkeyClient, ledger: Ledger, tokens: TokenStore,
                 *, visibility: str = "public", mark_as_bot: bool = False,
                 local_only: bool = False, create_workers: int = 8,
                 logger: logging.Logger | None = None):
        if create_workers < 1:
            raise ValueError("create_workers must be at least 1")
        self.plan, self.client, self.ledger, self.tokens = plan, client, ledger, tokens
        self.visibility, self.mark_as_bot, self.local_only = visibility, mark_as_bot, local_only
        self.create_workers = create_workers
        self.signins = 0
        self._on_server: set[str] = set()  # usernames seen to exist (skip re-creating them)
        self.log = logger or log
        self._ids = ledger.done()
        self._lock = threading.Lock()
        self._accounts = {r["user_id"]: r for r in plan.accounts.iter_rows(named=True)}
        self._pending_notes: dict[str, list[dict]] = defaultdict(list)
        self._ambiguous: Counter = Counter()
        self.reconciled: Counter = Counter()

    # -- ledger -----------------------------------------------------------------------------
    def _id(self, kind: str, key: str) -> str | None:
        with self._lock:
            return self._ids.get((LEDGER_KIND.get(kind, kind), key))

    def _record(self, kind: str, key: str, user_id: str | None, server_id: str | None,
                detail: dict | None = None) -> None:
        ledger_kind = LEDGER_KIND.get(kind, kind)
        self.ledger.record(ledger_kind, key, user_id, server_id, detail)
        with self._lock:
            self._ids[(ledger_kind, key)] = server_id

    def _token(self, user_id: str) -> str:
        username = self._accounts[user_id]["username"]
        token = self.tokens.token(username)
        if not token:
            raise TaskFailed("TOKEN_LOST", f"no token for @{username} (dataset user {user_id}) "
                             f"in {self.tokens.path}; see README 'Lost account tokens'")
        return token

    # -- tasks ------------------------------------------------------------------------------
    def _guard(self, fn, *args):
        def run():
            try:
                fn(*args)
            except (RateLimited, Retry, TaskFailed, Abort):
                raise
            except Unreachable as exc:
                raise Abort(str(exc)) from None
            except SharkeyError as exc:
                raise TaskFailed(exc.code or "ERROR", str(exc)) from None
        return run

    def _create_account(self, row: dict) -> None:
        username = row["username"]
        if username in self._on_server:  # a sign-in that waited for its rate limit
            return self._adopt_account(row)
        password = self.tokens.password_for(username, lambda: secrets.token_urlsafe(24))
        for _ in range(AMBIGUOUS_RETRIES):
            try:
                user = self.client.call("admin/accounts/create",
                                        {"username": username, "password": password}, wait=False)
            except Ambiguous:
                # The answer was lost; the server may have created it. Look before retrying.
                if self._exists(username):
                    return self._adopt_account(row)
                continue
            except DuplicateUsername:
                return self._adopt_account(row)
            except (AuthenticationError, PermissionDenied) as exc:
                raise Abort(f"the admin token cannot create accounts on {self.client.server}: "
                            f"{exc.code}. Check SHARKEY_ADMIN_TOKEN (Misskey: root's token).") \
                    from None
            self.tokens.put(username, token=user["token"], user_id=user["id"])
            self._record("account", row["user_id"], row["user_id"], user["id"],
                         {"username": username})
            return None
        raise TaskFailed("SERVER_ERROR", f"admin/accounts/create for @{username} failed "
                         f"{AMBIGUOUS_RETRIES} times in transit")

    def _exists(self, username: str) -> bool:
        try:
            self.client.call("users/show", {"username": username, "host": None})
        except NotFound:
            return False
        return True

    def _adopt_account(self, row: dict) -> None:
        """The username exists on the server: ours if the stored token, or a sign-in with the
        stored password, reaches the same account."""
        username = row["username"]
        existing = self.client.call("users/show", {"username": username, "host": None})
        with self._lock:
            self._on_server.add(username)
        token = self.tokens.token(username)
        me = None
        if token:
            try:
                me = self.client.call("i", {}, token=token)
            except AuthenticationError:
                token = None  # revoked or from another server: sign in again
        if not token:
            token = self._sign_in(username, existing.get("createdAt"))
            me = self.client.call("i", {}, token=token)
        if me.get("id") != existing.get("id"):
            raise TaskFailed("TOKEN_MISMATCH", f"the stored token for @{username} belongs to "
                             f"another account")
        self.tokens.put(username, token=token, user_id=existing["id"])
        with self._lock:
            self.reconciled["account"] += 1
        self._record("account", row["user_id"], row["user_id"], existing["id"],
                     {"username": username, "adopted": True})

    def _sign_in(self, username: str, created_at: str | None) -> str:
        """The account's token from ``signin-flow`` with the password stored before it was
        created (a crash lost the token the create answer carried)."""
        entry = self.tokens.entry(username)
        password, store = entry.get("password"), self.tokens.path
        if not password:
            raise TaskFailed("USERNAME_TAKEN", f"@{username} exists on {self.client.server} but "
                             f"{store} holds no password for it: this publisher did not create "
                             f"it. Choose another username_prefix, or put the account's token "
                             f"into {store} as \"token\" under \"{username.lower()}\".")
        try:
            answer = self.client.call("signin-flow", {"username": username,
                                                      "password": password},
                                      token="", wait=False)
        except (PermissionDenied, AuthenticationError, NotFound):
            if _before(created_at, entry.get("password_set_at")):
                raise TaskFailed("USERNAME_TAKEN", f"@{username} was created on "
                                 f"{self.client.server} at {created_at}, before this publisher "
                                 f"chose its password: someone else owns it. Choose another "
                                 f"username_prefix.") from None
            raise TaskFailed("TOKEN_LOST", f"@{username} exists on {self.client.server} but "
                             f"signing in with the password in {store} was refused: the "
                             f"password was changed on the server. An admin can reset it "
                             f"(control panel > Users > @{username} > Reset password); put the "
                             f"new password into {store} as \"password\" under "
                             f"\"{username.lower()}\" and publish again.") from None
        if not isinstance(answer, dict) or not answer.get("i"):
            step = answer.get("next") if isinstance(answer, dict) else None
            raise TaskFailed("TOKEN_LOST", f"signing in as @{username} needs a further step "
                             f"({step or 'unknown'}: two-factor or captcha); turn it off for "
                             f"the account, or put its token into {store}, and publish again.")
        with self._lock:
            self.signins += 1
        self.log.info(f"@{username}: token recovered by signing in")
        return answer["i"]

    def _upload(self, row: dict, which: str) -> None:
        draw = avatar_png if which == "avatar" else banner_png
        png = draw(row["username"], row["persona"])
        file = self.client.call(
            "drive/files/create", token=self._token(row["user_id"]), wait=False,
            files={"file": (f"{which}-{row['username']}.png", png, "image/png")},
            fields={"name": f"{which}-{row['username']}.png", "isSensitive": "false"})
        self._record(which, row["user_id"], row["user_id"], file["id"], {"md5": file.get("md5")})

    def _update_profile(self, row: dict) -> None:
        is_bot = row.get("is_bot")
        body = {"name": row["display_name"], "description": row["description"],
                "avatarId": self._id("avatar", row["user_id"]),
                "bannerId": self._id("banner", row["user_id"]),
                "isBot": self.mark_as_bot if is_bot is None else bool(is_bot)}
        self.client.call("i/update", body, token=self._token(row["user_id"]), wait=False)
        self._record("profile", _profile_key(row), row["user_id"],
                     self._id("account", row["user_id"]))

    def _note_body(self, row: dict) -> dict:
        body = {"visibility": self.visibility, "noExtractMentions": True}
        if self.local_only:
            body["localOnly"] = True
        if row["text"] is not None:
            body["text"] = row["text"]
        if row["reply_to_key"]:
            body["replyId"] = self._id("note", row["reply_to_key"])
        if row["renote_of_key"]:
            body["renoteId"] = self._id("note", row["renote_of_key"])
        return body

    def _post_note(self, row: dict, kind: str) -> None:
        if self._id("note", row["note_key"]):
            return  # adopted by a reconciliation in the meantime
        body = self._note_body(row)
        try:
            created = self.client.call("notes/create", body, token=self._token(row["user_id"]),
                                       wait=False)["createdNote"]
        except Ambiguous as exc:
            self._reconcile(row["user_id"])
            if self._id("note", row["note_key"]):
                return None
            self._ambiguous[row["note_key"]] += 1
            if self._ambiguous[row["note_key"]] >= AMBIGUOUS_RETRIES:
                raise TaskFailed("SERVER_ERROR", str(exc)) from None
            raise Retry(0.1 * self._ambiguous[row["note_key"]], str(exc)) from None
        self._record(kind, row["note_key"], row["user_id"], created["id"],
                     {"created_at": created.get("createdAt")})

    def _reconcile(self, user_id: str) -> None:
        """Adopt notes the server has for this account that the ledger lacks.

        Unrecorded notes can lie anywhere in the account's history (an older crash, behind
        notes recorded since), so every page is read (``untilId``, newest first), replies and
        renotes included; the account is ours, so all of its notes came from this publisher."""
        server_user, token = self._id("account", user_id), self._token(user_id)
        with self._lock:
            known = {v for (k, _), v in self._ids.items() if k == "note"}
        unknown, until = [], None
        while True:
            body = {"userId": server_user, "limit": PAGE, "withReplies": True,
                    "withRenotes": True}
            if until:
                body["untilId"] = until
            page = self.client.call("users/notes", body, token=token) or []
            unknown += [n for n in page if n["id"] not in known]
            if len(page) < PAGE:
                break
            until = min(n["id"] for n in page)
        pending = [row for row in self._pending_notes[user_id]
                   if not self._id("note", row["note_key"])]
        for note in sorted(unknown, key=lambda n: n["id"]):  # oldest first, as posted
            match = next((row for row in pending if _same_note(note, self._note_body(row))),
                         None)
            if match is None:
                continue
            pending.remove(match)
            kind = "renote" if match["source"] == "viral" else "note"
            self._record(kind, match["note_key"], user_id, note["id"],
                         {"created_at": note.get("createdAt"), "adopted": True})
            with self._lock:
                self.reconciled[kind] += 1

    def _follow(self, follower: str, followee: str) -> None:
        target = self._id("account", followee)
        try:
            self.client.call("following/create", {"userId": target},
                             token=self._token(follower), wait=False)
        except AlreadyDone:
            pass
        self._record("follow", f"{follower}->{followee}", follower, target)

    def _react(self, user_id: str, note_key: str, reaction: str) -> None:
        note_id = self._id("note", note_key)
        try:
            self.client.call("notes/reactions/create", {"noteId": note_id, "reaction": reaction},
                             token=self._token(user_id), wait=False)
        except AlreadyDone:
            pass
        self._record("reaction", f"{user_id}|{note_key}", user_id, note_id,
                     {"reaction": reaction})

    # -- the task graph ---------------------------------------------------------------------
    def tasks(self, parts: set[str]) -> list[Task]:
        unknown = parts - set(PARTS)
        if unknown:
            raise ValueError(f"unknown parts {sorted(unknown)}; choose from {sorted(PARTS)}")
        tasks: list[Task] = []
        registry: dict[tuple[str, str], Task] = {}
        self._pending_notes.clear()  # rebuilt below: tasks() may be called again

        def add(kind, key, owner, endpoint, order, fn, *args, deps=(), selected=True):
            task = Task(kind, key, owner, endpoint, order, self._guard(fn, *args),
                        [d for d in deps if d is not None])
            if self._id(kind, key) is not None:
                task.state = "done"
            elif not selected:
                part = next(p for p, kinds in PARTS.items() if kind in kinds)
                task.state, task.code = "failed", "NOT_PUBLISHED"
                task.error = f"not on the server yet: materialize sharkey/{part} first"
            registry[(kind, key)] = task
            if selected or task.state == "failed":
                tasks.append(task)
            return task

        # Create first the accounts whose own rate limits need the longest (that minimises
        # the bound, limits.py), then those whose notes come first in dataset time.
        limits = self.client.pacer.limits
        need: Counter = Counter()
        for (owner, endpoint), n in self.plan.calls().items():
            need[owner] = max(need[owner], limit_for(endpoint, limits).min_seconds(n))
        first = dict(self.plan.notes.group_by("user_id").agg(pl.col("order").min()).iter_rows())
        creation_order = {u: i for i, u in enumerate(sorted(
            self._accounts, key=lambda u: (-need[u], first.get(u, 1 << 62), u)))}
        accounts = {}
        for user, row in self._accounts.items():
            accounts[user] = add("account", user, ADMIN, "admin/accounts/create",
                                 creation_order[user], self._create_account, row,
                                 selected="accounts" in parts)
            accounts[user].slot = creation_order[user] % self.create_workers
        if "profiles" in parts:
            for user, row in self._accounts.items():
                avatar = add("avatar", user, user, "drive/files/create", 0, self._upload, row,
                             "avatar", deps=[accounts[user]])
                banner = add("banner", user, user, "drive/files/create", 1, self._upload, row,
                             "banner", deps=[accounts[user]])
                add("profile", _profile_key(row), user, "i/update", 0, self._update_profile,
                    row, deps=[accounts[user], avatar, banner])

        notes = self.plan.notes.to_dicts()
        if parts & {"notes", "renotes", "reactions"}:
            note_tasks: dict[str, Task] = {}
            for row in notes:
                kind = "renote" if row["source"] == "viral" else "note"
                selected = ("renotes" if kind == "renote" else "notes") in parts
                deps = [accounts[row["user_id"]]]
                for ref in (row["reply_to_key"], row["renote_of_key"]):
                    if ref:
                        deps.append(note_tasks.get(ref))
                task = add(kind, row["note_key"], row["user_id"], "notes/create", row["order"],
                           self._post_note, row, kind, deps=deps, selected=selected)
                note_tasks[row["note_key"]] = task
                if selected and task.state == "pending":
                    self._pending_notes[row["user_id"]].append(row)
            if self.ledger.previous_sessions:
                # A crash may have left one unrecorded note per account: look before posting.
                checks = {user: Task("reconcile", user, user, "users/notes", -1,
                                     self._guard(self._reconcile, user), [accounts[user]])
                          for user in self._pending_notes}
                for task in tasks:
                    if task.kind in ("note", "renote") and task.state == "pending":
                        task.deps.append(checks[task.owner])
                tasks.extend(checks.values())
        if "follows" in parts:
            for follower, followee in self.plan.follows.iter_rows():
                add("follow", f"{follower}->{followee}", follower, "following/create", 0,
                    self._follow, follower, followee,
                    deps=[accounts[follower], accounts[followee]])
        if "reactions" in parts:
            for i, (user, note_key, reaction) in enumerate(
                    self.plan.reactions.select("user_id", "note_key", "reaction").iter_rows()):
                add("reaction", f"{user}|{note_key}", user, "notes/reactions/create", i,
                    self._react, user, note_key, reaction,
                    deps=[accounts[user], registry.get(("note", note_key))])
        return tasks

    def lower_bound(self) -> dict:
        """The least time the server allows for the calls left at the start: its limits (of
        the kind its answers showed) and, once it has answered, its median latency per
        endpoint with ``create_workers`` accounts created at once."""
        pacer = self.client.pacer
        return lower_bound_seconds(self._calls, limits=pacer.limits,
                                   windowed=bool(pacer.windowed), latency=pacer.latency(),
                                   create_workers=self.create_workers)

    def publish(self, parts: set[str], workers: int = 16, dry_run: bool = False
                ) -> PublishReport:
        """Publish the selected parts; ``dry_run`` stops after planning the calls."""
        tasks = self.tasks(parts)
        real = [t for t in tasks if t.kind != "reconcile" and t.code != "NOT_PUBLISHED"]
        report = PublishReport(outcome=Outcome())
        report.planned = Counter(t.kind for t in real)
        report.before = Counter(t.kind for t in real if t.state == "done")
        calls = Counter()
        for t in real:
            if t.state == "pending":
                calls[(t.owner, t.endpoint)] += 1
        self._calls = calls
        report.lower_bound = self.lower_bound()
        if dry_run:
            return report
        self.ledger.start_session(sorted(parts))
        self.log.info(f"publishing to {self.client.server}: "
                      + ", ".join(f"{k} {report.planned[k] - report.before[k]} to do"
                                  for k in sorted(report.planned))
                      + f"; the rate limits allow it in {report.lower_bound['seconds']:.1f}s"
                        f" at best, plus the server's own latency")
        pacer = self.client.pacer
        report.outcome = run_tasks(
            tasks, workers=workers, logger=self.log,
            need=lambda lane, n: limit_for(lane[1], pacer.limits).min_seconds(
                n, bool(pacer.windowed)))
        report.outcome.done.pop("reconcile", None)
        report.reconciled = self.reconciled
        report.signins = self.signins
        report.rate_limited = Counter(pacer.refused)
        report.lower_bound = self.lower_bound()  # now with the server's measured latency
        self.log.info(f"published in {report.outcome.seconds:.1f}s; the server's limits and "
                      f"its measured latency allow {report.lower_bound['seconds']:.1f}s at best"
                      f"; {sum(report.rate_limited.values())} calls refused (429), "
                      f"{report.signins} tokens recovered by signing in")
        for task in report.outcome.failed + report.outcome.blocked:
            if task.kind != "reconcile":
                self.ledger.fail(LEDGER_KIND.get(task.kind, task.kind), task.key, task.owner,
                                 task.code or "BLOCKED", task.error or "")
        return report


def _profile_key(row: dict) -> str:
    """A profile is done once per account, or once per ``profile_version`` where the plan
    has one (the text changes with the scores: a new version updates it again)."""
    version = row.get("profile_version")
    return row["user_id"] if version is None else f"{row['user_id']}#{version}"


def _same_note(note: dict, body: dict) -> bool:
    """A server note is the planned one: same text (servers trim it), reply and renote
    targets, and files."""
    return ((note.get("text") or "").strip() == (body.get("text") or "").strip()
            and note.get("replyId") == body.get("replyId")
            and note.get("renoteId") == body.get("renoteId")
            and sorted(note.get("fileIds") or []) == sorted(body.get("fileIds") or []))


def _before(created_at: str | None, password_set_at: str | None, slack_s: float = 300) -> bool:
    """The account was created clearly before we chose its password (clocks may differ)."""
    if not created_at or not password_set_at:
        return False
    try:
        created = datetime.fromisoformat(created_at.replace("Z", "+00:00"))
        chosen = datetime.fromisoformat(password_set_at)
    except ValueError:
        return False
    return (chosen - created).total_seconds() > slack_s
