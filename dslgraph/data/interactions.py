"""Interaction datasets built from user tables, and the per-user train/test splits they use.

:class:`InteractionDataset` turns any table of ``(user, item[, rating][, time])`` rows, with ids of any
type, into the :class:`~torch_geometric.data.HeteroData` layout of :mod:`dslgraph.data.graph`.
:func:`holdout_mask` and :func:`leave_one_out_mask` are the vectorised, seeded per-user splits shared
with the benchmark datasets of :mod:`dslgraph.data.datasets`.
"""

from __future__ import annotations

import io
import logging
import os
import os.path as osp
import re
import sys
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch_geometric
from torch import Tensor
from torch_geometric.data import HeteroData, InMemoryDataset

from ..checks import is_count, is_real, is_sequence
from .graph import check_numbering, check_user_ids, make_interaction_data
from .io import is_number

log = logging.getLogger(__name__)

SPLITS = ("random", "leave-one-out", "temporal")

Seed = int | np.random.Generator


def holdout_latest(user: Tensor, num_holdout: Tensor, key: Tensor | None, rng: np.random.Generator) -> Tensor:
    """Marks, for every user ``u``, the ``num_holdout[u]`` interactions with the largest ``key``.

    Ties in ``key`` (or everything, without ``key``) are broken at random. The mask is on ``user``'s
    device: interactions on a GPU failed in ``.numpy()``.
    """
    users = user.cpu().numpy()
    tie = rng.random(users.size)
    order = np.lexsort((tie, users) if key is None else (tie, key.cpu().numpy(), users))
    counts = np.bincount(users)
    group_end = np.cumsum(counts)  # one past the last sorted position of each user
    rank_from_last = group_end[users[order]] - 1 - np.arange(users.size)
    mask = np.empty(users.size, dtype=bool)
    mask[order] = rank_from_last < num_holdout.cpu().numpy()[users[order]]
    return torch.from_numpy(mask).to(user.device)


def holdout_mask(user: Tensor, ratio: float, seed: Seed = 0, time: Tensor | None = None) -> Tensor:
    """A boolean mask holding out about ``ratio`` of every user's interactions.

    Each user with :math:`n` interactions gets :math:`\\min(\\mathrm{round}(\\text{ratio} \\cdot n), n - 1)`
    held out, so at least one interaction always stays. The held-out ones are the latest by ``time``
    when given (a temporal split), else drawn at random.

    Args:
        user: The ``[E]`` user index of each interaction.
        ratio: The fraction to hold out, in :math:`[0, 1)`.
        seed: An integer seed or a :class:`numpy.random.Generator`. (default: :obj:`0`)
        time: The ``[E]`` timestamps. (default: :obj:`None`)
    """
    check_option(is_real(ratio) and 0 <= ratio < 1, "ratio", "a number in [0, 1)", ratio)
    check_user_split(user, time)
    counts = torch.bincount(user)
    num_holdout = torch.minimum(torch.round(ratio * counts).long(), (counts - 1).clamp(min=0))
    return holdout_latest(user, num_holdout, time, seeded_rng(seed))


def check_user_split(user: Tensor, time: Tensor | None) -> None:
    """Raises a :class:`ValueError` unless ``user`` is a ``[E]`` tensor of user ids >= 0 and ``time``, where
    given, ``[E]`` timestamps: they failed in :func:`torch.bincount` or :func:`numpy.lexsort` naming neither
    (a float ``user`` as "bincount_cpu not implemented for 'Float'")."""
    check_user_ids("user", user)
    if time is not None and not (isinstance(time, Tensor) and time.shape == user.shape):
        got = list(time.shape) if isinstance(time, Tensor) else type(time).__name__
        raise ValueError(f"time must be a tensor of shape [{user.numel()}] (one per interaction), got {got}")


def seeded_rng(seed: Seed) -> np.random.Generator:
    """The generator of a split's ``seed``: a :class:`numpy.random.Generator` as it is, or a new one seeded
    by an integer >= 0 (:func:`check_seed`; ``None`` drew another split at every call, without a word)."""
    if isinstance(seed, np.random.Generator):
        return seed
    check_seed(seed)
    return np.random.default_rng(seed)


def check_held_out(mask: Tensor, user: Tensor, ratio: float, field: str) -> None:
    """Raises a :class:`ValueError` naming ``field`` where :func:`holdout_mask` held out none of the ``[E]``
    interactions of ``user`` at a ``ratio`` above 0: an empty split, evaluated, reads as every metric 0 (a
    validation split's would pick the first epoch as the best and stop early). The benchmark datasets
    raise it, as a warning would be lost once the split is cached; :meth:`InteractionDataset.from_pandas`,
    which splits anew at every call, warns."""
    if ratio > 0 and not mask.any():
        raise ValueError(f"{field}={ratio} holds out no interaction: {_none_held_out(user, ratio, field)}")


def _none_held_out(user: Tensor, ratio: float, field: str) -> str:
    most = int(torch.bincount(user).max()) if user.numel() else 0
    return (
        f"min(round({ratio} * n), n - 1) of a user's n interactions are held out, 0 for every user here "
        f"(the most active has {most}); raise {field}"
    )


def leave_one_out_mask(user: Tensor, seed: Seed = 0, time: Tensor | None = None) -> Tensor:
    """A boolean mask holding out one interaction of every user that has at least two.

    The held-out interaction is the latest by ``time`` when given, else drawn at random.

    Args:
        user: The ``[E]`` user index of each interaction.
        seed: An integer seed or a :class:`numpy.random.Generator`. (default: :obj:`0`)
        time: The ``[E]`` timestamps. (default: :obj:`None`)
    """
    check_user_split(user, time)
    num_holdout = (torch.bincount(user) >= 2).long()
    return holdout_latest(user, num_holdout, time, seeded_rng(seed))


def check_option(condition: bool, field: str, allowed: str, value: Any) -> None:
    """Raises a :class:`ValueError` naming ``field``, the ``allowed`` values and the given ``value``."""
    if not condition:
        raise ValueError(f"{field} must be {allowed}, got {value!r}")


# the packages whose frames a warning passes over to name the user's line: dslgraph's and PyG's, whose
# InMemoryDataset.__init__ calls a dataset's processing
_LIBRARY_FOLDERS = tuple(
    osp.dirname(package.__file__) + os.sep for package in (sys.modules["dslgraph"], torch_geometric)
)


def caller_stacklevel() -> int:
    """The ``stacklevel`` for :func:`warnings.warn`, called by the function that calls this, that names the
    first line outside dslgraph and PyG: a fixed one named a line of dslgraph wherever more of its frames
    came between, as a subclass's ``__init__`` or ``load_file`` add (Python 3.12's ``skip_file_prefixes``
    does this; 3.11 has none)."""
    frame, level = sys._getframe(1), 1
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_LIBRARY_FOLDERS):
        frame, level = frame.f_back, level + 1
    return level


def check_seed(seed: Any) -> None:
    """A split's seed: an integer >= 0 (numpy's generators take no other; ``None`` would draw another
    split on every call)."""
    check_option(isinstance(seed, int | np.integer) and seed >= 0, "seed", "an integer >= 0", seed)


def _k_core(frame: pd.DataFrame, min_user: int, min_item: int) -> pd.DataFrame:
    """Drops users and items with too few interactions, repeatedly, until none is left to drop."""
    while True:
        # unsorted: ids of types that do not compare (numbers and dates) failed in pandas' sort
        user_count = frame.groupby("user", sort=False)["item"].transform("size")
        item_count = frame.groupby("item", sort=False)["user"].transform("size")
        keep = (user_count >= min_user) & (item_count >= min_item)
        if keep.all():
            return frame
        frame = frame[keep]


def collapse_interactions(frame: pd.DataFrame, min_user: int, min_item: int) -> pd.DataFrame:
    """One row per ``(user, item)`` pair (the latest where the frame has a ``time`` column), then the
    k-core filter."""
    if "time" in frame.columns:
        frame = frame.sort_values("time", kind="stable")
    return _k_core(frame.drop_duplicates(["user", "item"], keep="last"), min_user, min_item)


def renumber_interactions(frame: pd.DataFrame) -> tuple[Tensor, np.ndarray, np.ndarray]:
    """The ``[2, E]`` index of the frame's users and items renumbered ``0 .. n-1``, and their raw ids."""
    user, user_ids = _factorize(frame["user"])
    item, item_ids = _factorize(frame["item"])
    return torch.from_numpy(np.stack([user, item]).astype(np.int64)), user_ids, item_ids


def _factorize(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    try:
        return pd.factorize(column, sort=True)
    except TypeError:  # mixed id types cannot be sorted; number them in order of appearance
        return pd.factorize(column, sort=False)


class NumberedTransform:
    """Mixed into an :class:`~torch_geometric.data.InMemoryDataset` of one :class:`HeteroData`: ``dataset[i]``
    refuses a ``transform`` that changes the numbers of users or items (:func:`check_numbering`)."""

    def __getitem__(self, idx):
        data = super().__getitem__(idx)
        if self.transform is None or not isinstance(data, HeteroData):  # a slice, RandomLinkSplit's tuple
            return data
        return check_numbering(self._data, data, "transform", self.transform)


class InteractionDataset(NumberedTransform, InMemoryDataset):
    """A user-item interaction dataset built in memory from a table, with ids of any type.

    Users and items are renumbered ``0 .. n-1`` (sorted by original id where the ids are comparable);
    :attr:`user_ids` and :attr:`item_ids` map the new indices back to the original ids and
    :meth:`user_index`/:meth:`item_index` map original ids to indices. ``dataset[0]`` is the
    :class:`~torch_geometric.data.HeteroData` described in :mod:`dslgraph.data.graph`; the id maps stay
    on the dataset (:func:`~dslgraph.data.load_file` also puts them in the data, as ``raw_ids``).
    Build it with :meth:`from_pandas` or :meth:`from_csv`.

    Args:
        data: The interaction graph.
        user_ids: The original id of each user index.
        item_ids: The original id of each item index.
        transform: A function/transform applied to the data object on every access.
            (default: :obj:`None`)
    """

    def __init__(
        self,
        data: HeteroData,
        user_ids: np.ndarray,
        item_ids: np.ndarray,
        transform: Callable | None = None,
    ) -> None:
        super().__init__(None, transform)
        self.data, self.slices = self.collate([data])
        self.user_ids = user_ids
        self.item_ids = item_ids

    def user_index(self, ids: Any) -> np.ndarray:
        """The indices of the users with the original ids ``ids``; raises :class:`KeyError` on unknown ids."""
        return _lookup(self.user_ids, ids, "user")

    def item_index(self, ids: Any) -> np.ndarray:
        """The indices of the items with the original ids ``ids``; raises :class:`KeyError` on unknown ids."""
        return _lookup(self.item_ids, ids, "item")

    @classmethod
    def from_csv(
        cls, path: str | os.PathLike, sep: str = ",", names: list[str] | None = None, **kwargs: Any
    ) -> InteractionDataset:
        """Reads a delimited text file and builds the dataset with :meth:`from_pandas`.

        User and item ids are read as text, and as numbers only where every id of the column is a
        number written plainly: ``007`` and ``7`` stay two ids, and ``007`` keeps its zeros. A
        ``time_col`` written as text is read as ISO 8601 times (``2020-01-31``, ``2020-01-31T12:00:00Z``).
        The typed header row of RecBole's atomic files names the columns without their types:
        ``ml-100k.inter`` (``user_id:token  item_id:token  rating:float  timestamp:float``) is read with
        ``sep="\\t", user_col="user_id", item_col="item_id", time_col="timestamp"``.

        Args:
            path: The file to read.
            sep: The field separator; one of more than one character (other than ``r"\\s+"``) is a regular
                expression, as pandas reads it: ``"::"`` is the text ``::``, ``r"\\|\\|"`` the text ``||``.
                (default: ``","``)
            names: The columns' names of a file without a header row, *e.g.*
                ``["user", "item", "rating", "time"]`` with ``sep="\\t"`` for MovieLens ``u.data``; fewer
                names than fields name the first ones. (default: :obj:`None`: the first row names them)
            **kwargs: The arguments of :meth:`from_pandas`.
        """
        check_option(sep is None or (isinstance(sep, str) and sep != ""), "sep", "a non-empty string", sep)
        if sep is not None and len(sep) > 1:  # a regular expression: "||" split between every character
            check_option(
                _splits_text(sep), "sep", "a regular expression that matches text (|| is r'\\|\\|')", sep
            )
        # pandas reads the text "user,item" as the names "u", "s", "e", ... and fails on their repeats
        check_option(
            names is None or (is_sequence(names) and all(isinstance(name, str) for name in names)),
            "names",
            "a list of column names",
            names,
        )
        # pandas' own refusal named neither names nor the file: "Duplicate names are not allowed."
        check_option(names is None or len(set(names)) == len(names), "names", "distinct names", names)
        id_columns = [kwargs.get("user_col", "user"), kwargs.get("item_col", "item")]
        # pandas' C parser takes one-character separators and r"\s+" (any whitespace) only: for the others
        # it would warn that it falls back to Python's, about 10 times slower
        engine = "c" if sep is not None and (len(sep) == 1 or sep == r"\s+") else "python"
        # index_col=False: pandas would otherwise make the first field of rows one longer than the header (a
        # separator at the end of each row) their index, and read the item ids as the users'
        layout = {"sep": sep, "names": names, "index_col": False, "engine": engine}
        source = _sources(path)
        try:
            if names is None and (untyped := _untyped_header(pd.read_csv(source(), nrows=0, **layout))):
                layout |= {"names": untyped, "header": 0}
            df = pd.read_csv(source(), dtype=dict.fromkeys(id_columns, str), **layout)
            # pandas' missing values ("NA", "None", "null") are ids here; only an empty field is missing.
            # Where pandas found none among the ids, every id was read as written: most files are read once
            present = [column for column in dict.fromkeys(id_columns) if column in df.columns]
            if present and df[present].isna().any(axis=None):
                ids = pd.read_csv(source(), usecols=present, dtype=str, keep_default_na=False, **layout)
                df[present] = ids.where(ids != "")
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path} could not be read as {sep!r}-separated text: {exc}") from exc
        for column in set(id_columns) & set(df.columns):
            df[column] = _ids_from_text(df[column])
        _check_columns(df, path, sep, names, id_columns)
        time_col = kwargs.get("time_col")
        try:
            if time_col in df.columns and not pd.api.types.is_numeric_dtype(df[time_col]):
                df[time_col] = _times_from_text(df[time_col], time_col)
            return cls.from_pandas(df, **kwargs)
        except ValueError as exc:  # the messages name the column and the row, not the file
            raise ValueError(f"{path}: {exc}") from exc

    @classmethod
    def from_pandas(
        cls,
        df: pd.DataFrame,
        user_col: str = "user",
        item_col: str = "item",
        rating_col: str | None = None,
        time_col: str | None = None,
        rating_threshold: float | None = None,
        min_user_interactions: int = 0,
        min_item_interactions: int = 0,
        split: str = "random",
        test_ratio: float = 0.2,
        val_ratio: float = 0.0,
        seed: int = 0,
        transform: Callable | None = None,
    ) -> InteractionDataset:
        """Builds the dataset from a :class:`pandas.DataFrame` of interactions.

        The rows are processed in this order: ratings below ``rating_threshold`` are dropped; repeated
        ``(user, item)`` pairs are collapsed into one (keeping the latest time); the k-core filter
        drops users/items with fewer than ``min_*_interactions`` interactions until none is left;
        ids are renumbered; the test split is held out of each user's interactions, then the
        validation split out of what remains (chosen the same way: by time when ``time_col`` is given
        and ``split`` is not ``"random"``, at random otherwise).

        Args:
            df: The interactions, one per row.
            user_col: The column of user ids. (default: ``"user"``)
            item_col: The column of item ids. (default: ``"item"``)
            rating_col: The column of ratings, needed by ``rating_threshold``; the ratings only filter and are
                not kept in the data. (default: :obj:`None`)
            time_col: The column of timestamps (numbers or datetimes), kept in the data as each
                split's ``time`` / ``edge_label_time`` / ``val_edge_label_time``, so that a protocol
                applied later (:func:`~dslgraph.data.leave_one_out`) holds out the latest interactions.
                (default: :obj:`None`)
            rating_threshold: If given, keep only ratings ``>=`` this value. (default: :obj:`None`)
            min_user_interactions: The k-core minimum per user. (default: :obj:`0`)
            min_item_interactions: The k-core minimum per item. (default: :obj:`0`)
            split: ``"random"`` (``test_ratio`` of each user's interactions, at random),
                ``"leave-one-out"`` (the last interaction by time, or a random one without
                ``time_col``, of each user with at least two) or ``"temporal"`` (the last
                ``test_ratio`` of each user's interactions by time; needs ``time_col``).
                (default: ``"random"``)
            test_ratio: The test fraction for ``"random"``/``"temporal"``, in :math:`(0, 1)`.
                (default: :obj:`0.2`)
            val_ratio: The fraction of each user's remaining training interactions held out for
                validation, in :math:`[0, 1)`. (default: :obj:`0.0`)
            seed: The seed of every random choice. (default: :obj:`0`)
            transform: A function/transform applied to the data object on every access.
                (default: :obj:`None`)
        """
        check_option(isinstance(df, pd.DataFrame), "df", "a pandas DataFrame", type(df).__name__)
        check_option(split in SPLITS, "split", f"one of {SPLITS}", split)
        check_option(is_real(test_ratio) and 0 < test_ratio < 1, "test_ratio", "in (0, 1)", test_ratio)
        check_option(is_real(val_ratio) and 0 <= val_ratio < 1, "val_ratio", "in [0, 1)", val_ratio)
        check_option(
            rating_threshold is None or is_real(rating_threshold),
            "rating_threshold",
            "a number",
            rating_threshold,
        )
        check_seed(seed)
        for field, value in (
            ("min_user_interactions", min_user_interactions),
            ("min_item_interactions", min_item_interactions),
        ):
            check_option(is_count(value) and value >= 0, field, "an integer >= 0", value)  # not True
        check_option(
            split != "temporal" or time_col is not None, "time_col", "set for split='temporal'", None
        )
        check_option(
            rating_threshold is None or rating_col is not None,
            "rating_col",
            "a column name when rating_threshold is given",
            None,
        )
        columns = {"user": user_col, "item": item_col, "rating": rating_col, "time": time_col}
        for field, column in columns.items():
            check_option(
                (column is None and field in ("rating", "time")) or column in df.columns,
                f"{field}_col",
                f"one of {list(df.columns)}",
                column,
            )
            # one naming two columns (frames joined side by side) failed in pandas: "Grouper for 'user' not
            # 1-dimensional"
            check_option(
                list(df.columns).count(column) <= 1, f"{field}_col", "the name of one column of df", column
            )
        chosen = [column for column in columns.values() if column is not None]
        check_option(
            len(set(chosen)) == len(chosen), "user_col/item_col/rating_col/time_col", "distinct", chosen
        )
        check_option(len(df) > 0, "df", "a non-empty DataFrame", "an empty DataFrame")

        frame = _interaction_frame(
            df, columns, rating_threshold, min_user_interactions, min_item_interactions
        )
        index, user_ids, item_ids = renumber_interactions(frame)
        time = torch.from_numpy(frame["time"].to_numpy(copy=True)) if time_col is not None else None
        train, test, val, times = _split_interactions(index, time, split, test_ratio, val_ratio, seed)
        # the timestamps go with the data: a protocol applied later holds out the latest by them
        data = make_interaction_data(len(user_ids), len(item_ids), train, test, val, times)
        log.info(
            "interactions: %d users, %d items, %d train / %d val / %d test",
            len(user_ids),
            len(item_ids),
            train.size(1),
            0 if val is None else val.size(1),
            test.size(1),
        )
        return cls(data, np.asarray(user_ids), np.asarray(item_ids), transform)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(users={len(self.user_ids)}, items={len(self.item_ids)})"


#: The types of RecBole's atomic files (``.inter``), whose header row names each column ``name:type``.
RECBOLE_TYPES = ("token", "token_seq", "float", "float_seq")


def _interaction_frame(
    df: pd.DataFrame,
    columns: dict[str, str | None],
    rating_threshold: float | None,
    min_user: int,
    min_item: int,
) -> pd.DataFrame:
    """``df``'s chosen ``columns`` under their field names, free of missing values, times made numeric,
    ratings below ``rating_threshold`` dropped, repeated pairs collapsed and the k-core filter applied."""
    frame = df[[c for c in columns.values() if c is not None]].rename(
        columns={column: field for field, column in columns.items() if column is not None}
    )
    for field, what in (("user", "ids"), ("item", "ids"), ("rating", "ratings"), ("time", "times")):
        missing = frame[field].isna().to_numpy() if field in frame else None
        if missing is not None and missing.any():
            raise ValueError(
                f"{field}_col must be free of missing {what}, got {columns[field]!r} "
                # tolist(): the label as written (30), not as NumPy 2 writes an index's (np.int64(30))
                f"(first missing at index {frame.index[[missing.argmax()]].tolist()[0]!r})"
            )
    if columns["time"] is not None:
        frame["time"] = _numeric_time(frame["time"], columns["time"])
    if rating_threshold is not None:
        rating = frame["rating"]
        numeric = pd.api.types.is_numeric_dtype(rating) and not pd.api.types.is_bool_dtype(rating)
        check_option(numeric, "rating_col", "numeric", columns["rating"])
        frame = frame[frame["rating"] >= rating_threshold]
    frame = collapse_interactions(frame, min_user, min_item)
    if frame.empty:
        raise ValueError("no interaction is left after rating_threshold and the k-core filter")
    return frame


def _split_interactions(
    index: Tensor, time: Tensor | None, split: str, test_ratio: float, val_ratio: float, seed: int
) -> tuple[Tensor, Tensor, Tensor | None, tuple[Tensor | None, Tensor | None, Tensor | None]]:
    """``(train, test, val, times)`` of the renumbered ``index`` as :meth:`InteractionDataset.from_pandas`
    describes its ``split``, ``test_ratio`` and ``val_ratio``; an empty test or validation split warns."""
    by_time = None if split == "random" else time  # what picks the held-out interactions
    rng = np.random.default_rng(seed)
    if split == "leave-one-out":
        test_mask = leave_one_out_mask(index[0], rng, by_time)
    else:
        test_mask = holdout_mask(index[0], test_ratio, rng, by_time)
    train, test = index[:, ~test_mask], index[:, test_mask]
    if test.size(1) == 0:  # evaluated, it would read as every metric 0
        if split == "leave-one-out":
            why = "leave-one-out holds out one interaction of each user with two or more; none has two"
        else:
            why = _none_held_out(index[0], test_ratio, "test_ratio")
        warnings.warn(f"the test split is empty: {why}", stacklevel=caller_stacklevel())
    times = (None, None, None) if time is None else (time[~test_mask], time[test_mask], None)
    val = None
    if val_ratio > 0:
        val_mask = holdout_mask(train[0], val_ratio, rng, None if by_time is None else times[0])
        if not val_mask.any():  # asked for, it would pick the first epoch as the best and stop early
            why = _none_held_out(train[0], val_ratio, "val_ratio")
            warnings.warn(f"the validation split is empty: {why}", stacklevel=caller_stacklevel())
        train, val = train[:, ~val_mask], train[:, val_mask]
        if time is not None:
            times = (times[0][~val_mask], times[1], times[0][val_mask])
    return train, test, val, times


def _sources(path) -> Callable[[], Any]:
    """What each of :meth:`InteractionDataset.from_csv`'s reads of ``path`` reads: the file, or, for a text
    or bytes buffer (which pandas reads once, from where it stands), a fresh buffer of its contents."""
    if isinstance(path, (str, os.PathLike)):
        return lambda: path
    contents = path.read()
    buffer = io.BytesIO if isinstance(contents, bytes) else io.StringIO
    return lambda: buffer(contents)


def _splits_text(pattern: str) -> bool:
    """Whether ``pattern`` is a regular expression that matches no empty text, as a separator must."""
    try:
        return re.fullmatch(pattern, "") is None
    except re.error:
        return False


def _untyped_header(header: pd.DataFrame) -> list[str] | None:
    """The names of a RecBole atomic file's ``header`` columns without their types (``user_id:token``:
    ``user_id``), or :obj:`None` where they are no such header: RecBole users name the columns as its
    ``USER_ID_FIELD: user_id`` does, and a type in each name would have to be repeated in every option."""
    columns = [str(column) for column in header.columns]
    while len(columns) > 1 and re.fullmatch(r"Unnamed: \d+", columns[-1]):  # a separator ending each line
        columns.pop()
    fields = [column.rpartition(":") for column in columns]
    names = [name for name, _, _ in fields]
    typed = all(name and kind in RECBOLE_TYPES for name, _, kind in fields)
    # one column is another separator's line, which _check_columns names as it is
    return names if typed and len(names) > 1 and len(set(names)) == len(names) else None


def _check_columns(
    df: pd.DataFrame, path: str | os.PathLike, sep: str | None, names: list[str] | None, id_columns: list[str]
) -> None:
    """Refuses what :meth:`InteractionDataset.from_csv` read into ``df`` where the file's layout and the
    options disagree: one column (another separator), or a row that repeats the header (files joined with
    theirs, or ``names`` given for a file with a header row)."""
    if len(df.columns) == 1 and names is None:  # names given, pandas fails on the missing fields itself
        raise ValueError(
            f"{path}: its first line {df.columns[0]!r} is one field when split by sep={sep!r}; pass the "
            "file's separator as sep (e.g. '\\t' or ';'), or remove any line above its header row"
        )
    # failed as "user_col must be one of ['1', '1.1']", naming the first interaction's fields as the columns
    if (
        names is None
        and not set(id_columns) <= set(df.columns)
        and all(is_number(str(c)) for c in df.columns)
    ):
        raise ValueError(
            f"{path}: its first line {list(df.columns)} holds numbers, not the columns' names: a file "
            f"without a header row; pass names naming its columns (e.g. names={id_columns})"
        )
    # ids read as numbers hold no header text: a file of numbers pays for no comparison of its rows
    text = [column for column in id_columns if column in df.columns and df[column].dtype.kind not in "iuf"]
    if names is not None and len(text) == 2 and len(df) > 1:
        # a header row other than names, read as an interaction: its texts made every id text, one user and
        # one item more, without a word
        first, second = (df[text].iloc[row].tolist() for row in (0, 1))
        if (
            not any(map(is_number, first))
            and all(map(is_number, second))
            and all(_ids_from_text(df[column].iloc[1:]).dtype.kind in "iuf" for column in text)
        ):
            raise ValueError(
                f"{path}: its first row (user {first[0]!r}, item {first[1]!r}) reads as a header row, every "
                "later one holding numbers: names were given for a file that has a header row; leave names "
                "out and name its columns by user_col and item_col, or remove that row"
            )
    if len(text) == 2:
        user, item = (df[column].to_numpy() for column in id_columns)  # NumPy's ==: 3x faster than pandas'
        header = (user == id_columns[0]) & (item == id_columns[1])
        if header.any():
            row = df.index[header.argmax()]
            raise ValueError(
                f"{path}: the row at index {row!r} repeats the header (user {id_columns[0]!r}, item "
                f"{id_columns[1]!r}): files joined with their header rows, or names given for a file that "
                "has one; remove that row"
            )


def _numeric_time(column: pd.Series, name: str) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(column):
        return column.astype("int64")
    numeric = pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)  # True: 1
    check_option(numeric, "time_col", "a numeric or datetime column", name)
    return column


def _times_from_text(column: pd.Series, name: str) -> pd.Series:
    """Times written as text (ISO 8601: ``2020-01-31``, ``2020-01-31 12:00:00+01:00``) as UTC datetimes, or
    as numbers where more of them read as numbers."""
    times = pd.to_datetime(column, format="ISO8601", utc=True, errors="coerce")
    numbers = pd.to_numeric(column, errors="coerce")
    # a column of numbers that pandas read as text for one that is none: that one is the bad value, not
    # the first number (which no ISO 8601 reading takes)
    if numbers.notna().sum() > times.notna().sum():
        times = numbers
    bad = times.isna() & column.notna()
    if bad.any():
        row = bad.idxmax()
        raise ValueError(
            f"time_col {name!r} must hold numbers or ISO 8601 times, got {column[row]!r} at index {row!r}"
        )
    return times


def _ids_from_text(column: pd.Series) -> pd.Series:
    """The ids as numbers if each one is its number's own text (no leading zeros, signs or exponents),
    else as text: pandas' reading of ``007`` as ``7`` would rename that id or merge it with ``7``.

    Each distinct text is checked and converted once, then spread to its rows: a file repeats every id
    many times, and checking all 3 M rows of a column cost 7 CPU s, finding its distinct texts 1.5 s and
    checking them a tenth of that (``docs/results.md`` §4, 19th session)."""
    codes, texts = pd.factorize(column)
    if (codes < 0).any():  # a missing id: kept as text, for from_pandas to refuse with its row
        return column
    texts = pd.Series(texts, dtype=object)
    numbers = pd.to_numeric(texts, errors="coerce")
    if numbers.notna().all() and (numbers.astype(str) == texts.str.strip()).all():
        return pd.Series(numbers.to_numpy()[codes], index=column.index, name=column.name)
    return column


def _lookup(ids: np.ndarray, query: Any, kind: str) -> np.ndarray:
    query = np.atleast_1d(np.asarray(query))
    index = pd.Index(ids).get_indexer(query)
    if (index < 0).any():
        raise KeyError(f"unknown {kind} ids: {query[index < 0][:10].tolist()}")
    return index
