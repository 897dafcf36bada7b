"""Run a benchmark contender in a fresh process; time it and sample its memory."""

from __future__ import annotations

import multiprocessing as mp
import resource
import time

import psutil


def tree_rss(proc: psutil.Process) -> int:
    """Resident memory of a process and all its children."""
    total = 0
    for member in [proc, *proc.children(recursive=True)]:
        try:
            total += member.memory_info().rss
        except psutil.Error:
            pass
    return total


def _cpu() -> float:
    """CPU seconds of this process and of its waited-for descendants."""
    own, children = (resource.getrusage(resource.RUSAGE_SELF),
                     resource.getrusage(resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _run(fn, args, queue) -> None:
    started, cpu = time.perf_counter(), _cpu()
    result = fn(*args)
    result["seconds"] = time.perf_counter() - started
    result["cpu_seconds"] = _cpu() - cpu
    queue.put(result)


def in_child(fn, *args) -> dict:
    """``fn(*args)`` (a dict) in a spawned process, plus ``seconds``, ``cpu_seconds`` (its own
    and its waited-for children's) and ``peak_rss_mb`` sampled every 50 ms over the process
    tree."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_run, args=(fn, args, queue))
    proc.start()
    watched, peak = psutil.Process(proc.pid), 0
    while queue.empty() and proc.is_alive():
        peak = max(peak, tree_rss(watched))
        time.sleep(0.05)
    if queue.empty():
        raise RuntimeError(f"{fn.__name__} died with exit code {proc.exitcode}")
    result = queue.get()
    proc.join()
    result["peak_rss_mb"] = peak / 2**20
    return result
