#!/usr/bin/env python3
"""Correct a wrong name on the clip (not a test): faces named PERSON before and after one "Not PERSON".

The gallery is faces/known (sface profile), the clip is read at a loose --threshold (default 1.25, where
Lin-Manuel Miranda on stage is named obama). One crop of the stranger (frame 108, the first face the run
names obama before the audience shot, with half a face of margin) is kept as a negative example of obama
through the library function `unknowns.py not` calls; the clip is named again. For each --match strategy,
printed as a markdown table: faces named obama; of them the stranger's (faces of the track of the crop's
face, checked by eye: Lin-Manuel Miranda, frames 108-195); obama's own faces (bench/shared_faces.py: the
audience shot, his seat) named obama; other faces named obama (other strangers: not corrected).

Detection confidence 0.8 and --every 10, as tests/test_sface.py reads the clip. Example:
  python bench/negatives.py --match nearest centroid vote svm
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import cv2

from benchmark import CLIP, ROOT, SHARED
from shared_faces import clip_face_identity

sys.path.insert(0, str(ROOT))

import facerec  # noqa: E402
from facerec.stores import open_store  # noqa: E402
from facerec.unknowns.negatives import keep_negative, photo_face_vector  # noqa: E402

PERSON = "obama"
STRANGER_FRAME, STRANGER_BOX = 108, (220, 71, 301, 173)


def named(models, embeddings: Path, threshold: float, match: str) -> list[tuple[int, tuple, str, int]]:
    """(frame, box, name, track) of every face of the clip."""
    recogniser = facerec.Recogniser(models, embeddings, threshold=threshold, match=match)
    try:
        return [(index, face.box, face.name, face.track) for index, faces in recogniser.follow(str(CLIP))
                for face in faces]
    finally:
        recogniser.stored.close()


def crop(path: Path) -> Path:
    capture = cv2.VideoCapture(str(CLIP))
    for _ in range(STRANGER_FRAME + 1):
        ok, frame = capture.read()
    capture.release()
    x1, y1, x2, y2 = STRANGER_BOX
    width, height = x2 - x1, y2 - y1
    cv2.imwrite(str(path), frame[max(0, y1 - height // 2):y2 + height // 2, max(0, x1 - width // 2):x2 + width // 2])
    return path


def counts(faces, stranger: set) -> tuple[int, int, str, int]:
    """Faces named PERSON; of them the stranger's (at one of the (frame, box) of `stranger`); PERSON's own
    named PERSON, of all of them; the other faces named PERSON."""
    named_person = [face for face in faces if face[2] == PERSON]
    own = [face for face in faces if clip_face_identity(face[0], face[1]) == PERSON]
    strangers = sum((face[0], face[1]) in stranger for face in named_person)
    own_named = sum(face[2] == PERSON for face in own)
    return len(named_person), strangers, f"{own_named} of {len(own)}", len(named_person) - strangers - own_named


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threshold", type=float, default=1.25)
    parser.add_argument("--match", nargs="+", default=["nearest"])
    args = parser.parse_args()
    models_dir = SHARED / "models"
    models = facerec.load_models("sface", detector=models_dir, embedder=models_dir /
                                 "face_recognition_sface_2021dec_int8bq.onnx", confidence=0.8)
    print(f"| --match | | faces named {PERSON} | the stranger's | {PERSON}'s own named {PERSON} | other faces |")
    print("|---|---|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as folder:
        embeddings = Path(folder) / "embeddings.pickle"
        facerec.enrol(SHARED / "faces" / "known", embeddings, models)
        vector = photo_face_vector(crop(Path(folder) / "stranger.png"), models.detector, models.needs_embedder())
        for match in args.match:
            before = named(models, embeddings, args.threshold, match)
            [track] = [face[3] for face in before if face[0] == STRANGER_FRAME and face[1] == STRANGER_BOX]
            stranger = {(face[0], face[1]) for face in before if face[3] == track}
            corrected = Path(folder) / f"corrected-{match}.pickle"
            corrected.write_bytes(embeddings.read_bytes())
            with open_store(corrected) as store:
                keep_negative(store, PERSON, vector, models.identity, args.threshold or models.threshold)
            after = named(models, embeddings=corrected, threshold=args.threshold, match=match)
            for when, faces in (("before", before), ("after", after)):
                print(f"| {match} | {when} | " + " | ".join(map(str, counts(faces, stranger))) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
