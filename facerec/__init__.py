"""facerec: detect, embed and recognise faces with OpenCV's dnn module.

The public API (README, "Use it from Python"; docs/library.md); each name comes from the module that owns it:

    models = facerec.load_models("sface")                         # facerec.models
    gallery = facerec.open_gallery("output/embeddings.pickle")    # facerec.stores
    recogniser = facerec.Recogniser(models, gallery)              # facerec.recognition
    faces = recogniser.recognise(image)                           #   or: for index, faces in recogniser.follow(video)
    facerec.verify(image_a, image_b, models)                      # facerec.verification
    facerec.enrol("dataset", "output/embeddings.pickle", models)  # facerec.enrolment
    facerec.FacerecError                                          # facerec.errors: every failure a user can fix

The names are imported when first used: `import facerec.errors` (the first line of every script, so
that a Ctrl-C during the slow imports ends quietly) does not load OpenCV. The scripts at the
repository root are thin front ends over this package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .version import __version__ as __version__  # one line, read by pyproject.toml and events/mqtt.py too

# public name -> the module that owns it
_OWNERS = {
    "EnrolmentReport": "enrolment", "enrol": "enrolment",
    "FacerecError": "errors",
    "Models": "models", "load_models": "models",
    "Face": "faces", "Recogniser": "recognition",
    "Gallery": "stores", "StoredGallery": "stores", "open_gallery": "stores",
    "Verdict": "verification", "verify": "verification",
}
__all__ = ["EnrolmentReport", "Face", "FacerecError", "Gallery", "Models", "Recogniser", "StoredGallery", "Verdict", "enrol",
           "load_models", "open_gallery", "verify"]  # the keys of _OWNERS

if TYPE_CHECKING:
    from .enrolment import EnrolmentReport, enrol
    from .errors import FacerecError
    from .models import Models, load_models
    from .faces import Face
    from .recognition import Recogniser
    from .stores import Gallery, StoredGallery, open_gallery
    from .verification import Verdict, verify


def __getattr__(name: str) -> Any:
    owner = _OWNERS.get(name)
    if owner is None:
        raise AttributeError(f"module 'facerec' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{owner}", __name__), name)
    globals()[name] = value  # found once
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
