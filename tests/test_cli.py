import functools
import json
import logging
import re
import shutil
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import dslgraph
import dslgraph.cli as cli_module
from dslgraph.cli import build_model, build_parser, load_data, main, run_example, train_config
from dslgraph.config import FIELDS, ConfigError, validate
from dslgraph.data import EDGE, make_interaction_data
from dslgraph.nn.base import table_row_degrees
from dslgraph.sparse import SparseEmbedding
from dslgraph.train import Trainer, save_checkpoint


def test_validate_takes_numpy_integers_for_ks_as_ints():
    ks = validate({"ks": list(np.arange(10, 30, 10)), "monitor": "ndcg@20"})["ks"]
    assert ks == [10, 20] and all(type(k) is int for k in ks)  # json.dumps refuses np.int64
    for bad in ([np.float64(10.0)], [True], [0], []):
        with pytest.raises(ConfigError, match="ks must be a non-empty list of positive integers"):
            validate({"ks": bad})


def test_validate_names_field_and_range():
    assert validate({})["dataset"] == "lastfm"
    with pytest.raises(ConfigError, match=r"sparsity must be a float in \[0, 1\), got 1.0"):
        validate({"sparsity": 1.0})
    with pytest.raises(ConfigError, match=r"dataset must be one of \['lastfm'"):
        validate({"dataset": "netflix"})
    with pytest.raises(ConfigError, match="unknown setting"):
        validate({"learning_rate": 0.1})
    with pytest.raises(ConfigError, match="update_interval must be an int"):
        validate({"update_interval": 0})
    with pytest.raises(ConfigError, match="monitor must be"):
        validate({"monitor": "recall@50"})
    assert validate({"model": "multvae", "monitor": "capped_recall@20"})["monitor"] == "capped_recall@20"
    with pytest.raises(ConfigError, match="rho_min"):
        validate({"rho0": 0.1, "rho_min": 0.2})
    assert validate({"seed": 2**64 - 1})["seed"] == 2**64 - 1
    with pytest.raises(ConfigError, match=r"seed must be an int in \[0, 18446744073709551615\]"):
        validate({"seed": 2**64})


def test_ranges_shown_leave_out_inf_which_no_setting_takes():
    assert FIELDS["epochs"].describe() == "an int in [1, inf)"
    assert FIELDS["lr"].describe() == "a float in (0, inf)"
    with pytest.raises(ConfigError, match=r"lr must be a float in \(0, inf\), got inf"):
        validate({"lr": float("inf")})


def test_threads_are_bounded_below_what_crashes_openmp():
    # --threads 100000 ended the process with a segmentation fault and no message
    assert validate({"threads": 1024})["threads"] == 1024
    with pytest.raises(ConfigError, match=r"threads must be an int in \[0, 1024\], got 100000"):
        validate({"threads": 100000})


@pytest.mark.parametrize("monitor", ["recall@020", "recall@²"])
def test_monitor_must_spell_k_as_ks_does(monitor):
    # "recall@020" passed and failed after the data was loaded; "recall@²" failed in int() naming no setting
    with pytest.raises(ConfigError, match=r"monitor must be '<recall\|"):
        validate({"monitor": monitor})


def test_cosine_schedule_refuses_an_lr_min_above_lr():
    with pytest.raises(
        ConfigError, match=r"lr_min \(0.0001\) must not exceed lr \(1e-05\) under lr_schedule"
    ):
        validate({"lr": 1e-5, "lr_schedule": "cosine"})  # the learning rate rose to lr_min
    assert validate({"lr": 1e-5, "lr_schedule": "cosine", "lr_min": 0.0})["lr_min"] == 0.0
    assert validate({"lr": 1e-5})["lr_schedule"] == "none"  # lr_min acts only under the cosine


@pytest.mark.parametrize("model", ["neumf", "convncf", "ultragcn"])
def test_held_out_users_are_refused_for_models_that_cannot_fold_them_in(model):
    """Their held-out users were scored with embeddings never trained: metrics of noise, no error."""
    with pytest.raises(
        ConfigError, match=f"model '{model}' cannot be evaluated under protocol 'held-out-users'"
    ):
        validate({"model": model, "protocol": "held-out-users"})
    for folding in ("lightgcn", "cdae", "multvae"):
        assert validate({"model": folding, "protocol": "held-out-users"})["protocol"] == "held-out-users"


def test_empty_targets_are_refused_not_taken_for_the_model_s():
    with pytest.raises(ConfigError, match=r"targets must be a non-empty list .*, got \[\]"):
        validate({"sparsity": 0.5, "targets": []})


def test_a_misspelt_setting_flag_or_model_argument_names_the_one_meant(capsys):
    with pytest.raises(
        ConfigError, match=r"unknown setting\(s\) \['spasity'\] \(did you mean 'sparsity'\?\)"
    ):
        validate({"spasity": 0.5})
    with pytest.raises(
        ConfigError, match=r"embeding_dim is not an argument of model 'lightgcn' \(did you mean"
    ):
        validate({"options": {"embeding_dim": 8}})
    with pytest.raises(SystemExit):
        main(["eval", "best.pt", "--k", "5"])
    assert (
        "dslgraph eval: error: unrecognized arguments: --k 5 (did you mean '--ks'?)"
        in capsys.readouterr().err
    )
    # a flag with one dash: argparse's error gave no hint
    with pytest.raises(SystemExit):
        main(["train", "-lr", "0.1", "-epochs", "3", "--lr", "-0.5"])
    err = capsys.readouterr().err
    assert "unrecognized arguments: -lr 0.1 -epochs 3 (did you mean '--lr', '--epochs'?)" in err


def test_a_misspelt_flag_of_a_resume_without_a_run_is_answered_without_the_run_s_model(tmp_path, capsys):
    # the hint reads the model of the run resumed, where there is one to read
    with pytest.raises(SystemExit):
        main(["train", "--resume", "--output", str(tmp_path / "none"), "--embeding-dim", "8"])
    assert (
        "unrecognized arguments: --embeding-dim 8 (did you mean '--embedding-dim'?)"
        in capsys.readouterr().err
    )
    assert not (tmp_path / "none").exists()
    # nor with the model of the example script whose folder holds no run: it may be another model's
    with pytest.raises(SystemExit):
        main(["train", "--resume", "--gamma", "1e-4"], {"model": "ultragcn"}, str(tmp_path / "none"))
    assert "unrecognized arguments: --gamma 1e-4\n" in capsys.readouterr().err  # not "--option gamma=VALUE"
    assert not (tmp_path / "none").exists()
    with pytest.raises(SystemExit):  # no --output and no script's folder: no run to read at all
        main(["train", "--resume", "--epoch", "5"])
    assert "unrecognized arguments: --epoch 5 (did you mean '--epochs'?)" in capsys.readouterr().err


def test_a_read_option_given_as_a_flag_or_setting_is_sent_to_data_options(capsys):
    with pytest.raises(ConfigError, match=r"\['sep'\] go in data_options\)"):  # was: did you mean 'seed'?
        validate({"data_file": "mine.csv", "sep": ";"})
    with pytest.raises(SystemExit):
        main(["train", "--data-file", "mine.csv", "--test-ratio", "0.1"])  # was: did you mean '--val-ratio'?
    assert "(read options of --data-file go in --data-option: test_ratio=VALUE)" in capsys.readouterr().err


def test_a_model_argument_list_of_another_element_type_is_refused():
    # NeuMF failed in torch.empty with a TypeError traceback
    with pytest.raises(ConfigError, match=r"mlp_layers of model 'neumf' must be a list of int .*16.5\]"):
        validate({"model": "neumf", "options": {"mlp_layers": [32, 16.5]}})
    settings = validate({"model": "neumf", "options": {"mlp_layers": [32, 16]}})
    assert settings["options"]["mlp_layers"] == [32, 16]


def test_a_config_file_s_true_is_switched_off_by_a_no_flag(tmp_path):
    """Bool flags could only switch on: a config file's "static_mask": true stayed for every run of it."""
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"sparsity": 0.5, "static_mask": True, "skip_zero_gradient": True}))
    parse = build_parser().parse_args
    given = cli_module.settings_from_args(parse(["train", "--config", str(config)]))
    assert given["static_mask"] and given["skip_zero_gradient"]
    off = ["train", "--config", str(config), "--no-static-mask", "--no-skip-zero-gradient"]
    settings = cli_module.settings_from_args(parse(off))
    assert not settings["static_mask"] and not settings["skip_zero_gradient"]


def test_a_config_file_naming_a_setting_twice_is_refused(tmp_path):
    from dslgraph.config import load_config_file

    config = tmp_path / "c.json"
    for text, twice in [
        ('{"epochs": 1, "epochs": 2}', "'epochs'"),  # json keeps the last silently
        ('{"num-layers": 2, "num_layers": 3}', "'num_layers'"),
        ('{"options": {"std": 0.1, "std": 0.2}}', "'std'"),
    ]:
        config.write_text(text)
        # said as it is, not as JSON that "could not be read"
        with pytest.raises(ConfigError, match=rf"^config file {config} names \[{twice}\] more than once"):
            load_config_file(config)


def test_bad_cli_value_exits_with_message(capsys, tmp_path):
    assert main(["train", "--sparsity", "1.5"]) == 2
    assert "sparsity must be a float in [0, 1)" in capsys.readouterr().err
    config = tmp_path / "c.json"
    config.write_text('{"epochs": "ten"}')
    assert main(["train", "--config", str(config)]) == 2
    assert "epochs must be an int" in capsys.readouterr().err
    config.write_text('{"options": [1]}')
    assert main(["train", "--config", str(config), "--option", "a=1"]) == 2
    assert "options must be an object of NAME: VALUE, got [1]" in capsys.readouterr().err
    config.write_text("{broken")
    assert main(["train", "--config", str(config)]) == 2
    assert "not valid JSON" in capsys.readouterr().err


@pytest.mark.slow
def test_train_eval_recommend_on_lastfm(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DSLGRAPH_HOME", str(tmp_path / "data"))
    config = tmp_path / "run.json"
    config.write_text(json.dumps({"epochs": 2, "embedding-dim": 16, "eval_every": 1, "batch_size": 8192}))
    out = tmp_path / "run"
    args = [
        "train",
        "--config",
        str(config),
        "--sparsity",
        "0.8",
        "--update-interval",
        "3",
        "--output",
        str(out),
    ]
    assert main([*args, "--no-progress", "--device", "cpu"]) == 0
    printed = json.loads(capsys.readouterr().out)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs"] == printed["epochs"] == 2
    assert metrics["test"]["recall@20"] == printed["test"]["recall@20"] > 0
    assert metrics["sparsity"] == pytest.approx(0.8, abs=1e-4)
    assert metrics["bytes_ratio"] < 0.35 and 0 < metrics["training_savings"] < 0.8
    assert main(["eval", str(out / "best.pt"), "--device", "cpu"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["test"]["recall@20"] == pytest.approx(metrics["test"]["recall@20"])
    assert main(["recommend", str(out / "best.pt"), "--users", "0", "5", "-k", "3", "--device", "cpu"]) == 0
    recs = json.loads(capsys.readouterr().out)
    assert set(recs) == {"0", "5"} and all(len(items) == 3 for items in recs.values())
    # the same from Python, as the README shows it
    run = dslgraph.load_run(out / "best.pt")
    assert run.settings["sparsity"] == 0.8 and not run.model.training
    top = run.model.recommend(run.graph, torch.tensor([0, 5]), 3, exclude=run.data[EDGE].edge_index)
    assert top.tolist() == [recs["0"], recs["5"]]
    assert main(["recommend", str(out / "best.pt"), "--users", "99999"]) == 2
    assert main(["eval", str(tmp_path / "nope.pt")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_compact_backend_trains_holds_no_plan_and_evaluates(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DSLGRAPH_HOME", str(tmp_path / "data"))
    runs = {}
    for backend in ("sparse", "compact"):
        out = tmp_path / backend
        args = ["train", "--epochs", "3", "--lr", "0.01", "--embedding-dim", "8", "--sparsity", "0.8"]
        args += ["--update-interval", "10", "--no-progress", "--device", "cpu"]  # two updates
        assert main([*args, "--backend", backend, "--output", str(out)]) == 0
        capsys.readouterr()
        runs[backend] = json.loads((out / "metrics.json").read_text())
    assert runs["sparse"]["workspace_bytes"] > 0 and runs["compact"]["workspace_bytes"] == 0
    assert runs["compact"]["bytes_ratio"] == runs["sparse"]["bytes_ratio"] < 0.35
    # the same masks, values and gradients (to float rounding): the two backends train alike
    recall = runs["sparse"]["test"]["recall@20"]
    assert recall > 0.05 and runs["compact"]["test"]["recall@20"] == pytest.approx(recall, rel=1e-3)
    assert main(["eval", str(tmp_path / "compact" / "best.pt"), "--device", "cpu"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["test"]["recall@20"] == pytest.approx(runs["compact"]["test"]["recall@20"])


def test_resume_takes_the_run_settings_and_refuses_other_ones(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DSLGRAPH_HOME", str(tmp_path / "data"))
    out = str(tmp_path / "run")
    args = ["train", "--epochs", "1", "--embedding-dim", "8", "--num-layers", "1", "--batch-size", "8192"]
    assert main([*args, "--output", out, "--no-progress", "--device", "cpu"]) == 0
    # as the README says, --output and --resume are enough; a flag may extend the run
    assert main(["train", "--output", out, "--resume", "--epochs", "2", "--no-progress"]) == 0
    settings = json.loads((tmp_path / "run" / "metrics.json").read_text())["settings"]
    assert (settings["embedding_dim"], settings["num_layers"], settings["epochs"]) == (8, 1, 2)
    capsys.readouterr()
    assert main(["train", "--output", out, "--resume", "--epochs", "3", "--num-layers", "2"]) == 2
    assert "last.pt: num_layers was 1, now 2" in capsys.readouterr().err
    # not "embedding_dim is not an argument of model 'cdae'", which the recorded settings give
    assert main(["train", "--output", out, "--resume", "--epochs", "3", "--model", "cdae"]) == 2
    assert "last.pt: model was 'lightgcn', now 'cdae'" in capsys.readouterr().err
    # a setting given as a model argument: not "embedding_dim is given twice"
    assert main(["train", "--output", out, "--resume", "--epochs", "3", "--option", "embedding_dim=16"]) == 2
    assert "last.pt: embedding_dim was 8, now 16" in capsys.readouterr().err
    written = (tmp_path / "run" / "metrics.json").read_text()
    assert main(["train", "--output", out, "--resume"]) == 2  # a finished run: its metrics stay as written
    assert "last.pt: it has trained 2 of 2 epochs (pass a larger --epochs" in capsys.readouterr().err
    assert (tmp_path / "run" / "metrics.json").read_text() == written
    # the change refused is named before the run is found finished: was "nothing to resume", then, with a
    # larger --epochs as it advised, "sparsity was 0.0"
    assert main(["train", "--output", out, "--resume", "--sparsity", "0.5"]) == 2
    assert "last.pt: sparsity was 0.0, now 0.5" in capsys.readouterr().err


def test_a_resume_takes_a_model_default_given_and_names_a_bad_value_as_a_fresh_run_does(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("DSLGRAPH_HOME", str(tmp_path / "data"))
    out = str(tmp_path / "run")
    args = ["train", "--epochs", "1", "--embedding-dim", "8", "--num-layers", "1", "--batch-size", "8192"]
    assert main([*args, "--output", out, "--no-progress", "--device", "cpu"]) == 0
    capsys.readouterr()
    (tmp_path / "bad.json").write_text(json.dumps({"lr": "x"}))
    resume = ["train", "--output", out, "--resume", "--epochs", "2", "--no-progress"]
    assert main([*resume, "--config", str(tmp_path / "bad.json")]) == 2
    err = capsys.readouterr().err  # was: "lr was 0.001, now 'x'"
    assert "error: lr must be a float in (0, inf), got 'x'" in err and "lr was" not in err
    # the recorded None is the model's default, 0.1: was "init_std was None, now 0.2"
    assert main([*resume, "--init-std", "0.2"]) == 2
    assert "last.pt: init_std was 0.1, now 0.2" in capsys.readouterr().err
    assert main([*resume, "--option", "std=0.1"]) == 0  # was refused: "init_std was None, now 0.1"
    # eval's bar hidden on a terminal too, as train's
    monkeypatch.setattr(cli_module.sys.stderr, "isatty", lambda: True)
    assert main(["eval", f"{out}/best.pt", "--no-progress"]) == 0
    assert "evaluating" not in capsys.readouterr().err
    assert main(["eval", f"{out}/best.pt"]) == 0
    assert "evaluating" in capsys.readouterr().err


def test_a_resume_compares_model_arguments_with_the_model_s_defaults_filled_in():
    previous = validate({"model": "neumf"})  # init_std None, options {}: NeuMF's own defaults
    defaults = {"dropout": 0.2, "mlp_layers": [32, 32, 16, 8]}
    given = validate({"model": "neumf", "init_std": 0.01, "options": defaults})
    cli_module._refuse_changed_settings("last.pt", previous, given)  # the same run: was refused
    changed = validate({"model": "neumf", "options": {"dropout": 0.3}})
    with pytest.raises(ConfigError, match=r"last.pt: options.dropout was 0.2, now 0.3 \("):
        cli_module._refuse_changed_settings("last.pt", previous, changed)


def test_resume_of_a_run_stopped_early_is_refused_unless_patience_grows(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DSLGRAPH_HOME", str(tmp_path / "data"))
    out = str(tmp_path / "run")
    args = ["train", "--epochs", "4", "--embedding-dim", "8", "--num-layers", "1", "--batch-size", "8192"]
    args += [
        "--eval-every",
        "1",
        "--patience",
        "1",
        "--lr",
        "1e-30",
        "--no-progress",
    ]  # no gain after epoch 1
    assert main([*args, "--output", out]) == 0
    written = (tmp_path / "run" / "last.pt").read_bytes()
    capsys.readouterr()
    assert main(["train", "--output", out, "--resume", "--no-progress"]) == 2  # trained on to epoch 3
    err = capsys.readouterr().err
    assert (
        "nothing to resume in " in err and "last.pt: it stopped early at epoch 2, after 1 evaluations" in err
    )
    assert (tmp_path / "run" / "last.pt").read_bytes() == written
    assert main(["train", "--output", out, "--resume", "--patience", "3", "--no-progress"]) == 0
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["epochs"] == 4


def test_a_run_stopped_after_an_epoch_is_the_longer_run_s_start_and_resumes_to_its_end(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("DSLGRAPH_HOME", str(tmp_path / "data"))
    args = ["train", "--epochs", "3", "--embedding-dim", "8", "--num-layers", "1", "--batch-size", "4096"]
    args += ["--eval-every", "1", "--sparsity", "0.5", "--update-interval", "1", "--lr", "0.05"]
    args += ["--lr-schedule", "cosine", "--no-progress"]  # the lr and DSL's ρ follow the schedule's length
    runs = {name: tmp_path / name for name in ("whole", "stopped", "short")}
    assert main([*args, "--output", str(runs["whole"])]) == 0
    assert main([*args, "--output", str(runs["stopped"]), "--stop-after-epoch", "1"]) == 0
    assert main([*args, "--output", str(runs["short"]), "--epochs", "1"]) == 0  # a schedule of 1 epoch
    history = {name: _history(path) for name, path in runs.items()}
    assert [e["epoch"] for e in history["stopped"]] == [1]
    assert _results(history["stopped"]) == _results(history["whole"][:1])
    assert _results(history["short"]) != _results(history["whole"][:1])
    capsys.readouterr()
    assert main(["train", "--output", str(runs["stopped"]), "--resume", "--no-progress"]) == 2
    assert "it has trained 1 epochs, to its stop_after_epoch 1 (pass a later" in capsys.readouterr().err
    resume = ["--output", str(runs["stopped"]), "--resume", "--no-progress", "--stop-after-epoch", "0"]
    assert main(["train", *resume]) == 0
    assert _results(_history(runs["stopped"])) == _results(history["whole"])


def test_a_resume_with_an_earlier_stop_after_epoch_says_the_run_is_past_it(tmp_path, capsys, monkeypatch):
    # was "it has trained 2 epochs, to its stop_after_epoch 1": the run had stopped at its own, 2
    monkeypatch.setenv("DSLGRAPH_HOME", str(tmp_path / "data"))
    args = ["train", "--embedding-dim", "8", "--num-layers", "1", "--batch-size", "8192", "--no-progress"]
    args += ["--output", str(tmp_path / "run")]
    assert main([*args, "--epochs", "3", "--eval-every", "1", "--stop-after-epoch", "2"]) == 0
    capsys.readouterr()
    assert main([*args, "--resume", "--stop-after-epoch", "1"]) == 2
    assert "it has trained 2 epochs, past stop_after_epoch 1 (pass a later" in capsys.readouterr().err


def _history(run: Path) -> list[dict]:
    return json.loads((run / "metrics.json").read_text())["history"]


def _results(history: list[dict]) -> list[tuple]:
    """Each evaluation's epoch, loss and test metrics (not its times)."""
    return [(entry["epoch"], entry["loss"], entry["test"]) for entry in history]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_sparse_run_on_cuda_resumes_evaluates_and_recommends(tmp_path, capsys, monkeypatch):
    # the README's --max-seconds / --resume split on a GPU: last.pt is mapped to the device on resume
    monkeypatch.setenv("DSLGRAPH_HOME", str(tmp_path / "data"))
    out = str(tmp_path / "run")
    args = ["train", "--epochs", "1", "--embedding-dim", "8", "--num-layers", "1", "--batch-size", "8192"]
    args += ["--sparsity", "0.8", "--update-interval", "3", "--no-progress", "--device", "cuda"]
    assert main([*args, "--output", out]) == 0
    assert main(["train", "--output", out, "--resume", "--epochs", "2", "--no-progress"]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["epochs"] == 2 and metrics["device"].startswith("cuda")
    capsys.readouterr()
    assert main(["eval", f"{out}/last.pt", "--device", "cuda"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["test"]["recall@20"] == pytest.approx(metrics["history"][-1]["test"]["recall@20"])
    assert main(["recommend", f"{out}/last.pt", "--users", "0", "5", "-k", "3", "--device", "cuda"]) == 0
    assert set(json.loads(capsys.readouterr().out)) == {"0", "5"}


def test_fresh_run_into_a_used_folder_is_refused_unless_overwritten(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DSLGRAPH_HOME", str(tmp_path / "data"))
    run = tmp_path / "run"
    args = ["train", "--epochs", "1", "--embedding-dim", "8", "--num-layers", "1", "--batch-size", "8192"]
    args += ["--output", str(run), "--no-progress", "--device", "cpu"]
    assert main(args) == 0
    written = {name: (run / name).read_bytes() for name in ("last.pt", "best.pt", "metrics.json")}
    capsys.readouterr()
    assert main([*args, "--sparsity", "0.5"]) == 2
    err = capsys.readouterr().err
    assert "holds an earlier run (last.pt, best.pt, metrics.json): continue it with --resume" in err
    assert {name: (run / name).read_bytes() for name in written} == written
    assert main([*args, "--resume", "--overwrite"]) == 2
    assert "--resume continues the run in --output and --overwrite starts afresh" in capsys.readouterr().err
    assert main([*args, "--sparsity", "0.5", "--overwrite"]) == 0
    assert json.loads((run / "metrics.json").read_text())["settings"]["sparsity"] == 0.5

    # a finished run stopped before its final metrics.json (the one with the cost report): --resume
    # writes that file and trains no further
    summary = json.loads((run / "metrics.json").read_text())
    (run / "metrics.json").write_text(json.dumps({k: summary[k] for k in ("test", "epochs", "history")}))
    capsys.readouterr()
    assert main(["train", "--output", str(run), "--resume", "--no-progress"]) == 0
    rewritten = json.loads((run / "metrics.json").read_text())
    assert rewritten["bytes_ratio"] == summary["bytes_ratio"] and rewritten["history"] == summary["history"]
    assert main(["train", "--output", str(run), "--resume", "--no-progress"]) == 2  # now complete
    (run / "metrics.json").write_text(json.dumps(summary)[:100])  # unreadable (edited, a disk error)
    assert main(["train", "--output", str(run), "--resume", "--no-progress"]) == 0
    assert json.loads((run / "metrics.json").read_text())["history"] == summary["history"]


def test_a_dense_run_given_static_mask_resumes_to_more_epochs(tmp_path, monkeypatch):
    # --static-mask acts only under --sparsity: a dense run's epochs are its own to extend
    monkeypatch.setenv("DSLGRAPH_HOME", str(tmp_path / "data"))
    out = str(tmp_path / "run")
    args = ["train", "--epochs", "1", "--embedding-dim", "8", "--num-layers", "1", "--batch-size", "8192"]
    assert main([*args, "--static-mask", "--output", out, "--no-progress"]) == 0
    assert main(["train", "--output", out, "--resume", "--epochs", "2", "--no-progress"]) == 0
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["epochs"] == 2


def test_a_finished_run_lacking_its_cost_report_is_not_resumed_to_fewer_epochs(tmp_path, capsys, monkeypatch):
    # a resume that only writes the missing cost report still refuses an --epochs below the epochs trained:
    # metrics.json would record settings of 1 epoch beside a history of 2
    monkeypatch.setenv("DSLGRAPH_HOME", str(tmp_path / "data"))
    run = tmp_path / "run"
    args = ["train", "--epochs", "2", "--embedding-dim", "8", "--num-layers", "1", "--batch-size", "8192"]
    assert main([*args, "--output", str(run), "--no-progress", "--device", "cpu"]) == 0
    summary = json.loads((run / "metrics.json").read_text())
    cut = json.dumps({k: summary[k] for k in ("test", "epochs", "history")})
    (run / "metrics.json").write_text(cut)
    capsys.readouterr()
    assert main(["train", "--output", str(run), "--resume", "--epochs", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "nothing to resume in" in err and "it has trained 2 of 1 epochs" in err
    assert (run / "metrics.json").read_text() == cut


def test_resume_of_a_static_mask_refuses_other_epochs(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DSLGRAPH_HOME", str(tmp_path / "data"))
    out = str(tmp_path / "run")
    args = ["train", "--epochs", "1", "--embedding-dim", "8", "--num-layers", "1", "--batch-size", "8192"]
    assert main([*args, "--sparsity", "0.5", "--static-mask", "--output", out, "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["train", "--output", out, "--resume", "--epochs", "2"]) == 2
    assert "last.pt with other epochs (1, now 2): a static mask's run" in capsys.readouterr().err
    # nor does its finished run advise a larger --epochs
    assert main(["train", "--output", out, "--resume"]) == 2
    assert "trained 1 of 1 epochs (a --static-mask run takes no other --epochs)" in capsys.readouterr().err


@pytest.mark.parametrize("model", ["lightgcn", "ultragcn", "neumf"])
def test_mask_init_degree_gives_each_table_its_rows_degrees(model, tmp_path, monkeypatch):
    monkeypatch.setenv("DSLGRAPH_HOME", str(tmp_path / "data"))
    settings = validate(
        {"model": model, "sparsity": 0.8, "mask_init": "degree", "embedding_dim": 8, "epochs": 1}
    )
    data = load_data(settings)
    built, dsl = build_model(settings, data, train_config(settings))
    degrees = table_row_degrees(built, data)
    tables = [target for target in dsl.targets if isinstance(getattr(target, "table", None), SparseEmbedding)]
    assert tables and all(target.name in degrees for target in tables)  # under the names DSL gives them
    for target in tables:
        table, degree = target.table, degrees[target.name]
        width = torch.bincount(table.positions // table.embedding_dim, minlength=table.num_embeddings)
        assert width[degree.argmax()] == width.max() and width[degree.argmin()] == width.min()


@pytest.mark.parametrize("stop", [["--stop-after-epoch", "1"], ["--max-seconds", "1e-9"]])
def test_a_run_stopped_short_without_output_says_it_cannot_resume(tmp_path, caplog, monkeypatch, stop):
    # the log told a run without --output, which saved nothing, to resume with --resume
    monkeypatch.setenv("DSLGRAPH_HOME", str(tmp_path / "data"))
    caplog.set_level(logging.INFO)
    args = ["train", "--epochs", "2", "--embedding-dim", "8", "--num-layers", "1", "--batch-size", "8192"]
    assert main([*args, *stop, "--no-progress"]) == 0
    assert f"{stop[0]} stops the run with nothing saved to resume from: pass --output" in caplog.text
    assert "no output_dir (CLI: --output) holds a checkpoint, so it cannot resume" in caplog.text
    assert "--resume" not in caplog.text
    caplog.clear()
    assert main([*args, *stop, "--output", str(tmp_path / "run"), "--no-progress"]) == 0
    assert "nothing saved" not in caplog.text and "(CLI: --resume)" in caplog.text


def test_dsl_settings_without_sparsity_are_named_in_a_warning(tmp_path, caplog, monkeypatch):
    monkeypatch.setenv("DSLGRAPH_HOME", str(tmp_path / "data"))
    args = ["train", "--epochs", "1", "--embedding-dim", "8", "--num-layers", "1", "--batch-size", "8192"]
    assert main([*args, "--targets", "embedding", "--backend", "masked", "--no-progress"]) == 0
    assert "targets, backend only act(s) under DSL; without --sparsity the model is dense" in caplog.text
    caplog.clear()  # a model's own DSL defaults (CDAE's update interval of 100) are not the user's settings
    cdae = ["--model", "cdae", "--option", "hidden_channels=8", "--output", str(tmp_path / "cdae")]
    assert main(["train", "--epochs", "1", "--batch-size", "8192", *cdae, "--no-progress"]) == 0
    assert "only act(s) under DSL" not in caplog.text
    # nor are an example script's (lightgcn_lastfm.py's ΔT = 50 for --sparsity to use)
    script = ["train", "--update-interval", "50", "--output", str(tmp_path / "script")]
    assert run_example(script, None, [*args[1:], "--no-progress"]) == 0
    assert "only act(s) under DSL" not in caplog.text
    assert main([*args, "--update-interval", "50", "--no-progress"]) == 0
    assert "update_interval only act(s) under DSL" in caplog.text


def test_settings_that_do_not_act_in_a_run_are_named_in_a_warning(caplog):
    def warned(**values) -> str:
        caplog.clear()
        cli_module._warn_settings_unused(validate(values), {})
        return caplog.text

    static = {"sparsity": 0.5, "static_mask": True}
    assert "update_interval, growth only act(s) when DSL changes the mask" in warned(
        **static, update_interval=7, growth="random"
    )
    assert "only act(s)" not in warned(**static, mask_init="degree")  # the initial mask's settings act
    assert "lr_min only acts under --lr-schedule cosine" in warned(lr_min=0.0)
    assert "lr_min" not in warned(lr_min=0.0, lr_schedule="cosine")
    assert "sampling only acts on models trained on (user, item) pairs, not cdae" in warned(
        model="cdae", sampling="user"
    )
    assert warned(model="cdae") == warned(sampling="user") == ""
    # taken without a word before: UltraGCN's and Mult-VAE's losses have no term reg_weight weighs, and
    # Xavier's init no std
    assert (
        "reg_weight only acts on models whose loss has a term it weighs, not ultragcn (its L2 weight: "
        "--option gamma=VALUE)" in warned(model="ultragcn", reg_weight=1e-3)
    )
    assert "reg_weight only acts on models whose loss has a term it weighs, not multvae\n" in warned(
        model="multvae", reg_weight=1e-3
    )
    assert warned(model="multvae") == warned(model="ultragcn", dataset="gowalla") == ""
    assert warned(reg_weight=0.1) == ""
    assert "init_std only acts under --init normal" in warned(init="xavier", init_std=0.2)
    assert warned(init="xavier") == warned(init_std=0.2) == ""


def test_memory_line_names_index_caches_only_where_sparse_tensors_hold_some(tmp_path, caplog, monkeypatch):
    monkeypatch.setenv("DSLGRAPH_HOME", str(tmp_path / "data"))
    caplog.set_level("INFO")
    args = ["train", "--epochs", "1", "--batch-size", "8192", "--no-progress", "--device", "cpu"]
    assert main([*args, "--embedding-dim", "8", "--output", str(tmp_path / "dense")]) == 0
    assert "parameters + optimizer state" in caplog.text and "MB;" not in caplog.text
    caplog.clear()  # CDAE propagates no graph: its sparse encoder's caches are row layouts, not plans
    cdae = ["--model", "cdae", "--option", "hidden_channels=8", "--sparsity", "0.5"]
    assert main([*args, *cdae, "--output", str(tmp_path / "cdae")]) == 0
    assert "index caches of sparse tensors" in caplog.text and "propagation plans" not in caplog.text


def test_progress_bars_stay_out_of_a_stderr_that_is_not_a_terminal(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DSLGRAPH_HOME", str(tmp_path / "data"))
    args = ["train", "--epochs", "1", "--embedding-dim", "8", "--batch-size", "8192", "--device", "cpu"]
    assert main([*args, "--output", str(tmp_path / "run")]) == 0
    assert "it/s" not in capsys.readouterr().err


def test_an_abbreviated_flag_is_refused(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--epoch", "2"])  # argparse would take it for --epochs
    assert "unrecognized arguments: --epoch" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, level",
    [
        (["--log-level", "DEBUG", "datasets"], "DEBUG"),
        (["datasets", "--log-level", "ERROR"], "ERROR"),  # where an example script's flags go
        (["--log-level", "DEBUG", "train", "--log-level", "WARNING"], "WARNING"),
        (["eval", "best.pt"], "INFO"),
    ],
)
def test_log_level_is_taken_before_or_after_the_subcommand(argv, level):
    assert build_parser().parse_args(argv).log_level == level


def test_split_seed_holds_the_split_while_seed_changes(tmp_path):
    raw = tmp_path / "ml-100k" / "raw"
    raw.mkdir(parents=True)
    rows = (f"{u}\t{i}\t5\t{u * 100 + i}\n" for u in range(1, 9) for i in range(1, 13))
    (raw / "u.data").write_text("".join(rows))

    def test_pairs(**seeds) -> set:
        data = load_data(validate({"dataset": "ml-100k", "root": str(tmp_path)} | seeds))
        return set(map(tuple, data["user", "to", "item"].edge_label_index.t().tolist()))

    assert test_pairs(seed=1) != test_pairs(seed=2)  # a split drawn with the run's seed
    assert test_pairs(seed=1, split_seed=5) == test_pairs(seed=2, split_seed=5) == test_pairs(seed=5)


def test_datasets_splits_a_named_dataset_as_train_does(tmp_path, capsys):
    """The statistics of train's split (its default seed), from its processed files: seed 0 made a second
    split, and a second processed folder, beside the one train reads."""
    raw = tmp_path / "ml-100k" / "raw"
    raw.mkdir(parents=True)
    rows = (f"{u}\t{i}\t5\t{u * 100 + i}\n" for u in range(1, 9) for i in range(1, 13))
    (raw / "u.data").write_text("".join(rows))
    assert main(["datasets", "ml-100k", "--root", str(tmp_path)]) == 0
    (processed,) = (tmp_path / "ml-100k" / "processed").iterdir()
    seed = FIELDS["seed"].default
    assert processed.name.endswith(f"_seed{seed}")
    data = load_data(validate({"dataset": "ml-100k", "root": str(tmp_path)}))
    assert [*(tmp_path / "ml-100k" / "processed").iterdir()] == [processed]  # train's own split
    row = capsys.readouterr().out.splitlines()[1].split()
    assert row[:4] == ["ml-100k", "8", "12", str(data[EDGE].edge_index.size(1))]


def test_a_dataset_class_at_the_cli_s_default_seed_gives_train_s_split_as_the_readme_says(tmp_path):
    """README: a dataset class draws its splits from seed 0 by default, and seed=2020 gives train's."""
    raw = tmp_path / "ml-100k" / "raw"
    raw.mkdir(parents=True)
    rows = (f"{u}\t{i}\t5\t{u * 100 + i}\n" for u in range(1, 21) for i in range(1, 13))
    (raw / "u.data").write_text("".join(rows))
    trained = load_data(validate({"dataset": "ml-100k", "root": str(tmp_path), "val_ratio": 0.2}))
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    assert f"`seed={FIELDS['seed'].default}` gives the split of a `dslgraph train` run" in readme
    for seed, same in ((FIELDS["seed"].default, True), (0, False)):
        data = dslgraph.data.MovieLens100K(tmp_path, val_ratio=0.2, seed=seed, log=False)[0]
        for key in ("edge_label_index", "val_edge_label_index"):
            assert torch.equal(data[EDGE][key], trained[EDGE][key]) == same, (seed, key)


def test_a_relative_root_in_a_config_file_is_the_file_folder_s(tmp_path, monkeypatch):
    from dslgraph.config import load_config_file

    (tmp_path / "exp").mkdir()
    config = tmp_path / "exp" / "c.json"
    config.write_text('{"root": "data", "epochs": 2}')
    monkeypatch.chdir(tmp_path)
    assert load_config_file("exp/c.json") == {"root": "exp/data", "epochs": 2}
    config.write_text('{"data_file": "mine.csv"}')
    assert load_config_file("exp/c.json") == {"data_file": "exp/mine.csv"}


def test_datasets_lists_lastfm(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DSLGRAPH_HOME", str(tmp_path))
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    assert "lastfm" in out and "1892" in out and "42135" in out


def test_datasets_gives_a_data_file_s_statistics(tmp_path, capsys):
    write_interactions(tmp_path / "mine.tsv", np.arange(40), np.arange(90))
    read = ["--data-option", 'sep="\\t"', "--data-option", "user_col=uid", "--data-option", "item_col=movie"]
    assert main(["datasets", "--data-file", str(tmp_path / "mine.tsv"), *read]) == 0
    header, row, footer = capsys.readouterr().out.splitlines()
    data = load_data(validate({"data_file": str(tmp_path / "mine.tsv"), "data_options": {
        "sep": "\t", "user_col": "uid", "item_col": "movie"}}))  # fmt: skip
    stats = [data["user"].num_nodes, data["item"].num_nodes, data[EDGE].edge_index.size(1)]
    assert row.split()[:4] == ["mine.tsv", *map(str, stats)] and footer.startswith("(file: ")
    assert main(["datasets", "lastfm", "--data-file", str(tmp_path / "mine.tsv")]) == 2
    assert "--data-file is listed alone" in capsys.readouterr().err
    assert main(["datasets", "--data-file", str(tmp_path / "mine.tsv"), *read, "--root", "data"]) == 2
    assert "--root names where named datasets are" in capsys.readouterr().err  # was ignored
    assert main(["datasets", "--data-option", "sep=;"]) == 2
    assert "data_options set how data_file is read, and there is none" in capsys.readouterr().err


def test_model_arguments_and_presets_are_validated():
    with pytest.raises(ConfigError, match="num_layers is not an argument of model 'neumf'"):
        validate({"model": "neumf", "num_layers": 3})
    with pytest.raises(ConfigError, match="w1 of model 'ultragcn' must be a float"):
        validate({"model": "ultragcn", "options": {"w1": "small"}})
    assert validate({"model": "ultragcn", "options": {"w1": 1}})["options"]["w1"] == 1.0
    gowalla = validate({"model": "ultragcn", "dataset": "gowalla"})
    assert (gowalla["lr"], gowalla["batch_size"]) == (1e-4, 512)
    assert gowalla["options"]["num_negatives"] == 1500 and gowalla["options"]["std"] == 1e-4
    assert (
        validate({"model": "ultragcn", "dataset": "gowalla", "init_std": 0.1})["options"].get("std") is None
    )
    assert validate({"model": "ultragcn", "dataset": "gowalla", "lr": 0.5})["lr"] == 0.5
    neumf = validate({"model": "neumf"})
    assert (neumf["protocol"], neumf["monitor"]) == ("leave-one-out", "hr@20")
    with pytest.raises(ConfigError, match="monitor must be '<hr|ndcg>@K'"):
        validate({"model": "neumf", "monitor": "recall@20"})
    with pytest.raises(ConfigError, match="protocol must be one of"):
        validate({"protocol": "k-fold"})


def test_model_argument_given_in_options_is_the_top_level_setting():
    # one place for each model argument: options.embedding_dim is embedding_dim, and saying it twice
    # differently fails instead of one silently winning
    settings = validate({"options": {"embedding_dim": 32}})
    assert settings["embedding_dim"] == 32 and "embedding_dim" not in settings["options"]
    preset = validate({"model": "ultragcn", "dataset": "gowalla", "options": {"std": 0.1}})
    assert (preset["init_std"], preset["options"].get("std")) == (0.1, None)
    assert validate({"embedding_dim": 32, "options": {"embedding_dim": 32}})["embedding_dim"] == 32
    with pytest.raises(ConfigError, match=r"embedding_dim is given twice, as embedding_dim=16 and as "):
        validate({"embedding_dim": 16, "options": {"embedding_dim": 32}})
    with pytest.raises(ConfigError, match=r"options.std must be a float in \(0, inf\), got -1.0"):
        validate({"options": {"std": -1.0}})


@pytest.mark.slow
@pytest.mark.parametrize(
    "model, extra",
    [
        ("ultragcn", ["--option", "num_negatives=20", "--embedding-dim", "16"]),
        ("neumf", ["--batch-size", "4096"]),
        ("convncf", ["--embedding-dim", "4"]),
        ("cdae", []),
        ("multvae", ["--batch-size", "256"]),
    ],
)
def test_every_model_trains_sparse_and_evaluates(model, extra, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DSLGRAPH_HOME", str(tmp_path / "data"))
    out = tmp_path / model
    args = ["train", "--model", model, "--epochs", "1", "--sparsity", "0.5", "--output", str(out), *extra]
    assert main([*args, "--update-interval", "5", "--no-progress", "--device", "cpu"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    primary = "hr@20" if metrics["protocol"] == "sampled" else "recall@20"
    assert metrics["test"][primary] > 0
    assert metrics["sparsity"] == pytest.approx(0.5, abs=1e-3)
    assert metrics["dense_macs"]["train_iteration"] >= metrics["ideal_macs"]["train_iteration"]
    # genuinely sparse tables and linear layers save memory even at 50% (ConvNCF's masked convolutions
    # are a small share of its bytes)
    assert metrics["bytes_ratio"] < 1
    capsys.readouterr()
    assert main(["eval", str(out / "best.pt"), "--device", "cpu"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["test"][primary] == pytest.approx(metrics["test"][primary])


def test_dataset_that_cannot_be_downloaded_fails_clearly_and_leaves_no_folder(tmp_path, monkeypatch, capsys):
    from urllib.error import URLError

    from dslgraph.data import datasets as datasets_module

    def offline(url: str, folder: str, log: bool = True) -> str:
        raise URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(datasets_module, "download_url", offline)
    assert main(["train", "--dataset", "gowalla", "--root", str(tmp_path), "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dslgraph train: error: Gowalla: train.txt, test.txt not in ")
    assert "Traceback" not in err
    # the failed attempt left no empty gowalla/raw/ for `dslgraph datasets` to list as on disk
    assert main(["datasets", "--root", str(tmp_path)]) == 0
    assert "gowalla" not in capsys.readouterr().out
    # nor the folders above a root that did not exist (a config file's relative root among them)
    (tmp_path / "exp").mkdir()
    (tmp_path / "exp" / "c.json").write_text('{"root": "a/b", "dataset": "gowalla", "epochs": 1}')
    assert main(["train", "--config", str(tmp_path / "exp" / "c.json")]) == 2
    assert sorted(p.name for p in (tmp_path / "exp").iterdir()) == ["c.json"]


def _train_helps() -> dict[str, str]:
    train = build_parser()._subparsers._group_actions[0].choices["train"]
    return {action.dest: action.help or "" for action in train._actions}


def test_train_help_says_what_text_settings_mean():
    from dslgraph.config import FIELDS

    helps = _train_helps()
    assert "DSLGRAPH_HOME" in helps["root"] and "inf" not in helps["root"]
    assert "inf" not in helps["monitor"]
    assert "0: no limit" in helps["max_seconds"]
    assert "uniform user" in helps["sampling"]  # README: "`--sampling` says how the positives are drawn"
    datasets = build_parser()._subparsers._group_actions[0].choices["datasets"]
    (root,) = [action for action in datasets._actions if action.dest == "root"]
    assert root.help and root.help in helps["root"]  # as train's: the folder and its default
    assert FIELDS["root"].describe() == "a str"
    with pytest.raises(ConfigError, match=r"root must be a str, got 5$"):
        validate({"root": 5})


def test_every_flag_of_every_command_has_a_help_text_and_no_bare_type():
    """--sparsity, --rho0, --t-end, --backend, --log-level and others said only their type and range; a
    path said 'a str: ...'."""
    commands = build_parser()._subparsers._group_actions[0].choices
    for name, command in commands.items():
        for action in command._actions:
            assert action.help and not action.help.startswith("a str"), (name, action.dest, action.help)
            assert "(default" in action.help or action.dest != "device", (name, action.help)
    assert "0.8, not 80" in _train_helps()["sparsity"]
    rho0 = FIELDS["rho0"]  # what it takes and its default, then what it is
    assert _train_helps()["rho0"] == f"{rho0.describe()} (default 0.5): {rho0.help}"


def test_every_command_s_help_is_ascii_for_any_console_encoding():
    """Windows writes a redirected or piped stdout in the locale's code page (cp1252, ...): `dslgraph train
    --help > help.txt` failed with a UnicodeEncodeError on the help of --update-interval (its Delta T),
    --rho0 (rho) and --distribution (Erdos-Renyi)."""
    parser = build_parser()
    for name, command in {"dslgraph": parser, **parser.commands}.items():
        text = command.format_help()
        assert text.isascii(), (name, sorted({char for char in text if not char.isascii()}))


@pytest.mark.parametrize("command", [["train", "--epochs", "1"], ["eval", "best.pt"]])
def test_device_mps_is_refused_saying_why_and_what_to_use(command, capsys):
    """It said only "device must be one of ['auto', 'cpu', 'cuda', 'cuda:N'], got 'mps'"."""
    from dslgraph.config import OTHER_DEVICES

    try:
        code = main([*command, "--device", "mps"])
    except SystemExit as exited:  # eval's --device is argparse's type, which exits
        code = exited.code
    assert code == 2
    assert f"got 'mps' ({OTHER_DEVICES})" in " ".join(capsys.readouterr().err.split())


def test_train_help_does_not_give_lightgcns_defaults_as_every_models():
    # `python examples/cdae_ml1m.py --help` showed "--batch-size (default 2048)" for a run at 128
    helps = _train_helps()
    for name in ("epochs", "batch_size", "lr", "protocol", "update_interval"):
        assert "docs/models.md" in helps[name], name
    assert "docs/models.md" not in helps["sparsity"] and "docs/models.md" not in helps["seed"]


@pytest.mark.slow
def test_cli_output_is_free_of_torch_beta_notes(tmp_path, monkeypatch):
    monkeypatch.setenv("DSLGRAPH_HOME", str(tmp_path / "data"))
    args = ["train", "--epochs", "1", "--embedding-dim", "8", "--batch-size", "8192", "--sparsity", "0.5"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main([*args, "--no-progress", "--device", "cpu", "--output", str(tmp_path / "run")]) == 0
    notes = ("Sparse CSR tensor support is in beta state", "Sparse invariant checks")
    assert not [w for w in caught if str(w.message).startswith(notes)]


@pytest.mark.slow
def test_checkpoint_of_a_relative_root_evaluates_from_another_folder(tmp_path, monkeypatch, capsys):
    (tmp_path / "project").mkdir()
    monkeypatch.chdir(tmp_path / "project")
    args = ["train", "--root", "data", "--epochs", "1", "--embedding-dim", "8", "--batch-size", "8192"]
    assert main([*args, "--no-progress", "--device", "cpu", "--output", "run"]) == 0
    monkeypatch.chdir(tmp_path)
    assert main(["eval", "project/run/best.pt", "--device", "cpu"]) == 0
    assert not (tmp_path / "data").exists()
    capsys.readouterr()


def test_a_checkpoint_of_changed_data_is_refused_by_eval_recommend_and_resume(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DSLGRAPH_HOME", str(tmp_path / "data"))
    out = str(tmp_path / "run")
    args = ["train", "--epochs", "1", "--embedding-dim", "8", "--num-layers", "1", "--batch-size", "8192"]
    assert main([*args, "--output", out, "--no-progress", "--device", "cpu"]) == 0
    changed = tmp_path / "changed" / "lastfm" / "raw"
    shutil.copytree(tmp_path / "data" / "lastfm" / "raw", changed)
    test = changed / "test1.txt"
    test.write_text("".join(test.read_text().splitlines(keepends=True)[:-100]))  # the same users and items
    capsys.readouterr()
    root = ["--root", str(tmp_path / "changed"), "--device", "cpu"]
    assert main(["eval", f"{out}/best.pt", *root]) == 2
    assert "best.pt was trained on other interactions than the dataset now holds" in capsys.readouterr().err
    assert main(["recommend", f"{out}/best.pt", "--users", "0", *root]) == 2
    assert main(["train", "--output", out, "--resume", "--epochs", "2", *root]) == 2
    assert "last.pt was trained on other interactions" in capsys.readouterr().err
    assert main(["eval", f"{out}/best.pt", "--device", "cpu"]) == 0  # the data it was trained on
    state = torch.load(f"{out}/best.pt", weights_only=False)
    assert "data_fingerprint" not in state["metadata"]  # one copy: the trainer's
    # checkpoints of versions whose trainer recorded no fingerprint kept the CLI's in their metadata
    state["metadata"]["data_fingerprint"] = state.pop("data_fingerprint")
    torch.save(state, tmp_path / "older.pt")
    assert main(["eval", str(tmp_path / "older.pt"), *root]) == 2
    assert "older.pt was trained on other interactions" in capsys.readouterr().err


def _raise_sigint():
    raise KeyboardInterrupt


STOPS = [
    (_raise_sigint, "interrupted", 130),
    # a batch scheduler's SIGTERM ended the process without a word (status -15); os.kill on Windows ends the
    # process unhandled, raise_signal does not
    (lambda: signal.raise_signal(signal.SIGTERM), "terminated", 143),
]


@pytest.mark.parametrize(("stop", "said", "status"), STOPS, ids=["ctrl-c", "sigterm"])
def test_a_stopped_run_exits_with_a_line_that_says_how_to_resume(
    tmp_path, capsys, monkeypatch, stop, said, status
):
    """Ctrl-C and SIGTERM: the run names the last.pt to resume from and exits 128 + the signal's number, as a
    shell reports it; the SIGTERM handler before the command is back after it."""
    monkeypatch.setenv("DSLGRAPH_HOME", str(tmp_path / "data"))
    epochs = []
    train_epoch = Trainer.train_epoch

    def stopped_in_epoch_2(self):
        epochs.append(self.epoch)
        if len(epochs) == 2:
            stop()
        return train_epoch(self)

    monkeypatch.setattr(Trainer, "train_epoch", stopped_in_epoch_2)
    out = str(tmp_path / "run")
    args = ["train", "--epochs", "3", "--eval-every", "1", "--embedding-dim", "8", "--batch-size", "8192"]
    assert main([*args, "--output", out, "--no-progress", "--device", "cpu"]) == status
    assert f"{said}; {out}/last.pt holds epoch 1: continue with --output {out} --resume" in (
        capsys.readouterr().err
    )
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL and len(epochs) == 2
    assert main(["train", "--output", out, "--resume", "--no-progress"]) == 0


@pytest.mark.parametrize(("stop", "said", "status"), STOPS, ids=["ctrl-c", "sigterm"])
@pytest.mark.parametrize("when", ["unwinding", "saying"])
def test_a_second_interrupt_while_a_run_stops_ends_it_as_the_first_does(
    tmp_path, capsys, monkeypatch, stop, said, status, when
):
    """Ctrl-C pressed twice: the second one, while the command said how to resume the run (reading its
    last.pt), printed a traceback; one while the first unwound the run (letting its output folder go) exited
    130 where a SIGTERM had stopped it. Its checkpoints stay whole: written then renamed."""
    monkeypatch.setenv("DSLGRAPH_HOME", str(tmp_path / "data"))
    out = str(tmp_path / "run")
    train_epoch, iterdir, resume_hint = Trainer.train_epoch, Path.iterdir, cli_module._resume_hint

    def stopped_in_epoch_2(self):
        if self.epoch == 1:
            stop()
        return train_epoch(self)

    def interrupted_unwinding(folder):  # as the output folder it made is looked into, to remove it if empty
        if folder == Path(out):  # a Ctrl-C the process takes as it runs on: raised where it is
            raise KeyboardInterrupt
        return iterdir(folder)

    def interrupted_saying(args):  # a real one: ignored from here on
        signal.raise_signal(signal.SIGINT)
        signal.raise_signal(signal.SIGTERM)
        return resume_hint(args)

    monkeypatch.setattr(Trainer, "train_epoch", stopped_in_epoch_2)
    if when == "unwinding":
        monkeypatch.setattr(Path, "iterdir", interrupted_unwinding)
    else:
        monkeypatch.setattr(cli_module, "_resume_hint", interrupted_saying)
    args = ["train", "--epochs", "3", "--eval-every", "1", "--embedding-dim", "8", "--batch-size", "8192"]
    try:
        code = main([*args, "--output", out, "--no-progress", "--device", "cpu"])
    except KeyboardInterrupt:  # to fail this test only, not to end the session as pytest takes one
        pytest.fail("the second interrupt escaped main()")
    assert code == status
    last_line = capsys.readouterr().err.strip().splitlines()[-1]
    assert last_line.endswith(f"{said}; {out}/last.pt holds epoch 1: continue with --output {out} --resume")
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    monkeypatch.undo()
    assert main(["train", "--output", out, "--resume", "--no-progress"]) == 0


def _stopped_command_script(out: Path, host_exit: str, call: str) -> str:
    """A Python process whose exit handler ``host_exit`` (registered before the command, so run after
    dslgraph's) runs after ``call``, a ``dslgraph train`` into ``out`` (its command line's flags) that Ctrl-C
    stops at once."""
    return f"""
import atexit, signal, sys
import dslgraph.cli as cli
def at_exit():
    {host_exit}
atexit.register(at_exit)
def run_training(*args, **kwargs):
    raise KeyboardInterrupt
cli.run_training = run_training
sys.argv = ["script", "--output", {str(out)!r}, "--device", "cpu"]
{call}
"""


@pytest.mark.parametrize("second", ["SIGINT", "SIGTERM"])
@pytest.mark.parametrize(
    "call",
    ["sys.argv.insert(1, 'train'); sys.exit(cli.main())", "sys.exit(cli.run_example(['train'], None))"],
)
def test_a_second_ctrl_c_as_the_process_exits_prints_no_traceback(tmp_path, call, second):
    """torch's exit handlers ran into the second Ctrl-C of a user pressing it twice: "Exception ignored in
    atexit callback ... KeyboardInterrupt" after the line saying how to resume. Pressed there (by an exit
    handler that runs after dslgraph's, registered before the command), it is ignored where the command is
    the process's own: dslgraph's (or python -m dslgraph's) main(), an example script's run_example(); so is
    a SIGTERM there (a scheduler's after its Ctrl-C), which ended the process unhandled."""
    script = _stopped_command_script(tmp_path / "run", f"signal.raise_signal(signal.{second})", call)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 130
    said = f"dslgraph train: interrupted; {tmp_path / 'run'}/last.pt was not written yet, so there is nothing"
    assert done.stderr.strip().splitlines() == [f"{said} to resume"]


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM raised in-process ends no Windows process")
def test_a_process_that_calls_main_and_goes_on_keeps_its_signals_through_its_exit(tmp_path):
    """A command stopped by Ctrl-C in a process that goes on after it (a notebook, a service, a test
    session) left SIGINT and SIGTERM ignored through that process's exit handlers, however much later it
    ended: one hanging there could then be stopped by SIGKILL alone."""
    host_exit = "signal.raise_signal(signal.SIGTERM); print('survived SIGTERM', flush=True)"
    call = "print(cli.main(['train', *sys.argv[1:]]), flush=True)  # the host goes on"
    script = _stopped_command_script(tmp_path / "run", host_exit, call)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path)
    assert done.stdout.split() == ["130"] and done.returncode == -signal.SIGTERM


def test_the_first_of_several_stops_says_how_the_command_ended(tmp_path, monkeypatch, capsys):
    """A SIGTERM, then Ctrl-C pressed twice as the run unwound, each raised in place of the one before: the
    command ends as the SIGTERM alone ends it, however many came after it."""

    def stopped_thrice(*args, **kwargs):
        try:
            raise cli_module.Terminated()
        finally:
            try:
                raise KeyboardInterrupt
            finally:
                raise KeyboardInterrupt

    monkeypatch.setattr(cli_module, "run_training", stopped_thrice)
    assert main(["train", "--output", str(tmp_path / "run"), "--device", "cpu"]) == 143
    assert "dslgraph train: terminated; " in capsys.readouterr().err


def test_a_stop_handler_set_outside_python_is_left_as_it_is(monkeypatch):
    # signal.getsignal gives None for one a program embedding Python set, which signal.signal cannot put back
    getsignal = signal.getsignal
    monkeypatch.setattr(
        signal, "getsignal", lambda number: None if number == signal.SIGTERM else getsignal(number)
    )
    with cli_module._interrupts_ignored(at_exit=False):
        assert getsignal(signal.SIGINT) is signal.SIG_IGN and getsignal(signal.SIGTERM) is signal.SIG_DFL
    assert getsignal(signal.SIGINT) is signal.default_int_handler
    assert getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_ctrl_c_after_a_checkpoint_between_evaluations_resumes_from_it_to_the_whole_run(
    tmp_path, capsys, monkeypatch
):
    # evaluated at epoch 3 only, a run interrupted in epoch 3 had written no last.pt: nothing to resume
    monkeypatch.setenv("DSLGRAPH_HOME", str(tmp_path / "data"))
    train_epoch = Trainer.train_epoch

    def interrupted_in_epoch_3(self):
        if self.epoch == 2:
            raise KeyboardInterrupt
        return train_epoch(self)

    args = ["train", "--epochs", "3", "--eval-every", "3", "--embedding-dim", "8", "--batch-size", "4096"]
    args += ["--sparsity", "0.5", "--update-interval", "1", "--no-progress", "--device", "cpu"]
    whole, out = tmp_path / "whole", tmp_path / "run"
    assert main([*args, "--output", str(whole)]) == 0
    with monkeypatch.context() as patched:
        patched.setattr(Trainer, "train_epoch", interrupted_in_epoch_3)
        assert main([*args, "--output", str(out), "--checkpoint-every", "2"]) == 130
    assert f"interrupted; {out}/last.pt holds epoch 2: continue with --output {out} --resume" in (
        capsys.readouterr().err
    )
    assert sorted(path.name for path in out.glob("*.pt")) == ["last.pt"]  # no evaluation yet: no best
    # a resumed run may change how often it checkpoints, which changes none of its numbers
    assert main(["train", "--output", str(out), "--resume", "--checkpoint-every", "1", "--no-progress"]) == 0
    assert _results(_history(out)) == _results(_history(whole))
    assert json.loads((out / "metrics.json").read_text())["settings"]["checkpoint_every"] == 1


def test_checkpoint_every_is_checked_and_said_to_write_nothing_without_output(
    tmp_path, capsys, caplog, monkeypatch
):
    assert main(["train", "--checkpoint-every", "-1"]) == 2
    assert "checkpoint_every must be an int in [0, inf), got -1" in capsys.readouterr().err
    given = tmp_path / "c.json"
    given.write_text('{"checkpoint_every": 2.5}')
    assert main(["train", "--config", str(given)]) == 2
    assert "checkpoint_every must be an int in [0, inf), got 2.5" in capsys.readouterr().err
    args = ["train", "--epochs", "1", "--embedding-dim", "8", "--num-layers", "1", "--batch-size", "8192"]
    monkeypatch.setenv("DSLGRAPH_HOME", str(tmp_path / "data"))
    assert main([*args, "--checkpoint-every", "1", "--no-progress", "--device", "cpu"]) == 0
    assert "--checkpoint-every writes no checkpoint without --output: pass --output" in caplog.text


def test_a_disk_error_while_saving_fails_naming_it_and_how_to_resume(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DSLGRAPH_HOME", str(tmp_path / "data"))
    saves = []
    save = torch.save

    def full_disk_at_the_second_evaluation(obj, f, *args, **kwargs):
        if "last.pt" in str(f) or "best.pt" in str(f):  # a checkpoint (through its temporary file)
            saves.append(f)
            if len(saves) > 2:  # epoch 1 wrote best.pt and last.pt
                raise OSError(28, "No space left on device", str(f))
        return save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", full_disk_at_the_second_evaluation)
    out = str(tmp_path / "run")
    args = ["train", "--epochs", "2", "--eval-every", "1", "--embedding-dim", "8", "--batch-size", "8192"]
    assert main([*args, "--output", out, "--no-progress", "--device", "cpu"]) == 2  # a traceback before
    err = capsys.readouterr().err
    assert "dslgraph train: error: [Errno 28] No space left on device" in err
    assert f"{out}/last.pt holds epoch 1: continue with --output {out} --resume" in err


def test_unusable_output_folder_config_file_or_recorded_settings_fail_naming_them(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    assert main(["train", "--output", str(tmp_path / "file")]) == 2  # before any data is loaded
    assert "output folder" in capsys.readouterr().err
    config = tmp_path / "c.json"
    config.write_bytes(b"\xff\xfe{}")
    assert main(["train", "--config", str(config)]) == 2
    assert f"config file {config} could not be read as JSON text" in capsys.readouterr().err
    assert main(["train", "--config", str(tmp_path)]) == 2
    assert f"config file {tmp_path} could not be read" in capsys.readouterr().err
    state = {"model": {}, "optimizer": {}, "epoch": 1, "config": {}, "metadata": {"settings": {"newer": 1}}}
    save_checkpoint(state, tmp_path / "best.pt")
    assert main(["eval", str(tmp_path / "best.pt")]) == 2
    assert (
        "best.pt records settings this version of dslgraph does not take: unknown setting(s) ['newer']"
        in (capsys.readouterr().err)
    )
    # a checkpoint of a Trainer run from Python: its metadata is the user's, without the CLI's settings
    save_checkpoint(
        {"model": {}, "optimizer": {}, "epoch": 1, "config": {}, "metadata": {}}, tmp_path / "own.pt"
    )
    assert main(["eval", str(tmp_path / "own.pt")]) == 2
    assert "own.pt does not record its settings; it was not written by the CLI" in capsys.readouterr().err


def test_an_output_folder_name_the_system_refuses_is_named_without_a_traceback(tmp_path, capsys):
    out = tmp_path / (
        "x" * 300
    )  # OSError from Path.exists(), raised again by the handler naming how to resume
    assert main(["train", "--output", str(out)]) == 2
    assert "File name too long" in capsys.readouterr().err
    assert main(["eval", str(out / "best.pt")]) == 2
    assert "best.pt could not be read (File name too long)" in capsys.readouterr().err


def test_a_run_that_fails_before_writing_leaves_no_output_folder_behind(tmp_path, capsys):
    out = tmp_path / "runs" / "new"
    assert main(["train", "--output", str(out), "--resume"]) == 2
    err = capsys.readouterr().err
    assert f"checkpoint {out}/last.pt does not exist" in err
    assert "--overwrite" not in err  # the advice for a damaged last.pt: here there is no run to replace
    assert main(["train", "--output", str(out), "--epochs", "0"]) == 2
    assert list(tmp_path.iterdir()) == []  # it left runs/new/.lock, made for a run that never started
    (tmp_path / "mine").mkdir()
    assert main(["train", "--output", str(tmp_path / "mine"), "--resume"]) == 2
    assert (tmp_path / "mine").is_dir()  # a folder it did not make stays


def test_cuda_asked_for_without_one_fails_before_the_data_is_loaded(tmp_path, capsys, monkeypatch):
    def load_data(settings):
        raise AssertionError("the data was loaded (downloaded, processed) for a run that cannot start")

    monkeypatch.setattr(cli_module, "load_data", load_data)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["train", "--device", "cuda"]) == 2
    assert "device 'cuda' was asked for but torch sees no CUDA device" in capsys.readouterr().err
    state = {"model": {}, "optimizer": {}, "epoch": 1, "config": {}, "metadata": {"settings": validate({})}}
    save_checkpoint(state, tmp_path / "best.pt")
    assert main(["eval", str(tmp_path / "best.pt"), "--device", "cuda"]) == 2
    assert "device 'cuda' was asked for" in capsys.readouterr().err


def test_recommend_warns_about_users_without_training_data(tmp_path, capsys, caplog, monkeypatch):
    monkeypatch.setenv("DSLGRAPH_HOME", str(tmp_path / "data"))
    out = str(tmp_path / "run")
    args = ["train", "--epochs", "1", "--embedding-dim", "8", "--num-layers", "1", "--batch-size", "8192"]
    assert main([*args, "--output", out, "--no-progress", "--device", "cpu"]) == 0
    capsys.readouterr()
    caplog.clear()
    # LastFM's user 107 has test interactions only: its items came from its initial embedding, unannounced
    assert main(["recommend", f"{out}/best.pt", "--users", "107", "0", "-k", "3", "--device", "cpu"]) == 0
    recommended = json.loads(capsys.readouterr().out)
    assert list(recommended) == ["107", "0"] and all(len(items) == 3 for items in recommended.values())
    warned = [record.getMessage() for record in caplog.records if record.levelname == "WARNING"]
    assert warned == ["user(s) 107 have no training interactions: their recommendations are not personal"]


def write_interactions(path, user_ids, item_ids, seed=0):
    """A tab-separated file of 600 interactions of 40 users and 90 items with the given ids."""
    rng = np.random.default_rng(seed)
    users, items = rng.integers(0, 40, 600), rng.integers(0, 90, 600)
    frame = pd.DataFrame({"uid": user_ids[users], "movie": item_ids[items]})
    frame.to_csv(path, sep="\t", index=False)


@pytest.mark.parametrize("numeric", [False, True])
def test_a_data_file_trains_evaluates_and_recommends_by_its_own_ids(numeric, tmp_path, capsys):
    user_ids = np.arange(1000, 1040) if numeric else np.array([f"user-{u:02d}" for u in range(40)])
    item_ids = np.arange(5000, 5090) if numeric else np.array([f"i{i}" for i in range(90)])
    write_interactions(tmp_path / "mine.tsv", user_ids, item_ids)
    out = str(tmp_path / "run")
    read = ["--data-file", str(tmp_path / "mine.tsv"), "--data-option", 'sep="\\t"', "--data-option"]
    read += ["user_col=uid", "--data-option", "item_col=movie"]
    args = ["train", *read, "--epochs", "2", "--embedding-dim", "8", "--sparsity", "0.5", "--device", "cpu"]
    assert main([*args, "--output", out, "--no-progress"]) == 0
    trained = json.loads(capsys.readouterr().out)["test"]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["steps_per_epoch"] == 1  # under 600 training pairs: one batch of 2048 an epoch
    assert main(["eval", f"{out}/best.pt"]) == 0
    assert json.loads(capsys.readouterr().out)["test"] == trained

    given = [str(user_ids[3]), str(user_ids[17])]
    assert main(["recommend", f"{out}/best.pt", "--users", *given, "-k", "5"]) == 0
    recommended = json.loads(capsys.readouterr().out)
    assert list(recommended) == given
    data = load_data(validate({"data_file": str(tmp_path / "mine.tsv"), "data_options": {
        "sep": "\t", "user_col": "uid", "item_col": "movie"}}))  # fmt: skip
    train_items = {(u, i) for u, i in data[EDGE].edge_index.t().tolist()}
    for user, items in recommended.items():
        assert len(items) == 5 and set(items) <= set(item_ids.tolist())  # the file's ids (numbers or text)
        index = data["user"].raw_ids.tolist().index(type(user_ids[0].item())(user))
        item_index = [data["item"].raw_ids.tolist().index(item) for item in items]
        assert not {(index, i) for i in item_index} & train_items  # never a training item of the user

    assert main(["recommend", f"{out}/best.pt", "--users", given[0], "no-such-user"]) == 2
    assert "--users ['no-such-user'] are not user ids of the data file" in capsys.readouterr().err
    (tmp_path / "mine.tsv").rename(tmp_path / "moved.tsv")  # a moved file is named again
    assert main(["eval", f"{out}/best.pt"]) == 2
    assert "mine.tsv does not exist (where a checkpoint's file moved" in capsys.readouterr().err
    assert main(["eval", f"{out}/best.pt", "--data-file", str(tmp_path / "moved.tsv")]) == 0
    resume = ["train", "--output", out, "--resume", "--epochs", "3", "--no-progress"]
    assert main([*resume, "--data-file", str(tmp_path / "moved.tsv")]) == 0


def test_eval_negatives_sets_the_leave_one_out_negatives(tmp_path, capsys):
    write_interactions(tmp_path / "mine.tsv", np.arange(40), np.arange(90))  # too few items for 100 negatives
    out = str(tmp_path / "run")
    args = ["train", "--data-file", str(tmp_path / "mine.tsv"), "--data-option", 'sep="\\t"', "--data-option"]
    args += ["user_col=uid", "--data-option", "item_col=movie", "--model", "neumf", "--epochs", "1"]
    args += ["--embedding-dim", "8", "--device", "cpu", "--no-progress", "--output", out]
    assert main(args) == 2
    assert "lower num_negatives (CLI: --eval-negatives)" in capsys.readouterr().err
    assert main([*args, "--eval-negatives", "20"]) == 0
    settings = validate(json.loads((tmp_path / "run" / "metrics.json").read_text())["settings"])
    assert load_data(settings)[EDGE].test_negatives.size(1) == 20
    assert main(["eval", f"{out}/best.pt"]) == 0  # the recorded setting draws the same negatives again
    with pytest.raises(ConfigError, match="eval_negatives acts under protocol 'leave-one-out' only"):
        validate({"eval_negatives": 20})


def test_a_data_file_goes_with_dataset_file_and_its_read_options(tmp_path, capsys):
    assert validate({"data_file": "mine.csv"})["dataset"] == "file"
    assert validate({"dataset": "file", "data_file": "mine.csv"})["dataset"] == "file"
    for values, match in [
        ({"dataset": "file"}, "dataset 'file' reads data_file and only it does"),
        ({"dataset": "gowalla", "data_file": "mine.csv"}, "got dataset 'gowalla', data_file 'mine.csv'"),
        ({"data_options": {"sep": ";"}}, "data_options set how data_file is read, and there is none"),
        ({"data_file": "x.csv", "data_options": {"delimiter": ";"}}, r"data_options \['delimiter'\] unknown"),
        ({"data_file": "x.csv", "data_options": {"user_column": "u"}}, r"\(did you mean 'user_col'\?\)"),
    ]:
        with pytest.raises(ConfigError, match=match):
            validate(values)
    assert main(["train", "--data-file", str(tmp_path / "none.csv"), "--device", "cpu"]) == 2
    assert f"data file {tmp_path / 'none.csv'} does not exist" in capsys.readouterr().err


def test_a_changed_data_file_is_refused_naming_data_file(tmp_path, capsys):
    path = tmp_path / "mine.tsv"
    write_interactions(path, np.arange(40), np.arange(90))
    out = str(tmp_path / "run")
    args = ["train", "--data-file", str(path), "--data-option", 'sep="\\t"', "--data-option", "user_col=uid"]
    args += ["--data-option", "item_col=movie", "--epochs", "1", "--embedding-dim", "8", "--device", "cpu"]
    assert main([*args, "--output", out, "--no-progress"]) == 0
    with path.open("a") as file:
        file.write("40\t0\n40\t1\n")
    capsys.readouterr()
    assert main(["eval", f"{out}/best.pt", "--device", "cpu"]) == 2
    err = capsys.readouterr().err  # it said "pass --root", which a data file's run does not read
    assert f"than data file {path} now holds" in err
    assert "pass --data-file (dslgraph.load_run's data_file) with the data" in err
    write_interactions(path, np.arange(40), np.arange(90))  # as trained on: accepted again
    assert main(["eval", f"{out}/best.pt", "--device", "cpu"]) == 0
    write_interactions(path, np.arange(40), np.arange(90) + 1000)  # other names, in the same order
    capsys.readouterr()
    assert main(["recommend", f"{out}/best.pt", "--users", "3", "--device", "cpu"]) == 2  # named 1000+ items
    assert f"than data file {path} now holds" in capsys.readouterr().err


def test_a_data_file_given_to_a_named_dataset_s_checkpoint_is_refused_naming_the_flag():
    state = {"metadata": {"settings": {"dataset": "lastfm"}}}  # it said the checkpoint's settings were bad
    with pytest.raises(cli_module.CheckpointError, match="trained on dataset 'lastfm', not on a data file"):
        cli_module.recorded_settings(state, "best.pt", data_file="mine.csv")


def test_load_run_s_refusals_of_the_data_name_its_arguments_beside_the_flags():
    """load_run is Python's way to a run: where its data does not fit the checkpoint, the refusals named the
    CLI's flags alone (as a moved data file's did, which names load_run's data_file now)."""
    state = {"metadata": {"settings": {"dataset": "lastfm"}}}
    with pytest.raises(
        cli_module.CheckpointError, match=r"--data-file \(dslgraph.load_run's data_file\) does"
    ):
        cli_module.recorded_settings(state, "best.pt", data_file="mine.csv")
    state = {"metadata": {"settings": {"dataset": "file", "data_file": "mine.csv"}}}
    with pytest.raises(
        cli_module.CheckpointError, match=r"--root \(dslgraph.load_run's root\) does not apply"
    ):
        cli_module.recorded_settings(state, "best.pt", root="data")
    data = make_interaction_data(3, 4, torch.tensor([[0, 1, 2], [0, 1, 2]]), torch.tensor([[0], [3]]))
    for data_file, named in (
        (None, "--root (dslgraph.load_run's root)"),
        ("r.tsv", "--data-file (dslgraph.load_run's data_file)"),
    ):
        with pytest.raises(
            cli_module.CheckpointError,
            match=re.escape(f"; pass {named} with the data"),
        ):
            cli_module.check_fingerprint(data, "another", "best.pt", data_file)


@pytest.mark.parametrize("command", ["eval", "recommend"])
def test_eval_and_recommend_help_says_what_they_print(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    assert "Prints one JSON line to stdout" in " ".join(capsys.readouterr().out.split())


def test_python_m_dslgraph_cli_runs_the_command_line(monkeypatch, capsys):
    import runpy
    import sys

    monkeypatch.setattr(sys, "argv", ["dslgraph", "--help"])  # it ran nothing and exited 0
    with warnings.catch_warnings(), pytest.raises(SystemExit) as exited:
        warnings.simplefilter("ignore", RuntimeWarning)  # this test module imported dslgraph.cli already
        runpy.run_module("dslgraph.cli", run_name="__main__")
    shown = capsys.readouterr().out
    assert exited.value.code == 0 and "usage: dslgraph" in shown
    assert "Command line: dslgraph train |" in shown  # the module docstring without its reST ``quotes``


def test_targets_given_replace_the_model_s_dsl_targets(small_data):
    common = {"model": "neumf", "protocol": "full", "sparsity": 0.5, "embedding_dim": 8, "batch_size": 64}

    def sparsified(**values) -> list[str]:
        settings = validate(common | values)
        return [
            target.name for target in build_model(settings, small_data, train_config(settings))[1].targets
        ]

    assert sparsified() == ["mlp_user", "mlp_item"]  # NeuMF's own: its MLP tables
    assert sparsified(targets=["tables"]) == ["gmf_user", "gmf_item", "mlp_user", "mlp_item"]


def test_a_static_mask_has_no_update_within_the_run(small_data):
    values = {"sparsity": 0.5, "embedding_dim": 8, "epochs": 2, "batch_size": 64, "update_interval": 2}
    for static, updates in ((False, True), (True, False)):
        settings = validate(values | {"static_mask": static})
        dsl = build_model(settings, small_data, train_config(settings))[1]
        steps = range(1, dsl.total_steps + 1)  # the last included: a mask changed there is the one evaluated
        assert any(dsl.is_update_step(step) for step in steps) == updates


def test_ultragcn_caches_its_neighbours_under_a_named_dataset_s_folder_only(small_data, tmp_path):
    """A named dataset's UltraGCN caches in <root>/<dataset>/processed; a data file's run writes nothing
    into the datasets' root (there is no folder of 'file' there)."""
    common = {"model": "ultragcn", "embedding_dim": 8, "root": str(tmp_path)}
    named = validate(common | {"dataset": "lastfm"})
    model = build_model(named, small_data, train_config(named))[0]
    assert model.cache_dir == str(tmp_path / "lastfm" / "processed")
    own = validate(common | {"data_file": "mine.tsv"})
    assert build_model(own, small_data, train_config(own))[0].cache_dir is None


@pytest.mark.parametrize(
    "name, value",
    [("rho0", 0.3), ("rho_min", 0.01), ("t_end", 5), ("growth", "random"), ("optimizer_state", "keep"),
     ("schedule", "linear"), ("backend", "masked"), ("mask_init", "aligned"), ("skip_zero_gradient", True),
     ("update_interval", 7)],
)  # fmt: skip
def test_each_dsl_setting_reaches_the_dsl_controller(name, value, small_data):
    """A DSL setting given in a config file or flag is the controller's, not its default."""
    settings = validate({"sparsity": 0.5, "embedding_dim": 8, "batch_size": 64, "epochs": 2, name: value})
    assert getattr(build_model(settings, small_data, train_config(settings))[1], name) == value


def test_distribution_seed_and_epochs_reach_the_dsl_controller(small_data):
    def build(**values):
        settings = validate({"sparsity": 0.5, "embedding_dim": 8, "batch_size": 64, "epochs": 2} | values)
        return build_model(settings, small_data, train_config(settings))

    def dsl(**values):
        return build(**values)[1]

    def masks(controller):
        return [target.active_positions().sort().values for target in controller.targets]

    neumf = {"model": "neumf", "protocol": "full"}  # two tables of other shapes, which ERK fills unevenly
    uniform, erk = dsl(**neumf).active_counts(), dsl(**neumf, distribution="erk").active_counts()
    assert sum(erk.values()) == sum(uniform.values()) and erk != uniform
    same, other = masks(dsl(seed=1)), masks(dsl(seed=2))
    assert all(torch.equal(a, b) for a, b in zip(same, masks(dsl(seed=1))))
    assert not all(torch.equal(a, b) for a, b in zip(same, other))  # the run's seed draws the masks
    assert dsl(epochs=6).total_steps == 3 * dsl().total_steps  # the schedule spans every epoch's batches
    weights = []
    for earlier in (0, 1):  # the run's seed, not whatever drew random numbers before, draws the weights
        torch.manual_seed(earlier)
        weights.append(build(seed=1)[0].state_dict())
    assert all(torch.equal(value, weights[1][name]) for name, value in weights[0].items())


def test_each_training_setting_reaches_the_train_config():
    """Every setting that is a TrainConfig field (TRAIN_FIELDS) arrives with the value given, not
    TrainConfig's default."""
    given = {
        "epochs": 7, "batch_size": 33, "sampling": "user", "lr": 0.02, "lr_schedule": "cosine",
        "lr_min": 0.001, "reg_weight": 0.5, "eval_every": 3, "eval_batch_size": 9, "monitor": "ndcg@5",
        "patience": 4, "seed": 11, "max_seconds": 60.0, "stop_after_epoch": 5, "checkpoint_every": 2,
        "compile": True, "ks": [5, 10],
    }  # fmt: skip
    assert set(given) == {*cli_module.TRAIN_FIELDS, "ks"}
    config = train_config(validate(given), progress=False)
    assert {name: getattr(config, name) for name in given} == given | {"ks": (5, 10)}
    assert not config.progress


def test_threads_are_set_before_the_data_is_loaded(monkeypatch):
    threads = []

    def load_data(settings):
        raise ValueError("stop here")

    monkeypatch.setattr(cli_module, "load_data", load_data)
    monkeypatch.setattr(torch, "set_num_threads", threads.append)
    assert main(["train", "--threads", "3", "--device", "cpu"]) == 2
    assert main(["train", "--device", "cpu"]) == 2  # 0: torch's own number, left alone
    assert threads == [3]


def test_resume_without_an_output_folder_is_refused_naming_it(capsys):
    assert main(["train", "--resume"]) == 2
    assert (
        "dslgraph train: error: --resume needs --output (the folder holding last.pt)"
        in capsys.readouterr().err
    )


def test_overwrite_keeps_the_earlier_run_until_the_new_one_writes(tmp_path, monkeypatch, capsys):
    """The earlier run's files were removed before the new run loaded its data: a run that then failed (a
    --targets that matches nothing, raw files missing) left the folder empty. The trainer replaces them."""
    run = tmp_path / "run"
    run.mkdir()
    for name in ("last.pt", "best.pt", "metrics.json"):
        (run / name).write_text("earlier")
    code = main(["train", "--output", str(run), "--overwrite", "--sparsity", "0.5", "--targets", "nomatch"])
    assert code == 2 and "matches no parameter" in capsys.readouterr().err
    assert {path.name: path.read_text() for path in run.glob("[!.]*")} == dict.fromkeys(
        ("last.pt", "best.pt", "metrics.json"), "earlier"
    )
    passed = []

    def run_training(settings, output, *args):
        passed.append(args[-1])  # overwrite, for the trainer
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_module, "run_training", run_training)
    assert main(["train", "--output", str(run), "--overwrite", "--device", "cpu"]) == 130
    assert passed == [True]


def test_an_overwrite_interrupted_before_its_first_checkpoint_offers_no_resume(tmp_path, monkeypatch, capsys):
    """The earlier run's last.pt was offered to --resume, which would have gone on with the earlier run."""
    run = str(tmp_path / "run")
    assert main(["train", "--epochs", "1", "--output", run, "--device", "cpu", "--no-progress"]) == 0

    def interrupted(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_module.Trainer, "train_epoch", interrupted)
    capsys.readouterr()
    assert main(["train", "--epochs", "5", "--output", run, "--overwrite", "--device", "cpu"]) == 130
    err = capsys.readouterr().err
    assert (
        "this run wrote no checkpoint, so there is nothing of it to resume" in err and "--resume" not in err
    )


def test_an_overwrite_interrupted_after_its_first_checkpoint_offers_its_own(tmp_path, monkeypatch, capsys):
    """Its own last.pt, written over the earlier run's, is the one offered to --resume."""
    run = str(tmp_path / "run")
    assert main(["train", "--epochs", "1", "--output", run, "--device", "cpu", "--no-progress"]) == 0
    train_epoch, calls = cli_module.Trainer.train_epoch, []

    def interrupted_in_the_second(self):
        calls.append(self.epoch)
        if len(calls) > 1:
            raise KeyboardInterrupt
        return train_epoch(self)

    monkeypatch.setattr(cli_module.Trainer, "train_epoch", interrupted_in_the_second)
    capsys.readouterr()
    argv = ["train", "--epochs", "5", "--eval-every", "1", "--output", run, "--overwrite", "--device", "cpu"]
    assert main([*argv, "--no-progress"]) == 130
    err = capsys.readouterr().err
    assert "--resume" in err and "wrote no checkpoint" not in err


def test_a_sigterm_handler_of_the_caller_is_left_in_place(tmp_path):
    """A program that runs main() with its own SIGTERM handler keeps it, during the command and after."""
    import signal

    def handler(signum, frame):
        pass

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        main(["datasets", "--root", str(tmp_path)])
        assert signal.getsignal(signal.SIGTERM) is handler
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_resumed_run_may_change_the_settings_the_readme_names_and_no_others(tmp_path):
    previous = validate({"epochs": 2})
    changed = {
        "epochs": 5, "max_seconds": 10.0, "stop_after_epoch": 1, "device": "cpu", "threads": 2,
        "compile": True, "root": "elsewhere", "eval_every": 1, "eval_batch_size": 64, "checkpoint_every": 20,
        "patience": 3,
    }  # fmt: skip
    for name, value in changed.items():  # README "Usage": only these may change
        cli_module._refuse_changed_settings(tmp_path / "last.pt", previous, previous | {name: value})
    for name, value in {"lr": 0.5, "seed": 1, "sparsity": 0.5, "ks": [10]}.items():
        with pytest.raises(ConfigError, match=f"last.pt: {name} was"):
            cli_module._refuse_changed_settings(tmp_path / "last.pt", previous, previous | {name: value})


def test_user_indices_take_ids_in_range_only():
    assert cli_module.user_indices(["0", "4"], 5).tolist() == [0, 4]
    for given in (["-1"], ["5"]):  # -1 would have been the last user, by NumPy's indexing
        with pytest.raises(ValueError, match=rf"--users must be ids in \[0, 5\), got \['{given[0]}'\]"):
            cli_module.user_indices(given, 5)
    with pytest.raises(ValueError, match=r"--users must be integer ids in \[0, 5\), got \['0', 'ann'\]"):
        cli_module.user_indices(["0", "ann"], 5)  # a data file's own id, of a run that numbered its users


def test_name_value_refuses_a_value_without_a_name():
    import argparse

    assert cli_module.name_value("hidden_channels=8") == ("hidden_channels", 8)
    with pytest.raises(argparse.ArgumentTypeError, match="expected NAME=VALUE, got '=8'"):
        cli_module.name_value("=8")


def test_an_option_flag_adds_to_the_config_file_s_options(tmp_path):
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"model": "cdae", "options": {"hidden_channels": 8}}))
    args = build_parser().parse_args(["train", "--config", str(config), "--option", "corruption=0.25"])
    assert cli_module.settings_from_args(args)["options"] == {"hidden_channels": 8, "corruption": 0.25}


def test_an_option_flag_overrides_the_config_file_s_option_of_that_name(tmp_path):
    # flags override the config file, argument by argument, as for every other setting
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"model": "cdae", "options": {"hidden_channels": 8, "corruption": 0.1}}))
    args = build_parser().parse_args(["train", "--config", str(config), "--option", "corruption=0.25"])
    assert cli_module.settings_from_args(args)["options"] == {"hidden_channels": 8, "corruption": 0.25}


def test_ks_flag_gives_integer_cut_offs():
    args = build_parser().parse_args(["train", "--ks", "10", "20"])
    assert cli_module.settings_from_args(args)["ks"] == [10, 20]


def test_datasets_refuses_a_root_that_holds_no_datasets_folders(tmp_path, capsys):
    # a mistyped --root was listed as holding LastFM, which it created there; a dataset's own folder too
    assert main(["datasets", "--root", str(tmp_path / "nowhere")]) == 2
    assert "--root " + str(tmp_path / "nowhere") + " is no folder" in capsys.readouterr().err
    assert not (tmp_path / "nowhere").exists()
    (tmp_path / "ml-100k" / "raw").mkdir(parents=True)
    assert main(["datasets", "--root", str(tmp_path / "ml-100k")]) == 2
    assert "holds raw/ itself: name the folder above it" in capsys.readouterr().err
    assert not (tmp_path / "ml-100k" / "lastfm").exists()


def test_datasets_refuses_an_unknown_name(capsys):
    assert main(["datasets", "netflix"]) == 2
    assert (
        "dslgraph datasets: error: unknown dataset(s) ['netflix']; known: ['lastfm'"
        in capsys.readouterr().err
    )


def test_a_relative_data_file_is_recorded_as_an_absolute_path(tmp_path, monkeypatch):
    """The checkpoint records the path: eval and recommend may run from another folder."""
    recorded = {}

    def run_training(settings, *args, **kwargs):
        recorded.update(settings)
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_module, "run_training", run_training)
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--data-file", "mine.tsv", "--root", "data"]) == 130
    assert recorded["data_file"] == str(tmp_path / "mine.tsv") and recorded["root"] == str(tmp_path / "data")


@pytest.mark.parametrize(
    "values",
    [
        {"model": "neumf", "eval_negatives": 5, "ks": [5]},  # leave-one-out: one more interaction a user
        {"model": "cdae", "protocol": "held-out-users"},  # this share of the users
        {},  # full: this share of each user's interactions
    ],
)
def test_val_ratio_makes_a_validation_split_under_each_protocol_and_loses_no_interaction(values, tmp_path):
    raw = tmp_path / "ml-100k" / "raw"
    raw.mkdir(parents=True)
    keep = np.random.default_rng(0).random((20, 30)) < 0.3
    rows = [f"{u + 1}\t{i + 1}\t5\t{u * 100 + i}\n" for u, i in zip(*np.nonzero(keep))]
    (raw / "u.data").write_text("".join(rows))
    for val_ratio in (0.0, 0.25):
        data = load_data(
            validate({"dataset": "ml-100k", "root": str(tmp_path), "val_ratio": val_ratio} | values)
        )
        store = data[EDGE]
        assert ("val_edge_label_index" in store) == (val_ratio > 0)
        splits = [
            store.edge_index,
            store.edge_label_index,
            store.get("val_edge_label_index", torch.empty(2, 0)),
        ]
        assert sum(split.size(1) for split in splits) == len(rows)


def test_datasets_prints_a_table_of_aligned_columns(tmp_path, capsys):
    write_interactions(tmp_path / "my-own-interactions.tsv", np.arange(40), np.arange(90))
    read = ["--data-option", 'sep="\\t"', "--data-option", "user_col=uid", "--data-option", "item_col=movie"]
    assert main(["datasets", "--data-file", str(tmp_path / "my-own-interactions.tsv"), *read]) == 0
    header, row, _ = capsys.readouterr().out.splitlines()
    assert len(header) == len(row) and header.split()[-1] == "density"  # right-aligned, each column's widest
    assert header.index("users") + len("users") == row.index(row.split()[1]) + len(row.split()[1])


def test_eval_takes_its_ks_and_recommend_its_k_up_to_the_number_of_items(
    tmp_path, capsys, monkeypatch, caplog
):
    write_interactions(tmp_path / "mine.tsv", np.arange(40), np.arange(90))
    out = str(tmp_path / "run")
    read = ["--data-file", str(tmp_path / "mine.tsv"), "--data-option", 'sep="\\t"', "--data-option"]
    read += ["user_col=uid", "--data-option", "item_col=movie"]
    args = ["train", *read, "--epochs", "1", "--embedding-dim", "8", "--eval-batch-size", "7"]
    assert main([*args, "--device", "cpu", "--output", out, "--no-progress"]) == 0
    configs = []

    class Trainer(cli_module.Trainer):
        def __init__(self, model, data, config, **kwargs):
            configs.append(config)
            super().__init__(model, data, config, **kwargs)

    monkeypatch.setattr(cli_module, "Trainer", Trainer)
    capsys.readouterr()
    assert main(["eval", f"{out}/best.pt", "--ks", "5", "10"]) == 0
    assert {name.partition("@")[2] for name in json.loads(capsys.readouterr().out)["test"]} == {"5", "10"}
    assert configs[0].eval_batch_size == 7  # as many users at once as the run's evaluation scored
    assert not configs[0].progress  # no evaluation bar where stderr is no terminal (as train's bars)
    data = cli_module.load_run(f"{out}/best.pt").data
    item_ids = sorted(data["item"].raw_ids.tolist())
    user = data["user"].raw_ids.tolist().index(3)
    unseen = len(item_ids) - int((data["user", "to", "item"].edge_index[0] == user).sum())
    assert main(["recommend", f"{out}/best.pt", "--users", "3", "-k", str(unseen)]) == 0
    assert "fewer than -k" not in caplog.text  # the items user 3 did not train on fill its list
    assert len(json.loads(capsys.readouterr().out)["3"]) == unseen
    # one item more than it did not train on: its list ends with a training item (its own count of them,
    # not item 3's)
    assert main(["recommend", f"{out}/best.pt", "--users", "3", "-k", str(unseen + 1)]) == 0
    assert f"user(s) 3 have fewer than -k {unseen + 1} items they did not train on" in caplog.text
    capsys.readouterr()
    assert main(["recommend", f"{out}/best.pt", "--users", "3", "-k", str(len(item_ids))]) == 0
    assert sorted(json.loads(capsys.readouterr().out)["3"]) == item_ids  # every item, best first
    # its list ends with its training item, which the user is told (before, README said never)
    assert "user(s) 3 have fewer than -k 90 items they did not train on" in caplog.text
    for k in (0, len(item_ids) + 1):
        assert main(["recommend", f"{out}/best.pt", "--users", "3", "-k", str(k)]) == 2
        assert f"-k must be in [1, {len(item_ids)}], got {k}" in capsys.readouterr().err


def test_a_file_too_small_to_split_is_told_so_first_in_lines_of_its_own(tmp_path, capsys):
    """Its first error named ks, which the user never gave, and the empty split's warning came with the
    entry script's line (`sys.exit(main())`) beside it."""
    (tmp_path / "tiny.csv").write_text("user,item\n1,2\n1,3\n2,2\n2,4\n3,3\n3,4\n")
    with pytest.warns(UserWarning, match="the test split is empty"):  # still a warning, recorded
        assert main(["train", "--data-file", str(tmp_path / "tiny.csv"), "--epochs", "1"]) == 2
    assert "error: the test split of data holds no interaction" in capsys.readouterr().err
    assert warnings.formatwarning is not None and warnings.formatwarning.__module__ == "warnings"  # restored
    argv = ["train", "--data-file", str(tmp_path / "tiny.csv"), "--data-option", "test_ratio=0.5"]
    run = functools.partial(subprocess.run, capture_output=True, text=True, cwd=tmp_path)
    done = run([sys.executable, "-m", "dslgraph", *argv])
    assert done.returncode == 2
    assert "error: ks (20,) cut a ranking of the data's 3 items beyond its end: give ks of at most 3" in (
        done.stderr
    )
    assert "dslgraph train: warning: the test split is empty" not in done.stderr  # 0.5 holds one out
    done = run([sys.executable, "-m", "dslgraph", *argv[:3]])
    lines = done.stderr.splitlines()
    assert any(line.startswith("dslgraph train: warning: the test split is empty: ") for line in lines)
    assert "sys.exit" not in done.stderr and "UserWarning" not in done.stderr


def test_a_missing_data_file_fails_naming_it_with_no_word_on_resuming(tmp_path, capsys):
    """A file not found is no run stopped midway (a full disk is): the error names the file and ends there."""
    missing = tmp_path / "none.tsv"
    assert main(["train", "--data-file", str(missing), "--output", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"dslgraph train: error: data file {missing} does not exist")
    assert err.endswith(
        "take --data-file, and dslgraph.load_run its data_file)"
    )  # not "; .../last.pt was not written yet, so there is nothing to resume"
    assert main(["train", "--data-file", str(tmp_path)]) == 2  # was said not to exist
    assert f"data file {tmp_path} is a folder; name the file of interactions in it" in capsys.readouterr().err


def test_a_damaged_last_pt_is_named_with_the_ways_on(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DSLGRAPH_HOME", str(tmp_path / "data"))
    out = tmp_path / "run"
    args = ["train", "--epochs", "1", "--embedding-dim", "8", "--num-layers", "1", "--batch-size", "8192"]
    assert main([*args, "--output", str(out), "--no-progress", "--device", "cpu"]) == 0
    (out / "last.pt").write_bytes((out / "last.pt").read_bytes()[:100])  # a truncated copy
    capsys.readouterr()
    assert main(["train", "--output", str(out), "--resume", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "not the zip archive torch.save writes" in err
    assert f"start afresh with --overwrite instead of --resume, or copy {out / 'best.pt'} over it" in err
    (out / "last.pt").write_bytes((out / "best.pt").read_bytes())  # the way on it names
    assert main(["train", "--output", str(out), "--resume", "--epochs", "2", "--no-progress"]) == 0


def test_a_run_stopped_before_its_first_last_pt_is_not_sent_to_resume(tmp_path, capsys, monkeypatch):
    write_interactions(tmp_path / "mine.tsv", np.arange(40), np.arange(90))
    save = torch.save

    def interrupted_between_best_and_last(obj, f, *args, **kwargs):
        if "last.pt" in str(f):  # Ctrl-C in the first evaluation, after best.pt and metrics.json
            raise KeyboardInterrupt
        return save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", interrupted_between_best_and_last)
    out = tmp_path / "run"
    args = ["train", "--data-file", str(tmp_path / "mine.tsv"), "--data-option", 'sep="\\t"']
    args += ["--data-option", "user_col=uid", "--data-option", "item_col=movie", "--epochs", "1"]
    args += ["--embedding-dim", "8", "--output", str(out), "--no-progress", "--device", "cpu"]
    assert main(args) == 130
    assert "nothing to resume (start afresh with --overwrite)" in capsys.readouterr().err
    assert sorted(path.name for path in out.iterdir()) == [".lock", "best.pt", "metrics.json"]
    monkeypatch.setattr(torch, "save", save)
    assert main(args) == 2
    err = capsys.readouterr().err  # it said "continue it with --resume", which found no last.pt
    assert "(best.pt, metrics.json): it wrote no last.pt to resume; start afresh with --overwrite" in err
    assert main([*args, "--overwrite"]) == 0


def test_recommend_says_a_user_of_the_file_may_be_one_its_filters_left_out(tmp_path, capsys):
    path = tmp_path / "mine.csv"
    write_interactions(path, np.array([f"u{u}" for u in range(40)]), np.arange(90))
    with path.open("a") as file:
        file.write("lonely\t3\n")  # a user of one interaction, which min_user_interactions=2 leaves out
    out = tmp_path / "run"
    args = ["train", "--data-file", str(path), "--data-option", 'sep="\\t"', "--data-option", "user_col=uid"]
    args += ["--data-option", "item_col=movie", "--data-option", "min_user_interactions=2", "--epochs", "1"]
    assert (
        main([*args, "--embedding-dim", "8", "--output", str(out), "--no-progress", "--device", "cpu"]) == 0
    )
    capsys.readouterr()
    assert main(["recommend", str(out / "best.pt"), "--users", "lonely", "--device", "cpu"]) == 2
    err = capsys.readouterr().err  # it said the file had no such user
    assert "--users ['lonely'] are not user ids of the data file" in err
    assert "or its min_user_interactions left them out" in err
    with pytest.raises(ValueError, match=r"in the file\)$"):  # a run without filters: absent from the file
        cli_module.user_indices(["lonely"], 2, np.array(["u0", "u1"]))


def test_a_named_dataset_and_a_data_file_replace_each_other_over_the_settings_before(tmp_path):
    config = tmp_path / "mine.json"
    config.write_text('{"data_file": "mine.csv", "data_options": {"sep": ";"}, "epochs": 3}')
    args = build_parser().parse_args(["train", "--config", str(config), "--dataset", "lastfm"])
    settings = cli_module.settings_from_args(args)  # was refused: no flag could unset the file's data_file
    assert (settings["dataset"], settings["data_file"], settings["data_options"]) == ("lastfm", None, {})
    assert settings["epochs"] == 3
    args = build_parser().parse_args(["train", "--config", str(config)])
    assert cli_module.settings_from_args(args)["data_file"] == str(tmp_path / "mine.csv")
    # an example script's dataset (the base) gives way to the config file's data_file, as to --data-file's
    settings = cli_module.settings_from_args(args, {"dataset": "ml-1m", "epochs": 200})  # was refused
    assert (settings["dataset"], settings["data_file"], settings["epochs"]) == (
        "file",
        str(tmp_path / "mine.csv"),
        3,
    )


def test_a_data_file_flag_may_start_at_the_home_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    write_interactions(tmp_path / "mine.tsv", np.arange(40), np.arange(90))
    args = ["train", "--data-file=~/mine.tsv", "--data-option", 'sep="\\t"', "--data-option", "user_col=uid"]
    args += ["--data-option", "item_col=movie", "--epochs", "1", "--embedding-dim", "8", "--device", "cpu"]
    assert main([*args, "--no-progress"]) == 0  # the shell leaves ~ after "=": it was CWD/~/mine.tsv


def test_a_diverged_training_loss_fails_with_a_line_not_a_traceback(tmp_path, capsys, monkeypatch):
    write_interactions(tmp_path / "mine.tsv", np.arange(40), np.arange(90))
    monkeypatch.setattr(
        dslgraph.nn.LightGCN, "loss", lambda *args, **kwargs: torch.tensor(float("nan"), requires_grad=True)
    )
    args = ["train", "--data-file", str(tmp_path / "mine.tsv"), "--data-option", 'sep="\\t"']
    args += ["--data-option", "user_col=uid", "--data-option", "item_col=movie", "--epochs", "1"]
    assert main([*args, "--embedding-dim", "8", "--no-progress", "--device", "cpu"]) == 2  # was raised
    assert (
        "dslgraph train: error: training loss became nan in epoch 1; lower the lr" in capsys.readouterr().err
    )


def test_a_dsl_run_too_short_for_one_update_is_named_in_a_warning(tmp_path, caplog):
    write_interactions(tmp_path / "mine.tsv", np.arange(40), np.arange(90))
    args = ["train", "--data-file", str(tmp_path / "mine.tsv"), "--data-option", 'sep="\\t"']
    args += ["--data-option", "user_col=uid", "--data-option", "item_col=movie", "--epochs", "2"]
    args += ["--embedding-dim", "8", "--batch-size", "100", "--sparsity", "0.5", "--no-progress"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(args) == 0  # 2 epochs of 5 batches under the default ΔT of 3000: a static mask, silently
        assert "update_interval 3000 exceeds the 10 iterations DSL updates within" in caplog.text
        caplog.clear()
        assert main([*args, "--update-interval", "10"]) == 0
        assert "exceeds the" not in caplog.text
        assert main([*args, "--static-mask"]) == 0  # that one asks for no update
        assert "exceeds the" not in caplog.text
    # the library's own warning, which the CLI says in its flags' words (or not at all, for a static mask)
    assert not [w for w in caught if "exceeds the" in str(w.message)]


def train_on_a_file(tmp_path, user_ids=None, *extra):
    """The output folder of a 1-epoch run on a small data file of ``user_ids`` (default 40 numbers)."""
    user_ids = np.arange(1000, 1040) if user_ids is None else user_ids
    write_interactions(tmp_path / "mine.tsv", user_ids, np.arange(90))
    out = str(tmp_path / "run")
    args = ["train", "--data-file", str(tmp_path / "mine.tsv"), "--data-option", 'sep="\\t"']
    args += ["--data-option", "user_col=uid", "--data-option", "item_col=movie", "--epochs", "1"]
    assert main([*args, "--embedding-dim", "8", "--output", out, "--no-progress", *extra]) == 0
    return out


def test_recommend_lists_a_user_given_twice_once_under_its_own_id_and_says_so(tmp_path, capsys, caplog):
    out = train_on_a_file(tmp_path)
    capsys.readouterr()
    caplog.clear()
    assert main(["recommend", f"{out}/best.pt", "--users", "1005", "1003", "01005", "-k", "3"]) == 0
    recommended = json.loads(capsys.readouterr().out)  # was {"1005": ..., "1003": ..., "01005": ...}
    assert list(recommended) == ["1005", "1003"] and all(len(items) == 3 for items in recommended.values())
    assert "user(s) 1005 given more than once: listed once" in caplog.text  # was collapsed silently
    caplog.clear()
    assert main(["recommend", f"{out}/best.pt", "--users", "1005", "1003", "-k", "3"]) == 0
    assert json.loads(capsys.readouterr().out) == recommended and "more than once" not in caplog.text
    many = [str(user) for user in range(1000, 1012)] * 2  # repeats piped from a log: ten named at most
    assert main(["recommend", f"{out}/best.pt", "--users", *many, "-k", "3"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 12
    assert f"user(s) {', '.join(many[:10])} (12 in all) given more than once" in caplog.text


def test_load_run_rebuilds_the_run_s_model_in_eval_mode_with_its_weights(tmp_path):
    out = train_on_a_file(tmp_path, None, "--sparsity", "0.5")
    run = cli_module.load_run(f"{out}/best.pt")
    assert not any(module.training for module in run.model.modules())  # as its docstring says
    state = torch.load(f"{out}/best.pt", weights_only=False)["model"]
    assert all(torch.equal(value, state[name]) for name, value in run.model.state_dict().items())


def test_load_run_s_repr_is_one_line_naming_model_data_epoch_sparsity_and_device(tmp_path):
    args = ("--sparsity", "0.5", "--backend", "masked", "--update-interval", "1", "--epochs", "2")
    out = train_on_a_file(tmp_path, None, *args)
    run = cli_module.load_run(f"{out}/best.pt")  # printed the whole data, graph and settings
    assert run.epoch == 2 and run.epoch == torch.load(f"{out}/best.pt", weights_only=False)["epoch"]
    data_file = str(tmp_path / "mine.tsv")
    assert repr(run) == (
        f"LoadedRun(model=LightGCN, data_file={data_file!r}, epoch=2/2, sparsity=0.5, backend='masked', "
        "device='cpu')"
    )
    (tmp_path / "dense").mkdir()
    dense = train_on_a_file(tmp_path / "dense", None, "--epochs", "3", "--stop-after-epoch", "1")
    stopped = cli_module.load_run(f"{dense}/last.pt")  # the epochs trained, not the run's epochs
    assert stopped.epoch == 1 and repr(stopped) == (
        f"LoadedRun(model=LightGCN, data_file={str(tmp_path / 'dense' / 'mine.tsv')!r}, epoch=1/3, "
        "device='cpu')"
    )


def test_a_loaded_run_made_by_hand_with_few_settings_still_has_a_repr():
    # repr raised KeyError for a LoadedRun whose settings lack the CLI's keys
    run = cli_module.LoadedRun(torch.nn.Linear(2, 2), None, None, {"dataset": "lastfm"}, 3)
    assert repr(run) == "LoadedRun(model=Linear, dataset='lastfm', epoch=3/?, device='cpu')"


def test_a_run_s_threads_are_its_own_not_the_calling_process_s(tmp_path):
    # main(["train", "--threads", "1"]) left a notebook that called it on one thread
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        train_on_a_file(tmp_path, None, "--threads", "1")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)


def test_eval_reports_the_run_s_metrics_at_its_ks_from_its_model_s_arguments(tmp_path, capsys):
    out = train_on_a_file(tmp_path, None, "--ks", "3", "7", "--num-layers", "1")
    trained = json.loads(capsys.readouterr().out)["test"]
    assert main(["eval", f"{out}/best.pt"]) == 0  # at 3 and 7, not at the default 20, and from 1 layer, not 3
    assert json.loads(capsys.readouterr().out)["test"] == trained


def test_eval_reports_the_same_metrics_whatever_monitor_the_run_recorded(tmp_path, capsys, monkeypatch):
    """eval built its monitor by hand (the recorded metric at the first of its ks); it now leaves it to
    the rule train follows (config.default_monitor), which evaluating does not read: the same metrics."""
    extra = ["--model", "neumf", "--eval-negatives", "20", "--ks", "5", "10", "--monitor", "ndcg@10"]
    out = train_on_a_file(tmp_path, None, *extra, "--device", "cpu")
    trained = json.loads(capsys.readouterr().out)["test"]
    configs = []

    class Trainer(cli_module.Trainer):
        def __init__(self, model, data, config, **kwargs):
            super().__init__(model, data, config, **kwargs)
            configs.append(self.config)

    monkeypatch.setattr(cli_module, "Trainer", Trainer)
    assert main(["eval", f"{out}/best.pt"]) == 0
    assert json.loads(capsys.readouterr().out)["test"] == trained
    assert main(["eval", f"{out}/best.pt", "--ks", "3"]) == 0  # none of the recorded monitor's K
    assert set(json.loads(capsys.readouterr().out)["test"]) == {"hr@3", "ndcg@3"}
    assert [config.monitor for config in configs] == ["hr@5", "hr@3"]  # leave-one-out's, as train's default


def test_recommend_gives_each_user_its_own_top_k_in_any_order_given(tmp_path, capsys):
    out = train_on_a_file(tmp_path)
    capsys.readouterr()
    alone = {}
    for user in ("1031", "1004", "1017"):
        assert main(["recommend", f"{out}/best.pt", "--users", user, "-k", "4"]) == 0
        alone |= json.loads(capsys.readouterr().out)
    assert main(["recommend", f"{out}/best.pt", "--users", "1031", "1004", "1031", "1017", "-k", "4"]) == 0
    together = json.loads(capsys.readouterr().out)
    assert list(together) == ["1031", "1004", "1017"] and together == alone
    run = cli_module.load_run(f"{out}/best.pt")  # the top 4 of the scores, training items left out
    users = [run.data["user"].raw_ids.tolist().index(int(user)) for user in together]
    with torch.no_grad():
        scores = run.model.scorer(run.graph)(torch.tensor(users))
    for row, user in enumerate(users):
        scores[row, run.data[EDGE].edge_index[1][run.data[EDGE].edge_index[0] == user]] = -torch.inf
    expected = run.data["item"].raw_ids[scores.topk(4).indices.numpy()].tolist()
    assert list(together.values()) == expected


def test_overwrite_without_an_output_folder_is_refused_naming_it(capsys):
    assert main(["train", "--overwrite", "--epochs", "1"]) == 2  # was ignored
    assert "--overwrite needs --output (the folder whose earlier run it replaces)" in capsys.readouterr().err


def test_root_for_a_data_file_s_run_is_refused_naming_the_flag(tmp_path, capsys, caplog):
    out = train_on_a_file(tmp_path, None, "--root", str(tmp_path / "data"))
    assert "root only acts for a named dataset, not a --data-file" in caplog.text  # was taken silently
    capsys.readouterr()
    for command in (
        ["eval", f"{out}/best.pt"],
        ["recommend", f"{out}/best.pt", "--users", "1003"],
        ["train", "--output", out, "--resume", "--epochs", "2", "--no-progress"],
    ):
        assert main([*command, "--root", str(tmp_path / "data")]) == 2  # were ignored
        assert "not on a named dataset: --root (dslgraph.load_run's root) does not apply (--data-file, " in (
            capsys.readouterr().err
        )


def test_a_recbole_name_or_a_model_argument_given_as_a_flag_names_the_flag_meant(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--learning-rate", "0.01", "--topk", "10", "--epoch", "3"])
    err = capsys.readouterr().err
    assert "(RecBole's '--learning-rate' is '--lr', '--topk' is '--ks' here; did you mean '--epochs'?)" in err
    with pytest.raises(SystemExit):
        main(["train", "--train-batch-size", "512"])  # did you mean '--eval-batch-size'?
    assert "(RecBole's '--train-batch-size' is '--batch-size' here)" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # the dashes every flag shares made it '--epochs'
        main(["train", "--nosuch", "3", "--batchsize", "8"])
    assert "--nosuch 3 --batchsize 8 (did you mean '--batch-size'?)\n" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--model", "multvae", "--latent-dim", "100", "--dropout-prob", "0.2"])
    err = capsys.readouterr().err
    assert "(model arguments go in --option: --option latent_dim=VALUE --option dropout=VALUE)" in err
    with pytest.raises(SystemExit):
        main(["eval", "best.pt", "--topk", "5"])
    assert "(RecBole's '--topk' is '--ks' here)" in capsys.readouterr().err


def test_recbole_s_flags_without_a_counterpart_and_capitalised_names_are_answered(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--metrics", "recall", "--neg-sampling", "uniform"])
    err = capsys.readouterr().err  # --neg-sampling was answered "did you mean '--sampling'?"
    assert "(RecBole's '--metrics' has no setting here: every evaluation reports all of ['recall'," in err
    assert "; RecBole's '--neg-sampling' has no setting here: training draws uniform negatives" in err
    assert "did you mean" not in err
    assert main(["train", "--model", "LightGCN", "--monitor", "hit@20"]) == 2
    assert "got 'LightGCN' (lower case: 'lightgcn')" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--USER_ID_FIELD", "user_id", "--threshold", "4", "--checkpoint_dir", "runs/x"])
    assert (
        "(read options of --data-file go in --data-option: user_col=VALUE (RecBole's USER_ID_FIELD); "
        "RecBole's '--checkpoint_dir' is '--output' here; RecBole's '--threshold' has no setting here: "
        "RecBole labels"
    ) in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["recommend", "best.pt", "--users", "0", "--topk", "10"])  # had no hint
    assert "(RecBole's '--topk' is '-k' here)" in capsys.readouterr().err


def test_the_lightgcn_code_s_flags_are_answered_with_dslgraph_s(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--recdim", "64", "--decay", "1e-4", "--testbatch", "100", "--path", "runs/x"])
    assert (  # were: did you mean '--resume', '--device', '--batch-size', '--sparsity'?
        "(the LightGCN code's '--recdim' is '--embedding-dim', '--decay' is '--reg-weight', '--testbatch' is "
        "'--eval-batch-size', '--path' is '--output' here)"
    ) in capsys.readouterr().err
    with pytest.raises(ConfigError, match=r"\(the LightGCN code's 'decay' is 'reg_weight' here\); known"):
        validate({"decay": 1e-4})


def test_a_recbole_atomic_file_is_read_by_its_untyped_column_names(tmp_path, capsys):
    path = tmp_path / "ml-100k.inter"
    rows = [f"{u}\t{i}\t4\t{u + i}" for u in range(1, 9) for i in range(1, 6)]
    path.write_text("user_id:token\titem_id:token\trating:float\ttimestamp:float\n" + "\n".join(rows))
    read = ["--data-option", 'sep="\\t"', "--data-option", "user_col=user_id"]
    read += ["--data-option", "item_col=item_id", "--data-option", "time_col=timestamp"]
    assert main(["datasets", "--data-file", str(path), *read]) == 0
    assert capsys.readouterr().out.splitlines()[1].split()[:4] == ["ml-100k.inter", "8", "5", "32"]


def test_ks_written_with_commas_are_refused_showing_them_apart(capsys):
    with pytest.raises(SystemExit):
        main(["eval", "best.pt", "--ks", "10,20"])
    assert (
        "expected an integer cut-off K, got '10,20' (several go apart: --ks 10 20)" in capsys.readouterr().err
    )
    with pytest.raises(SystemExit):
        main(["train", "--ks", "[5, 10]"])
    assert "(several go apart: --ks 5 10)" in capsys.readouterr().err
    assert build_parser().parse_args(["eval", "best.pt", "--ks", "5", "10"]).ks == [5, 10]


def test_a_gpu_of_several_is_named_as_torch_names_it(capsys):
    assert validate({"device": "cuda:1"})["device"] == "cuda:1"  # was refused, as the Trainer takes it
    assert build_parser().parse_args(["eval", "best.pt", "--device", "cuda:0"]).device == "cuda:0"
    for bad in ("gpu", "mps", "cuda:", "cuda:x", "CPU"):
        with pytest.raises(ConfigError, match=r"device must be one of \['auto', 'cpu', 'cuda', 'cuda:N'\]"):
            validate({"device": bad})
    with pytest.raises(SystemExit):
        main(["recommend", "best.pt", "--users", "0", "--device", "gpu"])
    assert "argument --device: device must be one of" in capsys.readouterr().err


def test_datasets_lists_a_name_given_twice_once_and_names_the_one_meant(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DSLGRAPH_HOME", str(tmp_path))
    assert main(["datasets", "lastfm", "lastfm"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert [row.split()[0] for row in rows[1:-1]] == ["lastfm"]  # was read and listed twice
    assert main(["datasets", "ml100k"]) == 2
    assert "unknown dataset(s) ['ml100k'] (did you mean 'ml-100k'?)" in capsys.readouterr().err
    assert main(["datasets", "ML-100K", "Gowalla"]) == 2  # RecBole's spelling: 'ML-100K' had no hint
    assert "unknown dataset(s) ['ML-100K', 'Gowalla'] (lower case: 'ml-100k', 'gowalla'); known" in (
        capsys.readouterr().err
    )


@pytest.mark.parametrize(
    "model, name, answer",
    [
        ("ultragcn", "gamma", "--option gamma=VALUE"),
        ("lightgcn", "gamma", "'{}' names an argument of model(s) ['ultragcn'], not of 'lightgcn'"),
        ("multvae", "dropout_prob", "--option dropout=VALUE"),
        ("lightgcn", "latent_dim", "'{}' names an argument of model(s) ['multvae'], not of 'lightgcn'"),
        ("neumf", "mlp_hidden_size", "--option mlp_layers=VALUE"),
        ("lightgcn", "embedding_size", "RecBole's '{}' is '{}' here"),  # a setting's name: no argument
        ("multvae", "learning_rate", "RecBole's '{}' is '{}' here"),
        ("multvae", "epoch", "did you mean '{1}'?"),
    ],
)
def test_a_model_argument_as_a_flag_or_a_setting_is_answered_alike_for_the_model_trained(
    model, name, answer, capsys
):
    """The command line sent an argument of any model to --option (--gamma for LightGCN, which --option
    gamma=... then refused), where a config file's setting was answered for the model it trains."""
    flag = "--" + name.replace("_", "-")
    with pytest.raises(ConfigError) as setting:
        validate({"model": model, name: 1})
    with pytest.raises(SystemExit):
        main(["train", "--model", model, flag, "1"])
    meant = {"embedding_size": "embedding_dim", "learning_rate": "lr", "epoch": "epochs"}.get(name, "")
    assert answer.format(name, meant) in str(setting.value)
    assert answer.format(flag, "--" + meant.replace("_", "-")) in capsys.readouterr().err


def test_a_model_argument_flag_is_answered_for_the_model_of_the_config_file_script_or_resumed_run(
    tmp_path, capsys
):
    config = tmp_path / "c.json"
    config.write_text('{"model": "ultragcn"}')
    ultragcn = (
        "(model arguments go in --option: --option gamma=VALUE; '--dropout' names an argument of model(s) "
        "['neumf', 'multvae'], not of 'ultragcn')"
    )
    with pytest.raises(SystemExit):
        main(["train", "--config", str(config), "--gamma", "1e-4", "--dropout", "0.1"])
    assert ultragcn in capsys.readouterr().err
    with pytest.raises(SystemExit):  # an example script's model
        main(["train", "--gamma", "1e-4", "--dropout", "0.1"], {"model": "ultragcn"})
    assert ultragcn in capsys.readouterr().err
    out = train_on_a_file(tmp_path, None, "--model", "neumf", "--protocol", "full")
    capsys.readouterr()
    neumf = (
        "(model arguments go in --option: --option dropout=VALUE; '--gamma' names an argument of model(s) "
        "['ultragcn'], not of 'neumf')"
    )
    with pytest.raises(SystemExit):
        main(["train", "--output", out, "--resume", "--gamma", "1e-4", "--dropout", "0.1"])
    assert neumf in capsys.readouterr().err
    # an example script's run resumed in its own folder (no --output): the run's model, not the script's
    with pytest.raises(SystemExit):
        main(["train", "--resume", "--gamma", "1e-4", "--dropout", "0.1"], {"model": "ultragcn"}, out)
    assert neumf in capsys.readouterr().err
    # the run resumed is its last.pt: with only best.pt left (a run stopped in its first evaluation) there is
    # none, so no model to answer for, as without a run at all (a fresh run there would train the default)
    (Path(out) / "last.pt").unlink()
    with pytest.raises(SystemExit):
        main(["train", "--output", out, "--resume", "--gamma", "1e-4", "--dropout", "0.1"])
    err = capsys.readouterr().err
    assert "unrecognized arguments: --gamma 1e-4 --dropout 0.1" in err and "model arguments go in" not in err


def test_every_kind_of_mistake_on_one_command_line_gets_its_own_hint(capsys):
    with pytest.raises(SystemExit) as stopped:
        main(
            ["train", "--model", "multvae", "--sep", ";", "--latent-dim", "100", "--gamma", "1"]
            + ["--learning-rate", "0.1", "--epoch", "3", "--sep", ","]
        )
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert (  # was the read option's hint alone
        "dslgraph train: error: unrecognized arguments: --sep ; --latent-dim 100 --gamma 1 --learning-rate "
        "0.1 --epoch 3 --sep , (read options of --data-file go in --data-option: sep=VALUE; model arguments "
        "go in --option: --option latent_dim=VALUE; '--gamma' names an argument of model(s) ['ultragcn'], "
        "not of 'multvae'; RecBole's '--learning-rate' is '--lr' here; did you mean '--epochs'?)\n"
    ) in err


@pytest.mark.parametrize(
    "argv, flag",
    [
        (["train", "--config", ""], "--config"),  # trained on the defaults, the config file unread
        (["train", "--output", ""], "--output"),  # trained, and wrote nothing
        (["train", "--root", ""], "--root"),
        (["train", "--data-file", ""], "--data-file"),
        (["eval", ""], "checkpoint"),
        (["recommend", "best.pt", "--users", "0", "--root", ""], "--root"),
        (["datasets", "--data-file", ""], "--data-file"),
    ],
)
def test_a_path_flag_given_an_empty_shell_variable_is_refused(argv, flag, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    assert f"argument {flag}: expected a path, got '' (an empty shell variable?)" in capsys.readouterr().err
