"""Gallery stores: where the face vectors live (see base.Store). Scripts open one with open_store."""

from .base import LEGACY_PROFILE, EmbeddingStore, Sighting, SightingLog, Store, StoreWriter, Watch
from .picklefile import (NotAStore, UnusableStore, check_profile, load_store, open_store_target,
                         save_store)

__all__ = ["LEGACY_PROFILE", "EmbeddingStore", "NotAStore", "Sighting", "SightingLog", "Store", "StoreWriter",
           "UnusableStore", "Watch", "check_profile", "load_store", "open_store_target", "save_store"]
