"""Run many API calls concurrently under per-user rate limits and dependencies.

Each task belongs to a *lane*: one token and one endpoint, the unit the server meters (a
``slot`` splits one into several lanes where the server allows calls at once, e.g. account
creation, which is slow but unmetered on Misskey). A lane has at most one call in flight and runs its ready tasks in ``order``; different lanes run in
parallel on a thread pool. Where rate limits bind, the lanes that need longest are the
bottleneck: ``need(lane, calls)`` estimates that, every task inherits the largest need among
the tasks waiting on it (its *urgency*), and free workers go to the most urgent work first, so
the parents of a throttled account's replies are not left queuing behind unhurried work. A task becomes ready when every task it depends on is done (a reply
waits for its parent only). When the server or the pacer says a lane must wait, the lane is
parked until then and its worker is free for other lanes, so one throttled account never holds
back the others.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from botpipeline.clients.sharkey.errors import RateLimited

log = logging.getLogger(__name__)


class TaskFailed(Exception):
    """This task cannot succeed as planned; its dependents are blocked. Others go on."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


class Retry(Exception):
    """Try this task again after ``seconds`` (e.g. after an ambiguous outcome was checked)."""

    def __init__(self, seconds: float, why: str):
        super().__init__(why)
        self.seconds = seconds


class Abort(Exception):
    """Nothing more can succeed (server unreachable, admin token refused): stop dispatching."""


@dataclass(eq=False)
class Task:
    kind: str
    key: str
    owner: str
    endpoint: str
    order: int
    run: Callable[[], None]
    deps: list["Task"] = field(default_factory=list)
    urgency: float = 0.0
    slot: int = 0
    state: str = "pending"          # pending, done, failed, blocked
    error: str | None = None
    code: str | None = None
    _waiting: int = 0
    _dependents: list["Task"] = field(default_factory=list)

    @property
    def lane(self) -> tuple[str, str, int]:
        return (self.owner, self.endpoint, self.slot)


@dataclass
class Outcome:
    done: Counter = field(default_factory=Counter)
    failed: list[Task] = field(default_factory=list)
    blocked: list[Task] = field(default_factory=list)
    aborted: str | None = None
    waits: int = 0                   # times a lane was parked by a rate limit
    seconds: float = 0.0
    timeline: list[tuple[float, str]] = field(default_factory=list)  # (t, kind) per success


def _urgencies(tasks: list[Task], need: Callable[[tuple[str, str], int], float]) -> None:
    """urgency = max(need of the task's lane, urgency of every task that waits on it)."""
    pending = [t for t in tasks if t.state == "pending"]
    per_lane = Counter(t.lane for t in pending)
    lane_need = {lane: need(lane, n) for lane, n in per_lane.items()}
    remaining = {id(t): sum(c.state == "pending" for c in t._dependents) for t in pending}
    stack = [t for t in pending if remaining[id(t)] == 0]
    for task in pending:
        task.urgency = lane_need[task.lane]
    while stack:  # dependents before the tasks they wait on (reverse topological order)
        task = stack.pop()
        for dep in task.deps:
            if dep.state == "pending" and id(dep) in remaining:
                dep.urgency = max(dep.urgency, task.urgency)
                remaining[id(dep)] -= 1
                if remaining[id(dep)] == 0:
                    stack.append(dep)


def run_tasks(tasks: list[Task], workers: int = 16, progress_every: float = 5.0,
              logger: logging.Logger | None = None,
              need: Callable[[tuple[str, str], int], float] | None = None) -> Outcome:
    logger = logger or log
    out, start = Outcome(), time.monotonic()
    total = Counter(t.kind for t in tasks)
    for task in tasks:
        live = [d for d in task.deps if d.state != "done"]
        task._waiting = len(live)
        for dep in live:
            dep._dependents.append(task)
    if need is not None:
        _urgencies(tasks, need)
    lanes: dict[tuple[str, str], list] = {}
    ready: list = []                  # (head key, tiebreak, lane) of idle, open lanes
    parked: list = []                 # (time, tiebreak, lane)
    busy: set = set()
    parked_until: dict = {}
    tick = itertools.count()

    def offer(lane):
        if lane not in busy and lanes.get(lane) and parked_until.get(lane, 0) <= time.monotonic():
            heapq.heappush(ready, (lanes[lane][0][:2], next(tick), lane))

    def push(task):
        heapq.heappush(lanes.setdefault(task.lane, []),
                       (-task.urgency, task.order, next(tick), task))
        offer(task.lane)

    def finish(task, state):
        task.state = state
        stack = [task]
        while stack:
            current = stack.pop()
            for child in current._dependents:
                if child.state != "pending":
                    continue
                if current.state == "done":
                    child._waiting -= 1
                    if child._waiting == 0:
                        push(child)
                else:
                    child.state, child.error = "blocked", f"{current.kind} {current.key} " \
                        f"{current.state}: {current.error}"
                    out.blocked.append(child)
                    stack.append(child)

    for task in tasks:
        if task.state == "failed":  # failed before the start (e.g. its part not selected)
            finish(task, "failed")
    for task in tasks:
        if task.state == "pending" and task._waiting == 0:
            push(task)
    inflight: dict = {}
    last_report = start
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sharkey") as pool:
        while True:
            now = time.monotonic()
            while parked and parked[0][0] <= now:
                _, _, lane = heapq.heappop(parked)
                offer(lane)
            while ready and len(inflight) < workers and out.aborted is None:
                _, _, lane = heapq.heappop(ready)
                if lane in busy or not lanes.get(lane) or parked_until.get(lane, 0) > now:
                    continue
                task = heapq.heappop(lanes[lane])[-1]
                busy.add(lane)
                inflight[pool.submit(task.run)] = task
            if not inflight:
                if out.aborted is not None or not parked:
                    break
                time.sleep(max(0.0, parked[0][0] - time.monotonic()))
                continue
            timeout = max(0.0, parked[0][0] - now) if parked else None
            finished, _ = wait(inflight, timeout=timeout, return_when=FIRST_COMPLETED)
            for future in finished:
                task = inflight.pop(future)
                busy.discard(task.lane)
                error = future.exception()
                if error is None:
                    out.done[task.kind] += 1
                    out.timeline.append((time.monotonic() - start, task.kind))
                    finish(task, "done")
                elif isinstance(error, (RateLimited, Retry)):
                    seconds = error.retry_in if isinstance(error, RateLimited) else error.seconds
                    out.waits += isinstance(error, RateLimited)
                    until = time.monotonic() + seconds
                    parked_until[task.lane] = until
                    heapq.heappush(parked, (until, next(tick), task.lane))
                    heapq.heappush(lanes[task.lane],
                                   (-task.urgency, task.order, next(tick), task))
                    continue
                elif isinstance(error, Abort):
                    out.aborted = out.aborted or str(error)
                    task.error, task.code = str(error), "ABORTED"
                    finish(task, "failed")
                    out.failed.append(task)
                else:
                    task.error = str(error)
                    task.code = getattr(error, "code", None) or type(error).__name__
                    if not isinstance(error, TaskFailed):
                        logger.error(f"{task.kind} {task.key}: unexpected {task.code}: {error}")
                    out.failed.append(task)
                    finish(task, "failed")
                offer(task.lane)
            if time.monotonic() - last_report >= progress_every:
                last_report = time.monotonic()
                logger.info("published " + ", ".join(
                    f"{k} {out.done[k]}/{n}" for k, n in sorted(total.items()))
                    + f"; {len(parked)} lanes waiting on rate limits, {len(inflight)} in flight")
    out.seconds = time.monotonic() - start
    for task in tasks:
        if task.state == "pending":
            task.state = "blocked"
            task.error = f"not attempted: {out.aborted}" if out.aborted else \
                "a task it depends on never finished"
            out.blocked.append(task)
    return out
