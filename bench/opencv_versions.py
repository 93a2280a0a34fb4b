#!/usr/bin/env python3
"""Which OpenCV versions load every catalogued model, and do they give the same outputs?

Each Python interpreter given (each with its own opencv-python, e.g. in a
virtual environment) loads, through facerec's own backends and their
load-time checks, the models of ../shared/models: YuNet int8, SFace int8, the
res10 TensorFlow twin and the OpenFace architecture stand-in (.t7). It runs
each on faces/known/obama/obama.jpg; the outputs are compared with those of
the first interpreter (largest absolute difference).

Example (the check behind requirements.txt's opencv-python>=4.11):
  python -m venv /tmp/venv-cv && /tmp/venv-cv/bin/pip install opencv-python==4.11.0.86 numpy tqdm
  python bench/opencv_versions.py python /tmp/venv-cv/bin/python
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("FACEREC_SHARED", ROOT.parent / "shared"))
PHOTO = "faces/known/obama/obama.jpg"
FACE_BOX = (374, 95, 605, 416)  # the face of PHOTO as YuNet boxes it: the OpenFace stand-in's crop
MODELS = ("YuNet int8", "SFace int8", "res10 TensorFlow", "OpenFace stand-in .t7")


def probe() -> dict:
    """In this interpreter: the OpenCV version and, per model, its output on the photo or why it failed."""
    sys.path.insert(0, str(ROOT))
    import cv2
    import numpy as np

    from facerec.catalogue import OPENFACE, RES10_TENSORFLOW, SFACE, YUNET
    from facerec.detection import DetectedFace, load_detector
    from facerec.embedding import load_embedder
    from facerec.errors import FacerecError

    models = SHARED / "models"
    image = cv2.imread(str(SHARED / PHOTO))
    outputs: dict[str, object] = {}

    def run(name, compute):
        try:
            output = np.ascontiguousarray(compute(), np.float32)
        except (FacerecError, cv2.error) as error:
            outputs[name] = {"error": str(error).splitlines()[0][:160]}
        else:
            outputs[name] = {"shape": list(output.shape), "data": base64.b64encode(output.tobytes()).decode()}

    def face():  # SFace takes the face YuNet finds, with its landmarks
        [found] = load_detector(YUNET, [models / YUNET.files[0].filename], 0.8).detect(image)
        return found

    run(MODELS[0], lambda: load_detector(YUNET, [models / YUNET.files[0].filename], 0.8)._forward(image))
    run(MODELS[1], lambda: load_embedder(SFACE, models / SFACE.files[0].filename).embed(image, [face()]))
    run(MODELS[2], lambda: load_detector(RES10_TENSORFLOW,
                                         [models / f.filename for f in RES10_TENSORFLOW.files])._forward(image))
    run(MODELS[3], lambda: load_embedder(OPENFACE, models / "openface_nn4_architecture_standin.t7").embed(
        image, [DetectedFace(FACE_BOX, 1.0)]))
    return {"opencv": cv2.__version__, "outputs": outputs}


def decode(record: dict):
    import numpy as np

    return np.frombuffer(base64.b64decode(record["data"]), np.float32).reshape(record["shape"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("interpreters", nargs="*", default=[sys.executable],
                        help="Python interpreters to compare, the first being the reference")
    parser.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        print(json.dumps(probe()))
        return 0

    import numpy as np

    if not (SHARED / PHOTO).is_file():
        parser.error(f"{SHARED / PHOTO} is missing: set FACEREC_SHARED to the shared assets folder")
    results = []
    for interpreter in args.interpreters:
        done = subprocess.run([interpreter, __file__, "--probe"], capture_output=True, text=True,
                              env={**os.environ, "FACEREC_SHARED": str(SHARED)})
        if done.returncode != 0:
            print(f"{interpreter}: failed\n{done.stderr}", file=sys.stderr)
            return 1
        results.append((interpreter, json.loads(done.stdout.splitlines()[-1])))
    reference = results[0][1]["outputs"]
    print(f"outputs on {PHOTO}; difference: largest absolute difference from the first interpreter's output")
    for interpreter, result in results:
        print(f"\nopencv-python {result['opencv']} ({interpreter})")
        for name in MODELS:
            record = result["outputs"][name]
            if "error" in record:
                print(f"  {name:24s} fails: {record['error']}")
                continue
            line = f"  {name:24s} output {'x'.join(map(str, record['shape']))}"
            if "error" not in reference[name] and reference[name]["shape"] == record["shape"]:
                line += f", difference {float(np.abs(decode(record) - decode(reference[name])).max()):.2g}"
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
