import math

import pytest
import torch

from dslgraph.data import EDGE, leave_one_out, make_interaction_data
from dslgraph.metrics import SampledRankingEvaluator, most_popular_scores

NUM_USERS, NUM_ITEMS, NUM_NEGATIVES = 40, 60, 20


@pytest.fixture
def sampled():
    """One positive and 20 distinct negatives per user, and integer scores full of ties."""
    gen = torch.Generator().manual_seed(0)
    items = torch.stack(
        [torch.randperm(NUM_ITEMS, generator=gen)[: NUM_NEGATIVES + 1] for _ in range(NUM_USERS)]
    )
    test_index = torch.stack([torch.arange(NUM_USERS), items[:, 0]])
    scores = torch.randint(5, (NUM_USERS, NUM_ITEMS), generator=gen).float()
    return test_index, items[:, 1:], scores


def reference(test_index, negatives, scores, ks):
    """Plain-Python HR@K and NDCG@K, ties counted against the positive."""
    out = {f"{m}@{k}": 0.0 for m in ("hr", "ndcg") for k in ks}
    for column in range(test_index.size(1)):
        user, positive = test_index[:, column].tolist()
        rank = sum(scores[user, j] >= scores[user, positive] for j in negatives[column].tolist())
        for k in ks:
            if rank < k:
                out[f"hr@{k}"] += 1 / test_index.size(1)
                out[f"ndcg@{k}"] += 1 / math.log2(rank + 2) / test_index.size(1)
    return out


def table_scores(scores):
    def score_fn(users, items):
        return scores.to(users.device)[users.view(-1, 1), items]

    return score_fn


@pytest.mark.parametrize("batch_size", [1, 7, 4096])
def test_matches_bruteforce_reference(sampled, device, batch_size):
    test_index, negatives, scores = sampled
    ks = (1, 5, 10, 20, NUM_NEGATIVES + 1)
    evaluator = SampledRankingEvaluator(test_index, negatives, ks=ks, batch_size=batch_size, device=device)
    result = evaluator(table_scores(scores))
    expected = reference(test_index, negatives, scores, ks)
    assert result.keys() == expected.keys()
    for name, value in expected.items():
        assert result[name] == pytest.approx(value, abs=1e-12), name
    assert result[f"hr@{NUM_NEGATIVES + 1}"] == 1.0
    assert evaluator.num_eval_users == NUM_USERS and evaluator.num_candidates == NUM_NEGATIVES + 1


def test_the_means_are_the_same_to_the_last_bit_for_every_batch_size(sampled):
    # summed batch by batch, NDCG's mean was rounded as the batches split the users (a resume may change
    # eval_batch_size)
    test_index, negatives, scores = sampled
    results = [
        SampledRankingEvaluator(test_index, negatives, ks=(5, 10), batch_size=size)(table_scores(scores))
        for size in (1, 3, 7, 4096)
    ]
    assert all(result == results[-1] for result in results)


def test_columns_out_of_user_order_match_the_bruteforce_reference(sampled):
    """Each user is scored against the candidates of its own column, in whatever order the columns come."""
    test_index, negatives, scores = sampled
    order = torch.randperm(NUM_USERS, generator=torch.Generator().manual_seed(1))
    test_index, negatives = test_index[:, order], negatives[order]
    ks = (1, 5, 10)
    result = SampledRankingEvaluator(test_index, negatives, ks=ks, batch_size=7)(table_scores(scores))
    expected = reference(test_index, negatives, scores, ks)
    for name, value in expected.items():
        assert result[name] == pytest.approx(value, abs=1e-12), name


def test_ties_count_against_the_positive(sampled):
    test_index, negatives, _ = sampled
    evaluator = SampledRankingEvaluator(test_index, negatives, ks=(1, 10, 21))
    result = evaluator(lambda users, items: torch.zeros(items.shape))
    assert result["hr@1"] == result["hr@10"] == result["ndcg@10"] == 0.0
    assert result["hr@21"] == 1.0 and result["ndcg@21"] == pytest.approx(1 / math.log2(22))
    # One tied negative: rank 1.
    result = evaluator(lambda users, items: ((items == items[:, :1]) | (items == items[:, 1:2])).float())
    assert result["hr@1"] == 0.0 and result["ndcg@10"] == pytest.approx(1 / math.log2(3))
    nan_positive = evaluator(lambda users, items: torch.where(items == items[:, :1], float("nan"), 0.0))
    assert nan_positive["hr@10"] == 0.0


def test_perfect_scores(sampled):
    test_index, negatives, _ = sampled
    evaluator = SampledRankingEvaluator(test_index, negatives, ks=(1, 10))
    result = evaluator(lambda users, items: -torch.arange(21.0).expand_as(items))
    assert result == {"hr@1": 1.0, "hr@10": 1.0, "ndcg@1": 1.0, "ndcg@10": 1.0}


def test_score_fn_gets_users_and_candidates(sampled):
    test_index, negatives, _ = sampled
    seen = []

    def score_fn(users, items):
        seen.append((users.clone(), items.clone()))
        return torch.zeros(items.shape)

    SampledRankingEvaluator(test_index, negatives, ks=(5,), batch_size=16)(score_fn)
    assert [u.numel() for u, _ in seen] == [16, 16, 8]
    assert torch.equal(torch.cat([u for u, _ in seen]), test_index[0])
    items = torch.cat([i for _, i in seen])
    assert torch.equal(items[:, 0], test_index[1]) and torch.equal(items[:, 1:], negatives)


def test_every_column_counts_once_even_for_a_repeated_user(sampled):
    """A user with two (positive, negatives) columns is averaged in twice: one hit and one miss make 0.5."""
    _, negatives, _ = sampled
    test_index = torch.tensor([[0, 0], [1, 2]])
    candidates = torch.stack([negatives[0], negatives[0]])
    candidates = candidates[:, ~torch.isin(candidates[0], torch.tensor([1, 2]))]
    scores = torch.zeros(NUM_ITEMS)
    scores[1] = 1.0  # item 1 beats every negative, item 2 ties all of them
    evaluator = SampledRankingEvaluator(test_index, candidates, ks=(1,))
    result = evaluator(lambda users, items: scores[items])
    assert evaluator.num_eval_users == 2
    assert result == {"hr@1": 0.5, "ndcg@1": 0.5}


def test_ks_are_sorted_and_deduplicated(sampled):
    test_index, negatives, _ = sampled
    evaluator = SampledRankingEvaluator(test_index, negatives, ks=(20, 5, 20))
    assert evaluator.ks == (5, 20)
    assert evaluator.metric_names == ("hr@5", "hr@20", "ndcg@5", "ndcg@20")


def test_batches_are_made_on_the_given_device(sampled):
    """``device`` is where user and candidate batches are created, whatever device ``test_index`` is on."""
    test_index, negatives, _ = sampled
    evaluator = SampledRankingEvaluator(test_index, negatives, device="meta")
    seen = []

    class Seen(Exception):
        """Stops the evaluation at the first batch: meta tensors hold no values to rank."""

    def score_fn(users, items):
        seen.append((users.device, items.device))
        raise Seen

    with pytest.raises(Seen):
        evaluator(score_fn)
    assert evaluator.device == torch.device("meta")
    assert seen == [(torch.device("meta"), torch.device("meta"))]


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda t, n: SampledRankingEvaluator(t[0], n), r"test_index must have shape \[2, U\]"),
        (lambda t, n: SampledRankingEvaluator(t[[0, 1, 1]], n), r"shape \[2, U\], got \(3, 40\)"),
        (lambda t, n: SampledRankingEvaluator(t, n[:-1]), r"negatives must have shape \[U=40, N >= 1\]"),
        (lambda t, n: SampledRankingEvaluator(t, n[:, :0]), "negatives must have shape"),
        (lambda t, n: SampledRankingEvaluator(t, n.float()), "integer ids"),
        (lambda t, n: SampledRankingEvaluator(t.bool(), n), "integer ids"),
        (lambda t, n: SampledRankingEvaluator(t, n > 30), "integer ids"),
        (
            lambda t, n: SampledRankingEvaluator(t, n.where(n != n[0, 0], -1)),
            "negatives must hold ids >= 0, got -1",
        ),
        (lambda t, n: SampledRankingEvaluator(t - 1, n), "test_index must hold ids >= 0, got -1"),
        (
            lambda t, n: SampledRankingEvaluator(t, n, ks=(0,)),
            r"ks must be non-empty integers in \[1, candidates \(1 \+ negatives\)=21\]",
        ),
        (lambda t, n: SampledRankingEvaluator(t, n, ks=(22,)), "ks must be"),
        (lambda t, n: SampledRankingEvaluator(t, n, ks=(2.5,)), "ks must be"),
        (lambda t, n: SampledRankingEvaluator(t, n, batch_size=0), "batch_size must be an integer >= 1"),
        (
            lambda t, n: SampledRankingEvaluator(t, n, batch_size=2.5),
            "batch_size must be an integer >= 1, got 2.5",
        ),
        (
            lambda t, n: SampledRankingEvaluator(t, torch.cat([t[1:].t(), n[:, 1:]], dim=1)),
            "user 0's positive item .* is among its negatives",
        ),
    ],
)
def test_bad_arguments(sampled, build, message):
    test_index, negatives, _ = sampled
    with pytest.raises(ValueError, match=message):
        build(test_index, negatives)


def test_scores_that_are_no_tensor_fail_naming_the_type(sampled):
    test_index, negatives, scores = sampled
    evaluator = SampledRankingEvaluator(test_index, negatives)
    with pytest.raises(ValueError, match="score_fn must return a torch.Tensor, got ndarray"):
        evaluator(lambda users, items: table_scores(scores)(users, items).numpy())


def test_repr_names_the_users_and_candidates(sampled):
    test_index, negatives, _ = sampled
    evaluator = SampledRankingEvaluator(test_index, negatives, ks=(10, 5))
    assert repr(evaluator) == "SampledRankingEvaluator(num_eval_users=40, num_candidates=21, ks=(5, 10))"


def test_bad_score_shape(sampled):
    test_index, negatives, _ = sampled
    evaluator = SampledRankingEvaluator(test_index, negatives)
    with pytest.raises(ValueError, match=r"score_fn must return shape \(40, 21\), got \(40, 10\)"):
        evaluator(lambda users, items: torch.zeros(items.size(0), 10))


def leave_one_out_data():
    gen = torch.Generator().manual_seed(3)
    keys = torch.randperm(NUM_USERS * NUM_ITEMS, generator=gen)[:600].sort().values
    index = torch.stack([keys // NUM_ITEMS, keys % NUM_ITEMS])
    data = make_interaction_data(NUM_USERS, NUM_ITEMS, index[:, ::2], index[:, 1::2])
    return leave_one_out(data, num_negatives=NUM_NEGATIVES, validation=True, seed=1)


def test_from_data_and_most_popular(device):
    data = leave_one_out_data()
    store = data[EDGE]
    evaluator = SampledRankingEvaluator.from_data(data, ks=(3, 10), device=device)
    assert evaluator.num_eval_users == store.edge_label_index.size(1)
    assert evaluator.users.device.type == device.type
    score_fn = most_popular_scores(store.edge_index, NUM_ITEMS)
    popularity = torch.bincount(store.edge_index[1], minlength=NUM_ITEMS).float().expand(NUM_USERS, -1)
    expected = reference(store.edge_label_index, store.test_negatives, popularity, (3, 10))
    result = evaluator(score_fn)
    assert result == pytest.approx(expected)

    val = SampledRankingEvaluator.from_data(data, "val")
    assert val.num_eval_users == store.val_edge_label_index.size(1)
    assert val(score_fn) == pytest.approx(
        reference(store.val_edge_label_index, store.val_negatives, popularity, (10, 20))
    )


def test_evaluate_embeddings(sampled, device):
    test_index, negatives, _ = sampled
    gen = torch.Generator().manual_seed(4)
    user_emb, item_emb = torch.randn(NUM_USERS, 8, generator=gen), torch.randn(NUM_ITEMS, 8, generator=gen)
    evaluator = SampledRankingEvaluator(test_index, negatives, device=device)
    result = evaluator.evaluate_embeddings(user_emb.to(device), item_emb.to(device))
    assert result == pytest.approx(reference(test_index, negatives, user_emb @ item_emb.t(), (10, 20)))


def test_from_data_errors(small_data):
    with pytest.raises(ValueError, match=r"split=\'test\' needs \['test_negatives'\]"):
        SampledRankingEvaluator.from_data(small_data)
    data = leave_one_out(small_data, num_negatives=5)
    with pytest.raises(
        ValueError, match=r"needs \['val_edge_label_index', 'val_negatives'\].*validation=True"
    ):
        SampledRankingEvaluator.from_data(data, "val")
    with pytest.raises(ValueError, match=r"needs \['val_edge_label_index', 'val_negatives'\]"):
        SampledRankingEvaluator.from_data(data, "validation")
    with pytest.raises(ValueError, match=r"split must be 'test' or 'val' \(also 'validation'\), got 'train'"):
        SampledRankingEvaluator.from_data(data, "train")


def test_no_users():
    evaluator = SampledRankingEvaluator(
        torch.zeros(2, 0, dtype=torch.long), torch.zeros(0, 3, dtype=torch.long), ks=(2,)
    )
    assert evaluator(lambda users, items: torch.zeros(items.shape)) == {"hr@2": 0.0, "ndcg@2": 0.0}


@pytest.mark.parametrize("convert", [lambda ids: ids.numpy(), lambda ids: ids.tolist()])
def test_ids_that_are_no_tensor_fail_naming_the_argument(sampled, convert):
    test_index, negatives, _ = sampled
    with pytest.raises(ValueError, match="test_index must be a torch.Tensor, got"):
        SampledRankingEvaluator(convert(test_index), negatives)  # was an AttributeError of .dim()
    with pytest.raises(ValueError, match="negatives must be a torch.Tensor, got"):
        SampledRankingEvaluator(test_index, convert(negatives))


def test_complex_scores_fail_naming_the_dtype(sampled):
    test_index, negatives, scores = sampled
    evaluator = SampledRankingEvaluator(test_index, negatives)
    score_fn = table_scores(scores.to(torch.complex64))  # failed inside torch's "<"
    with pytest.raises(ValueError, match="score_fn must return real-valued scores, got torch.complex64"):
        evaluator(score_fn)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        # an id past a table was an IndexError inside the first batch
        (lambda u, i: (u[:-1], i), rf"ids below {NUM_USERS - 1} users .*got users up to {NUM_USERS - 1}"),
        (lambda u, i: (u, i[:-1]), rf"ids below {NUM_USERS} users and {NUM_ITEMS - 1} items"),
        # these failed inside torch.bmm
        (lambda u, i: (u, i[:, :-1]), "same width, dtype and device"),
        (lambda u, i: (u.double(), i), "same width, dtype and device"),
        (lambda u, i: (u, i.numpy()), "item_emb must be a 2-D floating-point torch.Tensor, got ndarray"),
    ],
)
def test_embeddings_that_do_not_fit_fail_naming_them(sampled, make, match):
    test_index, negatives, _ = sampled
    assert int(test_index[0].max()) == NUM_USERS - 1 and int(negatives.max()) == NUM_ITEMS - 1
    user_emb, item_emb = make(torch.randn(NUM_USERS, 8), torch.randn(NUM_ITEMS, 8))
    evaluator = SampledRankingEvaluator(test_index, negatives)
    with pytest.raises(ValueError, match=match):
        evaluator.evaluate_embeddings(user_emb, item_emb)


def test_a_negative_given_twice_is_refused(sampled):
    test_index, negatives, _ = sampled
    negatives[3, 5] = negatives[3, 0]  # it outranked the positive twice, as two items would
    with pytest.raises(
        ValueError, match=rf"user 3's negatives hold item {int(negatives[3, 0])} more than once"
    ):
        SampledRankingEvaluator(test_index, negatives)
