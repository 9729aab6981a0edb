"""Seconds per training step (forward, backward, Adam step, and the masked backend's re-masking) of
MultVAE's widest layer, ``n_items -> 600`` on ML-1M's 3,706 items, three ways: a dense
``nn.Linear``, the same layer with a DSL mask (``backend="masked"``, the DSL authors' way) and a
:class:`~dslgraph.sparse.SparseLinear` (``backend="sparse"``); plus the bytes of weight + mask or
positions + Adam state of each. Inputs are random multi-hot rows at ML-1M's density (~4.5%). Each figure
is the median of ``--repeats`` steps after one warm-up step, whose loss the masked and sparse layers of a
sparsity must agree on (the same weights), or the script stops.

python benchmarks/bench_sparse_linear.py --threads 2
"""

from __future__ import annotations

import statistics
import time

import torch
from common import agree, base_parser, count, machine, parse, sparsity_level, sync, write_csv
from torch import nn

from dslgraph.sparse import DynamicSparseLearning
from dslgraph.train import make_adam


def layer_bytes(layer: nn.Module, optimizer: torch.optim.Optimizer) -> int:
    tensors = [*layer.parameters(), *layer.buffers()]
    tensors += [s for p in layer.parameters() for s in optimizer.state[p].values() if s.dim()]
    return sum(t.numel() * t.element_size() for t in tensors)


def train_step(
    model: nn.Module, x: torch.Tensor, optimizer, dsl: DynamicSparseLearning | None
) -> torch.Tensor:
    optimizer.zero_grad()
    loss = model(x).tanh().sum()
    loss.backward()
    optimizer.step()
    if dsl is not None:
        dsl.step()
    return loss.detach()


def main() -> None:
    parser = base_parser(__doc__, "docs/benchmarks/sparse_linear_cpu.csv", dataset=False)
    parser.add_argument("--items", type=count, default=3706)
    parser.add_argument("--hidden", type=count, default=600)
    parser.add_argument("--batches", type=count, nargs="+", default=[16, 500])
    parser.add_argument("--sparsities", type=sparsity_level, nargs="+", default=[0.5, 0.8, 0.9])
    parser.add_argument("--repeats", type=count, default=20)
    args, device = parse(parser)
    settings = [(0.0, "dense")] + [(s, b) for s in args.sparsities for b in ("masked", "sparse")]
    rows = []
    for batch in args.batches:
        generator = torch.Generator().manual_seed(0)
        x = (torch.rand(batch, args.items, generator=generator) < 0.045).float().to(device)
        losses: dict[float, dict[str, torch.Tensor]] = {}  # per sparsity, each backend's first loss
        for sparsity, backend in settings:
            torch.manual_seed(0)
            model = nn.Sequential(nn.Linear(args.items, args.hidden)).to(device)
            dsl = None
            if backend != "dense":
                dsl = DynamicSparseLearning(
                    model, sparsity, 10**9, targets=[r"0\.weight"], update_interval=10**9, backend=backend
                )
            optimizer = make_adam(model.parameters(), 1e-3)
            if dsl is not None:
                dsl.attach(optimizer)
            # warm-up, and Adam's state exists from here on; masked and sparse start from the same weights
            losses.setdefault(sparsity, {})[backend] = train_step(model, x, optimizer, dsl)
            agree(f"the first loss at batch {batch}, sparsity {sparsity}", losses[sparsity])
            sync(device)
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                train_step(model, x, optimizer, dsl)
                sync(device)
                times.append(time.perf_counter() - start)
            rows.append(
                {
                    "batch": batch,
                    "sparsity": sparsity,
                    "backend": backend,
                    **machine(device),
                    "median_seconds_per_step": round(statistics.median(times), 5),
                    "bytes_weight_and_adam": layer_bytes(model[0], optimizer),
                }
            )
            print(rows[-1])
            write_csv(rows, args.output)  # after every row: a run cut short keeps what it measured


if __name__ == "__main__":
    main()
