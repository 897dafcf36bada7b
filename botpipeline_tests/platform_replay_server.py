"""A scriptable local HTTP server that replays platform API answers, for the collector tests.

The platform adapters have to be proven on real response shapes (the stored Bluesky samples),
paging, error pages and rate limits, without the internet. A test scripts routes: a path, an
optional query predicate and a list of answers served in order; an answer may be a function of
the request (generated pages: cursor paging, Algolia windows). Every request is recorded, and a
request no route answers gets a 404 and is listed in ``unmatched``.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Answer:
    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Request:
    path: str
    query: dict[str, list[str]]

    def one(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default


Script = Answer | Callable[[Request], Answer]


def json_answer(body, status: int = 200, headers: Mapping[str, str] | None = None) -> Answer:
    return Answer(status, json.dumps(body).encode(),
                  {"Content-Type": "application/json", **(headers or {})})


def html_error(status: int = 500) -> Answer:
    phrase = HTTPStatus(status).phrase
    page = (f"<html><head><title>{status} {phrase}</title></head>"
            f"<body><h1>{phrase}</h1></body></html>")
    return Answer(status, page.encode(), {"Content-Type": "text/html"})


def rate_limited(retry_after: float | None = None, reset: float | None = None) -> Answer:
    """A 429 asking to wait ``retry_after`` seconds, or until the epoch ``reset``."""
    headers = {}
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    if reset is not None:
        headers["x-rate-limit-reset"] = str(int(reset))
    return json_answer({"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"}, 429,
                       headers)


def cursor_pages(items: Sequence, key: str) -> Callable[[Request], Answer]:
    """Pages of ``items`` under ``key``, ``limit`` at a time, with an offset as the cursor."""
    def answer(request: Request) -> Answer:
        start = int(request.one("cursor", "0"))
        end = start + int(request.one("limit", "25"))
        body = {key: list(items[start:end])}
        if end < len(items):
            body["cursor"] = str(end)
        return json_answer(body)
    return answer


def algolia_search(stories: Sequence[dict], limit: int = 1000) -> Callable[[Request], Answer]:
    """Algolia's search_by_date over ``stories``: numericFilters on created_at_i, newest first,
    ``hitsPerPage``/``page`` paging, and no hit reachable past the first ``limit``."""
    ordered = sorted(stories, key=lambda s: (-s["created_at_i"], s["objectID"]))

    def answer(request: Request) -> Answer:
        bounds = [f for f in (request.one("numericFilters") or "").split(",") if f]
        window = [s for s in ordered if all(_holds(s, f) for f in bounds)]
        per_page, page = int(request.one("hitsPerPage", "20")), int(request.one("page", "0"))
        reachable = window[:limit]
        return json_answer({"hits": reachable[page * per_page:(page + 1) * per_page],
                            "nbHits": len(window), "page": page, "hitsPerPage": per_page,
                            "nbPages": math.ceil(len(reachable) / per_page)})
    return answer


def _holds(story: dict, condition: str) -> bool:
    for op in (">=", "<=", ">", "<", "="):
        if op in condition:
            name, value = condition.split(op, 1)
            left, right = story[name.strip()], int(value)
            return {">=": left >= right, "<=": left <= right, ">": left > right,
                    "<": left < right, "=": left == right}[op]
    raise ValueError(f"unsupported numeric filter {condition!r}")


@dataclass
class Route:
    path: str
    answers: list[Script]
    when: Callable[[Request], bool] | None = None
    repeat: bool = False
    served: int = 0

    def takes(self, request: Request) -> bool:
        return (request.path == self.path and (self.when is None or self.when(request))
                and (self.served < len(self.answers) or (self.repeat and self.answers)))

    def next(self, request: Request) -> Answer:
        script = self.answers[min(self.served, len(self.answers) - 1)]
        self.served += 1
        return script(request) if callable(script) else script


def _predicate(when) -> Callable[[Request], bool] | None:
    """``when`` as a predicate: a callable, or a mapping of parameter to value(s) to equal."""
    if when is None or callable(when):
        return when
    expected = {k: [str(x) for x in v] if isinstance(v, (list, tuple)) else [str(v)]
                for k, v in when.items()}
    return lambda request: all(request.query.get(k) == v for k, v in expected.items())


class ReplayServer:
    def __init__(self):
        self.routes: list[Route] = []
        self.requests: list[Request] = []
        self.unmatched: list[Request] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def route(self, path: str, *answers: Script, when=None, repeat: bool = False) -> Route:
        """Serve ``answers`` in order to requests for ``path`` that ``when`` accepts (a callable
        or a {param: value} mapping); with ``repeat`` the last answer keeps being served."""
        route = Route(path, list(answers), _predicate(when), repeat)
        with self._lock:
            self.routes.append(route)
        return route

    def requests_to(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def _answer(self, request: Request) -> Answer:
        with self._lock:
            self.requests.append(request)
            route = next((r for r in self.routes if r.takes(request)), None)
            if route is None:
                self.unmatched.append(request)
                return json_answer({"error": "NoRoute", "message": request.path}, 404)
            return route.next(request)

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("server not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> Self:
        replay = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # no 40 ms delayed-ACK stall between head and body

            def do_GET(self):
                parts = urlsplit(self.path)
                answer = replay._answer(Request(parts.path,
                                                parse_qs(parts.query, keep_blank_values=True)))
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,),
                                        daemon=True, name="platform-replay-server")
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
