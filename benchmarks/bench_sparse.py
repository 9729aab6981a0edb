"""Seconds per LightGCN training iteration (and epoch): genuinely sparse table vs dense-with-mask vs dense.

For each sparsity the same model is trained with ``backend="sparse"`` (only active entries stored and
propagated), ``backend="compact"`` (stored the same way, propagated through a transient dense copy) and
``backend="masked"`` (the authors' dense weight times a mask), plus the dense model once.
Times are the mean of ``--iterations`` BPR iterations after ``--warmup`` (which also builds the sparse
propagation plan); one DSL prune-and-grow update (with the plan rebuild it causes) is timed on its own,
and the amortised per-iteration cost at ``--update-interval`` is reported. The update is one sample (two
iterations less twice the mean iteration): an update shorter than the iterations' spread reads as noise,
negative included. It is the only update: the iterations counted and profiled after it have none. The
amortised epoch also counts the seconds an epoch spends drawing its batches (shuffle, negatives, transfer),
which the timed iterations and the update leave out where an epoch starts among them. The backends at one
sparsity train the same model on the same batches: the loss of their first iteration (``first_loss``) must
agree, or the script stops.

    python benchmarks/bench_sparse.py --dataset gowalla --root data --device cpu

Each row also counts the operators one iteration calls (``operators_per_iteration``: aten calls, nested ones
included) and, on CUDA, the kernels it launches (``kernels_per_iteration``): at a few milliseconds an
iteration a GPU is bound by launches, so these counts predict the GPU's ranking of the backends, and they
can be read on a CPU.

Each row also records the bytes held between iterations: parameters with positions or masks plus optimizer
state, gradients, and ``workspace_bytes`` (the sparse table's propagation plan, an index and a weight per
multiply-add), and on CUDA the peak memory allocated during the timed iterations.

``--compile COMPILER`` times the model's loss compiled by ``torch.compile(backend=COMPILER)`` (``inductor``,
torch's default; ``aot_eager`` traces without generating code), the first ``--warmup`` iterations compiling
it. The update is not timed then (``seconds_per_update`` empty, the amortised epoch without it): the iteration
before it, which records the gradient to grow by, compiles a second graph the first time.

``--profile FILE`` also writes, per row, torch.profiler's table of the operators (and, on CUDA, kernels) of
three iterations, most time first: where the backends' time goes. FILE holds this run's rows only (an earlier
file is replaced, as ``--output`` is) and is rewritten whole after each row, as ``--output``: a run cut short
keeps the tables of the rows it measured.
"""

from __future__ import annotations

import gc
import time

import torch
from common import (
    Epochs,
    agree,
    base_parser,
    check_output,
    count,
    machine,
    parse,
    read_dataset,
    sparsity_level,
    sync,
    write_csv,
    write_text,
)
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile

from dslgraph.data import EDGE, BPRBatches, load_dataset, propagation_graph
from dslgraph.metrics.cost import optimizer_state_bytes, parameter_bytes, tensor_bytes, workspace_bytes
from dslgraph.nn import LightGCN
from dslgraph.sparse import DynamicSparseLearning
from dslgraph.train import make_adam


def measure(data, adj, device, sparsity, backend, args, profiles: list[str]) -> dict:
    """The row of ``backend`` at ``sparsity``; with ``--profile``, its operator table goes to ``profiles``."""
    gc.collect()  # the previous row's model, before this row's peak memory is measured
    num_users, num_items = int(data["user"].num_nodes), int(data["item"].num_nodes)
    torch.manual_seed(0)
    model = LightGCN(num_users, num_items)
    batches = BPRBatches(
        data[EDGE].edge_index, num_items, args.batch_size, torch.Generator().manual_seed(0), device
    )
    dsl = None
    if sparsity:
        # One update, right after the timed iterations, timed on its own; none in the iterations counted
        # and profiled after it (t_end). rho stays at rho0, as the cosine schedule has it at its start.
        first_update = args.warmup + args.iterations + 1
        dsl = DynamicSparseLearning(
            model,
            sparsity,
            total_steps=10**9,
            update_interval=first_update,
            schedule="constant",
            t_end=first_update,
            backend=backend,
        )
    model.to(device)
    optimizer = make_adam(model.parameters(), 1e-3)
    if dsl is not None:
        dsl.attach(optimizer)
    epochs = Epochs(batches, device)
    loss_fn = model.loss if args.compile is None else torch.compile(model.loss, backend=args.compile)

    def step() -> torch.Tensor:
        users, pos, neg = next(epochs)
        optimizer.zero_grad()
        loss = loss_fn(adj, users, pos, neg)
        loss.backward()
        optimizer.step()
        if dsl is not None:
            dsl.step()
        return loss.detach()

    def seconds(iterations: int) -> float:
        """Seconds of ``iterations`` calls of ``step``, without a draw of an epoch among them."""
        sync(device)
        drawing, start = epochs.drawing, time.perf_counter()
        for _ in range(iterations):
            step()
        sync(device)
        return time.perf_counter() - start - (epochs.drawing - drawing)

    first_loss = float(step())  # the backends' models must agree here (main checks)
    for _ in range(args.warmup - 1):
        step()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    per_iter = seconds(args.iterations) / args.iterations
    memory = held_bytes(model, optimizer)
    if device.type == "cuda":
        memory["peak_memory_bytes"] = torch.cuda.max_memory_allocated(device)
    update = 0.0
    if dsl is not None:
        # the update, then one more iteration to pay for the plan rebuild it caused; run compiled too (the
        # iterations counted below have no update), but not timed (None): it compiles a second graph
        timed = seconds(2) - 2 * per_iter
        update = timed if args.compile is None else None
    counts = count_launches(step, device)
    if args.profile:  # after the timed update, which comes at a fixed iteration
        profiles.append(profile_table(step, device, f"sparsity {sparsity}, backend {backend}"))
    amortised = per_iter + (update or 0.0) / args.update_interval
    return {
        "dataset": args.dataset,
        **machine(device),
        "sparsity": sparsity,
        "backend": backend if sparsity else "dense",
        "compile": args.compile or "",
        "batch_size": args.batch_size,
        "seconds_per_iteration": round(per_iter, 4),
        "seconds_per_update": None if update is None else round(update, 2),
        "update_interval": args.update_interval,
        "seconds_per_epoch_amortised": round(amortised * len(batches) + epochs.draws[0], 1),
        "first_loss": first_loss,
        **counts,
        **memory,
    }


def held_bytes(model, optimizer) -> dict[str, int]:
    """What an iteration keeps allocated between iterations: parameters with their positions or
    masks and optimizer state, their gradients, and the sparse tables' derived index structures
    (the propagation plan). Activations, freed after each backward pass, are not included."""
    gradients = [p.grad for p in model.parameters() if p.grad is not None]
    return {
        "parameter_and_state_bytes": parameter_bytes(model) + optimizer_state_bytes(optimizer),
        "gradient_bytes": tensor_bytes(gradients),
        "workspace_bytes": workspace_bytes(model),
    }


def profiled(step, device: torch.device, iterations: int) -> profile:
    """torch.profiler's record of ``iterations`` calls of ``step`` (with CUDA kernels on a GPU)."""
    activities = [ProfilerActivity.CPU] + [ProfilerActivity.CUDA] * (device.type == "cuda")
    with profile(activities=activities) as prof:
        for _ in range(iterations):
            step()
        sync(device)
    return prof


def count_launches(step, device: torch.device) -> dict[str, int]:
    """Operators called (and, on CUDA, kernels launched) by one iteration that is not an update."""
    events = profiled(step, device, 1).events()
    counts = {"operators_per_iteration": sum(e.name.startswith("aten::") for e in events)}
    if device.type == "cuda":
        counts["kernels_per_iteration"] = sum(e.device_type == DeviceType.CUDA for e in events)
    return counts


def profile_table(step, device: torch.device, title: str) -> str:
    """torch.profiler's table of three calls of ``step``, most time first, under ``title``."""
    prof = profiled(step, device, 3)
    table = prof.key_averages().table(sort_by=f"self_{device.type}_time_total", row_limit=30)
    return f"== {title}, 3 iterations\n{table}\n"


def main() -> None:
    parser = base_parser(__doc__, "docs/benchmarks/sparse_backends.csv")
    parser.add_argument("--batch-size", type=count, default=2048)
    parser.add_argument("--sparsities", type=sparsity_level, nargs="+", default=[0.5, 0.8, 0.9, 0.95])
    parser.add_argument("--update-interval", type=count, default=3000)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument(
        "--compile",
        metavar="COMPILER",
        help="time the loss compiled by torch.compile(backend=COMPILER): inductor (torch's default), "
        "aot_eager, ...",
    )
    parser.add_argument(
        "--profile",
        metavar="FILE",
        help="also write each row's operator profile to FILE (replaced: this run's rows, rewritten after "
        "each)",
    )
    args, device = parse(parser)
    if args.warmup < 1 or args.iterations < 1:  # the warm-up builds the plan, which no iteration's time holds
        parser.error("need --warmup >= 1 and --iterations >= 1")
    if args.profile:
        check_output(parser, "--profile", args.profile)
    if args.compile is not None and args.compile not in torch.compiler.list_backends(exclude_tags=()):
        parser.error(
            f"--compile {args.compile}: not a torch.compile backend; torch has "
            f"{torch.compiler.list_backends(exclude_tags=())}"
        )
    data = read_dataset(parser, args, load_dataset)
    adj = propagation_graph(data).to(device)
    rows, profiles = [], []
    settings = [(0.0, "dense")] + [(s, b) for s in args.sparsities for b in ("sparse", "compact", "masked")]
    for sparsity, backend in settings:
        rows.append(measure(data, adj, device, sparsity, backend, args, profiles))
        losses = {row["backend"]: row["first_loss"] for row in rows if row["sparsity"] == sparsity}
        agree(f"the first loss at sparsity {sparsity}", losses)
        print(rows[-1], flush=True)
        # after every row, each file whole: a run cut short keeps what it measured
        write_csv(rows, args.output)
        if args.profile:
            write_text(args.profile, "".join(profiles))


if __name__ == "__main__":
    main()
