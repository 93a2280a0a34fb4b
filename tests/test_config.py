"""The configuration file (facerec/config.py): the example documents and parses every key, mistakes are one
`error:` line each with file, line and key through the real scripts, and the command line wins over the file."""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import pytest

from conftest import PROJECT_ROOT, run_script
from test_sface import enrol_with_lin, sface_model_args
from facerec.cli import event_urls_from_environment, parse_arguments
from facerec.commands import recognize, serve
from facerec.config import NOT_IN_FILE, OTHER_COMMAND_KEYS, load_config
from facerec.errors import FacerecError

EXAMPLE = PROJECT_ROOT / "facerec.example.toml"


def option_dests(parser) -> set[str]:
    return {action.dest for action in parser._actions if action.option_strings} - NOT_IN_FILE


def uncommented_example(folder: Path) -> Path:
    """The example with every `# key = value` and `# [table]` line made live."""
    lines = [re.sub(r"^# (?=[a-z_]+ = |\[)", "", line) for line in EXAMPLE.read_text().splitlines()]
    path = folder / "all.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_the_example_sets_every_option_of_both_commands_and_each_parses(tmp_path):
    path = uncommented_example(tmp_path)
    for command in (serve, recognize):
        parser = command.build_parser()
        options = {action.dest: action for action in parser._actions if action.option_strings}
        config = load_config(path, options, {"threshold": float, "every": int, "confidence": float})
        assert set(config.cameras) == {"door", "lab"}
        assert config.cameras["door"].every == 5 and config.cameras["lab"].threshold is None
        own = option_dests(parser) - OTHER_COMMAND_KEYS
        assert own <= set(config.settings), f"not in the example: {sorted(own - set(config.settings))}"


def test_the_keys_one_command_ignores_are_exactly_those_only_the_other_takes():
    served, recognised = option_dests(serve.build_parser()), option_dests(recognize.build_parser())
    assert OTHER_COMMAND_KEYS == served ^ recognised


def write(folder: Path, text: str) -> Path:
    path = folder / "facerec.toml"
    path.write_text(text)
    return path


def test_every_mistake_is_one_error_line_with_file_line_and_key_and_nothing_starts(tmp_path):
    path = write(tmp_path, "\n".join([
        'model = "sface"',
        'treshold = 0.9',                  # 2: unknown key
        'every = "often"',                 # 3: wrong type
        'threshold = 3.5',                 # 4: out of range
        'keep_unknowns = "yes"',           # 5: not a boolean
        'host = "127.0.0.1"',              # serve.py's: fine
        '[cameras.door]',                  # 7
        'source = "rtsp://127.0.0.1:9/door"',
        'every = 0',                       # 9: out of range
        '[cameras.lab]',                   # 10: no source
        'threshold = 0.8',
        'colour = "red"',                  # 12: unknown camera key
        '[cameras."a/b"]',                 # 13: a name that cannot be a topic
        'source = "0"',
    ]) + "\n")
    for script in ("serve.py", "recognize_video.py"):
        result = run_script(script, "--config", str(path), timeout=60)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        expected = {f"{path}:2: treshold:", f"{path}:3: every:", f"{path}:4: threshold:",
                    f"{path}:5: keep_unknowns:", f"{path}:9: cameras.door.every:", f"{path}:10: cameras.lab:",
                    f"{path}:12: cameras.lab.colour:", f"{path}:13: cameras.a/b:"}
        assert len(errors) == len(expected), result.stderr
        for fragment in expected:
            assert sum(fragment in line for line in errors) == 1, (fragment, result.stderr)
        assert result.stderr.count("\n") == len(errors), result.stderr  # nothing else was said: nothing started


def test_a_file_that_is_not_toml_names_its_line(tmp_path):
    path = write(tmp_path, 'model = "sface"\nthreshold = = 1\n')
    result = run_script("serve.py", "--config", str(path), timeout=60)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"error: {path}: not valid TOML") and "line 2" in result.stderr


def test_the_command_line_wins_over_the_file_and_the_file_over_the_defaults(tmp_path, monkeypatch):
    path = write(tmp_path, 'model = "sface"\nthreshold = 0.9\nport = 8123\nkeep_unknowns = true\n')
    args = parse_arguments(serve.build_parser(), ["--config", str(path), "--threshold", "0.5"])
    assert (args.model, args.threshold, args.port, args.keep_unknowns) == ("sface", 0.5, 8123, True)
    monkeypatch.setenv("FACEREC_CONFIG", str(path))
    args = parse_arguments(serve.build_parser(), [])
    assert (args.model, args.threshold, args.port) == ("sface", 0.9, 8123)


def test_recognize_video_runs_the_camera_it_names_with_its_own_settings(tmp_path):
    path = write(tmp_path, 'threshold = 0.9\nevery = 7\n[cameras.door]\nsource = "door.mp4"\nthreshold = 0.6\n'
                           '[cameras.lab]\nsource = "lab.mp4"\nconfidence = 0.7\n')
    def parsed(*argv: str):
        return parse_arguments(recognize.build_parser(), ["--config", str(path), *argv], one_camera=True)

    door = parsed("--camera", "door")
    assert (door.camera, door.source, door.threshold, door.every) == ("door", "door.mp4", 0.6, 7)
    lab = parsed("--camera", "lab", "--every", "2")
    assert (lab.source, lab.threshold, lab.confidence, lab.every) == ("lab.mp4", 0.9, 0.7, 2)
    assert parsed("--source", "x.mp4").source == "x.mp4"
    with pytest.raises(FacerecError, match="2 cameras .door, lab.: pick one with --camera"):
        parsed()
    with pytest.raises(FacerecError, match="no camera 'hall'"):
        parsed("--camera", "hall")


def test_facerec_model_sets_the_profile_and_a_wrong_one_is_one_error_line(monkeypatch):
    monkeypatch.setenv("FACEREC_MODEL", "sface")
    assert parse_arguments(recognize.build_parser(), []).model == "sface"
    assert parse_arguments(recognize.build_parser(), ["--model", "openface"]).model == "openface"
    result = run_script("recognize_video.py", env={"FACEREC_MODEL": "sfce"}, timeout=60)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "FACEREC_MODEL='sfce' is not a model profile" in result.stderr


def test_event_urls_with_passwords_come_from_the_environment_or_the_file(tmp_path, monkeypatch):
    def parsed(*argv: str):
        args = parse_arguments(serve.build_parser(), list(argv))
        event_urls_from_environment(args)
        return args

    monkeypatch.setenv("FACEREC_MQTT_URL", "mqtt://u:secret@127.0.0.1/env")
    monkeypatch.setenv("FACEREC_WEBHOOK_URL", "http://u:secret@127.0.0.1/hook")
    args = parsed()
    assert (args.mqtt, args.webhook) == ("mqtt://u:secret@127.0.0.1/env", "http://u:secret@127.0.0.1/hook")
    path = write(tmp_path, 'mqtt = "mqtt://u:file@127.0.0.1/file"\n')
    assert parsed("--config", str(path)).mqtt == "mqtt://u:file@127.0.0.1/file"  # the file is the more specific
    assert parsed("--config", str(path), "--mqtt", "mqtt://127.0.0.1/line").mqtt == "mqtt://127.0.0.1/line"


def test_recognize_video_runs_a_camera_of_the_file_with_the_files_models(tmp_path, shared):
    """The file alone sets the profile, the models, the gallery and the camera: no option but --config and --camera."""
    embeddings = enrol_with_lin(tmp_path)
    clip = tmp_path / "lin.mp4"  # a short stretch of the clip where lin is on stage
    capture = cv2.VideoCapture(str(shared("video/short_hamilton_clip.mp4")))
    writer = None
    for index in range(130):
        ok, frame = capture.read()
        if index >= 82:
            writer = writer or cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 25,
                                               (frame.shape[1], frame.shape[0]))
            writer.write(frame)
    writer.release()
    models = dict(zip(sface_model_args()[::2], sface_model_args()[1::2]))
    path = write(tmp_path, f'model = "sface"\ndetector = "{models["--detector"]}"\n'
                           f'embedding_model = "{models["--embedding-model"]}"\nembeddings = "{embeddings}"\n'
                           f'no_display = true\njson = true\n[cameras.stage]\nsource = "{tmp_path / "nowhere.mp4"}"\n'
                           f'[cameras.door]\nsource = "{clip}"\nconfidence = 0.8\n')
    named = run_script("recognize_video.py", "--config", str(path), "--camera", "door", timeout=300)
    assert named.returncode == 0, named.stderr
    names = {face["name"] for line in named.stdout.splitlines() for face in json.loads(line)["faces"]}
    assert "lin" in names
    strict = run_script("recognize_video.py", "--config", str(path), "--camera", "door", "--threshold", "0.05",
                        timeout=300)
    assert strict.returncode == 0, strict.stderr
    assert {face["name"] for line in strict.stdout.splitlines() for face in json.loads(line)["faces"]} == {"Unknown"}
