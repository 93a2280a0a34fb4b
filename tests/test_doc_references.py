"""Every reference in the repository to a section by name (`README, "Tracks"`, `docs/thresholds.md, "Which
matching strategy"`) names a heading that exists in that page (issue 36: sections that moved out of the README
left references behind in comments, requirements files and pyproject.toml)."""

import re
import subprocess

from conftest import PROJECT_ROOT

# README, "X" / README.md, "X" / README's "X" / docs/page.md, "X" (a comment may break the line before "X")
REFERENCE = re.compile(r'(README(?:\.md)?|docs/[\w-]+\.md)(?:,|\'s)\s*(?:#\s*)?"([^"\n]+)"')
THIS_FILE = PROJECT_ROOT / "tests" / "test_doc_references.py"  # its examples are not references
TEXT_FILES = (".py", ".md", ".txt", ".toml", ".cfg", ".yml", ".yaml", ".sh", ".ini")


def headings(page: str) -> set[str]:
    """The page's headings as written, without the #s and backticks."""
    lines = (PROJECT_ROOT / page).read_text(encoding="utf-8").splitlines()
    return {line.lstrip("#").strip().replace("`", "") for line in lines if re.match(r"#{1,6} ", line)}


def names_a_heading(section: str, page_headings: set[str]) -> bool:
    """"The sface threshold" names "The sface threshold, 1.07": a heading, or its part before a comma or colon."""
    return any(heading == section or heading.startswith((section + ",", section + ":")) for heading in page_headings)


def references() -> list[tuple[str, str, str]]:
    """(file, page, section) of every reference in the files git tracks."""
    listed = subprocess.run(["git", "ls-files"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True)
    found = []
    for name in listed.stdout.splitlines():
        path = PROJECT_ROOT / name
        if not (name.endswith(TEXT_FILES) or name == ".ci/run") or not path.is_file() or path == THIS_FILE:
            continue
        for match in REFERENCE.finditer(path.read_text(encoding="utf-8", errors="replace")):
            page = "README.md" if match.group(1).startswith("README") else match.group(1)
            found.append((name, page, match.group(2).replace("`", "")))
    return found


def test_the_pattern_finds_the_references_it_should():
    text = 'x (README, "Tracks") y README\'s "Use it from Python" z docs/thresholds.md,\n# "Which matching strategy"'
    assert [match.groups() for match in REFERENCE.finditer(text)] == [
        ("README", "Tracks"), ("README", "Use it from Python"), ("docs/thresholds.md", "Which matching strategy")]
    assert names_a_heading("The sface threshold", {"The sface threshold, 1.07"})
    assert not names_a_heading("Tracks", {"Tracks of people"})


def test_every_section_named_in_the_repository_exists():
    found = references()
    assert len(found) >= 5  # the references of facerec/ and tests/ are found at all
    missing = [f"{name}: {page}, {section!r}" for name, page, section in found
               if not (PROJECT_ROOT / page).is_file() or not names_a_heading(section, headings(page))]
    assert not missing, "references to sections that do not exist:\n" + "\n".join(missing)
