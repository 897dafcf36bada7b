"""The Bluesky Jetstream recorder: a long-running process (not a Dagster step) that writes the
firehose into hourly files the ``raw/bluesky_jetstream`` asset ingests.

    botpipeline record-jetstream --out data/incoming/bluesky_jetstream \\
        --url wss://jetstream2.us-east.bsky.network/subscribe

Layout under ``--out``:

- ``<YYYY-MM-DD>/<HH>.jsonl.zst``: the events whose ``time_us`` falls in that UTC hour, one
  JSON line each as received, closed atomically (written to a temporary name, fsynced, renamed)
  once an event ``grace`` seconds past the hour's end has arrived;
- ``<YYYY-MM-DD>/.<HH>.jsonl.open``: the hour being written (plain lines, flushed every
  ``flush_every`` events or second); a restart takes it up again;
- ``<YYYY-MM-DD>/<HH>.late-<n>.jsonl.zst``: events for an hour already closed that are not
  duplicates (none in a time-ordered stream; kept, never dropped);
- ``<YYYY-MM-DD>/_closed.json``: written when the day's last hour is closed (files, lines);
  the sensor waits for it;
- ``<YYYY-MM-DD>/_gaps.jsonl``: one line per interruption: ``from_us`` (last event before),
  ``to_us`` (first new event after), ``replayed_from_us`` (the cursor asked for), ``reason``;
  ``covered`` is true when the replay started at or before ``from_us`` (nothing lost);
- ``_state/cursor.json``: the newest ``time_us`` received, saved after every open file was
  flushed (so everything before it is on disk);
- ``_rejected/<YYYY-MM-DD>.jsonl``: frames that are not Jetstream events (not JSON, no
  integer ``time_us``, ...), with the reason, by the day they arrived.

Cursors are time-based, so after a disconnect or a restart the recorder asks for events from
``rewind`` seconds before its cursor and drops the ones it already holds (key: time, DID,
kind, collection, record key, operation, revision): every event is kept exactly once.
Compressed transport (``compress=true``) decompresses each binary frame with the zstd
dictionary given by path (Jetstream's published dictionary; it cannot be downloaded here).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import time
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

import orjson

HOUR_US = 3_600_000_000
DEFAULT_COLLECTIONS = ("app.bsky.feed.post", "app.bsky.feed.like", "app.bsky.feed.repost",
                       "app.bsky.graph.follow", "app.bsky.actor.profile")
DEFAULT_URL = "wss://jetstream2.us-east.bsky.network/subscribe"


def _day_hour(time_us: int) -> tuple[str, int]:
    moment = datetime.fromtimestamp(time_us // 1_000_000, UTC)
    return moment.date().isoformat(), moment.hour


def event_key(event: dict) -> tuple:
    commit = event.get("commit")
    if isinstance(commit, dict):
        return (event["time_us"], event["did"], event["kind"], commit.get("collection"),
                commit.get("rkey"), commit.get("operation"), commit.get("rev"))
    return (event["time_us"], event["did"], event["kind"])


def parse_frame(frame: bytes) -> tuple[dict | None, str | None]:
    """(event, None) for a Jetstream event, else (None, reason)."""
    try:
        event = orjson.loads(frame)
    except orjson.JSONDecodeError as exc:
        return None, f"not JSON: {exc}"
    if not isinstance(event, dict):
        return None, "not a JSON object"
    t = event.get("time_us")
    if not isinstance(t, int) or isinstance(t, bool) or t <= 0:
        return None, "no integer time_us"
    if not isinstance(event.get("did"), str) or not isinstance(event.get("kind"), str):
        return None, "no did or kind"
    return event, None


def subscribe_url(base: str, collections, cursor: int | None, compress: bool) -> str:
    params = [("wantedCollections", c) for c in collections]
    if cursor is not None:
        params.append(("cursor", str(cursor)))
    if compress:
        params.append(("compress", "true"))
    return f"{base}?{urlencode(params)}"


class Recorder:
    def __init__(self, out: str | os.PathLike[str], url: str = DEFAULT_URL,
                 collections=DEFAULT_COLLECTIONS, *, rewind_s: float = 5.0,
                 grace_s: float = 60.0, compress: bool = False,
                 dictionary: str | os.PathLike[str] | None = None,
                 flush_every: int = 2000, flush_seconds: float = 1.0,
                 backoff_initial_s: float = 1.0, backoff_max_s: float = 60.0,
                 stall_s: float = 60.0, zstd_level: int = 9, log=print):
        self.out = Path(out)
        self.url = url
        self.collections = list(collections)
        self.rewind_us = int(rewind_s * 1_000_000)
        self.grace_us = int(grace_s * 1_000_000)
        self.compress = compress
        self.flush_every, self.flush_seconds = flush_every, flush_seconds
        self.backoff_initial_s, self.backoff_max_s = backoff_initial_s, backoff_max_s
        self.stall_s = stall_s
        self.zstd_level = zstd_level
        self.log = log
        self.state = self.out / "_state" / "cursor.json"
        self.open: dict[tuple[str, int], object] = {}   # (day, hour) -> file handle
        self.seen: set[tuple] = set()
        self.seen_order: deque[tuple[int, tuple]] = deque()
        self.cursor: int | None = None       # newest time_us written
        self.replay_from: int | None = None  # after a restart: the saved cursor
        self.stream_time: int | None = None  # newest time_us received by this process
        self.stop = False
        self.stats = {"events": 0, "duplicates": 0, "rejected": 0, "late": 0,
                      "connections": 0, "hours_closed": 0}
        self.pending_gap: dict | None = None
        self._dctx = None
        if compress:
            import zstandard
            if dictionary is None:
                raise ValueError("compress=true needs the Jetstream zstd dictionary (--dictionary"
                                 " PATH)")
            self._dctx = zstandard.ZstdDecompressor(
                dict_data=zstandard.ZstdCompressionDict(Path(dictionary).read_bytes()))

    # ---------------------------------------------------------------- state on disk
    def _open_path(self, day: str, hour: int) -> Path:
        return self.out / day / f".{hour:02d}.jsonl.open"

    def _closed_path(self, day: str, hour: int) -> Path:
        return self.out / day / f"{hour:02d}.jsonl.zst"

    def _remember(self, key: tuple) -> None:
        self.seen.add(key)
        self.seen_order.append((key[0], key))

    def _prune(self) -> None:
        if self.replay_from is not None:
            return
        horizon = (self.cursor or 0) - 2 * self.rewind_us - 1_000_000
        while self.seen_order and self.seen_order[0][0] < horizon:
            self.seen.discard(self.seen_order.popleft()[1])

    def _lines_of(self, path: Path):
        """The non-empty lines of an open (plain) or closed (zstd) hour file, streamed: an
        hour of the whole firehose is about a gigabyte of JSON."""
        import io

        with open(path, "rb") as raw:
            if path.suffix == ".zst":
                import zstandard
                fh = io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(raw),
                                       buffer_size=1 << 20)
            else:
                fh = raw
            for line in fh:
                line = line.rstrip(b"\n")
                if line:
                    yield line

    def load(self) -> None:
        """Take up the cursor, the open hours (a torn last line is cut off) and the keys of
        the events inside the rewind window."""
        saved = None
        if self.state.exists():
            saved = json.loads(self.state.read_text())["time_us"]
        first = None
        opened = sorted(self.out.glob("*/.??.jsonl.open"))
        for path in opened:
            day, hour = path.parent.name, int(path.name[1:3])
            if self._closed_path(day, hour).exists():   # crash between rename and unlink
                path.unlink()
                continue
            data = path.read_bytes()
            if data and not data.endswith(b"\n"):
                cut = data.rfind(b"\n") + 1
                with open(path, "r+b") as fh:
                    fh.truncate(cut)
                self.log(f"cut a torn line of {len(data) - cut} bytes off {path}")
            for line in self._lines_of(path):
                event, _ = parse_frame(line)
                if event is not None:
                    first = event["time_us"] if first is None else min(first, event["time_us"])
            self.open[(day, hour)] = open(path, "ab")
        # Each hour's file is flushed on its own, so a file may hold events newer than ones
        # another hour's buffer lost: replay from the saved cursor (saved after flushing
        # every file), and drop what the files already hold.
        # The cursor stays there until the replay passes it: a file's newest event is no
        # proof that the events before it are on disk.
        self.replay_from = self.cursor = saved if saved is not None else first
        if self.cursor is None:
            return
        horizon = self.replay_from - 2 * self.rewind_us - 1_000_000
        files = {self._open_path(*k) for k in self.open}
        for t in (horizon, self.replay_from):  # closed hours the window reaches into
            path = self._closed_path(*_day_hour(t))
            if path.exists():
                files.add(path)
        for path in sorted(files):
            for line in self._lines_of(path):
                event, _ = parse_frame(line)
                if event is not None and event["time_us"] >= horizon:
                    self._remember(event_key(event))
        self.seen_order = deque(sorted(self.seen_order, key=lambda x: x[0]))

    def save_cursor(self) -> None:
        for fh in self.open.values():
            fh.flush()
        if self.cursor is None:
            return
        self.state.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state.with_suffix(".tmp")
        tmp.write_text(json.dumps({"time_us": self.cursor,
                                   "saved_at": datetime.now(UTC).isoformat()}))
        os.replace(tmp, self.state)

    # ---------------------------------------------------------------- writing
    def _write_zst(self, target: Path, lines: list[bytes]) -> None:
        import zstandard
        tmp = target.with_name(f".{target.name}.tmp")
        with open(tmp, "wb") as fh:
            fh.write(zstandard.ZstdCompressor(level=self.zstd_level).compress(
                b"".join(line + b"\n" for line in lines)))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)

    def close_hour(self, day: str, hour: int) -> None:
        fh = self.open.pop((day, hour))
        fh.close()
        path = self._open_path(day, hour)
        import zstandard
        target = self._closed_path(day, hour)
        tmp = target.with_name(f".{target.name}.tmp")
        with open(path, "rb") as src, open(tmp, "wb") as dst:  # streamed, bounded memory
            zstandard.ZstdCompressor(level=self.zstd_level).copy_stream(src, dst)
            dst.flush()
            os.fsync(dst.fileno())
        os.replace(tmp, target)
        path.unlink()
        self.stats["hours_closed"] += 1
        self.log(f"closed {day}/{hour:02d}.jsonl.zst")

    def _close_due(self) -> None:
        """Close the hours the received stream has passed by ``grace`` (the stream, not the
        files: after a restart a file may hold events newer than another hour has)."""
        if self.stream_time is None:
            return
        for day, hour in sorted(self.open):
            start = int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp()) \
                * 1_000_000 + hour * HOUR_US
            if start + HOUR_US + self.grace_us <= self.stream_time:
                self.close_hour(day, hour)
                if hour == 23 or not self._later_hours_possible(day):
                    self._close_day(day)

    def _later_hours_possible(self, day: str) -> bool:
        end = (int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp()) + 86_400) \
            * 1_000_000
        return self.stream_time < end + self.grace_us

    def _close_day(self, day: str) -> None:
        folder = self.out / day
        marker = folder / "_closed.json"
        if marker.exists() or any(k[0] == day for k in self.open):
            return
        files = sorted(p.name for p in folder.glob("*.jsonl.zst"))
        tmp = folder / "._closed.json.tmp"
        tmp.write_text(json.dumps({"date": day, "files": files,
                                   "closed_at": datetime.now(UTC).isoformat()}))
        os.replace(tmp, marker)
        self.log(f"closed day {day} ({len(files)} files)")

    def _gap(self, record: dict) -> None:
        day = _day_hour(record["from_us"])[0] if record.get("from_us") else \
            datetime.now(UTC).date().isoformat()
        folder = self.out / day
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / "_gaps.jsonl", "ab") as fh:
            fh.write(orjson.dumps(record) + b"\n")

    def _reject(self, frame: bytes, reason: str) -> None:
        self.stats["rejected"] += 1
        folder = self.out / "_rejected"
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / f"{datetime.now(UTC).date().isoformat()}.jsonl", "ab") as fh:
            fh.write(orjson.dumps({"received_at": datetime.now(UTC).isoformat(),
                                   "reason": reason,
                                   "frame": frame[:4000].decode("utf-8", "replace")}) + b"\n")

    def handle(self, frame: bytes | str) -> None:
        if isinstance(frame, str):
            frame = frame.encode()
        elif self._dctx is not None:
            try:
                frame = self._dctx.decompressobj().decompress(frame)
            except Exception as exc:  # zstd errors have no common public base class
                self._reject(frame, f"zstd: {exc}")
                return
        frame = frame.strip()
        event, reason = parse_frame(frame)
        if event is None:
            self._reject(frame, reason)
            return
        key = event_key(event)
        t = event["time_us"]
        self.stream_time = t if self.stream_time is None else max(self.stream_time, t)
        if key in self.seen:  # on disk already; the stream has passed t
            self.stats["duplicates"] += 1
            self.cursor = max(self.cursor or 0, t)
            return
        if self.pending_gap is not None:
            gap = self.pending_gap
            self.pending_gap = None
            gap["to_us"] = t
            gap["covered"] = gap.get("replayed_from_us") is not None and \
                gap.get("from_us") is not None and gap["replayed_from_us"] <= gap["from_us"]
            self._gap(gap)
        day, hour = _day_hour(t)
        self._remember(key)
        self.stats["events"] += 1
        if (day, hour) not in self.open and self._closed_path(day, hour).exists():
            self.stats["late"] += 1
            self._write_zst(self.out / day / f"{hour:02d}.late-{t}.jsonl.zst", [frame])
        else:
            fh = self.open.get((day, hour))
            if fh is None:
                (self.out / day).mkdir(parents=True, exist_ok=True)
                fh = self.open[(day, hour)] = open(self._open_path(day, hour), "ab")
            fh.write(frame + b"\n")
        self.cursor = max(self.cursor or 0, t)

    # ---------------------------------------------------------------- the loop
    def run(self, max_seconds: float | None = None) -> dict:
        from websockets.sync.client import connect

        self.load()
        self._close_due()
        if self.cursor is not None:
            self.pending_gap = {"from_us": self.replay_from, "reason": "recorder started",
                                "at": datetime.now(UTC).isoformat()}
        started = time.monotonic()
        backoff = self.backoff_initial_s
        while not self.stop and (max_seconds is None or time.monotonic() - started < max_seconds):
            base = self.replay_from if self.replay_from is not None else self.cursor
            cursor = None if base is None else base - self.rewind_us
            if self.pending_gap is not None:
                self.pending_gap["replayed_from_us"] = cursor
            url = subscribe_url(self.url, self.collections, cursor, self.compress)
            reason = None
            try:
                with connect(url, open_timeout=10, close_timeout=2, max_size=2**23,
                             compression=None, proxy=None) as ws:
                    self.stats["connections"] += 1
                    self.replay_from = None
                    self.log(f"connected, cursor {cursor}")
                    received, last_flush = 0, time.monotonic()
                    last_frame = last_flush
                    while not self.stop:
                        now = time.monotonic()
                        if max_seconds is not None and now - started >= max_seconds:
                            break
                        if now - last_frame > self.stall_s:
                            raise TimeoutError(f"no event for {self.stall_s}s")
                        try:
                            frame = ws.recv(timeout=min(1.0, self.stall_s))
                        except TimeoutError:
                            frame = None
                        if frame is not None:
                            last_frame = time.monotonic()
                            self.handle(frame)
                            received += 1
                            if received == 100:
                                backoff = self.backoff_initial_s
                        if (frame is not None and received % self.flush_every == 0) or \
                                time.monotonic() - last_flush >= self.flush_seconds:
                            self.save_cursor()
                            self._close_due()
                            self._prune()
                            last_flush = time.monotonic()
            except Exception as exc:  # any transport failure: record it, back off, go on
                reason = f"{type(exc).__name__}: {exc}"[:300]
            self.save_cursor()
            self._close_due()
            if self.stop or (max_seconds is not None
                             and time.monotonic() - started >= max_seconds):
                break
            self.log(f"disconnected ({reason or 'closed'}); retry in {backoff:.1f}s")
            if self.pending_gap is None:
                self.pending_gap = {"from_us": self.cursor, "reason": reason or "closed",
                                    "at": datetime.now(UTC).isoformat()}
            time.sleep(backoff * (0.5 + random.random() / 2))
            backoff = min(self.backoff_max_s, backoff * 2)
        self.save_cursor()
        for fh in self.open.values():
            fh.close()
        self.open.clear()
        return self.stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="botpipeline record-jetstream",
        description="Record Bluesky Jetstream into hourly .jsonl.zst files (runs until stopped).")
    parser.add_argument("--out", default=os.path.join(
        os.environ.get("BOTPIPELINE_DATA_DIR", "data"), "incoming", "bluesky_jetstream"))
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--collection", action="append", dest="collections",
                        help="wanted collection (repeat); default: posts, likes, reposts, "
                             "follows, profiles")
    parser.add_argument("--rewind", type=float, default=5.0, help="seconds replayed on reconnect")
    parser.add_argument("--grace", type=float, default=60.0,
                        help="seconds past an hour's end before it is closed")
    parser.add_argument("--compress", action="store_true",
                        help="zstd transport (compress=true); needs --dictionary")
    parser.add_argument("--dictionary", help="path of Jetstream's zstd dictionary")
    parser.add_argument("--backoff-max", type=float, default=60.0)
    parser.add_argument("--stall", type=float, default=60.0,
                        help="reconnect when no event came for this many seconds")
    parser.add_argument("--max-seconds", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    recorder = Recorder(args.out, args.url, args.collections or DEFAULT_COLLECTIONS,
                        rewind_s=args.rewind, grace_s=args.grace, compress=args.compress,
                        dictionary=args.dictionary, backoff_max_s=args.backoff_max,
                        stall_s=args.stall, backoff_initial_s=min(1.0, args.backoff_max),
                        log=lambda m: print(f"{datetime.now(UTC):%H:%M:%S} {m}", flush=True))

    def stop(signum, frame):
        recorder.stop = True
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    stats = recorder.run(args.max_seconds)
    print(json.dumps(stats), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
