"""Recommendation benchmark datasets as PyG :class:`~torch_geometric.data.InMemoryDataset` classes.

Every dataset yields one :class:`~torch_geometric.data.HeteroData` in the layout of
:mod:`dslgraph.data.graph`. Raw files live in ``root/<name>/raw/`` and may be placed there by hand
(nothing is downloaded when they are present); ``root`` defaults to :func:`default_root`.

Users and items keep the ids of the raw files (shifted to start at 0 where the files are 1-based), and
their numbers are ``1 +`` the largest id in the raw files, as LightGCN-PyTorch counts them. Users or
items that only occur in the test split are kept (LastFM has 2 such users and 13 such items): they
are isolated in the training graph and counted in the statistics.
"""

from __future__ import annotations

import logging
import math
import os
import os.path as osp
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import HeteroData, InMemoryDataset, download_url, extract_zip

from .graph import EDGE, make_interaction_data, num_users_items
from .interactions import check_option, holdout_mask
from .io import read_adjacency_lists, read_pairs

log = logging.getLogger(__name__)

LIGHTGCN_URL = "https://raw.githubusercontent.com/gusye1234/LightGCN-PyTorch/master/data"
ULTRAGCN_URL = "https://raw.githubusercontent.com/xue-pai/UltraGCN/main/data"
GROUPLENS_URL = "https://files.grouplens.org/datasets/movielens"

# The LastFM split shipped in the source tree (absent from an installed wheel).
EMBEDDED_LASTFM = Path(__file__).resolve().parents[2] / "datasets" / "lastfm" / "raw"


def default_root() -> str:
    """The default dataset folder: ``$DSLGRAPH_HOME`` if set, else ``~/.cache/dslgraph``."""
    return os.environ.get("DSLGRAPH_HOME") or osp.join(osp.expanduser("~"), ".cache", "dslgraph")


def _num_nodes(*splits: Tensor) -> tuple[int, int]:
    num_users, num_items = (torch.cat(splits, dim=1).max(dim=1).values + 1).tolist()
    return num_users, num_items


class RecommendationDataset(InMemoryDataset):
    """Base class of the benchmark datasets: a train/test split of user-item interactions.

    Subclasses set :attr:`name` (the folder under ``root`` and the :data:`DATASETS` key) and
    :attr:`url`, list :attr:`raw_file_names` and implement :meth:`read`.

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
    """

    name: str
    url: str

    def __init__(
        self,
        root: str | None = None,
        val_ratio: float = 0.0,
        seed: int = 0,
        transform: Callable | None = None,
        pre_transform: Callable | None = None,
        force_reload: bool = False,
    ) -> None:
        check_option(0 <= val_ratio < 1, "val_ratio", "in [0, 1)", val_ratio)
        check_option(isinstance(seed, int), "seed", "an integer", seed)
        self.val_ratio = float(val_ratio)
        self.seed = seed
        super().__init__(
            default_root() if root is None else root, transform, pre_transform, force_reload=force_reload
        )
        self.load(self.processed_paths[0], data_cls=HeteroData)

    @property
    def raw_dir(self) -> str:
        return osp.join(self.root, self.name, "raw")

    @property
    def processed_dir(self) -> str:
        return osp.join(self.root, self.name, "processed")

    def options(self) -> dict[str, float]:
        """The options that change the processed data, encoded in the processed file name."""
        return {"val": self.val_ratio, "seed": self.seed}

    @property
    def processed_file_names(self) -> str:
        return "data_" + "_".join(f"{key}{value}" for key, value in self.options().items()) + ".pt"

    def download(self) -> None:
        for name in self.raw_file_names:
            download_url(f"{self.url}/{name}", self.raw_dir)

    def read(self, rng: np.random.Generator) -> tuple[Tensor, Tensor, int, int]:
        """Reads the raw files: the train and test ``[2, E]`` indices and the numbers of users and items."""
        raise NotImplementedError

    def process(self) -> None:
        rng = np.random.default_rng(self.seed)
        train, test, num_users, num_items = self.read(rng)
        val = None
        if self.val_ratio > 0:
            mask = holdout_mask(train[0], self.val_ratio, rng)
            train, val = train[:, ~mask], train[:, mask]
        data = make_interaction_data(num_users, num_items, train, test, val)
        log.info("%s: %s", self.__class__.__name__, dataset_statistics(data))
        for kind, row in (("users", 0), ("items", 1)):
            cold = int((~torch.isin(test[row].unique(), train[row])).sum())
            if cold:
                log.info("%s: %d test %s have no training interaction", self.__class__.__name__, cold, kind)
        if self.pre_transform is not None:
            data = self.pre_transform(data)
        self.save([data], self.processed_paths[0])


class LightGCNDataset(RecommendationDataset):
    """Base class of the datasets in the LightGCN format: ``train.txt``/``test.txt`` adjacency lists.

    See :func:`~dslgraph.data.io.read_adjacency_lists` for the format and
    :class:`RecommendationDataset` for the arguments.
    """

    @property
    def raw_file_names(self) -> list[str]:
        return ["train.txt", "test.txt"]

    def read(self, rng: np.random.Generator) -> tuple[Tensor, Tensor, int, int]:
        train, test = (read_adjacency_lists(path) for path in self.raw_paths)
        return train, test, *_num_nodes(train, test)


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
    interactions. The raw files are copied from the copy in the source tree when there is one,
    else downloaded. See :class:`RecommendationDataset` for the arguments.
    """

    name = "lastfm"
    url = f"{LIGHTGCN_URL}/lastfm"

    @property
    def raw_file_names(self) -> list[str]:
        return ["data1.txt", "test1.txt"]

    def download(self) -> None:
        if all((EMBEDDED_LASTFM / name).is_file() for name in self.raw_file_names):
            os.makedirs(self.raw_dir, exist_ok=True)
            for name in self.raw_file_names:
                shutil.copyfile(EMBEDDED_LASTFM / name, osp.join(self.raw_dir, name))
        else:
            super().download()

    def read(self, rng: np.random.Generator) -> tuple[Tensor, Tensor, int, int]:
        train, test = (read_pairs(path, "\t", one_based=True, num_columns=3)[0] for path in self.raw_paths)
        return train, test, *_num_nodes(train, test)


class MovieLens(RecommendationDataset):
    """Base class of the GroupLens MovieLens rating datasets, turned into implicit feedback.

    Ratings of at least ``rating_threshold`` count as interactions, the others are dropped; then
    ``test_ratio`` of each user's interactions (at least one stays in training) are drawn at random
    as the test split. Users and items keep their MovieLens ids minus one, so ones left with no
    interaction remain as isolated nodes.

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
    """

    sep: str
    ratings_file: str

    def __init__(
        self,
        root: str | None = None,
        rating_threshold: float = 4.0,
        test_ratio: float = 0.2,
        val_ratio: float = 0.0,
        seed: int = 0,
        transform: Callable | None = None,
        pre_transform: Callable | None = None,
        force_reload: bool = False,
    ) -> None:
        check_option(math.isfinite(rating_threshold), "rating_threshold", "a finite number", rating_threshold)
        check_option(0 < test_ratio < 1, "test_ratio", "in (0, 1)", test_ratio)
        self.rating_threshold = float(rating_threshold)
        self.test_ratio = float(test_ratio)
        super().__init__(root, val_ratio, seed, transform, pre_transform, force_reload)

    @property
    def raw_file_names(self) -> list[str]:
        return [self.ratings_file]

    def options(self) -> dict[str, float]:
        return {"rating": self.rating_threshold, "test": self.test_ratio, **super().options()}

    def download(self) -> None:
        path = download_url(f"{self.url}/{self.name}.zip", self.raw_dir)
        extract_zip(path, self.raw_dir)
        folder = osp.join(self.raw_dir, self.name)
        for name in os.listdir(folder):
            shutil.move(osp.join(folder, name), osp.join(self.raw_dir, name))
        os.rmdir(folder)
        os.unlink(path)

    def read(self, rng: np.random.Generator) -> tuple[Tensor, Tensor, int, int]:
        index, values = read_pairs(self.raw_paths[0], self.sep, one_based=True, num_columns=4)
        num_users, num_items = _num_nodes(index)
        index = index[:, values[:, 0] >= self.rating_threshold]
        test = holdout_mask(index[0], self.test_ratio, rng)
        return index[:, ~test], index[:, test], num_users, num_items


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


DATASETS: dict[str, type[RecommendationDataset]] = {
    cls.name: cls
    for cls in (LastFM, Gowalla, Yelp2018, AmazonBook, MovieLens100K, MovieLens1M, MovieLens1MLCF)
}


def load_dataset(name: str = "lastfm", root: str | None = None, **kwargs) -> HeteroData:
    """Loads the benchmark dataset ``name`` (a key of :data:`DATASETS`) as one :class:`HeteroData`.

    Args:
        name: The dataset. (default: ``"lastfm"``)
        root: The dataset folder; :func:`default_root` if :obj:`None`. (default: :obj:`None`)
        **kwargs: Further arguments of the dataset class, e.g. ``val_ratio``.
    """
    check_option(name in DATASETS, "dataset name", f"one of {sorted(DATASETS)}", name)
    return DATASETS[name](root, **kwargs)[0]


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
