import pytest
import torch
from torch_geometric.nn.models import LightGCN as PyGLightGCN
from torch_geometric.typing import WITH_TORCH_SPARSE

from dslgraph.data import EDGE, make_interaction_data, propagation_graph, to_sparse_tensor
from dslgraph.nn import LightGCN
from dslgraph.sparse import DynamicSparseLearning


def test_matches_pyg_lightgcn(small_data, device):
    adj = propagation_graph(small_data).to(device)
    ours = LightGCN(30, 40, embedding_dim=8, num_layers=3).to(device)
    theirs = PyGLightGCN(70, 8, 3).to(device)
    theirs.embedding.weight.data.copy_(ours.embedding.weight.data)
    user, item = small_data[EDGE].edge_index.to(device)
    edge_index = torch.cat([torch.stack([user, item + 30]), torch.stack([item + 30, user])], 1)
    torch.testing.assert_close(
        ours.get_embedding(adj), theirs.get_embedding(edge_index), atol=1e-5, rtol=1e-5
    )
    pairs = torch.stack([user[:10], item[:10]])
    pyg_pairs = torch.stack([pairs[0], pairs[1] + 30])
    torch.testing.assert_close(ours(adj, pairs), theirs(edge_index, pyg_pairs), atol=1e-5, rtol=1e-5)


def test_gradient_matches_autograd_on_dense_matrix(small_data):
    adj = propagation_graph(small_data)
    model = LightGCN(30, 40, embedding_dim=4, num_layers=2)
    users, pos, neg = torch.tensor([0, 1]), torch.tensor([2, 3]), torch.tensor([4, 5])
    model.loss(adj, users, pos, neg).backward()
    weight = model.embedding.weight.detach().clone().requires_grad_()
    dense = adj.to_dense()
    x1 = dense @ weight
    out = (weight + x1 + dense @ x1) / 3
    u, p, n = out[users], out[pos + 30], out[neg + 30]
    loss = torch.nn.functional.softplus((u * n).sum(-1) - (u * p).sum(-1)).mean()
    ego = torch.cat([weight[users], weight[pos + 30], weight[neg + 30]])
    (loss + 1e-4 * ego.pow(2).sum() / 4).backward()
    torch.testing.assert_close(model.embedding.weight.grad, weight.grad)


def test_loss_without_a_regulariser_is_the_bpr_loss_alone(small_data):
    """reg_weight=0 (the default is the LightGCN authors' 1e-4) leaves the L2 term out."""
    adj = propagation_graph(small_data)
    model = LightGCN(30, 40, embedding_dim=4, num_layers=2)
    users, pos, neg = torch.tensor([0, 1]), torch.tensor([2, 3]), torch.tensor([4, 5])
    out = model.get_embedding(adj)
    u, p, n = out[users], out[pos + 30], out[neg + 30]
    expected = torch.nn.functional.softplus((u * n).sum(-1) - (u * p).sum(-1)).mean()
    torch.testing.assert_close(model.loss(adj, users, pos, neg, reg_weight=0.0), expected)
    assert model.loss(adj, users, pos, neg) > expected


@pytest.mark.parametrize("backend", [None, "sparse"])
def test_loss_sums_the_gradients_of_the_rows_a_batch_repeats(small_data, backend):
    """The loss gathers the batch's rows with index_select on the CPU (its backward, an index_add_, is faster
    than indexing's): a user twice in a batch and an item both a positive and a negative get the sum of their
    rows' gradients, as with rows gathered by indexing."""
    adj = propagation_graph(small_data)
    model = LightGCN(30, 40, embedding_dim=8, num_layers=2)
    if backend:
        DynamicSparseLearning(model, 0.5, total_steps=10, backend=backend)
    users, pos, neg = torch.tensor([0, 0, 5, 0]), torch.tensor([2, 3, 3, 7]), torch.tensor([3, 2, 9, 3])
    params = list(model.parameters())
    grads = torch.autograd.grad(model.loss(adj, users, pos, neg, reg_weight=0.1), params)
    ego, out = model._layers(adj)
    u, p, n = out[users], out[pos + 30], out[neg + 30]
    loss = torch.nn.functional.softplus((u * n).sum(-1) - (u * p).sum(-1)).mean()
    ego_rows = torch.cat([ego[users], ego[pos + 30], ego[neg + 30]])
    expected = torch.autograd.grad(loss + 0.1 * ego_rows.pow(2).sum() / 8, params)
    for grad, want in zip(grads, expected):
        torch.testing.assert_close(grad, want)


def test_recommend_excludes_training_items(small_data, device):
    adj = propagation_graph(small_data).to(device)
    model = LightGCN(30, 40, embedding_dim=8).to(device)
    train = small_data[EDGE].edge_index  # ids and exclusions on the CPU, as a caller holds them
    users = torch.arange(30)
    top = model.recommend(adj, users, k=5, exclude=train)
    seen = set(zip(train[0].tolist(), train[1].tolist()))
    assert top.shape == (30, 5)
    assert not any((u, i) in seen for u in range(30) for i in top[u].tolist())


def test_repr_and_bad_layers():
    assert "LightGCN(3, 4, dim=8, num_layers=2" in repr(LightGCN(3, 4, embedding_dim=8, num_layers=2))
    with pytest.raises(ValueError, match="num_layers"):
        LightGCN(3, 4, embedding_dim=8, num_layers=-1)
    with pytest.raises(ValueError, match="num_users"):
        LightGCN(-1, 4, embedding_dim=8)  # the shared table would still have 3 rows
    with pytest.raises(ValueError, match="embedding_dim must be an integer >= 1, got 0"):
        LightGCN(3, 4, embedding_dim=0)
    with pytest.raises(ValueError, match=r"num_layers must be an integer >= 0, got 1\.5"):
        LightGCN(3, 4, embedding_dim=8, num_layers=1.5)  # failed in forward


def test_reset_parameters_draws_what_the_constructor_drew():
    torch.manual_seed(0)
    fresh = LightGCN(30, 40, embedding_dim=8, init="xavier")
    model = LightGCN(30, 40, embedding_dim=8, init="xavier")
    torch.manual_seed(0)
    model.reset_parameters()
    assert torch.equal(model.embedding.weight, fresh.embedding.weight)


@pytest.mark.skipif(not WITH_TORCH_SPARSE, reason="torch-sparse is not installed")
def test_sparse_tensor_adjacency_gives_same_embeddings_and_gradients(small_data):
    adj = propagation_graph(small_data)
    model = LightGCN(30, 40, embedding_dim=8)
    users, pos, neg = torch.arange(5), torch.arange(5), torch.arange(5, 10)
    model.loss(adj, users, pos, neg).backward()
    grad = model.embedding.weight.grad.clone()
    model.embedding.weight.grad = None
    model.loss(to_sparse_tensor(adj), users, pos, neg).backward()
    torch.testing.assert_close(model.get_embedding(to_sparse_tensor(adj)), model.get_embedding(adj))
    torch.testing.assert_close(model.embedding.weight.grad, grad)


def test_an_edge_index_instead_of_the_graph_fails_naming_what_to_pass(small_data):
    model = LightGCN(30, 40, embedding_dim=8)
    with pytest.raises(TypeError, match=r"model.input_graph\(data\)"):
        model.get_embedding(small_data[EDGE].edge_index)  # PyG's LightGCN takes an edge index
    coo = propagation_graph(small_data).to_sparse_coo()  # the graph, in another sparse layout
    with pytest.raises(
        TypeError, match=r"a sparse CSR \[70, 70\] tensor, not a .* in layout torch.sparse_coo"
    ):
        model.get_embedding(coo)


@pytest.mark.parametrize(
    ("pairs", "match"),
    [
        ([[0], [-1]], "items must be ids in"),  # scored user 29 as the item
        ([[30], [0]], "users must be ids in"),  # scored item 0 as the user
        ([[0], [40]], "items must be ids in"),  # failed naming index 70 of a 70-row table
        ([0, 1], r"edge_label_index must be a \[2, E\] index"),  # scored one pair, as a 0-dim tensor
        ([[0, 1], [1, 2], [2, 3]], r"edge_label_index must be a \[2, E\] index"),  # rows 0 and 1 taken
        ([[0.0], [1.0]], "users must be a 1-D tensor of integer ids"),
    ],
)
def test_forward_refuses_ids_outside_the_table_sides(pairs, match, small_data):
    model = LightGCN(30, 40, embedding_dim=8)
    with pytest.raises(ValueError, match=match):
        model(propagation_graph(small_data), torch.tensor(pairs))
    score = model.scorer(propagation_graph(small_data))
    with pytest.raises(ValueError, match="users must be ids in"):
        score(torch.tensor([30]))  # the first item's scores
    with pytest.raises(ValueError, match=r"items must have shape \[B, C\]"):
        score(torch.tensor([0, 1]), torch.tensor([2, 3]))  # broadcast to [2, 2], silently


def test_the_data_or_the_graph_of_another_dataset_is_refused_naming_input_graph(small_data):
    model = LightGCN(30, 40, embedding_dim=8)
    with pytest.raises(TypeError, match=r"model.input_graph\(data\) builds, .*not a HeteroData"):
        model.recommend(small_data, torch.tensor([0]), 5)  # 'HeteroData' has no attribute 'storage'
    store = small_data[EDGE]
    wider = propagation_graph(make_interaction_data(30, 50, store.edge_index, store.edge_label_index))
    message = r"the graph is \[80, 80\], LightGCN was built for a \[70, 70\] one"
    with pytest.raises(ValueError, match=message):
        model(wider, torch.tensor([[0], [1]]))  # mat1 and mat2 shapes cannot be multiplied (80x80 and 70x8)
    if WITH_TORCH_SPARSE:
        with pytest.raises(ValueError, match=message):
            model.get_embedding(to_sparse_tensor(wider))


def test_the_graph_of_data_of_other_sizes_is_refused(small_data):
    model = LightGCN(30, 41, embedding_dim=8)  # failed multiplying a 70 x 70 graph with a 71-row table
    with pytest.raises(
        ValueError, match="the data has 30 users and 40 items, the model was built for 30 and 41"
    ):
        model.input_graph(small_data)


def test_a_double_precision_model_takes_its_graph_in_double(small_data):
    torch.manual_seed(0)
    single = LightGCN(30, 40, embedding_dim=8)
    double = LightGCN(30, 40, embedding_dim=8)
    double.load_state_dict(single.state_dict())
    double = double.double()
    graph = double.input_graph(small_data)  # a float32 graph failed "expected scalar type Double"
    assert graph.dtype == torch.float64
    scores = double.scorer(graph)(torch.arange(4))
    expected = single.scorer(single.input_graph(small_data))(torch.arange(4))
    torch.testing.assert_close(scores.float(), expected, rtol=1e-4, atol=1e-5)


def _two_users_two_items():
    """User 0 has items 0 and 1, user 1 item 0: degrees 2, 1 (users) and 2, 1 (items)."""
    train = torch.tensor([[0, 0, 1], [0, 1, 0]])
    return make_interaction_data(2, 2, train, train[:, :0])


def test_embeddings_and_scores_by_hand():
    # D^-1/2 A D^-1/2 weighs (u0, i0) 1/sqrt(2 * 2) = 1/2, (u0, i1) and (u1, i0) 1/sqrt(2 * 1) = 1/sqrt(2).
    # With the table E = (u0, u1, i0, i1) = (1, 2, 3, 4), one propagation gives
    # u0: 3/2 + 4/sqrt(2), u1: 3/sqrt(2), i0: 1/2 + 2/sqrt(2), i1: 1/sqrt(2).
    data, r = _two_users_two_items(), 2**-0.5
    table = torch.tensor([[1.0], [2.0], [3.0], [4.0]])
    propagated = torch.tensor([[1.5 + 4 * r], [3 * r], [0.5 + 2 * r], [r]])
    for layers, expected in ((0, table), (1, (table + propagated) / 2)):  # the mean of layers 0..K
        model = LightGCN(2, 2, embedding_dim=1, num_layers=layers)
        model.embedding.weight.data.copy_(table)
        graph = model.input_graph(data)
        torch.testing.assert_close(model.get_embedding(graph), expected)
        scores = expected[:2] @ expected[2:].T  # users' rows against items' rows
        torch.testing.assert_close(model.scorer(graph)(torch.arange(2)), scores)
        torch.testing.assert_close(model(graph, torch.tensor([[0, 1], [1, 0]])), scores[[0, 1], [1, 0]])


@pytest.mark.parametrize("backend", [None, "sparse", "compact", "masked"])
def test_cpu_autocast_runs_the_propagation_in_float32_and_a_half_model_is_refused(small_data, backend):
    """Under torch.autocast on the CPU every LightGCN (dense table, each DSL backend) failed inside torch with
    '"addmm_out_sparse_csr_impl_mkl" not implemented for 'BFloat16'': autocast ran the graph product in
    bfloat16, which torch's CSR product has no CPU kernel for; it now runs in float32. A float16 / bfloat16
    model there failed the same way with the dense table and under backend='masked' (a sparse table's
    named itself), and is now refused naming the propagation."""
    torch.manual_seed(0)
    model = LightGCN(30, 40, embedding_dim=8)
    if backend is not None:
        DynamicSparseLearning(model, 0.5, total_steps=10, update_interval=5, backend=backend)
    adj = model.input_graph(small_data)
    pairs = small_data[EDGE].edge_index[:, :10]
    expected = model(adj, pairs)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        scores = model(adj, pairs)
        loss = model.loss(adj, *pairs, pairs[1].flip(0))
    torch.testing.assert_close(scores, expected)  # the propagation in float32, the scores' products too
    loss.backward()
    model.bfloat16()
    with pytest.raises(TypeError, match=r"propagation in torch\.bfloat16 cannot run on the CPU: .*float32"):
        model(model.input_graph(small_data), pairs)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("backend", [None, "sparse", "compact", "masked"])
def test_cuda_autocast_and_a_half_model_score_as_float32_does(small_data, backend, dtype):
    """On CUDA, where the half-precision CSR product has kernels: under torch.autocast each LightGCN
    trains with finite gradients and scores as in float32, and a float16 / bfloat16 model (its graph built
    in its dtype, degrees counted exactly) scores as the float32 one up to its rounding. Written in the
    32nd session without a GPU: not yet run."""
    torch.manual_seed(0)
    model = LightGCN(30, 40, embedding_dim=8).cuda()
    if backend is not None:
        DynamicSparseLearning(model, 0.5, total_steps=10, update_interval=5, backend=backend)
    data = small_data.to("cuda")
    pairs = data[EDGE].edge_index[:, :10]
    expected = model(model.input_graph(data), pairs)
    tolerance = {"rtol": 2e-2, "atol": 2e-3} if dtype == torch.bfloat16 else {"rtol": 2e-3, "atol": 2e-4}
    with torch.autocast("cuda", dtype=dtype):
        adj = model.input_graph(data)
        torch.testing.assert_close(model(adj, pairs).float(), expected, **tolerance)
        loss = model.loss(adj, *pairs, pairs[1].flip(0))
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(g.isfinite().all() for g in grads)
    model.to(dtype)
    scores = model(model.input_graph(data), pairs)
    assert scores.dtype == dtype
    torch.testing.assert_close(scores.float(), expected, **tolerance)


def test_candidate_scores_are_the_full_scores_of_those_items(small_data):
    """The sampled protocol scores [B, C] candidates: each must be the user's full-ranking score of that
    item (the item rows after the users', not the table's first rows)."""
    torch.manual_seed(0)
    model = LightGCN(30, 40, embedding_dim=8, num_layers=2)
    score = model.scorer(model.input_graph(small_data))
    users, items = torch.tensor([0, 5, 5]), torch.tensor([[1, 2, 39], [4, 5, 6], [0, 38, 7]])
    torch.testing.assert_close(score(users, items), score(users).gather(1, items))


def test_without_layers_the_bpr_term_trains_the_table_itself(small_data):
    """K = 0: the final embeddings are the table, and the BPR term's gradient reaches it."""
    torch.manual_seed(0)
    model = LightGCN(30, 40, embedding_dim=4, num_layers=0)
    users, pos, neg = torch.tensor([0, 1]), torch.tensor([2, 3]), torch.tensor([4, 5])
    model.loss(model.input_graph(small_data), users, pos, neg, reg_weight=0.0).backward()
    weight = model.embedding.weight.detach().clone().requires_grad_()
    u, p, n = weight[users], weight[pos + 30], weight[neg + 30]
    torch.nn.functional.softplus((u * n).sum(-1) - (u * p).sum(-1)).mean().backward()
    assert weight.grad.abs().sum() > 0
    torch.testing.assert_close(model.embedding.weight.grad, weight.grad)
