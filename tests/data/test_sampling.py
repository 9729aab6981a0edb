import re

import pytest
import torch

from dslgraph.data import BPRBatches, NegativeSampler
from dslgraph.data.sampling import SORTED_SEARCH_MIN, UserBatches


def _train(num_users=50, num_items=30, per_user=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    users = torch.arange(num_users).repeat_interleave(per_user)
    items = torch.stack([torch.randperm(num_items, generator=g)[:per_user] for _ in range(num_users)]).view(
        -1
    )
    return torch.stack([users, items])


def test_negatives_are_never_training_positives():
    train = _train()
    sampler = NegativeSampler(train, 30)
    users = train[0].repeat(20)
    negatives = sampler.sample(users, generator=torch.Generator().manual_seed(1))
    positives = set(zip(train[0].tolist(), train[1].tolist()))
    assert not any((u, i) in positives for u, i in zip(users.tolist(), negatives.tolist()))
    many = sampler.sample(train[0], num_negatives=5)
    assert many.shape == (train.size(1), 5)
    assert not sampler.is_positive(train[0].view(-1, 1).expand_as(many), many).any()


def test_many_membership_tests_are_searched_in_sorted_order(monkeypatch):
    """An epoch's negatives are tested against the training keys in one search of millions of probes: in
    sorted order each binary search walks memory the previous one cached (Amazon-book, one thread: 3.2 s
    in random order, 1.0 s sorted), and the answers go back to the probes' own order."""
    train = _train()
    sampler = NegativeSampler(train, 30)
    generator = torch.Generator().manual_seed(3)
    users = torch.randint(50, (SORTED_SEARCH_MIN // 4, 1), generator=generator).expand(-1, 4)
    items = torch.randint(30, users.shape, generator=generator)
    positives = set(zip(train[0].tolist(), train[1].tolist()))
    pairs = zip(users.reshape(-1).tolist(), items.reshape(-1).tolist())
    expected = torch.tensor([pair in positives for pair in pairs]).view(users.shape)
    searched, searchsorted = [], torch.searchsorted

    def recording(sorted_sequence, values, **kwargs):
        searched.append(values)
        return searchsorted(sorted_sequence, values, **kwargs)

    monkeypatch.setattr(torch, "searchsorted", recording)
    assert torch.equal(sampler.is_positive(users, items), expected) and expected.any() and not expected.all()
    assert len(searched) == 1 and bool((searched[0].diff() >= 0).all())


def test_the_negative_sampler_is_built_at_the_first_draw():
    """Counting an epoch's batches (the CLI does it to lay out DSL's schedule, before the trainer makes
    its own batches) built a sampler over every training interaction, then threw it away: about a second
    and 100 MB on Amazon-book."""
    train = _train()
    batches = BPRBatches(train, 30, batch_size=64, generator=torch.Generator().manual_seed(0))
    assert len(batches) == -(-train.size(1) // 64) and "sampler" not in vars(batches)
    users, _, negatives = next(iter(batches))
    assert isinstance(vars(batches)["sampler"], NegativeSampler)
    assert not batches.sampler.is_positive(users, negatives).any()


def test_user_with_every_item_fails_clearly():
    full = torch.stack([torch.zeros(4, dtype=torch.long), torch.arange(4)])
    with pytest.raises(ValueError, match="every item"):
        NegativeSampler(full, 4, max_rounds=3).sample(torch.zeros(2, dtype=torch.long))


@pytest.mark.parametrize("max_rounds", [1.5, None, -1])
def test_max_rounds_that_is_no_count_is_named(max_rounds):
    # failed in range() at the first draw: "'float' object cannot be interpreted as an integer"
    with pytest.raises(ValueError, match=rf"max_rounds must be an integer >= 0, got {max_rounds}"):
        NegativeSampler(_train(), 30, max_rounds=max_rounds)


def test_users_with_few_items_left_get_uniform_negatives():
    # user 0 has 98 of 100 items: redraws alone gave up on about 1 in 8 of its draws and stopped training
    items = torch.cat([torch.arange(1, 99), torch.tensor([0, 50, 99])])
    train = torch.stack([torch.tensor([0] * 98 + [1] * 3), items])
    sampler = NegativeSampler(train, 100)
    users = torch.tensor([0, 1, 2]).repeat(3000)
    negatives = sampler.sample(users, generator=torch.Generator().manual_seed(0))
    assert not sampler.is_positive(users, negatives).any()
    counts = torch.bincount(negatives[users == 0], minlength=100)
    assert counts[[0, 99]].sum() == 3000 and counts[[0, 99]].min() > 1300
    # the direct draw alone (no redraw): uniform over each user's other items, ids 0 and 99 included
    direct = NegativeSampler(train, 100, max_rounds=0).sample(users, 20, torch.Generator().manual_seed(1))
    assert not sampler.is_positive(users.view(-1, 1).expand_as(direct), direct).any()
    for user, free in ((1, 97), (2, 100)):
        counts = torch.bincount(direct[users == user].view(-1), minlength=100)
        assert (counts > 0).sum() == free and counts.max() < 2 * 60000 / free  # about 620 / 600 each
        assert counts[counts > 0].min() > 60000 / free / 2
    # no draw to make again (user 2 has no positive): the first draws stand, with or without redraws
    fresh = torch.tensor([2]).repeat(50)
    first = NegativeSampler(train, 100, max_rounds=0).sample(
        fresh, generator=torch.Generator().manual_seed(2)
    )
    assert torch.equal(first, sampler.sample(fresh, generator=torch.Generator().manual_seed(2)))


def test_user_sampling_weighs_users_then_their_items_equally():
    train = torch.tensor([[0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2], [0, 1, 2, 3, 4, 5, 6, 7, 9, 0, 9]])
    batches = BPRBatches(train, 10, 11, torch.Generator().manual_seed(0), mode="user")
    users, items, _ = (torch.cat(parts) for parts in zip(*[t for _ in range(3000) for t in batches]))
    assert (torch.bincount(users, minlength=3) - 11000).abs().max() < 600  # 11,000 each, sd 86
    per_item = torch.bincount(items[users == 1], minlength=10)[[1, 2, 3, 4, 5, 6, 7, 9]]
    assert per_item.min() > 1100 and per_item.max() < 1650  # 1,375 each, sd 35


@pytest.mark.parametrize("mode", ["edge", "user"])
def test_epoch_covers_the_training_size(mode):
    train = _train()
    batches = BPRBatches(train, 30, batch_size=64, generator=torch.Generator().manual_seed(0), mode=mode)
    triples = list(batches)
    assert len(triples) == len(batches) == -(-train.size(1) // 64)
    users = torch.cat([u for u, _, _ in triples])
    items = torch.cat([i for _, i, _ in triples])
    assert users.numel() == train.size(1)
    positives = set(zip(train[0].tolist(), train[1].tolist()))
    assert all(pair in positives for pair in zip(users.tolist(), items.tolist()))
    if mode == "edge":
        assert sorted(zip(users.tolist(), items.tolist())) == sorted(positives)


def test_bad_batch_options():
    with pytest.raises(ValueError, match="batch_size"):
        BPRBatches(_train(), 30, batch_size=0)
    with pytest.raises(ValueError, match="sampling mode"):
        BPRBatches(_train(), 30, batch_size=4, mode="item")
    # were TypeErrors of range() and expand()
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1, got 2.5"):
        BPRBatches(_train(), 30, batch_size=2.5)
    with pytest.raises(ValueError, match="num_negatives must be an integer >= 1, got 2.0"):
        BPRBatches(_train(), 30, batch_size=4, num_negatives=2.0)
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1, got 2.5"):
        UserBatches(torch.arange(3), batch_size=2.5)
    with pytest.raises(ValueError, match="no user to train on"):  # an epoch of no batch
        UserBatches(torch.arange(0), batch_size=2)


@pytest.mark.parametrize("mode", ["edge", "user"])
def test_bad_training_interactions_fail_naming_them(mode):
    train = _train()
    # an epoch of no batch (edge mode) trained nothing and reported a loss of 0; user mode failed in randint
    with pytest.raises(ValueError, match="train_index holds no interaction to train on"):
        BPRBatches(train[:, :0], 30, batch_size=4, mode=mode)
    with pytest.raises(
        ValueError, match=r"train_index must be a \[2, E\] tensor of integer .* torch.float32"
    ):
        BPRBatches(train.float(), 30, batch_size=4, mode=mode)  # failed in torch.bincount
    with pytest.raises(ValueError, match=r"items in \[0, num_items=20\), got users 0..49, items 0..29"):
        BPRBatches(train, 20, batch_size=4, mode=mode)
    with pytest.raises(ValueError, match="num_items must be an integer >= 1, got 0"):
        NegativeSampler(train[:, :0], 0)


def test_an_item_past_num_items_is_refused_not_read_as_another_users():
    # key 0 * 5 + 7 is user 1's item 2, which user 1 would then never get as a negative
    with pytest.raises(ValueError, match=r"items in \[0, num_items=5\), got users 0..0, items 1..7"):
        NegativeSampler(torch.tensor([[0, 0], [1, 7]]), 5)


def test_num_items_may_be_counted_from_the_index():
    train = _train()
    num_items = train[1].max() + 1  # a 0-dim tensor, as RankingEvaluator takes it
    assert NegativeSampler(train, num_items).num_items == int(num_items)
    batches = BPRBatches(train, num_items, batch_size=4)
    assert type(batches.num_items) is int


def _unchecked_epoch(device, seed, on_device=None):
    generator = torch.Generator().manual_seed(seed)
    batches = BPRBatches(_train(), 30, 64, generator, device, num_negatives=7, exclude_positives=False)
    if on_device is not None:
        batches.draw_on_device = on_device  # the GPU path, exercised on the CPU
    return batches, [negatives for _, _, negatives in batches]


def test_unchecked_negatives_drawn_on_the_device_are_seeded_once_per_epoch(device):
    force = True if device.type == "cpu" else None  # a GPU takes this path by itself
    batches, first = _unchecked_epoch(device, 0, on_device=force)
    assert batches.draw_on_device
    assert all(n.device.type == device.type and n.shape[1] == 7 for n in first)
    drawn = torch.cat(first)
    assert drawn.shape == (600, 7) and int(drawn.min()) >= 0 and int(drawn.max()) < 30
    assert drawn.unique().numel() == 30  # every item can be a negative, positives included
    again = torch.cat(_unchecked_epoch(device, 0, on_device=force)[1])
    other = torch.cat(_unchecked_epoch(device, 1, on_device=force)[1])
    assert torch.equal(drawn, again) and not torch.equal(drawn, other)
    # one number of the checkpointed generator per epoch, whatever the batches drew on the device
    reference = torch.Generator().manual_seed(0)
    torch.randperm(600, generator=reference)
    torch.randint(2**62, (1,), generator=reference)
    assert torch.equal(batches.generator.get_state(), reference.get_state())


def test_unchecked_negatives_stay_on_the_cpu_generator_for_cpu_runs():
    batches, drawn = _unchecked_epoch("cpu", 0)
    assert not batches.draw_on_device
    reference = torch.Generator().manual_seed(0)
    torch.randperm(600, generator=reference)  # the epoch's shuffle
    expected = [torch.randint(30, (min(64, 600 - s), 7), generator=reference) for s in range(0, 600, 64)]
    assert len(drawn) == len(expected) and all(torch.equal(a, b) for a, b in zip(drawn, expected))


def _epoch(batches):
    return [torch.cat(parts) for parts in zip(*batches)]


@pytest.mark.parametrize(
    "options",
    [
        {},  # one negative each, drawn for the whole epoch
        {"num_negatives": 3},  # checked negatives, drawn batch by batch
        {"num_negatives": 3, "exclude_positives": False},  # unchecked, on a per-epoch generator
    ],
)
def test_an_epoch_is_decided_by_the_generator_state_alone(options):
    """A run resumed from a checkpoint restores the generator's state only: the next epoch must then be
    the one the uninterrupted run draws (its own reshuffle, its own negatives), whatever else used
    torch's global random state in between."""
    generator = torch.Generator().manual_seed(0)
    batches = BPRBatches(_train(), 30, batch_size=64, generator=generator, **options)
    batches.draw_on_device = not batches.exclude_positives  # the GPU's per-epoch device generator, on the CPU
    first = _epoch(batches)
    state = generator.get_state()
    resumed = BPRBatches(_train(), 30, batch_size=64, generator=torch.Generator().set_state(state), **options)
    resumed.draw_on_device = batches.draw_on_device
    with torch.random.fork_rng():  # the other tests' global random state stays as it was
        torch.manual_seed(1)
        second = _epoch(batches)
        torch.manual_seed(2)
        again = _epoch(resumed)
    assert all(torch.equal(a, b) for a, b in zip(again, second))
    # each epoch shuffles the interactions anew and draws new negatives
    assert not torch.equal(first[0], second[0]) and not torch.equal(first[2], second[2])


def test_many_checked_negatives_are_never_training_positives():
    train = _train()
    batches = BPRBatches(train, 30, 64, torch.Generator().manual_seed(0), num_negatives=5)
    users, _, negatives = _epoch(batches)
    assert negatives.shape == (train.size(1), 5)
    positives = set(zip(train[0].tolist(), train[1].tolist()))
    assert not any((u, i) in positives for u, row in zip(users.tolist(), negatives.tolist()) for i in row)


def test_user_sampling_skips_users_without_training_items():
    # user 1 has no training interaction: picking it read the previous user's last item as its positive
    train = torch.tensor([[0, 0, 2, 2, 2], [0, 1, 1, 2, 3]])
    batches = BPRBatches(train, 5, 5, torch.Generator().manual_seed(0), mode="user")
    users, items, _ = (torch.cat(parts) for parts in zip(*[t for _ in range(200) for t in batches]))
    assert set(users.tolist()) == {0, 2}
    assert set(zip(users.tolist(), items.tolist())) == set(zip(train[0].tolist(), train[1].tolist()))


def test_user_sampling_of_interactions_out_of_user_order_yields_training_pairs():
    # mode="user" finds each user's items by offsets into the interactions sorted by user: read in the order
    # given, a user's "positive" was another user's item
    train = _train(num_users=6, num_items=10, per_user=4)
    shuffled = train[:, torch.randperm(train.size(1), generator=torch.Generator().manual_seed(1))]
    batches = BPRBatches(shuffled, 10, 8, torch.Generator().manual_seed(0), mode="user")
    users, items, _ = (torch.cat(parts) for parts in zip(*[t for _ in range(20) for t in batches]))
    assert set(zip(users.tolist(), items.tolist())) == set(zip(train[0].tolist(), train[1].tolist()))


def test_a_training_pair_given_twice_leaves_the_users_other_items_to_draw():
    # the direct draw counts a user's positives among the keys: a pair counted twice took an item off its
    # free ones (here all of them: "interacted with every item")
    train = torch.tensor([[0, 0, 0, 1], [0, 0, 1, 2]])
    for max_rounds in (0, 100):
        sampler = NegativeSampler(train, 3, max_rounds=max_rounds)
        drawn = sampler.sample(torch.zeros(50, dtype=torch.long), generator=torch.Generator().manual_seed(0))
        assert drawn.tolist() == [2] * 50


def test_direct_draws_are_uniform_over_the_users_other_items():
    # user 0 has items 1-7 of 10: the draws that hit them are made directly among items 0, 8 and 9
    train = torch.stack([torch.zeros(7, dtype=torch.long), torch.arange(1, 8)])
    sampler = NegativeSampler(train, 10, max_rounds=0)
    drawn = sampler.sample(torch.zeros(30_000, dtype=torch.long), generator=torch.Generator().manual_seed(0))
    counts = torch.bincount(drawn, minlength=10)
    assert counts.nonzero().view(-1).tolist() == [0, 8, 9]
    assert (counts[[0, 8, 9]] - 10_000).abs().max() < 500  # sd 82


def test_user_batches_reshuffle_every_user_once_per_epoch():
    users = torch.arange(10, 30)
    batches = UserBatches(users, batch_size=6, generator=torch.Generator().manual_seed(0))
    epochs = [torch.cat([batch for (batch,) in batches]) for _ in range(2)]
    assert len(batches) == 4 and all(sorted(epoch.tolist()) == users.tolist() for epoch in epochs)
    assert not torch.equal(epochs[0], users) and not torch.equal(epochs[0], epochs[1])


def test_user_batches_are_decided_by_the_generator_state_alone():
    """As for BPRBatches: a resumed CDAE or MultVAE run restores only the generator's state, so the shuffle
    must not read torch's global random state."""
    epochs = []
    for global_seed in (1, 2):
        with torch.random.fork_rng():
            torch.manual_seed(global_seed)
            batches = UserBatches(torch.arange(30), batch_size=7, generator=torch.Generator().manual_seed(0))
            epochs.append(torch.cat([batch for (batch,) in batches]))
    assert torch.equal(*epochs)


@pytest.mark.parametrize("max_rounds", [100, 0])  # redrawn, or drawn directly among the user's other items
def test_int32_ids_are_keyed_without_overflow(max_rounds):
    # user 30,000 * 100,000 items wrapped past 2**31 in int32: looked up with int64 ids, its positives were
    # not found, and the direct draw read the keys of some other user
    train = torch.tensor([[30_000, 30_000, 29_999], [5, 6, 99_999]], dtype=torch.int32)
    sampler = NegativeSampler(train, 100_000, max_rounds=max_rounds)
    assert sampler.is_positive(train[0].long(), train[1].long()).all()
    users = torch.full((2_000,), 30_000, dtype=torch.int32)
    negatives = sampler.sample(users, generator=torch.Generator().manual_seed(0))
    assert negatives.min() >= 0 and negatives.max() < 100_000
    assert not sampler.is_positive(users.long(), negatives).any()


def test_sampler_refuses_a_count_or_users_it_cannot_draw_for():
    # 0 negatives gave an empty draw without a word, 2.0 failed in expand; user -1 got any items as negatives
    sampler = NegativeSampler(_train(), 30)
    for num_negatives in (0, 2.0, True):
        with pytest.raises(
            ValueError, match=rf"^num_negatives must be an integer >= 1, got {num_negatives}$"
        ):
            sampler.sample(torch.arange(3), num_negatives)
    with pytest.raises(ValueError, match=r"^users must be a 1-D tensor of user ids >= 0, got id -1$"):
        sampler.sample(torch.tensor([0, -1]))
    with pytest.raises(ValueError, match=r"users must be .*, got a torch.float32 tensor of shape \[2\]$"):
        sampler.sample(torch.tensor([0.0, 1.5]), 2)


def test_a_sampler_of_no_interactions_draws_every_item():
    # every draw and look-up failed with an IndexError: the search position was past the end of no keys
    sampler = NegativeSampler(torch.empty(2, 0, dtype=torch.long), 5)
    drawn = sampler.sample(torch.zeros(200, dtype=torch.long), 2, torch.Generator().manual_seed(0))
    assert set(drawn.view(-1).tolist()) == set(range(5))
    assert not sampler.is_positive(torch.tensor([0, 1]), torch.tensor([3, 4])).any()


@pytest.mark.parametrize(
    ("users", "got"),
    [
        ([0.0, 1.0], "a torch.float32 tensor of shape [2]"),
        ([-1, 1], "id -1"),
        ([[0, 1]], "a torch.int64 tensor"),
    ],
)
def test_user_batches_refuse_what_are_no_user_ids(users, got):
    # float ids were batched as they were, -1 as the last user, without a word
    with pytest.raises(
        ValueError, match=rf"^users must be a 1-D tensor of user ids >= 0, got {re.escape(got)}"
    ):
        UserBatches(torch.tensor(users), 2)


def test_negatives_are_drawn_on_the_generators_device_not_the_default_one():
    # drawn on the default device, a sampler of GPU interactions met CPU draws in its look-up; another
    # default device (meta) shows where they are made. max_rounds=0: the direct draws too
    sampler, users = NegativeSampler(_train(), 30, max_rounds=0), torch.arange(50).repeat(3)
    expected = sampler.sample(users, 4, torch.Generator().manual_seed(1))
    with torch.device("meta"):
        drawn = sampler.sample(users, 4, torch.Generator().manual_seed(1))
        unseeded = sampler.sample(users)
    assert drawn.device.type == unseeded.device.type == "cpu" and torch.equal(drawn, expected)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_sampler_and_batches_of_interactions_on_cuda_draw_as_on_the_cpu():
    # a sampler of GPU interactions drew on the CPU and failed in its look-up; BPRBatches failed in
    # torch.cat (a CPU zero beside GPU counts): data.to("cuda") could not be trained on
    train = _train()
    for max_rounds in (100, 0):
        sampler = NegativeSampler(train.cuda(), 30, max_rounds=max_rounds)
        drawn = sampler.sample(train[0].cuda(), 3, torch.Generator().manual_seed(1))
        expected = NegativeSampler(train, 30, max_rounds=max_rounds).sample(
            train[0], 3, torch.Generator().manual_seed(1)
        )
        assert drawn.is_cuda and torch.equal(drawn.cpu(), expected)
        assert sampler.sample(train[0].cuda()).is_cuda  # without a generator: drawn on the GPU itself
    epochs = [
        _epoch(BPRBatches(index, 30, 64, torch.Generator().manual_seed(0), "cuda", mode="user"))
        for index in (train.cuda(), train)
    ]
    assert all(a.is_cuda and torch.equal(a, b) for a, b in zip(*epochs))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_positives_of_pairs_on_another_device_than_the_interactions_cuda():
    # the keys of user * num_items + item were searched where the pairs were: ids on another device than the
    # training interactions failed in torch.searchsorted
    train = _train()
    cpu, gpu = NegativeSampler(train, 30), NegativeSampler(train.cuda(), 30)
    for size in (100, SORTED_SEARCH_MIN):  # both ways of searching
        users = torch.randint(50, (size,), generator=torch.Generator().manual_seed(0))
        items = torch.randint(30, (size,), generator=torch.Generator().manual_seed(1))
        expected = cpu.is_positive(users, items)
        assert expected.any() and not expected.all()
        found = gpu.is_positive(users, items)
        assert found.device.type == "cpu" and torch.equal(found, expected)
        found = cpu.is_positive(users.cuda(), items.cuda())
        assert found.is_cuda and torch.equal(found.cpu(), expected)


def test_reprs_name_the_sizes_not_a_memory_address():
    index = torch.tensor([[0, 0, 1, 2, 2], [1, 3, 0, 2, 3]])
    assert repr(NegativeSampler(index, 5)) == "NegativeSampler(num_items=5, positives=5)"
    assert repr(BPRBatches(index, 5, 2, mode="user", num_negatives=3)) == (
        "BPRBatches(interactions=5, num_items=5, batch_size=2, batches=3, mode='user', num_negatives=3)"
    )
    assert repr(UserBatches(torch.arange(3), 2)) == "UserBatches(users=3, batch_size=2, batches=2)"
