"""Who is who in ../shared: the probe photos as ../shared/README.md describes them, and the clip as checked by eye.

Used by bench/sface_threshold.py and the tests (tests/conftest.py puts bench/ on the path). Faces of a photo are
named left to right (by the centre of their box).
"""

from __future__ import annotations

KNOWN_PEOPLE = ("alex_lacamoire", "biden", "kit_harington", "obama", "rose_leslie")

# Each probe photo's faces, left to right. "lin" (Lin-Manuel Miranda) and "child" are in no photo of faces/known.
PROBE_FACES: dict[str, tuple[str, ...]] = {
    "alex_lacamoire1.jpg": ("alex_lacamoire",),
    "alex-lacamoire.png": ("alex_lacamoire",),
    "obama1.jpg": ("obama",),
    "obama3.jpg": ("obama",),
    "obama_small.jpg": ("obama",),
    "johnsnow_test1.jpg": ("kit_harington",),
    "two_people.jpg": ("obama", "biden"),
    "obama_and_biden.jpg": ("biden", "obama", "child"),  # the child is low at the right edge
    "kit_with_rose.jpg": ("rose_leslie", "kit_harington"),
    "lin-manuel-miranda.png": ("lin",),
}

# Probe photos cut from a photo of faces/known: the same picture, so no evidence of identity.
SAME_PICTURE_AS_KNOWN: dict[str, str] = {
    "obama-240p.jpg": "obama/obama.jpg",
    "obama_partial_face.jpg": "obama/obama.jpg",
    "obama_partial_face2.jpg": "obama/obama.jpg",
    "32bit.png": "obama/obama2.jpg",
}
SAME_PICTURE_FACES = {("two_people.jpg", 1): "biden/biden.jpg"}  # biden's face in two_people.jpg

# The clip (short_hamilton_clip.mp4) is the 2009 White House poetry jam, checked frame by frame by eye:
# frames 211-274 are one shot of the audience, with Barack Obama (seated, in profile, laughing) between
# two women; Lin-Manuel Miranda and Alex Lacamoire are on stage, not in that shot.
AUDIENCE_SHOT = range(211, 275)
OBAMA_SEAT_X = (330, 380)  # the centre of Obama's face box in the audience shot, in pixels
# frames 20-46: Alex Lacamoire's head in close-up profile, the one face wider than 140 px.
ALEX_CLOSE_UP = range(20, 47)
ALEX_CLOSE_UP_MIN_WIDTH = 140
NOT_IN_CLIP = ("biden", "kit_harington", "rose_leslie")

# Everyone the clip shows, by shot, checked by eye (frames 0, 22, 45, 51, 59, 65, 71, 78, 150, 211, 224, 230, 260 and
# the crops of every track of the sface profile, bench/unknowns.py): each face's person from its frame and the
# centre of its box. Shot 1 (frames 0-19): Lin-Manuel Miranda at the microphone (right), Alex Lacamoire at the piano
# (left; curly hair and beard, as probe/alex-lacamoire.png). Shot 2 (20-81): Alex Lacamoire's close-up, and behind
# him, blurred, a man in a dark suit with a hand at his chin (left) and a woman with long dark hair (right), both in
# one frame (51), so two people. Shot 3 (82-210): Lin-Manuel Miranda alone. Shot 4 (211-274), the audience, left to
# right: a man, a blurred head behind him (both in frame 224), a woman in a striped top, Barack Obama, Michelle Obama,
# a face cut by the right edge. The two blurred people of shot 2 are named apart from those of shot 4: no face of
# either can be told from another at that blur, so this assumes they are not the same people.
STAGE_SHOT = range(20, 82)
LIN_ALONE = range(82, 211)
AUDIENCE_ROWS = ((130, "audience man at the left"), (290, "audience woman in stripes"),  # right edges of seats, px
                 (390, "obama"), (540, "michelle_obama"), (640, "audience face at the right edge"))
BEHIND_LEFT_MAN_Y = 80  # a face centred above this (and left of 130 px) is the head behind the man at the left


def clip_person(frame: int, box) -> str:
    """Who a face of the clip is (every face the sface profile's detector finds), as checked by eye (see above)."""
    x1, y1, x2, y2 = box
    x, y = (x1 + x2) / 2, (y1 + y2) / 2
    if frame < STAGE_SHOT.start:
        return "alex_lacamoire" if x < 320 else "lin"
    if frame in STAGE_SHOT:
        if frame in ALEX_CLOSE_UP and x2 - x1 >= ALEX_CLOSE_UP_MIN_WIDTH:
            return "alex_lacamoire"
        return "stage-shot audience man" if x < 320 else "stage-shot audience woman"
    if frame in LIN_ALONE:
        return "lin"
    if x < AUDIENCE_ROWS[0][0] and y < BEHIND_LEFT_MAN_Y:
        return "audience head behind the man at the left"
    return next(person for right, person in AUDIENCE_ROWS if x < right or right == AUDIENCE_ROWS[-1][0])


def right_name(frame: int, box, enrolled) -> str:
    """The name a face of the clip should be given by a gallery of the people `enrolled`: clip_person's, or
    "Unknown" for anyone not in it."""
    person = clip_person(frame, box)
    return person if person in enrolled else "Unknown"


def named_rightly(records, enrolled) -> int:
    """How many faces of recognize_video.py --json records (of the clip) carry their right_name."""
    return sum(face["name"] == right_name(record["frame"], face["box"], enrolled)
               for record in records for face in record["faces"])


def left_to_right(boxes):
    """Indices of the boxes (x1, y1, x2, y2) from left to right."""
    return sorted(range(len(boxes)), key=lambda i: boxes[i][0] + boxes[i][2])


def clip_face_identity(frame: int, box) -> str | None:
    """Who a face of the clip is, where that was checked by eye: 'obama', 'alex_lacamoire', 'audience', or None."""
    x1, _, x2, _ = box
    if frame in AUDIENCE_SHOT:
        return "obama" if OBAMA_SEAT_X[0] <= (x1 + x2) / 2 <= OBAMA_SEAT_X[1] else "audience"
    if frame in ALEX_CLOSE_UP and x2 - x1 >= ALEX_CLOSE_UP_MIN_WIDTH:
        return "alex_lacamoire"
    return None
