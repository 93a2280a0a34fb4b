"""Issue 36: the hints other scripts end with run as printed, and an installed command names installed commands.

test_hints.py runs the capture and extraction hints; here recognize_video.py's (the unknowns to review, or the
web page) and unknowns.py reading the model from the store it reviews."""

import os
import select
import subprocess
import sys
import time

from conftest import PROJECT_ROOT, shared_path
from test_hints import next_line, run_copied
from test_sface import CLIP_CONFIDENCE, sface_model_args
from test_unknowns_keeping import run_clip_keeping, without_lin, write_frames  # noqa: F401  (fixture)

SERVE_SECONDS = 120


def lin_video(folder):
    return write_frames(folder / "lin.avi", range(82, 112))  # Lin alone: Unknown to a gallery without him


def test_keep_unknowns_ends_with_a_hint_that_lists_what_it_kept(tmp_path, without_lin):  # noqa: F811
    embeddings = tmp_path / "my gallery.pickle"
    embeddings.write_bytes(without_lin.read_bytes())
    _, run = run_clip_keeping(embeddings, lin_video(tmp_path), "--keep-unknowns")
    assert "1 unknown track kept for review" in run.stderr
    hint = next_line(run.stderr)
    assert "unknowns.py" in hint and hint.endswith(" list") and str(embeddings) in hint
    listed = run_copied(hint, "--json")
    assert listed.returncode == 0, listed.stderr
    assert len(listed.stdout.splitlines()) == 1 and '"cameras": ["stage"]' in listed.stdout


def test_unknowns_reads_the_model_from_the_store(tmp_path, without_lin):  # noqa: F811
    """No --model, the detector found by FACEREC_MODELS_DIR: the sface store is read as sface (the default
    profile is openface, whose unknowns would be refused)."""
    embeddings = tmp_path / "embeddings.pickle"
    embeddings.write_bytes(without_lin.read_bytes())
    run_clip_keeping(embeddings, lin_video(tmp_path), "--keep-unknowns")
    listed = subprocess.run([sys.executable, "unknowns.py", "--embeddings", str(embeddings), "list"], cwd=PROJECT_ROOT,
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, "FACEREC_MODELS_DIR": str(shared_path("models"))})
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.startswith("group 1") or "group 1" in listed.stdout.splitlines()[0], listed.stdout


def test_recognize_without_keeping_hints_the_web_page_over_the_same_gallery(tmp_path, without_lin):  # noqa: F811
    _, run = run_clip_keeping(without_lin, lin_video(tmp_path))
    hint = next_line(run.stderr)
    assert "serve.py" in hint and str(without_lin) in hint and "--model sface" in hint
    words = hint.split()
    server = subprocess.Popen([sys.executable, *words[1:], "--port", "0"], cwd=PROJECT_ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        deadline, lines = time.monotonic() + SERVE_SECONDS, []
        while time.monotonic() < deadline and server.poll() is None:
            if select.select([server.stdout], [], [], 1)[0]:
                lines.append(server.stdout.readline())
                if "facerec web page: http://" in lines[-1]:
                    break
        assert any("facerec web page: http://" in line for line in lines), "".join(lines)
    finally:
        server.terminate()
        server.wait(timeout=30)


def installed_run(command: str, *args: str) -> subprocess.CompletedProcess:
    """`command` (facerec-verify, ...) as pip's entry point runs it: sys.argv[0] is the installed command's path."""
    module = command.removeprefix("facerec-")
    code = (f"import sys; sys.argv[0] = '/usr/local/bin/{command}'; "
            f"from facerec.commands.{module} import main; sys.exit(main(sys.argv[1:]))")
    return subprocess.run([sys.executable, "-c", code, *args], cwd="/", capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)})


def test_an_installed_commands_help_and_errors_name_installed_commands(tmp_path):
    helped = installed_run("facerec-verify", "--help")
    assert helped.returncode == 0, helped.stderr
    assert "facerec-verify --model sface photo1.jpg photo2.jpg" in helped.stdout
    text = " ".join(helped.stdout.split())  # argparse wraps lines
    assert "python verify.py" not in text and "default: models/" not in text
    failed = installed_run("facerec-recognize", "--embeddings", str(tmp_path / "none.pickle"), "--no-display",
                           "--source", str(lin_video(tmp_path)), "--confidence", CLIP_CONFIDENCE, *sface_model_args())
    assert failed.returncode != 0
    assert "run facerec-extract first" in failed.stderr and "extract_embeddings.py" not in failed.stderr


def test_a_checkouts_help_names_the_scripts():
    helped = subprocess.run([sys.executable, "verify.py", "--help"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                            timeout=60)
    text = " ".join(helped.stdout.split())  # argparse wraps lines
    assert "python verify.py --model sface" in text and "default: models/" in text
