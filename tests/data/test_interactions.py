import datetime
import io
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
import torch_geometric.transforms as T

from dslgraph.data import EDGE, InteractionDataset, holdout_mask, leave_one_out_mask


def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "u": ["ann", "ann", "ann", "bob", "bob", "cy", "ann"],
            "i": ["x", "y", "z", "x", "y", "x", "x"],
            "t": [1, 2, 3, 4, 5, 6, 7],
            "r": [5, 4, 3, 5, 5, 1, 5],
        }
    )


def pairs(index: torch.Tensor) -> set[tuple[int, int]]:
    return set(map(tuple, index.t().tolist()))


def test_holdout_mask_keeps_one_per_user():
    user = torch.tensor([0] * 10 + [1] * 2 + [2] + [4] * 5)
    mask = holdout_mask(user, 0.2, seed=1)
    assert torch.bincount(user[mask], minlength=5).tolist() == [2, 0, 0, 0, 1]
    assert torch.equal(mask, holdout_mask(user, 0.2, seed=1))
    assert not torch.equal(mask, holdout_mask(user, 0.2, seed=2))
    assert torch.bincount(user[holdout_mask(user, 0.99)], minlength=5).tolist() == [9, 1, 0, 0, 4]


def test_holdout_mask_rounds_each_users_share():
    # min(round(ratio * n), n - 1): 0.6 of an interaction holds out one, 0.4 none
    user = torch.tensor([0] * 3 + [1] * 2 + [2] * 7)
    assert torch.bincount(user[holdout_mask(user, 0.2)], minlength=3).tolist() == [1, 0, 1]


@pytest.mark.parametrize("ratio", [1.0, -0.1, float("nan"), "0.2", True])
def test_holdout_mask_bad_ratio(ratio):
    # text failed inside the comparison with a TypeError naming no argument
    with pytest.raises(ValueError, match=r"ratio must be a number in \[0, 1\), got "):
        holdout_mask(torch.tensor([0, 0, 1]), ratio)


@pytest.mark.parametrize(
    ("user", "time", "seed", "message"),
    [
        ([0.0, 1.0, 1.0], None, 0, r"user must be a 1-D tensor of user ids >= 0, got a torch.float32 tensor"),
        ([0, -1, 1], None, 0, r"user must be a 1-D tensor of user ids >= 0, got id -1"),  # bincount's error
        ([0, 1, 1], [1, 2], 0, r"time must be a tensor of shape \[3\] \(one per interaction\), got \[2\]"),
        ([0, 1, 1], None, None, r"seed must be an integer >= 0, got None"),  # another split at every call
    ],
)
def test_holdout_masks_refuse_what_they_cannot_split_by_naming_it(user, time, seed, message):
    # a float user failed in torch.bincount ("bincount_cpu" not implemented for 'Float'), times of another
    # length in numpy.lexsort, naming neither
    time = None if time is None else torch.tensor(time)
    for split in (
        lambda: holdout_mask(torch.tensor(user), 0.5, seed, time),
        lambda: leave_one_out_mask(torch.tensor(user), seed, time),
    ):
        with pytest.raises(ValueError, match=message):
            split()


def test_holdout_mask_by_time_takes_latest():
    user = torch.tensor([0, 0, 0, 0, 1, 1])
    time = torch.tensor([4, 1, 3, 2, 9, 8])
    assert holdout_mask(user, 0.5, time=time).tolist() == [True, False, True, False, True, False]
    assert leave_one_out_mask(user, time=time).tolist() == [True, False, False, False, True, False]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_holdout_masks_of_interactions_on_cuda_are_the_cpus_on_cuda():
    # data[EDGE].edge_index[0] of data moved by .to("cuda") failed in .numpy()
    user, time = torch.tensor([0, 0, 0, 0, 1, 1, 3, 3]), torch.tensor([4, 1, 3, 2, 9, 8, 5, 5])
    for mask, expected in [
        (
            holdout_mask(user.cuda(), 0.5, seed=1, time=time.cuda()),
            holdout_mask(user, 0.5, seed=1, time=time),
        ),
        (holdout_mask(user.cuda(), 0.5, seed=1), holdout_mask(user, 0.5, seed=1)),
        (leave_one_out_mask(user.cuda(), seed=2), leave_one_out_mask(user, seed=2)),
    ]:
        assert mask.is_cuda and torch.equal(mask.cpu(), expected)


def test_leave_one_out_mask():
    user = torch.tensor([3, 3, 3, 0, 1, 1])
    mask = leave_one_out_mask(user, seed=0)
    assert torch.bincount(user[mask], minlength=4).tolist() == [0, 1, 0, 1]


def test_from_pandas_remaps_ids_and_collapses_duplicates():
    dataset = InteractionDataset.from_pandas(frame(), "u", "i", split="leave-one-out", time_col="t")
    data = dataset[0]
    assert dataset.user_ids.tolist() == ["ann", "bob", "cy"]
    assert dataset.item_ids.tolist() == ["x", "y", "z"]
    assert dataset.user_index(["bob", "ann"]).tolist() == [1, 0]
    assert dataset.item_index("z").tolist() == [2]
    # ann's latest interaction is x (t=7, the duplicate of t=1); bob's is y; cy has one interaction only.
    assert pairs(data[EDGE].edge_label_index) == {(0, 0), (1, 1)}
    assert pairs(data[EDGE].edge_index) == {(0, 1), (0, 2), (1, 0), (2, 0)}
    assert data["user"].num_nodes == 3 and data["item"].num_nodes == 3
    with pytest.raises(KeyError, match="unknown item ids"):
        dataset.item_index(["x", "w"])


def test_from_pandas_numbers_ids_that_do_not_compare_in_order_of_appearance():
    """Ids of several types that cannot be sorted (numbers and dates, as a spreadsheet's column holds them)
    failed inside pandas' groupby of the k-core filter ("'<' not supported between ...")."""
    date = datetime.date(2020, 1, 1)
    users = pd.Series([7, date, 7, date, 3], dtype=object)
    dataset = InteractionDataset.from_pandas(
        pd.DataFrame({"user": users, "item": list("xyyxx")}), test_ratio=0.5
    )
    assert dataset.user_ids.tolist() == [7, date, 3] and dataset.item_ids.tolist() == ["x", "y"]
    assert dataset.user_index([date, 3]).tolist() == [1, 2]
    store = dataset[0][EDGE]
    assert pairs(store.edge_index) | pairs(store.edge_label_index) == {(0, 0), (1, 1), (0, 1), (1, 0), (2, 0)}
    assert repr(dataset) == "InteractionDataset(users=3, items=2)"


def test_from_pandas_keeps_timestamps_for_a_later_protocol():
    from dslgraph.data import leave_one_out

    df = pd.DataFrame({"u": [0] * 4 + [1] * 4, "i": [0, 1, 2, 3, 0, 1, 2, 4], "t": [5, 1, 7, 2, 3, 9, 4, 6]})
    data = InteractionDataset.from_pandas(df, "u", "i", time_col="t", test_ratio=0.25, val_ratio=0.5)[0]
    store = data[EDGE]
    for index_key, time_key in (("edge_index", "time"), ("edge_label_index", "edge_label_time")):
        given = {(u, i): t for u, i, t in zip(df["u"], df["i"], df["t"])}
        assert [given[tuple(pair)] for pair in store[index_key].t().tolist()] == store[time_key].tolist()
    assert store.val_edge_label_time.numel() == store.val_edge_label_index.size(1)
    # leave-one-out over all splits holds out each user's latest interaction, as the time says
    latest = leave_one_out(data, num_negatives=1)[EDGE].edge_label_index
    assert pairs(latest) == {(0, 2), (1, 1)}


def test_from_pandas_rating_threshold_and_temporal_split():
    dataset = InteractionDataset.from_pandas(
        frame(), "u", "i", rating_col="r", time_col="t", rating_threshold=4, split="temporal", test_ratio=0.5
    )
    data = dataset[0]
    assert dataset.user_ids.tolist() == ["ann", "bob"]
    assert pairs(data[EDGE].edge_label_index) == {(0, 0), (1, 1)}
    assert pairs(data[EDGE].edge_index) == {(0, 1), (1, 0)}


def test_from_pandas_k_core_iterates():
    df = pd.DataFrame({"user": [1, 1, 2, 2, 3, 3, 4], "item": [10, 20, 10, 20, 10, 30, 30]})
    # Item 30 (2 users) survives the first pass but loses user 4, then user 3 and item 30 go.
    with pytest.warns(UserWarning, match="the test split is empty"):  # two interactions a user
        dataset = InteractionDataset.from_pandas(df, min_user_interactions=2, min_item_interactions=2)
    assert dataset.user_ids.tolist() == [1, 2]
    assert dataset.item_ids.tolist() == [10, 20]


def test_from_pandas_k_core_applies_each_minimum_to_its_own_side():
    df = pd.DataFrame({"user": [1, 1, 1, 2, 2, 2, 3], "item": [10, 20, 40, 10, 30, 40, 50]})
    dataset = InteractionDataset.from_pandas(df, min_user_interactions=2, min_item_interactions=1)
    assert dataset.user_ids.tolist() == [1, 2]  # user 3 has one interaction, and item 50 goes with it
    assert dataset.item_ids.tolist() == [10, 20, 30, 40]
    with pytest.warns(UserWarning, match="the test split is empty"):  # two interactions a user
        dataset = InteractionDataset.from_pandas(df, min_user_interactions=1, min_item_interactions=2)
    assert dataset.item_ids.tolist() == [10, 40]


def test_from_pandas_random_split_with_validation():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"user": rng.integers(0, 20, 2000), "item": rng.integers(0, 300, 2000)})
    dataset = InteractionDataset.from_pandas(df, test_ratio=0.2, val_ratio=0.1, seed=3)
    store = dataset[0][EDGE]
    splits = [pairs(store.edge_index), pairs(store.val_edge_label_index), pairs(store.edge_label_index)]
    assert sum(map(len, splits)) == len(df.drop_duplicates())
    assert not (splits[0] & splits[1] or splits[0] & splits[2] or splits[1] & splits[2])
    assert 0.17 < len(splits[2]) / len(df.drop_duplicates()) < 0.23
    again = InteractionDataset.from_pandas(df, test_ratio=0.2, val_ratio=0.1, seed=3)[0][EDGE]
    assert torch.equal(again.edge_label_index, store.edge_label_index)


def test_from_pandas_datetime_time_column():
    df = frame().assign(t=pd.to_datetime(frame()["t"], unit="D"))
    dataset = InteractionDataset.from_pandas(df, "u", "i", time_col="t", split="leave-one-out")
    assert pairs(dataset[0][EDGE].edge_label_index) == {(0, 0), (1, 1)}


def test_from_csv(tmp_path):
    path = tmp_path / "ratings.csv"
    frame().to_csv(path, sep=";", index=False)
    dataset = InteractionDataset.from_csv(path, sep=";", user_col="u", item_col="i", split="leave-one-out")
    assert dataset[0][EDGE].edge_label_index.size(1) == 2


def test_from_csv_keeps_ids_as_written(tmp_path):
    # read as numbers, "007" would become user 7 and be merged with "7"
    path = tmp_path / "ratings.csv"
    path.write_text("user,item\n007,1\n7,1\n0007,2\n12,2\n")
    with pytest.warns(UserWarning, match="the test split is empty") as record:  # one interaction a user
        dataset = InteractionDataset.from_csv(path)
    assert record[0].filename == __file__  # stacklevel=2 named from_csv's line, in dslgraph
    assert dataset.user_ids.tolist() == ["0007", "007", "12", "7"]
    assert dataset.item_ids.tolist() == [1, 2]  # plain numbers stay numbers
    assert dataset.user_index("007").tolist() == [1]
    path.write_text("user,item\nNA,None\nNA,null\nann,None\n")  # pandas reads these as missing values
    with pytest.warns(UserWarning, match="the test split is empty"):
        dataset = InteractionDataset.from_csv(path)
    assert dataset.user_ids.tolist() == ["NA", "ann"] and dataset.item_ids.tolist() == ["None", "null"]


# missing ratings are pandas' business, not the ids'
@pytest.mark.parametrize("ratings", [["5", "3", "4", "4"], ["NA", "3", "4", ""]])
def test_from_csv_reads_a_file_once_where_no_id_reads_as_missing(tmp_path, monkeypatch, ratings):
    # every file was read a second time, its id columns as text with pandas' missing values off, though only
    # a file with an id pandas reads as missing ("NA", "null", an empty field) reads otherwise that way
    path = tmp_path / "ratings.csv"
    rows = zip(["1", "1", "2", "2"], ["10", "11", "10", "12"], ratings, strict=True)
    path.write_text("user,item,rating\n" + "".join(",".join(row) + "\n" for row in rows))
    calls, read_csv = [], pd.read_csv

    def recording(*args, **kwargs):
        if kwargs.get("nrows") != 0:  # the header row alone, read to tell RecBole's typed one
            calls.append(args)
        return read_csv(*args, **kwargs)

    monkeypatch.setattr(pd, "read_csv", recording)
    dataset = InteractionDataset.from_csv(path, split="leave-one-out")
    assert len(calls) == 1 and dataset.user_ids.tolist() == [1, 2]
    path.write_text(path.read_text().replace("\n1,", "\nNA,"))  # user "NA": read again to tell it from ""
    calls.clear()
    dataset = InteractionDataset.from_csv(path, split="leave-one-out")
    assert len(calls) == 2 and dataset.user_ids.tolist() == ["2", "NA"]


def row_by_row(column: pd.Series) -> pd.Series:
    """What from_csv made of an id column before it checked each distinct text once: every row's text
    converted to a number and back."""
    numbers = pd.to_numeric(column, errors="coerce")
    if numbers.notna().all() and (numbers.astype(str) == column.str.strip()).all():
        return numbers
    return column


@pytest.mark.parametrize(
    ("users", "items"),
    [
        (["1", "2", "10", "-3", " 7", "7 ", "7"], ["5", "60", "700"]),  # " 7", "7 " and "7" are all user 7
        (["007", "7", "0007", "12"], ["-0", "0", "5"]),  # text: "007" is not 7's text, nor "-0" 0's
        (["1.5", "2.0", "3.25"], ["1.5", "2", "+7"]),
        (["18446744073709551615", "1"], ["18446744073709551615", "-1", "3", "4", "5"]),  # uint64; text
        (["ann", "7", "NA", "null"], ["1e3", "1000", "x"]),  # "NA"/"null": the second reading
    ],
)
def test_from_csv_reads_ids_as_a_row_by_row_check_does(tmp_path, users, items):
    # the ids' texts are checked once each, then spread to their rows: the ids, their order and the
    # splits must be those of the row-by-row check (val_ratio 0.4 holds out one of two pairs, 0.2 none)
    rng = np.random.default_rng(0)
    rows = zip(rng.choice(users, 80), rng.choice(items, 80), strict=True)
    path = tmp_path / "ratings.csv"
    path.write_text("user,item\n" + "".join(f"{user},{item}\n" for user, item in rows))
    dataset = InteractionDataset.from_csv(path, val_ratio=0.4, seed=5)
    text = pd.read_csv(path, dtype=str, keep_default_na=False)
    expected = InteractionDataset.from_pandas(text.apply(row_by_row), val_ratio=0.4, seed=5)
    for got, want in ((dataset.user_ids, expected.user_ids), (dataset.item_ids, expected.item_ids)):
        assert got.dtype == want.dtype and got.tolist() == want.tolist()
    store, want = dataset[0][EDGE], expected[0][EDGE]
    for key in ("edge_index", "edge_label_index", "val_edge_label_index"):
        assert torch.equal(store[key], want[key])


def test_from_csv_converts_each_distinct_id_once(tmp_path, monkeypatch):
    # converting every row's text to a number and back took 7 s an id column of a 3 M-line file; its
    # distinct ids are a few tens of thousands
    path = tmp_path / "ratings.csv"
    path.write_text("user,item\n1,10\n1,11\n2,10\n2,12\n2,11\n3,10\n")
    sizes, to_numeric = [], pd.to_numeric

    def recording(values, *args, **kwargs):
        sizes.append(len(values))
        return to_numeric(values, *args, **kwargs)

    monkeypatch.setattr(pd, "to_numeric", recording)
    dataset = InteractionDataset.from_csv(path, split="leave-one-out")
    assert sizes == [3, 3]
    assert dataset.user_ids.tolist() == [1, 2, 3] and dataset.item_ids.tolist() == [10, 11, 12]
    path.write_text("user,item\n1,10\n,11\n2,10\n")  # a missing id among numbers is still refused
    with pytest.raises(
        ValueError, match=r"user_col must be free of missing ids, got 'user' \(first missing at index 1\)"
    ):
        InteractionDataset.from_csv(path)


def test_from_csv_without_a_header_and_unreadable_files(tmp_path):
    path = tmp_path / "u.data"  # MovieLens-100K's layout: no header, tab-separated
    path.write_text("1\t10\t5\t100\n1\t11\t3\t101\n2\t10\t4\t102\n2\t12\t4\t103\n")
    names = ["user", "item", "rating", "time"]
    data = InteractionDataset.from_csv(path, sep="\t", names=names, time_col="time", split="leave-one-out")[0]
    assert pairs(data[EDGE].edge_label_index) == {(0, 1), (1, 2)}  # the latest of each user
    path.write_text("user,item\n1,2\n3,4,5,6\n")
    with pytest.raises(ValueError, match=r"u.data could not be read as ','-separated text: .*line 3"):
        InteractionDataset.from_csv(path)


@pytest.mark.parametrize(
    ("sep", "text"),
    [
        ("::", "user::item::rating\n1::10::5\n1::11::3\n2::10::4\n2::12::4\n"),
        (None, "user;item\n1;10\n1;11\n2;10\n2;12\n"),
    ],
)
def test_from_csv_takes_a_separator_of_pandas_python_parser_without_a_warning(tmp_path, sep, text):
    # MovieLens-1M's ratings.dat is "::"-separated, and sep=None sniffs the separator: pandas' C parser takes
    # neither, and pandas warned twice (a ParserWarning for each read) that it fell back to its Python parser
    path = tmp_path / "ratings.dat"
    path.write_text(text)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data = InteractionDataset.from_csv(path, sep=sep, split="leave-one-out")[0]
    assert data[EDGE].edge_index.size(1) + data[EDGE].edge_label_index.size(1) == 4


@pytest.mark.parametrize(("sep", "engine"), [(",", "c"), ("\t", "c"), (r"\s+", "c"), ("::", "python")])
def test_from_csv_leaves_to_pandas_c_parser_the_separators_it_takes(tmp_path, monkeypatch, sep, engine):
    # the C parser reads r"\s+" (any run of whitespace) too, ten times as fast as the Python one: forcing
    # the Python parser on it slowed a whitespace-separated file down without changing what was read
    pairs = [("1", "10"), ("1", "11"), ("2", "10"), ("2", "12")]
    path = tmp_path / "ratings.txt"
    written = sep.replace(r"\s+", " \t ")  # what r"\s+" stands for, not the pattern itself
    path.write_text("".join(written.join(row) + "\n" for row in [("user", "item"), *pairs]))
    engines, read_csv = [], pd.read_csv

    def recording(*args, **kwargs):
        engines.append(kwargs.get("engine"))
        return read_csv(*args, **kwargs)

    monkeypatch.setattr(pd, "read_csv", recording)
    data = InteractionDataset.from_csv(path, sep=sep, split="leave-one-out")[0]
    assert data[EDGE].edge_index.size(1) + data[EDGE].edge_label_index.size(1) == len(pairs)
    assert engines and set(engines) == {engine}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"user_col": "nope"}, r"user_col must be one of \['u', 'i', 't', 'r'\], got 'nope'"),
        ({"time_col": "when"}, "time_col must be one of"),
        ({"split": "by-day"}, r"split must be one of \('random', 'leave-one-out', 'temporal'\)"),
        ({"split": "temporal"}, "time_col must be set for split='temporal'"),
        ({"test_ratio": 0.0}, r"test_ratio must be in \(0, 1\)"),
        ({"val_ratio": 1.0}, r"val_ratio must be in \[0, 1\)"),
        ({"seed": None}, "seed must be an integer >= 0, got None"),
        ({"seed": 0.5}, "seed must be an integer >= 0, got 0.5"),
        ({"seed": -1}, "seed must be an integer >= 0, got -1"),
        ({"min_user_interactions": -1}, "min_user_interactions must be an integer >= 0"),
        ({"min_item_interactions": True}, "min_item_interactions must be an integer >= 0, got True"),  # was 1
        ({"rating_threshold": 4}, "rating_col must be a column name when rating_threshold is given"),
        ({"rating_col": "r", "rating_threshold": 9}, "no interaction is left"),
        ({"time_col": "i", "split": "temporal"}, "user_col/item_col/rating_col/time_col must be distinct"),
        # as --data-option gives them: null, and a JSON-less .2 or "4" read as text
        ({"user_col": None}, r"user_col must be one of \['u', 'i', 't', 'r'\], got None"),
        ({"test_ratio": ".2"}, r"test_ratio must be in \(0, 1\), got '.2'"),
        ({"rating_col": "r", "rating_threshold": "4"}, "rating_threshold must be a number, got '4'"),
    ],
)
def test_from_pandas_bad_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        InteractionDataset.from_pandas(frame(), **{"user_col": "u", "item_col": "i", **kwargs})


@pytest.mark.parametrize("sep", [1, ""])
def test_from_csv_bad_separator(sep, tmp_path):
    (tmp_path / "u.csv").write_text("user,item\n1,2\n")
    with pytest.raises(ValueError, match=f"sep must be a non-empty string, got {sep!r}"):
        InteractionDataset.from_csv(tmp_path / "u.csv", sep=sep)


def test_from_pandas_non_numeric_time():
    with pytest.raises(ValueError, match="time_col must be a numeric or datetime column, got 'day'"):
        InteractionDataset.from_pandas(frame().assign(day="monday"), "u", "i", time_col="day")
    # True / False were times 1 / 0, and ratings that passed a threshold of 1
    with pytest.raises(ValueError, match="time_col must be a numeric or datetime column, got 'day'"):
        InteractionDataset.from_pandas(frame().assign(day=True), "u", "i", time_col="day")
    with pytest.raises(ValueError, match="rating_col must be numeric, got 'liked'"):
        InteractionDataset.from_pandas(frame().assign(liked=True), "u", "i", "liked", rating_threshold=1)


@pytest.mark.parametrize("missing", [float("nan"), pd.NaT])
def test_from_pandas_missing_times(missing):
    # a missing time must not pass for the latest (it would become the held-out interaction)
    times = frame()["t"].astype(float) if missing is not pd.NaT else pd.to_datetime(frame()["t"], unit="D")
    times.iloc[0] = missing
    with pytest.raises(ValueError, match="time_col must be free of missing times, got 't'"):
        InteractionDataset.from_pandas(frame().assign(t=times), "u", "i", time_col="t", split="leave-one-out")


def test_from_pandas_empty_and_missing_ids():
    with pytest.raises(ValueError, match="df must be a non-empty DataFrame"):
        InteractionDataset.from_pandas(frame().iloc[:0], "u", "i")
    with pytest.raises(ValueError, match="user_col must be free of missing ids"):
        InteractionDataset.from_pandas(frame().assign(u=[None, "a", "b", "c", "d", "e", "f"]), "u", "i")


def test_missing_id_names_its_row(tmp_path):
    # in a file of a million rows, the column alone does not say where to look
    path = tmp_path / "ratings.csv"
    path.write_text("user,item\na,x\nb,y\nc,\n")
    with pytest.raises(
        ValueError,
        match=r"ratings.csv: item_col must be free of missing ids, got 'item' \(first missing at index 2\)",
    ):
        InteractionDataset.from_csv(path)


def test_from_pandas_missing_rating_is_an_error():
    # NaN >= threshold is False: the row would be dropped without a word
    ratings = frame()["r"].astype(float)
    ratings.iloc[1] = float("nan")
    with pytest.raises(
        ValueError, match=r"rating_col must be free of missing ratings, got 'r' \(first missing at index 1"
    ):
        InteractionDataset.from_pandas(
            frame().assign(r=ratings), "u", "i", rating_col="r", rating_threshold=4
        )


@pytest.mark.parametrize(
    ("split", "message"),
    [("random", r"round\(0.2 \* n\), n - 1\).*most active has 2"), ("leave-one-out", "none has two")],
)
def test_from_pandas_empty_test_split_warns(split, message):
    # evaluated, an empty test split reads as every metric 0
    df = pd.DataFrame({"user": [0, 0, 1, 1, 2], "item": [0, 1, 1, 2, 0]})
    if split == "leave-one-out":
        df = df.drop_duplicates("user")
    with pytest.warns(UserWarning, match=f"the test split is empty: .*{message}"):
        data = InteractionDataset.from_pandas(df, split=split)[0]
    assert data[EDGE].edge_label_index.size(1) == 0


def test_from_pandas_validation_ratio_that_holds_out_nothing_warns():
    # asked for, an empty validation split would pick the first epoch as the best, without a word
    df = pd.DataFrame({"user": [0] * 6 + [1] * 6, "item": list(range(6)) * 2})
    with pytest.warns(UserWarning, match=r"validation split is empty: .*0.1 \* n.*most active has 5"):
        InteractionDataset.from_pandas(df, test_ratio=0.2, val_ratio=0.1)
    data = InteractionDataset.from_pandas(df, test_ratio=0.2, val_ratio=0.2)[0]
    assert data[EDGE].val_edge_label_index.size(1) == 2


def test_from_csv_reads_iso_times_and_names_the_file_of_a_bad_one(tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_text(
        "user,item,day\na,x,2020-01-03\na,y,2020-01-01T12:00:00Z\nb,x,2020-01-02\nb,y,2020-01-05\n"
    )
    dataset = InteractionDataset.from_csv(path, time_col="day", split="leave-one-out")
    assert pairs(dataset[0][EDGE].edge_label_index) == {(0, 0), (1, 1)}  # the latest of each user
    path.write_text("user,item,day\na,x,2020-01-03\na,y,yesterday\n")
    with pytest.raises(
        ValueError,
        match=r"ratings.csv: time_col 'day' must hold numbers or ISO 8601 times, got 'yesterday' at index 1",
    ):
        InteractionDataset.from_csv(path, time_col="day")


def test_from_pandas_collapses_repeats_to_the_latest_time_not_the_last_row():
    """A repeated pair keeps its latest time, wherever its rows stand in the table: the rows of a file
    need not be in time order."""
    df = pd.DataFrame({"user": [0, 0, 0, 0], "item": [5, 6, 5, 7], "t": [9, 2, 1, 3]})
    data = InteractionDataset.from_pandas(df, time_col="t", split="leave-one-out")[0]
    store = data[EDGE]
    assert pairs(store.edge_label_index) == {(0, 0)}  # item 5, at time 9
    assert store.edge_label_time.tolist() == [9]
    assert sorted(store.time.tolist()) == [2, 3]


def test_from_pandas_random_split_does_not_pick_by_time():
    """split="random" with a time_col keeps the times but draws the held-out interactions at random: not
    every user's latest ones, as "temporal" takes them."""
    df = pd.DataFrame({"user": np.repeat(np.arange(10), 10), "item": np.tile(np.arange(10), 10)})
    df["t"] = np.random.default_rng(1).permutation(len(df))
    kwargs = {"time_col": "t", "test_ratio": 0.2, "seed": 4}
    drawn = InteractionDataset.from_pandas(df, **kwargs)[0][EDGE]
    latest = InteractionDataset.from_pandas(df, split="temporal", **kwargs)[0][EDGE]
    assert torch.bincount(drawn.edge_label_index[0]).tolist() == [2] * 10
    assert pairs(drawn.edge_label_index) != pairs(latest.edge_label_index)


def test_from_pandas_temporal_validation_holds_out_the_latest_training_interactions():
    """Under split="temporal" the validation split is chosen by time too: the latest of what the test
    split left."""
    df = pd.DataFrame({"user": [0] * 10 + [1] * 10, "item": list(range(10)) * 2, "t": list(range(20))})
    df["t"] = np.random.default_rng(2).permutation(df["t"].to_numpy())
    store = InteractionDataset.from_pandas(
        df, time_col="t", split="temporal", test_ratio=0.2, val_ratio=0.25, seed=0
    )[0][EDGE]
    for user in (0, 1):
        times = sorted(df.loc[df["user"] == user, "t"])
        test = store.edge_label_time[store.edge_label_index[0] == user]
        val = store.val_edge_label_time[store.val_edge_label_index[0] == user]
        assert sorted(test.tolist()) == times[-2:]
        assert sorted(val.tolist()) == times[-4:-2]  # round(0.25 * 8) of the 8 left


@pytest.mark.parametrize("labels", [[10, 20, 30, 40, 50, 60, 70], [10, 20, 30, 45, 50, 60, 70]])
def test_missing_id_names_its_row_label_not_its_position(labels):
    # an index pandas does not keep as a range wrote its label as np.int64(30)
    df = frame().set_index(pd.Index(labels))
    df.loc[30, "i"] = None
    with pytest.raises(
        ValueError, match=r"item_col must be free of missing ids, got 'i' \(first missing at index 30\)"
    ):
        InteractionDataset.from_pandas(df, "u", "i")


def test_from_csv_keeps_an_item_id_pandas_reads_as_missing(tmp_path):
    """ "NA" is an item's id where only the item column holds one: the user column has nothing pandas
    reads as missing."""
    path = tmp_path / "ratings.csv"
    path.write_text("user,item\n1,NA\n1,x\n2,NA\n2,y\n")
    dataset = InteractionDataset.from_csv(path, split="leave-one-out")
    assert dataset.user_ids.tolist() == [1, 2] and dataset.item_ids.tolist() == ["NA", "x", "y"]


def test_from_pandas_seed_chooses_the_split():
    df = pd.DataFrame({"user": np.repeat(np.arange(20), 10), "item": np.tile(np.arange(10), 20)})
    splits = [InteractionDataset.from_pandas(df, seed=seed)[0][EDGE].edge_label_index for seed in (0, 1, 0)]
    assert not torch.equal(splits[0], splits[1]) and torch.equal(splits[0], splits[2])  # and only the seed


def test_from_csv_reads_rows_ending_in_a_separator_under_their_own_columns(tmp_path):
    path = tmp_path / "export.csv"  # a spreadsheet's export: a separator ends every row, not the header
    path.write_text("user,item,rating\n1,10,5,\n1,11,3,\n2,10,4,\n2,12,4,\n")
    dataset = InteractionDataset.from_csv(path, split="leave-one-out")
    # pandas made the users an index and read the items as users, the ratings as items
    assert dataset.user_ids.tolist() == [1, 2] and dataset.item_ids.tolist() == [10, 11, 12]
    path.write_text("1\t10\t5\n1\t11\t3\n2\t10\t4\n2\t12\t4\n")  # fewer names than fields: the first ones
    with pytest.warns(pd.errors.ParserWarning, match="Length of header or names does not match"):
        dataset = InteractionDataset.from_csv(path, sep="\t", names=["user", "item"], split="leave-one-out")
    assert dataset.user_ids.tolist() == [1, 2] and dataset.item_ids.tolist() == [10, 11, 12]


@pytest.mark.parametrize(
    ("text", "names", "row"),
    [
        ("user,item\na,x\na,y\nuser,item\nb,x\nb,y\n", None, 2),  # two files joined with their headers
        ("user,item\na,x\na,y\nb,x\n", ["user", "item"], 0),  # names given for a file that has a header
    ],
    ids=["joined", "names"],
)
def test_from_csv_refuses_a_row_that_repeats_the_header(tmp_path, text, names, row):
    path = tmp_path / "joined.csv"
    path.write_text(text)  # was read as one more user 'user' with one more item 'item'
    with pytest.raises(ValueError, match=rf"joined.csv: the row at index {row} repeats the header"):
        InteractionDataset.from_csv(path, names=names)


def test_from_csv_refuses_a_header_row_read_as_data_under_names(tmp_path):
    """names given for MovieLens' ratings.csv: its header (userId, movieId) was one more user and item, and
    made every id text, without a word."""
    path = tmp_path / "ratings.csv"
    path.write_text("userId,movieId\n1,10\n1,11\n2,10\n2,12\n")
    with pytest.raises(
        ValueError, match=r"ratings.csv: its first row \(user 'userId', item 'movieId'\) reads as a"
    ):
        InteractionDataset.from_csv(path, names=["user", "item"])
    path.write_text("1,10\n1,11\n2,10\n2,12\n")  # no header row, no names: named the ids as the columns
    with pytest.raises(
        ValueError, match=r"its first line \['1', '10'\] holds numbers, not the columns' names"
    ):
        InteractionDataset.from_csv(path)
    path.write_text("u,i\na,x\na,y\nb,x\nb,y\n")  # text ids throughout: a row of text is no header
    dataset = InteractionDataset.from_csv(path, names=["user", "item"], split="leave-one-out")
    assert dataset.user_ids.tolist() == ["a", "b", "u"]


def test_from_csv_names_the_separator_of_a_header_it_does_not_split(tmp_path):
    path = tmp_path / "ratings.tsv"
    path.write_text("user\titem\na\tx\nb\ty\n")
    with pytest.raises(ValueError, match=r"ratings.tsv: its first line 'user\\titem' is one field .*sep=','"):
        InteractionDataset.from_csv(path)  # was: user_col must be one of ['user\titem']
    with pytest.raises(ValueError, match="names must be a list of column names, got 'user,item'"):
        InteractionDataset.from_csv(path, names="user,item")  # was pandas': Duplicate names are not allowed


def test_names_of_two_columns_are_refused_naming_the_option(tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_text("1,10\n1,11\n2,10\n")
    with pytest.raises(ValueError, match=r"names must be distinct names, got \['user', 'user'\]"):
        InteractionDataset.from_csv(path, names=["user", "user"])  # was: Duplicate names are not allowed.
    frame = pd.DataFrame([[1, 10, 5], [1, 11, 4]], columns=["user", "item", "user"])  # joined side by side
    with pytest.raises(ValueError, match=r"user_col must be the name of one column of df, got 'user'"):
        InteractionDataset.from_pandas(frame)  # was: Grouper for 'user' not 1-dimensional


def test_from_csv_reads_a_recbole_atomic_file_by_its_columns_names_without_their_types(tmp_path):
    path = tmp_path / "ml-100k.inter"
    path.write_text(
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
        "007\t10\t5\t3\n007\t11\t2\t1\n007\tNA\t4\t2\n7\t10\t5\t2\n7\t11\t4\t1\n"
    )
    options = {"sep": "\t", "user_col": "user_id", "item_col": "item_id", "time_col": "timestamp"}
    dataset = InteractionDataset.from_csv(
        path, rating_col="rating", rating_threshold=4, split="leave-one-out", **options
    )
    data = dataset[0]  # was: user_col must be one of ['user_id:token', 'item_id:token', ...], got 'user_id'
    assert dataset.user_ids.tolist() == ["007", "7"] and dataset.item_ids.tolist() == ["10", "11", "NA"]
    edges = torch.cat([data[EDGE].edge_index, data[EDGE].edge_label_index], 1)
    assert sorted(map(tuple, edges.T.tolist())) == [(0, 0), (0, 2), (1, 0), (1, 1)]  # 007's 11 rated 2
    assert sorted(data[EDGE].edge_label_index.T.tolist()) == [[0, 0], [1, 0]]  # each user's latest one
    with pytest.raises(ValueError, match=r"user_col must be one of \['user_id', 'item_id', 'rating', 'time"):
        InteractionDataset.from_csv(path, sep="\t")
    first_line = r"'user_id:token\\titem_id:token\\trating:float\\ttimestamp:float' is one field"
    with pytest.raises(ValueError, match=rf"ml-100k.inter: its first line {first_line}"):
        InteractionDataset.from_csv(path)  # its separator, not its types, named; the line as written


def test_from_csv_refuses_a_separator_that_splits_between_every_character():
    # pandas reads "||" as a regular expression that matches empty text: "user_col must be one of
    # ['Unnamed: 0', 'u', 's', 'e', 'r', '|', ...]"
    rows = "user||item\n1||2\n1||3\n2||2\n2||4\n"
    with pytest.raises(ValueError, match=r"sep must be a regular expression that matches text .*got '\|\|'"):
        InteractionDataset.from_csv(io.StringIO(rows), sep="||")
    with pytest.raises(ValueError, match=r"sep must be a regular expression that matches text .*got '\[\['"):
        InteractionDataset.from_csv(io.StringIO(rows), sep="[[")  # no regular expression: re.error in pandas
    dataset = InteractionDataset.from_csv(io.StringIO(rows), sep=r"\|\|", test_ratio=0.5)
    assert dataset.user_ids.tolist() == [1, 2] and dataset.item_ids.tolist() == [2, 3, 4]


def test_from_csv_reads_a_recbole_header_whose_lines_end_in_the_separator():
    # failed as "user_col must be one of ['user_id:token', 'item_id:token', 'Unnamed: 2']", where the same
    # trailing separator in a plain header is read
    rows = io.StringIO("user_id:token\titem_id:token\t\n1\t2\t\n1\t3\t\n2\t2\t\n2\t4\t\n")
    dataset = InteractionDataset.from_csv(
        rows, sep="\t", user_col="user_id", item_col="item_id", test_ratio=0.5
    )
    assert dataset.user_ids.tolist() == [1, 2] and dataset.item_ids.tolist() == [2, 3, 4]
    assert dataset[0][EDGE].edge_index.size(1) + dataset[0][EDGE].edge_label_index.size(1) == 4


@pytest.mark.parametrize("buffer", [io.StringIO, lambda text: io.BytesIO(text.encode())])
def test_from_csv_reads_a_buffer_as_it_reads_a_file(buffer):
    """A buffer (pandas reads one as a file) was read from past its header when the header was read ahead
    to look for RecBole's types (its first data row became the header), and read a second time from its end
    where pandas took an id for missing ("NA"): every read now starts at the buffer's start."""
    rows = "user_id:token,item_id:token\n1,NA\n1,3\n2,NA\n2,3\n3,1\n3,3\n"
    options = {"user_col": "user_id", "item_col": "item_id", "test_ratio": 0.5}
    dataset = InteractionDataset.from_csv(buffer(rows), **options)
    assert dataset.user_ids.tolist() == [1, 2, 3] and dataset.item_ids.tolist() == ["1", "3", "NA"]


@pytest.mark.parametrize(
    "header",
    [
        "user:token,item:text",  # a type RecBole has not
        "user:token,item",  # one column untyped
        "user:token,user:float",  # two columns of one name
        ":token,item:token",  # a type without a name
    ],
)
def test_from_csv_keeps_a_header_that_is_no_recbole_one_as_written(tmp_path, header):
    path = tmp_path / "mine.csv"
    path.write_text(f"{header}\na,x\nb,y\n")
    user, item = header.split(",")
    dataset = InteractionDataset.from_csv(path, user_col=user, item_col=item, split="leave-one-out")
    assert dataset.user_ids.tolist() == ["a", "b"]


def test_from_csv_takes_names_given_in_recbole_s_typed_spelling_as_given():
    # a file without a header row, named as RecBole names its columns: no row is taken for a header
    rows = io.StringIO("1,10\n1,11\n2,10\n2,11\n")
    names = ["user_id:token", "item_id:token"]
    columns = {"user_col": names[0], "item_col": names[1], "split": "leave-one-out"}
    dataset = InteractionDataset.from_csv(rows, names=names, **columns)
    store = dataset[0][EDGE]
    assert dataset.user_ids.tolist() == [1, 2]
    assert store.edge_index.size(1) + store.edge_label_index.size(1) == 4


def test_from_csv_names_the_time_that_is_no_number_in_a_column_of_numbers(tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_text("user,item,time\na,x,1600000000\na,y,yesterday\nb,x,1600000002\n")
    with pytest.raises(ValueError, match="got 'yesterday' at index 1"):  # was: got '1600000000' at index 0
        InteractionDataset.from_csv(path, time_col="time")


def test_a_transform_that_renumbers_users_or_items_is_named():
    # items z and w are only ever last (test) items: RemoveIsolatedNodes renumbered the training edges alone
    interactions = pd.DataFrame(
        {"u": ["a", "a", "a", "b", "b"], "i": ["x", "y", "z", "x", "w"], "t": range(5)}
    )
    options = dict(split="leave-one-out", time_col="t")
    dataset = InteractionDataset.from_pandas(
        interactions, "u", "i", **options, transform=T.RemoveIsolatedNodes()
    )
    with pytest.raises(ValueError, match=r"transform RemoveIsolatedNodes\(\) changed .* \(items 4 -> 2\)"):
        dataset[0]
    dataset = InteractionDataset.from_pandas(interactions, "u", "i", **options, transform=T.ToUndirected())
    assert torch.equal(dataset[0][EDGE].edge_index, dataset._data[EDGE].edge_index)
