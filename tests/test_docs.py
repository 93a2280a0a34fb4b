"""Docs that cannot rot (issue 24): every relative link and picture of README.md and docs/*.md resolves, and every
command block marked runnable runs as written against ../shared.

A link resolves when its file exists and, for `page.md#anchor`, the page has a heading with that anchor, made as
GitHub makes it (lower case; punctuation but `-` and `_` dropped; spaces to `-`; a repeated heading gets `-1`,
`-2`, ...). A fenced block preceded by the line `<!-- runnable -->` is run line by line with bash, the blocks of one
page in order, from a folder laid out as a user's checkout beside its assets: the scripts, `facerec/` and `bench/`
linked from this checkout, `../shared` the test assets, and the model files found in `models/`
($FACEREC_MODELS_DIR, linked from ../shared/models, so nothing is downloaded or written in either place).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from conftest import PROJECT_ROOT, SHARED, shared_path

PAGES = [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").glob("*.md"))]
RUNNABLE_PAGES = [PROJECT_ROOT / "README.md", PROJECT_ROOT / "docs" / "scripts.md"]
RUNNABLE = "<!-- runnable -->"
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(([^()\s]+)(?:\s+\"[^\"]*\")?\)")  # [text](target), ![alt](target)
SECONDS_A_BLOCK = 900  # a loaded shared machine


def prose_lines(text: str) -> list[str]:
    """The lines of a Markdown page outside fenced code blocks."""
    lines, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading's text."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip())  # a link in a heading: its text
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    for line in prose_lines(page.read_text()):
        heading = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if heading:
            anchor = github_anchor(heading.group(1))
            count = seen.get(anchor, 0)
            seen[anchor] = count + 1
            found.add(anchor if count == 0 else f"{anchor}-{count}")
    return found


def relative_links(page: Path) -> list[str]:
    links = []
    for line in prose_lines(page.read_text()):
        line = re.sub(r"`[^`]*`", "", line)  # code spans are not links
        links += [target for target in LINK.findall(line) if not re.match(r"^[a-z][a-z0-9+.-]*:", target)]
    return links


def broken_links(page: Path) -> list[str]:
    broken = []
    for target in relative_links(page):
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            broken.append(f"{target}: no file {linked}")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no heading with anchor #{anchor} in {linked.name}")
    return broken


def test_the_anchor_rule_is_githubs():
    assert github_anchor("The sface threshold, 1.07") == "the-sface-threshold-107"
    assert github_anchor("`extract_embeddings.py`") == "extract_embeddingspy"
    assert github_anchor("Events: MQTT and webhooks") == "events-mqtt-and-webhooks"
    assert github_anchor("The classifier: `svm`") == "the-classifier-svm"


def test_a_broken_link_and_a_missing_anchor_are_found(tmp_path):
    """The check itself: it must see a missing file and a missing heading, and pass what exists."""
    (tmp_path / "other.md").write_text("# Other page\n\n## A section, 2\n")
    page = tmp_path / "page.md"
    page.write_text("[ok](other.md#a-section-2) [self](#title) ![pic](missing.png) [gone](other.md#nowhere)\n"
                    "# Title\n```\n[inside a code block](not-checked.md)\n```\n[web](https://example.org/x)\n")
    assert broken_links(page) == [f"missing.png: no file {tmp_path / 'missing.png'}",
                                  "other.md#nowhere: no heading with anchor #nowhere in other.md"]


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(PROJECT_ROOT)))
def test_every_relative_link_and_picture_resolves(page):
    assert relative_links(page) or page.name != "README.md", "README.md links to nothing: the check reads nothing"
    assert broken_links(page) == []


def test_readme_links_every_docs_page():
    linked = {Path(target.partition("#")[0]).name for target in relative_links(PROJECT_ROOT / "README.md")}
    assert {page.name for page in (PROJECT_ROOT / "docs").glob("*.md")} - linked == set()


def test_architecture_names_every_module_of_the_package():
    """docs/architecture.md has one line per module: a module added without its line is found here."""
    page = (PROJECT_ROOT / "docs" / "architecture.md").read_text()
    package = PROJECT_ROOT / "facerec"
    modules = sorted(path.relative_to(package).as_posix() for path in package.rglob("*.py"))
    assert len(modules) > 60
    assert [module for module in modules if f"`{module}`" not in page] == []


def test_readme_is_short():
    assert len((PROJECT_ROOT / "README.md").read_text().splitlines()) <= 250


def runnable_blocks(page: Path) -> list[list[str]]:
    """The command lines of each fenced block preceded by the runnable marker, in page order."""
    blocks, lines = [], page.read_text().splitlines()
    for index, line in enumerate(lines):
        if line.strip() == RUNNABLE:
            assert lines[index + 1].startswith("```"), f"{page.name}:{index + 1}: {RUNNABLE} not before a code block"
            end = lines.index("```", index + 2)
            blocks.append([command for command in lines[index + 2:end] if command.strip()])
    return blocks


def checkout_beside_assets(root: Path) -> Path:
    """root/checkout laid out as a user's checkout (scripts, facerec/, bench/ linked), root/shared the assets."""
    checkout = root / "checkout"
    checkout.mkdir()
    for entry in [*PROJECT_ROOT.glob("*.py"), PROJECT_ROOT / "facerec", PROJECT_ROOT / "bench"]:
        (checkout / entry.name).symlink_to(entry)
    (root / "shared").symlink_to(SHARED.resolve())
    models = root / "models"  # the files of ../shared/models, where the scripts look for them; written to only here
    models.mkdir()
    for model in shared_path("models").iterdir():
        (models / model.name).symlink_to(model)
    return checkout


@pytest.mark.parametrize("page", RUNNABLE_PAGES, ids=lambda page: str(page.relative_to(PROJECT_ROOT)))
def test_every_runnable_command_runs_as_written(page, tmp_path):
    blocks = runnable_blocks(page)
    assert blocks, f"{page.name} marks no command block {RUNNABLE}"
    for asset in ("faces/known", "faces/probe", "video/short_hamilton_clip.mp4",
                  "embeddings/lfw_openface_reps.csv",
                  "models/face_detection_yunet_2023mar_int8bq.onnx", "models/face_recognition_sface_2021dec_int8bq.onnx"):
        shared_path(asset)
    checkout = checkout_beside_assets(tmp_path)
    env = {**os.environ, "FACEREC_MODELS_DIR": str(tmp_path / "models"), "FACEREC_MODEL_MIRROR": "http://127.0.0.1:9",
           "FACEREC_EMBEDDINGS": ""}
    env.pop("FACEREC_EMBEDDINGS")
    for block in blocks:
        for command in block:
            result = subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=checkout, env=env,
                                    capture_output=True, text=True, timeout=SECONDS_A_BLOCK)
            assert result.returncode == 0, f"{page.name}: {command}\n{result.stdout[-2000:]}{result.stderr[-3000:]}"
            assert "Traceback" not in result.stderr and "error:" not in result.stderr, result.stderr[-3000:]


def test_only_blocks_after_the_marker_are_runnable(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("```sh\npython not-marked.py\n```\n\n<!-- runnable -->\n```sh\npython a.py --x 1\n\npython b.py\n```\n")
    assert runnable_blocks(page) == [["python a.py --x 1", "python b.py"]]
