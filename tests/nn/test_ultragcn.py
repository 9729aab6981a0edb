import pytest
import torch
import torch.nn.functional as F

from dslgraph.data import EDGE
from dslgraph.nn import UltraGCN, item_neighbors
from dslgraph.nn.ultragcn import constraint_betas
from dslgraph.sparse import DynamicSparseLearning
from dslgraph.train import TrainConfig, Trainer


def test_item_neighbors_match_dense_reference(small_data):
    index = small_data[EDGE].edge_index
    neighbors, weights = item_neighbors(index, 30, 40, k=5, block_rows=7)
    r = torch.zeros(30, 40)
    r[index[0], index[1]] = 1
    g = r.T @ r
    deg = g.sum(1, keepdim=True)
    omega = (g / deg * ((deg + 1) / (deg.T + 1)).sqrt()).nan_to_num()
    expected_weights, expected = omega.topk(5, dim=1)
    torch.testing.assert_close(weights, expected_weights)
    picked = omega.gather(1, neighbors)  # ties may order differently; the weights must agree
    torch.testing.assert_close(picked, expected_weights)
    no_self, no_self_weights = item_neighbors(index, 30, 40, k=5, exclude_self=True)
    assert not (no_self == torch.arange(40).unsqueeze(1)).any()
    g.fill_diagonal_(0)  # the official ii_diagonal_zero: degrees of the graph without self-loops
    deg = g.sum(1, keepdim=True)
    omega = (g / deg * ((deg + 1) / (deg.T + 1)).sqrt()).nan_to_num()
    torch.testing.assert_close(no_self_weights, omega.topk(5, dim=1).values)
    torch.testing.assert_close(omega.gather(1, no_self), no_self_weights)
    with pytest.raises(ValueError, match="k \\(item neighbours\\) must be in"):
        item_neighbors(index, 30, 40, k=40)
    with pytest.raises(ValueError, match="num_neighbors"):
        UltraGCN(30, 40, num_neighbors=40)


def test_loss_matches_the_formula(small_data):
    model = UltraGCN(30, 40, embedding_dim=8, num_negatives=3, num_neighbors=4, std=0.1)
    graph = model.input_graph(small_data)
    users, pos = torch.tensor([0, 1, 2]), torch.tensor([3, 4, 5])
    neg = torch.tensor([[6, 7, 8], [9, 10, 11], [12, 13, 14]])
    loss = model.loss(graph, users, pos, neg)

    beta_u, beta_i = constraint_betas(small_data[EDGE].edge_index, 30, 40)
    u, items = model.user_embedding.weight[users], model.item_embedding.weight
    pos_w = model.w1 + model.w2 * beta_u[users] * beta_i[pos]
    neg_w = model.w3 + model.w4 * beta_u[users, None] * beta_i[neg]
    expected = -(pos_w * F.logsigmoid((u * items[pos]).sum(-1))).sum()
    neg_term = neg_w * F.logsigmoid(-(u[:, None] * items[neg]).sum(-1))
    expected = expected - model.negative_weight * neg_term.mean(-1).sum()
    nb, w = graph.neighbors[pos], graph.neighbor_weights[pos]
    expected = expected - model.lambda_ * (w * F.logsigmoid((u[:, None] * items[nb]).sum(-1))).sum()
    expected = expected + model.gamma / 2 * (u.new_tensor(0) + model.user_embedding.weight.pow(2).sum())
    expected = expected + model.gamma / 2 * items.pow(2).sum()
    torch.testing.assert_close(loss, expected)


def test_candidate_scores_equal_full_scores(small_data):
    model = UltraGCN(30, 40, embedding_dim=8, num_negatives=2, num_neighbors=3)
    score = model.scorer(model.input_graph(small_data))
    users, items = torch.tensor([0, 5]), torch.tensor([[1, 2, 3], [4, 5, 6]])
    torch.testing.assert_close(score(users, items), score(users).gather(1, items))


def test_neighbors_are_cached_atomically(small_data, tmp_path):
    model = UltraGCN(30, 40, num_negatives=2, num_neighbors=3, cache_dir=tmp_path)
    first = model.input_graph(small_data)
    (cached,) = tmp_path.glob("ultragcn_neighbors_*.pt")
    torch.save({"neighbors": first.neighbors * 0, "weights": first.neighbor_weights}, cached)
    assert (model.input_graph(small_data).neighbors == 0).all()  # read from the cache
    assert not list(tmp_path.glob(".*tmp"))


@pytest.mark.parametrize("backend", ["sparse", "masked"])
def test_trains_dense_and_under_dsl(small_data, backend, tmp_path, device):
    torch.manual_seed(0)
    model = UltraGCN(30, 40, embedding_dim=8, num_negatives=5, num_neighbors=3, std=0.1)
    config = TrainConfig(epochs=3, batch_size=64, lr=0.01, eval_every=1, progress=False)
    dsl = DynamicSparseLearning(
        model, 0.5, 3 * 4, targets=list(model.dsl_targets), update_interval=2, backend=backend
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    dsl.attach(optimizer)
    counts = dsl.active_counts()
    trainer = Trainer(model, small_data, config, tmp_path, device, hooks=[dsl], optimizer=optimizer)
    summary = trainer.fit()
    assert dsl.active_counts() == counts and len(dsl.updates) > 0
    assert summary["test"]["recall@20"] >= 0 and summary["epochs"] == 3
    train = {c: model.macs(trainer.graph, 64, c)["train_iteration"] for c in ("dense", "executed", "ideal")}
    if backend == "sparse":  # the L2 term squares the stored entries only
        assert train["dense"] > train["executed"] == train["ideal"]
    else:  # a masked table is squared whole
        assert train["dense"] == train["executed"] > train["ideal"]


def test_forward_scores_pairs_like_the_scorer(small_data):
    model = UltraGCN(30, 40, embedding_dim=8, num_negatives=2, num_neighbors=3, std=0.1)
    score = model.scorer(model.input_graph(small_data))
    users, items = torch.tensor([0, 5]), torch.tensor([[1, 2, 3], [4, 5, 6]])
    torch.testing.assert_close(model(users, items), score(users, items))
    torch.testing.assert_close(model(users, items[:, 0]), score(users, items[:, :1]).squeeze(1))


def test_bad_inputs_fail_naming_them(small_data):
    with pytest.raises(ValueError, match="embedding_dim must be an integer >= 1, got 0"):
        UltraGCN(30, 40, embedding_dim=0, num_negatives=2, num_neighbors=3)
    for weight in ("w1", "negative_weight", "gamma", "lambda_"):  # a negative one turned a term around
        for value in (-1.0, float("nan")):
            with pytest.raises(ValueError, match=f"{weight} must be a finite number >= 0, got {value}"):
                UltraGCN(30, 40, embedding_dim=8, num_negatives=2, num_neighbors=3, **{weight: value})
    with pytest.raises(ValueError, match="cache_dir must be a folder's path, got 5"):
        UltraGCN(30, 40, embedding_dim=8, cache_dir=5)  # `--option cache_dir=5`: a TypeError when caching
    model = UltraGCN(31, 40, embedding_dim=8, num_negatives=2, num_neighbors=3)
    with pytest.raises(ValueError, match="the data has 30 users and 40 items, the model was built for 31"):
        model.input_graph(small_data)  # taken silently
    with pytest.raises(ValueError, match="items must be ids in"):
        model(torch.tensor([0]), torch.tensor([-1]))  # the last item's score
    with pytest.raises(ValueError, match=r"items must have shape \[B\] or \[B, C\] for B = 2"):
        model(torch.tensor([0, 1]), torch.tensor([1, 2, 3, 4]))  # paired as [2, 2]
