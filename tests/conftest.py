"""Shared fixtures: real assets from ../shared (or $FACEREC_SHARED), found in place, never copied.

A missing asset skips the test with a reason, or fails it when
FACEREC_REQUIRE_ASSETS=1 (as .ci/run sets), so CI cannot pass by skipping.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# bench/ holds what both use: who is who in ../shared (shared_faces) and the paced FIFO camera (fifo_camera)
sys.path.insert(0, str(PROJECT_ROOT / "bench"))
SHARED = Path(os.environ.get("FACEREC_SHARED", PROJECT_ROOT.parent / "shared"))
REQUIRE_ASSETS = os.environ.get("FACEREC_REQUIRE_ASSETS") == "1"


def require(condition: bool, reason: str) -> None:
    """Skip the calling test with `reason` unless assets are required, in which case fail it."""
    if condition:
        return
    if REQUIRE_ASSETS:
        pytest.fail(f"{reason} (FACEREC_REQUIRE_ASSETS=1)")
    pytest.skip(reason)


MISSING_ASSET = "test asset {} is missing"


def shared_path(relative: str) -> Path:
    """The path of an asset under the shared folder; skips (or fails) the test when it is missing."""
    path = SHARED / relative
    require(path.exists(), MISSING_ASSET.format(path))
    return path


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item):
    """A skip raised by `require` is reported at the test that asked, not at `require` (for -rs)."""
    report = (yield).get_result()
    if report.skipped and isinstance(report.longrepr, tuple) and report.longrepr[0] == __file__:
        path, line, _ = item.location
        report.longrepr = (path, line + 1, report.longrepr[2])


@pytest.hookimpl(hookwrapper=True, tryfirst=True)  # outermost: runs after the list of skip reasons (-rs)
def pytest_terminal_summary(terminalreporter):
    """After the skip reasons: when assets were missing, say how to give them to the tests."""
    yield
    marker = MISSING_ASSET.split("{}")[0]
    missing = [report for report in terminalreporter.stats.get("skipped", []) if marker in str(report.longrepr)]
    if missing:
        terminalreporter.write_line(
            f"{len(missing)} test{'s' if len(missing) > 1 else ''} skipped because their assets are not in {SHARED}: "
            "set FACEREC_SHARED to the folder of shared test assets (models/, faces/, video/, embeddings/), e.g. "
            "FACEREC_SHARED=/path/to/shared python -m pytest -q -rs tests", yellow=True)


@pytest.fixture
def shared():
    """Call shared("faces/known") to get a real asset's path."""
    return shared_path


def run_script(script: str, *args: str, cwd: Path | None = None, timeout: float = 600,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run one of the project's scripts as a user would, capturing its output as text."""
    return subprocess.run(
        [sys.executable, str(PROJECT_ROOT / script), *args],
        cwd=cwd or PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
