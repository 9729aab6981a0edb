import errno
import gc
import os
import stat
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from dslgraph.data import DatasetFormatError, read_adjacency_lists, read_pairs
from dslgraph.data.io import read_count_lists, save_then_rename, write_then_rename

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


@pytest.mark.parametrize("content", [b"", b"\n \r\n", b" "])
def test_empty_files(tmp_path, content):
    path = write(tmp_path, content)
    # "::": a separator longer than a file of blanks (MovieLens-1M's ratings.dat)
    for read in (read_adjacency_lists, read_pairs, lambda path: read_pairs(path, "::")):
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


def test_a_whitespace_separator_matches_any_run_of_whitespace(tmp_path):
    """As documented: a tab-separated file (LastFM's) may hold two tabs in a row, a space, or a tab ending a
    line; only a separator that is not whitespace makes such a field empty or a blank part of a field."""
    path = write(tmp_path, b"1\t\t2\t3\n4 5\t6\t\n")
    index, values = read_pairs(path, "\t")
    assert index.tolist() == [[1, 4], [2, 5]] and values.tolist() == [[3.0], [6.0]]


def test_read_pairs_refuses_the_last_number_older_numpy_reads_in_part(tmp_path, monkeypatch):
    """NumPy < 2.3 (all that Python 3.10 has) reads '1.2.3' as 1.2 and stops with a DeprecationWarning: the
    file's last token was read as its prefix, the count of numbers matched, and the rating was 1.2."""

    def numpy_2_2(raw, dtype, sep):
        warnings.warn(
            "string could not be read to its end due to unmatched data", DeprecationWarning, stacklevel=2
        )
        return np.array([1.0, 2.0, 1.2], dtype=dtype)

    monkeypatch.setattr(np, "fromstring", numpy_2_2)
    with pytest.raises(DatasetFormatError, match="line 1: '1.2.3' is not a number"):
        read_pairs(write(tmp_path, b"1\t2\t1.2.3\n"), one_based=True)


@pytest.mark.parametrize(
    ("content", "line", "where"),
    [
        (b"1::2::3::4\n1::::3::4\n", 2, "two '::' in a row"),
        (b"::::3::4\n1::2::3::4\n", 1, "two '::' in a row"),  # the file's very first fields
        (b"1::2::3::4\n::2::3::4\n", 2, "a line starting with '::'"),
        (b"::2::3::4\n1::2::3::4\n", 1, "a line starting with '::'"),
        (b"1::2::3::4\n1::2::3::\n", 2, "a line ending with '::'"),
        (b"1::2::3::4\r\n1::2::3::\r\n", 2, "a line ending with '::'"),
        (b"1::2::3::4\n1::2::3::", 2, "a line ending with '::'"),  # no newline at the end
        # the first empty field in the file is named, whichever way it is empty
        (b"1::2::3::4\n1::2::3::\n1::::3::4\n::2::3::4\n", 2, "a line ending with '::'"),
    ],
)
def test_read_pairs_empty_field(tmp_path, content, line, where):
    # a field-count error would hide what is wrong: "expected 4 fields, got 3"
    path = write(tmp_path, content)
    with pytest.raises(DatasetFormatError, match=rf"line {line}: empty field \({where}\)"):
        read_pairs(path, "::")


def test_format_error_is_value_error():
    assert issubclass(DatasetFormatError, ValueError)


@pytest.mark.realdata
def test_gowalla_train_parses():
    path = SHARED / "gowalla" / "raw" / "train.txt"
    if not path.exists():
        pytest.skip("../shared/datasets/gowalla is not available")
    index = read_adjacency_lists(path, num_users=29_858, num_items=40_981)
    assert index.shape == (2, 810_128)


def python_calls(read: Callable[[], object]) -> int:
    """The number of Python function calls ``read`` makes (numpy's C functions not counted).

    Earlier tests' garbage is collected first and no collection runs during ``read``: one that did ran
    their finalizers (torch.compile's weakref callbacks) inside it, counted as ``read``'s calls."""
    count = 0

    def profile(frame, event, arg):
        nonlocal count
        count += event == "call"

    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    sys.setprofile(profile)
    try:
        read()
    finally:
        sys.setprofile(None)
        if enabled:
            gc.enable()
    return count


@pytest.mark.parametrize(
    ("read", "line"),
    [
        (read_adjacency_lists, lambda u: f"{u} " + " ".join(str((u * 7 + k) % 500) for k in range(20))),
        (lambda path: read_pairs(path, one_based=True), lambda u: f"{u + 1}\t{u % 9 + 1}\t{u * 0.5}"),
        (read_count_lists, lambda u: "3 " + " ".join(str((u + k) % 50) for k in range(3))),
    ],
    ids=["adjacency-lists", "pairs", "count-lists"],
)
def test_readers_do_no_python_work_per_line(tmp_path, read, line):
    """The files are tokenised and checked by numpy over the whole buffer: a file 100 times longer makes
    no more Python calls (a per-line or per-token Python loop made Gowalla's 810 k pairs take seconds)."""
    calls = []
    for lines in (100, 10_000):
        path = write(tmp_path, "".join(line(u) + "\n" for u in range(lines)).encode())
        calls.append(python_calls(lambda: read(path)))  # noqa: B023 (called at once)
    assert calls[0] == calls[1]


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


def test_duplicate_error_names_the_first_repeat_in_file_order(tmp_path):
    """Of several repeated pairs the error names the one repeated first in the file, wherever the pairs
    sort, and the line it repeats, in a file of more than 16 pairs in no order (where numpy's default,
    unstable sort puts some repeats before their originals)."""
    users = np.random.default_rng(0).permutation(np.arange(1, 31))
    rows = [f"{u}\t{u % 7 + 1}\t1" for u in users]
    rows.insert(21, rows[2])  # line 3's pair again on line 22
    rows.insert(26, rows[1])  # line 2's pair again on line 27: it sorts before line 3's
    path = write(tmp_path, ("\n".join(rows) + "\n").encode())
    with pytest.raises(DatasetFormatError) as info:
        read_pairs(path, one_based=True)
    user, item = users[2], users[2] % 7 + 1
    assert info.value.line == 22
    assert f"duplicate interaction (user {user}, item {item}), first seen on line 3" in str(info.value)


def test_a_repeated_pair_is_found_where_another_pair_shares_its_sort_key(tmp_path):
    """Pairs are sorted by ``user * span + item``: with ``span`` the largest item id rather than one past
    it, (0, 2) and (1, 0) share a key, stay in file order and kept the repeat of (0, 2) from its original."""
    path = write(tmp_path, b"0\t2\n1\t0\n0\t2\n")
    with pytest.raises(
        DatasetFormatError, match=r"line 3: duplicate interaction \(user 0, item 2\), first seen on line 1"
    ):
        read_pairs(path)


def test_user_listed_twice_names_the_first_repeat_in_file_order(tmp_path):
    path = write(tmp_path, b"5 1\n2 1\n5 2\n2 3\n")  # user 5 repeated on line 3, before user 2 on line 4
    with pytest.raises(DatasetFormatError, match=r"line 3: user 5 already listed on line 1"):
        read_adjacency_lists(path)


def test_read_pairs_refuses_item_0_of_a_one_based_file(tmp_path):
    path = write(tmp_path, b"1\t2\t3\n2\t0\t3\n")
    with pytest.raises(DatasetFormatError, match=r"line 2: id 0 in a file with 1-based ids"):
        read_pairs(path, one_based=True)


def test_read_pairs_checks_the_user_range(tmp_path):
    path = write(tmp_path, b"1\t2\t3\n4\t1\t3\n")
    with pytest.raises(
        DatasetFormatError, match=r"line 2: user id 4 is out of range: 3 users declared \(ids 1..3\)"
    ):
        read_pairs(path, one_based=True, num_users=3)


def test_write_then_rename_keeps_the_old_file_and_no_partial_when_writing_fails(tmp_path):
    path = tmp_path / "data.pt"
    path.write_bytes(b"old")

    def fail(tmp: Path) -> None:
        tmp.write_bytes(b"ha")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_then_rename(path, fail)
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["data.pt"]  # the half-written file of this (running) process is gone


@pytest.mark.parametrize(
    "save",
    [
        lambda path: write_then_rename(path, lambda tmp: tmp.write_bytes(b"x" * 10_000)),
        lambda path: save_then_rename({"weights": torch.zeros(10_000)}, path),
    ],
    ids=["write_then_rename", "save_then_rename"],
)
def test_a_file_that_does_not_fit_on_the_disk_is_named_and_the_old_one_kept(tmp_path, full_disk, save):
    """A full disk failed torch.save with a RuntimeError naming neither the file nor the cause (``unexpected
    pos 704 vs 598``), outside the OSError a run or UltraGCN's cache answers, and a plain write with an
    OSError naming no file: both name the file being made now."""
    path = tmp_path / "last.pt"
    path.write_bytes(b"old")
    with full_disk(), pytest.raises(OSError) as info:
        save(path)
    assert info.value.errno == errno.EFBIG and info.value.filename == str(path)
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["last.pt"]


def test_write_then_rename_in_a_read_only_folder_names_the_file(tmp_path, monkeypatch):
    """A read-only file system refuses to unlink even a file it lacks: the clean-up of a temporary file
    never made failed in place of the write, naming the temporary file."""

    def read_only(path, *args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

    monkeypatch.setattr(os, "unlink", read_only)
    with pytest.raises(OSError) as info:
        write_then_rename(tmp_path / "metrics.json", lambda tmp: read_only(tmp))
    assert info.value.errno == errno.EROFS and info.value.filename == str(tmp_path / "metrics.json")


def test_a_partial_that_cannot_be_removed_leaves_the_write_s_own_error(tmp_path, monkeypatch):
    """Windows refuses to unlink a file a virus scanner holds open: the clean-up's PermissionError was
    raised in place of the error that stopped the write."""
    path = tmp_path / "data.pt"
    path.write_bytes(b"old")

    def fail(tmp: Path) -> None:
        tmp.write_bytes(b"ha")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def held_open(self, *args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))

    monkeypatch.setattr(Path, "unlink", held_open)
    with pytest.raises(OSError) as info:
        write_then_rename(path, fail)
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(path)
    assert path.read_bytes() == b"old"


def test_write_then_rename_keeps_the_error_of_another_file(tmp_path):
    """A copy whose source cannot be read names the source, not the file it was to make."""
    source = tmp_path / "missing.txt"
    with pytest.raises(FileNotFoundError) as info:
        write_then_rename(tmp_path / "data1.txt", lambda tmp: tmp.write_bytes(source.read_bytes()))
    assert info.value.filename == str(source)


def test_write_then_rename_makes_the_folder_and_ignores_foreign_names(tmp_path):
    """A file in a folder not made yet is written, and a file that looks like a partial but names no
    process (``.NAME.tmp-old``, made by hand) is left alone rather than failing the write."""
    stray = tmp_path / "new" / ".f.txt.tmp-old"
    path = write_then_rename(tmp_path / "new" / "f.txt", lambda tmp: tmp.write_text("x"))
    assert path.read_text() == "x"
    stray.write_text("mine")
    huge = tmp_path / "new" / f".f.txt.tmp-{2**70}"  # digits, but past any process id: os.kill overflows
    huge.write_text("mine")
    assert write_then_rename(path, lambda tmp: tmp.write_text("y")).read_text() == "y"
    assert stray.read_text() == "mine" and huge.read_text() == "mine"


class _Unsaveable:
    def __reduce__(self):
        raise RuntimeError("cannot be pickled")


def test_save_then_rename_of_an_object_torch_cannot_save_keeps_its_error_and_the_old_file(tmp_path):
    path = tmp_path / "last.pt"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="cannot be pickled"):
        save_then_rename({"model": _Unsaveable()}, path)
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["last.pt"]


@pytest.mark.parametrize("content", [b"1\t2\n2\t3\n", b"1\t2\t3\t4\n2\t3\t4\t5\n"], ids=["fewer", "more"])
def test_read_pairs_refuses_a_file_of_other_fields_than_num_columns(tmp_path, content):
    """LastFM asks for 3 fields: a file of pairs alone, or of MovieLens' 4, is another format, not read."""
    path = write(tmp_path, content)
    with pytest.raises(DatasetFormatError, match=r"line 1: expected 3 fields separated by '\\t', got [24]"):
        read_pairs(path, num_columns=3)


def test_read_pairs_takes_the_first_line_s_fields_and_refuses_a_longer_line(tmp_path):
    """Every line must have the fields of the first: a line with more is refused where it stands, not
    read as the start of a shifted row."""
    path = write(tmp_path, b"1\t2\n2\t3\t4\n3\t1\n")
    with pytest.raises(DatasetFormatError, match=r"line 2: expected 2 fields separated by '\\t', got 3"):
        read_pairs(path)


@pytest.mark.parametrize(
    ("read", "content"),
    [
        (read_adjacency_lists, b"3 1 2\r\n2 1 4\r\n"),
        (lambda path: read_pairs(path)[0], b"3\t1\t2\r\n2\t1\t4\r\n"),
        (lambda path: read_pairs(path, "::")[0], b"3::1::2\r\n2::1::4\r\n"),
        (read_count_lists, b"2 1 2\r\n2 1 4\r\n"),
    ],
    ids=["adjacency-lists", "pairs", "pairs-::", "count-lists"],
)
def test_readers_take_a_utf8_byte_order_mark(tmp_path, read, content):
    """As Windows editors save files: the mark was read as part of the first id ('\\ufeff3')."""
    marked = read(write(tmp_path, b"\xef\xbb\xbf" + content, "marked.txt"))
    assert torch.equal(marked, read(write(tmp_path, content)))


@pytest.mark.parametrize(
    ("content", "line", "words", "fields"),
    [
        (
            b"1::10::5::978300760\n1\t11\t4\t978300761\n",
            2,
            4,
            1,
        ),  # MovieLens-100K's u.data, read as ratings.dat
        (b"1::10::5::978300760\n1::11 4::978300761\n", 2, 4, 3),
    ],
)
def test_read_pairs_refuses_blanks_inside_fields_of_another_separator(tmp_path, content, line, words, fields):
    """A blank split a field as "::" does: a tab-separated file was read whole under sep="::"."""
    path = write(tmp_path, content)
    with pytest.raises(
        DatasetFormatError, match=rf"line {line}: {words} values separated by blanks in {fields} "
    ):
        read_pairs(path, "::")
    # blanks around a separator or ending a line are no field of their own
    path = write(tmp_path, b"1 :: 10::5::978300760 \r\n2::11::4::978300761\n")
    assert read_pairs(path, "::")[0].tolist() == [[1, 2], [10, 11]]
