"""Seconds per training epoch and per full-ranking evaluation: dslgraph's LightGCN vs a plain loop
around PyG's ``torch_geometric.nn.models.LightGCN``, same data, batch size, device and negatives.
dslgraph's side steps the optimizer it trains with (:func:`dslgraph.train.make_adam`, the fused Adam; since
the 8th session), the plain loop ``torch.optim.Adam`` with its defaults, as a user of PyG would write it.

An epoch is ``ceil(train interactions / batch)`` BPR iterations; to keep CPU runs short, the
script times ``--iterations`` of them after ``--warmup`` and reports the mean per iteration times
the iterations per epoch (``--iterations 0`` times the rest of the first epoch), plus the seconds the epoch
spends drawing its batches before the first one (``sampling_seconds_per_epoch``: shuffle, negatives,
transfer; once per epoch, so not in the mean, also where the timed iterations cross into the next epoch;
the negative sampler's build, once per run, in neither). Evaluation is one full-ranking pass (all users with
test items, training items excluded, Recall/NDCG@20) timed end to end, after an untimed one.
With ``--train-epochs E`` both are then trained for E whole epochs on the same batches and their
final Recall/NDCG@20 is reported (a quality check of the same protocol, not a timing).

    python benchmarks/bench_lightgcn.py --dataset gowalla --root data --device cpu
"""

from __future__ import annotations

import time

import torch
from common import Epochs, base_parser, count, machine, parse, read_dataset, sync, write_csv
from torch_geometric.metrics import LinkPredNDCG, LinkPredRecall
from torch_geometric.nn.models import LightGCN as PyGLightGCN

from dslgraph.data import EDGE, BPRBatches, load_dataset, propagation_graph
from dslgraph.metrics import RankingEvaluator
from dslgraph.nn import LightGCN
from dslgraph.train import make_adam


def time_iterations(step, batches, device, warmup: int, iterations: int) -> tuple[float, float]:
    """Mean seconds per training iteration, and the seconds the first epoch took to draw its batches (a
    later epoch's draw that falls among the timed iterations is left out of their mean)."""
    epochs = Epochs(batches, device)
    for _ in range(warmup):
        step(*next(epochs))
    sync(device)
    count = iterations or len(batches) - warmup
    if count < 1:
        raise ValueError(
            f"--iterations 0 times the rest of the first epoch, but --warmup {warmup} takes all of its "
            f"{len(batches)} iterations"
        )
    drawing = epochs.drawing
    start = time.perf_counter()
    for _ in range(count):
        step(*next(epochs))
    sync(device)
    return (time.perf_counter() - start - (epochs.drawing - drawing)) / count, epochs.draws[0]


def pyg_loop(data, device, dim, layers, lr, reg):
    """A straightforward training step and evaluation around PyG's LightGCN."""
    num_users, num_items = int(data["user"].num_nodes), int(data["item"].num_nodes)
    user, item = data[EDGE].edge_index
    edge_index = torch.cat(
        [torch.stack([user, item + num_users]), torch.stack([item + num_users, user])], 1
    ).to(device)
    model = PyGLightGCN(num_users + num_items, dim, layers).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)

    def step(users, pos, neg):
        optimizer.zero_grad()
        src = torch.cat([users, users])
        dst = torch.cat([pos, neg]) + num_users
        rank = model(edge_index, torch.stack([src, dst]))
        pos_rank, neg_rank = rank.chunk(2)
        loss = model.recommendation_loss(
            pos_rank, neg_rank, node_id=torch.cat([users, pos + num_users, neg + num_users]), lambda_reg=reg
        )
        loss.backward()
        optimizer.step()

    @torch.no_grad()
    def evaluate(batch_size: int = 2048):
        emb = model.get_embedding(edge_index)
        user_emb, item_emb = emb[:num_users], emb[num_users:]
        train = data[EDGE].edge_index.to(device)
        test = data[EDGE].edge_label_index.to(device)
        recall, ndcg = LinkPredRecall(20).to(device), LinkPredNDCG(20).to(device)
        users = test[0].unique()
        for start in range(0, users.numel(), batch_size):
            batch = users[start : start + batch_size]
            scores = user_emb[batch] @ item_emb.T
            pos = torch.full((num_users,), -1, device=device)
            pos[batch] = torch.arange(batch.numel(), device=device)
            seen = pos[train[0]] >= 0
            scores[pos[train[0, seen]], train[1, seen]] = float("-inf")
            top = scores.topk(20, dim=-1).indices
            keep = pos[test[0]] >= 0
            label = torch.stack([pos[test[0, keep]], test[1, keep]])
            recall.update(top, label)
            ndcg.update(top, label)
        return float(recall.compute()), float(ndcg.compute())

    return step, evaluate


def ours(data, device, dim, layers, lr, reg):
    num_users, num_items = int(data["user"].num_nodes), int(data["item"].num_nodes)
    adj = propagation_graph(data).to(device)
    model = LightGCN(num_users, num_items, embedding_dim=dim, num_layers=layers).to(device)
    optimizer = make_adam(model.parameters(), lr)  # what dslgraph trains with (the fused Adam)
    evaluator = RankingEvaluator.from_data(data, "test", ks=(20,), batch_size=2048, device=device)

    def step(users, pos, neg):
        optimizer.zero_grad()
        model.loss(adj, users, pos, neg, reg).backward()
        optimizer.step()

    @torch.no_grad()
    def evaluate():
        result = evaluator(model.scorer(adj))
        return result["recall@20"], result["ndcg@20"]

    return step, evaluate


def main() -> None:
    parser = base_parser(__doc__, "docs/benchmarks/lightgcn_speed.csv")
    parser.add_argument("--batch-size", type=count, default=2048)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--train-epochs", type=int, default=0)
    args, device = parse(parser)
    if args.warmup < 0 or args.iterations < 0 or args.train_epochs < 0:
        parser.error("need --warmup, --iterations and --train-epochs >= 0")
    data = read_dataset(parser, args, load_dataset)
    rows = []
    for name, build in (("pyg-loop", pyg_loop), ("dslgraph", ours)):
        torch.manual_seed(0)
        step, evaluate = build(data, device, 64, 3, 1e-3, 1e-4)
        batches = BPRBatches(
            data[EDGE].edge_index,
            int(data["item"].num_nodes),
            args.batch_size,
            torch.Generator().manual_seed(0),
            device,
        )
        per_iter, sampling = time_iterations(step, batches, device, args.warmup, args.iterations)
        evaluate()  # warm-up (builds caches, allocator)
        sync(device)
        start = time.perf_counter()
        recall, ndcg = evaluate()
        sync(device)
        eval_seconds = time.perf_counter() - start
        if args.train_epochs:
            for _ in range(args.train_epochs):
                for batch in batches:
                    step(*batch)
            recall, ndcg = evaluate()
        rows.append(
            {
                "implementation": name,
                "dataset": args.dataset,
                **machine(device),
                "batch_size": args.batch_size,
                "iterations_per_epoch": len(batches),
                "seconds_per_iteration": round(per_iter, 4),
                "sampling_seconds_per_epoch": round(sampling, 3),
                "seconds_per_epoch": round(per_iter * len(batches) + sampling, 2),
                "seconds_per_full_eval": round(eval_seconds, 2),
                "train_epochs": args.train_epochs,
                "recall@20": round(recall, 4),
                "ndcg@20": round(ndcg, 4),
            }
        )
        print(rows[-1], flush=True)
        write_csv(rows, args.output)  # after every row: a run cut short keeps what it measured


if __name__ == "__main__":
    main()
