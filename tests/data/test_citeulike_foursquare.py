import io
import os
import re
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import torch

from dslgraph.data import (
    DATASETS,
    EDGE,
    CiteULike,
    DatasetFormatError,
    DatasetUnavailableError,
    Foursquare,
    dataset_statistics,
    leave_one_out,
    load_dataset,
)
from dslgraph.data import datasets as datasets_module


def place(root: Path, name: str, files: dict[str, bytes]) -> None:
    raw = root / name / "raw"
    raw.mkdir(parents=True)
    for file, content in files.items():
        (raw / file).write_bytes(content)


def pairs(index: torch.Tensor) -> set[tuple[int, int]]:
    return set(map(tuple, index.t().tolist()))


# Users (lines) 0, 2 and 4 have 5+ articles; users 1 and 3 have 4 and 0 and are removed.
USERS_DAT = b"6 3 10 11 12 13 14\n4 3 10 20 21\n5 30 3 11 12 40\n0\n10 " + b" ".join(
    str(i).encode() for i in range(50, 60)
)


def test_citeulike_filters_renumbers_and_splits(tmp_path):
    place(tmp_path, "citeulike", {"users.dat": USERS_DAT})
    dataset = CiteULike(str(tmp_path), val_ratio=0.25, seed=2)
    data = dataset[0]
    store = data[EDGE]
    raw_items = sorted({3, 10, 11, 12, 13, 14, 30, 40, *range(50, 60)})  # items of users 1 and 3 only go
    assert (data["user"].num_nodes, data["item"].num_nodes) == (3, len(raw_items))
    new = {raw: i for i, raw in enumerate(raw_items)}
    expected = {(0, new[i]) for i in (3, 10, 11, 12, 13, 14)}
    expected |= {(1, new[i]) for i in (30, 3, 11, 12, 40)} | {(2, new[i]) for i in range(50, 60)}
    splits = [pairs(store[key]) for key in ("edge_index", "val_edge_label_index", "edge_label_index")]
    assert set().union(*splits) == expected and sum(map(len, splits)) == len(expected)
    assert torch.bincount(store.edge_label_index[0]).tolist() == [1, 1, 2]  # round(0.2 * n)
    assert "time" not in store
    assert Path(dataset.processed_paths[0]).parent.name == "test0.2_val0.25_seed2"


@pytest.mark.parametrize(
    ("content", "line", "message"),
    [
        (b"2 1 2\n3 1 2\n", 2, "the line declares 3 items but lists 2"),
        (b"2 1 2\n2 1 x\n", 2, "'x'"),
        (b"2 1 2\n2 1 -4\n", 2, "negative id -4"),
        (b"2 1 2\n\n3 5 6 5\n", 3, r"duplicate interaction \(user 2, item 5\), first seen on line 3"),
    ],
)
def test_citeulike_malformed(tmp_path, content, line, message):
    place(tmp_path, "citeulike", {"users.dat": content})
    with pytest.raises(DatasetFormatError, match=rf"citeulike/raw/users\.dat, line {line}: .*{message}"):
        CiteULike(str(tmp_path))


@pytest.mark.parametrize(
    ("content", "message"), [(b"\n \n", "file is empty"), (b"0\n0\n", "no interaction listed")]
)
def test_citeulike_empty(tmp_path, content, message):
    place(tmp_path, "citeulike", {"users.dat": content})
    with pytest.raises(DatasetFormatError, match=rf"users\.dat: {message}"):
        CiteULike(str(tmp_path))


def test_citeulike_nobody_left(tmp_path):
    place(tmp_path, "citeulike", {"users.dat": b"2 1 2\n1 4\n"})
    with pytest.raises(DatasetFormatError, match="no interaction is left after the 5/0-core filter"):
        CiteULike(str(tmp_path))


def test_citeulike_download(tmp_path, monkeypatch):
    urls = []

    def fake_download(url: str, folder: str, log: bool = True) -> str:
        urls.append(url)
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, url.rpartition("/")[2])
        Path(path).write_bytes(USERS_DAT)
        return path

    monkeypatch.setattr(datasets_module, "download_url", fake_download)
    data = load_dataset("citeulike", str(tmp_path))
    assert urls == ["https://raw.githubusercontent.com/js05212/citeulike-t/master/users.dat"]
    assert dataset_statistics(data)["users"] == 3


START = datetime(2012, 4, 3, 18, 0, 9, tzinfo=timezone.utc)


def checkin(user: int, venue: str, minutes: int, category: str = "Caf\xe9") -> bytes:
    when = (START + timedelta(minutes=minutes)).strftime("%a %b %d %H:%M:%S +0000 %Y")
    fields = [str(user), venue, "4bf58dd8d48988d1e0931735", category, "40.7198", "-74.0025", "-240", when]
    return ("\t".join(fields) + "\r\n").encode("latin-1")


def venue(name: str) -> str:
    return f"4b{name:0>22}"


def checkins() -> tuple[bytes, dict[tuple[int, str], int]]:
    """15 core users at 20 of 25 core venues (each repeatedly at one), and users the 20/10-core drops.

    User 100 checks in 30 times at 19 venues: too few once repeats collapse. User 101 visits 14 core
    venues, venue ``x`` (with 9 core users) and 6 venues nobody else visits: those go first, then user
    101 (15 left), then ``x`` (9 users left).
    """
    rows, latest = [], {}
    minute = 0

    def add(user, name):
        nonlocal minute
        minute += 1
        rows.append(checkin(user, venue(name), minute))
        latest[(user, name)] = int((START + timedelta(minutes=minute)).timestamp())

    for user in range(15):
        for v in range(20):
            add(user, f"c{(user * 5 + v) % 25}")  # every venue gets 12 users
        add(user, f"c{user * 5}")  # a repeated check-in
        if user < 9:
            add(user, "x")
    for k in range(30):
        add(100, f"c{k % 19}")
    for v in range(14):
        add(101, f"c{v}")
    add(101, "x")
    for v in range(6):
        add(101, f"w{v}")
    return b"".join(rows), latest


def test_foursquare_filters_collapses_and_keeps_times(tmp_path):
    content, latest = checkins()
    place(tmp_path, "foursquare", {"dataset_TSMC2014_NYC.txt": content})
    dataset = Foursquare(str(tmp_path))
    data = dataset[0]
    store = data[EDGE]
    assert (data["user"].num_nodes, data["item"].num_nodes) == (15, 25)
    assert dataset_statistics(data)["train"] + dataset_statistics(data)["test"] == 15 * 20
    assert torch.bincount(store.edge_label_index[0]).tolist() == [4] * 15
    # Users and venues are renumbered in the order of their raw ids.
    names = sorted((f"c{v}" for v in range(25)), key=venue)
    for index_key, time_key in [("edge_index", "time"), ("edge_label_index", "edge_label_time")]:
        got = [latest[(u, names[i])] for u, i in store[index_key].t().tolist()]
        assert got == store[time_key].tolist()
    assert Path(dataset.processed_paths[0]).parent.name == "cityNYC_test0.2_val0.0_seed0"

    held = leave_one_out(data, num_negatives=3)[EDGE]
    for user, item in held.edge_label_index.t().tolist():
        own = [t for (u, name), t in latest.items() if u == user and name in names]
        assert latest[(user, names[item])] == max(own)


def test_foursquare_tokyo_and_bad_city(tmp_path):
    content, _ = checkins()
    place(tmp_path, "foursquare", {"dataset_TSMC2014_TKY.txt": content})
    assert dataset_statistics(Foursquare(str(tmp_path), city="TKY")[0])["users"] == 15
    with pytest.raises(ValueError, match=r"city must be one of \('NYC', 'TKY'\), got 'LA'"):
        Foursquare(str(tmp_path), city="LA")


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (b"1\tv\tc\tname\t1\t2\t-240\n", "expected 8 tab-separated fields, got 7"),
        (checkin(1, venue("a"), 0).replace(b"\t", b"\t\t", 1), "expected 8 tab-separated fields, got 9"),
        (
            checkin(1, venue("a"), 0).replace(b"1\t", b"u1\t", 1),
            "expected a non-negative integer user id, got 'u1'",
        ),
        (  # more digits than int64 holds: an OverflowError naming no file
            checkin(1, venue("a"), 0).replace(b"1\t", b"1" * 20 + b"\t", 1),
            f"expected a non-negative integer user id, got '{'1' * 20}'",
        ),
        (checkin(1, venue("a"), 0).replace(b"+0000", b"+0000x"), "'.*' is not a time like"),
        (checkin(1, "", 0), "expected a venue id, got ''"),
    ],
)
def test_foursquare_malformed(tmp_path, bad, message):
    good = checkin(1, venue("a"), 0)
    place(tmp_path, "foursquare", {"dataset_TSMC2014_NYC.txt": good + b"\n" + good + bad + good})
    with pytest.raises(DatasetFormatError, match=rf"dataset_TSMC2014_NYC\.txt, line 4: {message}"):
        Foursquare(str(tmp_path))


@pytest.mark.parametrize("content", [b"\r\n", b""], ids=["blank", "empty"])
def test_foursquare_empty_and_too_small(tmp_path, content):
    place(tmp_path, "foursquare", {"dataset_TSMC2014_NYC.txt": content})
    with pytest.raises(DatasetFormatError, match="file is empty"):  # an empty one: IndexError of numpy
        Foursquare(str(tmp_path))
    (tmp_path / "foursquare" / "raw" / "dataset_TSMC2014_NYC.txt").write_bytes(checkin(1, venue("a"), 0))
    with pytest.raises(DatasetFormatError, match="no interaction is left after the 20/10-core filter"):
        Foursquare(str(tmp_path))


def test_foursquare_download_extracts_zip(tmp_path, monkeypatch):
    content, _ = checkins()
    urls = []

    def fake_download(url: str, folder: str, log: bool = True) -> str:
        urls.append(url)
        os.makedirs(folder, exist_ok=True)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("dataset_tsmc2014/dataset_TSMC2014_NYC.txt", content)
            archive.writestr("dataset_tsmc2014/dataset_TSMC2014_TKY.txt", content)
            archive.writestr("dataset_tsmc2014/dataset_TSMC2014_readme.txt", b"readme")
        path = os.path.join(folder, "dataset_tsmc2014.zip")
        Path(path).write_bytes(buffer.getvalue())
        return path

    monkeypatch.setattr(datasets_module, "download_url", fake_download)
    (tmp_path / "foursquare" / "raw").mkdir(parents=True)
    (tmp_path / "foursquare" / "raw" / "dataset_TSMC2014_TKY.txt").write_bytes(b"placed by hand\n")
    data = load_dataset(
        "foursquare", str(tmp_path), protocol="leave-one-out", protocol_options={"num_negatives": 5}
    )
    # kept: the archive's copy replaced it without a word
    assert (tmp_path / "foursquare" / "raw" / "dataset_TSMC2014_TKY.txt").read_bytes() == b"placed by hand\n"
    assert urls == ["http://www-public.imtbs-tsp.eu/~zhang_da/pub/dataset_tsmc2014.zip"]
    assert sorted(os.listdir(tmp_path / "foursquare" / "raw")) == [
        "dataset_TSMC2014_NYC.txt",
        "dataset_TSMC2014_TKY.txt",
        "dataset_TSMC2014_readme.txt",
    ]
    assert data[EDGE].test_negatives.shape == (15, 5)


def test_foursquare_failed_download_names_the_archive_to_extract(tmp_path, monkeypatch):
    def offline(url: str, folder: str, log: bool = True) -> str:
        raise OSError("no network")

    monkeypatch.setattr(datasets_module, "download_url", offline)
    url = "http://www-public.imtbs-tsp.eu/~zhang_da/pub/dataset_tsmc2014.zip"
    message = (
        rf"dataset_TSMC2014_NYC.txt not in .*, and downloading {re.escape(url)} failed \(no network\)\. "
        r"Place the raw files \(the files of the zip archive, extracted\) in that folder"
    )
    with pytest.raises(DatasetUnavailableError, match=message):
        Foursquare(str(tmp_path))
    assert not (tmp_path / "foursquare").exists()  # the folders made for the download alone are gone


def test_registered():
    assert DATASETS["citeulike"] is CiteULike and DATASETS["foursquare"] is Foursquare


def test_foursquare_reads_a_byte_order_mark_and_blanks_ending_a_line(tmp_path):
    """As a Windows editor saves the file: the mark failed as user id 'ï»¿0', a blank after a time as no
    time."""
    content, _ = checkins()
    place(
        tmp_path,
        "foursquare",
        {"dataset_TSMC2014_NYC.txt": b"\xef\xbb\xbf" + content.replace(b"\r\n", b" \r\n")},
    )
    assert dataset_statistics(Foursquare(str(tmp_path))[0])["users"] == 15


def test_citeulike_reads_a_byte_order_mark(tmp_path):
    place(tmp_path, "citeulike", {"users.dat": b"\xef\xbb\xbf" + USERS_DAT})
    assert dataset_statistics(CiteULike(str(tmp_path))[0])["users"] == 3
