"""Recommendation benchmark datasets as PyG :class:`~torch_geometric.data.InMemoryDataset` classes.

Every dataset yields one :class:`~torch_geometric.data.HeteroData` in the layout of
:mod:`dslgraph.data.graph`. Raw files live in ``root/<name>/raw/`` and may be placed there by hand
(nothing is downloaded when they are present); ``root`` defaults to :func:`default_root`. The processed
data is cached in ``root/<name>/processed/<options>/``, one folder per set of options that change it. Unlike
in PyG, a raw file replaced later (another size or modification time than the one processed,
``raw_files.json``) is noticed and the data processed again, with a warning; ``force_reload=True`` processes
it again in any case. A processed file that cannot be read (cut short or damaged outside dslgraph, which
writes it then renames it), or found without the records of the ``pre_transform`` it was made with (a
processing that stopped or failed, a ``pre_transform`` that raised, say), is processed again, with a warning.
A test interaction also listed in a training file is an error (it could never be retrieved, being excluded
from the ranking as seen), and so is a raw file ending mid-line, as a copy cut short does, in the formats that
read a line cut short as a valid one (adjacency lists, LastFM, MovieLens).

Users and items keep the ids of the raw files (shifted to start at 0 where the files are 1-based), and
their numbers are ``1 +`` the largest id in the raw files, as LightGCN-PyTorch counts them. Users or
items that only occur in the test split are kept (LastFM has 2 such users and 13 such items): they
are isolated in the training graph and counted in the statistics. :class:`CiteULike` and
:class:`Foursquare` are filtered first and renumber the users and items that remain.

Datasets with timestamps (:class:`MovieLens`, :class:`Foursquare`) also store the ``[E]`` times of each
split's interactions as ``time`` (training), ``edge_label_time`` (test) and ``val_edge_label_time``;
the latest-interaction protocols of :mod:`dslgraph.data.protocols` read them. :func:`load_dataset`
applies those protocols.
"""

from __future__ import annotations

import codecs
import contextlib
import copy
import csv
import functools
import io
import json
import logging
import math
import os
import os.path as osp
import shutil
import tempfile
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import torch
from torch import Tensor
from torch_geometric.data import HeteroData, InMemoryDataset, download_url, extract_zip
from torch_geometric.data.dataset import _repr, files_exist  # how PyG records a pre_transform
from torch_geometric.io import fs

from ..checks import is_real
from ..files import replace_file
from .graph import EDGE, check_numbering, make_interaction_data, num_users_items
from .interactions import (
    InteractionDataset,
    NumberedTransform,
    caller_stacklevel,
    check_held_out,
    check_option,
    check_seed,
    collapse_interactions,
    holdout_mask,
    renumber_interactions,
)
from .io import (
    DatasetFormatError,
    pair_lines,
    read_adjacency_lists,
    read_count_lists,
    read_pairs,
    write_then_rename,
)
from .protocols import apply_protocol, check_protocol

logger = logging.getLogger(__name__)

LIGHTGCN_URL = "https://raw.githubusercontent.com/gusye1234/LightGCN-PyTorch/master/data"
ULTRAGCN_URL = "https://raw.githubusercontent.com/xue-pai/UltraGCN/main/data"
GROUPLENS_URL = "https://files.grouplens.org/datasets/movielens"
CITEULIKE_URL = "https://raw.githubusercontent.com/js05212/citeulike-t/master"
# Dingqi Yang's TSMC2014 archive, linked from https://sites.google.com/site/yangdingqi/home/foursquare-dataset
FOURSQUARE_URL = "http://www-public.imtbs-tsp.eu/~zhang_da/pub/dataset_tsmc2014.zip"

# The LastFM split shipped with dslgraph, with its credit and terms beside it: the repository's
# datasets/lastfm (a clone, an editable install), which a wheel carries as dslgraph/data/lastfm
# (pyproject.toml maps it), so that an installed dslgraph trains offline as a clone does.
EMBEDDED_LASTFM = next(
    (
        folder / "lastfm" / "raw"
        for folder in (Path(__file__).resolve().parent, Path(__file__).resolve().parents[2] / "datasets")
        if (folder / "lastfm" / "raw").is_dir()
    ),
    Path(__file__).resolve().parent / "lastfm" / "raw",  # neither: LastFM downloads its files
)


def default_root() -> str:
    """The default dataset folder: ``$DSLGRAPH_HOME`` if set, else ``~/.cache/dslgraph``."""
    return os.environ.get("DSLGRAPH_HOME") or osp.join(osp.expanduser("~"), ".cache", "dslgraph")


@contextlib.contextmanager
def _download_folder(folder: str) -> Iterator[str]:
    """A hidden temporary folder inside ``folder`` (created if missing) to download into, removed after.

    PyG's :func:`~torch_geometric.data.download_url` writes the file in place, and a raw file that
    exists is never downloaded again: a download cut short would be read as a complete file, so files
    are moved into ``folder`` only once complete.
    """
    os.makedirs(folder, exist_ok=True)
    partial = tempfile.mkdtemp(prefix=".download-", dir=folder)
    try:
        yield partial
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def _fetch(url: str, folder: str, log: bool = True) -> str:
    """Downloads ``url`` into ``folder``, the file whole or not at all; returns its path."""
    with _download_folder(folder) as partial:
        path = download_url(url, partial, log=log)
        target = osp.join(folder, osp.basename(path))
        replace_file(path, target)
    return target


def _save_record(record: str, path: Path) -> None:
    fs.torch_save(record, str(path))


def _changed_raw_files(path: str, stamp: dict[str, list[int]]) -> list[str]:
    """The raw files whose size or modification time differ from those recorded in ``path`` when the data was
    processed (all of them where the record cannot be read); none where there is no record (a folder
    processed before dslgraph kept one)."""
    if not osp.exists(path):
        return []
    try:
        recorded = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        recorded = None
    if not isinstance(recorded, dict):
        recorded = {}
    return [name for name, value in stamp.items() if recorded.get(name) != value]


def _check_split(train: Tensor, test: Tensor, paths: list[str], offset: int = 0) -> None:
    """Raises a :class:`DatasetFormatError` on a split file without interactions (a test file of users
    only would evaluate nobody), and on a test interaction also listed for training: excluded from
    the ranking as already seen, it could never be retrieved, and would lower every metric."""
    for index, path in zip((train, test), paths):
        if index.size(1) == 0:
            raise DatasetFormatError(path, None, "no interaction listed (only users)")
    path = paths[1]
    # pair ids without a user * num_items + item key, which ids of up to 15 digits would overflow: users
    # and items numbered by rank among the distinct ones, which keeps the key below E^2. Not
    # torch.unique(dim=1) over the pairs: its lexicographic sort of columns made reading an Amazon-book-sized
    # split (3 M interactions) take 14 s on one CPU thread, 3 s without it
    pairs = torch.cat([train, test], dim=1)
    _, user = torch.unique(pairs[0], return_inverse=True)
    items, item = torch.unique(pairs[1], return_inverse=True)
    pair = user * items.numel() + item
    seen = torch.isin(pair[train.size(1) :], pair[: train.size(1)])
    if seen.any():
        user, item = (test[:, seen.nonzero()[0, 0]] + offset).tolist()
        example = f"(user {user}, item {item})"
        raise DatasetFormatError(
            path, None, f"{int(seen.sum())} test interaction(s) also listed for training, e.g. {example}"
        )


def _check_whole(path: str, source: str) -> None:
    """Raises a :class:`DatasetFormatError` naming the last line of a raw file that does not end with a line
    break. Every published file of the datasets that call this ends with one, and their formats read a line
    cut short (an interrupted copy) as a shorter valid one: a lost item of an adjacency list, a digit of a
    timestamp or of a listening count."""
    with open(path, "rb") as file:
        size = file.seek(0, os.SEEK_END)
        if size == 0:
            return  # the reader names an empty file
        file.seek(size - 1)
        if file.read(1) == b"\n":
            return
        file.seek(0)
        line = file.read().count(b"\n") + 1
    raise DatasetFormatError(
        path,
        line,
        f"the file ends mid-line (no line break after its last line), as a copy cut short does: get it again "
        f"from {source}, or end it with a line break if it is whole",
    )


# Where a format numbers users and items by their ids, ids that would make over a million of them, and over
# ten times as many as there are distinct ids, are refused as no numbering (see _num_nodes).
_CHECKED_ID_ROWS = 1_000_000
_MAX_ID_SPREAD = 10


def _num_nodes(splits: list[Tensor], paths: list[str], offset: int = 0) -> tuple[int, int]:
    """The numbers of users and items of files whose ``offset``-based ids number them: one past the largest
    id, so that ids missing from the files (items of the test split only, users without interactions) stay
    nodes. Ids far sparser than that are no numbering (one user id of 10^14 asked for 10^14 embedding rows,
    failing far from the file, if at all): over a million ids and ten times the distinct ones raise a
    :class:`DatasetFormatError` naming the file of the largest."""
    counts = []
    for row, kind in enumerate(("user", "item")):
        largest = [int(split[row].max()) for split in splits]
        size = max(largest) + 1
        if size > _CHECKED_ID_ROWS:  # the count of distinct ids only where the ids could be too sparse
            distinct = torch.cat([split[row] for split in splits]).unique().numel()
            if size > _MAX_ID_SPREAD * distinct:
                raise DatasetFormatError(
                    paths[largest.index(size - 1)],
                    None,
                    f"{kind} id {size - 1 + offset} would make {size:,} {kind}s (this format numbers them by "
                    f"their ids, an embedding row each) where the dataset holds {distinct:,} distinct {kind} "
                    f"ids: renumber them {offset}..{distinct - 1 + offset}, or write the interactions as "
                    "user,item rows and read them with InteractionDataset.from_csv (dslgraph train "
                    "--data-file), which numbers the ids itself",
                )
        counts.append(size)
    return counts[0], counts[1]


class DatasetUnavailableError(FileNotFoundError):
    """A dataset's raw files are not on disk and could not be downloaded."""


class RawSplit(NamedTuple):
    """What :meth:`RecommendationDataset.read` returns: the train and test ``[2, E]`` indices, the numbers
    of users and items and, for datasets with timestamps, the ``[E]`` times of both splits."""

    train: Tensor
    test: Tensor
    num_users: int
    num_items: int
    train_time: Tensor | None = None
    test_time: Tensor | None = None


class RecommendationDataset(NumberedTransform, InMemoryDataset):
    """Base class of the benchmark datasets: a train/test split of user-item interactions.

    Subclasses set :attr:`name` (the folder under ``root`` and the :data:`DATASETS` key) and
    :attr:`url` (none for files placed by hand), list :attr:`raw_file_names` and implement :meth:`read`.

    Args:
        root: The folder holding ``<name>/raw`` and ``<name>/processed``; :func:`default_root` if
            :obj:`None`. (default: :obj:`None`)
        val_ratio: The fraction of each user's training interactions held out as
            ``val_edge_label_index`` (at least one training interaction stays per user).
            (default: :obj:`0.0`)
        seed: The seed of the random splits. (default: :obj:`0`)
        transform: A function/transform applied to the data object on every access.
            (default: :obj:`None`)
        pre_transform: A function/transform applied to the data object before saving it.
            (default: :obj:`None`)
        force_reload: Whether to re-process the dataset. (default: :obj:`False`)
        log: Whether to log the processing and the data's statistics (and print the downloads, as PyG
            does). (default: :obj:`True`)
    """

    name: str
    url: str
    # Whether read() returns timestamps, stored with the processed data.
    timed: bool = False

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        val_ratio: float = 0.0,
        seed: int = 0,
        transform: Callable | None = None,
        pre_transform: Callable | None = None,
        force_reload: bool = False,
        log: bool = True,
    ) -> None:
        check_option(is_real(val_ratio) and 0 <= val_ratio < 1, "val_ratio", "in [0, 1)", val_ratio)
        check_seed(seed)
        self.val_ratio = float(val_ratio)
        self.seed = seed
        # PyG expands ``~`` in a str root only: a Path's named a folder of the working directory
        root = os.fspath(default_root() if root is None else root)
        super().__init__(root, transform, pre_transform, log=log, force_reload=force_reload)
        path = self.processed_paths[0]
        try:
            self.load(path, data_cls=HeteroData)
        except Exception as exc:  # a cache of the raw files: one that cannot be read is made again
            first_line = next(iter(str(exc).splitlines()), "")  # torch's messages run to paragraphs
            warnings.warn(
                f"{path} could not be read ({type(exc).__name__}: {first_line}); re-processing",
                stacklevel=caller_stacklevel(),
            )
            self._reprocess()
        if self.timed and "time" not in self._data[EDGE]:
            logger.info("%s: re-processing a file saved without timestamps", self.__class__.__name__)
            self._reprocess()
        # named only where the data kept was made with another one: data processed again (raw files
        # changed, a data.pt missing or unreadable) is made with this one, which PyG warned of all the same
        for name in self._stale_records:
            warnings.warn(
                f"The `{name}` argument differs from the one used in the pre-processed version of this "
                f"dataset ({self.processed_dir}); pass `force_reload=True` to process it again with this one",
                stacklevel=caller_stacklevel(),
            )

    def __repr__(self) -> str:
        # PyG's printed "LastFM()": the sizes, as InteractionDataset's repr gives them
        data = getattr(self, "_data", None)
        if data is None:  # not loaded yet
            return super().__repr__()
        return f"{self.__class__.__name__}(users={data['user'].num_nodes}, items={data['item'].num_nodes})"

    def _reprocess(self) -> None:
        # PyG's processing step, which records the pre_transform the new file is made with: the replaced
        # file's record would warn of this pre_transform at every load, and pass the replaced one silently
        force_reload, self.force_reload = self.force_reload, True
        try:
            self._download()
            self._process()
        finally:
            self.force_reload = force_reload
        self.load(self.processed_paths[0], data_cls=HeteroData)

    def _process(self) -> None:
        # PyG's processing step, but with its records of the pre_transform and pre_filter a folder was
        # processed with written then renamed as data.pt is: PyG writes them in place, and one cut short (a
        # run killed while writing it, or read by a run processing the same folder at once) failed every
        # later load inside torch.load. One that cannot be read is made again with the data; "Processing..."
        # is logged, not printed.
        records = {"pre_transform": self.pre_transform, "pre_filter": self.pre_filter}
        unreadable, differing, missing, self._stale_records = False, [], [], []
        for name, value in records.items():
            path = osp.join(self.processed_dir, f"{name}.pt")
            if self.force_reload:
                continue
            if not osp.exists(path):
                missing.append(f"{name}.pt")
                continue
            try:
                recorded = torch.load(path, weights_only=True)
            except Exception as exc:  # torch raises several types for corrupt files
                warnings.warn(
                    f"{path} could not be read ({type(exc).__name__}); re-processing",
                    stacklevel=caller_stacklevel(),
                )
                unreadable = True
                continue
            if recorded != _repr(value):
                differing.append(name)
        if missing and files_exist(self.processed_paths):  # removed before data.pt was made, not made again
            warnings.warn(
                f"{' and '.join(missing)} missing beside {self.processed_paths[0]} (the last processing "
                "stopped or failed before it ended: a pre_transform that raised, say); re-processing",
                stacklevel=caller_stacklevel(),
            )
            unreadable = True
        stamp, stamp_path = self._raw_stamp(), osp.join(self.processed_dir, "raw_files.json")
        if not (self.force_reload or unreadable) and files_exist(self.processed_paths):
            changed = _changed_raw_files(stamp_path, stamp)
            if not changed:
                self._stale_records = differing  # __init__ warns once the kept data.pt is read
                return
            # PyG keeps a processed file made from raw files replaced since, and trains on the old data
            logger.warning(
                "%s: %s changed since %s was processed (size or modification time); re-processing",
                type(self).__name__,
                ", ".join(changed),
                self.processed_dir,
            )
        if self.log:
            logger.info("%s: processing the raw files of %s", type(self).__name__, self.raw_dir)
        os.makedirs(self.processed_dir, exist_ok=True)
        # the records of the data replaced go first: a run stopped after writing data.pt and before its
        # records (a full disk, Ctrl-C) left the new data under the old ones, read as made with those
        for name in records:
            Path(self.processed_dir, f"{name}.pt").unlink(missing_ok=True)
        self.process()
        for name, value in records.items():
            write_then_rename(
                osp.join(self.processed_dir, f"{name}.pt"), functools.partial(_save_record, _repr(value))
            )
        # the stamp of the files before they were read: one replaced while processing is processed again
        write_then_rename(stamp_path, lambda tmp: tmp.write_text(json.dumps(stamp)))

    def _raw_stamp(self) -> dict[str, list[int]]:
        """Each raw file's size and modification time, which replacing the file changes."""
        stats = {name: os.stat(path) for name, path in zip(self.raw_file_names, self.raw_paths)}
        return {name: [stat.st_size, stat.st_mtime_ns] for name, stat in stats.items()}

    @property
    def raw_dir(self) -> str:
        return osp.join(self.root, self.name, "raw")

    @property
    def processed_dir(self) -> str:
        # One folder per set of options: PyG records the pre_transform a folder was processed with in
        # one pre_transform.pt, which files of other options sharing the folder would overwrite.
        options = "_".join(f"{key}{value}" for key, value in self.options().items())
        return osp.join(self.root, self.name, "processed", options)

    def options(self) -> dict[str, Any]:
        """The options that change the processed data, encoded in the processed folder name (the seed
        only where a random split uses it, so that runs of other seeds share a fixed split's folder)."""
        return {"val": self.val_ratio} | ({"seed": self.seed} if self.val_ratio > 0 else {})

    @property
    def processed_file_names(self) -> str:
        return "data.pt"

    @property
    def sources(self) -> list[str]:
        """The URLs :meth:`download` fetches the raw files from, one per raw file."""
        return [f"{self.url}/{name}" for name in self.raw_file_names]

    def download(self) -> None:
        for name, url in zip(self.raw_file_names, self.sources):
            if not osp.isfile(osp.join(self.raw_dir, name)):  # a file placed by hand is kept
                _fetch(url, self.raw_dir, self.log)

    def _download(self) -> None:
        # PyG's download step, failing with what to place where rather than with urllib's traceback.
        missing = [name for name, path in zip(self.raw_file_names, self.raw_paths) if not osp.isfile(path)]
        if not missing:
            return
        created = []  # raw_dir and every missing folder above it (root's parents too), deepest first
        folder = osp.abspath(self.raw_dir)
        while not osp.isdir(folder) and osp.dirname(folder) != folder:
            created.append(folder)
            folder = osp.dirname(folder)
        # a root that is a file, or a raw folder linked to one moved away, failed as a download that
        # could not make the folder ("File exists", for files that are missing)
        blocking = next((path for path in reversed(created) if osp.lexists(path)), None)
        if blocking is not None:
            broken = osp.islink(blocking) and not osp.exists(blocking)
            what = f"a broken link (to {os.readlink(blocking)})" if broken else "a file"
            raise DatasetUnavailableError(
                f"{type(self).__name__}: {blocking} is {what}, not a folder; the raw files "
                f"{', '.join(self.raw_file_names)} go in {self.raw_dir}"
            )
        if type(self).download is RecommendationDataset.download and getattr(self, "url", None) is None:
            # a dataset of one's own whose files are placed by hand: failed as "no attribute 'sources'"
            raise DatasetUnavailableError(
                f"{type(self).__name__}: {', '.join(missing)} not in {self.raw_dir}, and the class sets no "
                "url to download them from; place the raw files in that folder"
            )
        try:
            super()._download()
        except OSError as exc:  # urllib's URLError and HTTPError among them
            # folders made for the download only, removed so that nothing looks like a dataset on disk
            for folder in created:
                if osp.isdir(folder) and not os.listdir(folder):
                    os.rmdir(folder)
            archive = " (the files of the zip archive, extracted)" if self.sources[0].endswith(".zip") else ""
            urls = [url for name, url in zip(self.raw_file_names, self.sources) if name in missing]
            raise DatasetUnavailableError(
                f"{type(self).__name__}: {', '.join(missing)} not in {self.raw_dir}, and downloading "
                f"{', '.join(urls)} failed ({exc}). Place the raw files{archive} in that folder, or "
                f"point root (--root; default $DSLGRAPH_HOME or ~/.cache/dslgraph) at the folder holding "
                f"{self.name}/raw/"
            ) from exc
        # an archive extracted without them failed later in os.stat, naming neither the archive nor the files
        missing = [name for name, path in zip(self.raw_file_names, self.raw_paths) if not osp.isfile(path)]
        if missing:
            raise DatasetUnavailableError(
                f"{type(self).__name__}: {', '.join(missing)} not in {self.raw_dir} after downloading "
                f"{', '.join(dict.fromkeys(self.sources))}, which holds no such file. Place the raw files in "
                "that folder"
            )

    def read(self, rng: np.random.Generator) -> RawSplit | tuple[Tensor, Tensor, int, int]:
        """Reads the raw files: the train and test ``[2, E]`` indices and the numbers of users and items
        (a :class:`RawSplit`, which may add timestamps)."""
        raise NotImplementedError

    def process(self) -> None:
        rng = np.random.default_rng(self.seed)
        train, test, num_users, num_items, train_time, test_time = RawSplit(*self.read(rng))
        val = val_time = None
        if self.val_ratio > 0:
            mask = holdout_mask(train[0], self.val_ratio, rng)
            check_held_out(mask, train[0], self.val_ratio, "val_ratio")
            train, val = train[:, ~mask], train[:, mask]
            if train_time is not None:
                train_time, val_time = train_time[~mask], train_time[mask]
        times = (train_time, test_time, val_time)
        data = make_interaction_data(num_users, num_items, train, test, val, times)
        if self.log:
            logger.info("%s: %s", self.__class__.__name__, dataset_statistics(data))
            for kind, row in (("users", 0), ("items", 1)):
                cold = int((~torch.isin(test[row].unique(), train[row])).sum())
                if cold:
                    logger.info(
                        "%s: %d test %s have no training interaction", self.__class__.__name__, cold, kind
                    )
        if self.pre_transform is not None:
            # a copy, as dataset[i] gives transform: one that drops nodes in place left nothing to compare
            transformed = self.pre_transform(copy.copy(data))
            if not isinstance(transformed, HeteroData):  # saved as the dataset: failed inside PyG's save
                raise ValueError(
                    f"pre_transform {self.pre_transform!r} must return the HeteroData it is given, got a "
                    f"{type(transformed).__name__}; one that splits the data (RandomLinkSplit) goes in "
                    "transform"
                )
            data = check_numbering(data, transformed, "pre_transform", self.pre_transform)
        # written then renamed: runs started side by side may process the same files at once
        write_then_rename(self.processed_paths[0], lambda partial: self.save([data], str(partial)))


class LightGCNDataset(RecommendationDataset):
    """Base class of the datasets in the LightGCN format: ``train.txt``/``test.txt`` adjacency lists.

    See :func:`~dslgraph.data.io.read_adjacency_lists` for the format and
    :class:`RecommendationDataset` for the arguments.
    """

    @property
    def raw_file_names(self) -> list[str]:
        return ["train.txt", "test.txt"]

    def read(self, rng: np.random.Generator) -> tuple[Tensor, Tensor, int, int]:
        for path, source in zip(self.raw_paths, self.sources):
            _check_whole(path, source)
        train, test = (read_adjacency_lists(path) for path in self.raw_paths)
        _check_split(train, test, self.raw_paths)
        return train, test, *_num_nodes([train, test], self.raw_paths)


class Gowalla(LightGCNDataset):
    """The Gowalla check-in dataset in the split of the `"LightGCN: Simplifying and Powering Graph
    Convolution Network for Recommendation" <https://arxiv.org/abs/2002.02126>`_ paper.

    29,858 users, 40,981 items, 810,128 training and 217,242 test interactions.
    See :class:`RecommendationDataset` for the arguments.
    """

    name = "gowalla"
    url = f"{LIGHTGCN_URL}/gowalla"


class Yelp2018(LightGCNDataset):
    """The Yelp2018 dataset in the split of the `"LightGCN" <https://arxiv.org/abs/2002.02126>`_ paper.

    31,668 users, 38,048 items, 1,561,406 interactions (published figures).
    See :class:`RecommendationDataset` for the arguments.
    """

    name = "yelp2018"
    url = f"{LIGHTGCN_URL}/yelp2018"


class AmazonBook(LightGCNDataset):
    """The Amazon-Book dataset in the split of the `"LightGCN" <https://arxiv.org/abs/2002.02126>`_ paper.

    52,643 users, 91,599 items, 2,984,108 interactions (published figures).
    See :class:`RecommendationDataset` for the arguments.
    """

    name = "amazon-book"
    url = f"{LIGHTGCN_URL}/amazon-book"


class MovieLens1MLCF(LightGCNDataset):
    """The implicit MovieLens-1M split of `"UltraGCN" <https://arxiv.org/abs/2110.15114>`_ (after LCF).

    6,022 users, 3,043 items, 796,244 training and 99,455 test interactions (the split's 10%
    validation part is not published). See :class:`RecommendationDataset` for the arguments.
    """

    name = "ml-1m-lcf"
    url = f"{ULTRAGCN_URL}/ml-1m"


class LastFM(RecommendationDataset):
    """The LastFM dataset of `LightGCN-PyTorch <https://github.com/gusye1234/LightGCN-PyTorch>`_,
    derived from HetRec 2011 Last.fm listening counts.

    1,892 users (1,880 with an interaction), 4,489 items, 42,135 training and 10,533 test
    interactions. The raw files are copied from the copy shipped with dslgraph (``datasets/lastfm/``
    of the repository, inside the package of a wheel), downloaded only where that copy is missing.
    See :class:`RecommendationDataset` for the arguments.
    """

    name = "lastfm"
    url = f"{LIGHTGCN_URL}/lastfm"

    @property
    def raw_file_names(self) -> list[str]:
        return ["data1.txt", "test1.txt"]

    def download(self) -> None:
        if all((EMBEDDED_LASTFM / name).is_file() for name in self.raw_file_names):
            for name in self.raw_file_names:
                target = osp.join(self.raw_dir, name)
                if osp.isfile(target):  # a file placed by hand is kept, as download() keeps it
                    continue
                # copied then renamed: a raw file that exists is complete (it is not copied again)
                copy = functools.partial(shutil.copyfile, EMBEDDED_LASTFM / name)
                write_then_rename(target, copy)
        else:
            super().download()

    def read(self, rng: np.random.Generator) -> tuple[Tensor, Tensor, int, int]:
        for path, source in zip(self.raw_paths, self.sources):
            _check_whole(path, source)
        train, test = (read_pairs(path, "\t", one_based=True, num_columns=3)[0] for path in self.raw_paths)
        _check_split(train, test, self.raw_paths, offset=1)
        return train, test, *_num_nodes([train, test], self.raw_paths, offset=1)


class HoldoutDataset(RecommendationDataset):
    """Base class of the datasets read as one table of interactions, ``test_ratio`` of each user's
    interactions drawn at random as the test split (at least one stays in training).

    Subclasses implement :meth:`read_interactions`.

    Args:
        root: The folder holding ``<name>/raw`` and ``<name>/processed``; :func:`default_root` if
            :obj:`None`. (default: :obj:`None`)
        test_ratio: The fraction of each user's interactions held out for testing.
            (default: :obj:`0.2`)
        val_ratio: The fraction of each user's training interactions held out for validation.
            (default: :obj:`0.0`)
        seed: The seed of the random splits. (default: :obj:`0`)
        transform: A function/transform applied to the data object on every access.
            (default: :obj:`None`)
        pre_transform: A function/transform applied to the data object before saving it.
            (default: :obj:`None`)
        force_reload: Whether to re-process the dataset. (default: :obj:`False`)
        log: Whether to log the processing and the data's statistics (and print the downloads, as PyG
            does). (default: :obj:`True`)
    """

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        test_ratio: float = 0.2,
        val_ratio: float = 0.0,
        seed: int = 0,
        transform: Callable | None = None,
        pre_transform: Callable | None = None,
        force_reload: bool = False,
        log: bool = True,
    ) -> None:
        check_option(is_real(test_ratio) and 0 < test_ratio < 1, "test_ratio", "in (0, 1)", test_ratio)
        self.test_ratio = float(test_ratio)
        super().__init__(root, val_ratio, seed, transform, pre_transform, force_reload, log)

    def options(self) -> dict[str, Any]:
        return {"test": self.test_ratio, "val": self.val_ratio, "seed": self.seed}  # a random test split

    def read_interactions(self) -> tuple[Tensor, Tensor | None, int, int]:
        """Reads the raw files: the ``[2, E]`` interactions, their ``[E]`` times (or :obj:`None`) and the
        numbers of users and items."""
        raise NotImplementedError

    def read(self, rng: np.random.Generator) -> RawSplit:
        index, time, num_users, num_items = self.read_interactions()
        test = holdout_mask(index[0], self.test_ratio, rng)
        check_held_out(test, index[0], self.test_ratio, "test_ratio")
        if time is None:
            return RawSplit(index[:, ~test], index[:, test], num_users, num_items)
        return RawSplit(index[:, ~test], index[:, test], num_users, num_items, time[~test], time[test])


def _download_zip(url: str, raw_dir: str, folder: str, log: bool = True) -> None:
    """Downloads a zip archive and moves the files of its ``folder`` into ``raw_dir``, each complete
    (the archive is downloaded and extracted in a :func:`_download_folder`); a file placed by hand is kept."""
    with _download_folder(raw_dir) as partial:
        path = download_url(url, partial, log=log)
        try:
            extract_zip(path, partial, log=log)
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:  # an OSError, for _download to name the URL
            raise OSError(f"the file downloaded is not a whole zip archive ({exc}): cut short?") from exc
        if not osp.isdir(osp.join(partial, folder)):
            raise OSError(f"the archive holds no folder {folder}/")
        folder = osp.join(partial, folder)
        for name in os.listdir(folder):
            if not osp.exists(osp.join(raw_dir, name)):  # one placed by hand (Tokyo's check-ins, say)
                replace_file(osp.join(folder, name), osp.join(raw_dir, name))


def _compact(
    frame: pd.DataFrame, min_user: int, min_item: int, path: str
) -> tuple[Tensor, Tensor | None, int, int]:
    """Collapses repeated ``(user, item)`` rows (keeping the latest ``time``, if any), applies the k-core
    filter and renumbers the remaining users and items ``0 .. n-1`` in the order of their raw ids."""
    frame = collapse_interactions(frame, min_user, min_item)
    if frame.empty:
        raise DatasetFormatError(
            path, None, f"no interaction is left after the {min_user}/{min_item}-core filter"
        )
    index, user_ids, item_ids = renumber_interactions(frame)
    timed = "time" in frame.columns
    time = torch.from_numpy(frame["time"].to_numpy(np.int64, copy=True)) if timed else None
    return index, time, len(user_ids), len(item_ids)


class MovieLens(HoldoutDataset):
    """Base class of the GroupLens MovieLens rating datasets, turned into implicit feedback.

    Ratings of at least ``rating_threshold`` count as interactions, the others are dropped; then
    ``test_ratio`` of each user's interactions (at least one stays in training) are drawn at random
    as the test split. Users and items keep their MovieLens ids minus one, so ones left with no
    interaction remain as isolated nodes. The rating timestamps are kept (seconds since 1970).

    Args:
        root: The folder holding ``<name>/raw`` and ``<name>/processed``; :func:`default_root` if
            :obj:`None`. (default: :obj:`None`)
        rating_threshold: The smallest rating kept as an interaction (ratings are 1 to 5).
            (default: :obj:`4.0`)
        test_ratio: The fraction of each user's interactions held out for testing.
            (default: :obj:`0.2`)
        val_ratio: The fraction of each user's training interactions held out for validation.
            (default: :obj:`0.0`)
        seed: The seed of the random splits. (default: :obj:`0`)
        transform: A function/transform applied to the data object on every access.
            (default: :obj:`None`)
        pre_transform: A function/transform applied to the data object before saving it.
            (default: :obj:`None`)
        force_reload: Whether to re-process the dataset. (default: :obj:`False`)
        log: Whether to log the processing and the data's statistics (and print the downloads, as PyG
            does). (default: :obj:`True`)
    """

    sep: str
    ratings_file: str
    timed = True

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        rating_threshold: float = 4.0,
        test_ratio: float = 0.2,
        val_ratio: float = 0.0,
        seed: int = 0,
        transform: Callable | None = None,
        pre_transform: Callable | None = None,
        force_reload: bool = False,
        log: bool = True,
    ) -> None:
        check_option(
            is_real(rating_threshold) and math.isfinite(rating_threshold),
            "rating_threshold",
            "a finite number",
            rating_threshold,
        )
        self.rating_threshold = float(rating_threshold)
        super().__init__(root, test_ratio, val_ratio, seed, transform, pre_transform, force_reload, log)

    @property
    def raw_file_names(self) -> list[str]:
        return [self.ratings_file]

    def options(self) -> dict[str, Any]:
        return {"rating": self.rating_threshold, **super().options()}

    @property
    def sources(self) -> list[str]:
        return [f"{self.url}/{self.name}.zip"]

    def download(self) -> None:
        _download_zip(self.sources[0], self.raw_dir, self.name, self.log)

    def read_interactions(self) -> tuple[Tensor, Tensor, int, int]:
        _check_whole(self.raw_paths[0], self.sources[0])
        index, values = read_pairs(self.raw_paths[0], self.sep, one_based=True, num_columns=4)
        num_users, num_items = _num_nodes([index], self.raw_paths, offset=1)
        rating = values[:, 0]
        # a rating of 0, -3 or 7 (a damaged file) was kept or dropped by the threshold without a word
        bad = torch.nonzero((rating < 1) | (rating > 5) | (rating != rating.round())).flatten()
        if bad.numel():
            row = int(bad[0])
            raise DatasetFormatError(
                self.raw_paths[0],
                int(pair_lines(self.raw_paths[0], self.sep)[row]),
                f"rating {float(rating[row]):g} is not one of MovieLens' whole-star ratings, 1 to 5",
            )
        keep = rating >= self.rating_threshold
        check_option(
            bool(keep.any()),
            "rating_threshold",
            f"at most the largest rating in {self.raw_paths[0]}, {float(values[:, 0].max())}",
            self.rating_threshold,
        )
        return index[:, keep], values[keep, 1].long(), num_users, num_items


class MovieLens100K(MovieLens):
    """The MovieLens-100K ratings (943 users, 1,682 movies, 100,000 ratings) as implicit feedback.

    Reads ``u.data``. See :class:`MovieLens` for the arguments.
    """

    name = "ml-100k"
    url = GROUPLENS_URL
    sep = "\t"
    ratings_file = "u.data"


class MovieLens1M(MovieLens):
    """The MovieLens-1M ratings (6,040 users, 3,706 rated of 3,952 movies, 1,000,209 ratings) as
    implicit feedback.

    Reads ``ratings.dat``. See :class:`MovieLens` for the arguments.
    """

    name = "ml-1m"
    url = GROUPLENS_URL
    sep = "::"
    ratings_file = "ratings.dat"


class CiteULike(HoldoutDataset):
    """The CiteULike-t user libraries of `"Collaborative Topic Regression with Social Regularization for
    Tag Recommendation" <https://www.ijcai.org/Proceedings/13/Papers/385.pdf>`_ (Wang, Chen and Li, IJCAI
    2013), as used by the `"Dynamic Sparse Learning" <https://arxiv.org/abs/2402.02855>`_ paper.

    Reads ``users.dat`` of `js05212/citeulike-t <https://github.com/js05212/citeulike-t>`_ (7,947 users,
    25,975 articles, 134,860 user-article pairs): line :math:`u` is user :math:`u`, ``count item item
    ...`` with 0-based article ids. Users with fewer than 5 articles are removed (items are not filtered,
    as in the DSL code's instructions), which leaves 5,219 users and 125,580 interactions; the remaining
    users and articles are renumbered. See :class:`HoldoutDataset` for the arguments.
    """

    name = "citeulike"
    url = CITEULIKE_URL
    min_user_interactions = 5

    @property
    def raw_file_names(self) -> list[str]:
        return ["users.dat"]

    def read_interactions(self) -> tuple[Tensor, None, int, int]:
        user, item = read_count_lists(self.raw_paths[0]).numpy()
        frame = pd.DataFrame({"user": user, "item": item})
        return _compact(frame, self.min_user_interactions, 0, self.raw_paths[0])


_CHECKIN_FIELDS = 8
_CHECKIN_TIME = "%a %b %d %H:%M:%S %z %Y"  # e.g. "Tue Apr 03 18:00:09 +0000 2012"


def _line_fields(raw: bytes, sep: bytes) -> tuple[np.ndarray, np.ndarray]:
    """The 1-based numbers of the non-blank lines of ``raw`` and their numbers of ``sep``-separated fields."""
    buf = np.frombuffer(raw, dtype=np.uint8)
    newline = np.flatnonzero(buf == ord("\n"))
    start, end = np.r_[0, newline + 1], np.r_[newline, buf.size]
    end -= (end > start) & (buf[np.maximum(end - 1, 0)] == ord("\r")) if buf.size else 0
    seps = np.flatnonzero(buf == ord(sep))
    filled = end > start
    num_fields = np.searchsorted(seps, end) - np.searchsorted(seps, start) + 1
    return np.flatnonzero(filled) + 1, num_fields[filled]


def _read_checkins(path: str | os.PathLike) -> pd.DataFrame:
    """Reads a TSMC2014 check-in file (tab separated: user id, venue id, category id, category name,
    latitude, longitude, timezone offset, UTC time) as a ``user``, ``item`` (venue), ``time`` (seconds
    since 1970) frame, raising :class:`DatasetFormatError` on the first malformed line."""
    raw = Path(path).read_bytes().removeprefix(codecs.BOM_UTF8)  # as Windows editors save files
    line, num_fields = _line_fields(raw, b"\t")
    if line.size == 0:
        raise DatasetFormatError(path, None, "file is empty")
    bad = np.flatnonzero(num_fields != _CHECKIN_FIELDS)
    if bad.size:
        k = bad[0]
        raise DatasetFormatError(
            path, int(line[k]), f"expected {_CHECKIN_FIELDS} tab-separated fields, got {num_fields[k]}"
        )
    # The files are Latin-1; only the ASCII user, venue and time fields are used.
    fields = pd.read_csv(
        io.BytesIO(raw),
        sep="\t",
        header=None,
        usecols=[0, 1, 7],
        dtype=str,
        quoting=csv.QUOTE_NONE,
        keep_default_na=False,
        encoding="latin-1",
    )

    def check(ok: pd.Series, message: str) -> None:
        if not ok.all():
            row = int(np.flatnonzero(~ok.to_numpy(bool))[0])
            raise DatasetFormatError(path, int(line[row]), message.format(repr(ok.index[row])))

    user, venue = fields[0], fields[1]
    check(user.str.fullmatch(r"\d{1,15}").set_axis(user), "expected a non-negative integer user id, got {}")
    check(venue.str.fullmatch(r"\S+").set_axis(venue), "expected a venue id, got {}")
    fields[7] = fields[7].str.strip()  # blanks at the end of a line, as other readers allow
    time = pd.to_datetime(fields[7], format=_CHECKIN_TIME, errors="coerce", utc=True)
    check(time.notna().set_axis(fields[7]), "{} is not a time like 'Tue Apr 03 18:00:09 +0000 2012'")
    seconds = (time - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
    return pd.DataFrame({"user": user.astype(np.int64), "item": venue, "time": seconds.astype(np.int64)})


class Foursquare(HoldoutDataset):
    """The Foursquare check-ins of New York City (or Tokyo) of `"Modeling User Activity Preference by
    Leveraging User Spatial Temporal Characteristics in LBSNs" <https://doi.org/10.1109/TSMC.2014.2327053>`_
    (Dingqi Yang et al., IEEE TSMC 2015), ``dataset_TSMC2014_NYC.txt``.

    The `"Dynamic Sparse Learning" <https://arxiv.org/abs/2402.02855>`_ code links Dingqi Yang's
    Foursquare page without naming the file; the NYC check-ins (1,083 users, 38,333 venues, 227,428
    check-ins, April 2012 to February 2013) are the widely used one. Repeated check-ins of a user at a
    venue are collapsed into one interaction timed at the latest, then users with fewer than 20 and
    venues with fewer than 10 interactions are removed repeatedly until none is left (a 20/10-core, the
    thresholds of the DSL code); users and venues are renumbered in the order of their raw ids.
    The check-in times are kept (seconds since 1970) for the latest-interaction protocols.

    Args:
        root: The folder holding ``<name>/raw`` and ``<name>/processed``; :func:`default_root` if
            :obj:`None`. (default: :obj:`None`)
        city: ``"NYC"`` or ``"TKY"`` (Tokyo, in the same archive). (default: ``"NYC"``)
        test_ratio: The fraction of each user's interactions held out for testing.
            (default: :obj:`0.2`)
        val_ratio: The fraction of each user's training interactions held out for validation.
            (default: :obj:`0.0`)
        seed: The seed of the random splits. (default: :obj:`0`)
        transform: A function/transform applied to the data object on every access.
            (default: :obj:`None`)
        pre_transform: A function/transform applied to the data object before saving it.
            (default: :obj:`None`)
        force_reload: Whether to re-process the dataset. (default: :obj:`False`)
        log: Whether to log the processing and the data's statistics (and print the downloads, as PyG
            does). (default: :obj:`True`)
    """

    name = "foursquare"
    url = FOURSQUARE_URL
    timed = True
    cities = ("NYC", "TKY")
    min_user_interactions = 20
    min_item_interactions = 10

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        city: str = "NYC",
        test_ratio: float = 0.2,
        val_ratio: float = 0.0,
        seed: int = 0,
        transform: Callable | None = None,
        pre_transform: Callable | None = None,
        force_reload: bool = False,
        log: bool = True,
    ) -> None:
        check_option(city in self.cities, "city", f"one of {self.cities}", city)
        self.city = city
        super().__init__(root, test_ratio, val_ratio, seed, transform, pre_transform, force_reload, log)

    @property
    def raw_file_names(self) -> list[str]:
        return [f"dataset_TSMC2014_{self.city}.txt"]

    def options(self) -> dict[str, Any]:
        return {"city": self.city, **super().options()}

    @property
    def sources(self) -> list[str]:
        return [self.url]

    def download(self) -> None:
        _download_zip(self.url, self.raw_dir, "dataset_tsmc2014", self.log)

    def read_interactions(self) -> tuple[Tensor, Tensor, int, int]:
        frame = _read_checkins(self.raw_paths[0])
        return _compact(frame, self.min_user_interactions, self.min_item_interactions, self.raw_paths[0])


DATASETS: dict[str, type[RecommendationDataset]] = {
    cls.name: cls
    for cls in (
        LastFM,
        Gowalla,
        Yelp2018,
        AmazonBook,
        MovieLens100K,
        MovieLens1M,
        MovieLens1MLCF,
        CiteULike,
        Foursquare,
    )
}
"""The benchmark datasets by their name, the ``name`` of :func:`load_dataset` and of ``dslgraph train
--dataset``."""


#: The protocol option that asks each protocol for a validation split.
_VALIDATION_OPTIONS = {"leave-one-out": "{'validation': True}", "held-out-users": "{'num_val_users': N}"}


def _check_val_ratio(protocol: str, val_ratio: Any) -> None:
    """Refuses a validation share under a protocol: it merges every split and splits them anew, and the
    validation split asked for was merged without a word (the CLI turns --val-ratio into the option)."""
    check_option(
        protocol == "full" or not val_ratio,
        "val_ratio",
        f"0 under protocol {protocol!r}, which merges every split and splits them anew (ask it for a "
        f"validation split: protocol_options={_VALIDATION_OPTIONS.get(protocol)})",
        val_ratio,
    )


def load_dataset(
    name: str = "lastfm",
    root: str | os.PathLike | None = None,
    protocol: str = "full",
    protocol_options: dict[str, Any] | None = None,
    **kwargs,
) -> HeteroData:
    """Loads the benchmark dataset ``name`` (a key of :data:`DATASETS`) as one :class:`HeteroData`,
    re-split by an evaluation protocol of :mod:`dslgraph.data.protocols`.

    ``"full"`` returns the dataset as loaded (its own train/validation/test split); ``"leave-one-out"``
    and ``"held-out-users"`` merge all its interactions and split them again with
    :func:`~dslgraph.data.protocols.leave_one_out` or :func:`~dslgraph.data.protocols.held_out_users`.
    The protocol is seeded by ``protocol_options['seed']``, else by the dataset's ``seed``, and a
    ``transform`` is applied to its split (as ``dataset[0]`` applies it to the dataset's own).

    Args:
        name: The dataset. (default: ``"lastfm"``)
        root: The dataset folder; :func:`default_root` if :obj:`None`. (default: :obj:`None`)
        protocol: One of :data:`~dslgraph.data.protocols.PROTOCOLS`. (default: ``"full"``)
        protocol_options: The arguments of the protocol's function, e.g.
            ``{"num_negatives": 100, "validation": True}``. (default: :obj:`None`)
        **kwargs: Further arguments of the dataset class, e.g. ``val_ratio``.
    """
    check_option(name in DATASETS, "dataset name", f"one of {sorted(DATASETS)}", name)
    options = dict(protocol_options or {})
    seed = options.pop("seed", kwargs.get("seed", 0))
    check_protocol(protocol, options)
    _check_val_ratio(protocol, kwargs.get("val_ratio", 0.0))
    if protocol == "full":
        return DATASETS[name](root, **kwargs)[0]
    # the protocol builds its data anew from the interactions: the transform goes on that data, or what it
    # adds (T.ToUndirected()'s reverse edges) was lost
    transform = kwargs.pop("transform", None)
    data = apply_protocol(DATASETS[name](root, **kwargs)[0], protocol, seed, **options)
    if transform is None:
        return data
    transformed = transform(copy.copy(data))  # a copy: one that drops nodes in place is compared with data
    if not isinstance(transformed, HeteroData):  # RandomLinkSplit's tuple, as dataset[0] gives it
        return transformed
    return check_numbering(data, transformed, "transform", transform)


#: The arguments of :meth:`InteractionDataset.from_csv` (and of the :meth:`~InteractionDataset.from_pandas` it
#: calls) that say how :func:`load_file` reads a file; the split's seed and validation share are its own.
READ_OPTIONS = (
    "sep", "names", "user_col", "item_col", "rating_col", "time_col", "rating_threshold",
    "min_user_interactions", "min_item_interactions", "split", "test_ratio",
)  # fmt: skip


def load_file(
    path: str | os.PathLike,
    protocol: str = "full",
    protocol_options: dict[str, Any] | None = None,
    val_ratio: float = 0.0,
    seed: int = 0,
    **read_options: Any,
) -> HeteroData:
    """Loads one's own interactions from a delimited text file, as :func:`load_dataset` loads a named
    dataset: read and split by :meth:`InteractionDataset.from_csv`, then re-split by ``protocol``.

    The file's own user and item ids are kept beside the 0-based indices dslgraph gives them, as the
    arrays ``data["user"].raw_ids`` and ``data["item"].raw_ids`` (index ``i``'s original id at ``[i]``).

    Args:
        path: The file: a header row naming the columns (or ``read_options["names"]``), one interaction a row.
        protocol: One of :data:`~dslgraph.data.protocols.PROTOCOLS`. (default: ``"full"``)
        protocol_options: The arguments of the protocol's function. (default: :obj:`None`)
        val_ratio: The validation share of :meth:`~InteractionDataset.from_pandas`, under protocol
            ``"full"`` (another asks for its own in ``protocol_options``). (default: :obj:`0.0`)
        seed: The seed of the file's split and of the protocol's. (default: :obj:`0`)
        **read_options: Any of :data:`READ_OPTIONS`, e.g. ``sep="\\t"``, ``user_col="user_id"``.
    """
    unknown = sorted(set(read_options) - set(READ_OPTIONS))
    check_option(not unknown, "read options", f"among {list(READ_OPTIONS)}", unknown)
    options = dict(protocol_options or {})
    check_protocol(protocol, options)
    _check_val_ratio(protocol, val_ratio)
    if osp.isdir(path):
        raise ValueError(f"data file {path} is a folder; name the file of interactions in it")
    if not osp.isfile(path):
        # a checkpoint records the path it was trained on: the CLI's way to a file that has moved since
        raise FileNotFoundError(
            f"data file {path} does not exist (where a checkpoint's file moved, eval, recommend and train "
            "--resume take --data-file, and dslgraph.load_run its data_file)"
        )
    with warnings.catch_warnings():
        if protocol != "full":  # the file's own split, which the protocol's replaces: its emptiness is moot
            warnings.filterwarnings("ignore", message="the test split is empty")
        dataset = InteractionDataset.from_csv(path, val_ratio=val_ratio, seed=seed, **read_options)
    data = apply_protocol(dataset[0], protocol, seed, **options)
    data["user"].raw_ids, data["item"].raw_ids = dataset.user_ids, dataset.item_ids
    return data


def dataset_statistics(data: HeteroData) -> dict[str, int | float]:
    """The numbers of users, items and train/val/test interactions of ``data``, and its density.

    The density is the number of interactions of all splits over ``users * items``.
    """
    num_users, num_items = num_users_items(data)
    store = data[EDGE]
    counts = {
        "train": store.edge_index.size(1),
        "val": store.val_edge_label_index.size(1) if "val_edge_label_index" in store else 0,
        "test": store.edge_label_index.size(1),
    }
    total = sum(counts.values())
    return {
        "users": num_users,
        "items": num_items,
        **counts,
        "density": total / (num_users * num_items) if num_users and num_items else 0.0,
    }
