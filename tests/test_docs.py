"""Docs that cannot rot (issue 24): every relative link and picture of README.md and docs/*.md resolves, and every
command block marked runnable runs as written against ../shared.

A link resolves when its file exists and, for `page.md#anchor`, the page has a heading with that anchor, made as
GitHub makes it (lower case; punctuation but `-` and `_` dropped; spaces to `-`; a repeated heading gets `-1`,
`-2`, ...). The fenced blocks preceded by the line `<!-- runnable -->` of one page are run as their text stands,
in order, in one bash shell (as a reader types them in one terminal), from a copy of this checkout's files with
`../shared` beside it, as a fresh clone has it: no model linked in, no variable set for it, an empty cache, and
no network (every download address is a closed port). What the page says the commands give is then checked.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from conftest import PROJECT_ROOT, SHARED, shared_path
from helpers import CLIP_FRAMES, checkout_copy
from shared_faces import AUDIENCE_SHOT

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
    """root/checkout: a copy of this checkout as a fresh clone has it; root/shared: the assets, found as ../shared."""
    checkout = checkout_copy(root / "checkout")
    (root / "shared").symlink_to(SHARED.resolve())
    return checkout


def page_text(page: Path) -> str:
    """The page's prose on one line, for figures that a line break may split."""
    return " ".join(page.read_text().split())


def check_readme(checkout: Path, stdout: str, stderr: str) -> None:
    """faces.jsonl names Barack Obama in the audience shot and nowhere else, the summary counts faces per name,
    verify.py says the two photos are the same person."""
    text = page_text(PROJECT_ROOT / "README.md")
    first, last = AUDIENCE_SHOT.start, AUDIENCE_SHOT.stop - 1
    assert f"frames {first} to {last}" in text
    records = [json.loads(line) for line in (checkout / "faces.jsonl").read_text().splitlines()]
    assert [record["frame"] for record in records] == list(range(CLIP_FRAMES))
    obama = sorted({record["frame"] for record in records for face in record["faces"] if face["name"] == "obama"})
    assert obama and first <= obama[0] and obama[-1] <= last, obama
    assert len(obama) >= len(AUDIENCE_SHOT) // 2, obama  # named in most of the shot, not once by chance
    assert re.search(r"\bobama \d+", stderr), stderr[-2000:]  # the summary's faces per name
    assert re.search(r"^same person: distance \d\.\d+", stdout, re.MULTILINE), stdout[-2000:]


def check_scripts_page(checkout: Path, stdout: str, stderr: str) -> None:
    """The second enrolment finds nothing new; the clip's annotated video and 275 JSON lines; evaluate.py's plots;
    verify.py --pairs gives the accuracy and the two distances the page states."""
    text = page_text(PROJECT_ROOT / "docs" / "scripts.md")
    reports = re.findall(r"\((\d+) processed now, (\d+) unchanged since the last run", stdout)
    assert len(reports) == 2 and reports[1][0] == "0" and reports[1][1] == reports[0][0] != "0", reports
    assert (checkout / "annotated.mp4").stat().st_size > 0
    assert len((checkout / "faces.jsonl").read_text().splitlines()) == CLIP_FRAMES
    assert any((checkout / "plots").glob("*.png"))
    accuracy = re.search(r"accuracy (\S+%) \((\d+) of (\d+)\)", text)
    largest = re.search(r"largest same-person distance is (\d\.\d+)", text)
    smallest = re.search(r"smallest different-person distance (\d\.\d+)", text)
    assert accuracy and largest and smallest, "docs/scripts.md no longer states the pairs' figures"
    assert f"accuracy {accuracy[1]} ({accuracy[2]} of {accuracy[3]} labelled pairs right)" in stdout, stdout[-2000:]
    assert (f"largest same-person distance {largest[1]}, smallest different-person distance {smallest[1]}"
            in stdout), stdout[-2000:]


DOCUMENTED_OUTPUT = {"README.md": check_readme, "scripts.md": check_scripts_page}


@pytest.mark.parametrize("page", RUNNABLE_PAGES, ids=lambda page: str(page.relative_to(PROJECT_ROOT)))
def test_every_runnable_command_runs_as_written(page, tmp_path):
    blocks = runnable_blocks(page)
    assert blocks, f"{page.name} marks no command block {RUNNABLE}"
    for asset in ("faces/known", "faces/probe", "video/short_hamilton_clip.mp4",
                  "embeddings/lfw_openface_reps.csv",
                  "models/face_detection_yunet_2023mar_int8bq.onnx", "models/face_recognition_sface_2021dec_int8bq.onnx"):
        shared_path(asset)
    checkout = checkout_beside_assets(tmp_path)
    # a fresh user's environment: none of facerec's variables, an empty cache folder, no network
    env = {key: value for key, value in os.environ.items() if not key.startswith("FACEREC_")}
    env.update(XDG_CACHE_HOME=str(tmp_path / "cache"), FACEREC_MODEL_MIRROR="http://127.0.0.1:9")
    script = "\n".join(line for block in blocks for line in block)
    result = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=checkout, env=env,
                            capture_output=True, text=True, timeout=SECONDS_A_BLOCK * len(blocks))
    assert result.returncode == 0, f"{page.name}:\n{result.stdout[-2000:]}{result.stderr[-3000:]}"
    assert "Traceback" not in result.stderr and "error:" not in result.stderr, result.stderr[-3000:]
    assert "downloading" not in result.stderr  # the blocks say where the model files are
    DOCUMENTED_OUTPUT[page.name](checkout, result.stdout, result.stderr)


def test_only_blocks_after_the_marker_are_runnable(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("```sh\npython not-marked.py\n```\n\n<!-- runnable -->\n```sh\npython a.py --x 1\n\npython b.py\n```\n")
    assert runnable_blocks(page) == [["python a.py --x 1", "python b.py"]]
