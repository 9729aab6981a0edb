"""Seconds for one propagation layer (forward + backward) with torch's CSR kernel vs torch-sparse: the mean of
``--repeats`` after one warm-up, whose products and gradients must agree. Each kernel is timed as it is used:
torch-sparse keeps the transpose its backward needs, torch's CSR makes it in every backward.

python benchmarks/bench_spmm.py --dataset gowalla --root data
"""

from __future__ import annotations

import time

import torch
from common import agree, base_parser, count, machine, parse, read_dataset, sync, write_csv
from torch_geometric.typing import WITH_TORCH_SPARSE

from dslgraph.data import load_dataset, propagation_graph, to_sparse_tensor
from dslgraph.sparse import spmm


def main() -> None:
    parser = base_parser(__doc__, "docs/benchmarks/spmm_backends.csv")
    parser.add_argument("--repeats", type=count, default=5)
    args, device = parse(parser)
    adj = propagation_graph(read_dataset(parser, args, load_dataset)).to(device)
    kernels = {"torch CSR": adj}
    if WITH_TORCH_SPARSE:
        kernels["torch_sparse SparseTensor"] = to_sparse_tensor(adj)
    x = torch.randn(adj.size(0), 64, device=device, requires_grad=True)
    weight = torch.randn(adj.size(0), 64, device=device)  # the product's gradient, other than all ones
    rows, products, gradients = [], {}, {}
    for name, matrix in kernels.items():
        x.grad = None
        out = spmm(matrix, x)  # warm-up (torch-sparse caches its transpose)
        (out * weight).sum().backward()
        products[name], gradients[name] = out.detach(), x.grad.clone()
        agree("the product", products)
        agree("the gradient", gradients)
        sync(device)
        start = time.perf_counter()
        for _ in range(args.repeats):
            x.grad = None
            (spmm(matrix, x) * weight).sum().backward()
        sync(device)
        seconds = (time.perf_counter() - start) / args.repeats
        rows.append(
            {"dataset": args.dataset, "kernel": name, **machine(device), "seconds_fwd_bwd": round(seconds, 4)}
        )
        print(rows[-1])
    write_csv(rows, args.output)


if __name__ == "__main__":
    main()
