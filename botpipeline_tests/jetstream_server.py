"""A local Jetstream stand-in for the recorder's tests: replays a generated day over a
websocket on 127.0.0.1, honours ``cursor`` (events with ``time_us >= cursor``),
``wantedCollections`` and ``compress=true`` (zstd with a dictionary), drops connections at
random (a clean close or a cut socket) and sends the day's malformed frames where they fall.
"""

from __future__ import annotations

import bisect
import random
import socket
import threading
import time
from urllib.parse import parse_qs, urlparse

import orjson
from websockets.sync.server import serve


class JetstreamServer:
    def __init__(self, frames: list[tuple[int, bytes]], *, rate: float = 20_000,
                 drop_after: tuple[int, int] = (800, 3000), seed: int = 0,
                 dictionary: bytes | None = None):
        # frames: (time_us or -1 for a malformed frame, bytes), in stream order
        self.frames = frames
        self.times = []
        last = 0
        for t, _ in frames:      # a malformed frame takes the time of the event before it
            last = t if t >= 0 else last
            self.times.append(last)
        self.collections = []
        for t, frame in frames:
            coll = None
            if t >= 0:
                event = orjson.loads(frame)
                coll = (event.get("commit") or {}).get("collection") \
                    if isinstance(event.get("commit"), dict) else None
            self.collections.append(coll)
        self.rate = rate
        self.drop_after = drop_after
        self.rng = random.Random(seed)
        self.dictionary = dictionary
        self.connections = 0
        self.drops = 0
        self.sent = 0
        self._server = None
        self._thread = None

    @property
    def url(self) -> str:
        host, port = self._server.socket.getsockname()[:2]
        return f"ws://{host}:{port}/subscribe"

    def _handler(self, ws) -> None:
        self.connections += 1
        query = parse_qs(urlparse(ws.request.path).query)
        wanted = set(query.get("wantedCollections", []))
        cursor = int(query["cursor"][0]) if "cursor" in query else None
        compress = query.get("compress", ["false"])[0] == "true"
        cctx = None
        if compress:
            import zstandard
            cctx = zstandard.ZstdCompressor(
                dict_data=zstandard.ZstdCompressionDict(self.dictionary))
        start = 0 if cursor is None else bisect.bisect_left(self.times, cursor)
        drop_at = self.rng.randint(*self.drop_after)
        sent = 0
        began = time.monotonic()
        try:
            for i in range(start, len(self.frames)):
                t, frame = self.frames[i]
                coll = self.collections[i]
                if t >= 0 and coll is not None and wanted and coll not in wanted:
                    continue
                ws.send(cctx.compress(frame) if cctx else frame.decode("utf-8", "replace"))
                sent += 1
                self.sent += 1
                if sent >= drop_at:
                    self.drops += 1
                    if self.rng.random() < 0.5:
                        ws.close(1011, "dropped by the test server")
                    else:
                        ws.socket.shutdown(socket.SHUT_RDWR)
                    return
                ahead = sent / self.rate - (time.monotonic() - began)
                if ahead > 0.005:
                    time.sleep(ahead)
            while True:          # caught up: stay open, idle, as the live stream does
                time.sleep(0.2)
                ws.ping()
        except Exception:
            return

    def __enter__(self) -> JetstreamServer:
        self._server = serve(self._handler, "127.0.0.1", 0, compression=None)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)
