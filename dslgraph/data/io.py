"""Strict, vectorised readers for the raw interaction files of recommendation benchmarks.

Three formats are supported:

* adjacency lists (LightGCN / NGCF ``train.txt``/``test.txt``): one line per user,
  ``user item item ...``, whitespace separated, 0-based ids (:func:`read_adjacency_lists`);
* pair files: one interaction per line, ``user<sep>item[<sep>value ...]`` as in LastFM ``data1.txt``
  or MovieLens ``u.data``/``ratings.dat`` (:func:`read_pairs`);
* count lists (CiteULike ``users.dat``): line ``u`` is user ``u``'s ``count item item ...``
  (:func:`read_count_lists`).

Files are tokenised with numpy over the whole byte buffer (no per-token Python loop), yet every
malformed input raises a :class:`DatasetFormatError` naming the file, the 1-based line number and
the problem. Blank lines are ignored; ``\\r\\n`` line endings and a leading UTF-8 byte-order mark are
accepted. Files are written whole or not at all by :func:`write_then_rename` (processed datasets here,
checkpoints in :mod:`dslgraph.train`).
"""

from __future__ import annotations

import codecs
import contextlib
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..files import replace_file

# Ids are parsed through float64 when a file holds non-integer values, exact up to 2**53.
_MAX_ID_DIGITS = 15
# int64 holds every 18-digit number.
_MAX_INT64_DIGITS = 18

_WHITESPACE = np.zeros(256, dtype=bool)
_WHITESPACE[list(b" \t\n\r\v\f")] = True
_BLANK = _WHITESPACE.copy()  # whitespace within a line
_BLANK[list(b"\n\r")] = False
_NOT_DIGIT = ~_WHITESPACE
_NOT_DIGIT[list(b"0123456789")] = False
_NOT_NUMBER = _NOT_DIGIT.copy()
_NOT_NUMBER[list(b".+-eE")] = False


class DatasetFormatError(ValueError):
    """A raw dataset file that does not have the expected format.

    Args:
        path: The offending file.
        line: The 1-based line number of the problem, or :obj:`None` if it concerns the whole file.
        message: What is wrong.
    """

    def __init__(self, path: str | os.PathLike, line: int | None, message: str) -> None:
        self.path = Path(path)
        self.line = line
        where = f"{self.path}" if line is None else f"{self.path}, line {line}"
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class _Tokens:
    """The whitespace-delimited tokens of a file: byte offsets and 1-based line numbers."""

    path: Path
    raw: bytes
    buf: np.ndarray
    start: np.ndarray
    end: np.ndarray
    line: np.ndarray

    def text(self, k: int) -> str:
        return self.raw[self.start[k] : self.end[k]].decode("utf-8", errors="replace")

    def error(self, k: int, message: str) -> DatasetFormatError:
        return DatasetFormatError(self.path, int(self.line[k]), message)

    def line_starts(self) -> np.ndarray:
        """The index of the first token of every non-blank line."""
        return np.flatnonzero(np.r_[True, self.line[1:] != self.line[:-1]])

    def flagged(self, table: np.ndarray) -> np.ndarray:
        """The indices (ascending, repeated) of the tokens holding a byte that ``table`` flags."""
        return np.searchsorted(self.start, np.flatnonzero(table[self.buf]), side="right") - 1

    def parse(self) -> np.ndarray:
        """All tokens as numbers (int64 if they all are short integers, else float64)."""
        integral = self.flagged(_NOT_DIGIT).size == 0 and (self.end - self.start).max() <= _MAX_INT64_DIGITS
        try:
            # numpy >= 2.3 raises on a token it cannot read ("-", "1.2.3"); older numpy stops there with a
            # DeprecationWarning, keeping what it read of it ("1.2"), which the count misses in the last token
            with warnings.catch_warnings():
                warnings.simplefilter("error", DeprecationWarning)
                values = np.fromstring(self.raw, dtype=np.int64 if integral else np.float64, sep=" ")
        except (ValueError, DeprecationWarning):
            values = np.empty(0)
        if values.size != self.start.size:
            bad = next((k for k in range(self.start.size) if not is_number(self.text(k))), values.size)
            raise self.error(bad, f"{self.text(bad)!r} is not a number")
        return values


def is_number(token: str) -> bool:
    """Whether ``token`` reads as a number (``float`` takes it): a file's field, or ``-0.5``, a flag's value
    rather than a flag."""
    try:
        float(token)
    except ValueError:
        return False
    return True


def _first_empty_field(raw: bytes, sep: str) -> tuple[int, str] | None:
    """The byte offset of a file's first empty field between ``sep`` separators, and how it is empty."""
    encoded = sep.encode()
    raw = b"\n" + raw + b"\n"  # the file's first and last lines like any other; offsets shift by 1
    found = []
    for pattern, shift, where in (
        (encoded * 2, 0, f"two {sep!r} in a row"),
        (b"\n" + encoded, 1, f"a line starting with {sep!r}"),
        (encoded + b"\n", 0, f"a line ending with {sep!r}"),
        (encoded + b"\r\n", 0, f"a line ending with {sep!r}"),
    ):
        pos = raw.find(pattern)
        if pos >= 0:
            found.append((pos + shift - 1, where))
    return min(found, key=lambda entry: entry[0], default=None)


def _without_bom(raw: bytes) -> bytes:
    """``raw`` with a leading UTF-8 byte-order mark (as Windows editors save files) made blanks, which keeps
    the offsets of every byte; it was read as part of the first id (``'\\ufeff0'``)."""
    return b"   " + raw[3:] if raw.startswith(codecs.BOM_UTF8) else raw


def _occurrences(buf: np.ndarray, pattern: bytes) -> np.ndarray:
    """The offsets in ``buf`` at which ``pattern`` starts."""
    n = buf.size - len(pattern) + 1
    if n <= 0:
        return np.empty(0, dtype=np.int64)
    hit = buf[:n] == pattern[0]
    for k in range(1, len(pattern)):
        hit &= buf[k : k + n] == pattern[k]
    return np.flatnonzero(hit)


def _tokenize(path: str | os.PathLike, sep: str | None = None) -> _Tokens:
    path = Path(path)
    raw = _without_bom(path.read_bytes())
    separators = None
    if sep is not None and not sep.isspace():
        empty = _first_empty_field(raw, sep)
        if empty is not None:
            pos, where = empty
            raise DatasetFormatError(path, raw.count(b"\n", 0, pos) + 1, f"empty field ({where})")
        buf = np.frombuffer(raw, dtype=np.uint8)
        if _BLANK[buf].any():  # fields hold no blank: counted only where the file has some
            separators = (
                np.searchsorted(np.flatnonzero(buf == ord("\n")), _occurrences(buf, sep.encode())) + 1
            )
        raw = raw.replace(sep.encode(), b" ")
    buf = np.frombuffer(raw, dtype=np.uint8)
    edge = np.diff(np.r_[0, (~_WHITESPACE[buf]).view(np.int8), 0])
    start = np.flatnonzero(edge == 1)
    if start.size == 0:
        raise DatasetFormatError(path, None, "file is empty")
    end = np.flatnonzero(edge == -1)
    line = np.searchsorted(np.flatnonzero(buf == ord("\n")), start) + 1
    tokens = _Tokens(path, raw, buf, start, end, line)
    if separators is not None:
        _check_no_blank_inside_fields(tokens, separators, sep)
    return tokens


def _check_no_blank_inside_fields(tokens: _Tokens, separators: np.ndarray, sep: str) -> None:
    """Refuses a line of more blank-separated words than ``sep``-separated fields: a field holding a blank, as
    each line of a file separated by tabs does where ``sep`` is ``"::"`` (MovieLens-100K's ``u.data`` read as
    MovieLens-1M's ``ratings.dat`` was taken whole). Blanks around a separator or at either end of a line
    stay allowed."""
    size = int(tokens.line[-1]) + 1
    words = np.bincount(tokens.line, minlength=size)
    fields = np.bincount(separators, minlength=size)[:size] + 1
    bad = np.flatnonzero(words > fields)
    if bad.size:
        line = int(bad[0])
        raise DatasetFormatError(
            tokens.path,
            line,
            f"{words[line]} values separated by blanks in {fields[line]} field(s) separated by {sep!r}: a "
            "field holds a blank (a file separated by tabs or spaces?)",
        )


def _check_ids(tokens: _Tokens, is_id: np.ndarray) -> None:
    """Checks that the tokens flagged by ``is_id`` are non-negative integers of a few digits."""
    bad = tokens.flagged(_NOT_DIGIT)
    bad = bad[is_id[bad]]
    if bad.size:
        k = int(bad[0])
        text = tokens.text(k)
        if text.startswith("-") and text[1:].isdigit():
            raise tokens.error(k, f"negative id {text}")
        raise tokens.error(k, f"expected a non-negative integer id, got {text!r}")
    too_long = np.flatnonzero(is_id & (tokens.end - tokens.start > _MAX_ID_DIGITS))
    if too_long.size:
        k = int(too_long[0])
        raise tokens.error(k, f"id {tokens.text(k)} has more than {_MAX_ID_DIGITS} digits")


def _check_range(
    tokens: _Tokens, ids: np.ndarray, index: np.ndarray, count: int | None, kind: str, offset: int
) -> None:
    if count is None:
        return
    bad = np.flatnonzero(ids >= count)
    if bad.size:
        k = bad[0]
        raise tokens.error(
            int(index[k]),
            f"{kind} id {ids[k] + offset} is out of range: {count} {kind}s declared "
            f"(ids {offset}..{count - 1 + offset})",
        )


def _check_duplicates(
    tokens: _Tokens, user: np.ndarray, item: np.ndarray, index: np.ndarray, offset: int
) -> None:
    if item.size == 0:  # e.g. a test file whose lines hold users only
        return
    span = int(item.max()) + 1
    if int(user.max()) < np.iinfo(np.int64).max // span:
        order = np.argsort(user * span + item, kind="stable")  # equal pairs stay in file order
    else:  # ids too large for one int64 key
        order = np.lexsort((item, user))
    same = (user[order][1:] == user[order][:-1]) & (item[order][1:] == item[order][:-1])
    dup = np.flatnonzero(same)
    if dup.size:
        j = dup[np.argmin(order[dup + 1])]
        first, again = order[j], order[j + 1]
        raise tokens.error(
            int(index[again]),
            f"duplicate interaction (user {user[again] + offset}, item {item[again] + offset}), "
            f"first seen on line {tokens.line[index[first]]}",
        )


def read_adjacency_lists(
    path: str | os.PathLike,
    num_users: int | None = None,
    num_items: int | None = None,
) -> Tensor:
    """Reads a LightGCN-format adjacency-list file into a ``[2, E]`` user-item index tensor.

    Each non-blank line is ``user item item ...`` (whitespace separated, 0-based ids). A line holding
    only a user (no items) is accepted, as found in test files; a user listed twice or an item listed
    twice for the same user is an error.

    The ids are returned as the file holds them, not renumbered and with no bound but ``num_users`` /
    ``num_items``: a caller counting nodes as one past the largest id (an embedding row each) gets as many
    rows as the largest id asks for, so renumber sparse ids first (the datasets refuse ids ten times sparser
    than the distinct ones; :meth:`~dslgraph.data.InteractionDataset.from_csv` numbers them).

    Args:
        path: The file to read.
        num_users: If given, every user id must be smaller. (default: :obj:`None`)
        num_items: If given, every item id must be smaller. (default: :obj:`None`)
    """
    tokens = _tokenize(path)
    _check_ids(tokens, np.ones(tokens.start.size, dtype=bool))
    ids = tokens.parse().astype(np.int64)

    first = tokens.line_starts()
    users = ids[first]
    _check_range(tokens, users, first, num_users, "user", 0)
    order = np.argsort(users, kind="stable")
    again = np.flatnonzero(users[order][1:] == users[order][:-1])
    if again.size:
        j = again[np.argmin(order[again + 1])]
        k, earlier = first[order[j + 1]], first[order[j]]
        raise tokens.error(int(k), f"user {users[order[j]]} already listed on line {tokens.line[earlier]}")

    is_item = np.ones(tokens.start.size, dtype=bool)
    is_item[first] = False
    item_index = np.flatnonzero(is_item)
    item = ids[item_index]
    _check_range(tokens, item, item_index, num_items, "item", 0)
    user = np.repeat(users, np.diff(np.r_[first, tokens.start.size]) - 1)
    _check_duplicates(tokens, user, item, item_index, 0)
    return torch.from_numpy(np.stack([user, item]))


def read_count_lists(path: str | os.PathLike) -> Tensor:
    """Reads a file of one user per line, ``count item item ...`` (0-based item ids; CiteULike's
    ``users.dat``), as a ``[2, E]`` index; the user of a line is its 0-based line number."""
    tokens = _tokenize(path)
    _check_ids(tokens, np.ones(tokens.start.size, dtype=bool))
    ids = tokens.parse().astype(np.int64)
    first = tokens.line_starts()
    listed = np.diff(np.r_[first, ids.size]) - 1
    bad = np.flatnonzero(ids[first] != listed)
    if bad.size:
        k = bad[0]
        raise tokens.error(int(first[k]), f"the line declares {ids[first[k]]} items but lists {listed[k]}")
    is_item = np.ones(ids.size, dtype=bool)
    is_item[first] = False
    item_index = np.flatnonzero(is_item)
    user = tokens.line[item_index] - 1
    item = ids[item_index]
    if item.size == 0:
        raise DatasetFormatError(path, None, "no interaction listed")
    _check_duplicates(tokens, user, item, item_index, 0)
    return torch.from_numpy(np.stack([user, item]))


def read_pairs(
    path: str | os.PathLike,
    sep: str = "\t",
    one_based: bool = False,
    num_users: int | None = None,
    num_items: int | None = None,
    num_columns: int | None = None,
) -> tuple[Tensor, Tensor]:
    """Reads a file of one interaction per line, ``user<sep>item[<sep>value ...]``.

    Returns the ``[2, E]`` 0-based user-item index tensor and the ``[E, C - 2]`` float64 tensor of the
    remaining columns (e.g. LastFM listening counts, MovieLens rating and timestamp). A separator
    made of whitespace matches any run of whitespace. Every line must have the same number of
    fields; a pair listed twice is an error.

    The ids are returned as the file holds them, not renumbered and with no bound but ``num_users`` /
    ``num_items``: a caller counting nodes as one past the largest id (an embedding row each) gets as many
    rows as the largest id asks for, so renumber sparse ids first (the datasets refuse ids ten times sparser
    than the distinct ones; :meth:`~dslgraph.data.InteractionDataset.from_csv` numbers them).

    Args:
        path: The file to read.
        sep: The field separator, e.g. ``"\\t"`` or ``"::"``. (default: ``"\\t"``)
        one_based: Whether ids in the file start at 1; they are shifted to start at 0.
            (default: :obj:`False`)
        num_users: If given, the number of users: ids in the file must lie in ``[0, num_users)``,
            or ``[1, num_users]`` if :obj:`one_based`. (default: :obj:`None`)
        num_items: Likewise for items. (default: :obj:`None`)
        num_columns: The expected number of fields per line; by default that of the first line.
            (default: :obj:`None`)
    """
    tokens = _tokenize(path, sep)
    first = tokens.line_starts()
    fields = np.diff(np.r_[first, tokens.start.size])
    expected = int(fields[0]) if num_columns is None else num_columns
    if expected < 2:
        raise tokens.error(0, f"expected at least 2 fields (user{sep}item), got {expected}")
    bad = np.flatnonzero(fields != expected)
    if bad.size:
        k = int(first[bad[0]])
        raise tokens.error(k, f"expected {expected} fields separated by {sep!r}, got {fields[bad[0]]}")

    column = np.arange(tokens.start.size) % expected
    _check_ids(tokens, column < 2)
    not_number = tokens.flagged(_NOT_NUMBER)
    if not_number.size:
        k = int(not_number[0])
        raise tokens.error(k, f"{tokens.text(k)!r} is not a number")
    values = tokens.parse().reshape(-1, expected)
    not_finite = np.flatnonzero(~np.isfinite(values[:, 2:]).all(axis=1))
    if not_finite.size:
        row = int(not_finite[0])
        raise tokens.error(int(first[row]), f"not a finite number among {values[row, 2:].tolist()}")
    ids = values[:, :2].astype(np.int64)
    offset = int(one_based)
    if one_based:
        zero = np.flatnonzero((ids == 0).any(axis=1))
        if zero.size:
            raise tokens.error(int(first[zero[0]]), "id 0 in a file with 1-based ids")
        ids -= 1
    user, item = ids[:, 0], ids[:, 1]
    _check_range(tokens, user, first, num_users, "user", offset)
    _check_range(tokens, item, first + 1, num_items, "item", offset)
    _check_duplicates(tokens, user, item, first + 1, offset)
    return torch.from_numpy(np.stack([user, item])), torch.from_numpy(values[:, 2:].astype(np.float64))


def pair_lines(path: str | os.PathLike, sep: str = "\t") -> np.ndarray:
    """The 1-based line of each row :func:`read_pairs` reads from ``path`` with ``sep`` (blank lines hold
    none), for an error found later in a row's values to name its line."""
    tokens = _tokenize(path, sep)
    return tokens.line[tokens.line_starts()]


def write_then_rename(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Makes ``path`` by ``write``-ing a temporary file beside it (``.NAME.tmp-PID``, which
    :func:`~dslgraph.train.locked_output` clears after a crash, and so does the next write of ``path``
    once process PID has ended) and renaming it: a crash leaves the old file whole. The file is flushed
    to disk before the rename and the directory after it, so that a power loss leaves the old file or
    the new one, not an empty one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_partials(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        _fsync(tmp, os.O_RDONLY if os.name == "posix" else os.O_RDWR)  # Windows flushes written handles only
        replace_file(tmp, path)  # retried where Windows finds the old file open
    except OSError as exc:
        # a failed write (a full disk) names no file, a failed open or rename the temporary one: the error
        # names the file being made, as the same subclass (PermissionError, ...); one naming another file
        # (the source of a copy) is kept
        if exc.errno is None or exc.filename not in (None, os.fspath(tmp)):
            raise
        raise OSError(exc.errno, exc.strerror, os.fspath(path)) from exc
    finally:
        # a read-only folder refuses to unlink even a file it lacks (EROFS, not ENOENT), and Windows one that
        # a scanner holds open: then the partial is left for the next write to clear, not raised in place of
        # the error that stopped this one
        if tmp.exists():
            with contextlib.suppress(OSError):
                tmp.unlink()
    # The rename is durable once the directory is: POSIX opens one to fsync it, Windows cannot
    with contextlib.suppress(OSError):
        _fsync(path.parent, os.O_RDONLY)
    return path


def save_then_rename(obj: object, path: str | os.PathLike) -> Path:
    """``torch.save(obj)`` to ``path`` through :func:`write_then_rename`. Saved through a Python file: torch
    saving to a file name reports a failed write (a full disk) as a ``RuntimeError`` naming neither the
    file nor the cause (``unexpected pos 704 vs 598``), to a Python file with the :class:`OSError` as its
    context, raised here instead."""

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as file:
            try:
                torch.save(obj, file)
            except RuntimeError as exc:
                if isinstance(exc.__context__, OSError):
                    raise exc.__context__ from None
                raise

    return write_then_rename(path, write)


def _fsync(path: Path, flags: int) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_stale_partials(path: Path) -> None:
    """Removes the temporary files of ``path`` that processes killed while writing it left behind (a
    dataset's ``data.pt`` has no run lock to clear them); those of running processes are theirs."""
    if os.name != "posix":  # os.kill(pid, 0) probes a process only on POSIX
        return
    for partial in path.parent.glob(f".{path.name}.tmp-*"):
        pid = partial.name.rpartition("-")[2]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            partial.unlink(missing_ok=True)
        except (PermissionError, OverflowError):  # another user's process, or no process id
            continue
