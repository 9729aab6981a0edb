import math

import pytest
import torch
import torch.nn.functional as F

from dslgraph.data import EDGE, make_interaction_data
from dslgraph.nn import UltraGCN, item_neighbors
from dslgraph.nn.ultragcn import constraint_betas
from dslgraph.sparse import DynamicSparseLearning
from dslgraph.train import TrainConfig, Trainer
from dslgraph.train.trainer import make_batches


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
    # in blocks of 7 rows, as above: each block zeroes its own rows' diagonal entries
    no_self, no_self_weights = item_neighbors(index, 30, 40, k=5, exclude_self=True, block_rows=7)
    assert not (no_self == torch.arange(40).unsqueeze(1)).any()
    g.fill_diagonal_(0)  # the official ii_diagonal_zero: degrees of the graph without self-loops
    deg = g.sum(1, keepdim=True)
    omega = (g / deg * ((deg + 1) / (deg.T + 1)).sqrt()).nan_to_num()
    torch.testing.assert_close(no_self_weights, omega.topk(5, dim=1).values)
    torch.testing.assert_close(omega.gather(1, no_self), no_self_weights)
    with pytest.raises(ValueError, match="k \\(item neighbours\\) must be an integer in"):
        item_neighbors(index, 30, 40, k=40)
    with pytest.raises(ValueError, match="num_neighbors"):
        UltraGCN(30, 40, num_neighbors=40)


def test_loss_matches_the_formula(small_data):
    model = UltraGCN(30, 40, embedding_dim=8, num_negatives=3, num_neighbors=4, std=0.1)
    graph = model.input_graph(small_data)
    users, pos = torch.tensor([0, 1, 2]), torch.tensor([3, 4, 5])
    # each row out of order: a negative's weight goes with its own logit
    neg = torch.tensor([[8, 6, 7], [11, 9, 10], [14, 12, 13]])
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
    # std = 0.1: the default 1e-4 gives scores of about 1e-7, within assert_close's tolerance of any others
    model = UltraGCN(30, 40, embedding_dim=8, num_negatives=2, num_neighbors=3, std=0.1)
    score = model.scorer(model.input_graph(small_data))
    users, items = torch.tensor([0, 5]), torch.tensor([[3, 1, 39], [6, 4, 5]])  # each in its own order
    torch.testing.assert_close(score(users, items), score(users).gather(1, items))


def test_neighbors_are_cached_atomically(small_data, tmp_path):
    model = UltraGCN(30, 40, num_negatives=2, num_neighbors=3, cache_dir=tmp_path)
    first = model.input_graph(small_data)
    (cached,) = tmp_path.glob("ultragcn_neighbors_*.pt")
    torch.save({"neighbors": first.neighbors * 0, "weights": first.neighbor_weights}, cached)
    assert (model.input_graph(small_data).neighbors == 0).all()  # read from the cache
    assert not list(tmp_path.glob(".*.tmp-*"))  # write_then_rename's temporary files: ".NAME.tmp-PID"


def test_neighbours_found_are_logged_and_cached_ones_are_not_found_again(small_data, tmp_path, caplog):
    model = UltraGCN(30, 40, num_negatives=2, num_neighbors=3, cache_dir=tmp_path)
    with caplog.at_level("INFO", logger="dslgraph.nn.ultragcn"):
        model.input_graph(small_data)
        assert "finding the 3 nearest of 40 items for each item" in caplog.text
        caplog.clear()
        model.input_graph(small_data)
    assert "finding" not in caplog.text


def test_a_cache_cut_short_while_written_leaves_no_file_to_read(small_data, tmp_path, full_disk, caplog):
    model = UltraGCN(30, 40, num_negatives=2, num_neighbors=3, cache_dir=tmp_path)
    # the neighbours found are the graph's: a cache that cannot be written (a full disk, a read-only dataset
    # folder) stopped the run with them in memory; on a full disk, with torch's RuntimeError
    with full_disk():
        graph = model.input_graph(small_data)
    assert not list(tmp_path.iterdir())  # neither a cache to read next time nor a temporary file
    assert "could not be cached in" in caplog.text and "(OSError: [Errno 27] File too large: " in caplog.text
    torch.testing.assert_close(graph.neighbors, model.input_graph(small_data).neighbors)


def test_a_cache_that_cannot_be_used_is_built_again(small_data, tmp_path, caplog):
    model = UltraGCN(30, 40, num_negatives=2, num_neighbors=3, cache_dir=tmp_path)
    first = model.input_graph(small_data)
    (cached,) = tmp_path.glob("ultragcn_neighbors_*.pt")
    whole = cached.read_bytes()
    for damage in (
        lambda: cached.write_bytes(whole[: len(whole) // 2]),  # failed every run inside torch.load
        lambda: torch.save({"neighbors": first.neighbors}, cached),  # KeyError: 'weights'
        lambda: torch.save({"neighbors": first.neighbors[:5], "weights": first.neighbor_weights[:5]}, cached),
        # swapped: float neighbours failed every later loss inside gather
        lambda: torch.save({"neighbors": first.neighbor_weights, "weights": first.neighbors}, cached),
    ):
        damage()
        graph = model.input_graph(small_data)
        torch.testing.assert_close(graph.neighbors, first.neighbors)
        torch.testing.assert_close(graph.neighbor_weights, first.neighbor_weights)
        assert "could not be used" in caplog.text
        assert torch.load(cached)["neighbors"].shape == (40, 3)  # written again


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
    trainer = Trainer(
        model, small_data, config, output_dir=tmp_path, device=device, hooks=[dsl], optimizer=optimizer
    )
    summary = trainer.fit()
    assert dsl.active_counts() == counts and len(dsl.updates) > 0
    recalls = [entry["test"]["recall@20"] for entry in summary["history"]]
    assert summary["epochs"] == 3 and recalls[0] < recalls[-1]  # it learns (recall >= 0 held untrained too)
    train = {c: model.macs(trainer.graph, 64, c)["train_iteration"] for c in ("dense", "executed", "ideal")}
    if backend == "sparse":  # the L2 term squares the stored entries only
        assert train["dense"] > train["executed"] > train["ideal"]
    else:  # a masked table is squared whole
        assert train["dense"] == train["executed"] > train["ideal"]


def test_forward_scores_pairs_like_the_scorer(small_data):
    model = UltraGCN(30, 40, embedding_dim=8, num_negatives=2, num_neighbors=3, std=0.1)
    score = model.scorer(model.input_graph(small_data))
    users, items = torch.tensor([0, 5]), torch.tensor([[1, 2, 3], [4, 5, 6]])
    torch.testing.assert_close(model(users, items), score(users, items))
    torch.testing.assert_close(model(users, items[:, 0]), score(users, items[:, :1]).squeeze(1))


def test_reset_parameters_draws_what_the_constructor_drew():
    torch.manual_seed(0)
    fresh = UltraGCN(30, 40, embedding_dim=8, std=0.2)
    model = UltraGCN(30, 40, embedding_dim=8, std=0.2)
    torch.manual_seed(0)
    model.reset_parameters()
    for name, value in fresh.state_dict().items():
        assert torch.equal(model.state_dict()[name], value), name


def test_bad_inputs_fail_naming_them(small_data):
    with pytest.raises(ValueError, match="embedding_dim must be an integer >= 1, got 0"):
        UltraGCN(30, 40, embedding_dim=0, num_negatives=2, num_neighbors=3)
    for weight in ("w1", "negative_weight", "gamma", "lambda_"):  # a negative one turned a term around
        for value in (-1.0, float("nan"), float("inf")):
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


def _three_users_four_items():
    """User 0 has items 0, 1, 2; user 1 has item 0; user 2 and item 3 have no training interaction."""
    train = torch.tensor([[0, 0, 0, 1], [0, 1, 2, 0]])
    return make_interaction_data(3, 4, train, torch.tensor([[2], [3]]))


def test_constraint_betas_by_hand():
    # user degrees 3, 1, 0: beta_u = sqrt(d + 1) / d = 2/3, sqrt(2), and 0 for a user never trained on
    # item degrees 2, 1, 1, 0: beta_i = 1 / sqrt(d + 1) = 1/sqrt(3), 1/sqrt(2), 1/sqrt(2), 1
    beta_user, beta_item = constraint_betas(_three_users_four_items()[EDGE].edge_index, 3, 4)
    torch.testing.assert_close(beta_user, torch.tensor([2 / 3, 2**0.5, 0.0]))
    torch.testing.assert_close(beta_item, torch.tensor([3**-0.5, 2**-0.5, 2**-0.5, 1.0]))


def test_loss_weighs_positives_and_negatives_by_hand():
    """With zero embeddings every logit is 0 and log(sigmoid(0)) = -log 2, so the loss is log 2 times the
    summed constraint weights; distinct w1..w4 tell each weight's place (the defaults have w1 = w3 and
    w2 = w4, and the formula test reads the betas from constraint_betas itself)."""
    model = UltraGCN(
        3, 4, embedding_dim=2, w1=0.1, w2=0.2, w3=0.3, w4=0.4, negative_weight=5.0, num_neighbors=0
    )
    for table in (model.user_embedding, model.item_embedding):
        table.weight.data.zero_()
    graph = model.input_graph(_three_users_four_items())
    users, pos, neg = torch.tensor([0, 1]), torch.tensor([1, 0]), torch.tensor([[2, 3], [1, 3]])
    bu0, bu1 = 2 / 3, 2**0.5  # beta_u of users 0 and 1 (test_constraint_betas_by_hand)
    bi = [3**-0.5, 2**-0.5, 2**-0.5, 1.0]
    positives = (0.1 + 0.2 * bu0 * bi[1]) + (0.1 + 0.2 * bu1 * bi[0])
    negatives = ((0.3 + 0.4 * bu0 * bi[2]) + (0.3 + 0.4 * bu0 * bi[3])) / 2  # a mean over each user's N_u
    negatives += ((0.3 + 0.4 * bu1 * bi[1]) + (0.3 + 0.4 * bu1 * bi[3])) / 2
    expected = math.log(2) * (positives + 5.0 * negatives)
    torch.testing.assert_close(model.loss(graph, users, pos, neg), torch.tensor(expected))


def test_l2_term_is_half_gamma_times_the_squared_norm():
    model = UltraGCN(
        3, 4, embedding_dim=1, w1=0, w2=0, w3=0, w4=0, negative_weight=0, gamma=1.0, num_neighbors=0
    )
    model.user_embedding.weight.data.fill_(1.0)
    model.item_embedding.weight.data.fill_(2.0)
    graph = model.input_graph(_three_users_four_items())
    loss = model.loss(graph, torch.tensor([0]), torch.tensor([1]), torch.tensor([[2, 3]]))
    # every constraint weight is 0; squared norm 3 * 1^2 + 4 * 2^2 = 19, halved
    torch.testing.assert_close(loss, torch.tensor(9.5))


def test_item_item_term_pairs_each_neighbour_with_its_weight(small_data):
    """The item-item term alone (every other weight 0): -lambda * sum_j omega_ij log sigmoid(e_u . e_j)
    over the positive item's neighbours j, each logit with its own neighbour's weight."""
    model = UltraGCN(
        30, 40, embedding_dim=4, w1=0, w2=0, w3=0, w4=0, negative_weight=0, gamma=0, lambda_=2.0,
        num_neighbors=4, std=1.0,
    )  # fmt: skip
    graph = model.input_graph(small_data)
    users, pos = torch.tensor([0, 1, 2]), torch.tensor([3, 4, 5])
    loss = model.loss(graph, users, pos, torch.tensor([[6], [7], [8]]))
    user_emb, item_emb = model.user_embedding.weight, model.item_embedding.weight
    expected = 0.0
    for user, item in zip(users.tolist(), pos.tolist()):
        for j, omega in zip(graph.neighbors[item].tolist(), graph.neighbor_weights[item].tolist()):
            expected -= 2.0 * omega * F.logsigmoid(user_emb[user] @ item_emb[j])
    assert float(graph.neighbor_weights[pos].std()) > 0.01  # the weights differ: a mix-up shows
    torch.testing.assert_close(loss, expected)


def test_item_neighbors_count_a_repeated_training_pair_once(small_data):
    index = small_data[EDGE].edge_index
    repeated = torch.cat([index, index[:, :5]], dim=1)  # R is binary: a repeat is the same interaction
    for got, expected in zip(item_neighbors(repeated, 30, 40, k=5), item_neighbors(index, 30, 40, k=5)):
        torch.testing.assert_close(got, expected)


def test_training_negatives_are_drawn_unchecked_as_the_official_sampler_does(small_data):
    # with hundreds of negatives per positive the few positives among them barely matter, and checking
    # every draw would dominate an iteration
    model = UltraGCN(30, 40, embedding_dim=8, num_negatives=50, num_neighbors=3)
    config = TrainConfig(epochs=1, batch_size=64, progress=False)
    batches = make_batches(model, small_data, config, torch.Generator().manual_seed(0))
    users, _, negatives = next(iter(batches))
    assert negatives.shape == (users.numel(), 50)
    train = small_data[EDGE].edge_index
    positives = set(zip(train[0].tolist(), train[1].tolist()))
    assert any((u, i) in positives for u, row in zip(users.tolist(), negatives.tolist()) for i in row)


def test_a_double_precision_model_takes_its_graph_in_double(small_data):
    model = UltraGCN(30, 40, embedding_dim=4, num_neighbors=3).double()
    graph = model.input_graph(small_data)  # the weights stayed float32
    assert graph.beta_user.dtype == graph.beta_item.dtype == graph.neighbor_weights.dtype == torch.float64
    assert (
        UltraGCN(30, 40, num_neighbors=0).double().input_graph(small_data).neighbor_weights.dtype
        == torch.float64
    )


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        # a negative block_rows gave torch.empty's memory as neighbours and weights, without an error; 0,
        # k = 2.0 and True failed inside range(), torch.empty and topk
        ({"block_rows": -1}, r"^block_rows must be an integer >= 1, got -1$"),
        ({"block_rows": 0}, r"^block_rows must be an integer >= 1, got 0$"),
        ({"k": True}, r"^k \(item neighbours\) must be an integer in \[1, 40\), got True$"),
        ({"k": 2.0}, r"^k \(item neighbours\) must be an integer in \[1, 40\), got 2.0$"),
        (
            {"num_items": 35},
            r"^train_index must hold users in \[0, num_users=30\) and items in \[0, num_items=35\)",
        ),
    ],
)
def test_item_neighbors_refuses_arguments_it_cannot_use(small_data, arguments, message):
    index = small_data["user", "to", "item"].edge_index
    arguments = {"num_users": 30, "num_items": 40, "k": 3} | arguments
    with pytest.raises(ValueError, match=message):
        item_neighbors(index, **arguments)


def test_macs_are_the_products_an_iteration_and_a_full_ranking_run(small_data):
    """One ``[B, num_items]`` product forward and two backward (the gradients of both tables), and the L2
    term's multiply-add per stored entry each way, which no matrix product counts; scoring all items is
    one ``U x I x d`` product. Only the sparse and masked counts were compared with the dense one."""
    from torch.utils.flop_counter import FlopCounterMode

    torch.manual_seed(0)
    model = UltraGCN(30, 40, embedding_dim=8, num_negatives=2, num_neighbors=3, gamma=1e-4)
    graph = model.input_graph(small_data)
    users, pos, neg = torch.arange(16), torch.arange(16), torch.arange(32) % 40
    with FlopCounterMode(display=False) as counter:
        model.loss(graph, users, pos, neg).backward()
    macs = model.macs(graph, 16, "dense")
    assert counter.get_total_flops() / 2 == macs["train_iteration"] - 2 * (30 + 40) * 8
    with FlopCounterMode(display=False) as counter:
        model.scorer(graph)(torch.arange(30))
    assert counter.get_total_flops() / 2 == macs["inference"]


@pytest.mark.parametrize("mask_init", ["random", "aligned"])
@pytest.mark.parametrize("backend", ["sparse", "masked"])
def test_ideal_macs_charge_the_products_of_two_active_entries(small_data, backend, mask_init):
    """The ideal count (sparse kernels for every sparsified tensor) charges a user-item dot product the
    products of an active user entry with an active item entry, as NeuMF's GMF branch and ConvNCF's outer
    product are charged: it charged the dense product, so UltraGCN's ideal savings were the L2 term's alone.
    Full ranking pairs exactly the active entries the masks share per column, a batch its share of them;
    aligned masks (every row's first columns) share far more than random ones."""
    model = UltraGCN(30, 40, embedding_dim=8, num_negatives=2, num_neighbors=3, gamma=0.0)
    graph = model.input_graph(small_data)
    DynamicSparseLearning(model, 0.5, 10, backend=backend, mask_init=mask_init)
    user, item = (table.weight.detach() != 0 for table in (model.user_embedding, model.item_embedding))
    # what a sparse kernel multiplies scoring every user against every item: each active (u, c) with
    # each active (i, c)
    paired = (user.double() @ item.double().T).sum().item()
    macs = {count: model.macs(graph, 16, count) for count in ("executed", "ideal")}
    assert macs["executed"]["inference"] == 30 * 40 * 8  # the dense rows are multiplied
    assert macs["ideal"]["inference"] == pytest.approx(paired)
    assert macs["ideal"]["train_iteration"] == pytest.approx(3 * paired * 16 / 30)
    rho_u, rho_i = user.double().mean().item(), item.double().mean().item()
    expected = rho_u * rho_i if mask_init == "random" else rho_u  # aligned: the same first columns
    assert paired / (30 * 40 * 8) == pytest.approx(expected, rel=0.2)


def test_ideal_macs_of_dense_tables_are_the_dense_products(small_data):
    """Every entry of a dense table is active: the ideal count pairs all of them, as the executed one does."""
    model = UltraGCN(30, 40, embedding_dim=8, num_negatives=2, num_neighbors=3)
    graph = model.input_graph(small_data)
    assert model.macs(graph, 16, "ideal") == pytest.approx(model.macs(graph, 16, "executed"))


def test_macs_without_the_l2_term_are_the_products_alone(small_data):
    """gamma = 0 drops the L2 term, and with it the multiply-add per stored entry it costs."""
    model = UltraGCN(30, 40, embedding_dim=8, num_negatives=2, num_neighbors=3, gamma=0.0)
    macs = model.macs(model.input_graph(small_data), 16, "dense")
    products = 16 * 40 * 8
    assert macs["train_forward"] == products and macs["train_iteration"] == 3 * products


def test_the_neighbour_cache_of_one_training_graph_is_not_read_for_another(small_data, tmp_path):
    """Two training graphs of the same sizes and number of interactions share a cache folder (one dataset's
    splits by seed): each gets the neighbours of its own interactions."""
    train = small_data[EDGE].edge_index
    other = torch.stack([train[0], (train[1] + 1) % 40])  # as many pairs, other items
    model = UltraGCN(30, 40, embedding_dim=4, num_negatives=2, num_neighbors=3, cache_dir=tmp_path)
    for index in (train, other, train):
        data = make_interaction_data(30, 40, index, index[:, :0])
        graph = model.input_graph(data)
        _, weights = item_neighbors(index, 30, 40, k=3)
        torch.testing.assert_close(graph.neighbor_weights, weights)
    assert len(list(tmp_path.glob("ultragcn_neighbors_*.pt"))) == 2


def test_the_graph_input_moves_whole(small_data):
    graph = UltraGCN(30, 40, embedding_dim=4, num_neighbors=3).input_graph(small_data).to("meta")
    assert {field.device.type for field in vars(graph).values()} == {"meta"}
