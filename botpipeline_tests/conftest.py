"""Shared fixtures: real sample files, and an isolated data dir / Dagster home per test."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
REAL_DATA = Path(os.environ.get("BOTPIPELINE_REAL_DATA", PROJECT_ROOT.parent / "shared" / "data"))
REAL_MINUTE = REAL_DATA / "twitterstream_2021_01_01_00_29" / "29.json.bz2"


@pytest.fixture
def real_data() -> Path:
    if not REAL_DATA.is_dir():
        pytest.skip(f"real sample data not found at {REAL_DATA} (set BOTPIPELINE_REAL_DATA)")
    return REAL_DATA


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    """An empty data dir wired through the environment, with its own Dagster home."""
    root = tmp_path / "data"
    (root / "incoming" / "twitterstream").mkdir(parents=True)
    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("BOTPIPELINE_DATA_DIR", str(root))
    monkeypatch.setenv("BOTPIPELINE_DUCKDB", str(root / "botpipeline.duckdb"))
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return root


@pytest.fixture
def real_minute_day(data_dir, real_data) -> Path:
    """The real Stream Grab minute placed under the 2021-01-01 date folder."""
    day = data_dir / "incoming" / "twitterstream" / "2021-01-01"
    day.mkdir(parents=True, exist_ok=True)
    shutil.copy(real_data / "twitterstream_2021_01_01_00_29" / "29.json.bz2", day / "29.json.bz2")
    return day
