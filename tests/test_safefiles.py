"""facerec.fileio: the one place that reads bounded regular files, names other kinds of file and makes temporaries."""

import os
import socket

import numpy as np
import pytest

from facerec.fileio import NAME_MAX, FileTooLarge, NotRegularFile, read_regular_file, temporary_file


def test_a_regular_file_is_read_as_bytes_or_into_a_writable_array(tmp_path):
    path = tmp_path / "data"
    path.write_bytes(b"0123456789")
    assert read_regular_file(path, 10) == b"0123456789"
    array = read_regular_file(path, 10, anonymous=True)
    assert array.dtype == np.uint8 and array.flags.writeable and array.tobytes() == b"0123456789"


def test_a_file_over_the_limit_is_refused_with_its_size(tmp_path):
    path = tmp_path / "data"
    path.write_bytes(b"x" * 11)
    for anonymous in (False, True):
        with pytest.raises(FileTooLarge) as refused:
            read_regular_file(path, 10, anonymous=anonymous)
        assert refused.value.size == 11 and not refused.value.grew


@pytest.mark.parametrize("make, kind", [
    (lambda path: os.mkfifo(path), "a FIFO"),
    (lambda path: socket.socket(socket.AF_UNIX).bind(str(path)), "a socket"),
    (lambda path: path.mkdir(), "a folder"),
])
def test_what_is_not_a_regular_file_is_named_not_read(tmp_path, make, kind):
    path = tmp_path / "thing"
    make(path)
    with pytest.raises(NotRegularFile) as refused:  # a FIFO without a writer would block a plain open
        read_regular_file(path, 10)
    assert refused.value.kind == kind


def test_a_temporary_beside_a_longest_name_fits_and_keeps_its_suffix(tmp_path):
    target = tmp_path / ("v" * (NAME_MAX - 4) + ".mp4")
    fd, name = temporary_file(target, suffix=".partial.mp4")
    os.close(fd)
    assert os.path.dirname(name) == str(tmp_path) and name.endswith(".partial.mp4")
    assert len(os.fsencode(os.path.basename(name))) <= NAME_MAX
