"""Live galleries (issue 14): a running recognize_video.py and serve.py follow their gallery, naming a
person another process enrolled meanwhile, without restarting, and going on with the gallery they have
when the store becomes unreadable.

The recogniser reads a camera stand-in it cannot outrun (tests/paced_camera.py): "within 2 s" is
counted in frames, which a busy machine cannot flake.
"""

import re
import time

from conftest import run_script, shared_path
from paced_camera import LIN_FRAMES, LIN_PHOTO, WAIT_SECONDS, WITHIN_TWO_SECONDS, PacedCamera, names, y4m_frames
from test_sface import enrol, linked_dataset, sface_model_args
from web_server import serving


def test_a_running_recogniser_names_a_person_enrolled_by_another_process_within_two_seconds(tmp_path):
    embeddings = tmp_path / "embeddings.pickle"
    enrol(linked_dataset(tmp_path / "known"), embeddings, *sface_model_args())
    camera = PacedCamera(tmp_path / "camera.y4m", embeddings, y4m_frames(LIN_FRAMES))
    try:
        camera.wait_for(lambda: len(camera.records) >= 10, "the first frames")
        before = len(camera.records)
        # another process (as on another machine sharing the file) enrols Lin-Manuel Miranda
        enrolled = run_script("extract_embeddings.py", "--dataset",
                              str(linked_dataset(tmp_path / "with_lin", {"lin": shared_path(LIN_PHOTO)})),
                              "--embeddings", str(embeddings), "--quiet", *sface_model_args())
        assert enrolled.returncode == 0, enrolled.stderr
        changed = len(camera.records)  # the file is replaced by now
        camera.wait_for(lambda: any("lin" in names(record) for record in camera.records[changed:]), "lin named")
        first = next(number for number, record in enumerate(camera.records) if "lin" in names(record))
        assert all(record["faces"] for record in camera.records[:before])  # his face was there, Unknown
        assert not any("lin" in names(record) for record in camera.records[:before])
        assert first - changed <= WITHIN_TWO_SECONDS, (first, changed)

        # the file damaged under the running recogniser: one warning, and it goes on with the gallery it has
        embeddings.write_bytes(b"\x80\x04not a whole pickle")
        camera.wait_for(lambda: "not a readable embeddings pickle" in "".join(camera.stderr), "the warning")
        damaged = len(camera.records)
        camera.wait_for(lambda: len(camera.records) >= damaged + 10, "frames after the damage")
        assert all("lin" in names(record) for record in camera.records[damaged:])
    finally:
        returncode = camera.stop()
    stderr = "".join(camera.stderr)
    assert returncode == 0, stderr
    assert stderr.count("warning: ") == 1 and "(the gallery already loaded stays in use)" in stderr
    assert "gallery reloaded 1 time" in stderr and "Traceback" not in stderr


def test_the_web_server_names_a_person_another_process_enrolled_without_restarting(tmp_path):
    photo = shared_path(LIN_PHOTO).read_bytes()
    with serving(tmp_path / "server", people=("obama",)) as server:
        assert server.request("POST", "/api/recognize", photo)[1]["faces"][0]["name"] == "Unknown"
        enrol(linked_dataset(tmp_path / "elsewhere", {"lin": shared_path(LIN_PHOTO)}), server.embeddings,
              *sface_model_args())
        deadline = time.monotonic() + WAIT_SECONDS  # a bound, not a measure: the test below measures
        while server.request("POST", "/api/recognize", photo)[1]["faces"][0]["name"] != "lin":
            assert time.monotonic() < deadline, "the server never named lin"
            time.sleep(0.2)
        people = {person["name"]: person for person in server.json("GET", "/api/people")[1]["people"]}
        assert people["lin"]["vectors"] == 1 and people["lin"]["photos"] == []  # in the gallery, not this dataset
        info = server.json("GET", "/api/info")[1]
        assert info["people"] == 6
        # what runs the embedder, on how many threads, in what precision (issue 30 item 1)
        assert re.fullmatch(r"SFace on (OpenVINO|OpenCV's DNN), \d+ threads?, float32", info["embedder"])
    assert "Traceback" not in server.stop()

