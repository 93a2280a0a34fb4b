"""People nobody has named yet: unknown faces kept on request and grouped into candidate people (issue 21)."""

from .store import (FACES_PER_TRACK, MAX_FACES, RETENTION_DAYS, KeptFace, KeptTrack, NoSuchGroup, UnknownGroup,
                    UnknownStore, open_unknowns)

__all__ = ["FACES_PER_TRACK", "MAX_FACES", "RETENTION_DAYS", "KeptFace", "KeptTrack", "NoSuchGroup", "UnknownGroup",
           "UnknownStore", "open_unknowns"]
