"""Shared fixtures: real assets from ../shared (or $FACEREC_SHARED), found in place, never copied.

A missing asset skips the test with a reason, or fails it when
FACEREC_REQUIRE_ASSETS=1 (as .ci/run sets), so CI cannot pass by skipping.
"""

from __future__ import annotations

import hashlib
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
    """After the skip reasons: when assets were missing, say how to give them to the tests; and what in the
    shared assets the session changed."""
    yield
    changes = getattr(terminalreporter.config, "shared_assets_changes", None)
    if changes:
        terminalreporter.write_line(f"the shared assets {SHARED} were changed during the session: "
                                    + "; ".join(changes), red=True)
    marker = MISSING_ASSET.split("{}")[0]
    missing = [report for report in terminalreporter.stats.get("skipped", []) if marker in str(report.longrepr)]
    if missing:
        terminalreporter.write_line(
            f"{len(missing)} test{'s' if len(missing) > 1 else ''} skipped because their assets are not in {SHARED}: "
            "set FACEREC_SHARED to the folder of shared test assets (models/, faces/, video/, embeddings/), e.g. "
            "FACEREC_SHARED=/path/to/shared python -m pytest -q -rs tests", yellow=True)


def shared_listing(hashes: bool) -> dict[str, tuple]:
    """Every file and folder under the shared assets: relative path -> (size, sha256) with `hashes`,
    else (size, modification time), which is cheap enough to take around every test (os.scandir's entries
    and plain strings: a few milliseconds for ../shared's ~1,300 entries, taken twice a test)."""
    listing: dict[str, tuple] = {}
    if not SHARED.is_dir():
        return listing
    root = str(SHARED)
    folders = [root]
    while folders:
        with os.scandir(folders.pop()) as entries:
            for entry in entries:
                relative = entry.path[len(root) + 1:]
                if entry.is_dir(follow_symlinks=False):
                    listing[relative + "/"] = ()
                    folders.append(entry.path)
                    continue
                info = entry.stat(follow_symlinks=False)
                if hashes and entry.is_file(follow_symlinks=False):
                    listing[relative] = (info.st_size, hashlib.sha256(Path(entry.path).read_bytes()).hexdigest())
                else:
                    listing[relative] = (info.st_size, info.st_mtime_ns)
    return listing


def listing_changes(before: dict[str, tuple], after: dict[str, tuple]) -> list[str]:
    """What differs between two listings of the shared assets, one line a path."""
    return ([f"created {path}" for path in sorted(after.keys() - before.keys())]
            + [f"removed {path}" for path in sorted(before.keys() - after.keys())]
            + [f"changed {path}" for path in sorted(before.keys() & after.keys()) if before[path] != after[path]])


SHARED_AT_START = shared_listing(hashes=True)  # as the session found them: taken before any test runs


@pytest.fixture(autouse=True)
def _shared_assets_untouched():
    """Fails the test during which a file under the shared assets was created, removed or changed: tests (and
    what they run) read ../shared in place and never write there, not even a checksum or a derived model."""
    before = shared_listing(hashes=False)
    yield
    changes = listing_changes(before, shared_listing(hashes=False))
    if changes:
        pytest.fail(f"this test wrote into the shared assets {SHARED}: " + "; ".join(changes), pytrace=False)


def pytest_sessionfinish(session, exitstatus):
    """The session fails if the shared assets differ from the start in any size or hash (a write the
    per-test check missed, e.g. by a process that outlived its test)."""
    changes = listing_changes(SHARED_AT_START, shared_listing(hashes=True))
    if changes:
        session.config.shared_assets_changes = changes
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(config, items):
    """Mark the tests that slow_tests.py lists `slow`; a listed name that matches no test of its module stops the
    collection (when that module was collected whole)."""
    from slow_tests import SLOW_MODULES, SLOW_TESTS

    found: dict[str, set[str]] = {}
    for item in items:
        module, name = item.path.name, getattr(item, "originalname", item.name)
        found.setdefault(module, set()).add(name)
        if module in SLOW_MODULES or name in SLOW_TESTS.get(module, ()):
            item.add_marker(pytest.mark.slow)
    if config.getoption("keyword") or any("::" in argument for argument in config.args):
        return  # a selection by name: the listed names are checked where whole modules are collected
    stale = [f"{module}::{name}" for module, names in SLOW_TESTS.items() if module in found
             for name in sorted(names - found[module])]
    if stale:
        raise pytest.UsageError("tests/slow_tests.py lists tests that do not exist: " + ", ".join(stale))


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
