"""Seconds per UltraGCN batch for the negatives' logits (forward + backward; the bulk of the N + K + 1
logits per positive) two ways: gathering ``[B, N, d]`` item rows, or one ``[B, I]`` product of the users
with every item, then a gather (what ``dslgraph.nn.UltraGCN`` does). Random tables of the shapes of the
official presets. Each figure is the mean of ``--repeats`` after one warm-up, whose logits the two ways must
agree on.

python benchmarks/bench_ultragcn_logits.py --threads 2
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from common import agree, base_parser, count, machine, parse, sync, write_csv

# (name, batch B, negatives N, items I, dim d) of the official ML-1M and Gowalla configurations
SHAPES = (("ml-1m", 1024, 200, 3043, 128), ("gowalla", 512, 1500, 40981, 64))


def logits(route: str, users: torch.Tensor, items: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    if route == "gather":
        return (users.unsqueeze(1) * items[index]).sum(-1)
    return (users @ items.T).gather(1, index)


def main() -> None:
    parser = base_parser(__doc__, "docs/benchmarks/ultragcn_logits_cpu.csv", dataset=False)
    parser.add_argument("--repeats", type=count, default=5)
    args, device = parse(parser)
    rows = []
    for name, batch, negatives, num_items, dim in SHAPES:
        generator = torch.Generator().manual_seed(0)
        users = torch.randn(batch, dim, generator=generator).to(device).requires_grad_()
        items = torch.randn(num_items, dim, generator=generator).to(device).requires_grad_()
        index = torch.randint(num_items, (batch, negatives), generator=generator).to(device)
        computed = {}
        for route in ("gather", "product"):
            out = logits(route, users, items, index)  # warm-up
            F.logsigmoid(-out).sum().backward()
            computed[route] = out.detach()
            agree(f"the {name} logits", computed)
            sync(device)
            start = time.perf_counter()
            for _ in range(args.repeats):
                F.logsigmoid(-logits(route, users, items, index)).sum().backward()
            sync(device)
            seconds = (time.perf_counter() - start) / args.repeats
            rows.append(
                {"shape": name, "route": route, **machine(device), "seconds_fwd_bwd": round(seconds, 4)}
            )
            print(rows[-1])
    write_csv(rows, args.output)


if __name__ == "__main__":
    main()
