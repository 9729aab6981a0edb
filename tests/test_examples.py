import runpy
from pathlib import Path

import pytest

from dslgraph.cli import build_parser, settings_from_args

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
