"""What a new user gets from the project's own files: requirements, .gitignore, the README's test command."""

import ast
import importlib.metadata
import os
import re
import subprocess
import sys

from conftest import PROJECT_ROOT

# Imported only when installed and documented as an optional extra (docs/large-galleries.md).
OPTIONAL_EXTRAS = {"faiss"}


def readme_test_command() -> str:
    lines = (PROJECT_ROOT / "README.md").read_text().splitlines()
    return lines[lines.index("<!-- test-command -->") + 1]


def requirement_names(file_name: str) -> set[str]:
    names = set()
    for line in (PROJECT_ROOT / file_name).read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            names.add(re.match(r"[A-Za-z0-9._-]+", line).group().lower())
    return names


def third_party_imports() -> set[str]:
    """Top-level modules that the package and the user scripts import and Python does not ship."""
    sources = [*PROJECT_ROOT.glob("*.py"), *(PROJECT_ROOT / "facerec").rglob("*.py")]
    modules = set()
    for source in sources:
        for node in ast.walk(ast.parse(source.read_text(), str(source))):
            if isinstance(node, ast.Import):
                modules.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules.add(node.module.split(".")[0])
    return {m for m in modules if m not in sys.stdlib_module_names and m != "facerec" and m != "__future__"}


def test_every_module_the_scripts_import_is_in_the_user_requirements():
    distributions = importlib.metadata.packages_distributions()
    required = requirement_names("requirements.txt")
    missing = {module: distributions.get(module, [module]) for module in third_party_imports() - OPTIONAL_EXTRAS
               if not {name.lower() for name in distributions.get(module, [module])} & required}
    assert not missing, f"imported by the scripts but not in requirements.txt: {missing}"


def test_what_the_quick_start_and_the_scripts_make_is_ignored_by_git():
    for path in (".venv/bin/python", "plots/distances.png"):
        result = subprocess.run(["git", "check-ignore", "-q", path], cwd=PROJECT_ROOT)
        assert result.returncode == 0, f"{path} is not ignored by .gitignore"


def test_the_readme_test_command_says_why_tests_skip_and_how_to_give_the_assets(tmp_path):
    command = readme_test_command()
    assert command.startswith("python -m pytest")
    env = {key: value for key, value in os.environ.items() if key != "FACEREC_REQUIRE_ASSETS"}
    env["FACEREC_SHARED"] = str(tmp_path / "no-assets-here")
    # one test that needs assets, run as the README says (plus -k to pick it, -p no:cacheprovider to leave no trace)
    result = subprocess.run([sys.executable, *command.split()[1:], "-p", "no:cacheprovider",
                             "-k", "test_shared_tensorflow_twin_is_found_and_verified"],
                            cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    reason = f"test asset {tmp_path / 'no-assets-here' / 'models'} is missing"
    # the skip is reported at the test that needed the asset
    assert re.search(rf"^SKIPPED \[1\] tests/test_modelfiles.py:\d+: {re.escape(reason)}$", result.stdout,
                     re.MULTILINE), result.stdout
    assert f"1 test skipped because their assets are not in {tmp_path / 'no-assets-here'}" in result.stdout
    assert "set FACEREC_SHARED" in result.stdout
