"""The real Dagster webserver loads the code location from workspace.yaml.

Starts ``dagster-webserver`` headless as a subprocess, waits over GraphQL until the
``botpipeline`` location is LOADED (failing with the location's PythonError if it does not
load), then checks the assets, job, sensor and schedule it serves. Field names follow the
GraphQL schema of dagster-graphql 1.13.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from botpipeline_tests.conftest import PROJECT_ROOT

LOCATION = "botpipeline"
LOAD_TIMEOUT_S = 90
REQUEST_TIMEOUT_S = 10

WORKSPACE_QUERY = """
query Workspace {
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError {
          __typename
          ... on PythonError { message stack }
        }
      }
    }
    ... on PythonError { message }
  }
}
"""

REPOSITORIES_QUERY = """
query Repositories {
  repositoriesOrError {
    __typename
    ... on RepositoryConnection {
      nodes {
        name
        location { name }
        jobs { name }
        sensors { name }
        schedules { name }
        assetNodes { assetKey { path } }
      }
    }
    ... on PythonError { message }
  }
}
"""

ASSETS_QUERY = """
query Assets {
  assetNodes { assetKey { path } }
  assetsOrError {
    __typename
    ... on AssetConnection { nodes { key { path } } }
    ... on PythonError { message }
  }
}
"""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _webserver_command() -> list[str]:
    exe = Path(sys.executable).with_name("dagster-webserver")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("dagster-webserver")
    if found:
        return [found]
    return [sys.executable, "-m", "dagster_webserver"]


def _graphql(url: str, query: str) -> dict:
    response = requests.post(url, json={"query": query}, timeout=REQUEST_TIMEOUT_S)
    response.raise_for_status()
    body = response.json()
    assert not body.get("errors"), f"GraphQL errors: {body['errors']}"
    return body["data"]


def _tail(path: Path, chars: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return "<no output>"


def _stop(proc: subprocess.Popen) -> None:
    """Terminate the webserver and its code server (the whole process group)."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=15)


def _wait_until_loaded(proc: subprocess.Popen, url: str, log_path: Path) -> None:
    deadline = time.monotonic() + LOAD_TIMEOUT_S
    last = "no answer yet"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"dagster-webserver exited with {proc.returncode} before loading:\n"
                        f"{_tail(log_path)}")
        try:
            data = _graphql(url, WORKSPACE_QUERY)
        except (requests.ConnectionError, requests.Timeout) as exc:
            last = f"{type(exc).__name__}"
            time.sleep(0.5)
            continue
        workspace = data["workspaceOrError"]
        if workspace["__typename"] == "PythonError":
            pytest.fail(f"workspace failed to load: {workspace['message']}")
        entries = {e["name"]: e for e in workspace["locationEntries"]}
        assert LOCATION in entries, f"location {LOCATION!r} not in workspace: {sorted(entries)}"
        entry = entries[LOCATION]
        location = entry["locationOrLoadError"]
        if location and location["__typename"] == "PythonError":
            pytest.fail(f"code location {LOCATION!r} failed to load: {location['message']}\n"
                        + "".join(location.get("stack") or []))
        if entry["loadStatus"] == "LOADED" and location is not None:
            return
        last = f"loadStatus={entry['loadStatus']}"
        time.sleep(0.5)
    pytest.fail(f"code location {LOCATION!r} not LOADED after {LOAD_TIMEOUT_S}s ({last}):\n"
                f"{_tail(log_path)}")


@pytest.mark.timeout(LOAD_TIMEOUT_S + 60)
def test_webserver_loads_code_location(data_dir, tmp_path):
    home = Path(os.environ["DAGSTER_HOME"])
    # No telemetry and nothing but local sqlite storage under the test's own Dagster home.
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    port = _free_port()
    url = f"http://127.0.0.1:{port}/graphql"
    log_path = tmp_path / "webserver.log"
    env = os.environ.copy()  # carries the data_dir fixture's variables
    env["PYTHONUNBUFFERED"] = "1"

    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [*_webserver_command(), "-w", str(PROJECT_ROOT / "workspace.yaml"),
             "-h", "127.0.0.1", "-p", str(port)],
            cwd=PROJECT_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_until_loaded(proc, url, log_path)

        assets = _graphql(url, ASSETS_QUERY)
        node_keys = [a["assetKey"]["path"] for a in assets["assetNodes"]]
        assert ["raw", "tweets"] in node_keys, node_keys
        assets_or_error = assets["assetsOrError"]
        assert assets_or_error["__typename"] == "AssetConnection", assets_or_error
        assert ["raw", "tweets"] in [a["key"]["path"] for a in assets_or_error["nodes"]]

        repositories = _graphql(url, REPOSITORIES_QUERY)["repositoriesOrError"]
        assert repositories["__typename"] == "RepositoryConnection", repositories
        repos = [r for r in repositories["nodes"] if r["location"]["name"] == LOCATION]
        assert len(repos) == 1, repositories
        repo = repos[0]
        assert "daily_pipeline" in {j["name"] for j in repo["jobs"]}
        assert "twitterstream_files_sensor" in {s["name"] for s in repo["sensors"]}
        assert "daily_refresh_schedule" in {s["name"] for s in repo["schedules"]}
        assert ["raw", "tweets"] in [a["assetKey"]["path"] for a in repo["assetNodes"]]
    finally:
        _stop(proc)
    assert proc.poll() is not None
