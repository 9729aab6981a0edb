"""Per-model MACs and bytes, dense vs sparse, from the ``metrics.json`` of finished runs.

Reads every ``<folder>/**/metrics.json`` written by ``dslgraph train`` (or the sweeps), one row per run:
the three MAC counts of a training iteration and a full-ranking inference (dense reference, what dslgraph's
kernels execute, and the ideal count where every sparsified tensor costs its active entries, the paper's way)
with their savings, the bytes of parameters plus optimizer state against the dense reference, and the bytes of
the sparse tables' propagation plans (``workspace_bytes``, left empty for runs that predate it).

    python benchmarks/cost_table.py docs/results/ml-1m --recount --out docs/results/ml-1m/cost

``--recount`` takes each run's MAC counts (and the savings derived from them) not from its record but from
``cost_report`` on its model rebuilt as the CLI builds it from the recorded settings (data under ``--root``,
fresh masks at the recorded sparsity), so that runs recorded before a model's count was corrected (CDAE's and
MultVAE's training iteration, 10th session) show the current count; their bytes stay as recorded (a fresh
optimizer holds no Adam state). This holds for models whose count depends only on their shapes and on how many
entries each sparsified tensor keeps; LightGCN's sparse propagation depends on which, so its runs keep their
recorded MACs, as do runs whose record has no settings. The settings do not name everything that made an
older model (default targets and the storage of linear layers changed since), so a rebuilt model must match
the record in its active entries per tensor and in every recorded MAC count but ``train_iteration``; a run
that does not keeps its recorded MACs, with a warning.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from common import checked_outputs, markdown_table, write_csv, write_text
from summary import read_summary

from dslgraph.cli import build_model, load_data, train_config
from dslgraph.config import validate
from dslgraph.metrics.cost import cost_report
from dslgraph.train import make_adam

log = logging.getLogger("cost_table")

COLUMNS = (
    "model", "run", "sparsity", "train_macs_dense", "train_macs_executed", "train_macs_ideal",
    "training_savings", "ideal_training_savings", "inference_macs_dense", "inference_savings",
    "ideal_inference_savings", "bytes", "dense_bytes", "bytes_ratio", "workspace_bytes",
)  # fmt: skip


#: The MAC counts of a ``cost_report`` and the savings derived from them.
MAC_FIELDS = ("macs", "ideal_macs", "dense_macs")
SAVINGS = ("training_savings", "ideal_training_savings", "inference_savings", "ideal_inference_savings")
#: The count that corrections changed (10th session: CDAE's and MultVAE's backward).
RECOUNTED = "train_iteration"
#: Models whose MAC count depends on which entries their masks keep, not only on how many.
COUNT_DEPENDS_ON_MASK = ("lightgcn",)


def recount(settings: dict, root: str) -> dict:
    """The MAC fields and active entries of ``cost_report`` for the model of ``settings``, built with fresh
    masks as the CLI builds it, on the data under ``root``."""
    settings = validate(settings | {"root": root})
    data = load_data(settings)
    config = train_config(settings, progress=False)
    model, dsl = build_model(settings, data, config)
    optimizer = make_adam(model.parameters(), config.lr)
    report = cost_report(model, model.input_graph(data), optimizer, config.batch_size, dsl)
    return {key: report[key] for key in (*MAC_FIELDS, *SAVINGS, "active_entries")}


def mismatch(recorded: dict, rebuilt: dict) -> str:
    """How the rebuilt model's report differs from the recorded one other than in ``RECOUNTED``, or ``""``."""
    if recorded.get("active_entries", {}) != rebuilt["active_entries"]:
        return f"active entries {recorded.get('active_entries')} vs {rebuilt['active_entries']}"
    for field in MAC_FIELDS:
        for key, value in recorded[field].items():
            if key != RECOUNTED and rebuilt[field].get(key) != value:
                return f"{field}.{key} {value} vs {rebuilt[field].get(key)}"
    return ""


def recounted(summary: dict, model: str, run: str, root: str) -> dict:
    """``summary`` with the MAC fields of its rebuilt model (see the module docs), logging what changed."""
    if model in COUNT_DEPENDS_ON_MASK:
        return summary
    if "settings" not in summary:
        log.warning("%s: no settings recorded; MACs as recorded", run)
        return summary
    rebuilt = recount(summary["settings"], root)
    differs = mismatch(summary, rebuilt)
    if differs:
        log.warning("%s: the rebuilt model is not the recorded one (%s); MACs as recorded", run, differs)
        return summary
    if any(rebuilt[field] != summary[field] for field in MAC_FIELDS):
        old, new = summary["macs"], rebuilt["macs"]
        log.info(
            "%s: recounted MACs differ from metrics.json: train %d -> %d (dense %d -> %d, ideal %s -> %d), "
            "inference %d -> %d",
            run,
            old["train_iteration"],
            new["train_iteration"],
            summary["dense_macs"]["train_iteration"],
            rebuilt["dense_macs"]["train_iteration"],
            summary.get("ideal_macs", {}).get("train_iteration"),
            rebuilt["ideal_macs"]["train_iteration"],
            old["inference"],
            new["inference"],
        )
    return summary | {key: rebuilt[key] for key in (*MAC_FIELDS, *SAVINGS)}


def row_for(path: Path, folder: Path | None = None, root: str | None = None) -> dict | None:
    """The table's row of the run of ``path``, named by its folder's path under ``folder``, its MACs
    recounted with the data under ``root`` when given."""
    summary = read_summary(path)
    if "dense_macs" not in summary:
        return None
    # runs of a sweep sit in <model>/runs/<run>/; older summaries do not record the model's name. A run of
    # one's own in runs/<run>/ (README's `--output runs/lastfm`), given as `runs`, has no <model> above it
    sweep = path.parent.parent
    named = sweep.parent.name if sweep.name == "runs" and sweep.parent.name else path.parent.name
    model = summary.get("settings", {}).get("model", named)
    run = path.parent.relative_to(folder) if folder is not None else Path(path.parent.name)
    run = "/".join(part for part in run.parts if part != "runs") or path.parent.name
    if root is not None:
        summary = recounted(summary, model, run, root)
    ideal = "ideal_macs" in summary
    return {
        "model": model,
        "run": run,
        "sparsity": round(summary["sparsity"], 3),
        "train_macs_dense": int(summary["dense_macs"]["train_iteration"]),
        "train_macs_executed": int(summary["macs"]["train_iteration"]),
        # older runs recorded no ideal count (MovieLens-100K's sweep): left empty
        "train_macs_ideal": int(summary["ideal_macs"]["train_iteration"]) if ideal else "",
        "training_savings": round(summary["training_savings"], 3),
        "ideal_training_savings": round(summary["ideal_training_savings"], 3) if ideal else "",
        "inference_macs_dense": int(summary["dense_macs"]["inference"]),
        "inference_savings": round(summary["inference_savings"], 3),
        "ideal_inference_savings": round(summary["ideal_inference_savings"], 3) if ideal else "",
        "bytes": summary["parameter_bytes"] + summary["optimizer_state_bytes"],
        "dense_bytes": summary["dense_parameter_bytes"] + summary["dense_optimizer_state_bytes"],
        "bytes_ratio": round(summary["bytes_ratio"], 3),
        "workspace_bytes": summary.get("workspace_bytes", ""),  # not in runs before the 8th session
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("folders", nargs="+")
    parser.add_argument("--out", required=True, help="writes OUT.csv and OUT.md")
    parser.add_argument("--recount", action="store_true", help="MACs of each run's rebuilt model (see above)")
    parser.add_argument("--root", default="data", help="the datasets' folder for --recount (default data)")
    args = parser.parse_args(argv)
    # before --recount rebuilds each run's model; --out X.csv wrote X.csv.csv
    table_path, text_path = checked_outputs(parser, args.out, ("csv", "md"))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    root = args.root if args.recount else None
    found = {}  # each run once, named under the first folder holding it (a folder given twice, or nested)
    for top in map(Path, args.folders):
        paths = sorted(top.glob("**/metrics.json"))
        if not paths:  # a misspelt folder: the table would lack its runs silently
            raise SystemExit(f"{top}: no metrics.json in it or below (not a folder of dslgraph train runs)")
        for path in paths:
            found.setdefault(path.resolve(), (path, top))
    runs = sorted(found.values())
    rows = [row for row in (row_for(path, folder, root) for path, folder in runs) if row is not None]
    if not rows:
        raise SystemExit(f"no metrics.json with cost accounting under {args.folders}")
    write_csv(rows, table_path)
    table = markdown_table(rows, COLUMNS)
    write_text(text_path, table)
    print(table, end="")


if __name__ == "__main__":
    main()
