import io
import json
import os
import re
import warnings
import zipfile
from pathlib import Path
from urllib.error import URLError

import pytest
import torch
import torch_geometric.transforms as T

from dslgraph.data import (
    DATASETS,
    EDGE,
    AmazonBook,
    DatasetFormatError,
    DatasetUnavailableError,
    Gowalla,
    LastFM,
    MovieLens1M,
    MovieLens1MLCF,
    MovieLens100K,
    Yelp2018,
    dataset_statistics,
    load_dataset,
    load_file,
)
from dslgraph.data import datasets as datasets_module

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "datasets"

TRAIN = b"0 1 2\n1 0\n2 3 1 0\n3\n"
TEST = b"0 3\n1 2 4\n3 0\n4 1\n"  # user 4 and item 4 occur only in the test split


def place(root: Path, name: str, files: dict[str, bytes]) -> None:
    raw = root / name / "raw"
    raw.mkdir(parents=True)
    for file, content in files.items():
        (raw / file).write_bytes(content)


def link_shared(root: Path, folder: str, name: str, files: list[str]) -> None:
    source = SHARED / folder / "raw"
    if not all((source / file).exists() for file in files):
        pytest.skip(f"../shared/datasets/{folder} is not available")
    (root / name / "raw").mkdir(parents=True)
    for file in files:
        os.symlink(source / file, root / name / "raw" / file)


def pairs(index: torch.Tensor) -> set[tuple[int, int]]:
    return set(map(tuple, index.t().tolist()))


@pytest.mark.parametrize("cls", [Gowalla, Yelp2018, AmazonBook, MovieLens1MLCF])
@pytest.mark.parametrize("newline", [b"\n", b"\r\n"])
def test_lightgcn_format(tmp_path, cls, newline):
    place(tmp_path, cls.name, {"train.txt": TRAIN.replace(b"\n", newline), "test.txt": TEST})
    dataset = cls(str(tmp_path))
    data = dataset[0]
    assert len(dataset) == 1
    assert dataset_statistics(data) == {
        "users": 5,
        "items": 5,
        "train": 6,
        "val": 0,
        "test": 5,
        "density": 11 / 25,
    }
    assert pairs(data[EDGE].edge_index) == {(0, 1), (0, 2), (1, 0), (2, 3), (2, 1), (2, 0)}
    assert pairs(data[EDGE].edge_label_index) == {(0, 3), (1, 2), (1, 4), (3, 0), (4, 1)}
    processed = tmp_path / cls.name / "processed"
    assert Path(dataset.processed_paths[0]) == processed / "val0.0" / "data.pt"  # a fixed split: no seed
    assert cls(str(tmp_path), seed=7).processed_paths == dataset.processed_paths
    seeded = cls(str(tmp_path), val_ratio=0.2, seed=7)
    assert Path(seeded.processed_paths[0]) == processed / "val0.2_seed7" / "data.pt"
    assert not list(processed.glob("*/.*.tmp-*"))  # written then renamed


def test_validation_split_is_seeded_and_reprocessed(tmp_path):
    train = b"".join(
        f"{u} ".encode() + b" ".join(str(i).encode() for i in range(u, u + 10)) + b"\n" for u in range(20)
    )
    place(tmp_path, "gowalla", {"train.txt": train, "test.txt": b"0 10\n"})
    plain = Gowalla(str(tmp_path))[0]
    store = Gowalla(str(tmp_path), val_ratio=0.2, seed=5)[0][EDGE]
    assert store.val_edge_label_index.size(1) == 40  # round(0.2 * 10) per user
    assert torch.bincount(store.edge_index[0]).tolist() == [8] * 20
    assert pairs(store.edge_index) | pairs(store.val_edge_label_index) == pairs(plain[EDGE].edge_index)
    assert "val_edge_label_index" not in plain[EDGE]
    again = Gowalla(str(tmp_path), val_ratio=0.2, seed=5)[0][EDGE]
    other = Gowalla(str(tmp_path), val_ratio=0.2, seed=6)[0][EDGE]
    assert torch.equal(again.val_edge_label_index, store.val_edge_label_index)
    assert not torch.equal(other.val_edge_label_index, store.val_edge_label_index)
    names = sorted(p.parent.name for p in (tmp_path / "gowalla" / "processed").glob("*/data.pt"))
    assert names == ["val0.0", "val0.2_seed5", "val0.2_seed6"]


def test_ratio_that_holds_out_nothing_fails_naming_it(tmp_path):
    # round(0.04 * 10) is 0 for every user: an empty validation split would pick the first epoch as the best
    train = b"".join(
        f"{u} ".encode() + b" ".join(str(i).encode() for i in range(u, u + 10)) + b"\n" for u in range(20)
    )
    place(tmp_path, "gowalla", {"train.txt": train, "test.txt": b"0 10\n"})
    with pytest.raises(ValueError, match=r"val_ratio=0.04 holds out no interaction: .*most active has 10"):
        Gowalla(str(tmp_path), val_ratio=0.04)
    assert Gowalla(str(tmp_path), val_ratio=0.06)[0][EDGE].val_edge_label_index.size(1) == 20
    place(tmp_path, "ml-100k", {"u.data": U_DATA})  # 10 ratings a user
    with pytest.raises(ValueError, match=r"test_ratio=0.04 holds out no interaction: .*raise test_ratio"):
        MovieLens100K(str(tmp_path), rating_threshold=1, test_ratio=0.04)
    assert [path.parent.name for path in tmp_path.glob("*/processed/*/data.pt")] == ["val0.06_seed0"]


def test_malformed_raw_file_names_file_and_line(tmp_path):
    place(tmp_path, "yelp2018", {"train.txt": b"0 1\n1 2 x\n", "test.txt": b"0 2\n"})
    with pytest.raises(DatasetFormatError, match=r"yelp2018/raw/train\.txt, line 2: .*'x'"):
        Yelp2018(str(tmp_path))


@pytest.mark.parametrize(
    ("cls", "file", "cut", "line", "source"),
    [
        (Gowalla, "train.txt", TRAIN[:-5], 3, "LightGCN-PyTorch/master/data/gowalla/train.txt"),
        (MovieLens1MLCF, "test.txt", b"0 3\r\n1 2 4\r\n3 0\r\n4 1", 4, "UltraGCN/main/data/ml-1m/test.txt"),
        (LastFM, "data1.txt", b"1\t2\t10\r\n2\t1\t2", 2, "LightGCN-PyTorch/master/data/lastfm/data1.txt"),
        (MovieLens100K, "u.data", b"1\t1\t5\t8812\n1\t3\t4\t8813\n1\t2\t4\t89", 3, "movielens/ml-100k.zip"),
    ],
)
def test_raw_file_cut_mid_line_names_file_line_and_source(tmp_path, cls, file, cut, line, source):
    # an adjacency list cut after "2 3" of "2 3 1 0", a count cut from 25 to 2 or a timestamp that lost digits
    # read as valid lines: only the missing line break tells the file was cut short
    files = {"train.txt": TRAIN, "test.txt": TEST, "data1.txt": b"3\t3\t1\r\n", "test1.txt": b"1\t3\t1\r\n"}
    place(tmp_path, cls.name, {name: files.get(name) for name in cls.raw_file_names.fget(cls)} | {file: cut})
    expected = rf"{cls.name}/raw/{file}, line {line}: the file ends mid-line .*get it again from \S*{source}"
    with pytest.raises(DatasetFormatError, match=expected):
        cls(str(tmp_path))
    assert not list((tmp_path / cls.name).glob("processed/*/data.pt"))
    (tmp_path / cls.name / "raw" / file).write_bytes(cut + b"\n")
    cls(str(tmp_path))  # the same lines ending with a line break are read


@pytest.mark.parametrize("empty", ["train.txt", "test.txt"])
@pytest.mark.parametrize(
    ("content", "message"), [(b"0\n1\n", "no interaction listed"), (b"", "file is empty")]
)
def test_split_file_without_interactions_fails_clearly(tmp_path, empty, content, message):
    files = {"train.txt": b"0 1\n1 2\n", "test.txt": b"0 3\n"} | {empty: content}
    place(tmp_path, "gowalla", files)
    with pytest.raises(DatasetFormatError, match=rf"gowalla/raw/{empty}: {message}"):
        Gowalla(str(tmp_path))


@pytest.mark.parametrize(
    ("cls", "files", "message"),
    [
        (Gowalla, {"train.txt": b"0 1 2\n1 0\n", "test.txt": b"0 3\n1 0\n"}, r"\(user 1, item 0\)"),
        (
            LastFM,
            {"data1.txt": b"1\t2\t10\n2\t1\t5\n", "test1.txt": b"1\t3\t1\n1\t2\t4\n"},
            r"\(user 1, item 2\)",
        ),
    ],
)
def test_test_interaction_listed_for_training_fails_clearly(tmp_path, cls, files, message):
    # Excluded from the ranking as seen, such a test item could never be retrieved.
    place(tmp_path, cls.name, files)
    test_file = cls.raw_file_names.fget(cls)[1]
    expected = rf"{test_file}: 1 test interaction\(s\) also listed for training, e\.g\. {message}"
    with pytest.raises(DatasetFormatError, match=expected):
        cls(str(tmp_path))
    assert not list((tmp_path / cls.name).glob("processed/*/data.pt"))


@pytest.mark.parametrize(
    ("cls", "files", "message"),
    [
        (
            Gowalla,
            {"train.txt": b"0 1 2\n1 2\n100000000000000 0\n", "test.txt": b"0 3\n1 0\n"},
            r"train\.txt: user id 100000000000000 would make 100,000,000,000,001 users .* where the dataset "
            r"holds 3 distinct user ids: renumber them 0\.\.2, or .* InteractionDataset\.from_csv",
        ),
        (
            Yelp2018,
            {"train.txt": b"0 1 2\n1 2\n", "test.txt": b"0 3\n1 12345678\n"},
            r"test\.txt: item id 12345678 would make 12,345,679 items .* 4 distinct item ids",
        ),
        (
            LastFM,
            {"data1.txt": b"1\t2\t10\n2\t1\t5\n", "test1.txt": b"1\t100000000000000\t1\n"},
            r"test1\.txt: item id 100000000000000 would make .* renumber them 1\.\.3,",
        ),
        (
            MovieLens100K,
            {"u.data": b"1\t1\t5\t880000000\n2\t1\t4\t880000001\n5000001\t2\t5\t880000002\n"},
            r"u\.data: user id 5000001 would make 5,000,001 users .* 3 distinct user ids: "
            r"renumber them 1\.\.3",
        ),
    ],
    ids=["lightgcn-user", "lightgcn-test-item", "lastfm-item", "movielens-user"],
)
def test_ids_far_sparser_than_a_numbering_are_named_before_any_table(tmp_path, cls, files, message):
    """These formats number users and items by their ids: one user id of 10^14 made a dataset of 10^14
    users, processed and saved without a word, and a model's table of 10^14 rows failed far from the file."""
    place(tmp_path, cls.name, files)
    with pytest.raises(DatasetFormatError, match=message):
        cls(str(tmp_path))
    assert not list((tmp_path / cls.name).glob("processed/*/data.pt"))


def test_ids_with_gaps_still_number_the_nodes(tmp_path):
    """Gaps are kept as nodes (items of the test split only, users without interactions): a million ids
    whatever their use, and more where at least a tenth of them occur (ids 0, 10, ..., 1,000,000)."""
    place(tmp_path, "gowalla", {"train.txt": b"0 1\n7 999999\n", "test.txt": b"0 2\n"})
    assert dataset_statistics(Gowalla(str(tmp_path))[0])["items"] == 1_000_000
    items = " ".join(map(str, range(0, 1_000_001, 10))).encode()
    place(tmp_path, "yelp2018", {"train.txt": b"0 " + items + b"\n", "test.txt": b"1 5\n"})
    assert dataset_statistics(Yelp2018(str(tmp_path))[0])["items"] == 1_000_001


def test_the_overlap_check_numbers_users_and_items_not_pair_columns(tmp_path, monkeypatch):
    """Users and items are ranked apart (1-D uniques) to key the pairs: torch.unique(dim=1) sorted the
    pairs as columns, 11 s of a 14 s read of Amazon-book's 3 M interactions. Ids of 15 digits, whose
    user * num_items + item would overflow, are still told apart."""
    unique = torch.unique

    def one_dimensional(*args, **kwargs):
        assert kwargs.get("dim") is None, "a unique over pair columns"
        return unique(*args, **kwargs)

    monkeypatch.setattr(torch, "unique", one_dimensional)
    big = 10**15 - 1
    train = f"{big} 1 {big - 1}\n{big - 1} 1\n".encode()
    place(
        tmp_path, "gowalla", {"train.txt": train, "test.txt": f"{big - 1} {big}\n{big} {big - 1}\n".encode()}
    )
    expected = rf"1 test interaction\(s\) also listed for training, e\.g\. \(user {big}, item {big - 1}\)"
    with pytest.raises(DatasetFormatError, match=expected):
        Gowalla(str(tmp_path))


class Tag:
    """A pre_transform whose repr tells its settings apart, as PyG's transforms' do."""

    def __init__(self, value: int) -> None:
        self.value = value

    def __call__(self, data):
        data.tag = torch.tensor([self.value])
        return data

    def __repr__(self) -> str:
        return f"Tag({self.value})"


def test_pre_transform_is_recorded_per_processed_file(tmp_path):
    place(tmp_path, "gowalla", {"train.txt": TRAIN, "test.txt": TEST})
    Gowalla(str(tmp_path), pre_transform=Tag(1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a split of other options is processed afresh: nothing to warn of
        Gowalla(str(tmp_path), val_ratio=0.5, pre_transform=Tag(2))
        assert Gowalla(str(tmp_path), pre_transform=Tag(1))[0].tag.tolist() == [1]
    with pytest.warns(UserWarning, match="pre_transform"):
        stale = Gowalla(str(tmp_path), pre_transform=Tag(2))  # processed with Tag(1): PyG warns
    assert stale[0].tag.tolist() == [1]
    assert Gowalla(str(tmp_path), pre_transform=Tag(2), force_reload=True)[0].tag.tolist() == [2]


@pytest.mark.parametrize(
    "transform", [T.RemoveIsolatedNodes(), T.Compose([T.ToUndirected(), T.RemoveIsolatedNodes()])]
)
def test_a_transform_that_renumbers_users_or_items_is_named(tmp_path, transform):
    # user 4 and item 4 occur only in the test split (user 3 in neither): RemoveIsolatedNodes dropped them
    # and renumbered edge_index, leaving the test split's ids to name other users and items
    place(tmp_path, "gowalla", {"train.txt": TRAIN, "test.txt": TEST})
    dataset = Gowalla(str(tmp_path), transform=transform)
    expected = (
        rf"transform {re.escape(repr(transform))} changed the numbers of nodes \(users 5 -> 3, items 5 -> 4\)"
    )
    with pytest.raises(ValueError, match=expected):
        dataset[0]
    with pytest.raises(
        ValueError, match=r"pre_transform RemoveIsolatedNodes\(\) changed the numbers of nodes"
    ):
        Gowalla(str(tmp_path), val_ratio=0.5, pre_transform=T.RemoveIsolatedNodes())


def test_a_pre_transform_that_drops_nodes_in_place_is_named(tmp_path):
    # a function changing the data it is given (a transform's forward, skipping BaseTransform's copy) was
    # compared with itself, and the test split saved with ids naming other users and items
    place(tmp_path, "gowalla", {"train.txt": TRAIN, "test.txt": TEST})

    def drop_isolated(data):
        return T.RemoveIsolatedNodes().forward(data)

    with pytest.raises(ValueError, match=r"changed the numbers of nodes \(users 5 -> 3, items 5 -> 4\)"):
        Gowalla(str(tmp_path), pre_transform=drop_isolated)


def test_pyg_transforms_that_keep_the_layout_apply(tmp_path):
    place(tmp_path, "gowalla", {"train.txt": TRAIN, "test.txt": TEST})
    plain = Gowalla(str(tmp_path))[0]
    data = Gowalla(str(tmp_path), transform=T.Compose([T.ToUndirected(), T.ToDevice("cpu")]))[0]
    assert torch.equal(data[EDGE].edge_label_index, plain[EDGE].edge_label_index)
    assert torch.equal(data["item", "rev_to", "user"].edge_index, plain[EDGE].edge_index.flip(0))
    # PyG's link-prediction tutorials unpack RandomLinkSplit's (train, val, test) from dataset[0]
    train, val, test = Gowalla(str(tmp_path), transform=T.RandomLinkSplit(edge_types=EDGE))[0]
    assert "edge_label" in train[EDGE]


def test_a_pre_transform_must_return_one_heterodata(tmp_path):
    # RandomLinkSplit as pre_transform failed inside PyG's save: 'tuple' object has no attribute 'to_dict'
    place(tmp_path, "gowalla", {"train.txt": TRAIN, "test.txt": TEST})
    split = T.RandomLinkSplit(edge_types=EDGE)
    with pytest.raises(
        ValueError, match=r"pre_transform RandomLinkSplit\(.*\) must return the HeteroData .* tuple"
    ):
        Gowalla(str(tmp_path), pre_transform=split)


def test_download_cut_short_leaves_no_raw_file(tmp_path, monkeypatch):
    def cut_short(url: str, folder: str, log: bool = True) -> str:
        os.makedirs(folder, exist_ok=True)
        Path(folder, url.rpartition("/")[2]).write_bytes(TRAIN[:9])  # "0 1 2\n1 0": still parses
        raise ConnectionResetError("connection dropped")

    place(tmp_path, "gowalla", {"test.txt": TEST})  # the raw folder exists: it is kept
    monkeypatch.setattr(datasets_module, "download_url", cut_short)
    with pytest.raises(DatasetUnavailableError, match=r"train\.txt not in .*\(connection dropped\)"):
        Gowalla(str(tmp_path))
    assert os.listdir(tmp_path / "gowalla" / "raw") == ["test.txt"]


def test_a_download_that_fails_halfway_keeps_the_files_it_fetched(tmp_path, monkeypatch):
    """The folders made for the download go when it fails, not a file fetched into them: a second try
    fetches only the file missing."""
    urls = []

    def test_file_fails(url: str, folder: str, log: bool = True) -> str:
        urls.append(url.rpartition("/")[2])
        if url.endswith("test.txt"):
            raise ConnectionResetError("connection dropped")
        os.makedirs(folder, exist_ok=True)
        path = Path(folder, "train.txt")
        path.write_bytes(TRAIN)
        return str(path)

    monkeypatch.setattr(datasets_module, "download_url", test_file_fails)
    with pytest.raises(DatasetUnavailableError, match=r"test\.txt not in .*\(connection dropped\)"):
        Gowalla(str(tmp_path / "root"))
    assert os.listdir(tmp_path / "root" / "gowalla" / "raw") == ["train.txt"]
    (tmp_path / "root" / "gowalla" / "raw" / "test.txt").write_bytes(TEST)  # placed by hand
    assert Gowalla(str(tmp_path / "root"))[0][EDGE].edge_index.size(1) == 6
    assert urls == ["train.txt", "test.txt"]


def test_root_that_is_a_file_or_a_broken_raw_link_is_named(tmp_path, monkeypatch):
    # both failed as a download that could not make the folder: "Not a directory", "File exists"
    monkeypatch.setattr(datasets_module, "download_url", lambda url, folder, log: pytest.fail("downloaded"))
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(
        DatasetUnavailableError, match=re.escape(f"{tmp_path / 'file'} is a file, not a folder")
    ):
        Gowalla(str(tmp_path / "file" / "sub"))
    (tmp_path / "gowalla").mkdir()
    os.symlink(tmp_path / "moved", tmp_path / "gowalla" / "raw")
    link = re.escape(f"gowalla/raw is a broken link (to {tmp_path / 'moved'}), not a folder; the raw files")
    with pytest.raises(DatasetUnavailableError, match=rf"{link} train\.txt, test\.txt go in "):
        Gowalla(str(tmp_path))


def test_zip_download_cut_short_leaves_no_raw_file(tmp_path, monkeypatch):
    def cut_short(url: str, folder: str, log: bool = True) -> str:
        os.makedirs(folder, exist_ok=True)
        Path(folder, "ml-100k.zip").write_bytes(b"PK\x03\x04")
        raise ConnectionResetError("connection dropped")

    os.makedirs(tmp_path / "ml-100k" / "raw")  # existing: kept, and left empty
    monkeypatch.setattr(datasets_module, "download_url", cut_short)
    with pytest.raises(DatasetUnavailableError, match=r"\(connection dropped\)"):
        MovieLens100K(str(tmp_path))
    assert os.listdir(tmp_path / "ml-100k" / "raw") == []


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ({"val_ratio": 1.0}, "val_ratio"),
        ({"seed": 0.5}, "seed"),
        ({"seed": -1}, "seed must be an integer >= 0"),
    ],
)
def test_bad_options(tmp_path, option, message):
    with pytest.raises(ValueError, match=message):
        Gowalla(str(tmp_path), **option)


def test_lightgcn_download(tmp_path, monkeypatch):
    urls = []

    def fake_download(url: str, folder: str, log: bool = True) -> str:
        urls.append(url)
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, url.rpartition("/")[2])
        Path(path).write_bytes(TRAIN if path.endswith("train.txt") else TEST)
        return path

    monkeypatch.setattr(datasets_module, "download_url", fake_download)
    data = AmazonBook(str(tmp_path))[0]
    base = "https://raw.githubusercontent.com/gusye1234/LightGCN-PyTorch/master/data/amazon-book"
    assert urls == [f"{base}/train.txt", f"{base}/test.txt"]
    assert data[EDGE].edge_index.size(1) == 6
    AmazonBook(str(tmp_path))  # raw files present: nothing is downloaded again
    assert len(urls) == 2


def test_lastfm_default_root_copies_embedded(tmp_path, monkeypatch):
    # the copy ships inside the package, installed or not (tests/test_package.py checks the wheel)
    monkeypatch.setenv("DSLGRAPH_HOME", str(tmp_path))
    monkeypatch.setattr(datasets_module, "download_url", None)  # must not be called
    data = load_dataset()
    assert (tmp_path / "lastfm" / "raw" / "data1.txt").is_file()
    assert dataset_statistics(data) == {
        "users": 1892,
        "items": 4489,
        "train": 42135,
        "val": 0,
        "test": 10533,
        "density": 52668 / (1892 * 4489),
    }


def test_lastfm_copy_cut_short_leaves_no_raw_file(tmp_path, monkeypatch):
    embedded = tmp_path / "embedded"
    embedded.mkdir()
    (embedded / "data1.txt").write_bytes(b"1\t2\t10\n2\t1\t5\n")
    (embedded / "test1.txt").write_bytes(b"1\t3\t1\n")
    monkeypatch.setattr(datasets_module, "EMBEDDED_LASTFM", embedded)

    def crash(source, target):
        Path(target).write_bytes(Path(source).read_bytes()[:6])  # a line boundary: still parses
        raise OSError("disk full")

    monkeypatch.setattr(datasets_module.shutil, "copyfile", crash)
    with pytest.raises(OSError, match="disk full"):
        LastFM(str(tmp_path / "root"))
    assert not (tmp_path / "root" / "lastfm" / "raw" / "data1.txt").exists()


def test_lastfm_keeps_a_raw_file_placed_by_hand(tmp_path, monkeypatch):
    # test1.txt missing, the shipped copy replaced the data1.txt placed by hand without a word
    monkeypatch.setattr(datasets_module, "download_url", None)  # must not be called
    place(tmp_path, "lastfm", {"data1.txt": b"1\t2\t10\n2\t1\t5\n2\t3\t1\n"})
    data = LastFM(str(tmp_path))[0]
    assert (tmp_path / "lastfm" / "raw" / "data1.txt").read_bytes() == b"1\t2\t10\n2\t1\t5\n2\t3\t1\n"
    assert (tmp_path / "lastfm" / "raw" / "test1.txt").stat().st_size > 0
    assert data[EDGE].edge_index.size(1) == 3


def test_a_dataset_s_repr_names_its_numbers_of_users_and_items(tmp_path, monkeypatch):
    # PyG's repr printed "LastFM()", where InteractionDataset's names the sizes
    monkeypatch.setattr(datasets_module, "download_url", None)  # must not be called
    place(tmp_path, "lastfm", {"data1.txt": b"1\t2\t10\n2\t1\t5\n3\t3\t1\n", "test1.txt": b"1\t5\t1\n"})
    assert repr(LastFM(str(tmp_path))) == "LastFM(users=3, items=5)"


def test_lastfm_download_without_embedded_copy(tmp_path, monkeypatch):
    urls = []

    def fake_download(url: str, folder: str, log: bool = True) -> str:
        urls.append(url)
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, url.rpartition("/")[2])
        Path(path).write_bytes(b"1\t2\t10\r\n2\t1\t5\r\n" if path.endswith("data1.txt") else b"1\t3\t1\r\n")
        return path

    monkeypatch.setattr(datasets_module, "EMBEDDED_LASTFM", tmp_path / "missing")
    monkeypatch.setattr(datasets_module, "download_url", fake_download)
    data = LastFM(str(tmp_path / "root"))[0]
    assert (
        urls[0] == "https://raw.githubusercontent.com/gusye1234/LightGCN-PyTorch/master/data/lastfm/data1.txt"
    )
    assert pairs(data[EDGE].edge_index) == {(0, 1), (1, 0)}
    assert pairs(data[EDGE].edge_label_index) == {(0, 2)}
    assert (data["user"].num_nodes, data["item"].num_nodes) == (2, 3)


U_DATA = b"".join(
    f"{u}\t{i}\t{(u + i) % 5 + 1}\t{880000000 + u * 10 + i}\n".encode()
    for u in range(1, 7)
    for i in range(1, 11)
)


def test_movielens_implicit_split(tmp_path):
    place(tmp_path, "ml-100k", {"u.data": U_DATA})
    dataset = MovieLens100K(str(tmp_path), rating_threshold=3, test_ratio=0.25, val_ratio=0.2, seed=1)
    store = dataset[0][EDGE]
    kept = {(u - 1, i - 1) for u in range(1, 7) for i in range(1, 11) if (u + i) % 5 + 1 >= 3}
    splits = [pairs(store.edge_index), pairs(store.val_edge_label_index), pairs(store.edge_label_index)]
    assert set().union(*splits) == kept and sum(map(len, splits)) == len(kept)
    assert torch.bincount(store.edge_label_index[0]).tolist() == [2] * 6  # round(0.25 * 6)
    assert (dataset[0]["user"].num_nodes, dataset[0]["item"].num_nodes) == (6, 10)
    assert Path(dataset.processed_paths[0]).parent.name == "rating3.0_test0.25_val0.2_seed1"


def test_movielens_threshold_above_every_rating(tmp_path):
    # else an empty dataset, processed and cached without a word
    place(tmp_path, "ml-100k", {"u.data": U_DATA})
    with pytest.raises(
        ValueError, match=r"rating_threshold must be at most the largest rating in .*u\.data, 5\.0"
    ):
        MovieLens100K(str(tmp_path), rating_threshold=6)
    assert not list((tmp_path / "ml-100k").glob("processed/*/data.pt"))


@pytest.mark.parametrize("dataset", [MovieLens100K, MovieLens1M])
@pytest.mark.parametrize("rating", ["0", "-3", "6", "7", "4.5"])
def test_movielens_refuses_a_rating_that_is_no_star_naming_its_line(tmp_path, dataset, rating):
    # 0 and -3 were dropped, 7 kept as an interaction, without a word: MovieLens rates 1 to 5 whole stars
    lines = U_DATA.decode().splitlines(keepends=True)
    lines[4] = "\t".join([*lines[4].split("\t")[:2], rating, "880000005\n"])
    text = "\n".join(lines).encode()  # blank lines between: the file's line 9, its 5th interaction
    name = "u.data" if dataset is MovieLens100K else "ratings.dat"
    sep = b"\t" if dataset is MovieLens100K else b"::"
    place(tmp_path, dataset.name, {name: text.replace(b"\t", sep)})
    message = rf"{name}, line 9: rating {rating} is not one of MovieLens' whole-star ratings, 1 to 5"
    with pytest.raises(DatasetFormatError, match=message):
        dataset(str(tmp_path))


@pytest.mark.parametrize("dataset", [MovieLens100K, MovieLens1M])
def test_a_bad_rating_after_a_line_of_blanks_names_its_own_line(tmp_path, dataset):
    """A line of blanks only is no interaction, as a blank line is none: counted as one, it made the error
    name the line before the bad rating."""
    lines = U_DATA.decode().splitlines(keepends=True)
    lines[4] = "1\t5\t7\t880000005\n"
    text = ("  \r\n" + "".join(lines)).encode()  # the bad rating on the file's line 6
    name = "u.data" if dataset is MovieLens100K else "ratings.dat"
    place(tmp_path, dataset.name, {name: text.replace(b"\t", b"\t" if dataset is MovieLens100K else b"::")})
    with pytest.raises(DatasetFormatError, match=rf"{name}, line 6: rating 7 is not one of MovieLens'"):
        dataset(str(tmp_path))


def test_movielens_keeps_the_timestamp_of_each_interaction(tmp_path):
    """The times stored beside each split are those of its interactions (the protocols pick the latest)."""
    place(tmp_path, "ml-100k", {"u.data": U_DATA})
    store = MovieLens100K(str(tmp_path), val_ratio=0.2, log=False)[0][EDGE]
    for index, time in (
        (store.edge_index, store.time),
        (store.val_edge_label_index, store.val_edge_label_time),
        (store.edge_label_index, store.edge_label_time),
    ):
        assert index.size(1) > 0 and torch.equal(time, 880000000 + (index[0] + 1) * 10 + index[1] + 1)


def test_a_timed_dataset_cached_without_its_times_is_processed_again(tmp_path):
    """A data.pt saved without timestamps (by a dslgraph that kept none) has nothing for the
    latest-interaction protocols to read: it is made again, not kept."""
    place(tmp_path, "ml-100k", {"u.data": U_DATA})
    dataset = MovieLens100K(str(tmp_path), log=False)
    data = dataset[0]
    times = data[EDGE].time.clone()
    del data[EDGE].time, data[EDGE].edge_label_time
    dataset.save([data], dataset.processed_paths[0])
    assert torch.equal(MovieLens100K(str(tmp_path), log=False)[0][EDGE].time, times)


def test_movielens_1m_format(tmp_path):
    place(tmp_path, "ml-1m", {"ratings.dat": U_DATA.replace(b"\t", b"::")})
    data = MovieLens1M(str(tmp_path))[0]
    assert dataset_statistics(data)["train"] + dataset_statistics(data)["test"] == 24  # ratings 4 and 5


def test_movielens_download_extracts_zip(tmp_path, monkeypatch):
    urls = []

    def fake_download(url: str, folder: str, log: bool = True) -> str:
        urls.append(url)
        os.makedirs(folder, exist_ok=True)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("ml-100k/u.data", U_DATA)
            archive.writestr("ml-100k/README", b"licence")
        path = os.path.join(folder, "ml-100k.zip")
        Path(path).write_bytes(buffer.getvalue())
        return path

    monkeypatch.setattr(datasets_module, "download_url", fake_download)
    data = MovieLens100K(str(tmp_path))[0]
    assert urls == ["https://files.grouplens.org/datasets/movielens/ml-100k.zip"]
    assert sorted(os.listdir(tmp_path / "ml-100k" / "raw")) == ["README", "u.data"]
    assert data[EDGE].edge_index.size(1) + data[EDGE].edge_label_index.size(1) == 24


def test_movielens_1m_refuses_100k_s_file_under_its_name(tmp_path):
    """u.data placed as ratings.dat: its tabs separated the fields as "::" would, and ML-100K was read as
    ML-1M."""
    place(tmp_path, "ml-1m", {"ratings.dat": U_DATA})
    with pytest.raises(
        DatasetFormatError, match=r"ratings\.dat, line 1: 4 values separated by blanks in 1 field"
    ):
        MovieLens1M(str(tmp_path))


def zip_of(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


WHOLE_ZIP = zip_of({"ml-100k/u.data": U_DATA * 20})


@pytest.mark.parametrize(
    ("archive", "message"),
    [
        (
            b"<html>a captive portal</html>",
            r"failed \(the file downloaded is not a whole zip archive \(File is",
        ),
        (WHOLE_ZIP[: len(WHOLE_ZIP) // 2], "failed \\(the file downloaded is not a whole zip archive"),
        (
            WHOLE_ZIP[:60] + bytes([WHOLE_ZIP[60] ^ 0xFF]) + WHOLE_ZIP[61:],
            "not a whole zip archive \\(Error -3",
        ),
        (zip_of({"ml-100k-v2/u.data": U_DATA}), r"failed \(the archive holds no folder ml-100k/\)"),
        (
            zip_of({"ml-100k/README": b"x"}),
            r"u\.data not in .* after downloading .*ml-100k\.zip, which holds no",
        ),
    ],
    ids=["not-a-zip", "cut-short", "damaged", "no-folder", "no-file"],
)
def test_a_bad_archive_names_the_download_and_leaves_no_folder(tmp_path, monkeypatch, archive, message):
    """zipfile's "File is not a zip file" (or zlib's error) named neither archive nor URL, and left the empty
    raw folder behind; an archive without the file failed in os.stat."""

    def fake_download(url: str, folder: str, log: bool = True) -> str:
        path = os.path.join(folder, url.rpartition("/")[2])
        Path(path).write_bytes(archive)
        return path

    monkeypatch.setattr(datasets_module, "download_url", fake_download)
    with pytest.raises(DatasetUnavailableError, match=message):
        MovieLens100K(str(tmp_path))
    assert not list((tmp_path / "ml-100k" / "raw").glob("u.data")) and not list(tmp_path.rglob(".download-*"))
    # nor an empty folder made for the download (an archive's other files may stay in raw/: "no-file")
    assert not [path for path in tmp_path.rglob("*") if path.is_dir() and not any(path.iterdir())]


def offline_download(url: str, folder: str, log: bool = True) -> str:
    raise URLError("[Errno -2] Name or service not known")


@pytest.mark.parametrize(
    "cls, missing, source",
    [
        (Gowalla, "train.txt, test.txt", "LightGCN-PyTorch/master/data/gowalla/train.txt"),
        (MovieLens100K, "u.data", "movielens/ml-100k.zip"),
    ],
)
def test_failed_download_says_what_to_place_where(tmp_path, monkeypatch, cls, missing, source):
    monkeypatch.setattr(datasets_module, "download_url", offline_download)
    root = tmp_path / "typo"
    with pytest.raises(DatasetUnavailableError) as failure:
        cls(str(root))
    message = str(failure.value)
    assert f"{missing} not in {root / cls.name / 'raw'}" in message
    assert source in message and "Name or service not known" in message
    assert "--root" in message and f"{cls.name}/raw/" in message
    assert isinstance(failure.value, FileNotFoundError)
    # the folders made for the download are gone: nothing looks like a dataset on disk
    assert not root.exists()


def test_failed_download_keeps_folders_that_were_there(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets_module, "download_url", offline_download)
    place(tmp_path, "gowalla", {"train.txt": TRAIN})
    with pytest.raises(DatasetUnavailableError, match=r"test\.txt not in") as failure:
        Gowalla(str(tmp_path))
    assert "gowalla/train.txt" not in str(failure.value)  # only the missing file was looked for
    assert os.listdir(tmp_path / "gowalla" / "raw") == ["train.txt"]


def test_a_dataset_of_ones_own_without_url_says_where_to_place_its_files(tmp_path):
    """A subclass whose files are placed by hand failed with "'Mine' object has no attribute 'sources'", and
    left the raw folder it had made."""

    class Mine(datasets_module.RecommendationDataset):
        name = "mine"
        raw_file_names = ["pairs.txt"]

        def read(self, rng):
            return torch.tensor([[0, 1], [0, 1]]), torch.tensor([[0], [1]]), 2, 2

    with pytest.raises(
        DatasetUnavailableError, match=r"Mine: pairs\.txt not in .*mine/raw, and the class sets no url"
    ):
        Mine(str(tmp_path))
    assert not (tmp_path / "mine").exists()
    place(tmp_path, "mine", {"pairs.txt": b"placed by hand\n"})
    assert Mine(str(tmp_path))[0][EDGE].edge_index.size(1) == 2


def test_download_keeps_a_raw_file_placed_by_hand(tmp_path, monkeypatch):
    urls = []

    def fake_download(url: str, folder: str, log: bool = True) -> str:
        urls.append(url)
        path = os.path.join(folder, url.rpartition("/")[2])
        Path(path).write_bytes(b"0 0\n1 1\n" if path.endswith("train.txt") else TEST)
        return path

    place(tmp_path, "gowalla", {"train.txt": TRAIN})
    monkeypatch.setattr(datasets_module, "download_url", fake_download)
    Gowalla(str(tmp_path))
    assert [url.rpartition("/")[2] for url in urls] == ["test.txt"]
    assert (tmp_path / "gowalla" / "raw" / "train.txt").read_bytes() == TRAIN


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_unreadable_processed_file_is_processed_again(tmp_path, damage):
    place(tmp_path, "gowalla", {"train.txt": TRAIN, "test.txt": TEST})
    path = Path(Gowalla(str(tmp_path)).processed_paths[0])
    whole = path.read_bytes()
    path.write_bytes(
        {"garbage": b"not a torch file", "truncated": whole[: len(whole) // 2], "empty": b""}[damage]
    )
    with pytest.warns(UserWarning, match=r"data\.pt could not be read .*; re-processing"):
        data = Gowalla(str(tmp_path))[0]
    assert data[EDGE].edge_index.size(1) == 6
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the file was made again: read as it is from now on
        Gowalla(str(tmp_path))


def test_a_file_processed_again_records_its_pre_transform(tmp_path):
    place(tmp_path, "gowalla", {"train.txt": TRAIN, "test.txt": TEST})
    path = Path(Gowalla(str(tmp_path), pre_transform=Tag(1)).processed_paths[0])
    path.write_bytes(b"not a torch file")
    with pytest.warns(UserWarning, match="could not be read"):
        assert Gowalla(str(tmp_path), pre_transform=Tag(2))[0].tag.tolist() == [2]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned that the file was made with Tag(1)
        Gowalla(str(tmp_path), pre_transform=Tag(2))
    with pytest.warns(UserWarning, match="pre_transform"):  # loaded the Tag(2) file without a word
        Gowalla(str(tmp_path), pre_transform=Tag(1))


def test_root_may_be_a_path_starting_at_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    place(tmp_path / "data", "gowalla", {"train.txt": TRAIN, "test.txt": TEST})
    dataset = Gowalla(Path("~") / "data")  # looked in a folder "~" of the working directory
    assert dataset.root == str(tmp_path / "data")
    assert dataset[0][EDGE].edge_index.size(1) == 6
    assert not (tmp_path / "~").exists()


def test_registry_and_load_dataset(tmp_path):
    assert sorted(DATASETS) == sorted(
        [
            "lastfm",
            "gowalla",
            "yelp2018",
            "amazon-book",
            "ml-100k",
            "ml-1m",
            "ml-1m-lcf",
            "citeulike",
            "foursquare",
        ]
    )
    place(tmp_path, "ml-1m-lcf", {"train.txt": TRAIN, "test.txt": TEST})
    data = load_dataset("ml-1m-lcf", str(tmp_path), val_ratio=0.5)
    assert dataset_statistics(data)["val"] > 0
    with pytest.raises(ValueError, match=r"dataset name must be one of \['amazon-book', .*'yelp2018'\]"):
        load_dataset("netflix", str(tmp_path))


@pytest.mark.realdata
def test_real_lastfm(tmp_path):
    link_shared(tmp_path, "lastfm", "lastfm", ["data1.txt", "test1.txt"])
    stats = dataset_statistics(LastFM(str(tmp_path))[0])
    assert (stats["users"], stats["items"], stats["train"], stats["test"]) == (1892, 4489, 42135, 10533)


@pytest.mark.realdata
def test_real_ml_100k(tmp_path):
    link_shared(tmp_path, "ml-100k", "ml-100k", ["u.data"])
    stats = dataset_statistics(MovieLens100K(str(tmp_path), rating_threshold=1)[0])
    assert (stats["users"], stats["items"], stats["train"] + stats["test"]) == (943, 1682, 100_000)
    implicit = dataset_statistics(MovieLens100K(str(tmp_path))[0])
    assert implicit["train"] + implicit["test"] == 55_375  # ratings 4 and 5


@pytest.mark.realdata
def test_real_gowalla(tmp_path):
    link_shared(tmp_path, "gowalla", "gowalla", ["train.txt", "test.txt"])
    stats = dataset_statistics(Gowalla(str(tmp_path))[0])
    assert (stats["users"], stats["items"], stats["train"], stats["test"]) == (
        29_858,
        40_981,
        810_128,
        217_242,
    )


@pytest.mark.realdata
def test_real_ml_1m_lcf(tmp_path):
    link_shared(tmp_path, "ml-1m-ultragcn", "ml-1m-lcf", ["train.txt", "test.txt"])
    stats = dataset_statistics(MovieLens1MLCF(str(tmp_path))[0])
    assert (stats["users"], stats["items"], stats["train"], stats["test"]) == (6022, 3043, 796_244, 99_455)


def test_processed_file_written_whole_or_not_at_all(tmp_path, monkeypatch):
    """A save cut short (disk full, a killed run) leaves the processed file as it was, not half a new one."""
    from torch_geometric.io import fs

    place(tmp_path, "gowalla", {"train.txt": TRAIN, "test.txt": TEST})
    path = Path(Gowalla(str(tmp_path)).processed_paths[0])
    whole = path.read_bytes()
    torch_save = fs.torch_save

    def cut_short(data, target):
        torch_save(data, target)
        Path(target).write_bytes(Path(target).read_bytes()[:100])
        raise OSError("disk full")

    monkeypatch.setattr(fs, "torch_save", cut_short)
    with pytest.raises(OSError, match="disk full"):
        Gowalla(str(tmp_path), force_reload=True)
    assert path.read_bytes() == whole
    assert not list(path.parent.glob(".*.tmp-*"))


@pytest.mark.parametrize("record", ["pre_transform.pt", "pre_filter.pt"])
def test_a_record_of_the_pre_transform_cut_short_is_made_again(tmp_path, record):
    """PyG wrote the records in place: one cut short failed every later load inside torch.load."""
    place(tmp_path, "gowalla", {"train.txt": TRAIN, "test.txt": TEST})
    path = Path(Gowalla(str(tmp_path), pre_transform=Tag(1)).processed_dir) / record
    path.write_bytes(path.read_bytes()[:50])
    with pytest.warns(UserWarning, match=rf"{re.escape(record)} could not be read .*; re-processing"):
        assert Gowalla(str(tmp_path), pre_transform=Tag(1))[0].tag.tolist() == [1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # made again, with the data
        Gowalla(str(tmp_path), pre_transform=Tag(1))


def test_force_reload_reads_no_record_it_replaces(tmp_path):
    """force_reload=True makes the data and its records again: one cut short is not read, nor warned of."""
    place(tmp_path, "gowalla", {"train.txt": TRAIN, "test.txt": TEST})
    path = Path(Gowalla(str(tmp_path), pre_transform=Tag(1)).processed_dir) / "pre_transform.pt"
    path.write_bytes(path.read_bytes()[:50])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Gowalla(str(tmp_path), pre_transform=Tag(2), force_reload=True)[0].tag.tolist() == [2]


def test_records_of_the_pre_transform_written_whole_or_not_at_all(tmp_path, monkeypatch):
    from torch_geometric.io import fs

    place(tmp_path, "gowalla", {"train.txt": TRAIN, "test.txt": TEST})
    path = Path(Gowalla(str(tmp_path), pre_transform=Tag(1)).processed_dir) / "pre_transform.pt"
    torch_save = fs.torch_save

    def cut_short(data, target):
        torch_save(data, target)
        if "pre_transform" in str(target):
            Path(target).write_bytes(Path(target).read_bytes()[:50])
            raise OSError("disk full")

    monkeypatch.setattr(fs, "torch_save", cut_short)
    with pytest.raises(OSError, match="disk full"):
        Gowalla(str(tmp_path), pre_transform=Tag(2), force_reload=True)
    monkeypatch.undo()
    assert not path.exists()  # not cut short; nor Tag(1)'s, left beside the Tag(2) data.pt written before it
    assert not list(path.parent.glob(".*.tmp-*"))
    with pytest.warns(
        UserWarning, match=r"pre_transform\.pt and pre_filter\.pt missing beside .*re-processing"
    ):
        assert Gowalla(str(tmp_path), pre_transform=Tag(1))[0].tag.tolist() == [1]  # it loaded Tag(2)'s data


def test_a_run_stopped_between_the_data_and_its_records_is_processed_again(tmp_path, monkeypatch):
    """data.pt is written before the records of the pre_transform it was made with: a run stopped between
    them (Ctrl-C) left the new data under the old records, loaded under the old pre_transform without a
    word."""
    place(tmp_path, "gowalla", {"train.txt": TRAIN, "test.txt": TEST})
    Gowalla(str(tmp_path), pre_transform=Tag(1))
    write_then_rename = datasets_module.write_then_rename

    def interrupted(path, write):
        if str(path).endswith("pre_transform.pt"):
            raise KeyboardInterrupt
        return write_then_rename(path, write)

    monkeypatch.setattr(datasets_module, "write_then_rename", interrupted)
    with pytest.raises(KeyboardInterrupt):
        Gowalla(str(tmp_path), pre_transform=Tag(2), force_reload=True)
    monkeypatch.undo()
    with pytest.warns(UserWarning, match="missing beside"):
        assert Gowalla(str(tmp_path), pre_transform=Tag(1))[0].tag.tolist() == [1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # recorded with the data made again
        assert Gowalla(str(tmp_path), pre_transform=Tag(1))[0].tag.tolist() == [1]


def test_a_raw_file_replaced_after_processing_is_processed_again(tmp_path, caplog):
    """PyG keeps the processed file of the replaced raw files: a run trained on the old interactions."""
    place(tmp_path, "gowalla", {"train.txt": TRAIN, "test.txt": TEST})
    assert Gowalla(str(tmp_path))[0][EDGE].edge_index.size(1) == 6
    train = tmp_path / "gowalla" / "raw" / "train.txt"
    train.write_bytes(TRAIN.replace(b"2 3 1 0\n", b"2 3 1\n"))  # another user 2 no longer visited item 0
    with caplog.at_level("WARNING", logger="dslgraph.data.datasets"):
        assert Gowalla(str(tmp_path))[0][EDGE].edge_index.size(1) == 5
    assert "train.txt changed since" in caplog.text and "re-processing" in caplog.text
    caplog.clear()
    Gowalla(str(tmp_path), log=False)
    assert not caplog.records  # the new stamp recorded: read as it is
    stat = train.stat()  # the same size, written again: its time tells it apart
    os.utime(train, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    with caplog.at_level("WARNING", logger="dslgraph.data.datasets"):
        Gowalla(str(tmp_path), log=False)
    assert "train.txt changed since" in caplog.text


@pytest.mark.parametrize("record", [b'{"train.txt": [6', b"[]"], ids=["cut-short", "not-a-dict"])
def test_raw_files_whose_record_cannot_be_read_are_processed_again(tmp_path, caplog, record):
    """Whether they changed cannot be told: the data is made again (and recorded), not kept."""
    place(tmp_path, "gowalla", {"train.txt": TRAIN, "test.txt": TEST})
    dataset = Gowalla(str(tmp_path), log=False)
    stamps = Path(dataset.processed_dir) / "raw_files.json"
    stamps.write_bytes(record)
    (tmp_path / "gowalla" / "raw" / "train.txt").write_bytes(TRAIN.replace(b"2 3 1 0\n", b"2 3 1\n"))
    with caplog.at_level("WARNING", logger="dslgraph.data.datasets"):
        assert Gowalla(str(tmp_path), log=False)[0][EDGE].edge_index.size(1) == 5
    assert "re-processing" in caplog.text
    assert json.loads(stamps.read_text()).keys() == {"train.txt", "test.txt"}


def test_a_raw_file_replaced_with_its_time_kept_is_processed_again(tmp_path, caplog):
    """``cp -p``, ``rsync -t`` and unzip keep a file's modification time: its size tells the new file
    apart."""
    place(tmp_path, "gowalla", {"train.txt": TRAIN, "test.txt": TEST})
    assert Gowalla(str(tmp_path), log=False)[0][EDGE].edge_index.size(1) == 6
    train = tmp_path / "gowalla" / "raw" / "train.txt"
    stat = train.stat()
    train.write_bytes(TRAIN.replace(b"2 3 1 0\n", b"2 3 1\n"))
    os.utime(train, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    with caplog.at_level("WARNING", logger="dslgraph.data.datasets"):
        assert Gowalla(str(tmp_path), log=False)[0][EDGE].edge_index.size(1) == 5
    assert "train.txt changed since" in caplog.text


def test_a_raw_file_replaced_while_processing_is_processed_again(tmp_path, monkeypatch):
    """The stamp recorded is that of the files before they were read: one taken after the processing
    recorded the new file as processed, and its interactions were never read."""
    place(tmp_path, "gowalla", {"train.txt": TRAIN, "test.txt": TEST})
    train = tmp_path / "gowalla" / "raw" / "train.txt"
    read = Gowalla.read

    def read_then_replace(self, rng):
        split = read(self, rng)
        train.write_bytes(TRAIN.replace(b"2 3 1 0\n", b"2 3 1\n"))  # another copy lands meanwhile
        return split

    monkeypatch.setattr(Gowalla, "read", read_then_replace)
    assert Gowalla(str(tmp_path), log=False)[0][EDGE].edge_index.size(1) == 6
    monkeypatch.undo()
    assert Gowalla(str(tmp_path), log=False)[0][EDGE].edge_index.size(1) == 5


def test_a_folder_processed_without_a_record_of_its_raw_files_is_kept(tmp_path, caplog):
    """A folder processed before dslgraph recorded raw_files.json is read as it is, not made again."""
    place(tmp_path, "gowalla", {"train.txt": TRAIN, "test.txt": TEST})
    dataset = Gowalla(str(tmp_path), log=False)
    (Path(dataset.processed_dir) / "raw_files.json").unlink()
    with caplog.at_level("INFO", logger="dslgraph.data.datasets"):
        assert Gowalla(str(tmp_path))[0][EDGE].edge_index.size(1) == 6
    assert "processing" not in caplog.text


def make_unreadable(dataset) -> None:
    Path(dataset.processed_paths[0]).write_bytes(b"not a torch file")


def test_a_pre_transform_that_differs_is_named_only_where_the_data_kept_was_made_with_it(tmp_path):
    """A raw file replaced, or data.pt removed, processes the data again with this pre_transform: warning
    that it differs from the one of the replaced data was noise."""
    place(tmp_path, "gowalla", {"train.txt": TRAIN, "test.txt": TEST})
    dataset = Gowalla(str(tmp_path), pre_transform=Tag(1), log=False)
    train = tmp_path / "gowalla" / "raw" / "train.txt"
    stat = train.stat()
    os.utime(train, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Gowalla(str(tmp_path), pre_transform=Tag(2), log=False)[0].tag.tolist() == [2]
        os.remove(dataset.processed_paths[0])
        assert Gowalla(str(tmp_path), pre_transform=Tag(3), log=False)[0].tag.tolist() == [3]
    make_unreadable(dataset)
    with pytest.warns(UserWarning) as record:
        assert Gowalla(str(tmp_path), pre_transform=Tag(4), log=False)[0].tag.tolist() == [4]
    assert [re.sub(r".* (could not be read) .*", r"\1", str(warning.message)) for warning in record] == [
        "could not be read"
    ]
    with pytest.warns(UserWarning, match="The `pre_transform` argument differs"):  # kept: it is the reason
        assert Gowalla(str(tmp_path), pre_transform=Tag(1), log=False)[0].tag.tolist() == [4]


@pytest.mark.parametrize(
    "cls, files",
    [(Gowalla, {"train.txt": TRAIN, "test.txt": TEST}), (MovieLens100K, {"u.data": U_DATA})],
)
def test_dataset_warnings_name_the_line_that_made_the_dataset(tmp_path, cls, files):
    """stacklevel=5 named a line inside dslgraph for a HoldoutDataset subclass (two more __init__ frames)."""
    place(tmp_path, cls.name, files)
    make_unreadable(cls(str(tmp_path), pre_transform=Tag(1), log=False))
    with pytest.warns(UserWarning, match="could not be read") as record:
        cls(str(tmp_path), pre_transform=Tag(1), log=False)
    assert [warning.filename for warning in record] == [__file__]
    with pytest.warns(UserWarning, match="pre_transform") as record:
        cls(str(tmp_path), pre_transform=Tag(2), log=False)
    assert [warning.filename for warning in record] == [__file__]
    Path(
        cls(str(tmp_path), pre_transform=Tag(2), force_reload=True).processed_dir, "pre_filter.pt"
    ).write_bytes(b"cut")
    with pytest.warns(UserWarning, match=r"pre_filter\.pt could not be read") as record:
        cls(str(tmp_path), pre_transform=Tag(2), log=False)
    assert [warning.filename for warning in record] == [__file__]


def test_log_false_keeps_processing_quiet_as_in_pyg(tmp_path, caplog):
    place(tmp_path, "gowalla", {"train.txt": TRAIN, "test.txt": TEST})
    with caplog.at_level("INFO", logger="dslgraph.data.datasets"):
        Gowalla(str(tmp_path), log=False)
        assert not caplog.records
        Gowalla(str(tmp_path), force_reload=True)
    assert "Gowalla: processing the raw files of" in caplog.text
    assert "'users': 5" in caplog.text


def test_movielens_keeps_users_and_items_of_low_ratings_as_isolated_nodes(tmp_path):
    """Ids are MovieLens ids minus one, counted over every rating: a movie rated only below the threshold
    (here 12, rated 1 by user 7) stays a node, so that the ids of the others do not move."""
    place(tmp_path, "ml-100k", {"u.data": U_DATA + b"7\t12\t1\t880000999\n"})
    data = MovieLens100K(str(tmp_path))[0]
    assert (data["user"].num_nodes, data["item"].num_nodes) == (7, 12)
    interactions = torch.cat([data[EDGE].edge_index, data[EDGE].edge_label_index], dim=1)
    assert 6 not in interactions[0] and 11 not in interactions[1]


@pytest.mark.parametrize(
    ("cls", "option", "message"),
    [
        (Gowalla, {"val_ratio": -0.1}, r"val_ratio must be in \[0, 1\), got -0.1"),
        (MovieLens100K, {"test_ratio": 0.0}, r"test_ratio must be in \(0, 1\), got 0.0"),
        (MovieLens100K, {"test_ratio": 1.0}, r"test_ratio must be in \(0, 1\), got 1.0"),
        (
            MovieLens100K,
            {"rating_threshold": float("nan")},
            "rating_threshold must be a finite number, got nan",
        ),
        # as a JSON-less option arrives as text: a TypeError of "<=" named no option
        (Gowalla, {"val_ratio": "0.2"}, r"val_ratio must be in \[0, 1\), got '0.2'"),
        (MovieLens100K, {"test_ratio": "0.2"}, r"test_ratio must be in \(0, 1\), got '0.2'"),
        (MovieLens100K, {"rating_threshold": "4"}, "rating_threshold must be a finite number, got '4'"),
    ],
)
def test_bad_options_are_refused_before_anything_is_read(tmp_path, monkeypatch, cls, option, message):
    monkeypatch.setattr(datasets_module, "download_url", offline_download)
    with pytest.raises(ValueError, match=message):
        cls(str(tmp_path), **option)
    assert not (tmp_path / cls.name).exists()


def test_load_file_refuses_an_unknown_read_option_naming_the_known_ones(tmp_path):
    """A misspelt read option (``--data-option usercol=...``) is named with the options there are, before
    the file is read."""
    path = tmp_path / "mine.csv"
    path.write_text("u,i\n1,2\n1,3\n")
    with pytest.raises(
        ValueError, match=r"read options must be among \['sep', 'names', 'user_col'.*\], got \['usercol'\]"
    ):
        load_file(path, usercol="u", item_col="i")


def test_load_file_under_a_protocol_says_nothing_of_the_split_it_replaces(tmp_path):
    """The file's own split (test_ratio 0.2), which leave-one-out discards, warned that it was empty and
    told the user to raise test_ratio, which the protocol ignores; the full protocol still warns."""
    path = tmp_path / "two.csv"
    path.write_text("user,item,t\n1,1,1\n1,2,2\n2,1,3\n2,3,4\n3,2,5\n3,3,6\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data = load_file(path, protocol="leave-one-out", protocol_options={"num_negatives": 1}, time_col="t")
    assert data["user", "to", "item"].edge_label_index.size(1) == 3  # one test pair a user
    with pytest.warns(UserWarning, match="the test split is empty"):
        load_file(path, time_col="t")


def test_downloaded_files_are_moved_into_the_raw_folder_not_copied(tmp_path, monkeypatch):
    """A raw file that exists is never downloaded again, so it must appear whole: the downloaded (or
    extracted) file is renamed into the raw folder, which cannot be cut short, where a copy could."""
    inodes = {}

    def fake_download(url: str, folder: str, log: bool = True) -> str:
        path = os.path.join(folder, url.rpartition("/")[2])
        if url.endswith(".zip"):
            with zipfile.ZipFile(path, "w") as archive:
                archive.writestr("ml-100k/u.data", U_DATA)
        else:
            Path(path).write_bytes(TRAIN if path.endswith("train.txt") else TEST)
            inodes[os.path.basename(path)] = os.stat(path).st_ino
        return path

    def recording_extract(path: str, folder: str, log: bool = True) -> None:
        extract_zip(path, folder, log)
        inodes["u.data"] = os.stat(os.path.join(folder, "ml-100k", "u.data")).st_ino

    extract_zip = datasets_module.extract_zip
    monkeypatch.setattr(datasets_module, "download_url", fake_download)
    monkeypatch.setattr(datasets_module, "extract_zip", recording_extract)
    Gowalla(str(tmp_path))
    MovieLens100K(str(tmp_path))
    for name, folder in (("train.txt", "gowalla"), ("test.txt", "gowalla"), ("u.data", "ml-100k")):
        assert os.stat(tmp_path / folder / "raw" / name).st_ino == inodes[name]
