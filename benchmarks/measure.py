"""Run a benchmark contender in a fresh process; time it and sample its memory."""

from __future__ import annotations

import multiprocessing as mp
import resource
import time

import psutil


def _tree_values(proc: psutil.Process, measure) -> dict[int, float]:
    """``measure(member)`` of a process and each of its children, by pid (one that ends
    meanwhile is left out)."""
    values = {}
    for member in [proc, *proc.children(recursive=True)]:
        try:
            values[member.pid] = measure(member)
        except psutil.Error:
            pass
    return values


def _tree_sum(proc: psutil.Process, measure) -> float:
    return sum(_tree_values(proc, measure).values())


def tree_rss(proc: psutil.Process) -> int:
    """Resident memory of a process and all its children."""
    return _tree_sum(proc, lambda member: member.memory_info().rss)


def _cpu() -> float:
    """CPU seconds of this process and of its waited-for descendants."""
    own, children = (resource.getrusage(resource.RUSAGE_SELF),
                     resource.getrusage(resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def tree_pss(proc: psutil.Process) -> int:
    """Proportional set size of a process and all its children: pages shared between them
    (a fork server's preloaded modules) count once."""
    return _tree_sum(proc, lambda member: member.memory_full_info().pss)


def _cpu_seconds(member: psutil.Process) -> float:
    times = member.cpu_times()
    return times.user + times.system


def _run(fn, args, queue) -> None:
    started, cpu = time.perf_counter(), _cpu()
    queue.put({"own_cpu_at_start": cpu})
    result = fn(*args)
    result["seconds"] = time.perf_counter() - started
    result["cpu_seconds_waited"] = _cpu() - cpu
    queue.put(result)


def in_child(fn, *args) -> dict:
    """``fn(*args)`` (a dict) in a spawned process, plus ``seconds``, ``cpu_seconds`` (the
    process tree's, every descendant included: a grandchild that is never waited for, such as
    a step worker under a fork server, does not show in ``getrusage``), ``peak_rss_mb`` (the
    sum of the tree's resident sets: shared pages count once per process) and
    ``peak_pss_mb`` (shared pages divided among the processes that share them), sampled every
    50 ms over the process tree."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_run, args=(fn, args, queue))
    proc.start()
    watched, peak, peak_pss, tick = psutil.Process(proc.pid), 0, 0, 0
    cpu: dict[int, float] = {}
    baseline = None
    while proc.is_alive() and (baseline is None or queue.empty()):
        if baseline is None and not queue.empty():
            baseline = queue.get()["own_cpu_at_start"]
        cpu.update(_tree_values(watched, _cpu_seconds))
        peak = max(peak, tree_rss(watched))
        if tick % 4 == 0:  # reading smaps costs more: every 200 ms
            peak_pss = max(peak_pss, tree_pss(watched))
        tick += 1
        time.sleep(0.05)
    if baseline is None and not queue.empty():
        baseline = queue.get()["own_cpu_at_start"]
    if queue.empty():
        proc.join(5)
    if queue.empty():
        raise RuntimeError(f"{fn.__name__} died with exit code {proc.exitcode}")
    result = queue.get()
    proc.join()
    result["cpu_seconds"] = max(result["cpu_seconds_waited"],
                                sum(cpu.values()) - (baseline or 0.0))
    result["peak_rss_mb"] = peak / 2**20
    result["peak_pss_mb"] = peak_pss / 2**20
    return result


def in_child_with_scratch(prefix: str, fn, day_dir, *args) -> dict:
    """``in_child(fn, day_dir, scratch, *args)`` with a fresh scratch folder, removed after."""
    import shutil
    import tempfile
    from pathlib import Path

    scratch = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        return in_child(fn, day_dir, scratch, *args)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def materialize_day(out, source: str, day_dir, partition: str, select: str):
    """A user's ``dagster asset materialize`` of one partition (default executor), on a fresh
    DAGSTER_HOME with the project's dagster.yaml and a data dir under ``out`` whose
    ``incoming/<source>/<partition>`` links to the cached day; returns the DAGSTER_HOME.
    Dagster is not imported here: the measured process tree is the user's command."""
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parent.parent
    incoming = Path(out) / "data" / "incoming" / source / partition
    incoming.mkdir(parents=True)
    for path in Path(day_dir).iterdir():  # links: the input stays in the cache
        (incoming / path.name).symlink_to(path)
    home = Path(out) / "dagster_home"
    home.mkdir()
    shutil.copy(repo / "botpipeline" / "dagster.yaml", home / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(home),
           "BOTPIPELINE_DATA_DIR": str(Path(out) / "data")}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "asset", "materialize",
         "-m", "botpipeline.definitions", "--select", select, "--partition", partition],
        cwd=repo, env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"dagster asset materialize failed:\n{done.stderr[-4000:]}")
    return home
