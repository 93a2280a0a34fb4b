"""The open-set rule on real vectors: LFW faces of ../shared/faces/lfw-dev, embedded by the sface profile.

The profile's look-alike margin (matching.py, chosen with bench/openset.py) refuses a name when someone else's
nearest photo is almost as near as the person's: a face between two look-alikes and a stranger between two
enrolled people become Unknown, while a known face clearly nearer its own person keeps its name.
"""

import shutil

import numpy as np
import pytest

import facerec
from conftest import require, shared_path
from facerec.catalogue import PROFILES
from facerec.images import read_image
from facerec.matching import UNKNOWN, make_matcher

SFACE = PROFILES["sface"]
# Distances measured with bench/openset.py's vectors (OpenCV's DNN, float32; OpenVINO within 0.002):
ENROLLED = {"Thierry_Falise": "Thierry_Falise/Thierry_Falise_0002.jpg",
            "Ian_Gillan": "Ian_Gillan/Ian_Gillan_0001.jpg",  # 1.053 from Thierry_Falise_0001, Thierry 1.013
            "Martha_Burk": "Martha_Burk/Martha_Burk_0003.jpg",  # 1.064 from the stranger Joanna_Poitier
            "Tina_Brown": "Tina_Brown/Tina_Brown_0001.jpg"}  # 1.099 from Joanna_Poitier
LOOK_ALIKE = "Thierry_Falise/Thierry_Falise_0001.jpg"
STRANGER = "Joanna_Poitier/Joanna_Poitier_0001.jpg"  # one photo in all of LFW: in no gallery
KNOWN = "Thierry_Falise/Thierry_Falise_0003.jpg"  # 0.74 from his enrolled photo, 1.22 from Ian_Gillan


@pytest.fixture(scope="module")
def sface():
    models = shared_path("models")
    return facerec.load_models("sface", detector=models, embedder=models / "face_recognition_sface_2021dec_int8bq.onnx")


@pytest.fixture(scope="module")
def vector(sface):
    photos = shared_path("faces/lfw-dev") / "photos"
    require((photos / LOOK_ALIKE).exists(), f"test asset {photos / LOOK_ALIKE} is missing")

    def embed(file: str) -> np.ndarray:
        image = read_image(photos / file)
        centre = np.array(image.shape[1::-1]) / 2
        face = min(sface.detector.detect(image),
                   key=lambda f: float(np.hypot((f.box[0] + f.box[2]) / 2 - centre[0], (f.box[1] + f.box[3]) / 2 - centre[1])))
        return sface.embedder.embed(image, [face])[0]

    return embed


@pytest.fixture(scope="module")
def gallery(vector):
    return np.stack([vector(file) for file in ENROLLED.values()]), list(ENROLLED)


@pytest.mark.parametrize("strategy", ["nearest", "centroid", "vote", "svm"])
def test_a_face_between_two_look_alikes_is_unknown_with_its_evidence(gallery, vector, strategy):
    vectors, names = gallery
    face = vector(LOOK_ALIKE)
    [plain] = make_matcher(strategy, vectors, names, SFACE.threshold).match(face)
    assert plain.name == "Thierry_Falise"  # under the threshold, but Ian_Gillan is only ~0.04 further
    [guarded] = make_matcher(strategy, vectors, names, SFACE.threshold, margin=SFACE.margin).match(face)
    assert guarded.name == UNKNOWN
    assert guarded.distance == pytest.approx(plain.distance)


@pytest.mark.parametrize("strategy", ["nearest", "svm"])
def test_a_stranger_near_two_enrolled_people_is_refused(gallery, vector, strategy):
    vectors, names = gallery
    face = vector(STRANGER)
    [plain] = make_matcher(strategy, vectors, names, SFACE.threshold).match(face)
    assert plain.name == "Martha_Burk"  # the threshold alone greets her as Martha Burk
    [guarded] = make_matcher(strategy, vectors, names, SFACE.threshold, margin=SFACE.margin).match(face)
    assert guarded.name == UNKNOWN


@pytest.mark.parametrize("strategy", ["nearest", "centroid", "vote", "svm"])
def test_a_known_face_clearly_nearest_its_person_keeps_its_name(gallery, vector, strategy):
    vectors, names = gallery
    [match] = make_matcher(strategy, vectors, names, SFACE.threshold, margin=SFACE.margin).match(vector(KNOWN))
    assert match.name == "Thierry_Falise"


def test_negatives_still_apply_after_the_margin(gallery, vector):
    vectors, names = gallery
    known = vector(KNOWN)
    matcher = make_matcher("nearest", vectors, names, SFACE.threshold, negatives=(known[None], ["Thierry_Falise"]),
                           margin=SFACE.margin)
    assert matcher.match(known)[0].name == UNKNOWN  # the user said this very face is not him


def test_the_library_names_with_the_profiles_margin(sface, tmp_path):
    """Enrolled and recognised as the scripts do (facerec.enrol, Recogniser): the look-alike Unknown, the known named."""
    assert SFACE.margin > 0 and PROFILES["openface"].margin == 0
    photos = shared_path("faces/lfw-dev") / "photos"
    for person, file in ENROLLED.items():
        (tmp_path / "dataset" / person).mkdir(parents=True)
        shutil.copy(photos / file, tmp_path / "dataset" / person)
    facerec.enrol(tmp_path / "dataset", tmp_path / "embeddings.pickle", sface)
    with facerec.Recogniser(sface, tmp_path / "embeddings.pickle") as recogniser:
        assert recogniser.naming.margin == SFACE.margin

        def central_name(file: str) -> str:
            faces = recogniser.recognise(read_image(photos / file))
            return min(faces, key=lambda face: abs((face.box[0] + face.box[2]) / 2 - 125)).name

        assert central_name(LOOK_ALIKE) == UNKNOWN
        assert central_name(STRANGER) == UNKNOWN
        assert central_name(KNOWN) == "Thierry_Falise"


def test_a_margin_outside_the_sphere_is_refused():
    with pytest.raises(ValueError, match="margin"):
        make_matcher("nearest", np.eye(2, dtype=np.float32), ["a", "b"], 1.0, margin=2.5)
    assert make_matcher("nearest", np.eye(2, dtype=np.float32), ["a", "b"], 1.5, margin=0).margin == 0
