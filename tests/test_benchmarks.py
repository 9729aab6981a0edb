import csv
import functools
import importlib.util
import itertools
import json
import logging
import math
import mmap
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

BENCHMARKS = Path(__file__).parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))  # the scripts import their shared `common`, as when run from there


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def write_run(folder: Path, history: list[tuple[int, float, float]], **settings) -> Path:
    """A ``dslgraph train`` output folder with ``history`` as (epoch, train seconds, recall@20)."""
    entries = [
        {"epoch": e, "seconds": s, "eval_seconds": 0.5, "test": {"recall@20": r, "ndcg@20": r, "hr@20": r}}
        for e, s, r in history
    ]
    best = max(entries, key=lambda entry: entry["test"]["recall@20"])
    summary = {
        "test": best["test"],
        "best_epoch": best["epoch"],
        "epochs": entries[-1]["epoch"],
        "train_seconds": entries[-1]["seconds"],
        "history": entries,
        "settings": {
            "model": "lightgcn",
            "dataset": "gowalla",
            "protocol": "full",
            "epochs": entries[-1]["epoch"],  # finished, unless given
            "patience": 0,
            "embedding_dim": 64,
            "sparsity": 0.0,
            "static_mask": False,
            "optimizer_state": "reset",
        }
        | settings,
        "active_entries": {},
        "parameter_bytes": 100,
        "optimizer_state_bytes": 200,
        "bytes_ratio": 1.0,
        "macs": {"train_iteration": 10, "inference": 20},
        "dense_macs": {"train_iteration": 10, "inference": 20},
        "training_savings": 0.0,
        "inference_savings": 0.0,
        "naive_savings": 0.0,
    }
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps(summary))
    return folder


def test_timed_runs_plans_from_the_probe(tmp_path):
    timed_runs = load("timed_runs")
    run = timed_runs.Run("dense", "sweep", [])
    write_run(tmp_path / "dense", [(5, 7.0, 0.3)])  # evaluated once, after 5 epochs and 7 s of training
    seconds = [3.0, 4.0, 5.0, 6.0, 7.0]  # the first epoch's warm-up, then 1 s an epoch
    lines = [
        f"2026-11-27 05:27:42,002 INFO dslgraph.train.trainer: epoch {e + 1} loss 0.52926 ({t:.1f}s)"
        for e, t in enumerate(seconds)
    ]
    lines.insert(3, "2026-11-27 05:27:42,387 INFO dslgraph.train.trainer: epoch 3 test recall@20=0.0901")
    (tmp_path / "dense.log").write_text("\n".join(lines) + "\n")
    run.process = subprocess.Popen([sys.executable, "-c", ""])
    run.process.wait()
    run.wall = 20.0
    cost = timed_runs.costs(run, tmp_path)
    # 1 s an epoch past the first one's warm-up; one evaluation of 0.5 s; 20 - 7 - 0.5 s else
    assert cost == {"epoch_seconds": 1.0, "eval_seconds": 0.5, "other_seconds": 12.5}
    (tmp_path / "dense.log").write_text("")  # no epoch lines: 7 s over 5 epochs, not 7 s an epoch
    assert timed_runs.costs(run, tmp_path)["epoch_seconds"] == 1.4
    # 100 s: 12.5 s start-up, 11 evaluations (5.5 s), 82 epochs of 1 s
    assert timed_runs.training_seconds(cost, 100.0) == 82.0
    assert timed_runs.epochs_that_fit(cost, 100.0) == 82
    assert timed_runs.epochs_that_fit(cost, 10.0) == 0
    run.wall = 5.0  # less than its training: the start-up's seconds are none, not below none
    assert timed_runs.costs(run, tmp_path)["other_seconds"] == 0.0


def test_timed_runs_gives_a_group_its_slowest_runs_epochs():
    timed_runs = load("timed_runs")
    groups = [("a", "sweep"), ("b", "sweep"), ("c", "alone")]
    runs = [timed_runs.Run(name, group, []) for name, group in groups]
    runs.append(timed_runs.Run("broken", "sweep", []))  # its probe failed: not in fits, not run
    plan = timed_runs.schedule(runs, {"a": 345, "b": 127, "c": 5000}, max_epochs=3000)
    assert plan == {
        "a": {"epochs": 120, "eval_every": 12},
        "b": {"epochs": 120, "eval_every": 12},
        "c": {"epochs": 3000, "eval_every": 300},
        "broken": {"epochs": 0, "eval_every": 1},
    }


def test_timed_runs_skips_a_failed_probe(tmp_path):
    timed_runs = load("timed_runs")
    run = timed_runs.Run("broken", "sweep", [])
    run.process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(2)"])
    run.process.wait()
    assert timed_runs.costs(run, tmp_path) is None


def test_timed_runs_names_a_damaged_probe_metrics_json_and_skips_that_run(tmp_path, caplog):
    # was json's "Expecting value: line 1 column 1 (char 0)", naming no file, and no run went on
    timed_runs = load("timed_runs")
    run = timed_runs.Run("cut", "sweep", [])
    (tmp_path / "cut").mkdir()
    (tmp_path / "cut" / "metrics.json").write_text('{"history": [')
    run.process = subprocess.Popen([sys.executable, "-c", ""])
    run.process.wait()
    assert timed_runs.costs(run, tmp_path) is None
    assert f"cut: probe failed: {tmp_path / 'cut' / 'metrics.json'}: not the metrics.json" in caplog.text


@pytest.mark.parametrize("missing", ["history", "train_seconds"])
def test_timed_runs_names_a_probe_metrics_json_lacking_a_key_and_skips_that_run(tmp_path, caplog, missing):
    # valid JSON without a key the plan reads: was a bare KeyError, naming no file, and no run went on
    timed_runs = load("timed_runs")
    run = timed_runs.Run("odd", "sweep", [])
    path = write_run(tmp_path / "odd", [(5, 7.0, 0.3)]) / "metrics.json"
    summary = json.loads(path.read_text())
    del summary[missing]
    path.write_text(json.dumps(summary))
    run.process = subprocess.Popen([sys.executable, "-c", ""])
    run.process.wait()
    assert timed_runs.costs(run, tmp_path) is None
    assert f"odd: probe failed: {path}: lacks {missing}, which the metrics.json" in caplog.text


def test_collect_at_epoch(tmp_path):
    sweep = load("sweep_sparsity")
    dense = write_run(tmp_path / "dense", [(10, 5.0, 0.15), (20, 10.0, 0.17), (30, 15.0, 0.18)])
    dsl = write_run(tmp_path / "dsl80", [(10, 8.0, 0.12), (20, 16.0, 0.14)], sparsity=0.8)
    narrow = write_run(tmp_path / "d13", [(10, 4.0, 0.11), (20, 8.0, 0.13)], embedding_dim=13)
    best = {row["mask"]: row for row in sweep.collect([dense, dsl, narrow])}
    assert (best["dense"]["recall@20"], best["dense"]["epochs"]) == (0.18, 30)
    rows = {row["mask"]: row for row in sweep.collect([dense, dsl, narrow], at_epoch=20)}
    assert [rows[mask]["recall@20"] for mask in ("dense", "dynamic", sweep.SAME_BUDGET)] == [0.17, 0.14, 0.13]
    dense_row = rows["dense"]
    assert (dense_row["epochs"], dense_row["best_epoch"], dense_row["train_seconds"]) == (20, 20, 10.0)
    assert rows[sweep.SAME_BUDGET]["sparsity"] == 0.8  # 1 - 13 / 64, rounded
    assert [rows[mask]["mask_init"] for mask in ("dense", "dynamic")] == ["", "random"]  # a run without one
    degree = write_run(tmp_path / "dsl80-degree", [(20, 16.0, 0.15)], sparsity=0.8, mask_init="degree")
    assert [row["mask_init"] for row in sweep.collect([dense, degree])] == ["", "degree"]
    sweep.plot(sweep.collect([dense, dsl, degree]), tmp_path / "plot.png")  # a named degree-mask point plots
    with pytest.raises(SystemExit, match=r"dsl80: no evaluation at epoch 30 \(evaluated at \[10, 20\]\)"):
        sweep.collect([dense, dsl], at_epoch=30)


def test_collect_tells_a_static_mask_from_dsl_and_dense(tmp_path):
    sweep = load("sweep_sparsity")
    dense = write_run(tmp_path / "dense", [(10, 5.0, 0.15)])
    dsl = write_run(tmp_path / "dsl", [(10, 5.0, 0.14)], sparsity=0.8)
    static = write_run(tmp_path / "static", [(10, 5.0, 0.12)], sparsity=0.8, static_mask=True)
    rows = sweep.collect([dense, dsl, static])
    assert [(row["mask"], row["sparsity"], row["recall@20"]) for row in rows] == [
        ("dense", 0.0, 0.15),
        ("dynamic", 0.8, 0.14),
        ("static", 0.8, 0.12),
    ]


def test_collect_takes_the_widest_dense_run_as_the_dense_one_in_any_order(tmp_path):
    sweep = load("sweep_sparsity")
    narrow = write_run(tmp_path / "d13", [(10, 4.0, 0.11)], embedding_dim=13)
    dense = write_run(tmp_path / "dense", [(10, 5.0, 0.15)])
    rows = sweep.collect([narrow, dense])
    assert [(row["mask"], row["sparsity"]) for row in rows] == [(sweep.SAME_BUDGET, 0.8), ("dense", 0.0)]


def test_merge_into_one_of_its_folders_counts_each_row_once(tmp_path, monkeypatch):
    sweep = load("sweep_sparsity")
    for name, sparsity in (("a", 0.0), ("b", 0.8)):
        run = write_run(tmp_path / "runs" / name, [(10, 5.0, 0.15 - sparsity / 10)], sparsity=sparsity)
        sweep.write_tables(sweep.collect([run]), tmp_path / name)
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    argv = ["sweep_sparsity.py", "--merge", a, b, "--out", a]
    monkeypatch.setattr(sys, "argv", argv)
    for _ in range(2):  # the second merge took a's rows, b's among them, and b's again
        sweep.main()
        rows = sweep.read_rows(tmp_path / "a" / "sweep.csv")
        assert [(row["mask"], row["sparsity"]) for row in rows] == [("dense", 0.0), ("dynamic", 0.8)]


def test_collect_and_merge_refuse_runs_of_several_models_datasets_or_protocols(tmp_path, monkeypatch, capsys):
    # one line through both datasets' points, under the first one's title, with its dense line alone
    sweep = load("sweep_sparsity")
    gowalla = write_run(tmp_path / "gowalla", [(10, 5.0, 0.15)])
    lastfm = write_run(tmp_path / "lastfm", [(10, 5.0, 0.25)], dataset="lastfm", sparsity=0.8)
    neumf = write_run(tmp_path / "neumf", [(10, 5.0, 0.25)], model="neumf", sparsity=0.8)
    argv = ["sweep_sparsity.py", "--collect", str(gowalla), str(lastfm), "--out", str(tmp_path / "out")]
    said = refusal(sweep.main, monkeypatch, capsys, argv)
    assert "--collect: its runs are of 2 datasets, ['gowalla', 'lastfm']" in said
    sweep.write_tables(sweep.collect([gowalla]), tmp_path / "a")
    sweep.write_tables(sweep.collect([neumf]), tmp_path / "b")
    rows = sweep.read_rows(tmp_path / "b" / "sweep.csv")
    sweep.write_tables([{**row, "model": ""} for row in rows], tmp_path / "old")  # before the model column
    a, b, out = (str(tmp_path / name) for name in ("a", "b", "out"))
    argv = ["sweep_sparsity.py", "--merge", a, b, "--out", out]
    said = refusal(sweep.main, monkeypatch, capsys, argv)
    assert "--merge: its runs are of 2 models, ['lightgcn', 'neumf']" in said
    assert not (tmp_path / "out").exists()
    monkeypatch.setattr(sys, "argv", [*argv[:2], str(tmp_path / "a"), str(tmp_path / "old"), *argv[4:]])
    sweep.main()  # an empty model is any
    assert len(sweep.read_rows(tmp_path / "out" / "sweep.csv")) == 2


def refusal(main, monkeypatch, capsys, argv: list[str]) -> str:
    """What ``main`` says when it refuses ``argv``: an argument error's line, or its SystemExit message."""
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as stopped:
        main()
    assert stopped.value.code != 0
    return f"{stopped.value.code}\n{capsys.readouterr().err}"


def test_collect_names_a_folder_it_cannot_tabulate(tmp_path):
    # a folder without metrics.json failed with FileNotFoundError, a run still training (or killed) with
    # KeyError: 'settings'; a table leaving it out would compare the other runs without saying so
    sweep = load("sweep_sparsity")
    dense = write_run(tmp_path / "dense", [(10, 5.0, 0.15)])
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match="empty: no metrics.json"):
        sweep.collect([dense, tmp_path / "empty"])
    training = write_run(tmp_path / "training", [(10, 5.0, 0.15)])
    summary = json.loads((training / "metrics.json").read_text())
    del summary["settings"]  # what the trainer writes at each evaluation, before the run's end
    (training / "metrics.json").write_text(json.dumps(summary))
    with pytest.raises(
        SystemExit, match=f"training: its run has not finished .* --output {training} --resume"
    ):
        sweep.collect([dense, training], at_epoch=10)
    with pytest.raises(SystemExit, match="dense: given twice to --collect"):  # its row was counted twice
        sweep.collect([dense, tmp_path / "." / "dense"])


def test_collect_refuses_a_run_stopped_before_its_schedule_unless_at_an_epoch(tmp_path):
    # a max_seconds or stop_after_epoch stop's best epoch was tabulated beside whole schedules' as if finished
    sweep = load("sweep_sparsity")
    dense = write_run(tmp_path / "dense", [(10, 5.0, 0.15), (20, 10.0, 0.17)], epochs=20)
    cut = write_run(tmp_path / "cut", [(10, 8.0, 0.12)], sparsity=0.8, epochs=20)
    with pytest.raises(
        SystemExit, match=f"cut: its run stopped after epoch 10 of 20 .* --output {cut} --resume"
    ):
        sweep.collect([dense, cut])
    assert [row["recall@20"] for row in sweep.collect([dense, cut], at_epoch=10)] == [0.15, 0.12]
    # patience's stop is the end of a run: after best epoch 10, one scheduled evaluation without a gain
    stopped = write_run(tmp_path / "stopped", [(10, 8.0, 0.14), (15, 9.0, 0.13)], sparsity=0.8, epochs=20)
    summary = json.loads((stopped / "metrics.json").read_text())
    summary["settings"]["patience"] = 1
    (stopped / "metrics.json").write_text(json.dumps(summary))
    assert [row["recall@20"] for row in sweep.collect([dense, stopped])] == [0.17, 0.14]
    summary["history"][-1]["scheduled"] = False  # max_seconds' evaluation: no count towards patience
    (stopped / "metrics.json").write_text(json.dumps(summary))
    with pytest.raises(SystemExit, match="stopped: its run stopped after epoch 15 of 20"):
        sweep.collect([dense, stopped])


def test_a_metrics_json_cut_short_is_named_by_every_script_reading_it(tmp_path):
    """A copy of a run's metrics.json cut short (or another file by that name) failed the sweep, the plot
    and the cost table with json's JSONDecodeError, naming no file; a JSON list with an AttributeError."""
    run = write_run(tmp_path / "run", [(10, 5.0, 0.15)])
    path = run / "metrics.json"
    whole = path.read_text()
    readers = [
        lambda: load("sweep_sparsity").collect([run]),
        lambda: load("plot_history").history("run", run, "recall@20", "test"),
        lambda: load("cost_table").row_for(path),
    ]
    # and one not UTF-8 (another file by that name) failed with UnicodeDecodeError, naming no file
    for content in (whole[: len(whole) // 2].encode(), b"[]", b"\xff" + whole.encode()):
        path.write_bytes(content)
        for read in readers:
            with pytest.raises(
                SystemExit,
                match=f"{path}: not the metrics.json that dslgraph train writes .*--output {run} --resume",
            ):
                read()


def test_merge_names_a_sweep_csv_cut_short_or_garbled(tmp_path):
    """A copy of a sweep.csv cut short mid-row was merged with blank metrics, without a word, and a value that
    is not a number failed with float's ValueError, naming no file."""
    sweep = load("sweep_sparsity")
    path = tmp_path / "sweep.csv"
    header = ",".join(sweep.COLUMNS)
    numbers = ("sparsity", "recall@20", "capped_recall@20", "hr@20", "ndcg@20")
    whole = ",".join("0.5" if column in numbers else "x" for column in sweep.COLUMNS)
    path.write_text(f"{header}\n{whole}\n")
    assert sweep.read_rows(path)[0]["recall@20"] == 0.5
    path.write_text(f"{header}\n{whole}\n{whole[: len(whole) // 2]}")
    fields = len(sweep.COLUMNS)
    with pytest.raises(SystemExit, match=f"{path}, line 3: not the {fields} fields of its header"):
        sweep.read_rows(path)
    path.write_text(f"{header}\n{whole.replace('0.5', '0.5x', 1)}\n")
    with pytest.raises(SystemExit, match=f"{path}, line 2: sparsity '0.5x' is not a number"):
        sweep.read_rows(path)


def test_merge_names_a_sweep_csv_row_with_more_fields_than_its_header(tmp_path):
    sweep = load("sweep_sparsity")
    path = tmp_path / "sweep.csv"
    numbers = ("sparsity", "recall@20", "capped_recall@20", "hr@20", "ndcg@20")
    whole = ",".join("0.5" if column in numbers else "x" for column in sweep.COLUMNS)
    path.write_text(f"{','.join(sweep.COLUMNS)}\n{whole},0.7\n")  # two rows run together, a stray comma
    with pytest.raises(
        SystemExit, match=f"{path}, line 2: not the {len(sweep.COLUMNS)} fields of its header"
    ):
        sweep.read_rows(path)


def test_sweep_plot_shows_hr_where_the_runs_have_no_recall(tmp_path, monkeypatch):
    # the sampled (leave-one-out) protocol reports no recall: its runs are plotted by HR@20
    sweep = load("sweep_sparsity")
    runs = [
        write_run(tmp_path / name, [(10, 5.0, 0.3)], protocol="leave-one-out", sparsity=sparsity)
        for name, sparsity in (("dense", 0.0), ("dsl", 0.8))
    ]
    rows = sweep.collect(runs)
    rows = [row | {"recall@20": "", "hr@20": hr} for row, hr in zip(rows, (0.4, 0.35))]
    figures = []
    monkeypatch.setattr(sweep, "save_figure", lambda fig, path: figures.append(fig))
    sweep.plot(rows, tmp_path / "plot.png")
    (ax,) = figures[0].axes
    assert ax.get_ylabel() == "HR@20 (test)"
    assert list(ax.lines[0].get_ydata()) == [0.4, 0.35]


def test_collect_names_a_run_evaluated_without_k_20(tmp_path):
    # a KeyError: 'hr@20' from the table
    run = write_run(tmp_path / "k10", [(10, 5.0, 0.15)], ks=[10, 50])
    summary = json.loads((run / "metrics.json").read_text())
    summary["test"] = {f"{metric}@{k}": 0.1 for metric in ("recall", "hr", "ndcg") for k in (10, 50)}
    (run / "metrics.json").write_text(json.dumps(summary))
    with pytest.raises(SystemExit, match=r"k10: no metrics @20 \(evaluated at ks \[10, 50\]\)"):
        load("sweep_sparsity").collect([run])


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--collect"], "--collect: expected at least one argument"),  # an empty $RUNS: a full sweep trained
        (["--merge"], "--merge: expected at least one argument"),
        (["--merge", "a", "--collect", "b"], "--merge and --collect each make the tables on their own"),
        (["--at-epoch", "3", "--sparsities", "0"], "--at-epoch picks an evaluation of each --collect run"),
        (["--collect", "a", "--overwrite"], "--overwrite is for the runs a sweep trains"),
        (["--sparsities", "--static"], "nothing to train"),  # an IndexError in the plot, after --out made
        (["--sparsities", "0.5", "0.5", "--static"], "the run dynamic-s0.5-reset is asked for twice"),
        (["--sparsities", "0", "-0", "--static"], "the run dense-s0.0-reset is asked for twice"),
        # a width of 1 trained as "sparsity 8", and the dense run again as a static mask or a same budget
        (["--same-budget", "8"], "argument --same-budget: expected a sparsity in (0, 1), got 8.0"),
        (["--same-budget", "0"], "argument --same-budget: expected a sparsity in (0, 1), got 0.0"),
        (["--static", "0"], "argument --static: expected a sparsity in (0, 1), got 0.0"),
        (["--sparsities", "0", "--set", "ks=[10]"], "the tables compare metrics @20: ks [10] must hold 20"),
        (["--merge", "old", "old/../old"], "old/../old: given twice to --merge (as old before)"),
        (["--merge", "nothing"], "nothing: no sweep.csv"),  # FileNotFoundError
        (["--merge", "old"], "nothing to merge: the sweep.csv of old hold no rows"),  # IndexError in the plot
    ],
)
def test_sweep_refuses_options_that_make_nothing_or_conflict(tmp_path, monkeypatch, capsys, argv, message):
    sweep = load("sweep_sparsity")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "sweep.csv").write_text(",".join(sweep.COLUMNS) + "\n")
    monkeypatch.setattr(sweep, "run_training", None)  # nothing trains
    said = refusal(sweep.main, monkeypatch, capsys, ["sweep_sparsity.py", *argv, "--out", "out"])
    assert message in said
    assert not (tmp_path / "out").exists()


def test_sweep_into_an_earlier_sweeps_out_is_refused_unless_overwrite(tmp_path, monkeypatch, capsys):
    # a rerun trained over the earlier runs' folders file by file: stopped part-way, a folder held both runs
    sweep = load("sweep_sparsity")
    earlier = write_run(tmp_path / "runs" / "dynamic-s0.5-reset", [(10, 5.0, 0.15)], sparsity=0.5)
    (earlier / "last.pt").write_text("")
    argv = ["sweep_sparsity.py", "--sparsities", "0.5", "--static", "--epochs", "1", "--out", str(tmp_path)]
    monkeypatch.setattr(sweep, "run_training", None)
    said = refusal(sweep.main, monkeypatch, capsys, argv)
    assert f"{earlier} hold(s) an earlier sweep's runs: start afresh with --overwrite" in said
    assert sorted(p.name for p in earlier.iterdir()) == ["last.pt", "metrics.json"]

    def started(settings, output, progress):
        assert (output, settings["sparsity"]) == (str(earlier), 0.5)
        assert list(Path(output).iterdir()) == []  # the earlier run's files gone before this one trains
        raise KeyboardInterrupt

    monkeypatch.setattr(sweep, "run_training", started)
    monkeypatch.setattr(sys, "argv", [*argv, "--overwrite"])
    with pytest.raises(KeyboardInterrupt):
        sweep.main()


def test_sweep_trains_each_run_once_and_tabulates_the_same_budget_by_its_sparsity(tmp_path, monkeypatch):
    sweep = load("sweep_sparsity")
    trained = []
    finished = json.loads((write_run(tmp_path / "fake", [(1, 1.0, 0.1)]) / "metrics.json").read_text())

    def train(settings, output, progress):
        trained.append((Path(output).name, settings["embedding_dim"], settings["sparsity"]))
        return finished

    monkeypatch.setattr(sweep, "run_training", train)
    argv = ["sweep_sparsity.py", "--sparsities", "0", "0.5", "--static", "--same-budget", "0.75"]
    argv += ["--optimizer-states", "reset", "keep", "--set", "embedding_dim=64"]
    argv += ["--out", str(tmp_path / "out")]
    monkeypatch.setattr(sys, "argv", argv)
    sweep.main()
    assert trained == [
        ("dense-s0.0-reset", 64, 0.0),  # one dense run: it has no optimizer state to reset or keep
        ("dynamic-s0.5-reset", 64, 0.5),
        ("dynamic-s0.5-keep", 64, 0.5),
        ("dense-same-budget-s0.75-reset", 16, 0.0),  # 64 x (1 - 0.75), dense
    ]
    rows = sweep.read_rows(tmp_path / "out" / "sweep.csv")
    assert [(row["mask"], row["sparsity"], row["bytes_ratio"]) for row in rows][-1] == (
        sweep.SAME_BUDGET,
        0.75,
        "0.25",
    )


def test_sweep_writes_no_committed_results_by_default(tmp_path, monkeypatch):
    # --out was docs/results/lastfm: a quick try replaced the three sweeps merged there by its own table
    sweep = load("sweep_sparsity")
    monkeypatch.chdir(tmp_path)
    outputs = []

    def started(settings, output, progress):
        outputs.append(output)
        raise KeyboardInterrupt

    monkeypatch.setattr(sweep, "run_training", started)
    monkeypatch.setattr(sys, "argv", ["sweep_sparsity.py", "--sparsities", "0", "--static", "--epochs", "1"])
    with pytest.raises(KeyboardInterrupt):
        sweep.main()
    assert outputs == [str(Path("runs", "sweep", "runs", "dense-s0.0-reset"))]


def test_plot_history_refuses_a_name_given_twice_and_a_folder_as_out(tmp_path, monkeypatch, capsys):
    plot_history = load("plot_history")
    a, b = write_run(tmp_path / "a", [(10, 5.0, 0.15)]), write_run(tmp_path / "b", [(10, 4.0, 0.12)])
    out = str(tmp_path / "o")
    said = refusal(
        plot_history.main, monkeypatch, capsys, ["plot_history.py", f"x={a}", f"x={b}", "--out", out]
    )
    assert "the run name 'x' is given twice" in said  # was one line through both runs' points
    for folder in (f"{tmp_path}/new/", str(tmp_path)):  # was written as new.csv / <tmp_path>.csv beside it
        said = refusal(plot_history.main, monkeypatch, capsys, ["plot_history.py", f"a={a}", "--out", folder])
        assert f"--out {folder} is a folder" in said
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("out, name", [("recall-0.5", "recall-0.5"), ("run.v2", "run.v2"), ("r.png", "r")])
def test_plot_history_keeps_a_dot_in_out(tmp_path, out, name):
    # with_suffix took ".5" of recall-0.5 for a suffix and wrote recall-0.csv
    table, figure = load("common").outputs(str(tmp_path / out))
    assert (table, figure) == (tmp_path / f"{name}.csv", tmp_path / f"{name}.png")


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--backends", "sprase"], "invalid choice: 'sprase'"),
        (["--sparsity", "80"], "sparsity must be a float in [0, 1)"),
        (["--backends", "dense", "--batch-size", "0"], "batch_size must be an int in [1, inf)"),
        (["--batches", "0"], "--batches must be at least 1, got 0"),  # a division by zero after the setup
    ],
)
def test_scale_check_refuses_bad_settings_before_its_setup(monkeypatch, capsys, argv, message):
    scale_check = load("scale_check")
    monkeypatch.setattr(scale_check.subprocess, "run", None)  # was: minutes of setup, then the worker's error
    assert message in refusal(scale_check.main, monkeypatch, capsys, ["scale_check.py", *argv])


def test_scale_check_times_its_stages_where_there_is_no_proc(tmp_path, monkeypatch, capsys):
    # macOS and Windows have no /proc/self: the first stage failed with FileNotFoundError
    scale_check = load("scale_check")
    monkeypatch.setattr(scale_check, "PROC", tmp_path / "none")
    stages = scale_check.Stages({"hardware": "x"})
    with stages.stage("-", "outer"), stages.stage("-", "inner"):
        time.sleep(0.01)
    assert [row["stage"] for row in stages.rows] == ["inner", "outer"]
    for row in stages.rows:
        assert row["seconds"] >= 0.01
        assert all(math.isnan(row[name]) for name in ("peak_mb_above_start", "rss_mb_start", "rss_mb_end"))


def test_read_csv_times_a_read_where_there_is_no_resource_module(tmp_path, monkeypatch, capsys):
    # Windows has no resource module nor os.getloadavg: even --help failed with ModuleNotFoundError
    monkeypatch.setitem(sys.modules, "resource", None)  # import resource fails
    monkeypatch.delattr(os, "getloadavg", raising=False)
    monkeypatch.setattr(torch, "set_num_threads", lambda threads: None)  # the worker's, not this process's
    read_csv = load("read_csv")
    path = tmp_path / "interactions.csv"
    read_csv.write_file(path, 300, 20, 30, "integer", seed=0)
    read_csv.worker(str(path))
    row = json.loads(capsys.readouterr().out)
    assert row["users"] == 20 and row["cpu_seconds"] >= 0
    assert row["peak_mb_above_imports"] is None and row["load_1min"] is None


@pytest.mark.parametrize(("platform", "unit"), [("linux", 1024), ("darwin", 2**20)])
def test_read_csv_reads_peak_memory_in_the_unit_of_the_platform(monkeypatch, platform, unit):
    # ru_maxrss is in bytes on macOS: its peak was reported 1,024 times too high
    monkeypatch.setattr(sys, "platform", platform)
    megabyte = load("read_csv").MB
    assert megabyte == unit


def test_read_csv_refuses_no_runs_and_shows_its_workers_error(tmp_path, monkeypatch, capsys):
    read_csv = load("read_csv")
    output = tmp_path / "read.csv"
    monkeypatch.setattr(read_csv, "write_file", None)  # nothing generated
    said = refusal(
        read_csv.main, monkeypatch, capsys, ["read_csv.py", "--runs", "0", "--output", str(output)]
    )
    assert "--runs must be at least 1, got 0" in said  # was an IndexError after generating the file
    for option in ("--lines", "--users", "--items"):  # numpy's error, or the worker's on an empty file
        argv = ["read_csv.py", option, "0", "--output", str(output)]
        assert f"{option} must be at least 1, got 0" in refusal(read_csv.main, monkeypatch, capsys, argv)
    monkeypatch.setattr(read_csv, "write_file", lambda *args: None)
    failed = subprocess.CompletedProcess(
        [], 1, "", "Traceback ...\nAttributeError: no attribute 'from_csv'\n"
    )
    monkeypatch.setattr(read_csv.subprocess, "run", lambda *args, **kwargs: failed)
    said = refusal(read_csv.main, monkeypatch, capsys, ["read_csv.py", "--output", str(output)])
    # was CalledProcessError's exit status, the worker's error captured and dropped
    assert (
        "run 0: the worker failed (exit 1):\nTraceback ...\nAttributeError: no attribute 'from_csv'" in said
    )
    assert not output.exists()


@pytest.mark.parametrize("ids, prefix", [("integer", ("", "")), ("text", ("u", "i"))])
def test_read_csv_generates_the_file_it_describes(tmp_path, ids, prefix):
    read_csv = load("read_csv")
    path = tmp_path / "interactions.csv"
    read_csv.write_file(path, 3000, 40, 70, ids, seed=0)
    header, *lines = path.read_text().splitlines()
    assert header == "user,item,rating,time" and len(lines) == 3000
    user, item, rating, stamp = zip(*(line.split(",") for line in lines))
    for column, letter, count in ((user, prefix[0], 40), (item, prefix[1], 70)):
        assert all(value.startswith(letter) and value[len(letter) :].isdigit() for value in column)
        assert {int(value[len(letter) :]) for value in column} == set(range(count))  # each id drawn
    assert set(rating) == {"1", "2", "3", "4", "5"}
    assert all(900_000_000 <= int(t) < 1_000_000_000 for t in stamp)


def test_read_csv_worker_measures_the_from_csv_call_alone(tmp_path, monkeypatch, capsys):
    read_csv = load("read_csv")
    path = tmp_path / "interactions.csv"
    read_csv.write_file(path, 300, 20, 30, "text", seed=0)
    from dslgraph.data import InteractionDataset

    calls = []
    from_csv = InteractionDataset.from_csv.__func__

    def timed_from_csv(cls, *args, **kwargs):
        calls.append((args, kwargs, clock.cpu, rss.kb))
        rss.kb += 300 * 1024  # the call's peak: 300 MB above what the imports left
        return from_csv(cls, *args, **kwargs)

    clock = SimpleNamespace(cpu=10.0, wall=100.0)
    rss = SimpleNamespace(kb=500_000)

    def advance(name, by):
        def read():
            value = getattr(clock, name)
            setattr(clock, name, value + by)
            return value

        return read

    # CPU seconds by process_time, wall seconds by perf_counter, each around the call only
    monkeypatch.setattr(
        read_csv,
        "time",
        SimpleNamespace(process_time=advance("cpu", 3.5), perf_counter=advance("wall", 4.25)),
    )
    usage = SimpleNamespace(getrusage=lambda who: SimpleNamespace(ru_maxrss=rss.kb), RUSAGE_SELF=0)
    monkeypatch.setattr(read_csv, "resource", usage)
    monkeypatch.setattr(InteractionDataset, "from_csv", classmethod(timed_from_csv))
    threads = []
    monkeypatch.setattr(torch, "set_num_threads", threads.append)
    read_csv.worker(str(path))
    row = json.loads(capsys.readouterr().out)
    assert calls == [((str(path),), {"time_col": "time"}, 13.5, 500_000)]  # the clocks started before it
    assert threads == [1]
    assert (row["users"], row["items"]) == (20, 30)
    assert (row["cpu_seconds"], row["wall_seconds"], row["peak_mb_above_imports"]) == (3.5, 4.25, 300)


def test_read_csv_times_each_run_in_a_process_of_its_own(tmp_path, monkeypatch):
    read_csv = load("read_csv")
    written, commands = [], []
    monkeypatch.setattr(read_csv, "write_file", lambda *args: written.append(args))

    def run(command, **kwargs):
        commands.append(command)
        # what the worker prints: a library's warning, then its row
        return subprocess.CompletedProcess(command, 0, 'a warning\n{"users": 3, "cpu_seconds": 1.5}\n', "")

    monkeypatch.setattr(read_csv.subprocess, "run", run)
    output = tmp_path / "read.csv"
    load("common").write_rows([{"label": "before", "run": 0}], output, append=False)
    argv = ["read_csv.py", "--runs", "2", "--label", "after", "--append", "--output", str(output)]
    monkeypatch.setattr(sys, "argv", argv)
    read_csv.main()
    ((path, *sizes),) = written  # Amazon-book's size at the defaults
    assert path.name == "interactions.csv" and sizes == [3_000_000, 52_643, 91_599, "integer", 0]
    assert not path.parent.exists()  # a temporary folder, never the repository
    assert commands == [[sys.executable, read_csv.__file__, "--worker", str(path)]] * 2
    with output.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(row["label"], row["run"], row["lines"], row["ids"], row["users"]) for row in rows] == [
        ("before", "0", "", "", ""),
        ("after", "0", "3000000", "integer", "3"),
        ("after", "1", "3000000", "integer", "3"),
    ]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--dataset", "gowala"], "argument --dataset: invalid choice: 'gowala'"),  # the loader's ValueError
        (["--device", "gpu"], "--device: device 'gpu' is not a torch device"),
        (
            ["--threads", "-1"],
            "--threads must be 0 (torch's default) or more, got -1",
        ),  # torch's RuntimeError
    ],
)
def test_benchmark_options_are_checked_when_parsed(monkeypatch, capsys, argv, message):
    common = load("common")
    parse = functools.partial(common.parse, common.base_parser("a benchmark", "out.csv"))
    assert message in refusal(parse, monkeypatch, capsys, ["bench.py", *argv])


@pytest.mark.parametrize(
    "name, option",
    [
        ("bench_spmm", "--repeats"),
        ("bench_ultragcn_logits", "--repeats"),
        ("bench_plan", "--repeats"),
        ("bench_sparse_linear", "--repeats"),
        ("bench_optimizer", "--steps"),
        ("bench_checkpoint", "--repeats"),
    ],
)
def test_benchmark_counts_are_checked_when_parsed(monkeypatch, capsys, name, option):
    # 0 was a division by zero, or a median of nothing, once the data had loaded and the warm-up had run
    main = load(name).main
    said = refusal(main, monkeypatch, capsys, [f"{name}.py", option, "0"])
    assert f"argument {option}: expected an integer of at least 1, got 0" in said
    assert "invalid count value: 'two'" in refusal(main, monkeypatch, capsys, [f"{name}.py", option, "two"])


def test_benchmark_asked_for_cuda_without_one_says_so(monkeypatch, capsys):
    common = load("common")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    parse = functools.partial(common.parse, common.base_parser("a benchmark", "out.csv"))
    # was torch's "Torch not compiled with CUDA enabled" once the data had loaded
    said = refusal(parse, monkeypatch, capsys, ["bench.py", "--device", "cuda"])
    assert "--device: device 'cuda' was asked for but torch sees no CUDA device" in said
    monkeypatch.setattr(sys, "argv", ["bench.py", "--dataset", "lastfm", "--device", "auto"])
    args, device = parse()
    assert (args.dataset, device) == ("lastfm", torch.device("cpu"))


@pytest.mark.parametrize(
    "output, message",
    [
        ("{tmp}", "--output {tmp} is a folder: give the path of a file"),  # IsADirectoryError on writing
        ("{tmp}/new/", "--output {tmp}/new/ is a folder: give the path of a file"),  # a file named new
        ("{tmp}/file/b.csv", "--output {tmp}/file/b.csv cannot be made: {tmp}/file is a file, not a folder"),
    ],
)
def test_benchmark_output_is_checked_before_the_timing(tmp_path, monkeypatch, capsys, output, message):
    # found when the results were written: after the timing, minutes of a device's time
    common = load("common")
    (tmp_path / "file").write_text("")
    parse = functools.partial(common.parse, common.base_parser("a benchmark", "out.csv"))
    said = refusal(parse, monkeypatch, capsys, ["bench.py", "--output", output.format(tmp=tmp_path)])
    assert message.format(tmp=tmp_path) in said
    monkeypatch.setattr(common.os, "access", lambda path, mode: path != tmp_path)  # as if read-only
    said = refusal(parse, monkeypatch, capsys, ["bench.py", "--output", f"{tmp_path}/new/b.csv"])
    assert f"--output {tmp_path}/new/b.csv cannot be written: {tmp_path} is not writable" in said
    monkeypatch.setattr(sys, "argv", ["bench.py", "--output", f"{tmp_path}/new/b.csv"])
    monkeypatch.setattr(common.os, "access", lambda path, mode: True)
    assert common.parse(common.base_parser("a benchmark", "out.csv"))[0].output == f"{tmp_path}/new/b.csv"


@pytest.mark.parametrize(
    "name, argv, work, message",
    [
        ("bench_sparse", ["--profile", "{tmp}"], "load_dataset", "--profile {tmp} is a folder"),
        ("most_popular", ["--output", "{tmp}"], "load_dataset", "--output {tmp} is a folder"),
        ("read_csv", ["--output", "{tmp}"], "write_file", "--output {tmp} is a folder"),
        ("scale_check", ["--output", "{tmp}"], "subprocess", "--output {tmp} is a folder"),
        ("cost_table", ["{tmp}", "--out", "{tmp}/"], "row_for", "--out {tmp}/ is a folder"),  # {tmp}/.csv
        ("degree_analysis", ["best.pt", "--output", "{tmp}"], "analyse", "--output {tmp} is a folder"),
        (
            "plot_history",
            ["a={tmp}", "--out", "{tmp}/file/r"],
            "history",
            "{tmp}/file is a file, not a folder",
        ),
        (
            "sweep_sparsity",
            ["--collect", "{tmp}", "--out", "{tmp}/file"],
            "collect",
            "--out {tmp}/file is a file",
        ),
        (
            "timed_runs",
            ["--budget", "9", "--run", "a", "g", "", "--out", "{tmp}/file"],
            "subprocess",
            "is a file",
        ),
    ],
)
def test_scripts_check_where_they_write_before_their_work(
    tmp_path, monkeypatch, capsys, name, argv, work, message
):
    script = load(name)
    (tmp_path / "file").write_text("")
    monkeypatch.setattr(script, work, None)  # was run first, then the write failed
    argv = [f"{name}.py", *(word.format(tmp=tmp_path) for word in argv)]
    assert message.format(tmp=tmp_path) in refusal(script.main, monkeypatch, capsys, argv)


@pytest.mark.parametrize(
    "name, argv, message",
    [
        # 0 timed the dense model again under the backends' names; 1 failed in DSL after the dense row
        (
            "bench_sparse",
            ["--sparsities", "0.5", "0"],
            "--sparsities: expected a sparsity in (0, 1), got 0.0",
        ),
        ("bench_sparse", ["--sparsities", "1"], "--sparsities: expected a sparsity in (0, 1), got 1.0"),
        ("bench_sparse", ["--update-interval", "0"], "--update-interval: expected an integer of at least 1"),
        (
            "bench_sparse_linear",
            ["--sparsities", "80"],
            "--sparsities: expected a sparsity in (0, 1), got 80.0",
        ),
        ("bench_plan", ["--densities", "0.5", "0"], "--densities: expected a density in (0, 1], got 0.0"),
    ],
)
def test_benchmark_sparsities_are_checked_when_parsed(tmp_path, monkeypatch, capsys, name, argv, message):
    script = load(name)
    work = "DynamicSparseLearning" if name == "bench_sparse_linear" else "load_dataset"
    monkeypatch.setattr(script, work, None)
    argv = [f"{name}.py", *argv, "--output", str(tmp_path / "rows.csv")]  # not docs/benchmarks/ if timed
    assert message in refusal(script.main, monkeypatch, capsys, argv)


def test_bench_sparse_replaces_its_profile_and_writes_it_whole(tmp_path, monkeypatch):
    # --profile appended to FILE in place: a rerun mixed both runs' tables, a run killed writing left half one
    bench_sparse = load("bench_sparse")
    profile = tmp_path / "profile.txt"
    profile.write_text("== an earlier run's table\n")
    monkeypatch.setattr(bench_sparse, "load_dataset", lambda name, root: None)
    monkeypatch.setattr(bench_sparse, "propagation_graph", lambda data: torch.zeros(1))

    def measure(data, adj, device, sparsity, backend, args, profiles):
        if backend == "masked":
            raise KeyboardInterrupt  # the run stopped during its fourth row
        profiles.append(f"== sparsity {sparsity}, backend {backend}\n")
        return {"sparsity": sparsity, "backend": backend, "first_loss": 0.5}

    monkeypatch.setattr(bench_sparse, "measure", measure)
    argv = ["bench_sparse.py", "--sparsities", "0.8", "--output", str(tmp_path / "b.csv")]
    monkeypatch.setattr(sys, "argv", [*argv, "--profile", str(profile)])
    with pytest.raises(KeyboardInterrupt):
        bench_sparse.main()
    assert profile.read_text() == (
        "== sparsity 0.0, backend dense\n== sparsity 0.8, backend sparse\n== sparsity 0.8, backend compact\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.csv", "profile.txt"]  # nothing half-written


def test_most_popular_refuses_a_misspelt_dataset_before_loading_any(monkeypatch, capsys):
    most_popular = load("most_popular")
    monkeypatch.setattr(most_popular, "load_dataset", None)  # was loaded up to the misspelt one
    for argv, message in [
        (["--datasets", "lastfm", "ml100k"], "argument --datasets: invalid choice: 'ml100k'"),
        (["--protocols", "loo"], "argument --protocols: invalid choice: 'loo'"),
    ]:
        assert message in refusal(most_popular.main, monkeypatch, capsys, ["most_popular.py", *argv])


def test_most_popular_ranks_by_training_popularity_under_each_protocol(small_data, tmp_path, monkeypatch):
    most_popular = load("most_popular")
    from dslgraph.data import EDGE, apply_protocol
    from dslgraph.metrics import RankingEvaluator, SampledRankingEvaluator

    asked, loaded = [], {}

    def load_dataset(name, root, protocol, seed):
        asked.append((name, root, protocol, seed))
        options = {"num_negatives": 20} if protocol == "leave-one-out" else {}
        loaded[protocol] = apply_protocol(small_data, protocol, seed, **options)
        return loaded[protocol]

    monkeypatch.setattr(most_popular, "load_dataset", load_dataset)
    output = tmp_path / "most_popular.csv"
    # a sampled protocol first: its row has no recall@20, and the full ranking's row failed the write
    argv = ["most_popular.py", "--protocols", "leave-one-out", "full", "--output", str(output)]
    monkeypatch.setattr(sys, "argv", argv)
    most_popular.main()
    # ML-100K's split is drawn with the seed: the recorded row is the training runs' split, seed 2020
    assert asked == [("lastfm", None, "leave-one-out", 2020), ("lastfm", None, "full", 2020)]
    with output.open(newline="") as f:
        rows = list(csv.DictReader(f))

    def popularity(data):  # each item's training degree, counted here
        count = torch.zeros(40).index_add_(
            0, data[EDGE].edge_index[1], torch.ones(data[EDGE].edge_index.size(1))
        )
        return lambda users, items=None: (
            count[items] if items is not None else count.expand(len(users), -1).clone()
        )

    expected = [
        SampledRankingEvaluator.from_data(loaded["leave-one-out"], ks=(20,))(
            popularity(loaded["leave-one-out"])
        ),
        RankingEvaluator.from_data(loaded["full"], ks=(20,))(popularity(loaded["full"])),
    ]
    assert [(row["dataset"], row["protocol"]) for row in rows] == [
        ("lastfm", "leave-one-out"),
        ("lastfm", "full"),
    ]
    assert set(expected[0]) == {"hr@20", "ndcg@20"} and "recall@20" in expected[1]
    for row, metrics in zip(rows, expected):
        assert {k: v for k, v in row.items() if v and "@" in k} == {
            k: str(round(v, 4)) for k, v in metrics.items()
        }
    monkeypatch.setattr(sys, "argv", ["most_popular.py", "--output", str(output)])
    most_popular.main()  # the recorded LastFM row's command: full ranking at the defaults
    assert asked[2:] == [("lastfm", None, "full", 2020)]
    with output.open(newline="") as f:  # the earlier table replaced
        assert [(row["dataset"], row["protocol"]) for row in csv.DictReader(f)] == [("lastfm", "full")]


def test_cost_table_names_a_folder_without_runs_and_counts_a_run_once(tmp_path, monkeypatch):
    cost_table = load("cost_table")
    # each row names the folder it was read under
    monkeypatch.setattr(
        cost_table, "row_for", lambda path, folder, root: {"run": f"{folder.name}/{path.parent.name}"}
    )
    monkeypatch.setattr(cost_table, "markdown_table", lambda rows, columns: f"{[r['run'] for r in rows]}\n")
    write_run(tmp_path / "sweep" / "runs" / "dense", [(10, 5.0, 0.15)])
    out = str(tmp_path / "cost")
    with pytest.raises(SystemExit, match="swep: no metrics.json in it or below"):  # was left out silently
        cost_table.main([str(tmp_path / "sweep"), str(tmp_path / "swep"), "--out", out])
    # a folder and one inside it (or one folder twice): each run's row once, not once per folder, named
    # under the first folder given
    cost_table.main([str(tmp_path / "sweep"), str(tmp_path / "sweep" / "runs"), "--out", out])
    assert (tmp_path / "cost.md").read_text() == "['sweep/dense']\n"
    cost_table.main([str(tmp_path / "sweep" / "runs"), str(tmp_path / "sweep"), "--out", out])
    assert (tmp_path / "cost.md").read_text() == "['runs/dense']\n"


def test_cost_table_recount_keeps_the_recorded_macs_of_a_model_whose_count_depends_on_its_mask(monkeypatch):
    """LightGCN's ideal count depends on which entries its mask keeps, which a rebuilt model draws anew: its
    recorded MACs stay, and no model is rebuilt."""
    cost_table = load("cost_table")
    monkeypatch.setattr(cost_table, "recount", lambda settings, root: pytest.fail("LightGCN was rebuilt"))
    summary = {"settings": {"model": "lightgcn"}, "macs": {"train_iteration": 5}}
    assert cost_table.recounted(summary, "lightgcn", "run", "data") is summary


def test_cost_table_reads_runs_given_by_a_relative_runs_folder(tmp_path, monkeypatch):
    # runs/lastfm/metrics.json (README's --output runs/lastfm) was taken for a sweep's <model>/runs/<run>:
    # IndexError looking for the <model> above runs/
    run = write_run(tmp_path / "runs" / "lastfm", [(10, 5.0, 0.15)])
    summary = json.loads((run / "metrics.json").read_text())
    summary |= {
        "sparsity": 0.0,
        "ideal_macs": summary["macs"],
        "ideal_training_savings": 0.0,
        "ideal_inference_savings": 0.0,
        "dense_parameter_bytes": 100,
        "dense_optimizer_state_bytes": 200,
    }
    (run / "metrics.json").write_text(json.dumps(summary))
    monkeypatch.chdir(tmp_path)
    load("cost_table").main(["runs", "--out", "cost"])
    with (tmp_path / "cost.csv").open() as f:
        assert [(row["model"], row["run"]) for row in csv.DictReader(f)] == [("lightgcn", "lastfm")]


def every(checkpoint_every: int, eval_batch_size: int) -> dict[str, int]:
    return {"checkpoint_every": checkpoint_every, "eval_batch_size": eval_batch_size}


def test_plot_setting_averages_each_curves_runs_at_each_value_of_the_setting(tmp_path, caplog):
    """Two seeds at L2 1e-3 and one at 1e-4 make two points of the curve (mean, lowest, highest, count), in
    the setting's order; a run of another sparsity in the same curve is named in a warning."""
    plot_setting = load("plot_setting")
    runs = [
        write_run(tmp_path / "a", [(10, 5.0, 0.20)], reg_weight=1e-3, seed=1, epochs=20, **every(0, 128)),
        # how often a run checkpoints and how many users it evaluates at once change none of its numbers
        write_run(tmp_path / "b", [(10, 5.0, 0.26)], reg_weight=1e-3, seed=2, epochs=20, **every(5, 512)),
        # a setting that only a newer run records is no difference
        write_run(
            tmp_path / "c",
            [(10, 5.0, 0.15), (20, 9.0, 0.25)],
            reg_weight=1e-4,
            seed=1,
            compile=False,
            **every(0, 128),
        ),
    ]
    rows = plot_setting.curve_rows("dense", runs, "reg_weight", "test", "recall@20")
    assert rows == [
        {"curve": "dense", "reg_weight": 1e-4, "runs": 1, **dict.fromkeys(STATS, 0.25)},
        {"curve": "dense", "reg_weight": 1e-3, "runs": 2}
        | dict(zip(STATS, [pytest.approx(0.23), 0.20, 0.26])),
    ]
    assert not caplog.records
    odd = write_run(tmp_path / "d", [(10, 5.0, 0.1)], reg_weight=1e-3, sparsity=0.5, epochs=20)
    with caplog.at_level("WARNING"):
        plot_setting.curve_rows("mixed", [*runs, odd], "reg_weight", "test", "recall@20")
    assert "curve 'mixed': its runs differ in sparsity, not only in reg_weight" in caplog.text


STATS = ("mean_test_recall@20", "min_test_recall@20", "max_test_recall@20")


def test_paired_seeds_pairs_runs_by_seed_and_gives_the_interval_of_the_mean_difference(tmp_path):
    """Differences +0.01, -0.03, -0.01 (seeds out of order in the folders' list): mean -0.01, sd 0.02, and
    the 95% interval -0.01 +- t(0.975, 2) * 0.02 / sqrt(3), t = 4.303 from the table."""
    paired = load("paired_seeds")
    dense = [
        write_run(tmp_path / f"d{s}", [(10, 5.0, r)], seed=s) for s, r in ((1, 0.20), (2, 0.30), (3, 0.25))
    ]
    sparse = [
        write_run(tmp_path / f"s{s}", [(10, 5.0, r)], seed=s, sparsity=0.5)
        for s, r in ((3, 0.24), (1, 0.21), (2, 0.27))
    ]
    names = ("dense", "DSL 50%")
    rows = paired.paired_rows(
        paired.group_results("dense", dense, "test", "recall@20"),
        paired.group_results("DSL 50%", sparse, "test", "recall@20"),
        names,
    )
    assert [(row["seed"], row["dense"], row["DSL 50%"]) for row in rows] == [
        ("1", 0.20, 0.21),
        ("2", 0.30, 0.27),
        ("3", 0.25, 0.24),
    ]
    result = paired.summary(rows, names)
    half = 4.302653 * 0.02 / 3**0.5
    assert result["mean_difference"] == pytest.approx(-0.01)
    assert result["difference_sd"] == pytest.approx(0.02)
    assert result["interval"] == pytest.approx((-0.01 - half, -0.01 + half))
    assert result["ratio"] == pytest.approx(0.24 / 0.25)
    assert (result["above"], result["level"], result["below"]) == (1, 0, 2)
    assert "the interval holds 0" in paired.describe(result, names, "test recall@20")
    # a difference of LEVEL itself shows as +-0.0001 in the tables: above or below, not level
    edge = [row | {"difference": d} for row, d in zip(rows, (paired.LEVEL, -paired.LEVEL, 0.0))]
    assert [paired.summary(edge, names)[side] for side in ("above", "level", "below")] == [1, 1, 1]
    # the same differences all shifted below 0 by 0.05: the interval lies below 0
    low = paired.summary([row | {"difference": row["difference"] - 0.05} for row in rows], names)
    assert "DSL 50% is below dense: the interval lies below 0" in paired.describe(low, names, "recall@20")


def test_paired_seeds_pairs_splits_counts_level_seeds_and_logs_what_the_groups_differ_in(
    tmp_path, monkeypatch, caplog
):
    """A run with a split seed pairs only with a run of the same seed and split seed; a difference that the
    tables show as 0.0000 counts as level; the log names the settings in which the groups differ, and an
    --out given with its suffix is not doubled."""
    paired = load("paired_seeds")
    a = [
        write_run(tmp_path / "a1", [(10, 5.0, 0.2)], seed=1, split_seed=7, progress=True, root="/here"),
        write_run(tmp_path / "a2", [(10, 5.0, 0.3)], seed=2, split_seed=7, progress=False, root="/elsewhere"),
    ]
    b = [
        write_run(tmp_path / "b1", [(10, 5.0, 0.20002)], seed=1, split_seed=7, sparsity=0.5),
        write_run(tmp_path / "b2", [(10, 5.0, 0.25)], seed=2, split_seed=7, sparsity=0.5),
    ]
    out = tmp_path / "paired.csv"
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "paired_seeds.py",
            "--out",
            str(out),
            "--runs",
            "dense",
            *map(str, a),
            "--runs",
            "sparse",
            *map(str, b),
        ],
    )
    with caplog.at_level("INFO"):
        paired.main()
    assert "dense and sparse differ in sparsity (0.0 / 0.5)" in caplog.text
    assert "differ in progress" not in caplog.text  # nor does a group's own warning name progress or root
    caplog.clear()
    with caplog.at_level("INFO"):  # the runs' seeds differ, as the groups' first runs' do here: not logged
        paired.log_differences(
            paired.group_results("dense", a[1:], "test", "recall@20"),
            paired.group_results("sparse", b, "test", "recall@20"),
            ("dense", "sparse"),
        )
    assert caplog.messages[-1] == "dense and sparse differ in sparsity (0.0 / 0.5)"
    assert out.read_text().splitlines()[1].startswith("1 (split seed 7),0.2,0.20002,")
    assert "above / level / below on 0 / 1 / 1 seeds" in (tmp_path / "paired.md").read_text()
    other_split = write_run(tmp_path / "b3", [(10, 5.0, 0.3)], seed=1, split_seed=8, sparsity=0.5)
    rows = paired.group_results("sparse", [other_split, b[1]], "test", "recall@20")
    with pytest.raises(SystemExit, match=r"group 'sparse' has no run of seed 1 \(split seed 7\)"):
        paired.paired_rows(paired.group_results("dense", a, "test", "recall@20"), rows, ("dense", "sparse"))
    # the other way round: a seed the second group ran and the reference did not is named, not dropped
    with pytest.raises(SystemExit, match=r"group 'dense' has no run of seed 1 \(split seed 7\)"):
        paired.paired_rows(
            paired.group_results("dense", a[1:], "test", "recall@20"),
            paired.group_results("sparse", b, "test", "recall@20"),
            ("dense", "sparse"),
        )


def test_paired_seeds_writes_its_tables_and_names_runs_it_cannot_pair(tmp_path, monkeypatch, capsys):
    paired = load("paired_seeds")
    a = [write_run(tmp_path / f"a{s}", [(10, 5.0, 0.2 + s / 100)], seed=s) for s in (1, 2)]
    b = [write_run(tmp_path / f"b{s}", [(10, 5.0, 0.2)], seed=s, sparsity=0.5) for s in (1, 2)]
    out = tmp_path / "paired"
    argv = ["paired_seeds.py", "--out", str(out), "--runs", "dense", *map(str, a)]
    monkeypatch.setattr(sys, "argv", [*argv, "--runs", "sparse", *map(str, b)])
    paired.main()
    assert out.with_suffix(".csv").read_text().splitlines()[0] == "seed,dense,sparse,difference"
    table = out.with_suffix(".md").read_text()
    assert "| 2 | 0.2200 | 0.2000 | -0.0200 |" in table
    assert "2 seeds, test recall@20: dense mean 0.2150, sparse mean 0.2000 (0.930x)" in table
    reading = "Reading: the seeds do not tell sparse from dense: the interval holds 0.\n"
    assert table.endswith(f"above / level / below on 0 / 0 / 2 seeds. {reading}")
    assert out.with_suffix(".png").read_bytes().startswith(b"\x89PNG")
    said = refusal(paired.main, monkeypatch, capsys, [*argv, "--runs", "sparse", str(b[0])])
    assert "group 'sparse' has no run of seed 2: pair every run" in said
    diverged = write_run(tmp_path / "diverged", [(10, 5.0, float("nan"))], seed=2, sparsity=0.5)
    said = refusal(paired.main, monkeypatch, capsys, [*argv, "--runs", "sparse", str(b[0]), str(diverged)])
    assert f"{diverged} records test recall@20 = nan: a diverged run?" in said
    said = refusal(
        paired.main, monkeypatch, capsys, [*argv[:2], str(tmp_path), *argv[3:], "--runs", "b", str(b[0])]
    )
    assert "is a folder: give a path without suffix" in said
    twice = write_run(tmp_path / "b1-again", [(10, 5.0, 0.3)], seed=1, sparsity=0.5)
    said = refusal(paired.main, monkeypatch, capsys, [*argv, "--runs", "sparse", *map(str, b), str(twice)])
    assert f"{b[0]} and {twice} are both seed 1: keep one of them" in said
    said = refusal(paired.main, monkeypatch, capsys, [*argv, "--runs", "dense", *map(str, b)])
    assert "both groups are named 'dense'" in said
    said = refusal(paired.main, monkeypatch, capsys, [*argv, "--runs", "seed", *map(str, b)])
    assert "a group named 'seed' would share the table's column of that name" in said
    said = refusal(paired.main, monkeypatch, capsys, argv)
    assert "--runs is given 1 times: give it twice" in said
    said = refusal(paired.main, monkeypatch, capsys, [*argv[:5], str(a[0]), "--runs", "sparse", str(b[0])])
    assert "one seed only" in said


def test_plot_setting_writes_table_and_plot_and_names_what_it_cannot_read(tmp_path, monkeypatch, capsys):
    plot_setting = load("plot_setting")
    a = write_run(tmp_path / "a", [(10, 5.0, 0.2)], reg_weight=1e-3)
    b = write_run(tmp_path / "b", [(10, 5.0, 0.1)], reg_weight=1e-4, sparsity=0.5)
    out = tmp_path / "plots" / "recall_vs_l2"
    argv = ["plot_setting.py", "--setting", "reg_weight", "--log-x", "--out", str(out)]
    monkeypatch.setattr(sys, "argv", [*argv, "--curve", "dense", str(a), "--curve", "DSL 50%", str(b)])
    plot_setting.main()
    assert out.with_suffix(".csv").read_text().splitlines() == [
        "curve,reg_weight,runs,mean_test_recall@20,min_test_recall@20,max_test_recall@20",
        "dense,0.001,1,0.2,0.2,0.2",
        "DSL 50%,0.0001,1,0.1,0.1,0.1",
    ]
    assert out.with_suffix(".png").read_bytes().startswith(b"\x89PNG")
    said = refusal(
        plot_setting.main, monkeypatch, capsys, [*argv, "--curve", "x", str(a), "--curve", "x", str(b)]
    )
    assert "the curve name 'x' is given twice" in said
    said = refusal(plot_setting.main, monkeypatch, capsys, [*argv, "--curve", "x"])
    assert "--curve x names no run folder" in said
    said = refusal(plot_setting.main, monkeypatch, capsys, [*argv, "--curve", "x", str(tmp_path)])
    assert f"{tmp_path}: not a run folder (no metrics.json)" in said
    said = refusal(
        plot_setting.main, monkeypatch, capsys, [*argv[:2], "lr_typo", *argv[3:], "--curve", "x", str(a)]
    )
    assert "records no setting 'lr_typo'" in said
    said = refusal(
        plot_setting.main, monkeypatch, capsys, [*argv, "--split", "validation", "--curve", "x", str(a)]
    )
    assert "holds no validation recall@20" in said
    folder = [*argv[:-1], str(tmp_path), "--curve", "x", str(a)]  # was written as <tmp_path>.csv beside it
    assert f"--out {tmp_path} is a folder" in refusal(plot_setting.main, monkeypatch, capsys, folder)


def test_plot_history_tables_and_plots_each_runs_evaluations(tmp_path):
    write_run(tmp_path / "a", [(10, 5.0, 0.15), (20, 10.0, 0.17)])
    write_run(tmp_path / "b", [(10, 4.0, 0.12)])
    out = tmp_path / "curves" / "recall"
    script = BENCHMARKS / "plot_history.py"
    runs = [f"a={tmp_path / 'a'}", f"b={tmp_path / 'b'}"]
    done = subprocess.run(
        [sys.executable, script, *runs, "--reference", "paper=0.18", "--out", out],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    lines = out.with_suffix(".csv").read_text().splitlines()
    assert lines == [
        "run,epoch,train_seconds,test_recall@20",
        "a,10,5.0,0.15",
        "a,20,10.0,0.17",
        "b,10,4.0,0.12",
    ]
    assert out.with_suffix(".png").read_bytes().startswith(b"\x89PNG")
    no_validation = subprocess.run(
        [sys.executable, script, *runs, "--split", "validation", "--out", out], capture_output=True, text=True
    )
    assert no_validation.returncode != 0 and "a: no validation recall@20" in no_validation.stderr
    missing = subprocess.run(
        [sys.executable, script, *runs, "--metric", "recall@50", "--out", out], capture_output=True, text=True
    )
    assert missing.returncode != 0 and "a: no test recall@50" in missing.stderr
    bad = subprocess.run(
        [sys.executable, script, *runs, "--reference", "paper=high", "--out", out],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "paper: 'high' is not a number" in bad.stderr


def test_plot_history_names_the_split_it_read(tmp_path, monkeypatch):
    """A run with a validation split has both splits' metrics at every evaluation: the table and the plot
    say which one they show."""
    summary_path = write_run(tmp_path / "a", [(10, 5.0, 0.15)]) / "metrics.json"
    summary = json.loads(summary_path.read_text())
    summary["history"][0]["validation"] = {"recall@20": 0.2}
    summary_path.write_text(json.dumps(summary))
    plot_history = load("plot_history")
    rows = plot_history.history("a", tmp_path / "a", "recall@20", "validation")
    assert rows == [{"run": "a", "epoch": 10, "train_seconds": 5.0, "validation_recall@20": 0.2}]
    closed = []
    monkeypatch.setattr(plot_history.plt, "close", closed.append)  # the figure, once drawn and saved
    plot_history.plot(rows, "validation", "recall@20", [], tmp_path / "a.png")
    assert closed[0].axes[0].get_ylabel() == "validation recall@20"


def run_script(name: str, *args: str) -> list[dict]:
    """Runs ``benchmarks/<name>.py`` on the embedded LastFM split and returns its CSV rows."""
    out = Path(args[args.index("--output") + 1])
    subprocess.run([sys.executable, str(BENCHMARKS / f"{name}.py"), *args], check=True, capture_output=True)
    with out.open() as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_bench_sparse_records_each_backends_bytes(tmp_path):
    args = ["--dataset", "lastfm", "--sparsities", "0.8", "--iterations", "1", "--warmup", "1"]
    rows = run_script("bench_sparse", *args, "--output", str(tmp_path / "b.csv"))
    by_backend = {row["backend"]: row for row in rows}
    assert set(by_backend) == {"dense", "sparse", "compact", "masked"}
    workspace = {backend: int(row["workspace_bytes"]) for backend, row in by_backend.items()}
    assert workspace["sparse"] > 0 and workspace["compact"] == workspace["masked"] == workspace["dense"] == 0
    stored = {backend: int(row["parameter_and_state_bytes"]) for backend, row in by_backend.items()}
    assert stored["sparse"] == stored["compact"] < stored["dense"] < stored["masked"]
    losses = {backend: float(row["first_loss"]) for backend, row in by_backend.items()}
    assert losses["sparse"] == pytest.approx(losses["compact"]) == pytest.approx(losses["masked"])


@pytest.mark.slow
def test_bench_sparse_times_a_compiled_loss_without_the_update_that_compiles_again(tmp_path):
    args = ["--dataset", "lastfm", "--sparsities", "0.8", "--iterations", "1", "--warmup", "2"]
    rows = run_script("bench_sparse", *args, "--compile", "aot_eager", "--output", str(tmp_path / "b.csv"))
    assert {row["compile"] for row in rows} == {"aot_eager"}
    assert [row["seconds_per_update"] for row in rows] == ["0.0", "", "", ""]  # the dense row has none
    losses = {row["backend"]: float(row["first_loss"]) for row in rows}
    assert losses["sparse"] == pytest.approx(losses["compact"]) == pytest.approx(losses["masked"])


def test_bench_sparse_refuses_a_compiler_torch_does_not_have(monkeypatch, capsys):
    script = load("bench_sparse")
    monkeypatch.setattr(script, "load_dataset", None)
    argv = ["bench_sparse.py", "--compile", "inductr"]
    assert "--compile inductr: not a torch.compile backend" in refusal(script.main, monkeypatch, capsys, argv)


@pytest.mark.slow
def test_bench_sparse_counts_and_profiles_iterations_without_an_update(tmp_path):
    """With few iterations the DSL's next update fell among the iterations counted and profiled after the
    timed one (its prune is the only ``topk``); there is one update only."""
    args = ["--dataset", "lastfm", "--sparsities", "0.8", "--iterations", "1", "--warmup", "1"]
    profile = tmp_path / "profile.txt"
    rows = run_script("bench_sparse", *args, "--profile", str(profile), "--output", str(tmp_path / "b.csv"))
    assert "aten::topk" not in profile.read_text()
    operators = {row["backend"]: int(row["operators_per_iteration"]) for row in rows}
    assert max(operators.values()) - min(operators.values()) < 20  # an update calls hundreds more


class Clock:
    """A ``time.perf_counter`` that the code under test moves on by the seconds it says its work takes."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Queue:
    """A GPU's queue on a :class:`Clock`: the seconds of the work launched pass only when ``sync`` waits for
    it, so that a time taken without waiting misses the work, and a wait before the start of a span puts
    earlier work outside it. ``launched`` names the work in the order launched."""

    def __init__(self, clock: Clock) -> None:
        self.clock, self.queued, self.launched = clock, 0.0, []

    def launch(self, seconds: float, what: str = "work") -> None:
        self.queued += seconds
        self.launched.append(what)

    def sync(self, device=None) -> None:
        self.clock.now += self.queued
        self.queued = 0.0

    def with_backward(self, out: torch.Tensor, seconds: float) -> torch.Tensor:
        """``out``, whose backward launches ``seconds`` of work."""
        return _QueuedBackward.apply(out, self, seconds)


class _QueuedBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, out, queue, seconds):
        ctx.queue, ctx.seconds = queue, seconds
        return out.clone()

    @staticmethod
    def backward(ctx, grad):
        ctx.queue.launch(ctx.seconds, "backward")
        return grad, None, None


def test_bench_lightgcn_times_epoch_draws_apart_from_iterations(monkeypatch):
    """An epoch draws its shuffle and negatives before its first batch; the iterations' mean leaves that out,
    also where the timed iterations cross into the next epoch, so it is timed on its own and added to the
    epoch once. The negative sampler, built at the first draw, is a run's setup, not an epoch's work."""
    bench_lightgcn = load("bench_lightgcn")
    clock = Clock()
    monkeypatch.setattr(time, "perf_counter", clock)

    class Batches:
        def __len__(self):
            return 3

        @functools.cached_property
        def sampler(self):
            clock.now += 100.0
            return "sampler"

        def __iter__(self):
            assert self.sampler == "sampler"
            clock.now += 8.0  # the epoch's shuffle and negatives
            yield from [()] * 3

    def step():
        clock.now += 1.0

    # 1 warm-up iteration, then 4 timed ones: the last 2 in the second epoch, after its draw
    per_iteration, sampling = bench_lightgcn.time_iterations(
        step, Batches(), torch.device("cpu"), warmup=1, iterations=4
    )
    assert (per_iteration, sampling) == (1.0, 8.0)
    with pytest.raises(ValueError, match="--warmup 3 takes all of its 3 iterations"):
        bench_lightgcn.time_iterations(step, Batches(), torch.device("cpu"), warmup=3, iterations=0)
    done = subprocess.run(
        [sys.executable, BENCHMARKS / "bench_lightgcn.py", "--iterations", "-1"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and "need --warmup, --iterations and --train-epochs >= 0" in done.stderr


def test_bench_lightgcn_quality_check_does_not_depend_on_the_processs_seed(small_data, tmp_path, monkeypatch):
    """Each implementation starts from the same seed: a rerun reports the same Recall/NDCG@20."""
    bench = load("bench_lightgcn")
    monkeypatch.setattr(bench, "load_dataset", lambda name, root: small_data)
    qualities = []
    for seed in (1, 2):
        torch.manual_seed(seed)  # what ran before in the process
        out = tmp_path / f"{seed}.csv"
        argv = ["--batch-size", "64", "--warmup", "1", "--iterations", "1", "--train-epochs", "1"]
        monkeypatch.setattr(sys, "argv", ["bench_lightgcn.py", *argv, "--output", str(out)])
        bench.main()
        with out.open() as f:
            qualities.append([(row["recall@20"], row["ndcg@20"]) for row in csv.DictReader(f)])
    assert qualities[0] == qualities[1]


def queued_timing(bench, monkeypatch) -> Queue:
    """A :class:`Queue` whose clock is that of ``bench`` and of the ``Epochs`` it draws its batches with,
    each draw of an epoch queueing 5 s."""
    gpu = Queue(Clock())
    monkeypatch.setattr(time, "perf_counter", gpu.clock)
    monkeypatch.setattr(bench, "sync", gpu.sync)
    monkeypatch.setitem(bench.Epochs._endless.__globals__, "sync", gpu.sync)  # common's, as imported

    class Batches(bench.BPRBatches):
        def __iter__(self):
            gpu.launch(5.0, "draw")
            yield from super().__iter__()

    monkeypatch.setattr(bench, "BPRBatches", Batches)
    return gpu


@pytest.mark.parametrize("iterations, timed", [(6, 6), (0, 3)])  # 0: the rest of the first epoch's 4
def test_bench_lightgcn_times_each_implementations_own_iterations_and_evaluation(
    small_data, tmp_path, monkeypatch, iterations, timed
):
    """Each row times its own implementation's iterations (1 s a PyG one, 2 s a dslgraph one) and full
    evaluation (10 s, 20 s) after their warm-ups, waits for queued work at each end, and trains the
    --train-epochs on the batches of --batch-size before its quality check's evaluation."""
    bench = load("bench_lightgcn")
    gpu = queued_timing(bench, monkeypatch)
    monkeypatch.setattr(bench, "load_dataset", lambda name, root: small_data)
    calls = {"pyg-loop": [], "dslgraph": []}

    class PyG(bench.PyGLightGCN):
        def recommendation_loss(self, pos_rank, *args, **kwargs):
            calls["pyg-loop"].append(("step", pos_rank.numel()))
            gpu.launch(1.0)
            return super().recommendation_loss(pos_rank, *args, **kwargs)

    class Recall(bench.LinkPredRecall):
        def compute(self):
            calls["pyg-loop"].append("eval")
            gpu.launch(10.0)
            return super().compute()

    class Ours(bench.LightGCN):
        def loss(self, adj, users, *args):
            calls["dslgraph"].append(("step", users.numel()))
            gpu.launch(2.0)
            return super().loss(adj, users, *args)

        def scorer(self, adj):
            calls["dslgraph"].append("eval")
            gpu.launch(20.0)
            return super().scorer(adj)

    monkeypatch.setattr(bench, "PyGLightGCN", PyG)
    monkeypatch.setattr(bench, "LinkPredRecall", Recall)
    monkeypatch.setattr(bench, "LightGCN", Ours)
    made_adam = []
    monkeypatch.setattr(
        bench, "make_adam", lambda params, lr: made_adam.append(lr) or torch.optim.Adam(params)
    )
    out = tmp_path / "speed.csv"
    argv = ["--batch-size", "64", "--warmup", "1", "--iterations", str(iterations), "--train-epochs", "2"]
    monkeypatch.setattr(sys, "argv", ["bench_lightgcn.py", *argv, "--output", str(out)])
    bench.main()
    with out.open() as f:
        rows = list(csv.DictReader(f))
    batches = -(-small_data["user", "item"].edge_index.size(1) // 64)
    assert batches == 4
    assert [row["implementation"] for row in rows] == ["pyg-loop", "dslgraph"]
    for row, step, evaluation in zip(rows, (1.0, 2.0), (10.0, 20.0)):
        assert (row["batch_size"], row["iterations_per_epoch"], row["train_epochs"]) == ("64", "4", "2")
        assert float(row["seconds_per_iteration"]) == step
        assert float(row["sampling_seconds_per_epoch"]) == 5.0  # once, not the second epoch's draw too
        assert float(row["seconds_per_epoch"]) == step * batches + 5.0
        assert float(row["seconds_per_full_eval"]) == evaluation
    for name, made in calls.items():
        steps = [call for call in made if call != "eval"]
        assert steps[:2] == [("step", 64)] * 2, name  # pairs of --batch-size
        # the warm-up and timed iterations, an untimed evaluation and the timed one, the training epochs
        # and the quality check's evaluation
        shape = ["step"] * (1 + timed) + ["eval"] * 2 + ["step"] * 2 * batches + ["eval"]
        assert [call if call == "eval" else "step" for call in made] == shape, name
    assert made_adam == [1e-3]  # dslgraph's side steps the optimizer dslgraph trains with


def test_bench_lightgcn_implementations_train_and_rank_alike(small_data):
    """From the same embeddings, PyG's loop and dslgraph's step to the same gradient (without the L2 term,
    which PyG scales twice as large) and rank to the same Recall/NDCG@20: the same protocol on both."""
    bench = load("bench_lightgcn")
    models = []

    def recorded(cls):
        class Recorded(cls):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                models.append(self)

        return Recorded

    cpu = torch.device("cpu")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bench, "PyGLightGCN", recorded(bench.PyGLightGCN))
        patch.setattr(bench, "LightGCN", recorded(bench.LightGCN))
        pyg_step, pyg_evaluate = bench.pyg_loop(small_data, cpu, 8, 2, 1e-3, 0.0)
        step, evaluate = bench.ours(small_data, cpu, 8, 2, 1e-3, 0.0)
    pyg, ours = models
    with torch.no_grad():
        ours.embedding.weight.copy_(pyg.embedding.weight)
    assert pyg_evaluate() == pytest.approx(evaluate(), abs=1e-6)
    users, pos, neg = torch.tensor([0, 1, 2, 2]), torch.tensor([1, 5, 3, 3]), torch.tensor([7, 2, 9, 0])
    pyg_step(users, pos, neg)
    step(users, pos, neg)
    torch.testing.assert_close(ours.embedding.weight.grad, pyg.embedding.weight.grad)


def test_bench_lightgcn_writes_the_rows_it_measured_when_stopped(small_data, tmp_path, monkeypatch):
    bench = load("bench_lightgcn")
    monkeypatch.setattr(bench, "load_dataset", lambda name, root: small_data)

    def stopped(*args):
        raise KeyboardInterrupt  # the run stopped while building its second row

    monkeypatch.setattr(bench, "ours", stopped)
    out = tmp_path / "speed.csv"
    argv = ["--batch-size", "64", "--warmup", "1", "--iterations", "1", "--output", str(out)]
    monkeypatch.setattr(sys, "argv", ["bench_lightgcn.py", *argv])
    with pytest.raises(KeyboardInterrupt):
        bench.main()
    with out.open() as f:
        assert [row["implementation"] for row in csv.DictReader(f)] == ["pyg-loop"]


@pytest.mark.parametrize("compiler", [None, "aot_eager"])
def test_bench_sparse_times_iterations_and_the_update_apart(small_data, monkeypatch, compiler):
    """An iteration queues 1 s and DSL's update 100 s more: each row's iteration is 1 s, its one update
    (at the iteration after the timed ones, none after it) 100 s, amortised over --update-interval, and its
    epoch adds its draw (5 s) once. Compiled, the loss is torch.compile's with the backend asked for, and
    the update, which compiles again, is not timed."""
    bench = load("bench_sparse")
    gpu = queued_timing(bench, monkeypatch)
    updates, losses, compiled = [], [], []

    class Model(bench.LightGCN):
        def loss(self, adj, users, *args):
            losses.append(users.numel())
            gpu.launch(1.0)
            return super().loss(adj, users, *args)

    class DSL(bench.DynamicSparseLearning):
        def __init__(self, model, sparsity, **options):
            super().__init__(model, sparsity, **options)
            updates.append(("built", sparsity, options["backend"]))

        def update(self):
            updates.append(self.iteration)
            gpu.launch(100.0)
            return super().update()

    def compile(function, backend):
        compiled.append(backend)
        return function

    monkeypatch.setattr(bench, "LightGCN", Model)
    monkeypatch.setattr(bench, "DynamicSparseLearning", DSL)
    monkeypatch.setattr(torch, "compile", compile)
    args = SimpleNamespace(
        dataset="tiny",
        batch_size=64,
        warmup=2,
        iterations=3,
        update_interval=10,
        compile=compiler,
        profile=None,
    )
    adj = bench.propagation_graph(small_data)
    cpu = torch.device("cpu")
    dense = bench.measure(small_data, adj, cpu, 0.0, "dense", args, [])
    sparse = bench.measure(small_data, adj, cpu, 0.8, "compact", args, [])
    assert updates == [("built", 0.8, "compact"), 2 + 3 + 1]
    assert losses[0] == 64 and compiled == [compiler] * 2 * (compiler is not None)
    batches = -(-small_data["user", "item"].edge_index.size(1) // 64)
    for row, sparsity, backend in [(dense, 0.0, "dense"), (sparse, 0.8, "compact")]:
        assert (row["sparsity"], row["backend"], row["compile"]) == (sparsity, backend, compiler or "")
        assert (row["batch_size"], row["update_interval"], row["seconds_per_iteration"]) == (64, 10, 1.0)
    assert dense["gradient_bytes"] == (30 + 40) * 64 * 4  # the dense table's gradient, float32
    assert sparse["gradient_bytes"] == round(0.2 * 70 * 64) * 4  # its active values' only, not positions
    assert dense["seconds_per_update"] == 0.0
    assert dense["seconds_per_epoch_amortised"] == batches * 1.0 + 5.0
    if compiler is None:
        assert sparse["seconds_per_update"] == 100.0
        assert sparse["seconds_per_epoch_amortised"] == batches * (1.0 + 100.0 / 10) + 5.0
    else:
        assert sparse["seconds_per_update"] is None
        assert sparse["seconds_per_epoch_amortised"] == batches * 1.0 + 5.0


def test_bench_sparse_stops_where_a_backends_first_loss_differs(tmp_path, monkeypatch):
    bench = load("bench_sparse")
    monkeypatch.setattr(bench, "load_dataset", lambda name, root: None)
    monkeypatch.setattr(bench, "propagation_graph", lambda data: torch.zeros(1))

    def measure(data, adj, device, sparsity, backend, args, profiles):
        # the dense model's loss differs from the sparse ones' (its table is whole), a masked one's must not
        first_loss = {"dense": 0.7, "masked": 0.51 if sparsity == 0.9 else 0.5}.get(backend, 0.5)
        return {"sparsity": sparsity, "backend": backend, "first_loss": first_loss}

    monkeypatch.setattr(bench, "measure", measure)
    out = tmp_path / "b.csv"
    monkeypatch.setattr(sys, "argv", ["bench_sparse.py", "--sparsities", "0.8", "0.9", "--output", str(out)])
    with pytest.raises(RuntimeError, match="first loss at sparsity 0.9: masked does not compute what sparse"):
        bench.main()
    with out.open() as f:  # the rows before, each backend at each sparsity in turn
        rows = [(row["sparsity"], row["backend"]) for row in csv.DictReader(f)]
    assert rows == [("0.0", "dense"), ("0.8", "sparse"), ("0.8", "compact"), ("0.8", "masked")] + [
        ("0.9", "sparse"),
        ("0.9", "compact"),
    ]


def test_bench_sparse_counts_and_profiles_the_operators_of_its_iterations():
    """``operators_per_iteration`` counts one iteration's aten operators, not the profiler's other events
    (a ``record_function`` label); the profile is a table of three iterations under its row's title."""
    bench = load("bench_sparse")
    a, steps = torch.ones(3), []

    def step():
        steps.append(1)
        with torch.profiler.record_function("an iteration"):
            torch.add(a, a)
            torch.mul(a, a)

    assert bench.count_launches(step, torch.device("cpu")) == {"operators_per_iteration": 2}
    assert len(steps) == 1
    table = bench.profile_table(step, torch.device("cpu"), "sparsity 0.8, backend sparse")
    assert len(steps) == 4 and table.startswith("== sparsity 0.8, backend sparse, 3 iterations\n")
    assert "aten::add" in table and "aten::mul" in table


@pytest.mark.parametrize(
    "name, argv, message",
    [
        ("bench_sparse", ["--warmup", "0"], "need --warmup >= 1 and --iterations >= 1"),
        ("bench_sparse", ["--iterations", "0"], "need --warmup >= 1 and --iterations >= 1"),
        ("bench_lightgcn", ["--warmup", "-1"], "need --warmup, --iterations and --train-epochs >= 0"),
        ("bench_lightgcn", ["--train-epochs", "-1"], "need --warmup, --iterations and --train-epochs >= 0"),
        ("bench_lightgcn", ["--batch-size", "0"], "--batch-size: expected an integer of at least 1"),
    ],
)
def test_bench_speed_options_are_checked_before_loading(tmp_path, monkeypatch, capsys, name, argv, message):
    script = load(name)
    monkeypatch.setattr(script, "load_dataset", None)
    argv = [f"{name}.py", *argv, "--output", str(tmp_path / "rows.csv")]
    assert message in refusal(script.main, monkeypatch, capsys, argv)


def test_bench_optimizer_times_each_variants_own_steps_in_milliseconds(tmp_path, monkeypatch):
    """A step queues 1, 2 or 3 ms (default, foreach, fused): each row is its variant's steps after the 3
    that make Adam's state, on its size's parameters."""
    bench = load("bench_optimizer")
    gpu = Queue(Clock())
    monkeypatch.setattr(time, "perf_counter", gpu.clock)
    monkeypatch.setattr(bench, "sync", gpu.sync)
    made = []

    class Adam(torch.optim.Adam):
        def __init__(self, params, lr, **options):
            params = list(params)
            made.append((params[0].numel(), lr, options))
            super().__init__(params, lr=lr, **options)

        def step(self):
            gpu.launch(0.003 if self.defaults["fused"] else 0.002 if self.defaults["foreach"] else 0.001)
            return super().step()

    monkeypatch.setattr(torch.optim, "Adam", Adam)
    out = tmp_path / "adam.csv"
    monkeypatch.setattr(
        sys, "argv", ["bench_optimizer.py", "--sizes", "10", "20", "--steps", "4", "--output", str(out)]
    )
    bench.main()
    variants = [
        ({}, "default", "1.0"),
        ({"foreach": True}, "foreach", "2.0"),
        ({"fused": True}, "fused", "3.0"),
    ]
    assert made == [(size, 1e-3, options) for size in (10, 20) for options, _, _ in variants]
    with out.open() as f:
        rows = [(row["parameters"], row["adam"], row["ms_per_step"]) for row in csv.DictReader(f)]
    assert rows == [(str(size), name, ms) for size in (10, 20) for _, name, ms in variants]


def test_bench_plan_times_each_density_and_counts_its_plan(tmp_path):
    args = ["--dataset", "lastfm", "--densities", "0.5", "0.2", "--repeats", "1"]
    rows = run_script("bench_plan", *args, "--output", str(tmp_path / "p.csv"))
    cases = [(float(row["density"]), row["slots"]) for row in rows]
    assert cases == [(0.5, "sorted"), (0.5, "shuffled"), (0.2, "sorted"), (0.2, "shuffled")]
    plan_bytes = [int(row["workspace_bytes"]) for row in rows]
    assert (
        plan_bytes[0] == plan_bytes[1] > plan_bytes[2] == plan_bytes[3] > 0
    )  # the slots' order changes no size


def test_bench_plan_times_no_first_build_of_the_process(tmp_path, monkeypatch):
    """A process's first build also pays for its kernels' first launches (on an H200 10x a later one): an
    untimed build comes first, so that no density's median holds it."""
    from dslgraph.sparse import SparseEmbedding

    bench_plan = load("bench_plan")
    clock, built = Clock(), []

    def propagate(table, adj):
        built.append(table.density())
        clock.now += 10.0 if len(built) == 1 else 1.0

    monkeypatch.setattr(SparseEmbedding, "propagate", propagate)
    monkeypatch.setattr(bench_plan, "time", SimpleNamespace(perf_counter=clock))
    out = tmp_path / "p.csv"
    args = ["--dataset", "lastfm", "--densities", "0.5", "0.2", "--repeats", "2", "--slots", "sorted"]
    monkeypatch.setattr(sys, "argv", ["bench_plan.py", *args, "--output", str(out)])
    bench_plan.main()
    with out.open() as f:
        rows = list(csv.DictReader(f))
    assert [(row["density"], row["seconds"], row["seconds_median"]) for row in rows] == [
        ("0.5", "1.000 1.000", "1.0"),
        ("0.2", "1.000 1.000", "1.0"),
    ]
    assert len(built) == 5 and built[0] == pytest.approx(0.5, abs=1e-3)  # the warm-up: the largest plan


def test_benchmarks_refuse_to_time_variants_that_compute_different_things():
    common = load("common")
    common.agree("the first loss", {"sparse": 0.6925, "masked": 0.69250001, "compact": torch.tensor(0.6925)})
    common.agree("logits", {"gather": torch.tensor([-30.0, 0.0]), "product": torch.tensor([-30.0, 2e-3])})
    with pytest.raises(
        RuntimeError, match=r"the first loss: masked does not compute what sparse does \(larg"
    ):
        common.agree("the first loss", {"sparse": 0.6925, "masked": 0.7})
    with pytest.raises(
        RuntimeError, match=r"logits: product does not .* \(shape \(3, 2\) against \(2, 3\)\)"
    ):
        common.agree("logits", {"gather": torch.ones(2, 3), "product": torch.ones(3, 2)})


def test_bench_ultragcn_logits_checks_both_routes_compute_the_same_logits(tmp_path, monkeypatch):
    bench = load("bench_ultragcn_logits")
    monkeypatch.setattr(bench, "SHAPES", (("tiny", 4, 3, 10, 8),))
    out = tmp_path / "u.csv"
    monkeypatch.setattr(sys, "argv", ["bench_ultragcn_logits.py", "--repeats", "1", "--output", str(out)])
    bench.main()
    assert [row.split(",")[1] for row in out.read_text().splitlines()[1:]] == ["gather", "product"]
    logits = bench.logits
    monkeypatch.setattr(bench, "logits", lambda route, *args: logits(route, *args) * (route == "gather"))
    with pytest.raises(RuntimeError, match="the tiny logits: product does not compute what gather does"):
        bench.main()


def _scaled_where(function, condition, factor=1.01):
    """``function``, except that where ``condition(*args)`` holds it computes ``factor`` times its result,
    as a wrong kernel or backend would."""

    def scaled(*args, **kwargs):
        return function(*args, **kwargs) * (factor if condition(*args) else 1.0)

    return scaled


@pytest.mark.parametrize(
    ("name", "argv", "attribute", "condition", "message"),
    [
        (
            "bench_sparse_linear",
            ["--items", "20", "--hidden", "4", "--batches", "2", "--sparsities", "0.5", "--repeats", "1"],
            "train_step",
            lambda model, x, optimizer, dsl: dsl is not None and dsl.backend == "sparse",
            "the first loss at batch 2, sparsity 0.5: sparse does not compute what masked does",
        ),
        (
            "bench_spmm",
            ["--dataset", "lastfm", "--repeats", "1"],
            "spmm",
            lambda matrix, x: not isinstance(matrix, torch.Tensor),  # torch-sparse's SparseTensor
            "the product: torch_sparse SparseTensor does not compute what torch CSR does",
        ),
    ],
    ids=["bench_sparse_linear", "bench_spmm"],
)
def test_benchmarks_stop_where_their_variants_compute_different_things(
    tmp_path, monkeypatch, name, argv, attribute, condition, message
):
    """Each script checks its variants' results (common.agree) before it times them: without the check
    a wrong backend or kernel was timed as if it did the same work, and no test noticed it gone."""
    if name == "bench_spmm":
        pytest.importorskip("torch_sparse")
        monkeypatch.setenv("DSLGRAPH_HOME", str(tmp_path / "data"))  # LastFM, processed there
    bench = load(name)
    monkeypatch.setattr(bench, attribute, _scaled_where(getattr(bench, attribute), condition))
    monkeypatch.setattr(sys, "argv", [f"{name}.py", *argv, "--output", str(tmp_path / "b.csv")])
    with pytest.raises(RuntimeError, match=message):
        bench.main()


class _ScaledGradient(torch.autograd.Function):
    """The identity, whose backward scales the gradient: a kernel right forward and wrong backward."""

    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad * 1.01


def test_bench_spmm_stops_where_a_kernel_computes_another_gradient(tmp_path, monkeypatch):
    """The timed span is a product and its backward: a kernel whose product agrees and whose gradient does
    not was timed as if it did the same work."""
    pytest.importorskip("torch_sparse")
    monkeypatch.setenv("DSLGRAPH_HOME", str(tmp_path / "data"))  # LastFM, processed there
    bench = load("bench_spmm")
    spmm = bench.spmm

    def wrong_backward(matrix, x):
        return spmm(matrix, x if isinstance(matrix, torch.Tensor) else _ScaledGradient.apply(x))

    monkeypatch.setattr(bench, "spmm", wrong_backward)
    argv = ["--dataset", "lastfm", "--repeats", "1", "--output", str(tmp_path / "s.csv")]
    monkeypatch.setattr(sys, "argv", ["bench_spmm.py", *argv])
    with pytest.raises(RuntimeError, match="the gradient: torch_sparse SparseTensor does not compute what"):
        bench.main()


def test_bench_optimizer_stops_where_an_adam_variant_steps_differently(tmp_path, monkeypatch):
    bench = load("bench_optimizer")
    adam = torch.optim.Adam
    # the fused variant with another learning rate: its parameters end elsewhere
    monkeypatch.setattr(
        torch.optim, "Adam", lambda params, lr, **options: adam(params, lr * (2 if options else 1), **options)
    )
    argv = ["--sizes", "10", "--steps", "1", "--output", str(tmp_path / "a.csv")]
    monkeypatch.setattr(sys, "argv", ["bench_optimizer.py", *argv])
    with pytest.raises(RuntimeError, match="Adam on 10 parameters: foreach does not compute what default"):
        bench.main()


@pytest.mark.parametrize(
    "variant",
    [
        "degree-init",
        "fresh-adam",
        "grown-boost=2",
        "grown-grace",
        "prefix",
        "probe-batches=3",
        "row-balanced",
        "scaled-init",
    ],
)
def test_dsl_variants_still_train(variant, tmp_path, monkeypatch):
    """The variants patch dslgraph's own functions, so a changed signature there breaks them silently."""
    monkeypatch.setenv("DSLGRAPH_HOME", str(tmp_path / "data"))
    args = ["train", "--epochs", "1", "--embedding-dim", "8", "--sparsity", "0.8", "--update-interval", "5"]
    args += ["--no-progress", "--device", "cpu", "--output", str(tmp_path / "run")]
    subprocess.run([sys.executable, str(BENCHMARKS / "dsl_variants.py"), variant, *args], check=True)
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["sparsity"] == pytest.approx(
        0.8, abs=1e-3
    )


def test_dsl_variant_degree_exponent_sets_the_widths_law(monkeypatch):
    from dslgraph.sparse import embedding

    monkeypatch.setattr(embedding, "DEGREE_EXPONENT", embedding.DEGREE_EXPONENT)  # restored afterwards
    dsl_variants = load("dsl_variants")
    degree = torch.tensor([0, 3, 15, 99])
    square_root = embedding.degree_widths(degree, 20, 16).tolist()
    dsl_variants.use_degree_exponent("0")  # every row as wide as the next
    assert embedding.degree_widths(degree, 20, 16).tolist() == [5, 5, 5, 5] != square_root
    dsl_variants.use_degree_exponent("1")
    assert embedding.degree_widths(degree, 20, 16).tolist() == [1, 1, 2, 16]  # (d + 1) x 0.18, clipped
    for bad in ("x", "-1", "nan"):
        with pytest.raises(SystemExit, match="degree-exponent=A needs"):
            dsl_variants.use_degree_exponent(bad)


@pytest.mark.parametrize("variant", ["row-balanced", "prefix"])
def test_dsl_variants_keep_an_entry_pruned_and_grown_back(variant, monkeypatch):
    """As under the engine's own update (tests/sparse/test_dsl.py), an entry that a variant prunes and
    grows back in one update never left: it keeps its value and, under optimizer_state="reset", its
    moments."""
    from dslgraph.sparse import DynamicSparseLearning

    dsl_variants = load("dsl_variants")
    update = {"row-balanced": dsl_variants.row_balanced_update, "prefix": dsl_variants.prefix_update}
    monkeypatch.setattr(DynamicSparseLearning, "update", update[variant])
    model = torch.nn.Sequential(torch.nn.Embedding(1, 4))
    dsl = DynamicSparseLearning(model, 0.5, total_steps=1, update_interval=1, schedule="constant", rho0=0.5)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.0)  # values stay as set
    dsl.attach(optimizer)
    table = model[0]
    with torch.no_grad():
        table.positions.copy_(torch.tensor([0, 1]))  # a prefix, as the prefix variant keeps its rows
        table.values.copy_(torch.tensor([1.0, 0.1]))
    table.positions_changed()
    # both variants prune column 1 (the weaker entry, the row's tail) and grow it back: it has the
    # largest gradient and is the column right after the row's new end
    scale = torch.tensor([1.0, 10.0, 1.0, 1.0])
    (table(torch.zeros(1, dtype=torch.long)).squeeze(0) * scale).sum().backward()
    optimizer.step()
    dsl.step()
    assert dsl.updates[0]["changed"] == {"0": 1}
    assert table.positions.tolist() == [0, 1]
    assert table.values[1].item() == pytest.approx(0.1)
    assert optimizer.state[table.values]["exp_avg"][1].item() == pytest.approx(1.0)


def test_dsl_variant_accumulated_gradient_grows_by_the_window_sum(monkeypatch):
    """Over two iterations, column 2's gradients (+3, -3) cancel and column 3's (+1, +1) add up: the
    engine grows by the last batch (column 2), the variant by the window's sum (column 3), and starts
    the next window from nothing."""
    from dslgraph.sparse import DynamicSparseLearning
    from dslgraph.sparse import dsl as engine

    # registered first, so that the variant's patches are undone after the test
    monkeypatch.setattr(engine._MaskedTarget, "set_probe", engine._MaskedTarget.set_probe)
    monkeypatch.setattr(DynamicSparseLearning, "update", DynamicSparseLearning.update)

    def grown_column(accumulated: bool) -> tuple[int, object]:
        if accumulated:
            load("dsl_variants").use_accumulated_gradient()
        model = torch.nn.Sequential(torch.nn.Embedding(1, 4))
        dsl = DynamicSparseLearning(
            model, 0.5, total_steps=2, update_interval=2, schedule="constant", rho0=0.5, backend="masked"
        )
        optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # values stay as set
        dsl.attach(optimizer)
        table = model[0]
        with torch.no_grad():
            table.weight_mask.copy_(torch.tensor([[True, True, False, False]]))
            table.weight.copy_(torch.tensor([[1.0, 0.1, 0.0, 0.0]]))
        for scale in ([0.0, 0.0, 3.0, 1.0], [0.0, 0.0, -3.0, 1.0]):
            optimizer.zero_grad()
            (table(torch.zeros(1, dtype=torch.long)).squeeze(0) * torch.tensor(scale)).sum().backward()
            optimizer.step()
            dsl.step()
        assert dsl.updates[0]["changed"] == {"0": 1}  # column 1, the weaker entry, pruned
        return table.weight_mask[0].nonzero().squeeze(1).tolist(), dsl.targets[0].grad

    assert grown_column(accumulated=False)[0] == [0, 2]
    columns, window = grown_column(accumulated=True)
    assert columns == [0, 3]
    assert window is None


def _grown_column_values(gradients: list[float], update_interval: int) -> tuple[list[float], object]:
    """A one-row table of 4 columns under DSL and Adam, columns 0 and 1 active at 1.0 and 0.01, the loss's
    gradient ``gradients[t]`` on column 2 alone: column 1 is pruned and column 2 grown at the first
    update. Returns column 2's value after each step, and the table's DSL target."""
    from dslgraph.sparse import DynamicSparseLearning

    model = torch.nn.Sequential(torch.nn.Embedding(1, 4))
    dsl = DynamicSparseLearning(
        model, 0.5, total_steps=len(gradients), update_interval=update_interval, schedule="constant"
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    dsl.attach(optimizer)
    table = model[0]
    with torch.no_grad():
        table.positions.copy_(torch.tensor([0, 1]))
        table.values.copy_(torch.tensor([1.0, 0.01]))  # no gradient: they never move
    table.positions_changed()
    column = []
    for gradient in gradients:
        optimizer.zero_grad()
        row = table(torch.zeros(1, dtype=torch.long)).squeeze(0)
        (row * torch.tensor([0.0, 0.0, gradient, 0.0])).sum().backward()
        optimizer.step()
        dsl.step()
        column.append(float(dict(zip(table.positions.tolist(), table.values.tolist())).get(2, 0.0)))
    assert table.positions.tolist() == [0, 2]
    return column, dsl.targets[0]


def _use_grown_steps(monkeypatch, boost=None, grace=False) -> None:
    from dslgraph.sparse import DynamicSparseLearning
    from dslgraph.sparse import dsl as engine

    # registered first, so that the variant's patches are undone after the test
    for cls, name in ((DynamicSparseLearning, "attach"), (engine._TableTarget, "replace")):
        monkeypatch.setattr(cls, name, getattr(cls, name))
    monkeypatch.setattr(engine._TableTarget, "active_magnitudes", engine._TableTarget.active_magnitudes)
    load("dsl_variants").use_grown_steps(boost, grace)


def test_dsl_variant_fresh_adam_steps_a_grown_entry_as_a_new_adam_parameter(monkeypatch):
    """Column 2 is grown at iteration 1000; its next steps equal those of a new one-element Adam fed the
    same gradients. The engine's (one step count per tensor) are several times larger, which is what the
    variant takes out; the entry that stayed is untouched."""
    after = [1.0, -0.5, 2.0, 1.5, 0.7]  # gradients of column 2 after the update
    reference = torch.zeros(1, requires_grad=True)
    adam = torch.optim.Adam([reference], lr=0.01)
    for gradient in after:
        reference.grad = torch.tensor([gradient])
        adam.step()
    engine, _ = _grown_column_values([1.0] * 1000 + after, 1000)
    assert abs(engine[-1]) > 2 * abs(reference.item())
    _use_grown_steps(monkeypatch)
    fresh, target = _grown_column_values([1.0] * 1000 + after, 1000)
    assert fresh[-1] == pytest.approx(reference.item(), rel=1e-5)
    assert target.table.values[0].item() == 1.0


def test_dsl_variant_grown_boost_multiplies_a_grown_entrys_steps_until_the_next_update(monkeypatch):
    """Grown at iteration 10, column 2 steps B = 3 times the engine's steps for the 10 iterations to the
    next update, where it is pruned and grown straight back (it stays, no new restart), then as the
    engine's."""
    gradients = [1.0, -0.5, 2.0, 1.5, 0.7] * 5
    engine, _ = _grown_column_values(gradients, 10)
    _use_grown_steps(monkeypatch, boost=3.0)
    boosted, target = _grown_column_values(gradients, 10)
    steps = [[b - a for a, b in zip(values[9:], values[10:])] for values in (engine, boosted)]
    assert boosted[:10] == engine[:10] == [0.0] * 10
    assert steps[1][:10] == pytest.approx([3 * step for step in steps[0][:10]], rel=1e-5)
    assert steps[1][10:] == pytest.approx(steps[0][10:], rel=1e-5)
    assert target.table.values[0].item() == 1.0


def test_dsl_variant_grown_boost_refuses_a_multiplier_that_is_no_positive_number_and_keep(monkeypatch):
    from dslgraph.sparse import DynamicSparseLearning

    for bad in ("x", "0", "-1", "inf"):
        with pytest.raises(SystemExit, match="grown-boost=B needs"):
            load("dsl_variants").use_grown_boost(bad)
    _use_grown_steps(monkeypatch, boost=2.0)
    model = torch.nn.Sequential(torch.nn.Embedding(3, 4))
    dsl = DynamicSparseLearning(model, 0.5, total_steps=10, optimizer_state="keep")
    with pytest.raises(SystemExit, match="need --optimizer-state reset and Adam"):
        dsl.attach(torch.optim.Adam(model.parameters()))


def test_dsl_variant_grown_grace_ranks_the_last_updates_entries_above_every_other_until_the_next(monkeypatch):
    """Column 2, grown at iteration 10, is ranked as the largest entry up to the update at iteration 20
    (however small it is), and by its magnitude after it; the entry that was there all along always so."""
    _use_grown_steps(monkeypatch, boost=1.0, grace=True)
    huge = torch.finfo(torch.float32).max
    for iterations, protected in ((15, True), (25, False)):
        column, target = _grown_column_values([1.0, -0.5, 2.0, 1.5, 0.7] * (iterations // 5), 10)
        expected = [1.0, huge if protected else abs(column[-1])]
        assert target.active_magnitudes().tolist() == pytest.approx(expected)


def test_dsl_variant_probe_batches_trains_the_probing_step_on_k_batches(small_data, tmp_path, monkeypatch):
    """With K = 3, the iterations just before an update (3 and 6 of 8) train on three batches at once,
    the others on one, and an epoch still has its 4 iterations."""
    from dslgraph.nn import LightGCN
    from dslgraph.sparse import DynamicSparseLearning
    from dslgraph.train import TrainConfig, Trainer

    monkeypatch.setattr(Trainer, "train_epoch", Trainer.train_epoch)  # the variant's patch, undone after
    load("dsl_variants").use_probe_batches("3")
    torch.manual_seed(0)
    model = LightGCN(30, 40, embedding_dim=8)
    sizes = []
    loss = model.loss
    monkeypatch.setattr(
        model,
        "loss",
        lambda graph, users, *rest, **options: (
            sizes.append(users.numel()) or loss(graph, users, *rest, **options)
        ),
    )
    dsl = DynamicSparseLearning(model, 0.8, total_steps=8, update_interval=3)
    config = TrainConfig(epochs=2, batch_size=60, lr=0.01, eval_every=2, progress=False)
    trainer = Trainer(model, small_data, config, output_dir=tmp_path, device="cpu", hooks=[dsl])
    assert len(trainer.batches) == 4
    trainer.fit()
    assert sizes == [60, 60, 180, 58, 60, 180, 60, 58]  # 238 pairs: batches of 60, 60, 60, 58
    assert dsl.iteration == 8 and [u["iteration"] for u in dsl.updates] == [3, 6]
    assert trainer.scheduler is None or trainer.scheduler.last_epoch == 8
    for bad in ("0", "x"):
        with pytest.raises(SystemExit, match="probe-batches=K needs"):
            load("dsl_variants").use_probe_batches(bad)


def test_bench_sparse_linear_records_the_median_of_an_even_number_of_timings(tmp_path, monkeypatch):
    """Of two timings, 1 s and 3 s, the median is 2 s (the mean of the middle two), not the upper one."""
    bench = load("bench_sparse_linear")
    clock = itertools.cycle([0.0, 1.0, 0.0, 3.0])  # (start, end) of each timed step
    monkeypatch.setattr(bench, "time", SimpleNamespace(perf_counter=lambda: next(clock)))
    out = tmp_path / "linear.csv"
    args = ["--items", "20", "--hidden", "4", "--batches", "2", "--sparsities", "0.5", "--repeats", "2"]
    monkeypatch.setattr(sys, "argv", ["bench_sparse_linear.py", *args, "--output", str(out)])
    bench.main()
    with out.open() as f:
        rows = list(csv.DictReader(f))
    assert [row["backend"] for row in rows] == ["dense", "masked", "sparse"]
    assert {float(row["median_seconds_per_step"]) for row in rows} == {2.0}


@pytest.mark.parametrize(
    "model, size", [("neumf", "--embedding-dim=8"), ("cdae", "--option=hidden_channels=8")]
)
def test_cost_table_recount_reproduces_a_runs_macs(model, size, tmp_path, caplog):
    """``--recount`` rebuilds a run of this version to exactly the MACs it recorded and leaves its
    metrics.json as it is; a record of an older count gets the current one, one of another model keeps its
    own."""
    from dslgraph.cli import main as dslgraph

    cost_table = load("cost_table")
    root, runs = tmp_path / "data", tmp_path / "results"
    args = ["train", "--model", model, size, "--epochs", "1", "--sparsity", "0.5", "--root", str(root)]
    assert dslgraph([*args, "--no-progress", "--device", "cpu", "--output", str(runs / "now")]) == 0
    recorded = (runs / "now" / "metrics.json").read_text()
    summary = json.loads(recorded)
    summary["settings"]["root"] = "/elsewhere/data"  # as written on another machine
    older = summary | {
        "macs": summary["macs"] | {"train_iteration": summary["macs"]["train_iteration"] + 7},
        "training_savings": summary["training_savings"] - 0.25,  # derived from the older count
    }
    other = summary | {"active_entries": {}}
    for name, record in (("older", older), ("other", other)):
        (runs / name).mkdir()
        (runs / name / "metrics.json").write_text(json.dumps(record))

    def table(*flags: str) -> dict[str, dict]:
        cost_table.main([str(runs), "--out", str(tmp_path / "cost"), *flags])
        with (tmp_path / "cost.csv").open() as f:
            return {row["run"]: row for row in csv.DictReader(f)}

    rebuilt = cost_table.recount(summary["settings"], str(root))
    assert rebuilt == {key: summary[key] for key in rebuilt}  # MACs, savings and active entries, exactly
    as_recorded = table()
    caplog.set_level(logging.INFO, logger="cost_table")
    recounted = table("--recount", "--root", str(root))
    assert recounted["now"] == as_recorded["now"]
    assert (runs / "now" / "metrics.json").read_text() == recorded
    assert recounted["older"] == as_recorded["now"] | {"run": "older"}
    assert int(as_recorded["older"]["train_macs_executed"]) == int(summary["macs"]["train_iteration"]) + 7
    assert (
        f"older: recounted MACs differ from metrics.json: train {int(summary['macs']['train_iteration']) + 7}"
        in caplog.text
    )
    assert recounted["other"] == as_recorded["other"]
    assert "other: the rebuilt model is not the recorded one (active entries {} vs {" in caplog.text
    assert "now:" not in caplog.text


def test_degree_analysis_counts_every_active_entry_once(tmp_path):
    """A LightGCN table holds users then items: the two sides' counts add up to the table's active entries,
    and their degree bands to its rows."""
    from dslgraph.cli import main as dslgraph

    degree_analysis = load("degree_analysis")
    args = ["train", "--epochs", "1", "--embedding-dim", "8", "--sparsity", "0.8", "--update-interval", "5"]
    args += ["--root", str(tmp_path / "data"), "--no-progress", "--device", "cpu"]
    args += ["--output", str(tmp_path / "run")]
    assert dslgraph(args) == 0
    out = tmp_path / "degree.json"
    degree_analysis.main([str(tmp_path / "run" / "best.pt"), "--output", str(out)])
    result = json.loads(out.read_text())
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    sides = result["tables"]["embedding"]
    assert (
        sides["user"]["active_entries"] + sides["item"]["active_entries"]
        == metrics["active_entries"]["embedding"]
    )
    for side in sides.values():
        assert sum(band["rows"] for band in side["by_degree"]) == side["rows"]
        assert -1 <= side["spearman"] <= 1


def test_set_takes_json_or_text_and_a_bad_setting_fails_before_any_run(tmp_path):
    common = load("common")
    assert common.name_value("lr=0.01") == ("lr", 0.01)
    assert common.name_value("mask_init=degree") == ("mask_init", "degree")  # a JSON string needed quotes
    assert common.name_value('targets=["tables"]') == ("targets", ["tables"])
    script = BENCHMARKS / "sweep_sparsity.py"
    for given, error in [
        ("lr", "expected NAME=VALUE, got 'lr'"),
        ("sparsty=0.5", "unknown setting(s) ['sparsty'] (did you mean 'sparsity'?)"),  # a traceback before
    ]:
        done = subprocess.run(
            [sys.executable, script, "--sparsities", "0", "--set", given, "--out", tmp_path],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 2 and error in done.stderr.splitlines()[-1], done.stderr
    assert not (tmp_path / "runs").exists()


def test_result_tables_and_plots_are_written_whole_or_not_at_all(tmp_path):
    common = load("common")
    table = tmp_path / "sweep.csv"
    common.write_csv([{"run": "dense", "recall@20": 0.18}], table)
    before = table.read_text()
    with pytest.raises(ValueError, match="fields not in fieldnames"):  # fails after the header is written
        common.write_csv([{"run": "dsl"}, {"run": "x", "typo": 1}], table, ["run"])
    assert table.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["sweep.csv"]  # no partial file left beside it

    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    common.save_figure(fig, tmp_path / "plot.png")  # the format comes from the name, not the temporary's
    plt.close(fig)
    assert (tmp_path / "plot.png").read_bytes().startswith(b"\x89PNG")


def test_scale_check_generates_distinct_pairs_with_heavy_tailed_degrees():
    scale_check = load("scale_check")
    user, item = scale_check.synthetic_interactions(500, 800, 20_000, min_degree=5, seed=0)
    assert user.size == item.size == 20_000
    assert np.unique(user * 800 + item).size == 20_000  # distinct pairs
    user_degree, item_degree = np.bincount(user, minlength=500), np.bincount(item, minlength=800)
    assert user_degree.min() >= 1 and item_degree.min() >= 1  # every user and item kept
    for degree in (user_degree, item_degree):  # skewed: the busiest far above the mean
        assert degree.max() > 3 * degree.mean() and np.median(degree) < degree.mean()
    degrees = scale_check.power_law_degrees(1000, 50_000, 10, 1.5, 400, np.random.default_rng(0))
    assert degrees.sum() == 50_000 and degrees.min() >= 10 and degrees.max() <= 400


@pytest.mark.slow
def test_scale_check_times_and_measures_every_stage(tmp_path):
    args = ["--users", "300", "--items", "400", "--interactions", "12000", "--batch-size", "256"]
    args += ["--batches", "2", "--backends", "sparse"]
    rows = run_script("scale_check", *args, "--output", str(tmp_path / "s.csv"))
    stages = [(row["backend"], row["stage"]) for row in rows]
    setup = ["generate", "from_pandas", "amazon_book_files", "propagation_graph", "sampler"]
    assert [stage for backend, stage in stages if backend == "-"] == [*setup, "sampler_epoch_draw"]
    sparse = [stage for backend, stage in stages if backend == "sparse"]
    assert sparse == [
        "build", "epoch_draw", "first_batch", "train", "epoch_extrapolated", "update", "probed_iteration",
        "after_update", "evaluate",
    ]  # fmt: skip
    measured = [row for row in rows if row["stage"] != "epoch_extrapolated"]
    assert all(float(row["peak_mb_above_start"]) >= 0 and float(row["rss_mb_start"]) > 0 for row in measured)
    evaluate = next(row for row in rows if row["stage"] == "evaluate")
    assert evaluate["detail"].split(" users")[0].isdigit() and "workspace" in evaluate["detail"]


def test_scale_check_appends_its_rows_whole_or_not_at_all(tmp_path, monkeypatch):
    # --append rewrites the earlier rows with the new ones: a run killed mid-write (a device command's time
    # limit) truncated docs/benchmarks/amazon_scale_cpu.csv and lost the earlier rows with it
    scale_check = load("scale_check")
    path = tmp_path / "scale.csv"
    scale_check.write_rows([{"backend": "dense", "stage": "build", "seconds": 1.5}], path, append=False)
    before = path.read_text()

    def killed(self, rows):
        raise KeyboardInterrupt

    monkeypatch.setattr(csv.DictWriter, "writerows", killed)
    with pytest.raises(KeyboardInterrupt):
        scale_check.write_rows([{"backend": "sparse", "stage": "build", "detail": "x"}], path, append=True)
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["scale.csv"]  # no partial file left beside it
    monkeypatch.undo()
    scale_check.write_rows([{"backend": "sparse", "stage": "build", "detail": "x"}], path, append=True)
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(row["backend"], row["seconds"], row["detail"]) for row in rows] == [
        ("dense", "1.5", ""),
        ("sparse", "", "x"),
    ]


def test_scale_check_writes_the_lightgcn_files_of_each_split(small_data, tmp_path):
    scale_check = load("scale_check")
    from dslgraph.data import EDGE

    scale_check.write_lightgcn_files(small_data, tmp_path / "raw")
    for name, key in (("train.txt", "edge_index"), ("test.txt", "edge_label_index")):
        lines = [
            [int(word) for word in line.split()]
            for line in (tmp_path / "raw" / name).read_text().splitlines()
        ]
        users = [line[0] for line in lines]
        assert users == sorted(set(users))  # one line per user, as AmazonBook reads them
        pairs = {(line[0], item) for line in lines for item in line[1:]}
        assert pairs == set(map(tuple, small_data[EDGE][key].t().tolist()))


def test_scale_check_stage_peak_counts_memory_freed_before_an_inner_stage():
    scale_check = load("scale_check")
    stages = scale_check.Stages({"device": "cpu"})
    with stages.stage("sparse", "outer"):
        # 64 MB mapped on its own, made resident and unmapped: np.ones' 64 MB came from memory an earlier test
        # freed and glibc's heap kept resident (this process has not scale_check's MALLOC_ENV), and the
        # resident size did not rise
        block = mmap.mmap(-1, 64 * 2**20)
        np.frombuffer(block, np.uint8).fill(1)
        block.close()
        with stages.stage("sparse", "inner", "inside"):  # resets the peak: the outer one's was carried
            pass
    inner, outer = stages.rows
    assert (inner["stage"], inner["note"], outer["stage"]) == ("inner", "inside", "outer")
    assert outer["peak_mb_above_start"] >= 60 > inner["peak_mb_above_start"] >= 0  # above the start


@pytest.mark.parametrize("backend", ["dense", "sparse"])
def test_scale_check_times_each_backend_stage_and_extrapolates_the_epoch(small_data, monkeypatch, backend):
    scale_check = load("scale_check")
    clock = itertools.accumulate(itertools.count())  # 0, 1, 3, 6, ...: each stage's seconds its own
    monkeypatch.setattr(scale_check, "time", SimpleNamespace(perf_counter=lambda: float(next(clock))))
    collected = []  # a second a stage, of real collections
    monkeypatch.setattr(
        scale_check, "gc", SimpleNamespace(collect=lambda: collected.append(len(stages.rows)))
    )
    args = SimpleNamespace(batches=2, batch_size=16, eval_batch_size=8, sparsity=0.8, threads=0)
    settings = scale_check.backend_settings(args, backend)
    expected = {"sparsity": 0.0 if backend == "dense" else 0.8, "update_interval": 4}
    expected |= {"batch_size": 16, "eval_batch_size": 8, "backend": "sparse", "epochs": 1, "device": "cpu"}
    assert {key: settings[key] for key in expected} == expected
    stages = scale_check.Stages({"device": "cpu"})
    scale_check.backend_stages(stages, args, small_data, backend)
    seconds = {row["stage"]: row["seconds"] for row in stages.rows}
    notes = {row["stage"]: row["note"] for row in stages.rows}
    update = ["update", "probed_iteration", "after_update"] if backend == "sparse" else []
    assert list(seconds) == [
        "build",
        "epoch_draw",
        "first_batch",
        "train",
        "epoch_extrapolated",
        *update,
        "evaluate",
    ]
    # 240 training pairs, 16 a batch: the draw plus the 2 timed batches' mean times the epoch's 15
    assert notes["train"] == "2 of 15 batches"
    assert (seconds["epoch_draw"], seconds["train"], seconds["epoch_extrapolated"]) == (3, 7, 3 + 7 / 2 * 15)
    if update:  # the one update ran inside the probed iteration, none in the timed batches
        assert (seconds["update"], seconds["probed_iteration"]) == (10, 30)
    # a collection before each outermost stage (the rows done by then): none before the update, inside the
    # probed iteration, whose seconds it would add to
    assert collected == ([0, 1, 2, 3, 5, 7, 8] if update else [0, 1, 2, 3, 5])
    # too few batches for the first, the timed ones, the probed iteration and the one after it
    with pytest.raises(ValueError, match=r"an epoch has 15 batches, fewer than --batches \+ 3"):
        scale_check.backend_stages(
            stages, SimpleNamespace(**vars(args) | {"batches": 13}), small_data, backend
        )


def test_scale_check_setup_measures_each_stage_on_the_split_it_describes(tmp_path, monkeypatch):
    scale_check = load("scale_check")
    import dslgraph.data.sampling as sampling

    monkeypatch.setattr(scale_check, "gc", SimpleNamespace(collect=lambda: None))  # a second a stage
    stages = scale_check.Stages({"device": "cpu"})
    built = []  # per negative sampler: the rows finished when it was built, its training pairs
    sampler = sampling.NegativeSampler
    monkeypatch.setattr(
        sampling, "NegativeSampler", lambda *a: built.append((len(stages.rows), a[0].size(1))) or sampler(*a)
    )
    args = SimpleNamespace(users=300, items=400, interactions=12_000, min_degree=5, seed=0, batch_size=256)
    names = [
        "generate",
        "from_pandas",
        "amazon_book_files",
        "propagation_graph",
        "sampler",
        "sampler_epoch_draw",
    ]
    for interactions in (12_000, 11_000):  # the second in the first one's root: its own files processed
        stages.rows.clear()
        built.clear()
        args.interactions = interactions
        scale_check.setup_stages(stages, args, tmp_path)
        assert [row["stage"] for row in stages.rows] == names
        assert stages.rows[1]["detail"].startswith("300 users, 400 items, ")
        train, test = (int(part.split()[0]) for part in stages.rows[1]["detail"].split(", ")[2:])
        assert train + test == interactions and 0.18 < test / interactions < 0.22  # 20% of each user's
        assert built == [(4, train)]  # in its own stage, not in the epoch's draw


def test_scale_check_runs_the_setup_and_each_backend_in_processes_of_their_own(tmp_path, monkeypatch):
    scale_check = load("scale_check")
    runs = []
    monkeypatch.setattr(
        scale_check.subprocess, "run", lambda command, check, env: runs.append((command, env))
    )
    output = str(tmp_path / "scale.csv")
    argv = ["--backends", "dense", "sparse", "--output", output]
    monkeypatch.setattr(sys, "argv", ["scale_check.py", *argv])
    scale_check.main()
    root = runs[0][0][runs[0][0].index("--root") + 1]
    prefix = [sys.executable, scale_check.__file__, *argv, "--worker", "--root", root, "--backends"]
    # the setup writes the table; each backend reuses its files and adds its rows
    assert [command for command, env in runs] == [
        prefix,
        [*prefix, "dense", "--skip-setup", "--append"],
        [*prefix, "sparse", "--skip-setup", "--append"],
    ]
    # freed memory goes back to the system at once, so that each stage's resident peak is its own
    assert all(env["MALLOC_MMAP_THRESHOLD_"] == str(2**20) for command, env in runs)
    runs.clear()
    argv = ["--backends", "masked", "--skip-setup", "--root", str(tmp_path), "--output", output]
    monkeypatch.setattr(sys, "argv", ["scale_check.py", *argv])
    scale_check.main()
    worker = ["--worker", "--root", str(tmp_path), "--backends", "masked", "--skip-setup"]
    assert [command for command, env in runs] == [[sys.executable, scale_check.__file__, *argv, *worker]]


@pytest.mark.slow
def test_read_csv_times_a_generated_file_and_appends(tmp_path):
    out = tmp_path / "read.csv"
    load("common").write_rows([{"label": "before", "ids": "integer", "run": 0}], out, append=False)
    small = ["--lines", "3000", "--users", "40", "--items", "70", "--output", str(out)]
    rows = run_script("read_csv", *small, "--runs", "1", "--ids", "text", "--label", "after", "--append")
    assert [(row["label"], row["ids"], row["run"]) for row in rows] == [
        ("before", "integer", "0"),
        ("after", "text", "0"),
    ]
    # every one of the 40 users and 70 items is in the 3,000 uniform draws, as the call read them
    assert (rows[1]["users"], rows[1]["items"]) == ("40", "70")
    assert float(rows[1]["cpu_seconds"]) > 0 and int(rows[1]["peak_mb_above_imports"]) >= 0
    assert Path(rows[1]["dslgraph"]) == Path(__file__).parents[1]  # the dslgraph it timed
    assert (rows[1]["device"], rows[1]["threads"]) == ("cpu", "1") and rows[1]["hardware"]  # where it timed


def test_timed_runs_starts_without_loading_torch():
    # its budget's deadline is set once it has started: seconds of torch / PyG imports would go uncounted;
    # of dslgraph it takes the rename that Windows may refuse for moments, which imports nothing else
    heavy = "{'torch', 'torch_geometric', 'pandas'}"
    loaded = f"sorted({heavy} & set(sys.modules)), sorted(m for m in sys.modules if m.startswith('dslgraph'))"
    code = f"import sys, timed_runs; print({loaded})"
    done = subprocess.run([sys.executable, "-c", code], cwd=BENCHMARKS, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[] ['dslgraph', 'dslgraph.files']"


@pytest.mark.parametrize(
    "system, flags, split",
    [
        # Windows: a backslash is a path's separator (POSIX splitting gave C:Usersmedata)
        (
            "nt",
            r"--dataset gowalla --root C:\Users\me\data",
            ["--dataset", "gowalla", "--root", r"C:\Users\me\data"],
        ),
        ("nt", r'--root "C:\My data\" --lr 0.01', ["--root", "C:\\My data\\", "--lr", "0.01"]),
        ("nt", r"--root \\server\share", ["--root", r"\\server\share"]),
        (
            "nt",
            """--data-option 'names=["u","i"]' --x #1""",
            ["--data-option", 'names=["u","i"]', "--x", "#1"],
        ),
        # elsewhere a shell's rules, as before: a backslash escapes
        ("posix", r"--root my\ data --set 'a=b c'", ["--root", "my data", "--set", "a=b c"]),
    ],
)
def test_timed_runs_splits_flags_as_the_platform_s_shell(monkeypatch, system, flags, split):
    timed_runs = load("timed_runs")
    monkeypatch.setattr(timed_runs, "os", SimpleNamespace(name=system))  # its os only: pathlib reads os.name
    assert timed_runs.split_flags(flags) == split


def test_timed_runs_splits_each_run_s_flags_as_the_platform_s_shell(tmp_path, monkeypatch, capsys):
    # main split them as a POSIX shell anywhere: on Windows --root C:\Users\me\data became C:Usersmedata
    timed_runs = load("timed_runs")
    made, Run = [], timed_runs.Run
    monkeypatch.setattr(timed_runs, "os", SimpleNamespace(name="nt", sep="\\"))
    monkeypatch.setattr(timed_runs, "Run", lambda *fields: made.append(Run(*fields)) or made[-1])
    argv = ["timed_runs.py", "--budget", "60", "--out", str(tmp_path)]
    argv += ["--run", "a", "g", r"--root C:\Users\me\data", "--run", "A", "g", ""]
    refusal(timed_runs.main, monkeypatch, capsys, argv)  # names that differ in case only, once split
    assert made[0].flags == ["--root", r"C:\Users\me\data"]


@pytest.mark.parametrize("name", ["probe", "Probe", "a/b", ".."])
def test_timed_runs_refuses_a_name_that_is_no_folder_of_its_own(tmp_path, monkeypatch, capsys, name):
    # a run named probe trained into OUT/probe, among the probe runs' folders; a/b into a folder of OUT/a
    timed_runs = load("timed_runs")
    monkeypatch.setattr(timed_runs.Run, "start", None)  # nothing runs
    argv = ["timed_runs.py", "--budget", "60", "--out", str(tmp_path), "--run", name, "g", "--dataset lastfm"]
    assert f"--run NAME {name!r} cannot be a run's folder name" in refusal(
        timed_runs.main, monkeypatch, capsys, argv
    )


def test_timed_runs_refuses_names_that_differ_in_case_only(tmp_path, monkeypatch, capsys):
    # macOS and Windows name folders case-blind: runs A and a trained into one folder and wrote one log
    timed_runs = load("timed_runs")
    monkeypatch.setattr(timed_runs.Run, "start", None)  # nothing runs
    argv = ["timed_runs.py", "--budget", "60", "--out", str(tmp_path)]
    argv += ["--run", "A", "g", "--dataset lastfm", "--run", "a", "g", "--dataset lastfm"]
    refused = refusal(timed_runs.main, monkeypatch, capsys, argv)
    assert "--run NAMEs must differ (in more than case)" in refused


@pytest.mark.parametrize("folder", ["probe/a", "a"])
def test_timed_runs_refuses_an_out_holding_a_runs_earlier_output(tmp_path, monkeypatch, capsys, folder):
    # dslgraph train refuses it: said once here, not in each run's log after the probes
    timed_runs = load("timed_runs")
    monkeypatch.setattr(timed_runs.Run, "start", None)  # nothing runs
    (tmp_path / folder).mkdir(parents=True)
    argv = ["timed_runs.py", "--budget", "60", "--out", str(tmp_path), "--run", "a", "g", "--dataset lastfm"]
    said = refusal(timed_runs.main, monkeypatch, capsys, argv)
    assert f"{tmp_path / folder} hold earlier runs; pass another --out" in said


@pytest.mark.parametrize(
    "option, value", [("--max-epochs", "0"), ("--probe-epochs", "1"), ("--margin", "1"), ("--budget", "0")]
)
def test_timed_runs_refuses_a_plan_that_can_start_no_run(tmp_path, monkeypatch, capsys, option, value):
    # --max-epochs 0: the probes ran, then no run started, the log saying that no epoch fit the budget
    timed_runs = load("timed_runs")
    monkeypatch.setattr(timed_runs.Run, "start", None)  # nothing runs
    argv = ["timed_runs.py", "--budget", "60", "--out", str(tmp_path), "--run", "a", "g", "", option, value]
    said = refusal(timed_runs.main, monkeypatch, capsys, argv)
    assert "need --budget > 0, 0 <= --margin < 1, --probe-epochs >= 2 and --max-epochs >= 1" in said


@pytest.mark.parametrize(
    "flags, said",
    [
        ("--dataset lastfm --epochs=5", "--epochs is set by this script"),
        ("--dataset lastfm --eval-every 2", "--eval-every is set by this script"),
        ("--dataset lastfm --output runs/a", "--output is set by this script"),
        ("--dataset lastfm --max-seconds 60", "--max-seconds is set by this script"),
        (
            "--dataset lastfm --stop-after-epoch 3",
            "--stop-after-epoch would stop the probes and the runs short",
        ),
    ],
)
def test_timed_runs_refuses_flags_that_fight_its_plan(tmp_path, monkeypatch, capsys, flags, said):
    # --stop-after-epoch past --probe-epochs failed every probe (said in their logs); below it, runs stopped
    timed_runs = load("timed_runs")
    monkeypatch.setattr(timed_runs.Run, "start", None)  # nothing runs
    argv = ["timed_runs.py", "--budget", "60", "--out", str(tmp_path), "--run", "a", "g", flags]
    assert said in refusal(timed_runs.main, monkeypatch, capsys, argv)


@pytest.mark.parametrize(
    "argv", [["--sparsity", "0"], ["--set", "growth=random"], ["--set", "static_mask=true"]]
)
def test_zero_gradient_growth_refuses_a_run_without_growth_scores(monkeypatch, capsys, argv):
    # the run trained (minutes on ML-1M), then printed nothing at all
    script = load("zero_gradient_growth")
    dsl = script.DynamicSparseLearning
    monkeypatch.setattr(dsl, "_grow", dsl._grow)  # main wraps it to count: restored after the test
    monkeypatch.setattr(script, "run_training", None)
    said = refusal(script.main, monkeypatch, capsys, ["zero_gradient_growth.py", *argv])
    assert (
        "counts growth scores: needs --sparsity above 0, no static_mask and growth other than random" in said
    )


def test_zero_gradient_growth_says_when_no_update_ran(monkeypatch, capsys):
    script = load("zero_gradient_growth")
    dsl = script.DynamicSparseLearning
    monkeypatch.setattr(dsl, "_grow", dsl._grow)  # main wraps it to count: restored after the test
    monkeypatch.setattr(script, "run_training", lambda settings, output, progress: None)  # no update
    monkeypatch.setattr(sys, "argv", ["zero_gradient_growth.py", "--update-interval", "1000"])
    script.main()
    assert (
        capsys.readouterr().out
        == "ultragcn: no prune-and-grow update in 1 epoch(s) at update_interval 1000\n"
    )


def test_zero_gradient_growth_counts_the_grown_entries_whose_score_is_zero(monkeypatch, capsys):
    script = load("zero_gradient_growth")
    dsl = script.DynamicSparseLearning
    picks = {
        "user": (torch.tensor([3, 5, 8, 9]), torch.tensor([0.0, 0.5, 0.0, 2.0])),
        "item": (torch.tensor([1, 2]), torch.tensor([0.25, 1.0])),
        "random": (torch.tensor([4, 6, 7]), None),  # random growth: no scores, not counted
    }
    monkeypatch.setattr(dsl, "_grow", lambda self, target, kept, n: picks[target.name])  # main wraps it
    given = []

    def run_training(settings, output, progress):
        given.append(settings)
        for name in ("user", "item", "random", "user"):  # two updates of the user table
            dsl._grow(None, SimpleNamespace(name=name), None, 0)

    monkeypatch.setattr(script, "run_training", run_training)
    monkeypatch.setattr(
        sys, "argv", ["zero_gradient_growth.py", "--model", "cdae", "--set", "mask_init=aligned"]
    )
    script.main()
    assert capsys.readouterr().out == (
        "cdae user: 8 grown, 4 with zero gradient (50%)\ncdae item: 2 grown, 0 with zero gradient (0%)\n"
    )
    # dslgraph train's settings at the script's defaults, the dataset's test split evaluated once, at the end
    (settings,) = given
    expected = {"model": "cdae", "dataset": "lastfm", "epochs": 1, "eval_every": 1, "sparsity": 0.8}
    expected |= {"update_interval": 10, "threads": 1, "device": "cpu", "mask_init": "aligned"}
    assert {key: settings[key] for key in expected} == expected
    monkeypatch.setattr(
        sys, "argv", ["zero_gradient_growth.py", "--set", "update_interval=5", "sparsity=0.5"]
    )
    script.main()  # --set's value wins over the option's
    assert (given[1]["update_interval"], given[1]["sparsity"]) == (5, 0.5)


def test_degree_analysis_writes_valid_json_where_no_row_is_in_a_band():
    # no row of degree <= --low (every user has trained on something): NaN, which JSON readers refuse
    summary = load("degree_analysis").summarise(
        torch.tensor([3, 1, 2]), torch.tensor([4, 8, 30]), low=2, high=20
    )
    assert (summary["mean_entries_degree_le_2"], summary["rows_degree_le_2"]) == (None, 0)
    assert summary["mean_entries_degree_ge_20"] == 2.0
    json.dumps(summary, allow_nan=False)
    equal = load("degree_analysis").summarise(
        torch.tensor([2, 2, 2]), torch.tensor([4, 8, 30]), low=5, high=20
    )
    assert equal["spearman"] is None  # every row as many entries: no rank correlation
    json.dumps(equal, allow_nan=False)


@pytest.fixture
def recorded_run(tmp_path, capsys):
    """A two-epoch run of a small generated data file, recorded by ``dslgraph train`` in ``tmp/recorded``."""
    from dslgraph.cli import main as dslgraph

    rng = np.random.default_rng(0)
    lines = [f"{u},{i}" for u, i in zip(rng.integers(0, 30, 400), rng.integers(0, 60, 400))]
    (tmp_path / "mine.csv").write_text("user,item\n" + "\n".join(lines) + "\n")
    flags = ["--data-file", str(tmp_path / "mine.csv"), "--data-option", "user_col=user", "--data-option"]
    flags += ["item_col=item", "--epochs", "2", "--eval-every", "1", "--embedding-dim", "8", "--sparsity"]
    flags += ["0.5", "--update-interval", "1", "--lr-schedule", "cosine", "--device", "cpu", "--threads", "1"]
    run = tmp_path / "recorded"
    assert dslgraph(["train", *flags, "--output", str(run), "--no-progress"]) == 0
    capsys.readouterr()
    return run


def test_rerun_reproduces_a_run_it_recorded_and_reports_a_tampered_number(recorded_run, tmp_path):
    rerun = load("rerun")
    out = tmp_path / "out"
    assert rerun.main([str(recorded_run), "--out", str(out)]) == 0
    with open(out / "rerun.csv") as f:
        rows = list(csv.DictReader(f))
    quantities = {(row["epoch"], row["quantity"]) for row in rows}
    assert {
        ("1", "loss"),
        ("2", "test recall@20"),
        ("-", "best_epoch"),
        ("-", "macs inference"),
    } <= quantities
    assert all(row["ok"] == "True" for row in rows)
    assert (out / "rerun.md").read_text().startswith("### recorded: reproduced")

    path = recorded_run / "metrics.json"
    summary = json.loads(path.read_text())
    summary["history"][1]["test"]["ndcg@20"] *= 1 + 1e-12  # a last-digit change is a difference
    summary["history"][0]["loss"] *= 1 + 1e-12
    summary["parameter_bytes"] += 4
    path.write_text(json.dumps(summary))
    assert rerun.main([str(recorded_run), "--out", str(out)]) == 1
    table = (out / "rerun.md").read_text()
    assert table.startswith("### recorded: 3 of ")
    assert "| 2 | test ndcg@20 |" in table and "| 1 | loss |" in table and "| - | parameter_bytes |" in table
    assert table.count("**differs**") == 3
    # within a tolerance the metric and the loss pass; a cost number must still be equal
    for tolerance, differing in ((["--loss-tolerance", "1e-9"], 2), (["--tolerance", "1e-9"], 1)):
        assert rerun.main([str(recorded_run), "--out", str(out), *tolerance]) == 1
        assert (out / "rerun.md").read_text().count("**differs**") == differing


def test_rerun_stopped_after_an_epoch_compares_the_evaluations_up_to_it(recorded_run, tmp_path):
    rerun = load("rerun")
    out = tmp_path / "out"
    path = recorded_run / "metrics.json"
    summary = json.loads(path.read_text())
    summary["history"][1]["test"]["ndcg@20"] *= 2  # past the stop: not compared
    path.write_text(json.dumps(summary))
    assert rerun.main([str(recorded_run), "--out", str(out), "--stop-after-epoch", "1"]) == 0
    with open(out / "rerun.csv") as f:
        quantities = {(row["epoch"], row["quantity"]) for row in csv.DictReader(f)}
    assert ("1", "test ndcg@20") in quantities and ("1", "loss") in quantities
    assert all(epoch == "1" for epoch, quantity in quantities)  # no best epoch, no cost of the final masks
    assert json.loads((out / "recorded" / "metrics.json").read_text())["epochs"] == 1
    summary["history"][0]["test"]["ndcg@20"] *= 2
    path.write_text(json.dumps(summary))
    assert rerun.main([str(recorded_run), "--out", str(out), "--stop-after-epoch", "1"]) == 1
    with pytest.raises(SystemExit, match=r"no evaluation at epoch 3 to compare with; .* epochs \[1, 2\]"):
        rerun.main([str(recorded_run), "--out", str(out), "--stop-after-epoch", "3"])


def test_rerun_shows_a_metric_added_since_the_run_as_not_recorded(recorded_run, tmp_path):
    rerun = load("rerun")
    out = tmp_path / "out"
    path = recorded_run / "metrics.json"
    summary = json.loads(path.read_text())
    for entry in summary["history"]:  # as a run recorded before dslgraph reported the metric
        del entry["test"]["capped_recall@20"]
    path.write_text(json.dumps(summary))
    assert rerun.main([str(recorded_run), "--out", str(out)]) == 0
    table = (out / "rerun.md").read_text()
    assert table.count("test capped_recall@20 | None |") == table.count("| not recorded |") == 2
    del summary["history"][0]["test"]["ndcg@20"]  # but missing from one evaluation only: a difference
    path.write_text(json.dumps(summary))
    assert rerun.main([str(recorded_run), "--out", str(out)]) == 1
    assert "| 1 | test ndcg@20 | None |" in (out / "rerun.md").read_text()


def test_rerun_compares_losses_under_their_own_tolerance_and_a_recorded_zero_exactly():
    rerun = load("rerun")

    def summary(loss: float | None, recall: float, ndcg: float) -> dict:
        return {"history": [{"epoch": 1, "loss": loss, "test": {"recall@20": recall, "ndcg@20": ndcg}}]}

    # relative differences: the loss 5e-4 apart, the recall 2e-6
    rows = rerun.compare("run", summary(1000.0, 0.5, 0.0), summary(1000.5, 0.5 + 1e-6, 0.0), 0.0, 1e-3)
    assert {row["quantity"]: row["ok"] for row in rows} == {
        "loss": True,
        "test recall@20": False,
        "test ndcg@20": True,
    }
    rows = rerun.compare("run", summary(1.0, 0.5, 0.0), summary(1.5, 0.5, 1e-9), 1e-3, 0.0)
    # a metric recorded as 0 that is not 0 now differs under any tolerance (relative: inf)
    assert {row["quantity"]: row["ok"] for row in rows} == {
        "loss": False,
        "test recall@20": True,
        "test ndcg@20": False,
    }
    # an evaluation after no training (JSON null loss) in both: no loss to compare, not a difference
    rows = rerun.compare("run", summary(None, 0.5, 0.1), summary(None, 0.5, 0.1), 0.0, 0.0)
    assert {row["quantity"]: row["ok"] for row in rows} == {"test recall@20": True, "test ndcg@20": True}


def test_rerun_compares_cost_numbers_exactly_under_any_tolerance():
    rerun = load("rerun")
    recorded = {"history": [], "best_epoch": 2, "macs": {"inference": 1000}, "parameter_bytes": 1000}
    rerun_summary = recorded | {"macs": {"inference": 1001}}
    rows = rerun.compare("run", recorded, rerun_summary, 0.5, 0.5)
    assert {row["quantity"]: row["ok"] for row in rows} == {
        "best_epoch": True,
        "macs inference": False,
        "parameter_bytes": True,
    }


def test_rerun_tables_name_a_run_with_one_differing_number(tmp_path):
    rerun = load("rerun")
    recorded = {"history": [{"epoch": 1, "loss": 1.0, "test": {"recall@20": 0.5}}]}
    same, other = recorded, {"history": [{"epoch": 1, "loss": 1.0, "test": {"recall@20": 0.6}}]}
    rows = rerun.compare("a", recorded, same, 0.0, 0.0) + rerun.compare("b", recorded, other, 0.0, 0.0)
    text = rerun.write_tables(rows, tmp_path)
    assert "### a: reproduced" in text and "### b: 1 of 2 numbers differ" in text
    assert text.count("**differs**") == 1 and (tmp_path / "rerun.md").read_text() == text
    with open(tmp_path / "rerun.csv") as f:
        assert [(row["run"], row["ok"]) for row in csv.DictReader(f)] == [("a", "True")] * 2 + [
            ("b", "True"),
            ("b", "False"),
        ]


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--tolerance", "-1"], "--tolerance must be >= 0, got -1.0"),
        (["--tolerance", "nan"], "--tolerance must be >= 0, got nan"),  # every number would differ
        (["--loss-tolerance", "nan"], "--loss-tolerance must be >= 0, got nan"),
        (["--stop-after-epoch", "0"], "--stop-after-epoch must be >= 1, got 0"),
        (["other/a"], "two RUN_DIRs share a name, and so OUT/NAME"),  # one rerun would replace the other's
    ],
)
def test_rerun_refuses_flags_it_cannot_compare_by(tmp_path, capsys, flags, message):
    with pytest.raises(SystemExit) as stopped:
        load("rerun").main([str(tmp_path / "a"), *flags, "--out", str(tmp_path / "out")])
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_rerun_reproduces_a_run_that_was_itself_stopped_after_an_epoch(recorded_run, tmp_path, capsys):
    from dslgraph.cli import main as dslgraph

    settings = json.loads((recorded_run / "metrics.json").read_text())["settings"] | {"stop_after_epoch": 1}
    (tmp_path / "stopped.json").write_text(json.dumps(settings))
    stopped = tmp_path / "stopped"
    assert dslgraph(["train", "--config", str(tmp_path / "stopped.json"), "--output", str(stopped)]) == 0
    capsys.readouterr()
    # its best epoch and costs compared as any whole run's (they were left out of the rerun's side only)
    assert load("rerun").main([str(stopped), "--out", str(tmp_path / "out")]) == 0
    with open(tmp_path / "out" / "rerun.csv") as f:
        assert ("-", "best_epoch") in {(row["epoch"], row["quantity"]) for row in csv.DictReader(f)}


def test_rerun_reproduces_a_run_stopped_and_resumed_by_max_seconds(recorded_run, tmp_path, capsys):
    # its evaluations at the stops were compared with none, and the rerun stopped after its own max_seconds
    from dslgraph.cli import main as dslgraph

    settings = json.loads((recorded_run / "metrics.json").read_text())["settings"]
    settings |= {"epochs": 4, "eval_every": 2, "max_seconds": 1e-9}  # one epoch a command
    (tmp_path / "timed.json").write_text(json.dumps(settings))
    timed = tmp_path / "timed"
    assert dslgraph(["train", "--config", str(tmp_path / "timed.json"), "--output", str(timed)]) == 0
    for _ in range(2):
        assert dslgraph(["train", "--output", str(timed), "--resume", "--no-progress"]) == 0
    history = json.loads((timed / "metrics.json").read_text())["history"]
    assert [(entry["epoch"], entry.get("scheduled", True)) for entry in history] == [
        (1, False),
        (2, True),
        (3, False),
    ]
    capsys.readouterr()
    assert load("rerun").main([str(timed), "--out", str(tmp_path / "out")]) == 0
    with open(tmp_path / "out" / "rerun.csv") as f:
        epochs = {row["epoch"] for row in csv.DictReader(f)}
    assert epochs == {"2", "3", "-"}  # to where the run stopped, and its best epoch and costs there
    assert json.loads((tmp_path / "out" / "timed" / "metrics.json").read_text())["epochs"] == 3


def test_rerun_reproduces_a_run_stopped_by_max_seconds_at_a_scheduled_evaluation(
    recorded_run, tmp_path, capsys
):
    # its last evaluation was on the eval_every schedule: the rerun trained on to the run's epochs, and its
    # evaluations after the stop were reported as differences
    from dslgraph.cli import main as dslgraph

    settings = json.loads((recorded_run / "metrics.json").read_text())["settings"] | {"max_seconds": 1e-9}
    (tmp_path / "timed.json").write_text(json.dumps(settings))
    timed = tmp_path / "timed"
    assert dslgraph(["train", "--config", str(tmp_path / "timed.json"), "--output", str(timed)]) == 0
    history = json.loads((timed / "metrics.json").read_text())["history"]
    assert [(entry["epoch"], entry.get("scheduled", True)) for entry in history] == [(1, True)]
    capsys.readouterr()
    assert load("rerun").main([str(timed), "--out", str(tmp_path / "out")]) == 0
    assert json.loads((tmp_path / "out" / "timed" / "metrics.json").read_text())["epochs"] == 1


def test_rerun_takes_relative_paths_from_where_it_is_run(recorded_run, tmp_path, monkeypatch):
    # the settings go to a file in OUT, whose relative paths the CLI reads from OUT: data was OUT/data
    monkeypatch.chdir(tmp_path)
    _, settings = load("rerun").recorded_run(recorded_run, "data", 2)
    assert settings["root"] == str(tmp_path / "data")
    assert settings["threads"] == 2  # --threads given anew, as --root
    path = recorded_run / "metrics.json"
    summary = json.loads(path.read_text())
    summary["settings"]["data_file"] = "mine.csv"  # as recorded by a run started in tmp_path
    path.write_text(json.dumps(summary))
    assert load("rerun").main([str(recorded_run), "--out", str(tmp_path / "out")]) == 0


def test_rerun_names_a_missing_or_damaged_metrics_json_and_an_unknown_setting(recorded_run, tmp_path):
    rerun = load("rerun")
    out = ["--out", str(tmp_path / "out")]
    with pytest.raises(SystemExit, match=f"{tmp_path / 'elsewhere' / 'metrics.json'}: no such file"):
        rerun.main([str(tmp_path / "elsewhere"), *out])
    path = recorded_run / "metrics.json"
    whole = path.read_text()
    path.write_text(whole[: len(whole) // 2])
    with pytest.raises(SystemExit, match=f"{path}: not the metrics.json that dslgraph train writes"):
        rerun.main([str(recorded_run), *out])
    summary = json.loads(whole)
    summary["settings"]["warp_factor"] = 9
    path.write_text(json.dumps(summary))
    with pytest.raises(
        SystemExit, match=rf"{path}: its settings cannot be run .*unknown setting\(s\) \['warp_factor'\]"
    ):
        rerun.main([str(recorded_run), *out])
    assert not (tmp_path / "out").exists()  # refused before anything was written


def _variant_update(update, rows: int, positions: list[int], values: list[float], scales: list[list[float]]):
    """One update of ``update`` on a table of ``rows`` x 4 holding ``positions`` at ``values``, after a
    backward of rows 0, 1, ... with column weights ``scales`` (rows beyond them get no gradient), reading
    the dense gradient one row at a time (results merged across chunks)."""
    from dslgraph.sparse import DynamicSparseLearning

    model = torch.nn.Sequential(torch.nn.Embedding(rows, 4))
    density = len(positions) / (rows * 4)
    dsl = DynamicSparseLearning(
        model, 1 - density, total_steps=1, update_interval=1, schedule="constant", rho0=0.5
    )
    dsl.update = update.__get__(dsl)
    dsl.chunk_rows = 1
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # values stay as set
    dsl.attach(optimizer)
    table = model[0]
    with torch.no_grad():
        table.positions.copy_(torch.tensor(positions))
        table.values.copy_(torch.tensor(values))
    table.positions_changed()
    (table(torch.arange(len(scales))) * torch.tensor(scales)).sum().backward()
    optimizer.step()
    dsl.step()
    return dsl, table


def _columns(table) -> list[list[int]]:
    d = table.embedding_dim
    return [sorted(int(p) % d for p in table.positions if p // d == r) for r in range(table.num_embeddings)]


def test_dsl_variant_row_balanced_keeps_each_rows_count_over_several_rows():
    """Each row prunes ceil(rho x its count) of its weakest entries and grows as many of its own by
    largest gradient, never an entry still active (a row without gradient: all scores 0)."""
    update = load("dsl_variants").row_balanced_update
    dsl, table = _variant_update(
        update,
        3,
        [0, 1, 2, 4, 8, 9],
        [1.0, 0.5, 0.1, 0.9, 1.0, 0.2],  # row 1's entry above row 0's, as magnitudes
        [[1.0, 1.0, 5.0, 10.0], [1.0, 1.0, 1.0, 7.0]],  # row 2: no gradient
    )
    assert dsl.updates[0]["changed"] == {"0": 2 + 1 + 1}  # ceil(1.5), ceil(0.5), ceil(1.0)
    columns = _columns(table)
    assert columns[:2] == [[0, 2, 3], [3]]
    assert len(columns[2]) == 2 and columns[2][0] == 0  # its strongest entry kept, one other grown
    assert table.positions.unique().numel() == 6


def test_dsl_variant_prefix_prunes_row_tails_and_grows_after_row_ends():
    """Row 0 holds columns 0-2 with a weak head (0.1) but strong tail (1.0, 0.5): its tail entry (column 2)
    goes, not the weak head; row 1's one entry goes too, and the two largest run-minimum gradients
    after the rows' new ends (row 1's columns 0 and 1) grow: every row stays a prefix."""
    update = load("dsl_variants").prefix_update
    dsl, table = _variant_update(
        update, 2, [0, 1, 2, 4], [0.1, 1.0, 0.5, 0.3], [[1.0, 1.0, 4.0, 9.0], [6.0, 5.0, 1.0, 1.0]]
    )
    assert dsl.updates[0]["changed"] == {"0": 2}
    assert _columns(table) == [[0, 1], [0, 1]]


def test_dsl_variant_prefix_moves_the_ceiling_of_rho_times_the_active_count():
    """As DSL does: n = ceil(rho * nnz), 2 of 3 entries at rho = 0.5 (not 1). Row 0's tail (0.2) and row 1's
    entry (0.5) go; row 0's next columns carry the largest run-minimum gradients (1.0), row 1's none
    above 0.1: row 0 grows to three columns and row 1 ends empty."""
    update = load("dsl_variants").prefix_update
    dsl, table = _variant_update(
        update, 2, [0, 1, 4], [1.0, 0.2, 0.5], [[1.0, 1.0, 1.0, 9.0], [0.1, 5.0, 1.0, 1.0]]
    )
    assert dsl.updates[0]["changed"] == {"0": 2}
    assert _columns(table) == [[0, 1, 2], []]


def test_dsl_variant_prefix_reset_draws_prefixes_of_the_tables_count():
    from dslgraph.sparse import SparseEmbedding

    dsl_variants = load("dsl_variants")
    table = SparseEmbedding(200, 8, density=0.3)
    dsl_variants.prefix_reset(table, torch.Generator().manual_seed(0))
    assert table.nnz == 480 and table.positions.unique().numel() == 480
    widths = [len(c) for c in _columns(table)]
    assert min(widths) >= 1 and max(widths) <= 8
    assert all(c == list(range(len(c))) for c in _columns(table))


def test_dsl_variants_initial_values_are_the_dense_tables_and_scaled_by_density(monkeypatch):
    """degree-init keeps the dense table's values where its mask is; scaled-init multiplies them by
    1 / sqrt(density), as its name says."""
    import dslgraph.cli
    from dslgraph.sparse import SparseEmbedding

    original = SparseEmbedding.__dict__["from_dense"]
    monkeypatch.setattr(SparseEmbedding, "from_dense", original)  # the variants' patches, undone after
    monkeypatch.setattr(dslgraph.cli, "load_data", dslgraph.cli.load_data)
    dsl_variants = load("dsl_variants")
    weight = torch.randn(10, 4, generator=torch.Generator().manual_seed(0))
    plain = SparseEmbedding.from_dense(weight, 0.25, torch.Generator().manual_seed(1))
    dsl_variants.use_scaled_init()
    scaled = SparseEmbedding.from_dense(weight, 0.25, torch.Generator().manual_seed(1))
    assert torch.equal(scaled.positions, plain.positions)
    assert torch.allclose(scaled.values, plain.values * 2.0)  # density 1/4
    degree = torch.tensor([0, 0, 1, 1, 2, 3, 5, 8, 13, 30])
    SparseEmbedding.from_dense = original  # degree-init alone
    monkeypatch.setattr(dsl_variants, "node_degrees", lambda data: degree)
    monkeypatch.setattr(dslgraph.cli, "load_data", lambda settings: None)
    dsl_variants.use_degree_init()
    dslgraph.cli.load_data({})
    table = SparseEmbedding.from_dense(weight, 0.25, torch.Generator().manual_seed(1))
    assert table.nnz == 10
    assert torch.equal(table.values, weight.reshape(-1)[table.positions])


def test_dsl_variant_probe_batches_draws_its_extra_batches_in_turn():
    """The extra batches come from one pass over the epoch's batches after another, each batch in turn,
    not the first batch again and again."""
    dsl = SimpleNamespace(iteration=0, is_update_step=lambda iteration: iteration % 2 == 1)
    batches = [(torch.tensor([b]),) for b in range(3)]
    probe = load("dsl_variants").ProbeBatches(batches, dsl, 3)
    drawn = []
    for (batch,) in itertools.chain(probe, probe):
        drawn.append(batch.tolist())
        dsl.iteration += 1
    assert len(probe) == 3
    assert drawn == [[0, 0, 1], [1], [2, 2, 0], [0], [1, 1, 2], [2]]


def test_cost_table_row_takes_each_column_from_its_own_field(tmp_path):
    """Every number of a run's metrics.json differs, so a column read from a neighbouring field shows."""
    run = write_run(tmp_path / "sweep" / "neumf" / "runs" / "s0.5", [(10, 5.0, 0.15)], model="neumf")
    summary = json.loads((run / "metrics.json").read_text())
    summary |= {
        "sparsity": 0.5,
        "macs": {"train_iteration": 11, "inference": 21},
        "ideal_macs": {"train_iteration": 12, "inference": 22},
        "dense_macs": {"train_iteration": 13, "inference": 23},
        "training_savings": 0.1,
        "ideal_training_savings": 0.2,
        "inference_savings": 0.3,
        "ideal_inference_savings": 0.4,
        "parameter_bytes": 100,
        "optimizer_state_bytes": 200,
        "dense_parameter_bytes": 1000,
        "dense_optimizer_state_bytes": 3000,
        "bytes_ratio": 0.075,
        "workspace_bytes": 7,
    }
    (run / "metrics.json").write_text(json.dumps(summary))
    row = load("cost_table").row_for(run / "metrics.json", tmp_path / "sweep")
    assert row == {
        "model": "neumf",
        "run": "neumf/s0.5",
        "sparsity": 0.5,
        "train_macs_dense": 13,
        "train_macs_executed": 11,
        "train_macs_ideal": 12,
        "training_savings": 0.1,
        "ideal_training_savings": 0.2,
        "inference_macs_dense": 23,
        "inference_savings": 0.3,
        "ideal_inference_savings": 0.4,
        "bytes": 300,
        "dense_bytes": 4000,
        "bytes_ratio": 0.075,
        "workspace_bytes": 7,
    }
    del summary["settings"]["model"]  # as older runs recorded: the model named by the sweep's folder
    (run / "metrics.json").write_text(json.dumps(summary))
    assert load("cost_table").row_for(run / "metrics.json", tmp_path / "sweep")["model"] == "neumf"
    for field in ("ideal_macs", "ideal_training_savings", "ideal_inference_savings"):
        del summary[field]  # as MovieLens-100K's sweep recorded: a KeyError, and no table
    (run / "metrics.json").write_text(json.dumps(summary))
    row = load("cost_table").row_for(run / "metrics.json", tmp_path / "sweep")
    ideal = ("train_macs_ideal", "ideal_training_savings", "ideal_inference_savings")
    assert [row[name] for name in ideal] == ["", "", ""]
    assert row["train_macs_executed"] == 11


def test_cost_table_takes_its_out_with_or_without_a_suffix(tmp_path, monkeypatch, capsys):
    """--out X.csv wrote X.csv.csv and X.csv.md; a folder is refused, as plot_history's and paired_seeds'."""
    cost_table = load("cost_table")
    monkeypatch.setattr(cost_table, "row_for", lambda path, folder, root: {"run": path.parent.name})
    monkeypatch.setattr(cost_table, "markdown_table", lambda rows, columns: "table\n")
    write_run(tmp_path / "sweep" / "runs" / "dense", [(10, 5.0, 0.15)])
    cost_table.main([str(tmp_path / "sweep"), "--out", str(tmp_path / "cost.csv")])
    assert sorted(path.name for path in tmp_path.glob("cost*")) == ["cost.csv", "cost.md"]
    argv = ["cost_table.py", str(tmp_path / "sweep"), "--out", str(tmp_path)]
    assert "is a folder" in refusal(cost_table.main, monkeypatch, capsys, argv)


def test_degree_analysis_summary_counts_each_row_by_its_degree():
    summary = load("degree_analysis").summarise(
        torch.tensor([0, 1, 2, 2, 4, 5, 8]), torch.tensor([0, 1, 2, 3, 4, 20, 120]), low=2, high=20
    )
    assert summary == {
        "rows": 7,
        "active_entries": 22,
        "mean_entries": pytest.approx(22 / 7),
        "spearman": pytest.approx(0.991031),  # ranks 1, 2, 3.5, 3.5, 5, 6, 7 against 1-7
        "mean_entries_degree_le_2": 1.0,  # degrees 0, 1 and 2
        "rows_degree_le_2": 3,
        "mean_entries_degree_ge_20": 6.5,  # degrees 20 and 120
        "rows_degree_ge_20": 2,
        "empty_rows": 1,
        "by_degree": [
            {"degree": "0", "rows": 1, "mean_entries": 0.0},
            {"degree": "1-2", "rows": 2, "mean_entries": 1.5},
            {"degree": "3-4", "rows": 2, "mean_entries": 3.0},
            {"degree": "20-49", "rows": 1, "mean_entries": 5.0},
            {"degree": "100+", "rows": 1, "mean_entries": 8.0},
        ],
    }


def test_degree_analysis_pairs_each_rows_entries_with_its_own_users_or_items_degree(monkeypatch):
    """A table of 2 users then 3 items, 4 columns wide: row r's entries are positions r x 4 to r x 4 + 3."""
    from dslgraph.sparse import SparseEmbedding

    degree_analysis = load("degree_analysis")
    table = SparseEmbedding(5, 4, density=0.5)
    with torch.no_grad():
        table.positions.copy_(torch.tensor([0, 1, 2, 3, 4, 8, 9, 12, 16, 17]))  # 4, 1, 2, 1, 2 per row
    table.positions_changed()
    model = torch.nn.ModuleDict({"embedding": table})
    settings = {"model": "lightgcn", "dataset": "mine", "sparsity": 0.5, "seed": 0}
    monkeypatch.setattr(degree_analysis, "load_run", lambda *args: (model, None, None, settings, 1))
    monkeypatch.setattr(degree_analysis, "num_users_items", lambda data: (2, 3))
    monkeypatch.setattr(degree_analysis, "node_degrees", lambda data: torch.tensor([9, 1, 5, 0, 7]))
    sides = degree_analysis.analyse("best.pt", None, low=1, high=7)["tables"]["embedding"]
    assert [sides["user"][key] for key in ("active_entries", "mean_entries_degree_le_1")] == [5, 1.0]
    assert [sides["item"][key] for key in ("active_entries", "mean_entries_degree_le_1")] == [5, 1.0]
    assert (sides["user"]["mean_entries_degree_ge_7"], sides["item"]["mean_entries_degree_ge_7"]) == (
        4.0,
        2.0,
    )


def test_markdown_table_has_a_line_per_row_in_its_columns():
    rows = [{"run": "dense", "bytes": 10, "other": 1}, {"run": "s0.8", "bytes": 4, "other": 2}]
    table = load("common").markdown_table(rows, ["run", "bytes"])
    assert table == "| run | bytes |\n|---|---|\n| dense | 10 |\n| s0.8 | 4 |\n"


def test_plot_history_draws_each_run_from_its_own_evaluations(tmp_path, monkeypatch):
    plot_history = load("plot_history")
    drawn = {}

    def keep_lines(fig, path):
        drawn.update({line.get_label(): line.get_xydata().tolist() for line in fig.axes[0].get_lines()})

    monkeypatch.setattr(plot_history, "save_figure", keep_lines)
    rows = [
        {"run": "dense", "epoch": 1, "test_recall@20": 0.1},
        {"run": "sparse", "epoch": 1, "test_recall@20": 0.05},
        {"run": "dense", "epoch": 2, "test_recall@20": 0.2},
    ]
    plot_history.plot(rows, "test", "recall@20", [("paper", 0.3)], tmp_path / "plot.png")
    assert drawn["dense"] == [[1.0, 0.1], [2.0, 0.2]]
    assert drawn["sparse"] == [[1.0, 0.05]]
    assert drawn["paper 0.3"][0][1] == 0.3


def test_bench_plan_times_the_build_of_a_new_mask_each_repeat_and_writes_each_row(tmp_path, monkeypatch):
    """Each repeat builds the plan of a table with a mask of its own, in sorted slots and then the same
    mask's slots shuffled; the time is the build's, waited for, without the table's making, its transfer or
    the garbage collection before it; the median is the middle time. A run stopped part way keeps its rows."""
    from dslgraph.sparse import SparseEmbedding

    bench_plan = load("bench_plan")
    clock = Clock()
    gpu, built = Queue(clock), []
    builds = iter([50.0, 1.0, 2.0, 6.0, 6.0, 1.0, 2.0, 3.0, 3.0, 3.0])  # the untimed one, each case's 3
    make = SparseEmbedding.__init__

    def made(table, *args, **kwargs):
        clock.now += 100.0
        make(table, *args, **kwargs)

    def propagate(table, adj):
        built.append(table.positions.clone())
        seconds = next(builds, None)
        if seconds is None:  # as a device command's time limit would
            raise KeyboardInterrupt
        gpu.launch(seconds, "build")

    monkeypatch.setattr(SparseEmbedding, "__init__", made)
    monkeypatch.setattr(SparseEmbedding, "propagate", propagate)
    monkeypatch.setattr(SparseEmbedding, "to", lambda table, device: gpu.launch(1000.0, "to") or table)
    monkeypatch.setattr(
        bench_plan, "gc", SimpleNamespace(collect=lambda: setattr(clock, "now", clock.now + 1e4))
    )
    monkeypatch.setattr(bench_plan, "time", SimpleNamespace(perf_counter=clock))
    monkeypatch.setattr(bench_plan, "sync", gpu.sync)
    out = tmp_path / "p.csv"
    args = ["--dataset", "lastfm", "--densities", "0.5", "0.2", "--repeats", "3", "--dim", "8"]
    monkeypatch.setattr(sys, "argv", ["bench_plan.py", *args, "--output", str(out)])
    with pytest.raises(KeyboardInterrupt):
        bench_plan.main()
    with out.open() as f:
        rows = list(csv.DictReader(f))
    assert [
        (row["density"], row["slots"], row["dim"], row["seconds"], row["seconds_median"]) for row in rows
    ] == [
        ("0.5", "sorted", "8", "1.000 2.000 6.000", "2.0"),
        ("0.5", "shuffled", "8", "6.000 1.000 2.000", "2.0"),
        ("0.2", "sorted", "8", "3.000 3.000 3.000", "3.0"),
    ]
    sorted_, shuffled = built[1:4], built[4:7]
    assert all(bool((p[1:] > p[:-1]).all()) for p in sorted_)
    assert not any(bool((p[1:] > p[:-1]).all()) for p in shuffled)
    assert all(torch.equal(p.sort().values, q) for p, q in zip(shuffled, sorted_))  # the same masks, shuffled
    assert not torch.equal(sorted_[0], sorted_[1]) and not torch.equal(sorted_[1], sorted_[2])


def test_bench_spmm_times_each_kernels_product_and_backward_after_a_warm_up(tmp_path, monkeypatch):
    """Each kernel is timed on its own matrix (CSR, then torch-sparse's SparseTensor): the mean seconds of a
    product and its backward, waited for, the warm-up's left out."""
    monkeypatch.setenv("DSLGRAPH_HOME", str(tmp_path / "data"))  # LastFM, processed there
    bench = load("bench_spmm")
    clock = Clock()
    gpu = Queue(clock)
    spmm = bench.spmm

    def timed(matrix, x):
        kernel = "csr" if isinstance(matrix, torch.Tensor) and matrix.layout == torch.sparse_csr else "other"
        seconds = 1.0 if kernel == "csr" else 4.0
        gpu.launch(seconds, kernel)
        return gpu.with_backward(spmm(matrix, x), seconds / 2)

    monkeypatch.setattr(bench, "spmm", timed)
    monkeypatch.setattr(bench, "time", SimpleNamespace(perf_counter=clock))
    monkeypatch.setattr(bench, "sync", gpu.sync)
    out = tmp_path / "s.csv"
    monkeypatch.setattr(
        sys, "argv", ["bench_spmm.py", "--dataset", "lastfm", "--repeats", "2", "--output", str(out)]
    )
    bench.main()
    with out.open() as f:
        rows = list(csv.DictReader(f))
    kernels = 1 + bench.WITH_TORCH_SPARSE
    assert list(rows[0]) == ["dataset", "kernel", "device", "hardware", "threads", "seconds_fwd_bwd"]
    assert [(row["kernel"], float(row["seconds_fwd_bwd"])) for row in rows] == [
        ("torch CSR", 1.5),
        ("torch_sparse SparseTensor", 6.0),
    ][:kernels]
    assert gpu.launched == (["csr", "backward"] * 3 + ["other", "backward"] * 3)[: 6 * kernels]


def test_bench_sparse_linear_times_each_step_of_its_batch_and_counts_each_layers_bytes(tmp_path, monkeypatch):
    """Each row's steps train on inputs of its batch with its backend, a DSL step after each, no update among
    them; the median is of steps waited for; the bytes are the layer's weights, mask or positions and Adam's
    state (dense: weight and bias, twice more for Adam's two moments); a run stopped part way keeps its
    rows."""
    from dslgraph.sparse import DynamicSparseLearning

    bench = load("bench_sparse_linear")
    clock = Clock()
    gpu, dsl_steps = Queue(clock), []
    train_step = bench.train_step

    def timed(model, x, optimizer, dsl):
        backend = dsl.backend if dsl is not None else "dense"
        if (x.shape[0], backend) == (3, "sparse"):  # as a device command's time limit would
            raise KeyboardInterrupt
        gpu.launch(1.0, f"{x.shape[0]} {backend}")
        return train_step(model, x, optimizer, dsl)

    step = DynamicSparseLearning.step
    monkeypatch.setattr(DynamicSparseLearning, "step", lambda dsl: dsl_steps.append(dsl.backend) or step(dsl))
    monkeypatch.setattr(DynamicSparseLearning, "update", None)  # an update timed as a step: fails
    monkeypatch.setattr(bench, "train_step", timed)
    monkeypatch.setattr(bench, "time", SimpleNamespace(perf_counter=clock))
    monkeypatch.setattr(bench, "sync", gpu.sync)
    out = tmp_path / "linear.csv"
    args = ["--items", "20", "--hidden", "4", "--batches", "2", "3", "--sparsities", "0.5", "--repeats", "2"]
    monkeypatch.setattr(sys, "argv", ["bench_sparse_linear.py", *args, "--output", str(out)])
    with pytest.raises(KeyboardInterrupt):
        bench.main()
    with out.open() as f:
        rows = list(csv.DictReader(f))
    settings = [(row["batch"], row["backend"], float(row["median_seconds_per_step"])) for row in rows]
    assert settings == [
        ("2", "dense", 1.0),
        ("2", "masked", 1.0),
        ("2", "sparse", 1.0),
        ("3", "dense", 1.0),
        ("3", "masked", 1.0),
    ]
    backends = ["dense", "masked", "sparse", "dense", "masked"]
    assert gpu.launched == [
        f"{batch} {backend}" for batch, backend in zip("22233", backends) for _ in range(3)
    ]
    assert dsl_steps == ["masked"] * 3 + ["sparse"] * 3 + ["masked"] * 3
    stored = {row["backend"]: int(row["bytes_weight_and_adam"]) for row in rows[:3]}
    assert stored["dense"] == 3 * (20 * 4 + 4) * 4
    assert stored["sparse"] < stored["dense"] < stored["masked"]


def test_bench_ultragcn_logits_times_each_route_after_its_warm_up(tmp_path, monkeypatch):
    """Each route is timed on its own: the mean seconds of its logits and their backward, waited for, the
    warm-up's left out."""
    bench = load("bench_ultragcn_logits")
    monkeypatch.setattr(bench, "SHAPES", (("tiny", 4, 3, 10, 8),))
    clock = Clock()
    gpu = Queue(clock)
    logits = bench.logits

    def timed(route, *args):
        seconds = {"gather": 1.0, "product": 3.0}[route]
        gpu.launch(seconds, route)
        return gpu.with_backward(logits(route, *args), seconds / 2)

    monkeypatch.setattr(bench, "logits", timed)
    monkeypatch.setattr(bench, "time", SimpleNamespace(perf_counter=clock))
    monkeypatch.setattr(bench, "sync", gpu.sync)
    out = tmp_path / "u.csv"
    monkeypatch.setattr(sys, "argv", ["bench_ultragcn_logits.py", "--repeats", "2", "--output", str(out)])
    bench.main()
    with out.open() as f:
        rows = list(csv.DictReader(f))
    assert [(row["shape"], row["route"], float(row["seconds_fwd_bwd"])) for row in rows] == [
        ("tiny", "gather", 1.5),
        ("tiny", "product", 4.5),
    ]
    assert gpu.launched == ["gather", "backward"] * 3 + ["product", "backward"] * 3


def test_bench_ultragcn_logits_computes_the_official_shapes_logits_two_ways():
    """The product route multiplies the users by every item, then gathers; the shapes are the presets'."""
    from dslgraph.nn.ultragcn import PRESETS

    bench = load("bench_ultragcn_logits")
    users, items = torch.randn(2, 3, requires_grad=True), torch.randn(5, 3, requires_grad=True)
    index = torch.tensor([[0, 4], [1, 1]])
    expected = torch.stack([items[index[b]] @ users[b] for b in range(2)])
    for route, last in (("gather", "SumBackward1"), ("product", "GatherBackward0")):
        out = bench.logits(route, users, items, index)
        assert torch.allclose(out, expected) and out.grad_fn.name() == last
    for (_, batch, negatives, _, dim), preset in zip(bench.SHAPES, ("ml-1m-lcf", "gowalla"), strict=True):
        settings = PRESETS[preset]
        assert (batch, negatives, dim) == (
            settings["batch_size"],
            settings["num_negatives"],
            settings["embedding_dim"],
        )


def test_timed_runs_probes_then_runs_each_setting_with_the_epochs_that_fit(tmp_path, monkeypatch):
    """Each setting's probe is evaluated once, at its end; each real run gets its group's epochs that fit
    what the probes left of the budget less the margin, a guard of --max-seconds at what is left, and is
    stopped at the end of the budget; timing.json records the plan, each run's exit and its seconds."""
    timed_runs = load("timed_runs")
    clock, commands = Clock(), []
    # each run's group and flags, its seconds per epoch past the first, and whether its probe fails or it
    # goes on past the budget
    settings = {
        "a": ("sweep", "--dataset lastfm", 1.0, ""),
        "b": ("sweep", "--dataset lastfm --sparsity 0.5", 2.0, ""),
        "c": ("alone", "--model ultragcn", 1.0, "endless"),
        "d": ("sweep", "--dataset lastfm", 1.0, "fails"),
    }

    class Train:
        """A ``dslgraph train`` process: its log and metrics.json, written at once; its end, on the clock."""

        def __init__(self, command, stdout, stderr):
            commands.append(command)
            output = Path(command[command.index("--output") + 1])
            epochs = int(command[command.index("--epochs") + 1])
            _, _, epoch_seconds, fate = settings[output.name]
            probe = output.parent.name == "probe"
            times = [2.0 + epoch_seconds * epoch for epoch in range(1, epochs + 1)]
            stdout.write(
                "".join(f"INFO trainer: epoch {e} loss 0.5 ({t:.1f}s)\n" for e, t in enumerate(times, 1))
            )
            write_run(output, [(epochs, times[-1], 0.1)])  # one evaluation of 0.5 s
            self.returncode = None
            self.exit = 1 if probe and fate == "fails" else 0
            self.ends = clock.now + (20.0 if probe else float("inf") if fate == "endless" else 60.0)

        def poll(self):
            if self.returncode is None and clock.now >= self.ends:
                self.returncode = self.exit
            return self.returncode

        def terminate(self):
            self.ends, self.exit = clock.now, -15

        def wait(self, timeout):
            if self.poll() is None:
                raise subprocess.TimeoutExpired("dslgraph", timeout)

        def kill(self):
            self.ends, self.exit = clock.now, -9

    def sleep(seconds):
        clock.now += seconds

    def train(name: str, folder: Path, epochs: int, eval_every: int, *guard: str) -> list[str]:
        flags = settings[name][1].split()
        command = [
            sys.executable,
            "-m",
            "dslgraph",
            "train",
            *flags,
            "--no-progress",
            "--epochs",
            str(epochs),
        ]
        return [*command, "--eval-every", str(eval_every), "--output", str(folder / name), *guard]

    monkeypatch.setattr(timed_runs.subprocess, "Popen", Train)
    monkeypatch.setattr(timed_runs, "time", SimpleNamespace(monotonic=clock, sleep=sleep))
    out = tmp_path / "timed"
    runs = [word for name, (group, flags, _, _) in settings.items() for word in ("--run", name, group, flags)]
    monkeypatch.setattr(sys, "argv", ["timed_runs.py", "--budget", "200", "--out", str(out), *runs])
    timed_runs.main()
    # 175 s left (200, less 20 of probes, less 5 for stopping); 131.25 s planned (a quarter kept);
    # a: 12.5 s besides training and evaluations (20 - 7 - 0.5), 11 evaluations of 0.5 s, 113 epochs of 1 s;
    # b: 7.5 s besides (20 - 12 - 0.5), 59 epochs of 2 s; the group sweep gets 59, 55 with an evaluation
    # every 5th; c, alone, 113, 110 with one every 11th; each stopped by --max-seconds at 175 s less the
    # time besides training and evaluations; d's probe failed
    assert commands == [train(name, out / "probe", 5, 5) for name in "abcd"] + [
        train("a", out, 55, 5, "--max-seconds", "157"),
        train("b", out, 55, 5, "--max-seconds", "162"),
        train("c", out, 110, 11, "--max-seconds", "157"),
    ]
    timing = json.loads((out / "timing.json").read_text())
    assert timing["probe"]["b"] == {"epoch_seconds": 2.0, "eval_seconds": 0.5, "other_seconds": 7.5}
    assert timing["probe"]["d"] is None
    assert timing["plan"] == {
        "a": {"epochs": 55, "eval_every": 5, "exit": 0, "wall_seconds": 60.0},
        "b": {"epochs": 55, "eval_every": 5, "exit": 0, "wall_seconds": 60.0},
        "c": {"epochs": 110, "eval_every": 11, "exit": -15, "wall_seconds": 180.0},
        "d": {"epochs": 0, "eval_every": 1},
    }
    files = ["a", "a.log", "b", "b.log", "c", "c.log", "probe", "timing.json"]
    assert sorted(path.name for path in out.iterdir()) == files


def test_bench_checkpoint_times_both_readers_on_the_same_file(tmp_path, monkeypatch):
    """Each row is its reader's median over --repeats reads of one checkpoint, whose tensor both read back."""
    bench = load("bench_checkpoint")
    clock = Clock()
    monkeypatch.setattr(time, "perf_counter", clock)
    read = []

    def counted(reader, seconds):
        def timed(path, **options):
            read.append((reader, Path(path).name))
            clock.now += seconds
            return reader(path, **options)

        return timed

    monkeypatch.setattr(torch, "load", counted(torch.load, 1.0))
    monkeypatch.setattr(bench, "load_checkpoint", counted(bench.load_checkpoint, 2.0))
    out = tmp_path / "load.csv"
    argv = ["bench_checkpoint.py", "--rows", "30", "--dim", "4", "--repeats", "3", "--output", str(out)]
    monkeypatch.setattr(sys, "argv", argv)
    bench.main()
    rows = list(csv.DictReader(out.open()))
    timed = [(row["reader"], row["seconds"]) for row in rows]
    assert timed == [("torch.load", "1.0"), ("load_checkpoint", "3.0")]  # its own check, then torch.load
    assert {name for _, name in read} == {"c.pt"} and len(read) == 4 + 4 * 2


def test_a_dataset_that_cannot_be_read_is_an_argument_error(tmp_path, monkeypatch, capsys):
    """A --root that is a file (or raw files missing) ended the benchmark in a traceback."""
    common = load("common")
    (tmp_path / "file").write_text("")
    parser = common.base_parser("a benchmark", "out.csv")
    args = parser.parse_args(["--dataset", "lastfm", "--root", str(tmp_path / "file")])
    with pytest.raises(SystemExit) as stopped:
        common.read_dataset(parser, args)
    assert stopped.value.code == 2 and "error: --dataset lastfm: " in capsys.readouterr().err

    def damaged(name, root):  # what the datasets raise for a raw file cut short
        raise ValueError(f"{name}'s raw file ends mid-line")

    with pytest.raises(SystemExit) as stopped:
        common.read_dataset(parser, args, damaged)
    said = capsys.readouterr().err
    assert stopped.value.code == 2 and "--dataset lastfm: lastfm's raw file ends mid-line" in said


@pytest.mark.parametrize(
    "name", ["bench_checkpoint", "bench_optimizer", "bench_sparse_linear", "bench_ultragcn_logits"]
)
def test_a_benchmark_of_synthetic_tensors_takes_no_dataset(name, monkeypatch, capsys):
    """--dataset and --root were accepted and ignored, and --help showed gowalla as the dataset."""
    said = refusal(load(name).main, monkeypatch, capsys, [f"{name}.py", "--dataset", "ml-1m"])
    assert "unrecognized arguments: --dataset ml-1m" in said
