"""The Recommender contract for NeuMF, ConvNCF, CDAE and MultVAE on a tiny generated graph."""

import copy as copy_module
import io
import math
import weakref

import pytest
import torch

from dslgraph.data import EDGE, make_interaction_data, propagation_graph
from dslgraph.nn.base import dense_rows, interaction_matrix
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


@pytest.mark.parametrize("name", ["neumf", "convncf"])  # ConvNCF without pre-training
def test_reset_parameters_draws_what_the_constructor_drew(name):
    """Tables from normal(0, std), linear and convolution layers as torch draws them."""
    fresh, model = make(name, std=0.2), MODELS[name](std=0.2)
    torch.manual_seed(0)
    model.reset_parameters()
    for name, value in fresh.state_dict().items():
        assert torch.equal(model.state_dict()[name], value), name


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
    assert all(conv.bias is not None for conv in model.convs)
    per_pair = 64 * 64 + 1024 * 32 * 4 + (256 + 64 + 16 + 4 + 1) * 32 * 32 * 4 + 32
    assert model.macs(None, 1, "dense")["per_pair"] == per_pair
    assert model.macs(None, 5, "dense")["train_forward"] == 5 * 2 * per_pair  # each positive and negative
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
        (lambda: NeuMF(3, 4, mlp_layers=(8,)), "mlp_layers"),  # no MLP layer to fuse
        (lambda: NeuMF(3, 4, mlp_layers=(8, 0)), "mlp_layers"),  # an MLP branch of width 0
        (lambda: NeuMF(3, 4, mlp_layers=(32, 16.5)), r"integer widths.*16\.5"),  # TypeError in torch.empty
        (lambda: NeuMF(3, 4, mlp_layers=8), "mlp_layers needs >= 2"),  # TypeError in len()
        (lambda: ConvNCF(3, 4, embedding_dim=1), "power of two >= 2"),  # no convolution to read
        (lambda: MultVAE(3, 4, anneal_cap="0.2"), "anneal_cap"),  # TypeError in the comparison
        (lambda: MultVAE(3, 4, anneal_cap=True), "anneal_cap"),
    ],
)
def test_bad_sizes_and_probabilities_name_the_argument(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_recommend_rejects_k_beyond_the_catalogue_or_not_an_integer(small_data):
    model = make("cdae").eval()
    graph = model.input_graph(small_data)
    assert model.recommend(graph, torch.arange(3), k=NUM_ITEMS).shape == (3, NUM_ITEMS)
    for k in (0, NUM_ITEMS + 1, 2.0, True):  # 2.0 and True failed inside topk with a TypeError
        with pytest.raises(ValueError, match=r"k must be an integer in \[1, num_items=40\]"):
            model.recommend(graph, torch.arange(3), k=k)


@pytest.mark.parametrize("name", ["cdae", "multvae"])
def test_a_row_model_refuses_the_data_or_another_graph_and_rows_of_another_width(name, small_data):
    model = make(name).eval()
    with pytest.raises(TypeError, match=r"model.input_graph\(data\) builds, .*not a HeteroData"):
        model.recommend(small_data, torch.arange(3), 5)  # 'HeteroData' has no attribute 'crow_indices'
    with pytest.raises(ValueError, match=r"the graph is \[70, 70\], .* built for a \[30, 40\] one"):
        model.scorer(propagation_graph(small_data))  # mat1 and mat2 shapes cannot be multiplied
    rows = dense_rows(model.input_graph(small_data), torch.arange(3))
    forward = (lambda r: model(r, torch.arange(3))) if name == "cdae" else model
    for bad in (rows[:, :10], rows.long(), rows[0]):  # failed inside torch
        with pytest.raises(ValueError, match=r"rows must be a floating-point \[.*, num_items=40\] tensor"):
            forward(bad)


def test_cdae_refuses_rows_of_another_number_of_users(small_data):
    model = make("cdae").eval()
    rows = dense_rows(model.input_graph(small_data), torch.arange(3))
    for bad_rows, users in ((rows[:1], torch.arange(3)), (rows, torch.arange(1))):  # broadcast silently
        with pytest.raises(ValueError, match=r"rows must be a floating-point \[\d, num_items=40\]"):
            model(bad_rows, users)
    graph = model.input_graph(small_data)
    torch.testing.assert_close(
        model(graph, torch.arange(NUM_USERS)), model.scorer(graph)(torch.arange(NUM_USERS))
    )


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


@pytest.mark.parametrize("name", ["cdae", "neumf"])
def test_recommend_for_no_users_is_an_empty_list_of_each_k(name, small_data):
    model = make(name).eval()
    graph = model.input_graph(small_data)
    users = torch.zeros(0, dtype=torch.long)
    for exclude in (None, small_data[EDGE].edge_index):
        top = model.recommend(graph, users, k=3, exclude=exclude, batch_size=2)
        assert top.shape == (0, 3) and top.dtype == torch.long


@pytest.mark.parametrize(
    ("exclude", "match"),
    [
        (
            lambda train: train.T[:50],
            r"\[2, E\] tensor of integer",
        ),  # pairs as rows: silently ignored, it was
        (lambda train: train[0], r"\[2, E\] tensor of integer"),
        (lambda train: torch.tensor([[-1], [0]]), "must hold users in"),  # excluded item 0 of user 29
        (lambda train: torch.tensor([[0], [NUM_ITEMS]]), "must hold users in"),
        (lambda train: torch.tensor([[NUM_USERS], [0]]), "must hold users in"),
        (lambda train: train.float(), r"\[2, E\] tensor of integer"),  # failed deep in torch's indexing
        (lambda train: train.tolist(), r"\[2, E\] tensor of integer"),
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


@pytest.mark.parametrize("name", MODELS)
def test_scores_without_dropout_in_training_mode(name, small_data):
    """A model still in training mode (recommend() right after a training step) scores as it evaluates:
    no dropout (NeuMF), the uncorrupted row (CDAE), no input dropout and the mean code (MultVAE)."""
    model = make(name).train()
    graph = model.input_graph(small_data)
    users = torch.arange(NUM_USERS)
    items = torch.randint(NUM_ITEMS, (NUM_USERS, 5), generator=torch.Generator().manual_seed(3))
    scores = model.scorer(graph)(users)
    candidates = model.scorer(graph)(users, items)  # the candidates' path too
    torch.testing.assert_close(model.scorer(graph)(users), scores)
    torch.testing.assert_close(model.scorer(graph)(users, items), candidates)
    torch.testing.assert_close(model.eval().scorer(graph)(users), scores)
    torch.testing.assert_close(candidates, scores.gather(1, items), atol=1e-5, rtol=1e-5)


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
        # PyG's LightGCN numbers items after the users: node ids here, said so
        ([0], [[NUM_USERS + 12, NUM_USERS + 39]], r"got \[42, 69\] \(node ids\? items are numbered from 0"),
        ([0], [[2, NUM_ITEMS]], r"got \[40\]$"),  # not all in the node ids' range: no such hint
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


def pair_batch(model, data):
    """A training batch of ``model`` (pairs) and its ``[B, 1 + K]`` items, the positive first."""
    users, pos, neg = batch(model, data, "cpu")
    return (users, pos, neg), torch.cat([pos.view(-1, 1), neg.view(users.numel(), -1)], dim=1)


def test_neumf_loss_is_bce_of_the_positive_and_l2_on_all_four_tables(small_data):
    """Binary cross-entropy with label 1 on the positive and 0 on its negatives, plus ``reg_weight`` x
    L2 (1/2B sum of squares) on the batch's rows of the GMF and MLP user and item tables."""
    model = make("neumf", std=1.0).eval()  # no dropout: the logits are forward's; pairs' logits far apart
    (users, pos, neg), items = pair_batch(model, small_data)
    logits = model(users, items)
    labels = torch.zeros_like(logits)
    labels[:, 0] = 1.0
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)
    torch.testing.assert_close(model.loss(None, users, pos, neg), bce)
    rows = [model.gmf_user(users), model.mlp_user(users), model.gmf_item(items), model.mlp_item(items)]
    penalty = sum(r.pow(2).sum() for r in rows) / (2 * users.numel())
    torch.testing.assert_close(model.loss(None, users, pos, neg, reg_weight=0.5), bce + 0.5 * penalty)


def test_neumf_drops_out_after_every_mlp_layer_in_training_only():
    """Dropout follows each MLP layer (the first one's split user + item parts included) in training,
    and none runs in evaluation."""
    model = make("neumf", dropout=0.5)
    calls = []
    model.dropout.register_forward_hook(lambda module, args, out: calls.append(module.training))
    users, items = torch.tensor([0, 1, 2]), torch.tensor([[3, 4], [5, 6], [7, 8]])
    model.train()
    assert not torch.equal(model(users, items), model(users, items))
    assert calls == [True] * 2 * len(model.mlp)
    model.eval()
    torch.testing.assert_close(model(users, items), model(users, items))


@pytest.mark.parametrize("layers", ["masked", "sparse"])
def test_neumf_macs_charge_sparse_tables_and_masked_layers(small_data, layers):
    """Genuinely sparse MLP tables make full ranking's table products cost their active entries when
    executed; sparse or masked first and output layers (both read as dense weights) cost their active
    weights under ``"ideal"`` only."""
    model = make("neumf")  # GMF tables of 4 columns, MLP tables of 4, MLP 8 -> 8 -> 4
    DynamicSparseLearning(model, 0.5, 10, targets=model.dsl_targets, backend="sparse")
    DynamicSparseLearning(model, 0.5, 10, targets=[r"mlp\.0\.weight", r"predict\.weight"], backend=layers)
    rho_u, rho_i = (t.nnz / t.to_dense().numel() for t in (model.mlp_user, model.mlp_item))
    if layers == "sparse":
        assert all(isinstance(m, SparseLinear) for m in (model.mlp[0], model.predict))
        rho_first, rho_out = model.mlp[0].density(), model.predict.density()
    else:
        rho_first, rho_out = (float(m.weight_mask.float().mean()) for m in (model.mlp[0], model.predict))
    assert all(0 < rho < 1 for rho in (rho_u, rho_i, rho_first, rho_out))
    first, d, per_pair = 4 * 8, 4, 4 + 8 * 4 + 4
    executed = model.macs(None, 10, "executed")
    tables = NUM_USERS * (first * rho_u + d) + NUM_ITEMS * first * rho_i
    assert executed["inference_tables"] == pytest.approx(tables)
    assert executed["train_forward"] == pytest.approx(10 * (first + d) + 50 * (first + per_pair))
    ideal = model.macs(None, 10, "ideal")
    per_pair = 4 + 8 * 4 + 4 * rho_out
    user, item = first * rho_first * rho_u + d * rho_out, first * rho_first * rho_i
    assert ideal["train_forward"] == pytest.approx(10 * user + 50 * (item + per_pair))
    assert ideal["inference"] == pytest.approx(
        NUM_USERS * user + NUM_ITEMS * item + NUM_USERS * NUM_ITEMS * per_pair
    )


def test_convncf_scores_a_cnn_over_the_outer_product():
    """The score of (u, i) reads the ReLU convolutions of :math:`E = p_u q_i^T` (user rows, item
    columns) with the output layer, pair by pair as the paper writes it."""
    model = make("convncf").eval()
    users, items = torch.tensor([0, 5, 9]), torch.tensor([[1, 2], [3, 4], [5, 39]])
    expected = torch.empty(items.shape)
    for b, u in enumerate(users):
        for c, i in enumerate(items[b]):
            x = torch.outer(model.user_embedding(u), model.item_embedding(i))[None, None]
            for conv in model.convs:
                x = torch.relu(torch.nn.functional.conv2d(x, conv.weight, conv.bias, stride=2))
            expected[b, c] = model.predict(x.flatten())
    torch.testing.assert_close(model(users, items), expected)


def test_convncf_ideal_macs_charge_the_products_of_two_active_entries():
    """Under ``"ideal"`` an entry of the outer product costs only where both tables' entries are active,
    :math:`d^2 \\rho_P \\rho_Q`; executed, the rows looked up are dense and it costs :math:`d^2`."""
    model = make("convncf")  # d = 8
    dense = model.macs(None, 1, "dense")["per_pair"]
    DynamicSparseLearning(model, 0.6, 10, targets=model.dsl_targets)
    rho_p, rho_q = (t.nnz / t.to_dense().numel() for t in (model.user_embedding, model.item_embedding))
    assert model.macs(None, 1, "executed")["per_pair"] == dense
    assert model.macs(None, 1, "ideal")["per_pair"] == pytest.approx(dense - 64 + 64 * rho_p * rho_q)


def test_convncf_loss_is_bpr_plus_l2_on_the_batchs_user_and_item_rows(small_data):
    model = make("convncf").eval()
    (users, pos, neg), items = pair_batch(model, small_data)
    scores = model(users, items)
    bpr = torch.nn.functional.softplus(scores[:, 1] - scores[:, 0]).mean()
    torch.testing.assert_close(model.loss(None, users, pos, neg), bpr)
    rows = torch.cat([model.user_embedding(users), model.item_embedding(items).flatten(0, 1)])
    penalty = rows.pow(2).sum() / (2 * users.numel())
    torch.testing.assert_close(model.loss(None, users, pos, neg, reg_weight=0.5), bpr + 0.5 * penalty)


def test_convncf_loading_a_state_rereads_its_pretraining_count(small_data):
    """A model that has counted its pre-training steps takes a loaded state's count (a checkpoint from
    before the end of pre-training goes back to MF-BPR), not the count it read before."""
    model = make("convncf", pretrain_steps=1)
    start = copy_module.deepcopy(model.state_dict())
    model.loss(None, *batch(model, small_data, "cpu"))
    assert not model.pretraining()
    model.load_state_dict(start)
    assert model.pretraining()


def test_cdae_loss_and_forward_by_hand(small_data):
    """Logits :math:`W'^T \\sigma(W^T y_u + V_u + b) + b'`; the loss sums the binary cross-entropy over
    the items and averages over the users, plus ``reg_weight`` x L2 on the batch's user vectors."""
    model = make("cdae").eval()  # no corruption
    graph = model.input_graph(small_data)
    users = torch.tensor([1, 4, 4, 20])
    rows, vectors = dense_rows(graph, users), model.user_embedding(users)
    logits = model.decoder(torch.sigmoid(model.encoder(rows) + vectors))
    torch.testing.assert_close(model(rows, users), logits)
    probs = torch.sigmoid(logits)
    bce = -(rows * probs.log() + (1 - rows) * (1 - probs).log()).sum() / users.numel()
    torch.testing.assert_close(model.loss(graph, users), bce)
    penalty = vectors.pow(2).sum() / (2 * users.numel())
    torch.testing.assert_close(model.loss(graph, users, reg_weight=0.5), bce + 0.5 * penalty)


def test_cdae_corrupts_the_rows_it_encodes_in_training_only(small_data):
    """In training each entry of the encoded row is dropped with probability ``corruption`` and the rest
    scaled by 1 / (1 - corruption); evaluation encodes the row as it is."""
    model = make("cdae", corruption=0.25)
    graph = model.input_graph(small_data)
    users = torch.arange(NUM_USERS)
    rows = dense_rows(graph, users)
    seen = []
    model.encoder.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    model.train().loss(graph, users)
    (corrupted,) = seen
    kept = corrupted[rows == 1]
    assert set(corrupted[rows == 0].tolist()) == {0.0}
    assert ((kept == 0) | torch.isclose(kept, torch.tensor(1 / 0.75))).all()
    assert 0.1 < float((kept == 0).float().mean()) < 0.4
    model.eval().loss(graph, users)
    torch.testing.assert_close(seen[1], rows)


def test_multvae_loss_is_nll_plus_the_annealed_kl_by_hand(small_data):
    """Multinomial NLL (summed over items, averaged over users) plus β_t KL(q || N(0, I)), β_t =
    min(cap, t / T) with t the training steps before this one: the first step has no KL term."""
    model = make("multvae", total_anneal_steps=2, anneal_cap=0.8)
    graph = model.input_graph(small_data)
    users = torch.arange(8)
    rows = dense_rows(graph, users)
    for step, beta in enumerate([0.0, 0.5, 0.8]):
        torch.manual_seed(step)  # the same dropout and sample as the loss draws
        logits, mu, logvar = model(rows)
        nll = -(torch.log_softmax(logits, 1) * rows).sum() / 8
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum() / 8
        torch.manual_seed(step)
        torch.testing.assert_close(model.loss(graph, users), nll + beta * kl)


def test_multvae_scores_by_hand(small_data):
    """In evaluation: :math:`\\mu, \\log\\sigma^2` from a tanh MLP of the L2-normalised row, logits from a
    tanh MLP of :math:`\\mu` (no sample)."""
    model = make("multvae").eval()
    rows = dense_rows(model.input_graph(small_data), torch.arange(6))
    enc1, _, enc2 = model.encoder
    dec1, _, dec2 = model.decoder
    h = enc2(torch.tanh(enc1(rows / rows.norm(dim=1, keepdim=True))))
    mu, logvar = h[:, :4], h[:, 4:]
    logits = dec2(torch.tanh(dec1(mu)))
    for got, expected in zip(model(rows), (logits, mu, logvar)):
        torch.testing.assert_close(got, expected)


def test_multvae_samples_z_with_the_encoded_variance():
    """In training :math:`z \\sim \\mathcal{N}(\\mu, \\mathrm{diag}\\,e^{\\log\\sigma^2})`: the
    encoder's second half is the log-variance, not the log of the standard deviation."""
    torch.manual_seed(0)
    model = MultVAE(NUM_USERS, NUM_ITEMS, hidden_channels=16, latent_dim=4, dropout=0.0)
    with torch.no_grad():
        model.encoder[-1].bias[4:] += 1.0  # variances well away from 1, where both readings agree
    rows = torch.zeros(20000, NUM_ITEMS)
    rows[:, :5] = 1.0
    mu, logvar = model.encode(rows[:1], corrupt=False)
    codes = []
    model.decoder.register_forward_pre_hook(lambda module, args: codes.append(args[0]))
    model.train()(rows)
    torch.testing.assert_close(codes[0].mean(0), mu[0], atol=0.1, rtol=0)
    torch.testing.assert_close(codes[0].var(0), logvar[0].exp(), rtol=0.1, atol=0)


def test_multvae_encodes_the_l2_normalised_row_dropped_out_in_training_only(small_data):
    model = make("multvae")  # dropout 0.5
    graph = model.input_graph(small_data)
    users = torch.arange(NUM_USERS)
    unit = torch.nn.functional.normalize(dense_rows(graph, users), dim=1)
    seen = []
    model.encoder.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    model.eval().loss(graph, users)
    torch.testing.assert_close(seen[0], unit)
    model.train().loss(graph, users)
    kept = seen[1] != 0
    torch.testing.assert_close(seen[1][kept], 2 * unit[kept])  # scaled by 1 / (1 - p)
    assert 0.3 < float(kept[unit != 0].float().mean()) < 0.7


def test_multvae_initialises_as_the_paper_and_reset_restarts_annealing(small_data):
    """Weights Xavier-uniform, biases N(0, 0.001^2), genuinely sparse layers' active weights too after
    reset_parameters, which also restarts the KL schedule."""

    def check_init(model):
        for layer in model._linears():
            bound = math.sqrt(6 / (layer.in_features + layer.out_features))
            assert 0.8 * bound < float(layer.weight.detach().abs().max()) <= bound
            assert 0 < float(layer.bias.detach().abs().max()) < 0.005

    model = make("multvae")
    check_init(model)
    model.loss(model.input_graph(small_data), torch.arange(4))
    DynamicSparseLearning(model, 0.5, 10, targets=[r".*weight"], backend="sparse")
    model.reset_parameters()
    assert all(isinstance(layer, SparseLinear) for layer in model._linears())
    check_init(model)
    assert int(model.anneal_step) == 0 and model.beta() == 0.0


def test_multvae_reset_that_fails_leaves_the_sparse_tables_init_as_it_was(small_data):
    """reset_parameters draws Xavier values through each table's own reset; a reset that raises midway
    left the table's init "xavier", which its next reset of its own then drew."""
    model = make("multvae")
    DynamicSparseLearning(model, 0.5, 10, targets=[r".*weight"], backend="sparse")
    table = model._linears()[0].sparse_weight
    own = table.init
    assert own != "xavier"

    def fail(*args, **kwargs):
        raise RuntimeError("out of memory")

    table.reset_parameters = fail
    with pytest.raises(RuntimeError, match="out of memory"):
        model.reset_parameters()
    assert table.init == own


@pytest.mark.parametrize("cls", [MultVAE, CDAE])
def test_inference_macs_are_the_products_full_ranking_runs(small_data, cls):
    from torch.utils.flop_counter import FlopCounterMode

    torch.manual_seed(0)
    model = cls(30, 40).eval()
    graph = model.input_graph(small_data)
    with FlopCounterMode(display=False) as counter:
        model.scorer(graph)(torch.arange(30))
    assert counter.get_total_flops() / 2 == model.macs(graph, 16, "dense")["inference"]


@pytest.mark.parametrize("name", MODELS)
def test_masked_layers_execute_dense(name, small_data):
    """A masked (``backend="masked"``) layer runs as a dense product: ``"executed"`` charges it in full,
    only ``"ideal"`` its active weights."""
    model = make(name)
    graph = model.input_graph(small_data)
    dense = model.macs(graph, 16, "dense")
    DynamicSparseLearning(model, 0.5, 10, targets=[r"(?!.*embedding|gmf|mlp_).*weight"], backend="masked")
    assert any(hasattr(module, "weight_mask") for module in model.modules())
    assert model.macs(graph, 16, "executed") == dense
    assert model.macs(graph, 16, "ideal")["inference"] < dense["inference"]


@pytest.mark.parametrize("name", MODELS)
def test_folds_in_says_whether_scores_follow_the_users_interactions(name, small_data):
    """``folds_in`` (what lets the held-out-users protocol pick a model) is true exactly for the models
    whose scores of a user follow that user's interactions in the graph input, not a trained vector alone."""
    model = make(name).eval()
    train = small_data[EDGE].edge_index
    user0 = train[0] == 0  # user 0's training items become its test items
    fewer = make_interaction_data(NUM_USERS, NUM_ITEMS, train[:, ~user0], train[:, user0])
    users = torch.tensor([0])
    scores = [model.scorer(model.input_graph(data))(users) for data in (small_data, fewer)]
    assert model.folds_in == (not torch.allclose(*scores))


@pytest.mark.parametrize("name", ["cdae", "multvae"])
def test_input_graph_checks_the_training_interactions_once(name, small_data, monkeypatch):
    """check_data checked the interactions, then interaction_matrix the same ids again, by the same bounds:
    four reductions over every interaction twice (a wait for the device each, on a GPU)."""
    import dslgraph.data.graph as graph_module
    import dslgraph.nn.base as base_module

    checked = []

    def counted(check):
        return lambda name, *args: checked.append(name) or check(name, *args)

    for module in (graph_module, base_module):
        monkeypatch.setattr(module, "check_pair_index", counted(module.check_pair_index))
    make(name).input_graph(small_data)
    assert checked == [f"data[{EDGE}].edge_index"]


@pytest.mark.parametrize("name", MODELS)
def test_recommend_fills_a_short_row_with_the_best_scored_excluded_items(name, small_data):
    """A user with fewer than ``k`` items left got its unseen items, then the excluded ones of lowest id
    (``topk``'s order among ties at -inf), whatever their scores."""
    model = make(name).eval()
    graph = model.input_graph(small_data)
    users = torch.tensor([2, 0])
    scores = model.scorer(graph)(users).detach()
    unseen = torch.tensor([3, 7])
    exclude = torch.stack(
        [
            torch.cat([torch.zeros(NUM_ITEMS, dtype=torch.long), torch.full((NUM_ITEMS - 2,), 2)]),
            torch.cat(
                [
                    torch.arange(NUM_ITEMS),
                    torch.arange(NUM_ITEMS)[~torch.isin(torch.arange(NUM_ITEMS), unseen)],
                ]
            ),
        ]
    )
    top = model.recommend(graph, users, k=4, exclude=exclude, batch_size=1)
    assert set(top[0, :2].tolist()) == {3, 7}
    assert torch.equal(top[0, 2:], scores[0].index_fill(0, unseen, float("-inf")).topk(2).indices)
    assert torch.equal(top[1], scores[1].topk(4).indices)  # every item seen: the best of them
    # scored in one block after a user with k items left: its own scores fill its row
    together = model.recommend(graph, torch.tensor([1, 2]), k=4, exclude=exclude, batch_size=2)
    assert torch.equal(together[1], top[0])


@pytest.mark.parametrize("name", ["neumf", "convncf"])
def test_pair_models_train_iteration_is_three_forwards(name, small_data):
    """As the docstrings state: a training iteration costs the forward and a backward of twice it."""
    model = make(name)
    for count in ("dense", "executed", "ideal"):
        macs = model.macs(None, 16, count)
        assert macs["train_iteration"] == 3 * macs["train_forward"] > 0


def test_neumf_ideal_macs_charge_sparse_gmf_tables_in_the_dot_product():
    """Sparse GMF tables (not the authors' targets, but a user's choice of ``targets``): under
    ``"ideal"`` each pair's GMF product costs :math:`d \\rho_P \\rho_Q`; executed it costs :math:`d`."""
    model = make("neumf")  # GMF tables of 4 columns
    dense = model.macs(None, 1, "dense")["inference_scoring"]
    DynamicSparseLearning(model, 0.6, 10, targets=[r"gmf_.*"], backend="sparse")
    rho_p, rho_q = (t.nnz / t.to_dense().numel() for t in (model.gmf_user, model.gmf_item))
    assert 0 < rho_p * rho_q < 1
    pairs = NUM_USERS * NUM_ITEMS
    assert model.macs(None, 1, "executed")["inference_scoring"] == dense
    assert model.macs(None, 1, "ideal")["inference_scoring"] == pytest.approx(
        dense - pairs * 4 * (1 - rho_p * rho_q)
    )


def test_convncf_without_pretraining_has_no_pretraining_count_in_its_state():
    """The count is a buffer only with ``pretrain_steps``, so that checkpoints without it (of
    earlier versions too) load strictly."""
    assert not any("pretrained_steps" in key for key in make("convncf").state_dict())
    assert "pretrained_steps" in make("convncf", pretrain_steps=3).state_dict()


def test_cdae_forward_reads_the_uncorrupted_row_in_training_mode(small_data):
    """Corruption is the loss's: forward scores the row as it is, in training mode too."""
    model = make("cdae", corruption=0.5)
    graph = model.input_graph(small_data)
    users = torch.arange(NUM_USERS)
    rows = dense_rows(graph, users)
    torch.testing.assert_close(model.train()(rows, users), model.eval()(rows, users))


def test_cdae_loss_reconstructs_the_uncorrupted_row_from_the_corrupted_one(small_data):
    """A denoising auto-encoder: the corrupted row is encoded, the clean row is the target."""
    model = make("cdae", corruption=0.5).train()
    graph = model.input_graph(small_data)
    users = torch.arange(NUM_USERS)
    rows = dense_rows(graph, users)
    torch.manual_seed(5)  # the corruption the loss draws
    corrupted = model.corruption(rows)
    logits = model.decoder(torch.sigmoid(model.encoder(corrupted) + model.user_embedding(users)))
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, rows, reduction="sum") / NUM_USERS
    torch.manual_seed(5)
    torch.testing.assert_close(model.loss(graph, users), bce)


def test_multvae_anneal_cap_zero_trains_without_the_kl_term(small_data):
    """``anneal_cap=0`` is allowed (:math:`\\beta_t = 0`: the multinomial NLL alone)."""
    model = make("multvae", anneal_cap=0, total_anneal_steps=2)
    graph = model.input_graph(small_data)
    users = torch.arange(8)
    for _ in range(3):
        model.loss(graph, users)
    assert model.beta() == 0.0


def test_multvae_training_macs_spare_the_input_gradient_of_the_first_layer_only(small_data):
    """The one product a training iteration does not run is the input gradient of the first encoder
    layer (the interaction row needs none), charged at that layer's own MACs, not the last layer's."""
    model = make("multvae")
    DynamicSparseLearning(model, 0.5, 10, targets=[r"encoder\.0\.weight"], backend="sparse")
    first, last = model.encoder[0], model.decoder[-1]
    assert isinstance(first, SparseLinear) and first.nnz < last.weight.numel()
    macs = model.macs(model.input_graph(small_data), 16, "executed")
    assert macs["train_iteration"] == 3 * macs["train_forward"] - 16 * first.nnz


@pytest.mark.parametrize("name", ["cdae", "multvae"])
def test_row_model_scores_are_forwards_logits_in_evaluation(name, small_data):
    """The scorer's full and candidate scores are the logits forward gives the users' rows."""
    model = make(name).eval()
    graph = model.input_graph(small_data)
    users = torch.tensor([3, 0, 17, 3])
    rows = dense_rows(graph, users)
    logits = model(rows, users) if name == "cdae" else model(rows)[0]
    items = torch.randint(NUM_ITEMS, (4, 5), generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(model.scorer(graph)(users), logits)
    torch.testing.assert_close(model.scorer(graph)(users, items), logits.gather(1, items))


def test_convncf_ideal_macs_charge_the_active_weights_of_masked_convolutions():
    """Each masked convolution costs ``output positions x active weights`` under ``"ideal"``."""
    model = make("convncf")  # d = 8: convolutions to 4 x 4, 2 x 2 and 1 x 1 positions
    dense = model.macs(None, 1, "dense")["per_pair"]
    DynamicSparseLearning(model, 0.5, 10, targets=[r"convs\..*\.weight"], backend="masked")
    spared = sum(
        positions * conv.weight.numel() * (1 - float(conv.weight_mask.float().mean()))
        for positions, conv in zip((16, 4, 1), model.convs)
    )
    assert spared > 0
    assert model.macs(None, 1, "executed")["per_pair"] == dense
    assert model.macs(None, 1, "ideal")["per_pair"] == pytest.approx(dense - spared)


def test_dense_rows_are_the_rows_of_any_csr_matrix():
    """Rows of a weighted CSR matrix (the interaction rows are binary, so a row of ones passed them), in the
    order asked for, an empty row and a repeated one included."""
    dense = torch.tensor([[0.0, 2.5, 0.0], [0.0, 0.0, 0.0], [-1.0, 0.0, 4.0]])
    rows = torch.tensor([2, 1, 0, 2])
    torch.testing.assert_close(dense_rows(dense.to_sparse_csr(), rows), dense[rows])


@pytest.mark.parametrize("name", ["cdae", "multvae"])
def test_a_graph_of_the_users_but_another_number_of_items_is_refused(name, small_data):
    """The whole shape is checked: checking the rows alone, a wider graph failed later, in a product."""
    data = make_interaction_data(
        NUM_USERS, NUM_ITEMS + 1, small_data[EDGE].edge_index, torch.tensor([[0], [40]])
    )
    model = make(name)
    with pytest.raises(
        ValueError, match=rf"the graph is \[30, 41\], {type(model).__name__} was built for a \[30, 40\]"
    ):
        model.scorer(interaction_matrix(data))


def test_neumf_masked_tables_execute_dense():
    """Masked (``backend="masked"``) MLP tables are multiplied as dense ones: only ``"ideal"`` charges their
    active entries, where genuinely sparse ones cost theirs when executed too."""
    model = make("neumf")
    dense = model.macs(None, 10, "dense")
    DynamicSparseLearning(model, 0.5, 10, targets=model.dsl_targets, backend="masked")
    assert hasattr(model.mlp_user, "weight_mask")
    assert model.macs(None, 10, "executed") == dense
    assert model.macs(None, 10, "ideal")["inference_tables"] < dense["inference_tables"]


@pytest.mark.parametrize(
    ("name", "targets"),
    [
        ("cdae", None),  # the user table and a SparseLinear encoder
        ("cdae", ["tables", r"encoder\.weight", r"decoder\.weight"]),
        ("multvae", None),  # four SparseLinear layers
        ("neumf", [r"mlp_user\..*", r"mlp_item\..*", r"mlp\.1\.weight"]),  # layer 2 of the MLP sparse
        # the first layer sparse too: read as a dense weight, its gradient is dense already
        ("neumf", [r"mlp_user\..*", r"mlp_item\..*", r"mlp\.0\.weight", r"mlp\.1\.weight"]),
        ("neumf", None),  # tables only: look-ups, whose dense gradient a growth step only adds up
    ],
)
@pytest.mark.parametrize("backend", ["sparse", "masked"])
def test_update_step_macs_are_the_products_a_growth_step_runs(small_data, name, targets, backend):
    """A growth step rebuilds the dense gradient of each SparseLinear layer (rows x in x out, which its
    sparse backward skipped); it was charged nothing, so the adapters' executed savings left it out. A
    masked layer's backward computes that gradient anyway: its growth step runs no product."""
    from torch.utils.flop_counter import FlopCounterMode

    model = make(name)
    graph = model.input_graph(small_data)
    dsl = DynamicSparseLearning(
        model, 0.5, 10, targets=targets or list(model.dsl_targets), backend=backend, update_interval=1
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    dsl.attach(optimizer)
    rows = batch(model, small_data, "cpu")
    model.loss(graph, *rows).backward()
    optimizer.step()
    with FlopCounterMode(display=False) as counter:
        dsl.step()  # the first iteration's update
    assert len(dsl.updates) == 1
    macs = {count: model.macs(graph, 16, count)["update_step"] for count in ("dense", "executed", "ideal")}
    assert counter.get_total_flops() / 2 == macs["executed"]
    assert macs["dense"] == 0
    sparse_layers = backend == "sparse" and (name != "neumf" or targets is not None)
    assert (macs["executed"] > 0) == sparse_layers
    assert (macs["ideal"] > 0) == (name != "neumf" or targets is not None)


def test_the_tables_asked_of_a_model_without_tables_name_the_model_s_own_targets():
    """Mult-VAE has no embedding table: targets="tables" is refused naming its dsl_targets, which dslgraph
    train (and the default) picks."""
    from dslgraph.nn import MultVAE

    with pytest.raises(
        ValueError, match=r"has no embedding table .*targets=list\(model.dsl_targets\) = \['\.\*'\]"
    ):
        DynamicSparseLearning(MultVAE(10, 20), 0.5, 10, targets="tables", update_interval=2)


@pytest.mark.parametrize("name", ["neumf", "cdae", "multvae", "convncf"])
def test_dsl_s_default_targets_are_the_model_s_own_as_dslgraph_train_s(small_data, name):
    """DynamicSparseLearning(model, ...) sparsified every table by default (NeuMF's four, where dslgraph
    train sparsifies its MLP branch's two) and refused Mult-VAE, which has none: it now takes the model's
    dsl_targets, the tensors the CLI's run of the same model sparsifies."""
    from dslgraph.cli import build_model, train_config
    from dslgraph.config import validate

    torch.manual_seed(0)
    model = make(name)
    default = DynamicSparseLearning(model, 0.5, 10, update_interval=2)
    own = make(name)
    chosen = DynamicSparseLearning(own, 0.5, 10, targets=own.dsl_targets, update_interval=2)
    assert [t.name for t in default.targets] == [t.name for t in chosen.targets]
    settings = validate({"model": name, "sparsity": 0.5, "epochs": 1, "update_interval": 2})
    _, cli = build_model(settings, small_data, train_config(settings, progress=False))
    assert [t.name for t in default.targets] == [t.name for t in cli.targets]
    if name == "neumf":  # the GMF branch stays dense
        assert sorted(t.name for t in default.targets) == ["mlp_item", "mlp_user"]
        assert type(model.gmf_user).__name__ == "DenseEmbedding"


def test_a_model_whose_own_targets_are_the_tables_is_not_told_to_pass_them():
    """A model of one's own keeps Recommender's dsl_targets, ("tables",): named as the way on, they failed
    as the default had."""
    from dslgraph.nn.base import Recommender

    class Bare(Recommender):
        def __init__(self):
            super().__init__()
            self.user = torch.nn.Parameter(torch.randn(5, 4))

    with pytest.raises(
        ValueError,
        match=r"parameters are \['user'\] \(targets=None took the patterns from Bare.dsl_targets = "
        r"\('tables',\), inherited from Recommender: set them on Bare, or pass targets\)$",
    ):
        DynamicSparseLearning(Bare(), 0.5, 10, update_interval=2)


def test_a_misspelt_dsl_targets_is_named_as_where_the_patterns_came_from():
    """A model's own dsl_targets that match nothing failed as a pattern passed as targets does: "matches no
    parameter", not saying that targets=None had taken the patterns from the model's class."""
    from dslgraph.nn.base import Recommender

    class Mine(Recommender):
        dsl_targets = ("users.weight",)  # the table is user_embedding

        def __init__(self):
            super().__init__()
            self.user_embedding = torch.nn.Embedding(5, 4)

    with pytest.raises(
        ValueError,
        match=r"target 'users.weight' matches no parameter; parameters are \['user_embedding.weight'\] "
        r"\(targets=None took the patterns from Mine.dsl_targets = \('users.weight',\), correct them there, "
        r"or pass targets\)$",
    ):
        DynamicSparseLearning(Mine(), 0.5, 10, update_interval=2)
    with pytest.raises(
        ValueError, match=r"matches no parameter; parameters are \['user_embedding.weight'\]$"
    ):
        DynamicSparseLearning(Mine(), 0.5, 10, targets=["users.weight"], update_interval=2)  # passed: no note
