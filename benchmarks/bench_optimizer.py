"""Milliseconds per Adam step on an embedding table's worth of parameters: torch's default implementation
(on the CPU a loop over tensors; on CUDA torch's default is ``foreach``, so those two rows time the same
code), ``foreach`` and ``fused`` (:func:`dslgraph.train.make_adam`'s choice).

Sizes default to LightGCN's Gowalla table dense (70,839 x 64) and at 80% sparsity (its active values). Each
figure is the mean of ``--steps`` steps after 3 that create Adam's state; the variants start from the same
parameters and gradient and must end with the same parameters.

    python benchmarks/bench_optimizer.py --device cpu --threads 2
"""

from __future__ import annotations

import time

import torch
from common import agree, base_parser, count, machine, parse, sync, write_csv


def main() -> None:
    parser = base_parser(__doc__, "docs/benchmarks/adam_step.csv", dataset=False)
    parser.add_argument("--sizes", type=count, nargs="+", default=[70839 * 64, round(70839 * 64 * 0.2)])
    parser.add_argument("--steps", type=count, default=20)
    args, device = parse(parser)
    rows = []
    for size in args.sizes:
        generator = torch.Generator().manual_seed(0)
        start_value, grad = torch.randn(2, size, generator=generator).to(device)
        stepped = {}  # each variant's parameter after its steps, from the same start and gradient
        for variant in ("default", "foreach", "fused"):
            param = torch.nn.Parameter(start_value.clone())
            param.grad = grad
            options = {} if variant == "default" else {variant: True}
            optimizer = torch.optim.Adam([param], lr=1e-3, **options)
            for _ in range(3):  # creates the state
                optimizer.step()
            sync(device)
            start = time.perf_counter()
            for _ in range(args.steps):
                optimizer.step()
            sync(device)
            ms = (time.perf_counter() - start) / args.steps * 1000
            stepped[variant] = param.detach()
            agree(f"Adam on {size} parameters", stepped)
            rows.append({**machine(device), "parameters": size, "adam": variant, "ms_per_step": round(ms, 3)})
            print(rows[-1], flush=True)
    write_csv(rows, args.output)


if __name__ == "__main__":
    main()
