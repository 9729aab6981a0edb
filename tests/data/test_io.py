import errno
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from dslgraph.data import DatasetFormatError, read_adjacency_lists, read_pairs
from dslgraph.data.io import write_then_rename

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "datasets"


def write(tmp_path: Path, content: bytes, name: str = "f.txt") -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


@pytest.mark.parametrize("newline", [b"\n", b"\r\n"])
def test_read_adjacency_lists(tmp_path, newline):
    lines = [b"0 1 2", b"1", b"", b"3 0 ", b"2 4"]
    index = read_adjacency_lists(write(tmp_path, newline.join(lines) + newline))
    assert index.dtype == torch.long
    assert index.tolist() == [[0, 0, 3, 2], [1, 2, 0, 4]]


@pytest.mark.parametrize(
    ("content", "line", "message"),
    [
        (b"0 1\n1 x\n", 2, "expected a non-negative integer id, got 'x'"),
        (b"0 1\n1 2\n2 -3\n", 3, "negative id -3"),
        (b"0 1.5\n", 1, "got '1.5'"),
        (b"0 1\n0 2\n", 2, "user 0 already listed on line 1"),
        (b"0 1 2\n1 2 1 2\n", 2, "duplicate interaction (user 1, item 2), first seen on line 2"),
        (b"0 1\n7 2\n", 2, "user id 7 is out of range: 5 users declared"),
        (b"0 1\n1 2 3 9\n", 2, "item id 9 is out of range: 4 items declared (ids 0..3)"),
        (b"0 1234567890123456\n", 1, "more than 15 digits"),
    ],
)
def test_read_adjacency_lists_errors(tmp_path, content, line, message):
    path = write(tmp_path, content, "train.txt")
    with pytest.raises(DatasetFormatError) as info:
        read_adjacency_lists(path, num_users=5, num_items=4)
    assert str(info.value).startswith(f"{path}, line {line}: ")
    assert message in str(info.value)
    assert info.value.line == line and info.value.path == path


def test_read_adjacency_lists_of_users_only(tmp_path):
    index = read_adjacency_lists(write(tmp_path, b"0\n1\n"))
    assert index.dtype == torch.long and index.shape == (2, 0)


@pytest.mark.parametrize("content", [b"", b"\n \r\n"])
def test_empty_files(tmp_path, content):
    path = write(tmp_path, content)
    for read in (read_adjacency_lists, read_pairs):
        with pytest.raises(DatasetFormatError, match="file is empty"):
            read(path)


def test_read_pairs(tmp_path):
    path = write(tmp_path, b"1\t2\t993\r\n3\t1\t7.5\r\n\r\n2\t2\t1\r\n")
    index, values = read_pairs(path, one_based=True, num_users=3, num_items=2)
    assert index.tolist() == [[0, 2, 1], [1, 0, 1]]
    assert values.dtype == torch.float64
    assert values.squeeze(1).tolist() == [993.0, 7.5, 1.0]


def test_read_pairs_multichar_separator(tmp_path):
    path = write(tmp_path, b"1::10::5::978300760\n2::20::3::978302109\n")
    index, values = read_pairs(path, "::", one_based=False, num_columns=4)
    assert index.tolist() == [[1, 2], [10, 20]]
    assert values.tolist() == [[5.0, 978300760.0], [3.0, 978302109.0]]


@pytest.mark.parametrize(
    ("content", "line", "message"),
    [
        (b"1\t2\t3\n2\t3\n", 2, "expected 3 fields separated by '\\t', got 2"),
        (b"1\t2\t3\n0\t3\t4\n", 2, "id 0 in a file with 1-based ids"),
        (b"1\t2\t3\n1\tb\t3\n", 2, "expected a non-negative integer id, got 'b'"),
        (b"1\t2\tx\n", 1, "'x' is not a number"),
        (b"1\t2\t3\n1\t3\t-\n", 2, "'-' is not a number"),  # characters of numbers, not a number
        (b"1\t2\t1.2.3\n", 1, "'1.2.3' is not a number"),
        (b"1\t2\t1e999\n", 1, "not a finite number"),
        (b"1\t2\t3\n2\t2\t3\n1\t2\t4\n", 3, "duplicate interaction (user 1, item 2), first seen on line 1"),
        (b"1\t2\t3\n1\t6\t3\n", 2, "item id 6 is out of range: 5 items declared (ids 1..5)"),
        (b"1\n", 1, "expected at least 2 fields"),
    ],
)
def test_read_pairs_errors(tmp_path, content, line, message):
    path = write(tmp_path, content, "data1.txt")
    with pytest.raises(DatasetFormatError) as info:
        read_pairs(path, one_based=True, num_items=5)
    assert str(info.value).startswith(f"{path}, line {line}: ")
    assert message in str(info.value)


def test_read_pairs_empty_field(tmp_path):
    path = write(tmp_path, b"1::2::3::4\n1::::3::4\n")
    with pytest.raises(DatasetFormatError, match=r"line 2: empty field"):
        read_pairs(path, "::")


def test_format_error_is_value_error():
    assert issubclass(DatasetFormatError, ValueError)


@pytest.mark.realdata
def test_gowalla_train_parses_fast():
    path = SHARED / "gowalla" / "raw" / "train.txt"
    if not path.exists():
        pytest.skip("../shared/datasets/gowalla is not available")
    start = time.perf_counter()
    index = read_adjacency_lists(path, num_users=29_858, num_items=40_981)
    elapsed = time.perf_counter() - start
    assert index.shape == (2, 810_128)
    assert elapsed < 2.0


@pytest.mark.skipif(os.name != "posix", reason="processes are probed with os.kill(pid, 0) on POSIX only")
def test_write_then_rename_clears_partials_of_ended_processes(tmp_path):
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    path = tmp_path / "data.pt"
    killed = tmp_path / f".data.pt.tmp-{ended.pid}"  # what a process killed while writing leaves
    running = tmp_path / f".data.pt.tmp-{os.getppid()}"  # a process writing it now
    other = tmp_path / ".other.pt.tmp-1"
    for partial in (killed, running, other):
        partial.write_bytes(b"half")
    write_then_rename(path, lambda tmp: tmp.write_bytes(b"whole"))
    assert path.read_bytes() == b"whole"
    assert not killed.exists() and running.exists() and other.exists()


def test_write_then_rename_flushes_the_file_before_the_rename(tmp_path, monkeypatch):
    """Renamed without an fsync, the file could be empty after a power loss: the rename may reach the
    disk before the data."""
    events = []
    fsync, replace = os.fsync, os.replace

    def recording_fsync(fd):
        events.append(("fsync", os.fstat(fd).st_ino))
        fsync(fd)

    def recording_replace(src, dst):
        events.append(("replace", os.stat(src).st_ino))
        replace(src, dst)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    monkeypatch.setattr(os, "replace", recording_replace)
    path = write_then_rename(tmp_path / "metrics.json", lambda tmp: tmp.write_text("{}"))
    assert path.read_text() == "{}"
    file = os.stat(path).st_ino
    assert events[:2] == [("fsync", file), ("replace", file)]
    if os.name == "posix":  # the directory, so that the rename itself survives
        assert events[2:] == [("fsync", os.stat(tmp_path).st_ino)]


def test_write_then_rename_goes_on_where_a_directory_cannot_be_flushed(tmp_path, monkeypatch):
    """Windows cannot open a directory to fsync it, and some file systems refuse to: the file is written."""
    fsync = os.fsync

    def refusing_fsync(fd):
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "Invalid argument")
        fsync(fd)

    monkeypatch.setattr(os, "fsync", refusing_fsync)
    assert write_then_rename(tmp_path / "f.txt", lambda tmp: tmp.write_text("x")).read_text() == "x"
