import copy
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch_geometric.transforms as T

from dslgraph.data import (
    EDGE,
    PROTOCOLS,
    MovieLens1MLCF,
    MovieLens100K,
    apply_protocol,
    data_fingerprint,
    held_out_users,
    leave_one_out,
    load_dataset,
    load_file,
    make_interaction_data,
    merge_interactions,
    sample_negatives,
    training_users,
)
from dslgraph.data import datasets as datasets_module

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "datasets"
NUM_USERS, NUM_ITEMS = 30, 40


def pairs(index: torch.Tensor) -> set[tuple[int, int]]:
    return set(map(tuple, index.t().tolist()))


def timed_data(with_time: bool = True):
    """Random interactions split into train/val/test; user 29 has a single interaction, each time unique."""
    gen = torch.Generator().manual_seed(0)
    keys = torch.randperm((NUM_USERS - 1) * NUM_ITEMS, generator=gen)[:300]
    keys = torch.cat([keys, torch.arange(NUM_USERS - 1) * NUM_ITEMS]).unique()  # every user has two or more
    index = torch.stack([keys // NUM_ITEMS, keys % NUM_ITEMS])
    index = torch.cat([index, torch.tensor([[NUM_USERS - 1], [3]])], dim=1)
    time = torch.randperm(index.size(1), generator=torch.Generator().manual_seed(2)) * 10
    part = torch.arange(index.size(1)) % 5  # 0-2 train, 3 val, 4 test
    data = make_interaction_data(
        NUM_USERS, NUM_ITEMS, index[:, part < 3], index[:, part == 4], index[:, part == 3]
    )
    if with_time:
        store = data[EDGE]
        store.time, store.edge_label_time, store.val_edge_label_time = (
            time[part < 3],
            time[part == 4],
            time[part == 3],
        )
    return data, index, time


def check_disjoint_cover(store, index):
    splits = [pairs(store.edge_index), pairs(store.edge_label_index)]
    if "val_edge_label_index" in store:
        splits.append(pairs(store.val_edge_label_index))
    assert set().union(*splits) == pairs(index)
    assert sum(map(len, splits)) == index.size(1)


def test_merge_interactions_dedupes_and_keeps_latest_time():
    train = torch.tensor([[1, 0, 1], [2, 3, 0]])
    data = make_interaction_data(2, 4, train, torch.tensor([[0], [1]]))
    # a HeteroData of one's own may repeat a pair across splits (make_interaction_data refuses it)
    data[EDGE].edge_label_index = torch.tensor([[1, 0], [2, 1]])  # (1, 2) also in training
    data[EDGE].time = torch.tensor([5, 1, 2])
    data[EDGE].edge_label_time = torch.tensor([9, 3])
    index, time = merge_interactions(data)
    assert index.tolist() == [[0, 0, 1, 1], [1, 3, 0, 2]]
    assert time.tolist() == [3, 1, 2, 9]
    del data[EDGE].edge_label_time  # one split without times: no times at all
    index, time = merge_interactions(data)
    assert index.size(1) == 4 and time is None
    data[EDGE].edge_label_time = torch.tensor([9, 3, 4])  # a HeteroData of one's own: a time too many
    with pytest.raises(
        ValueError,
        match=r"edge_label_time must have shape \[2\], one time per pair of edge_label_index, got \(3,\)$",
    ):
        merge_interactions(data)


@pytest.mark.parametrize(
    ("key", "index", "message"),
    [
        (
            "edge_index",
            [[0, 1], [4, 1]],
            r"edge_index must hold users in \[0, num_users=2\) and items in \[0, num_items=4\)",
        ),
        ("edge_label_index", [[2], [1]], r"edge_label_index must hold users in \[0, num_users=2\)"),
        (
            "edge_index",
            [[0.0, 1.0], [3.0, 1.0]],
            r"edge_index must be a \[2, E\] tensor of integer .* torch\.float32",
        ),
    ],
)
def test_merge_interactions_refuses_ids_out_of_range(key, index, message):
    # one's own HeteroData: (user 0, item 4) of 4 items had the key of (user 1, item 0) and was merged as it
    data = make_interaction_data(2, 4, torch.tensor([[1, 0, 1], [2, 3, 0]]), torch.tensor([[0], [1]]))
    data[EDGE][key] = torch.tensor(index)
    with pytest.raises(ValueError, match=message):
        merge_interactions(data)
    with pytest.raises(ValueError, match=message):
        held_out_users(data, num_test_users=1)


def test_leave_one_out_random():
    data, index, _ = timed_data(with_time=False)
    out = leave_one_out(data, num_negatives=5, seed=3)
    store = out[EDGE]
    test_users = store.edge_label_index[0]
    assert test_users.tolist() == list(range(NUM_USERS - 1))  # one column per user with >= 2, sorted
    assert "val_edge_label_index" not in store and "time" not in store
    check_disjoint_cover(store, index)
    assert (out["user"].num_nodes, out["item"].num_nodes) == (NUM_USERS, NUM_ITEMS)

    negatives = store.test_negatives
    assert negatives.shape == (NUM_USERS - 1, 5) and negatives.dtype == torch.long
    seen = pairs(index)
    for user, row in zip(test_users.tolist(), negatives.tolist()):
        assert len(set(row)) == 5 and all(0 <= i < NUM_ITEMS and (user, i) not in seen for i in row)

    again = leave_one_out(data, num_negatives=5, seed=3)[EDGE]
    other = leave_one_out(data, num_negatives=5, seed=4)[EDGE]
    assert torch.equal(again.edge_label_index, store.edge_label_index)
    assert torch.equal(again.test_negatives, negatives)
    assert not torch.equal(other.edge_label_index, store.edge_label_index)


@pytest.mark.parametrize("with_time", [False, True])
def test_leave_one_out_tests_the_same_candidates_with_validation_or_without(with_time):
    """The validation split drew from the test negatives' generator: turning it on changed every user's 100
    candidates, so runs with and without validation ranked the same test items among other negatives."""
    data, _, _ = timed_data(with_time=with_time)
    plain = leave_one_out(data, num_negatives=5, seed=3)[EDGE]
    validated = leave_one_out(data, num_negatives=5, validation=True, seed=3)[EDGE]
    assert torch.equal(validated.edge_label_index, plain.edge_label_index)
    assert torch.equal(validated.test_negatives, plain.test_negatives)


def test_leave_one_out_holds_out_latest_with_validation():
    data, index, time = timed_data()
    out = leave_one_out(data, num_negatives=4, validation=True, seed=0)
    store = out[EDGE]
    check_disjoint_cover(store, index)
    for user in range(NUM_USERS - 1):
        own = (index[0] == user).nonzero().view(-1)
        latest = own[time[own].argsort(descending=True)]
        assert pairs(index[:, latest[:1]]) <= pairs(store.edge_label_index)
        if own.numel() >= 3:
            assert pairs(index[:, latest[1:2]]) <= pairs(store.val_edge_label_index)
    counts = torch.bincount(index[0], minlength=NUM_USERS)
    assert store.val_edge_label_index[0].tolist() == (counts >= 3).nonzero().view(-1).tolist()
    assert store.val_negatives.shape == (store.val_edge_label_index.size(1), 4)
    assert not torch.equal(store.val_negatives, store.test_negatives)  # drawn independently
    seen = pairs(index)  # the validation target, the test target and the training items of any split
    for user, row in zip(store.val_edge_label_index[0].tolist(), store.val_negatives.tolist()):
        assert not any((user, item) in seen for item in row)
    # Times follow their interactions.
    lookup = {tuple(pair): int(t) for pair, t in zip(index.t().tolist(), time)}
    for index_key, time_key in [
        ("edge_index", "time"),
        ("edge_label_index", "edge_label_time"),
        ("val_edge_label_index", "val_edge_label_time"),
    ]:
        assert [lookup[tuple(p)] for p in store[index_key].t().tolist()] == store[time_key].tolist()


@pytest.mark.parametrize("key", ["test_negatives", "val_negatives"])
def test_fingerprint_covers_the_sampled_negatives(key):
    """The same splits ranked against other negatives give other sampled metrics, so a checkpoint's
    fingerprint must tell them apart (a resume or an eval would otherwise mix the two)."""
    data, _, _ = timed_data()  # timestamps pick the held-out items, the seed only the negatives
    out, again, redrawn = (leave_one_out(data, 4, validation=True, seed=seed) for seed in (0, 0, 1))
    for split in ("edge_index", "edge_label_index", "val_edge_label_index"):
        assert torch.equal(redrawn[EDGE][split], out[EDGE][split])
    assert data_fingerprint(again) == data_fingerprint(out)

    changed = out.clone()
    changed[EDGE][key] = redrawn[EDGE][key]
    assert not torch.equal(changed[EDGE][key], out[EDGE][key])
    assert data_fingerprint(changed) != data_fingerprint(out)


@pytest.mark.parametrize(("available", "num_negatives"), [(6, 3), (200, 3)])  # permutation / rejection
def test_sample_negatives_uniform_without_repeats(available, num_negatives):
    num_items = available + 4
    seen = torch.tensor([[0, 0, 0, 0], [0, 2, 5, num_items - 1]])
    draws = sample_negatives(seen, torch.zeros(3000, dtype=torch.long), num_items, num_negatives, seed=1)
    assert draws.shape == (3000, num_negatives)
    assert (draws.sort(dim=1).values.diff(dim=1) > 0).all()
    counts = torch.bincount(draws.view(-1), minlength=num_items).double()
    assert counts[seen[1]].sum() == 0
    unseen = counts[counts > 0]
    assert unseen.numel() == available
    expected = 3000 * num_negatives / available
    assert ((unseen - expected).abs() < 6 * expected**0.5).all()
    # The first column alone is uniform too (rows are in random order).
    first = torch.bincount(draws[:, 0], minlength=num_items).double()
    assert first.max() < 3000 / available + 6 * (3000 / available) ** 0.5


def test_sample_negatives_user_without_interactions():
    draws = sample_negatives(torch.tensor([[0], [1]]), torch.tensor([2, 0]), 3, 2)
    assert set(draws[0].tolist()) <= {0, 1, 2} and len(set(draws[0].tolist())) == 2
    assert set(draws[1].tolist()) == {0, 2}


@pytest.mark.parametrize("num_negatives", [-1, 2.0, True])
def test_sample_negatives_refuses_a_number_that_is_no_count(num_negatives):
    # failed inside NumPy: "negative dimensions are not allowed", "an integer is required"
    with pytest.raises(ValueError, match=rf"num_negatives must be an integer >= 0, got {num_negatives}"):
        sample_negatives(torch.tensor([[0], [1]]), torch.tensor([0]), 3, num_negatives)


def test_sample_negatives_of_interactions_in_any_order_are_never_seen_items():
    """seen_index out of user order gave each user the counts of other users: positives and ids outside
    [0, num_items) among the negatives (-98 .. 229 of 40 items); a pair given twice cut a user's choice."""
    index = torch.stack(torch.meshgrid(torch.arange(5), torch.arange(0, 40, 3), indexing="ij")).view(2, -1)
    shuffled = index[:, torch.randperm(index.size(1), generator=torch.Generator().manual_seed(3))]
    expected = sample_negatives(index, torch.arange(5), 40, 20, seed=4)
    twice = index.repeat_interleave(2, dim=1)  # sorted, yet each pair given twice
    for seen in (index.flip(1), shuffled, torch.cat([index, index[:, :10]], dim=1), twice):
        assert torch.equal(sample_negatives(seen, torch.arange(5), 40, 20, seed=4), expected)
    assert not (expected % 3 == 0).any() and expected.max() < 40


@pytest.mark.parametrize(
    ("seen", "users", "message"),
    [
        ([[0, 1], [1, 45]], [0], r"seen_index must hold .* items in \[0, num_items=40\), got .* items 1..45"),
        (
            [[0, 1], [1, 2]],
            [-1],
            r"users must be a 1-D tensor of user ids >= 0, got id -1",
        ),  # the last user's
        ([[0, 1], [1, 2]], [1.7], r"users must be a 1-D tensor of user ids >= 0, got a torch.float32 tensor"),
    ],
)
def test_sample_negatives_refuses_ids_it_would_misread(seen, users, message):
    # drawn without a word: an item past num_items is another user's in the keys, user 1.7 was user 1
    with pytest.raises(ValueError, match=message):
        sample_negatives(torch.tensor(seen), torch.tensor(users), 40, 3)


@pytest.mark.parametrize("seed", [None, 1.5, -1, "0"])
def test_protocols_refuse_a_seed_that_is_no_integer_naming_it(small_data, seed):
    # None drew another split at every call, without a word; 1.5, -1 and "0" failed inside NumPy
    for protocol in (
        lambda: leave_one_out(small_data, 5, seed=seed),
        lambda: held_out_users(small_data, 3, seed=seed),
        lambda: sample_negatives(small_data[EDGE].edge_index, torch.tensor([0]), NUM_ITEMS, 3, seed=seed),
    ):
        with pytest.raises(ValueError, match=rf"^seed must be an integer >= 0, got {seed!r}$"):
            protocol()
    generator = np.random.default_rng(7)  # a generator, which sample_negatives takes, is used as it is
    drawn = sample_negatives(small_data[EDGE].edge_index, torch.tensor([0]), NUM_ITEMS, 3, generator)
    assert torch.equal(
        drawn, sample_negatives(small_data[EDGE].edge_index, torch.tensor([0]), NUM_ITEMS, 3, 7)
    )


def test_leave_one_out_too_few_negatives():
    index = torch.tensor([[0, 0, 0, 1, 1], [0, 1, 2, 0, 1]])
    data = make_interaction_data(2, 4, index[:, :3], index[:, 3:])
    with pytest.raises(ValueError, match=r"num_negatives=2 exceeds the 1 items user 0 never interacted with"):
        leave_one_out(data, num_negatives=2)
    negatives = leave_one_out(data, num_negatives=1)[EDGE].test_negatives
    assert negatives[0].tolist() == [3] and negatives[1].item() in (2, 3)
    assert torch.equal(leave_one_out(data, num_negatives=np.int64(1))[EDGE].test_negatives, negatives)


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"num_negatives": 0}, "num_negatives"),
        ({"num_negatives": True}, "num_negatives"),  # failed inside torch: "an integer is required"
        ({"validation": 1}, "validation"),
    ],
)
def test_leave_one_out_bad_options(small_data, options, field):
    with pytest.raises(ValueError, match=field):
        leave_one_out(small_data, **options)


def test_held_out_users_fold_in():
    data, index, time = timed_data()
    out = held_out_users(data, num_test_users=5, num_val_users=0.2, fold_in=0.8, seed=1)
    store, train_mask = out[EDGE], out["user"].train_mask
    check_disjoint_cover(store, index)
    test_users = set(store.edge_label_index[0].tolist())
    val_users = set(store.val_edge_label_index[0].tolist())
    assert len(test_users) == 5 and len(val_users) == round(0.2 * (NUM_USERS - 1))
    assert not test_users & val_users and NUM_USERS - 1 not in test_users | val_users
    assert train_mask.dtype == torch.bool and train_mask.shape == (NUM_USERS,)
    assert (~train_mask).nonzero().view(-1).tolist() == sorted(test_users | val_users)
    counts = torch.bincount(index[0], minlength=NUM_USERS)
    fold_in = torch.bincount(store.edge_index[0], minlength=NUM_USERS)
    targets = torch.bincount(
        torch.cat([store.edge_label_index[0], store.val_edge_label_index[0]]), minlength=NUM_USERS
    )
    expected = torch.round(0.2 * counts).long().clamp(min=1).minimum(counts - 1)
    assert torch.equal(targets[~train_mask], expected[~train_mask])
    assert torch.equal(fold_in[train_mask], counts[train_mask]) and (fold_in >= 1).all()
    assert store.edge_label_time.shape == (store.edge_label_index.size(1),)

    again = held_out_users(data, num_test_users=5, num_val_users=0.2, seed=1)
    assert torch.equal(again[EDGE].edge_label_index, store.edge_label_index)
    assert "val_edge_label_index" not in held_out_users(data, num_test_users=0.5)[EDGE]
    assert (~held_out_users(data, num_test_users=0.001)["user"].train_mask).sum() == 1


def test_held_out_users_take_numpy_numbers():
    # np.float32(0.1) users and fold_in were refused as no fraction ("must be a float in (0, 1)")
    data, _, _ = timed_data()
    expected = held_out_users(data, num_test_users=0.1, num_val_users=2, fold_in=0.5)
    out = held_out_users(data, np.float32(0.1), np.int64(2), fold_in=np.float32(0.5))
    assert out["user"].train_mask.sum() == expected["user"].train_mask.sum() == NUM_USERS - 5
    assert torch.equal(out[EDGE].edge_label_index, expected[EDGE].edge_label_index)


def test_held_out_users_two_interactions_keep_one_each():
    index = torch.tensor([[0, 0, 1, 1, 1, 2], [0, 1, 0, 1, 2, 0]])  # user 2 is left to train on
    out = held_out_users(make_interaction_data(3, 3, index, index[:, :0]), num_test_users=2)
    assert torch.bincount(out[EDGE].edge_index[0]).tolist() == [1, 2, 1]
    assert torch.bincount(out[EDGE].edge_label_index[0]).tolist() == [1, 1]


@pytest.mark.parametrize("options", [{"num_test_users": 2}, {"num_test_users": 0.1, "num_val_users": 0.1}])
def test_held_out_users_leave_a_user_to_train_on(options):
    # Both users held out, training would have no batch.
    index = torch.tensor([[0, 0, 1, 1, 1], [0, 1, 0, 1, 2]])
    with pytest.raises(ValueError, match=r"fewer than the 2 users with interactions \(one must be left"):
        held_out_users(make_interaction_data(3, 3, index, index[:, :0]), **options)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"num_test_users": 0}, "num_test_users must be at least 1 user"),
        ({"num_test_users": 1.5}, "num_test_users must be an integer >= 0 or a fraction in"),
        ({"num_test_users": True}, "num_test_users must be an integer"),
        (
            {"num_test_users": 20, "num_val_users": 10},
            r"num_test_users \+ num_val_users must be at most the 29",
        ),
        ({"fold_in": 1.0}, "fold_in must be a float in"),
    ],
)
def test_held_out_users_bad_options(options, message):
    data, _, _ = timed_data()
    with pytest.raises(ValueError, match=message):
        held_out_users(data, **options)


def test_a_train_mask_is_read_only_where_held_out_users_marked_the_data(small_data):
    """T.RandomNodeSplit's train_mask on users was read as the protocol's: a fifth of the users' interactions
    left out of training without a word."""
    out = held_out_users(small_data, num_test_users=3)
    assert out.protocol == "held-out-users" and leave_one_out(small_data, 5).protocol == "leave-one-out"
    assert torch.equal(training_users(out), out["user"].train_mask)
    assert training_users(small_data) is None
    split = T.RandomNodeSplit(num_val=0.1, num_test=0.2, key=None)(small_data)
    with pytest.raises(ValueError, match=r"train_mask .* not split by it .* T\.RandomNodeSplit's .* delete"):
        training_users(split)
    split.protocol = "held-out-users"  # a held-out-users split of one's own
    assert torch.equal(training_users(split), split["user"].train_mask)
    split["user"].train_mask = split["user"].train_mask.float()
    with pytest.raises(
        ValueError, match=r"train_mask must be a boolean tensor of shape \[30\], got '\(30,\)"
    ):
        training_users(split)


def test_a_train_mask_written_over_after_held_out_users_is_refused(small_data):
    """T.RandomNodeSplit applied to held_out_users' output kept its protocol mark: the trainer read the node
    split's random train_mask as the protocol's, training 21 of 30 users without a word."""
    out = held_out_users(small_data, num_test_users=3)
    assert torch.equal(training_users(out.to("cpu")), out["user"].train_mask)  # moved, it is the same mask
    split = T.RandomNodeSplit(num_val=0.1, num_test=0.2, key=None)(copy.copy(out))
    message = r"train_mask is not the one held_out_users made: it trains 21 of 30 users, .*RandomNodeSplit"
    with pytest.raises(ValueError, match=message):
        training_users(split)
    del split.train_mask_digest  # the user's own mask, asked for
    assert torch.equal(training_users(split), split["user"].train_mask)


def _protocol_outputs(data):
    users = data[EDGE].edge_index[0, [0, 0, 5]]
    return [
        leave_one_out(data, 5, validation=True),
        held_out_users(data, num_test_users=3, num_val_users=2),
        merge_interactions(data),
        sample_negatives(data[EDGE].edge_index, users, NUM_ITEMS, 4),
    ]


def _tensors(outputs):
    for out in outputs:
        if isinstance(out, torch.Tensor):
            yield out
        elif isinstance(out, tuple):
            yield from _tensors(out)
        else:
            yield from (value for store in out.stores for value in store.values() if torch.is_tensor(value))


def test_protocols_make_their_output_on_the_inputs_device_not_the_default_one():
    # held_out_users made its masks on the default device, and every protocol came back on the CPU from data
    # moved by .to("cuda"); another default device (meta) shows where the tensors are made
    data, _, _ = timed_data()
    expected = list(_tensors(_protocol_outputs(data)))
    with torch.device("meta"):
        made = list(_tensors(_protocol_outputs(data)))
    assert len(made) == len(expected) > 10
    for got, want in zip(made, expected):
        assert got.device.type == "cpu" and torch.equal(got, want)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_protocols_of_data_on_cuda_split_as_on_the_cpu_and_stay_on_cuda():
    data, _, _ = timed_data()
    outputs = _protocol_outputs(data.to("cuda"))
    assert outputs[1].train_mask_digest == held_out_users(data, 3, 2).train_mask_digest
    assert torch.equal(training_users(outputs[1]).cpu(), outputs[1]["user"].train_mask.cpu())
    made, expected = list(_tensors(outputs)), list(_tensors(_protocol_outputs(data)))
    assert len(made) == len(expected)
    for got, want in zip(made, expected):
        assert got.is_cuda and torch.equal(got.cpu(), want)


def test_load_dataset_applies_the_transform_to_the_protocol_split(tmp_path):
    """The protocol built its data anew from the interactions: T.ToUndirected()'s reverse edges were lost."""
    raw = tmp_path / "ml-1m-lcf" / "raw"
    raw.mkdir(parents=True)
    (raw / "train.txt").write_text("0 1 2 3\n1 0 2\n2 3 1 0\n")
    (raw / "test.txt").write_text("0 4\n1 4\n2 4\n")
    for protocol in ("leave-one-out", "held-out-users"):
        options = {"num_negatives": 1} if protocol == "leave-one-out" else {"num_test_users": 1}
        plain = load_dataset("ml-1m-lcf", str(tmp_path), protocol, options)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # nothing of the transform's is dropped: it goes on the split
            data = load_dataset("ml-1m-lcf", str(tmp_path), protocol, options, transform=T.ToUndirected())
        assert torch.equal(data[EDGE].edge_index, plain[EDGE].edge_index)
        assert torch.equal(data["item", "rev_to", "user"].edge_index, plain[EDGE].edge_index.flip(0))
        assert data.protocol == protocol
    # PyG's link-prediction tutorials unpack RandomLinkSplit's (train, val, test), as from dataset[0]
    split = T.RandomLinkSplit(edge_types=EDGE, neg_sampling_ratio=0.0)  # too few items for negatives
    train, _, _ = load_dataset("ml-1m-lcf", str(tmp_path), protocol, options, transform=split)
    assert "edge_label" in train[EDGE] and train.protocol == protocol

    def drop_an_item(data):  # in place, as a transform's forward does
        data["item"].num_nodes -= 1
        return data

    with pytest.raises(
        ValueError, match=r"transform <function .*drop_an_item.*> changed .* \(items 5 -> 4\)"
    ):
        load_dataset(
            "ml-1m-lcf", str(tmp_path), "leave-one-out", {"num_negatives": 1}, transform=drop_an_item
        )


@pytest.mark.parametrize(
    ("protocol", "options"),
    [("leave-one-out", {"num_negatives": 3}), ("held-out-users", {"num_test_users": 3})],
)
def test_a_protocol_names_what_of_its_input_it_does_not_carry(small_data, protocol, options):
    """A pre_transform's reverse edges and node features were dropped by the new split without a word."""
    data = T.ToUndirected()(small_data)
    data["user"].x = torch.ones(NUM_USERS, 2)
    message = r"does not carry .*: data\['user'\]\.x, .*'rev_to'.*edge_index"
    with pytest.warns(UserWarning, match=message) as record:
        out = apply_protocol(data, protocol, **options)
    assert record[0].filename == __file__
    assert ("item", "rev_to", "user") not in out.edge_types
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a protocol's own output, split again, holds nothing else
        held_out_users(leave_one_out(small_data, 3), num_test_users=3)
        leave_one_out(held_out_users(small_data, num_test_users=3), 3)


def test_a_protocol_keeps_the_file_ids_of_users_and_items(tmp_path):
    """load_file's data["user"].raw_ids name the same users after a protocol: they were dropped."""
    (tmp_path / "f.csv").write_text("user,item\nann,x\nann,y\nbob,x\nbob,z\ncat,y\ncat,z\n")
    data = load_file(tmp_path / "f.csv", test_ratio=0.4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = leave_one_out(data, num_negatives=1)
    assert out["user"].raw_ids.tolist() == ["ann", "bob", "cat"] and out["item"].raw_ids.tolist() == [
        "x",
        "y",
        "z",
    ]


def test_apply_protocol(small_data):
    assert apply_protocol(small_data) is small_data
    out = apply_protocol(small_data, "leave-one-out", seed=2, num_negatives=3)
    assert torch.equal(out[EDGE].test_negatives, leave_one_out(small_data, 3, seed=2)[EDGE].test_negatives)
    assert "train_mask" in apply_protocol(small_data, "held-out-users", num_test_users=3)["user"]
    with pytest.raises(
        ValueError, match=r"protocol must be one of \('full', 'leave-one-out', 'held-out-users'\)"
    ):
        apply_protocol(small_data, "loo")
    with pytest.raises(
        ValueError, match=r"options of protocol 'leave-one-out' must be among \['num_negatives'"
    ):
        apply_protocol(small_data, "leave-one-out", fold_in=0.5)
    with pytest.raises(ValueError, match="protocol options must be empty for protocol 'full'"):
        apply_protocol(small_data, "full", num_negatives=3)
    assert PROTOCOLS == ("full", "leave-one-out", "held-out-users")


U_DATA = b"".join(
    f"{u}\t{i}\t{(u * i) % 5 + 1}\t{880000000 + (u * 7919 + i * 104729) % 1000}\n".encode()
    for u in range(1, 7)
    for i in range(1, 13)
    if (u + i) % 3  # every user leaves 4 of the 12 movies unrated
)


def raw_times() -> dict[tuple[int, int], int]:
    rows = np.array([line.split(b"\t") for line in U_DATA.splitlines()], dtype=np.int64)
    return {(u - 1, i - 1): t for u, i, _, t in rows.tolist()}


def place_ml100k(root: Path) -> None:
    (root / "ml-100k" / "raw").mkdir(parents=True)
    (root / "ml-100k" / "raw" / "u.data").write_bytes(U_DATA)


def test_movielens_keeps_timestamps(tmp_path):
    place_ml100k(tmp_path)
    store = MovieLens100K(str(tmp_path), rating_threshold=1, val_ratio=0.25)[0][EDGE]
    times = raw_times()
    for index_key, time_key in [
        ("edge_index", "time"),
        ("edge_label_index", "edge_label_time"),
        ("val_edge_label_index", "val_edge_label_time"),
    ]:
        assert store[time_key].dtype == torch.long
        assert [times[tuple(p)] for p in store[index_key].t().tolist()] == store[time_key].tolist()


def test_movielens_reprocesses_file_without_timestamps(tmp_path):
    place_ml100k(tmp_path)
    dataset = MovieLens100K(str(tmp_path))
    data = dataset[0]
    for key in ("time", "edge_label_time"):
        del data[EDGE][key]
    dataset.save([data], dataset.processed_paths[0])  # as saved before timestamps were kept
    again = MovieLens100K(str(tmp_path))[0][EDGE]
    assert "time" in again and torch.equal(again.edge_label_index, data[EDGE].edge_label_index)


def test_load_dataset_with_protocol(tmp_path, monkeypatch):
    place_ml100k(tmp_path)
    out = load_dataset(
        "ml-100k",
        str(tmp_path),
        protocol="leave-one-out",
        protocol_options={"num_negatives": 3},
        rating_threshold=1,
    )
    times = raw_times()
    for user, item in out[EDGE].edge_label_index.t().tolist():
        assert times[(user, item)] == max(t for (u, _), t in times.items() if u == user)
    assert out[EDGE].test_negatives.shape == (6, 3)
    seeded = load_dataset("ml-100k", str(tmp_path), protocol="held-out-users", seed=3)
    explicit = load_dataset("ml-100k", str(tmp_path), protocol="held-out-users", protocol_options={"seed": 3})
    assert torch.equal(seeded["user"].train_mask, explicit["user"].train_mask)
    # A bad protocol fails before anything is read or downloaded.
    monkeypatch.setattr(datasets_module, "download_url", None)
    with pytest.raises(ValueError, match="protocol must be one of"):
        load_dataset("ml-1m", str(tmp_path), protocol="sampled")
    with pytest.raises(ValueError, match="options of protocol 'held-out-users'"):
        load_dataset("ml-1m", str(tmp_path), protocol="held-out-users", protocol_options={"validation": True})


@pytest.mark.parametrize(
    ("protocol", "option"),
    [("leave-one-out", r"\{'validation': True\}"), ("held-out-users", r"\{'num_val_users': N\}")],
)
def test_a_validation_share_under_a_protocol_is_refused_naming_the_option(
    tmp_path, monkeypatch, protocol, option
):
    """The protocol merged the dataset's validation split with the rest: no validation split, no word."""
    monkeypatch.setattr(datasets_module, "download_url", None)  # refused before anything is read
    message = rf"val_ratio must be 0 under protocol '{protocol}', .* protocol_options={option}\), got 0.2"
    with pytest.raises(ValueError, match=message):
        load_dataset("ml-1m", str(tmp_path), protocol, val_ratio=0.2)
    (tmp_path / "f.csv").write_text("user,item\na,x\na,y\nb,x\nb,y\n")
    with pytest.raises(ValueError, match=message):
        load_file(tmp_path / "f.csv", protocol, val_ratio=0.2)


@pytest.mark.realdata
def test_real_ml_1m_lcf_leave_one_out(tmp_path):
    source = SHARED / "ml-1m-ultragcn" / "raw"
    if not all((source / name).exists() for name in ("train.txt", "test.txt")):
        pytest.skip("../shared/datasets/ml-1m-ultragcn is not available")
    (tmp_path / "ml-1m-lcf").mkdir()
    os.symlink(source.resolve(), tmp_path / "ml-1m-lcf" / "raw")
    data = MovieLens1MLCF(str(tmp_path))[0]
    out = leave_one_out(data)
    store = out[EDGE]
    assert store.edge_label_index.size(1) == 6022
    assert store.test_negatives.shape == (6022, 100)
    num_items = out["item"].num_nodes
    index, _ = merge_interactions(data)
    seen = index[0] * num_items + index[1]
    candidates = store.edge_label_index[0].view(-1, 1) * num_items + store.test_negatives
    assert not torch.isin(candidates, seen).any()
    assert (store.test_negatives.sort(dim=1).values.diff(dim=1) > 0).all()
    assert store.edge_index.size(1) + 6022 == index.size(1)


def test_leave_one_out_without_a_user_of_two_interactions_fails():
    # nobody would be evaluated, and every metric would read 0
    index = torch.tensor([[0, 1, 2], [0, 1, 1]])
    data = make_interaction_data(3, 4, index[:, :2], index[:, 2:])
    with pytest.raises(ValueError, match="leave_one_out needs a user with at least two interactions"):
        leave_one_out(data, num_negatives=1)


def test_leave_one_out_validation_without_a_user_of_three_interactions_fails():
    # the validation split was empty: every validation metric read 0, and the first epoch was the best
    train, test = torch.tensor([[0, 0, 1, 1, 2], [0, 1, 2, 3, 4]]), torch.tensor([[2], [5]])
    with pytest.raises(ValueError, match=r"validation=True\) needs a user with at least three interactions"):
        leave_one_out(make_interaction_data(3, 6, train, test), num_negatives=1, validation=True)
    train = torch.cat([train, torch.tensor([[2], [3]])], dim=1)  # user 2 has three
    store = leave_one_out(make_interaction_data(3, 6, train, test), num_negatives=1, validation=True)[EDGE]
    assert store.val_edge_label_index[0].tolist() == [2]


def test_apply_protocol_negative_seed_names_the_field(small_data):
    with pytest.raises(ValueError, match="seed must be an integer >= 0, got -1"):
        apply_protocol(small_data, "leave-one-out", seed=-1)


def test_held_out_users_keep_one_fold_in_interaction_whatever_fold_in():
    # fold_in=0.1 asks round(0.9 n) targets: 2 of user 0's 2 and 3 of user 1's 3, which would leave them
    # nothing to fold in; the n - 1 cap keeps one of user 0's and one of user 1's
    index = torch.tensor([[0, 0, 1, 1, 1, 2], [0, 1, 0, 1, 2, 0]])  # user 2 (one interaction) trains
    out = held_out_users(make_interaction_data(3, 3, index, index[:, :0]), num_test_users=2, fold_in=0.1)
    assert torch.bincount(out[EDGE].edge_label_index[0]).tolist() == [1, 2]
    assert torch.bincount(out[EDGE].edge_index[0]).tolist() == [1, 1, 1]


def test_held_out_users_are_drawn_at_random_and_split_at_random():
    """The seed picks the held-out users, and their interactions are split at random even where the data
    has timestamps (Mult-VAE's protocol): not the latest ones, as leave_one_out takes."""
    data, index, time = timed_data()
    masks = [held_out_users(data, num_test_users=5, seed=seed)["user"].train_mask for seed in range(3)]
    assert not torch.equal(masks[0], masks[1]) or not torch.equal(masks[0], masks[2])
    store = held_out_users(data, num_test_users=20, fold_in=0.5, seed=0)[EDGE]
    targets = pairs(store.edge_label_index)
    latest = set()
    for user in set(store.edge_label_index[0].tolist()):
        own = (index[0] == user).nonzero().view(-1)
        count = sum(u == user for u, _ in targets)
        latest |= pairs(index[:, own[time[own].argsort(descending=True)[:count]]])
    assert targets != latest
