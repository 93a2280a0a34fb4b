"""The guard of the shared assets (conftest.py): its listing sees a file created, removed or changed anywhere
under the folder, and folders, so that a test writing into ../shared fails."""

from __future__ import annotations

import os

import conftest


def test_the_listing_sees_every_creation_removal_and_change_at_any_depth(tmp_path, monkeypatch):
    monkeypatch.setattr(conftest, "SHARED", tmp_path)
    (tmp_path / "models" / "deep").mkdir(parents=True)
    model = tmp_path / "models" / "deep" / "net.onnx"
    model.write_bytes(b"weights")
    (tmp_path / "link").symlink_to(model)
    before, hashed = conftest.shared_listing(hashes=False), conftest.shared_listing(hashes=True)
    assert set(before) == {"models/", "models/deep/", "models/deep/net.onnx", "link"}
    assert conftest.listing_changes(before, conftest.shared_listing(hashes=False)) == []

    (tmp_path / "models" / "deep" / "checksums.json").write_text("{}")
    model.write_bytes(b"WEIGHTS")  # same size: the listing without hashes sees the time, the hashed one the bytes
    os.utime(model, ns=(1, 1))
    (tmp_path / "link").unlink()
    changes = conftest.listing_changes(before, conftest.shared_listing(hashes=False))
    assert changes == ["created models/deep/checksums.json", "removed link", "changed models/deep/net.onnx"]
    assert "changed models/deep/net.onnx" in conftest.listing_changes(hashed, conftest.shared_listing(hashes=True))
