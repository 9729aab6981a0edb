"""Plugging DSL into your own GNN recommender: PyG's own LightGCN, trained by a hand-written loop.

DynamicSparseLearning replaces the model's ``torch.nn.Embedding`` by a genuinely sparse table (only
active entries stored and given Adam state); the model keeps reading ``embedding.weight``, which
the sparse table provides as a dense view. Call ``dsl.step()`` after every ``optimizer.step()``.
``dsl.dense_state_dict()`` gives the trained model to PyG's LightGCN built without DSL, to serve.

Usage: python examples/custom_gnn_dsl.py [--epochs 20] [--sparsity 0.8] [--root DIR] [--threads N]
"""

import argparse

import torch
from torch_geometric.nn.models import LightGCN as PyGLightGCN

from dslgraph.data import EDGE, BPRBatches, LastFM
from dslgraph.metrics import RankingEvaluator
from dslgraph.sparse import DynamicSparseLearning


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=20, help="training epochs (default 20)")
    parser.add_argument(
        "--sparsity",
        type=float,
        default=0.8,
        help="fraction of the table's entries kept inactive, in [0, 1) (default 0.8)",
    )
    parser.add_argument("--root", help="folder holding lastfm/raw (default: dslgraph's data folder)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.epochs < 1:
        parser.error(f"--epochs must be at least 1, got {args.epochs}")
    if not 0 <= args.sparsity < 1:  # nan too
        parser.error(f"--sparsity must be in [0, 1), got {args.sparsity}")
    if args.threads < 0:
        parser.error(f"--threads must be at least 0, got {args.threads}")
    if args.threads:
        torch.set_num_threads(args.threads)

    try:
        data = LastFM(root=args.root)[0]
    except OSError as exc:  # a --root that is a file or not writable: a traceback named no flag
        parser.error(f"--root: {exc}")
    num_users, num_items = int(data["user"].num_nodes), int(data["item"].num_nodes)
    user, item = data[EDGE].edge_index
    edge_index = torch.cat([torch.stack([user, item + num_users]), torch.stack([item + num_users, user])], 1)

    torch.manual_seed(0)
    model = PyGLightGCN(num_users + num_items, embedding_dim=64, num_layers=3)
    batches = BPRBatches(
        data[EDGE].edge_index, num_items, batch_size=2048, generator=torch.Generator().manual_seed(0)
    )
    dsl = DynamicSparseLearning(
        model, args.sparsity, total_steps=args.epochs * len(batches), update_interval=100
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)  # created after DSL swapped the table
    dsl.attach(optimizer)
    print(dsl)

    evaluator = RankingEvaluator.from_data(data, "test", ks=(20,))
    for epoch in range(1, args.epochs + 1):
        for users, pos, neg in batches:
            optimizer.zero_grad()
            src = torch.cat([users, users])
            dst = torch.cat([pos, neg]) + num_users
            pos_rank, neg_rank = model(edge_index, torch.stack([src, dst])).chunk(2)
            node_id = torch.cat([users, pos + num_users, neg + num_users])
            model.recommendation_loss(pos_rank, neg_rank, node_id=node_id, lambda_reg=1e-4).backward()
            optimizer.step()
            dsl.step()
        with torch.no_grad():
            emb = model.get_embedding(edge_index)
        metrics = evaluator.evaluate_embeddings(emb[:num_users], emb[num_users:])
        print(f"epoch {epoch}: recall@20={metrics['recall@20']:.4f} active={dsl.active_counts()}")

    # to serve: PyG's own LightGCN, built without DSL, loads the trained weights (zero where inactive)
    plain = PyGLightGCN(num_users + num_items, embedding_dim=64, num_layers=3)
    plain.load_state_dict(dsl.dense_state_dict())
    with torch.no_grad():
        emb = plain.get_embedding(edge_index)
    metrics = evaluator.evaluate_embeddings(emb[:num_users], emb[num_users:])
    print(f"dense copy to serve: recall@20={metrics['recall@20']:.4f}")


if __name__ == "__main__":
    main()
