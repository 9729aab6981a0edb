import runpy
from pathlib import Path

import pytest

from dslgraph.cli import build_parser, run_example, settings_from_args

SCRIPTS = sorted(
    p for p in (Path(__file__).parents[1] / "examples").glob("*.py") if p.name != "custom_gnn_dsl.py"
)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_example_settings_are_valid(script):
    defaults = runpy.run_path(str(script))["DEFAULTS"]
    settings = settings_from_args(build_parser().parse_args(defaults))
    model, _, dataset = script.stem.partition("_")
    assert settings["model"] == model
    assert settings["dataset"].replace("-", "").replace("_", "") in {
        dataset.replace("_", ""),
        {"movielens100k": "ml100k"}.get(dataset, ""),
    }


@pytest.mark.parametrize("name", ["lightgcn_lastfm", "lightgcn_movielens100k"])
def test_example_has_the_schedule_its_docstring_promises(name):
    # both say: "the DSL authors' LightGCN schedule (Adam lr 1e-2, cosine to 1e-4, batch 1024, Xavier init)
    # and ΔT = 50"
    defaults = runpy.run_path(str(Path(__file__).parents[1] / "examples" / f"{name}.py"))["DEFAULTS"]
    settings = settings_from_args(build_parser().parse_args(defaults))
    promised = {"lr": 0.01, "lr_schedule": "cosine", "lr_min": 1e-4, "batch_size": 1024, "init": "xavier"}
    assert {key: settings[key] for key in promised} == promised
    assert settings["update_interval"] == 50


def test_example_help_shows_the_script_and_its_defaults(capsys):
    script = runpy.run_path(str(Path(__file__).parents[1] / "examples" / "lightgcn_gowalla.py"))
    with pytest.raises(SystemExit):
        run_example(script["DEFAULTS"], script["__doc__"], ["--help"])
    shown = capsys.readouterr().out
    assert shown.startswith("LightGCN on Gowalla with the recipe that reproduced the paper")
    assert "This script runs: dslgraph train --dataset gowalla --batch-size 16384" in shown
    assert "--epochs" in shown  # then the flags that override it
