"""pip install . : a wheel built from the checkout, installed with the dependencies it declares into a fresh
virtual environment, gives the facerec package (with the web page's files) and its commands, which run from a
folder outside the checkout.

The virtual environment borrows nothing: not the site-packages of the Python that runs the tests (a user's
environment has only what the wheel asks for; a dependency missing from requirements.txt fails here), not the
checkout (every command runs with it off the path, in a folder of its own). pip installs the dependencies from
the package index it is configured with (PIP_INDEX_URL, PIP_FIND_LINKS: a local wheelhouse for offline CI). The
models come from ../shared/models through FACEREC_MODELS_DIR (a folder of links to them).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import PROJECT_ROOT, require, shared_path

from facerec.catalogue import SFACE, YUNET

# What the wheel's dependencies must bring into a bare environment (README's set-up), not borrowed from elsewhere.
DEPENDENCIES = ("cv2", "numpy", "starlette", "uvicorn", "openvino", "onnx", "psycopg", "sklearn")


def run(command, cwd, env, timeout=600):
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(venv's bin folder, environment for it, a working folder outside the checkout)."""
    for module in ("wheel", "setuptools"):
        require(importlib.util.find_spec(module) is not None,
                f"building a wheel without build isolation needs {module} (pip install -r requirements-dev.txt)")
    root = tmp_path_factory.mktemp("install")
    source = root / "source"  # what the wheel is built from: the project's files, not its test outputs
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "requirements.txt"):
        shutil.copy(PROJECT_ROOT / name, source / name)
    shutil.copytree(PROJECT_ROOT / "facerec", source / "facerec", ignore=shutil.ignore_patterns("__pycache__"))
    env = {key: value for key, value in os.environ.items()
           if key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV") and not key.startswith("FACEREC_")}
    built = run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                 str(root / "dist"), str(source)], root, env)
    assert built.returncode == 0, built.stderr
    [wheel] = (root / "dist").glob("facerec-*.whl")
    made = run([sys.executable, "-m", "venv", str(root / "venv")], root, env)  # without --system-site-packages
    assert made.returncode == 0, made.stderr
    bin_folder = root / "venv" / "bin"
    # --no-compile: no bytecode written for the dependencies' thousands of modules, the install's longest part
    done = run([str(bin_folder / "python"), "-m", "pip", "install", "-q", "--no-compile", str(wheel)], root, env,
               timeout=1800)
    assert done.returncode == 0, f"installing the wheel and its dependencies from the package index: {done.stderr}"
    work = root / "work"
    work.mkdir()
    models = root / "models-elsewhere"  # links to ../shared/models' files: nothing is ever written into ../shared
    models.mkdir()
    for model_file in (*YUNET.files, *SFACE.files):
        (models / model_file.filename).symlink_to(shared_path(f"models/{model_file.filename}"))
    env = {**env, "FACEREC_MODELS_DIR": str(models), "XDG_CACHE_HOME": str(root / "cache"),
           "PATH": f"{bin_folder}{os.pathsep}{env.get('PATH', '')}"}
    return bin_folder, env, work


def test_the_wheels_dependencies_are_installed_in_the_environment_itself(installed):
    bin_folder, env, work = installed
    where = run([str(bin_folder / "python"), "-c", "import importlib\n"
                 f"for name in {DEPENDENCIES!r}: print(importlib.import_module(name).__file__)\n"], work, env)
    assert where.returncode == 0, where.stderr  # e.g. a module the wheel does not declare
    locations = where.stdout.splitlines()
    venv = bin_folder.parent.resolve()
    assert len(locations) == len(DEPENDENCIES)
    assert all(Path(location).resolve().is_relative_to(venv) for location in locations), locations


def test_facerec_verify_runs_installed_outside_the_checkout_as_verify_py_does(installed):
    bin_folder, env, work = installed
    first, second = shared_path("faces/probe/obama1.jpg"), shared_path("faces/known/obama/obama2.jpg")
    result = run([str(bin_folder / "facerec-verify"), "--model", "sface", str(first), str(second)], work, env)
    assert result.returncode == 0, result.stderr
    script = run([sys.executable, str(PROJECT_ROOT / "verify.py"), "--model", "sface", str(first), str(second)],
                 work, env)
    assert result.stdout == script.stdout and result.stdout.startswith("same person: distance ")
    assert list(work.iterdir()) == []  # nothing written where it ran


def test_the_installed_package_exposes_the_api_and_the_web_pages_files(installed):
    bin_folder, env, work = installed
    probe = ("import facerec, facerec.web.app as app; facerec.load_models; facerec.Recogniser; facerec.verify; "
             "facerec.enrol; facerec.open_gallery; facerec.FacerecError; print(facerec.__file__); "
             "print(sorted(path.name for path in app.STATIC.iterdir()))")
    result = run([str(bin_folder / "python"), "-c", probe], work, env)
    assert result.returncode == 0, result.stderr
    location, static = result.stdout.splitlines()
    assert Path(location).is_relative_to(bin_folder.parent) and not Path(location).is_relative_to(PROJECT_ROOT)
    assert "index.html" in static and "live.js" in static


def test_each_command_is_installed_and_answers_help(installed):
    bin_folder, env, work = installed
    for command in ("facerec-capture", "facerec-extract", "facerec-recognize", "facerec-verify", "facerec-evaluate",
                    "facerec-serve", "facerec-unknowns"):
        result = run([str(bin_folder / command), "--help"], work, env, timeout=120)
        assert result.returncode == 0 and result.stdout.startswith(f"usage: {command} "), (command, result.stderr)


def test_an_installed_command_keeps_its_models_in_models_dir_else_the_users_cache(installed, tmp_path):
    bin_folder, env, work = installed
    ask = [str(bin_folder / "python"), "-c", "from facerec.modelfiles import default_models_dir as d; print(d())"]
    plain = {key: value for key, value in env.items() if key not in ("FACEREC_MODELS_DIR", "XDG_CACHE_HOME")}
    plain["HOME"] = str(tmp_path / "home")
    assert run(ask, work, plain).stdout.strip() == str(tmp_path / "home" / ".cache" / "facerec" / "models")
    (tmp_path / "project" / "models").mkdir(parents=True)
    assert run(ask, tmp_path / "project", plain).stdout.strip() == "models"
    assert run(ask, tmp_path / "project", env).stdout.strip() == env["FACEREC_MODELS_DIR"]


def test_the_installed_extract_hints_the_installed_recognize_command(installed, tmp_path):
    bin_folder, env, work = installed
    dataset = tmp_path / "dataset"
    for person, photo in (("obama", "obama/obama.jpg"), ("biden", "biden/biden.jpg")):
        (dataset / person).mkdir(parents=True)
        (dataset / person / "1.jpg").symlink_to(shared_path(f"faces/known/{photo}"))
    result = run([str(bin_folder / "facerec-extract"), "--model", "sface", "--dataset", str(dataset), "--embeddings",
                  str(tmp_path / "e.pickle"), "--quiet"], work, env)
    assert result.returncode == 0, result.stderr
    assert f"next: facerec-recognize --embeddings {tmp_path / 'e.pickle'} --model sface\n" in result.stdout
