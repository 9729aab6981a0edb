"""The Recommender contract for NeuMF, ConvNCF, CDAE and MultVAE on a tiny generated graph."""

import copy as copy_module
import io
import math
import weakref

import pytest
import torch

from dslgraph.data import EDGE, make_interaction_data
from dslgraph.nn.base import dense_rows
from dslgraph.nn.cdae import CDAE
from dslgraph.nn.convncf import ConvNCF
from dslgraph.nn.multvae import MultVAE
from dslgraph.nn.neumf import NeuMF
from dslgraph.sparse import SparseEmbedding, SparseLinear
from dslgraph.sparse.dsl import DynamicSparseLearning

NUM_USERS, NUM_ITEMS = 30, 40  # the small_data fixture
MODELS = {
    "neumf": lambda **kw: NeuMF(NUM_USERS, NUM_ITEMS, embedding_dim=4, mlp_layers=(8, 8, 4), **kw),
    "convncf": lambda **kw: ConvNCF(NUM_USERS, NUM_ITEMS, embedding_dim=8, channels=4, **kw),
    "cdae": lambda **kw: CDAE(NUM_USERS, NUM_ITEMS, hidden_channels=8, **kw),
    "multvae": lambda **kw: MultVAE(NUM_USERS, NUM_ITEMS, hidden_channels=16, latent_dim=4, **kw),
}


def make(name: str, device: str | torch.device = "cpu", **kwargs):
    torch.manual_seed(0)
    return MODELS[name](**kwargs).to(device)


def batch(model, data, device, size: int = 16):
    """A fixed training batch of the model's kind."""
    if model.batch_kind == "users":
        return (torch.arange(size, device=device),)
    users, pos = data[EDGE].edge_index[:, :size].to(device)
    shape = (size,) if model.num_negatives == 1 else (size, model.num_negatives)
    neg = torch.randint(NUM_ITEMS, shape, generator=torch.Generator().manual_seed(2)).to(device)
    return users, pos, neg


@pytest.mark.parametrize("name", MODELS)
def test_scores_full_and_candidates(name, small_data, device):
    model = make(name, device).eval()
    graph = model.input_graph(small_data).to(device)
    loss = model.loss(graph, *batch(model, small_data, device), reg_weight=1e-3)
    assert loss.dim() == 0 and torch.isfinite(loss)
    score = model.scorer(graph)
    users = torch.tensor([0, 3, 7, 29], device=device)
    full = score(users)
    assert full.shape == (4, NUM_ITEMS)
    items = torch.randint(NUM_ITEMS, (4, 6), generator=torch.Generator().manual_seed(3)).to(device)
    candidates = score(users, items)
    assert candidates.shape == (4, 6)
    torch.testing.assert_close(candidates, full.gather(1, items), atol=1e-5, rtol=1e-5)
    assert model.recommend(graph, users, k=5).shape == (4, 5)


@pytest.mark.parametrize("name", ["neumf", "convncf"])
def test_pair_scorer_matches_forward_in_any_block_size(name, small_data):
    model = make(name).eval()
    graph = model.input_graph(small_data)
    users = torch.arange(NUM_USERS)
    full = model.scorer(graph)(users)
    torch.testing.assert_close(full, model(users, torch.arange(NUM_ITEMS).expand(NUM_USERS, -1)))
    model.block_pairs = 7  # fewer pairs than one user's row: one user per block
    torch.testing.assert_close(model.scorer(graph)(users), full)


@pytest.mark.parametrize("name", MODELS)
def test_loss_decreases(name, small_data):
    model = make(name)
    graph = model.input_graph(small_data)
    data = batch(model, small_data, torch.device("cpu"))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)

    def eval_loss() -> float:
        model.eval()
        with torch.no_grad():
            return float(model.loss(graph, *data))

    before = eval_loss()
    model.train()
    for _ in range(30):
        optimizer.zero_grad()
        model.loss(graph, *data).backward()
        optimizer.step()
    assert eval_loss() < before


@pytest.mark.parametrize("backend", ["sparse", "masked"])
@pytest.mark.parametrize("name", MODELS)
def test_trains_under_dsl_with_fixed_budget(name, backend, small_data, device):
    model = make(name, device)
    graph = model.input_graph(small_data).to(device)
    dsl = DynamicSparseLearning(model, 0.5, 20, targets=model.dsl_targets, update_interval=2, backend=backend)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    dsl.attach(optimizer)
    counts = dsl.active_counts()
    assert dsl.achieved_sparsity() == pytest.approx(0.5, abs=0.02)
    for step in range(6):
        optimizer.zero_grad()
        loss = model.loss(graph, *batch(model, small_data, device, size=8 + step), reg_weight=1e-4)
        assert torch.isfinite(loss)
        loss.backward()
        optimizer.step()
        dsl.step()
        assert dsl.active_counts() == counts
    assert len(dsl.updates) == 3 and all(update["changed"] for update in dsl.updates)
    model.eval()
    assert torch.isfinite(model.scorer(graph)(torch.arange(4, device=device))).all()
    for part in ("train_iteration", "inference"):
        dense, executed, ideal = (model.macs(graph, 16, c)[part] for c in ("dense", "executed", "ideal"))
        assert dense >= executed >= ideal > 0
        assert ideal < dense


def dense_state(model) -> dict:
    """``model``'s state with every genuinely sparse weight as a dense tensor (masks dropped)."""
    state = {k: v for k, v in model.state_dict().items() if not k.endswith(("values", "positions", "_mask"))}
    for name, module in model.named_modules():
        if isinstance(module, SparseLinear):
            state[f"{name}.weight"] = module.weight.detach()
        elif isinstance(module, SparseEmbedding) and not name.endswith("sparse_weight"):
            state[f"{name}.weight"] = module.to_dense().detach()
    return state


@pytest.mark.parametrize("targets", ["default", "every weight"])
@pytest.mark.parametrize("name", MODELS)
def test_genuinely_sparse_model_scores_like_its_dense_twin(name, targets, small_data, device):
    sparse = make(name, device)
    chosen = sparse.dsl_targets if targets == "default" else [r".*weight"]  # tables' weights included
    DynamicSparseLearning(sparse, 0.6, 10, targets=chosen)
    if targets == "every weight":
        assert any(isinstance(module, SparseLinear) for module in sparse.modules())
    dense = make(name, device)
    dense.load_state_dict(dense_state(sparse))
    graph = sparse.input_graph(small_data).to(device)
    sparse.eval(), dense.eval()
    users = torch.tensor([0, 3, 7, 29], device=device)
    items = torch.randint(NUM_ITEMS, (4, 6), generator=torch.Generator().manual_seed(3)).to(device)
    for candidates in (None, items):
        torch.testing.assert_close(
            sparse.scorer(graph)(users, candidates),
            dense.scorer(graph)(users, candidates),
            atol=1e-5,
            rtol=1e-5,
        )


@pytest.mark.parametrize("name", ["cdae", "multvae"])
def test_reset_parameters_after_dsl_keeps_the_budget(name):
    model = make(name)
    dsl = DynamicSparseLearning(model, 0.5, 10, targets=[r".*weight"])
    counts = dsl.active_counts()
    layers = [layer for layer in model.modules() if isinstance(layer, SparseLinear)]
    before = [layer.sparse_weight.values.detach().clone() for layer in layers]
    model.reset_parameters()
    after = [layer.sparse_weight.values for layer in layers]
    assert dsl.active_counts() == counts and len(after) == len(before) > 0
    assert all(not torch.equal(b, a) and a.abs().sum() > 0 for b, a in zip(before, after))


@pytest.mark.parametrize("name", MODELS)
def test_macs_of_a_dense_model_agree(name, small_data):
    model = make(name)
    graph = model.input_graph(small_data)
    counts = [model.macs(graph, 16, count) for count in ("dense", "executed", "ideal")]
    assert counts[0] == counts[1] == counts[2]
    assert counts[0]["train_iteration"] > 0 and counts[0]["inference"] > 0
    with pytest.raises(ValueError, match="count"):
        model.macs(graph, 16, "naive")


def test_neumf_matches_the_concatenated_formulation():
    model = make("neumf").eval()
    users, items = torch.tensor([0, 1, 2]), torch.tensor([3, 4, 5])
    h = torch.cat([model.mlp_user(users), model.mlp_item(items)], dim=1)
    for layer in model.mlp:
        h = torch.relu(layer(h))
    gmf = model.gmf_user(users) * model.gmf_item(items)
    expected = model.predict(torch.cat([gmf, h], dim=1)).squeeze(1)
    torch.testing.assert_close(model(users, items), expected)


def test_neumf_macs_formula():
    model = NeuMF(NUM_USERS, NUM_ITEMS)  # emb 16, MLP 32 -> 32 -> 16 -> 8
    macs = model.macs(None, 10, "dense")
    first, per_user, per_pair = 16 * 32, 16, 16 + (32 * 16 + 16 * 8) + 8
    assert macs["train_forward"] == 10 * (first + per_user) + 50 * (first + per_pair)
    users, items = NUM_USERS * (first + per_user), NUM_ITEMS * first
    assert macs["inference"] == users + items + NUM_USERS * NUM_ITEMS * per_pair


def test_convncf_default_architecture():
    model = ConvNCF(NUM_USERS, NUM_ITEMS)
    assert len(model.convs) == 6 and model.convs[0].in_channels == 1
    per_pair = 64 * 64 + 1024 * 32 * 4 + (256 + 64 + 16 + 4 + 1) * 32 * 32 * 4 + 32
    assert model.macs(None, 1, "dense")["per_pair"] == per_pair
    scores = model(torch.tensor([0, 1]), torch.tensor([[2, 3, 4], [5, 6, 7]]))
    assert scores.shape == (2, 3)


def test_dsl_targets_are_the_authors_choices():
    neumf = make("neumf")
    dsl = DynamicSparseLearning(neumf, 0.5, 10, targets=neumf.dsl_targets)
    assert sorted(t.name for t in dsl.targets) == ["mlp_item", "mlp_user"]
    assert type(neumf.gmf_user).__name__ == "DenseEmbedding"
    assert type(neumf.mlp_user).__name__ == "SparseEmbedding"
    vae = make("multvae")
    dsl = DynamicSparseLearning(vae, 0.5, 10, targets=vae.dsl_targets)
    assert len(dsl.targets) == 8  # four weights and four biases
    assert vae.encoder[0].bias_mask.shape == vae.encoder[0].bias.shape
    assert int(vae.encoder[0].bias_mask.sum()) == 8
    cdae = make("cdae")
    dsl = DynamicSparseLearning(cdae, 0.5, 10, targets=cdae.dsl_targets)
    assert sorted(t.name for t in dsl.targets) == ["encoder.weight", "user_embedding"]


@pytest.mark.parametrize("name", ["cdae", "multvae"])
def test_user_rows_match_the_training_interactions(name, small_data):
    graph = make(name).input_graph(small_data)
    user, item = small_data[EDGE].edge_index
    expected = torch.zeros(NUM_USERS, NUM_ITEMS)
    expected[user, item] = 1.0
    users = torch.tensor([5, 0, 17, 5])
    torch.testing.assert_close(dense_rows(graph, users), expected[users])


def test_multvae_anneal_counter_resumes(small_data):
    model = make("multvae", total_anneal_steps=100, anneal_cap=0.05)
    graph = model.input_graph(small_data)
    users = torch.arange(8)
    for _ in range(3):
        model.loss(graph, users)
    assert int(model.anneal_step) == 3 and model.beta() == pytest.approx(0.03)
    model.eval()
    model.loss(graph, users)  # evaluation does not advance the schedule
    resumed = make("multvae", total_anneal_steps=100, anneal_cap=0.05)
    resumed.load_state_dict(model.state_dict())
    assert int(resumed.anneal_step) == 3 and resumed.beta() == model.beta()
    for _ in range(3):
        resumed.loss(graph, users)
    assert resumed.beta() == 0.05  # 0.06 capped


def test_convncf_pretrains_as_mf_then_trains_the_cnn(small_data):
    model = make("convncf", pretrain_steps=2)
    users, pos, neg = batch(model, small_data, "cpu")
    user_rows, item_rows = model.user_embedding(users), model.item_embedding(torch.stack([pos, neg], 1))
    dot = (user_rows.unsqueeze(1) * item_rows).sum(-1)
    expected = torch.nn.functional.softplus(dot[:, 1] - dot[:, 0]).mean()
    torch.testing.assert_close(model.loss(None, users, pos, neg), expected)  # MF-BPR, no CNN
    model.eval()
    model.loss(None, users, pos, neg)  # evaluation does not count
    model.train()
    resumed = make("convncf", pretrain_steps=2)
    resumed.load_state_dict(model.state_dict())
    for step in range(2):  # the second pre-training iteration, then the first of the CNN
        resumed.zero_grad()
        resumed.loss(None, users, pos, neg).backward()
        assert (resumed.convs[0].weight.grad is None) == (step == 0)
    assert int(resumed.pretrained_steps) == 2 and not resumed.pretraining()
    with pytest.raises(ValueError, match="pretrain_steps"):
        make("convncf", pretrain_steps=-1)


def test_multvae_samples_only_in_training(small_data):
    model = make("multvae")
    rows = dense_rows(model.input_graph(small_data), torch.arange(4))
    model.eval()
    torch.testing.assert_close(model(rows)[0], model(rows)[0])
    model.train()
    assert not torch.allclose(model(rows)[0], model(rows)[0])


def test_bad_arguments_and_repr():
    with pytest.raises(ValueError, match="mlp_layers"):
        NeuMF(3, 4, mlp_layers=(7, 4))
    with pytest.raises(ValueError, match="power of two"):
        ConvNCF(3, 4, embedding_dim=48)
    with pytest.raises(ValueError, match="corruption"):
        CDAE(3, 4, corruption=1.0)
    with pytest.raises(ValueError, match="total_anneal_steps"):
        MultVAE(3, 4, total_anneal_steps=0)
    for name in MODELS:
        text = repr(make(name))
        assert "\n" not in text and text.startswith(type(make(name)).__name__)
    assert math.isclose(NeuMF(3, 4).dropout.p, 0.2)


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: NeuMF(3, 4, dropout=1.0), "dropout"),
        (lambda: NeuMF(3, 4, dropout=-0.1), "dropout"),
        (lambda: NeuMF(3, 4, mlp_layers=(8, -4)), "mlp_layers"),
        (lambda: NeuMF(3, 4, embedding_dim=0), "embedding_dim"),
        (lambda: ConvNCF(3, 4, embedding_dim=8, channels=0), "channels"),
        (lambda: CDAE(3, 4, hidden_channels=0), "hidden_channels"),
        (lambda: CDAE(3, -4), "num_items"),
        (lambda: MultVAE(3, 4, dropout=1.0), "dropout"),
        (lambda: MultVAE(3, 4, latent_dim=-1), "latent_dim"),
        (lambda: MultVAE(3, 4, hidden_channels=0), "hidden_channels"),
        (lambda: MultVAE(3, 4, anneal_cap=-0.1), "anneal_cap"),
        (lambda: MultVAE(3, 4, anneal_cap=float("nan")), "anneal_cap"),  # every loss was NaN
        (lambda: NeuMF(3, 4, block_pairs=0), "block_pairs"),  # scored one pair a block
        (lambda: ConvNCF(3, 4, embedding_dim=8, block_pairs=-1), "block_pairs"),
        (lambda: CDAE(3, 4, hidden_channels=2.5), r"hidden_channels must be an integer >= 1, got 2\.5"),
    ],
)
def test_bad_sizes_and_probabilities_name_the_argument(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_recommend_rejects_k_beyond_the_catalogue(small_data):
    model = make("cdae").eval()
    graph = model.input_graph(small_data)
    assert model.recommend(graph, torch.arange(3), k=NUM_ITEMS).shape == (3, NUM_ITEMS)
    for k in (0, NUM_ITEMS + 1):
        with pytest.raises(ValueError, match="k must be in"):
            model.recommend(graph, torch.arange(3), k=k)


def test_convncf_reset_parameters_restarts_pretraining(small_data):
    model = make("convncf", pretrain_steps=1)
    model.loss(None, *batch(model, small_data, "cpu"))
    assert not model.pretraining()
    model.reset_parameters()  # fresh tables: MF-BPR pre-training again
    assert int(model.pretrained_steps) == 0 and model.pretraining()


@pytest.mark.parametrize("name", MODELS)
def test_recommend_excludes_training_items_of_a_repeated_user(name, small_data, device):
    model = make(name, device).eval()
    graph = model.input_graph(small_data).to(device)
    train = small_data[EDGE].edge_index  # ids and exclusions on the CPU, as a caller holds them
    users = torch.tensor([2, 2, 5, 2])
    top = model.recommend(graph, users, k=10, exclude=train)
    seen = set(zip(train[0].tolist(), train[1].tolist()))
    assert not any((u, i) in seen for u, row in zip(users.tolist(), top.tolist()) for i in row)
    assert torch.equal(top[0], top[1]) and torch.equal(top[0], top[3])


@pytest.mark.parametrize("name", MODELS)
def test_recommend_scores_batch_size_users_at_a_time(name, small_data, monkeypatch):
    """All of Amazon-book's users at once were 19 GB of scores (and a 4.8 GB mask of their exclusions):
    ``batch_size`` users are scored at a time, with the same recommendations."""
    model = make(name).eval()
    graph = model.input_graph(small_data)
    train = small_data[EDGE].edge_index
    users = torch.tensor([2, 2, 5, 2, 0, 29, 7, 5, 11, 3])
    whole = model.recommend(graph, users, k=10, exclude=train, batch_size=len(users))
    scorer, scored, returned = model.scorer, [], []

    def counting_scorer(graph):
        score = scorer(graph)

        def count(users, items=None):
            assert all(ref() is None for ref in returned), "the previous block's scores are still held"
            scored.append(users.numel())
            scores = score(users, items)
            returned.append(weakref.ref(scores))
            return scores

        return count

    monkeypatch.setattr(model, "scorer", counting_scorer)
    assert torch.equal(model.recommend(graph, users, k=10, exclude=train, batch_size=3), whole)
    assert scored == [3, 3, 3, 1]
    unexcluded = model.recommend(graph, users, k=10, batch_size=len(users))
    assert torch.equal(model.recommend(graph, users, k=10, batch_size=4), unexcluded)
    assert model.recommend(graph, users[:0], k=10, exclude=train, batch_size=3).shape == (0, 10)
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        model.recommend(graph, users, k=10, batch_size=0)


@pytest.mark.parametrize("user", [-1, NUM_USERS])
def test_recommend_rejects_unknown_users(user, small_data):
    model = make("multvae").eval()
    with pytest.raises(ValueError, match="users must be ids in"):
        model.recommend(model.input_graph(small_data), torch.tensor([0, user]), k=3)


@pytest.mark.parametrize(
    "users",
    [[0, 1], torch.tensor(0), torch.tensor([[0, 1]]), torch.tensor([0.0]), torch.tensor([True, False])],
)
def test_recommend_takes_a_1d_tensor_of_ids(users, small_data):
    model = make("cdae").eval()  # a list failed comparing it with 0; a 0-dim tensor deep in the model
    with pytest.raises(ValueError, match="users must be a 1-D tensor of integer ids"):
        model.recommend(model.input_graph(small_data), users, k=3)


@pytest.mark.parametrize(
    ("exclude", "match"),
    [
        (lambda train: train.T[:50], r"\[2, E\] index"),  # pairs as rows: silently ignored, it was
        (lambda train: train[0], r"\[2, E\] index"),
        (lambda train: torch.tensor([[-1], [0]]), "outside"),  # excluded item 0 of user 29
        (lambda train: torch.tensor([[0], [NUM_ITEMS]]), "outside"),
        (lambda train: train.float(), r"\[2, E\] index"),  # failed deep in torch's indexing
        (lambda train: train.tolist(), r"\[2, E\] index"),
    ],
)
def test_recommend_rejects_a_bad_exclude_index(exclude, match, small_data):
    model = make("cdae").eval()
    with pytest.raises(ValueError, match=match):
        model.recommend(
            model.input_graph(small_data), torch.tensor([0, 29]), 3, exclude(small_data[EDGE].edge_index)
        )


def test_recommend_excludes_in_the_scorers_own_scores_and_copies_shared_ones(small_data):
    """recommend wrote the exclusions into a copy of every block's scores (twice a block's memory): it
    writes into the scores the scorer returns, as the ranking evaluator does, and copies only scores a
    write could spread from (a row of a stored score matrix)."""
    model = make("cdae").eval()
    graph = model.input_graph(small_data)
    train = small_data[EDGE].edge_index
    users = torch.tensor([2, 5, 2])
    stored = model.scorer(graph)(torch.arange(NUM_USERS))
    kept = stored.clone()
    returned = []

    def own(graph):
        def score(users, items=None):
            returned.append(stored[users])  # indexed by a tensor: a tensor of its own
            return returned[-1]

        return score

    def shared(graph):
        return lambda users, items=None: stored[users.item()].unsqueeze(0)  # a view of a stored row

    expected = model.recommend(graph, users, k=10, exclude=train)
    model.scorer = own
    assert torch.equal(model.recommend(graph, users, k=10, exclude=train), expected)
    (scores,) = returned
    seen = scores == float("-inf")
    assert seen.sum() == sum(int((train[0] == user).sum()) for user in users.tolist()) > 0
    model.scorer = shared
    assert torch.equal(model.recommend(graph, users, k=10, exclude=train, batch_size=1), expected)
    assert torch.equal(stored, kept)


def test_neumf_scores_without_dropout_in_training_mode(small_data):
    model = make("neumf", dropout=0.5).train()  # e.g. recommend() called right after a training step
    graph = model.input_graph(small_data)
    users = torch.arange(NUM_USERS)
    scores = model.scorer(graph)(users)
    torch.testing.assert_close(model.scorer(graph)(users), scores)
    torch.testing.assert_close(model.eval().scorer(graph)(users), scores)


@pytest.mark.parametrize("cls", [MultVAE, CDAE])
def test_training_macs_are_the_products_an_iteration_runs(small_data, cls):
    """Backward multiplies twice per linear layer but once for the first, whose input (the
    interaction row) needs no gradient: counting it three times over-charged MultVAE by ~18%."""
    from torch.utils.flop_counter import FlopCounterMode

    torch.manual_seed(0)
    model = cls(30, 40)
    graph = model.input_graph(small_data)
    users = torch.arange(16)
    with FlopCounterMode(display=False) as counter:
        model.loss(graph, users).backward()
    assert counter.get_total_flops() / 2 == model.macs(graph, 16, "dense")["train_iteration"]


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize(
    ("users", "items", "match"),
    [
        ([-1], None, r"users must be ids in \[0, num_users=30\), got \[-1\]"),  # the last user's scores
        ([NUM_USERS], None, "users must be ids in"),
        ([0.0], None, "users must be a 1-D tensor of integer ids"),
        ([0], [[2, -1]], r"items must be ids in \[0, num_items=40\), got \[-1\]"),  # the last item's
        ([0], [[NUM_ITEMS]], "items must be ids in"),
        ([0, 1], [2, 3], r"items must have shape \[B, C\] for B = 2 users"),
        ([0, 1], [[2, 3]], r"items must have shape \[B, C\] for B = 2 users"),
    ],
)
def test_scores_refuse_ids_outside_the_tables_and_other_shapes(name, users, items, match, small_data):
    model = make(name).eval()
    score = model.scorer(model.input_graph(small_data))
    with pytest.raises(ValueError, match=match):
        score(torch.tensor(users), None if items is None else torch.tensor(items))


@pytest.mark.parametrize("name", ["neumf", "convncf"])
@pytest.mark.parametrize(
    ("users", "items", "match"),
    [
        ([-1], [0], "users must be ids in"),
        ([0], [-1], "items must be ids in"),  # scored the last item, silently
        ([0], [NUM_ITEMS], "items must be ids in"),
        ([0, 1], [2, 3, 4, 5], r"items must have shape \[B\] or \[B, C\]"),  # paired as [2, 2], silently
    ],
)
def test_forward_refuses_ids_outside_the_tables_and_other_shapes(name, users, items, match):
    with pytest.raises(ValueError, match=match):
        make(name)(torch.tensor(users), torch.tensor(items))


def test_cdae_forward_refuses_users_outside_the_table():
    with pytest.raises(ValueError, match="users must be ids in"):
        make("cdae")(torch.zeros(1, NUM_ITEMS), torch.tensor([-1]))  # the last user's vector, silently


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("sizes", [(NUM_USERS, NUM_ITEMS + 1), (NUM_USERS - 1, NUM_ITEMS)])
def test_the_graph_of_data_of_other_sizes_is_refused(name, sizes):
    """CDAE and MultVAE failed deep in a product, NeuMF and ConvNCF took it silently."""
    data = make_interaction_data(*sizes, torch.tensor([[0, 1], [1, 2]]), torch.tensor([[0], [0]]))
    with pytest.raises(ValueError, match=rf"the data has {sizes[0]} users and {sizes[1]} items, the model"):
        make(name).input_graph(data)


@pytest.mark.parametrize("name", MODELS)
def test_a_double_precision_model_takes_its_graph_in_double(name, small_data):
    # CDAE's and MultVAE's float32 interaction matrix failed "mat1 and mat2 must have the same dtype"
    single, double = make(name).eval(), make(name).double().eval()
    graph = double.input_graph(small_data)
    scores = double.scorer(graph)(torch.arange(4))
    assert scores.dtype == torch.float64
    expected = single.scorer(single.input_graph(small_data))(torch.arange(4))
    torch.testing.assert_close(scores.float(), expected, rtol=1e-4, atol=1e-5)
    double.train().loss(graph, *batch(double, small_data, "cpu")).backward()


@pytest.mark.parametrize("backend", [None, "sparse", "masked"])
@pytest.mark.parametrize("name", MODELS)
def test_a_whole_model_pickles_and_copies(name, backend, small_data):
    """torch.save(model) and pickle failed on ConvNCF's load-state-dict hook, a lambda."""
    model = make(name)
    if backend is not None:
        DynamicSparseLearning(model, 0.5, 10, targets=model.dsl_targets, backend=backend)
    graph = model.input_graph(small_data)
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    users = torch.arange(NUM_USERS)
    expected = model.eval().scorer(graph)(users)
    for copy in (torch.load(buffer, weights_only=False), copy_module.deepcopy(model)):
        torch.testing.assert_close(copy.eval().scorer(graph)(users), expected, rtol=0, atol=0)
        copy.load_state_dict(model.state_dict())  # with the hooks that loading runs
