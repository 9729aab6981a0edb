import functools
import json
import re
import runpy
import shlex
import sys
from pathlib import Path

import pytest
import torch

import dslgraph.cli
import dslgraph.data
import dslgraph.sparse
from dslgraph.cli import build_parser, given_settings, load_data, run_example, settings_from_args
from dslgraph.config import MODEL_ARGUMENTS, load_config_file, model_parameters
from dslgraph.data import EDGE


def _script(name: str) -> dict:
    """The namespace of ``examples/<name>.py`` run as a module (its ``DEFAULTS``, ``main``, docstring)."""
    return runpy.run_path(str(Path(__file__).parents[1] / "examples" / f"{name}.py"))


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
    # README "Examples": a run writes runs/<model>-<dataset>/metrics.json
    assert build_parser().parse_args(defaults).output == f"runs/{model}-{settings['dataset']}"


# What each example's docstring says it trains (phrases of it) and the settings that say so: REFERENCE.md's
# official settings, docs/models.md's protocols. A model argument the script leaves out is the constructor's.
OFFICIAL_LIGHTGCN = (
    [
        "batch 2048, Adam lr 1e-3 without a schedule, L2 1e-4, normal(0, 0.1) init, 3 layers of 64, "
        "LightGCN's user-uniform sampler (``--sampling user``), 1000 epochs; test metrics every 20 epochs",
        "the masks are updated every 3000 iterations, the DSL authors' ΔT",
    ],
    {
        "batch_size": 2048, "lr": 1e-3, "lr_schedule": "none", "reg_weight": 1e-4, "init": "normal",
        "init_std": 0.1, "num_layers": 3, "embedding_dim": 64, "sampling": "user", "epochs": 1000,
        "eval_every": 20, "update_interval": 3000,
    },
)  # fmt: skip
OFFICIAL_ULTRAGCN = (
    [
        "with the official UltraGCN settings of the dataset (the preset in dslgraph.config;",
        "Training stops after 30 evaluations (150 epochs) without a better test Recall@20.",
        "DSL's update interval defaults to 3000 iterations",
    ],
    {
        "epochs": 2000, "eval_every": 5, "patience": 30, "monitor": "recall@20", "val_ratio": 0.0,
        "update_interval": 3000, "embedding_dim": 64, "std": 1e-4, "gamma": 1e-4,
    },
)  # fmt: skip
# each model's recipe is docs/models.md's defaults: the script gives no other setting
LEAVE_ONE_OUT = (
    ["evaluated leave-one-out against 100 sampled negatives (HR@20 / NDCG@20)"],
    {"protocol": "leave-one-out", "eval_negatives": 100, "ks": [20], "monitor": "hr@20"},
)
HELD_OUT_USERS = (
    ["evaluated on held-out users with an 80/20 fold-in (Recall@20 / NDCG@20)"],
    {"protocol": "held-out-users", "ks": [20], "monitor": "recall@20"},
)


def _recipe(recipe: tuple, *phrases: str, **settings) -> tuple[list, dict]:
    """``recipe``'s phrases and settings, and more of both."""
    return [*recipe[0], *phrases], recipe[1] | settings


AUTHORS_SCHEDULE = (
    [
        "the DSL authors' LightGCN schedule (Adam lr 1e-2, cosine to 1e-4, batch 1024, Xavier init)",
        "and ΔT = 50, the best update interval measured on LastFM",
    ],
    {
        "lr": 0.01, "lr_schedule": "cosine", "lr_min": 1e-4, "batch_size": 1024, "init": "xavier",
        "update_interval": 50,
    },
)  # fmt: skip
ADAPTER_DATASETS = ("citeulike", "foursquare", "ml1m")
ADAPTERS = {
    "neumf": LEAVE_ONE_OUT,
    "convncf": _recipe(LEAVE_ONE_OUT, "default embedding size 64", embedding_dim=64),
    "cdae": HELD_OUT_USERS,
    "multvae": HELD_OUT_USERS,
}
RECIPES = {
    "lightgcn_lastfm": _recipe(
        AUTHORS_SCHEDULE, "over 150 epochs, test metrics every 10", epochs=150, eval_every=10
    ),
    "lightgcn_movielens100k": _recipe(
        AUTHORS_SCHEDULE, "over 100 epochs, test metrics every 5", epochs=100, eval_every=5
    ),
    "lightgcn_gowalla": (
        [
            "Batch 16,384 at lr 0.01 (cosine to 1e-4), Xavier init and LightGCN's user-uniform sampler, 1630 "
            "epochs, test metrics every 163",
            "the masks are updated every 50 iterations",
            "last.pt is also written every 20 epochs between evaluations",
        ],
        {
            "batch_size": 16384, "lr": 0.01, "lr_schedule": "cosine", "lr_min": 1e-4, "init": "xavier",
            "sampling": "user", "epochs": 1630, "eval_every": 163, "update_interval": 50,
            "checkpoint_every": 20,
        },
    ),
    "lightgcn_amazon_book": _recipe(OFFICIAL_LIGHTGCN, "(paper: Recall@20 0.0411)"),
    "lightgcn_yelp2018": _recipe(OFFICIAL_LIGHTGCN, "(paper: Recall@20 0.0649)"),
    # REFERENCE.md §2's official per-dataset settings
    "ultragcn_amazon_book": _recipe(
        OFFICIAL_ULTRAGCN, "paper: Recall@20 0.0681, NDCG@20 0.0556)",
        lr=1e-3, batch_size=1024, w1=1e-8, w2=1.0, w3=1.0, w4=1e-8, num_negatives=500, negative_weight=500.0,
        lambda_=2.75,
    ),
    "ultragcn_yelp2018": _recipe(
        OFFICIAL_ULTRAGCN, "paper: Recall@20 0.0683, NDCG@20 0.0561)",
        lr=1e-3, batch_size=1024, w1=1e-8, w2=1.0, w3=1e-8, w4=1.0, num_negatives=800, negative_weight=300.0,
        lambda_=5e-4,
    ),
    "ultragcn_gowalla": (
        [
            "(paper: Recall@20 0.1862, NDCG@20 0.1580)",
            "The official Gowalla preset (dslgraph.config) with 16x its batch, learning rate and gamma "
            "(batch 8,192, lr and gamma 1.6e-3), 420 epochs evaluated every 42",
            "the masks are updated every 3000 iterations",
        ],
        {
            "batch_size": 8192, "lr": 1.6e-3, "gamma": 1.6e-3, "epochs": 420, "eval_every": 42,
            "update_interval": 3000, "embedding_dim": 64, "std": 1e-4, "w1": 1e-6, "w2": 1.0, "w3": 1e-6,
            "w4": 1.0, "num_negatives": 1500, "negative_weight": 300.0, "lambda_": 5e-4,
        },
    ),
    **{f"{model}_{data}": recipe for model, recipe in ADAPTERS.items() for data in ADAPTER_DATASETS},
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_an_example_trains_the_recipe_its_docstring_states(name):
    said, recipe = RECIPES[name]
    script = _script(name)
    doc = " ".join(script["__doc__"].split())
    assert [phrase for phrase in said if phrase not in doc] == []
    args = build_parser().parse_args(script["DEFAULTS"])
    settings = settings_from_args(args)
    arguments = model_parameters(settings["model"]) | settings["options"]  # the model's own
    for setting, argument in MODEL_ARGUMENTS.items():
        if settings[setting] is None:  # left to the model (None: it has no such argument)
            settings[setting] = arguments.get(argument)
    settings = arguments | settings
    assert {key: settings[key] for key in recipe} == recipe
    # and the script gives no setting its docstring leaves unsaid (lightgcn_yelp2018.py's --eval-every 20 was)
    given = given_settings(args)
    assert (set(given) | set(given.get("options", {}))) - {"model", "dataset", "options"} <= set(recipe)


def test_every_example_s_recipe_is_checked_against_its_docstring():
    assert {script.stem for script in SCRIPTS} == set(RECIPES)  # all but custom_gnn_dsl.py


def test_example_help_shows_the_script_and_its_defaults(capsys):
    script = _script("lightgcn_gowalla")
    with pytest.raises(SystemExit):
        run_example(script["DEFAULTS"], script["__doc__"], ["--help"])
    shown = capsys.readouterr().out
    assert shown.startswith("LightGCN on Gowalla with the recipe that reproduced the paper")
    assert "This script runs: dslgraph train --dataset gowalla --batch-size 16384" in shown
    assert "--epochs" in shown  # then the flags that override it


def _lastfm_example(tmp_path, monkeypatch, settings: dict):
    """``examples/lightgcn_lastfm.py`` as a function of its flags (run in ``tmp_path``), after a first run of
    it with a config file of ``settings`` and a small model into its own folder, runs/lightgcn-lastfm."""
    monkeypatch.setenv("DSLGRAPH_HOME", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    script = _script("lightgcn_lastfm")
    run = functools.partial(run_example, script["DEFAULTS"], script["__doc__"])
    small = {"embedding_dim": 8, "num_layers": 1, "batch_size": 8192} | settings
    (tmp_path / "small.json").write_text(json.dumps(small))
    assert run(["--config", "small.json", "--no-progress", "--device", "cpu"]) == 0
    return run


def test_an_example_s_defaults_yield_to_a_config_file_and_to_the_resumed_run_s_settings(
    tmp_path, monkeypatch, capsys
):
    run = _lastfm_example(tmp_path, monkeypatch, {"epochs": 1, "lr": 0.005})
    metrics = json.loads((tmp_path / "runs" / "lightgcn-lastfm" / "metrics.json").read_text())
    # the script's --epochs 150 and --lr 0.01 overrode the file; what it leaves out is the script's
    assert metrics["epochs"] == 1 and metrics["settings"]["lr"] == 0.005
    assert metrics["settings"]["init"] == "xavier"
    # the script's --lr 0.01 was refused as a change of the run's lr, and its --epochs 150 trained 149 more
    assert run(["--resume", "--epochs", "2", "--no-progress"]) == 0
    metrics = json.loads((tmp_path / "runs" / "lightgcn-lastfm" / "metrics.json").read_text())
    assert metrics["epochs"] == 2 and metrics["settings"]["lr"] == 0.005
    assert run(["--resume", "--no-progress"]) == 2
    assert "it has trained 2 of 2 epochs" in capsys.readouterr().err


def test_an_example_resumed_with_flags_unfit_for_its_own_settings_resumes_in_its_own_folder(
    tmp_path, monkeypatch, capsys
):
    run = _lastfm_example(tmp_path, monkeypatch, {"epochs": 200, "stop_after_epoch": 1})
    # past the script's own --epochs 150, the flag fits the resumed run only: the folder is still the script's
    assert run(["--resume", "--stop-after-epoch", "160", "--max-seconds", "1e-9", "--no-progress"]) == 0
    metrics = json.loads((tmp_path / "runs" / "lightgcn-lastfm" / "metrics.json").read_text())
    assert metrics["epochs"] == 2 and metrics["settings"]["stop_after_epoch"] == 160


@pytest.mark.parametrize("name", ["lightgcn_lastfm", "neumf_ml1m"])
def test_an_example_s_dataset_yields_to_a_data_file_flag(name):
    defaults = _script(name)["DEFAULTS"]
    script = given_settings(build_parser().parse_args(defaults))
    settings = settings_from_args(build_parser().parse_args(["train", "--data-file", "mine.csv"]), script)
    assert settings["dataset"] == "file" and settings["data_file"] == "mine.csv"
    del script["dataset"]
    assert {name: settings[name] for name in script} == script  # the rest of the script's settings stay


def test_the_custom_gnn_example_says_what_it_does_and_refuses_no_epochs(capsys, monkeypatch):
    main = _script("custom_gnn_dsl")["main"]
    monkeypatch.setattr(sys, "argv", ["custom_gnn_dsl.py", "--help"])
    with pytest.raises(SystemExit):
        main()
    shown = " ".join(capsys.readouterr().out.split())  # as wrapped to any terminal's width
    assert "Plugging DSL into your own GNN recommender" in shown and "in [0, 1) (default 0.8)" in shown
    for epochs in ("-1", "0"):
        monkeypatch.setattr(sys, "argv", ["custom_gnn_dsl.py", "--epochs", epochs])
        with pytest.raises(SystemExit):
            main()  # DSL's "total_steps must be >= 1, got -21" (or 0) named no flag
        assert f"--epochs must be at least 1, got {epochs}" in capsys.readouterr().err
    monkeypatch.setattr(sys, "argv", ["custom_gnn_dsl.py", "--sparsity", "1.5"])
    with pytest.raises(SystemExit):
        main()  # a ValueError traceback from DynamicSparseLearning
    assert "--sparsity must be in [0, 1), got 1.5" in capsys.readouterr().err


@pytest.mark.parametrize("model", ["neumf", "convncf", "cdae", "multvae"])
def test_an_ml1m_example_reads_ratings_dat_as_its_docstring_says(tmp_path, model):
    # ml-1m keeps ratings >= 4, and the DSL paper counts all 1,000,209: the docstring says which and how
    script = _script(f"{model}_ml1m")
    raw = tmp_path / "ml-1m" / "raw"
    raw.mkdir(parents=True)
    ratings = [
        (user, item, (user + item) % 5 + 1, 1000 * user + item)
        for user in range(1, 7)
        for item in range(user, user + 8)  # 13 items: each user has 5 to draw evaluation negatives from
    ]
    (raw / "ratings.dat").write_text("".join("::".join(map(str, row)) + "\n" for row in ratings))
    doc = " ".join(script["__doc__"].split())
    every_rating = shlex.split(re.search(r"``(--data-file [^`]*)``", doc)[1].replace("ROOT", str(tmp_path)))
    few = ["--eval-negatives", "2", "--ks", "3"] if model in ("neumf", "convncf") else []  # leave-one-out's
    kept = {}
    for flags in (["--root", str(tmp_path)], every_rating):
        args = build_parser().parse_args(["train", *flags, *few])
        store = load_data(
            settings_from_args(args, given_settings(build_parser().parse_args(script["DEFAULTS"])))
        )[EDGE]
        kept[flags[0]] = store.edge_index.size(1) + store.edge_label_index.size(1)
    assert kept == {"--root": sum(rating >= 4 for *_, rating, _ in ratings), "--data-file": len(ratings)}


def test_the_custom_gnn_example_reads_lastfm_from_root_with_its_threads(tmp_path, monkeypatch):
    class Read(Exception):
        pass

    def lastfm(root=None):
        raise Read(root, torch.get_num_threads())

    threads = torch.get_num_threads()
    monkeypatch.setattr(dslgraph.data, "LastFM", lastfm)  # imported by the script from here
    main = _script("custom_gnn_dsl")["main"]
    for asked in (1, 2):
        torch.set_num_threads(3 - asked)  # another count than the one asked
        monkeypatch.setattr(
            sys, "argv", ["custom_gnn_dsl.py", "--root", str(tmp_path), "--threads", str(asked)]
        )
        try:
            with pytest.raises(Read) as read:
                main()
        finally:
            torch.set_num_threads(threads)
        assert read.value.args == (str(tmp_path), asked)


def test_the_custom_gnn_example_serves_the_dense_copy_it_trained(tmp_path, monkeypatch, capsys):
    # dsl.dense_state_dict() into PyG's LightGCN built without DSL: the same recall as the trained one
    main = _script("custom_gnn_dsl")["main"]
    monkeypatch.setattr(sys, "argv", ["custom_gnn_dsl.py", "--epochs", "1", "--root", str(tmp_path)])
    main()
    said = capsys.readouterr().out
    trained = re.search(r"epoch 1: recall@20=(\S+)", said)[1]
    assert f"dense copy to serve: recall@20={trained}" in said


def test_the_custom_gnn_example_names_a_root_it_cannot_use(tmp_path, monkeypatch, capsys):
    (tmp_path / "file").write_text("")
    main = _script("custom_gnn_dsl")["main"]
    monkeypatch.setattr(sys, "argv", ["custom_gnn_dsl.py", "--root", str(tmp_path / "file")])
    with pytest.raises(SystemExit):
        main()  # a DatasetUnavailableError traceback from LastFM
    said = " ".join(capsys.readouterr().err.split())
    assert f"--root: LastFM: {tmp_path / 'file'} is a file, not a folder" in said


def test_an_example_run_with_another_model_leaves_the_script_s_model_arguments_out(tmp_path, monkeypatch):
    class Trained(Exception):
        pass

    def run_training(settings, *args):
        raise Trained(settings)

    monkeypatch.setattr(dslgraph.cli, "run_training", run_training)

    def trained(name, *flags):
        script = _script(name)
        with pytest.raises(Trained) as raised:
            run_example(script["DEFAULTS"], script["__doc__"], [*flags, "--output", str(tmp_path)])
        return raised.value.args[0]

    # "init is not an argument of model 'neumf'": the script's --init xavier, never given by the user
    settings = trained("lightgcn_lastfm", "--model", "neumf")
    assert settings["model"] == "neumf" and settings["init"] is None
    assert settings["lr"] == 0.01 and settings["lr_schedule"] == "cosine"  # the rest of the script's stay
    settings = trained("ultragcn_gowalla", "--model", "lightgcn")  # and its --option gamma=0.0016
    assert settings["model"] == "lightgcn" and settings["options"] == {}
    assert trained("ultragcn_gowalla", "--model", "ultragcn")["options"]["gamma"] == 0.0016  # its own model
    # a script that gives no argument of its model: all its settings stay
    with pytest.raises(Trained) as raised:
        run_example(
            ["train", "--model", "lightgcn", "--lr", "0.02"],
            None,
            ["--model", "neumf", "--output", str(tmp_path)],
        )
    assert raised.value.args[0]["model"] == "neumf" and raised.value.args[0]["lr"] == 0.02


def test_an_example_run_of_another_model_or_data_goes_to_a_folder_named_after_them(tmp_path, monkeypatch):
    class Trained(Exception):
        pass

    def run_training(settings, output, *args):
        raise Trained(output)

    monkeypatch.setattr(dslgraph.cli, "run_training", run_training)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cdae.json").write_text(json.dumps({"model": "cdae"}))

    def output(name, *flags):
        script = _script(name)
        with pytest.raises(Trained) as raised:
            run_example(script["DEFAULTS"], script["__doc__"], list(flags))
        return raised.value.args[0]

    assert output("lightgcn_lastfm") == str(Path("runs", "lightgcn-lastfm"))
    # a NeuMF run of lightgcn_lastfm.py went to runs/lightgcn-lastfm, where a LightGCN run goes
    assert output("lightgcn_lastfm", "--model", "neumf") == str(Path("runs", "neumf-lastfm"))
    assert output("lightgcn_lastfm", "--config", "cdae.json") == str(Path("runs", "cdae-lastfm"))
    assert output("lightgcn_lastfm", "--dataset", "ml-100k") == str(Path("runs", "lightgcn-ml-100k"))
    assert output("neumf_ml1m", "--data-file", "mine.csv") == str(Path("runs", "neumf-mine"))
    assert output("ultragcn_gowalla", "--model", "ultragcn") == str(Path("runs", "ultragcn-gowalla"))
    assert output("lightgcn_lastfm", "--model", "neumf", "--output", "mine") == "mine"


def test_an_example_run_reads_its_config_file_once(tmp_path, monkeypatch, capsys):
    # it was read to name the folder, again to leave the script's model arguments out and a third time for
    # the settings: a file edited meanwhile could train one model in another's folder
    class Trained(Exception):
        pass

    def run_training(settings, output, *args):
        raise Trained(output)

    reads = []

    def read(path):
        reads.append(path)
        return load_config_file(path)

    monkeypatch.setattr(dslgraph.cli, "run_training", run_training)
    monkeypatch.setattr(dslgraph.cli, "load_config_file", read)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cdae.json").write_text(json.dumps({"model": "cdae"}))
    script = _script("lightgcn_lastfm")
    run = functools.partial(run_example, script["DEFAULTS"], script["__doc__"])
    with pytest.raises(Trained) as raised:
        run(["--config", "cdae.json"])
    assert raised.value.args[0] == str(Path("runs", "cdae-lastfm")) and reads == ["cdae.json"]
    reads.clear()
    assert run(["--config", "cdae.json", "--resume"]) == 2  # the folder the config file's model names
    assert f"{Path('runs', 'cdae-lastfm', 'last.pt')}" in capsys.readouterr().err and reads == ["cdae.json"]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_an_example_run_on_another_dataset_names_the_script_s_settings_tuned_for_its_own(
    script, tmp_path, monkeypatch, caplog
):
    # ultragcn_gowalla.py --dataset yelp2018 trained with Gowalla's batch, lr and gamma without a word
    class Trained(Exception):
        pass

    def run_training(settings, *args):
        raise Trained(settings)

    monkeypatch.setattr(dslgraph.cli, "run_training", run_training)
    defaults = runpy.run_path(str(script))["DEFAULTS"]
    ours = settings_from_args(build_parser().parse_args(defaults))["dataset"]
    other = "yelp2018" if ours != "yelp2018" else "gowalla"

    def warned(*flags):
        caplog.clear()
        with pytest.raises(Trained) as raised:
            run_example(defaults, None, [*flags, "--output", str(tmp_path)])
        said = [r.getMessage() for r in caplog.records if "were tuned for" in r.getMessage()]
        return raised.value.args[0], said

    settings, said = warned()
    assert not said  # on its own dataset
    tuned = {k: v for k, v in given_settings(build_parser().parse_args(defaults)).items() if k != "dataset"}
    settings, said = warned("--dataset", other)
    if set(tuned) <= {"model"}:  # the script sets no more than its model and dataset: nothing tuned
        assert not said
        return
    (said,) = said
    assert said.startswith(f"this example's settings were tuned for {ours}, not {other}: ")
    for name, value in tuned.items():
        if name not in ("model", "options"):
            assert f"{name}={value}" in said and settings[name] == value  # named, and still in effect
    command = f"dslgraph train --model {settings['model']} --dataset {other}"
    assert said.endswith(f"{command} (the model's defaults and the dataset's preset)")
    # a data file has no settings tuned for it: the script's recipe is taken as it is
    assert not warned("--data-file", "mine.csv")[1]


def test_an_example_run_on_another_dataset_names_only_the_script_s_settings_left_in_effect(
    tmp_path, monkeypatch, caplog
):
    class Trained(Exception):
        pass

    monkeypatch.setattr(dslgraph.cli, "run_training", lambda *args: (_ for _ in ()).throw(Trained()))
    defaults = _script("ultragcn_gowalla")["DEFAULTS"]
    flags = ["--dataset", "yelp2018", "--lr", "0.001", "--option", "gamma=1e-4", "--output", str(tmp_path)]
    with pytest.raises(Trained):
        run_example(defaults, None, flags)
    (said,) = [r.getMessage() for r in caplog.records if "were tuned for" in r.getMessage()]
    assert "tuned for gowalla, not yelp2018: epochs=420, batch_size=8192, eval_every=42 still act" in said
    with pytest.raises(Trained):  # every setting of the script overridden: nothing to say
        caplog.clear()
        more = ["--batch-size", "1024", "--epochs", "5", "--eval-every", "5"]
        run_example(defaults, None, [*flags, *more])
    assert not [r for r in caplog.records if "were tuned for" in r.getMessage()]


def test_the_custom_gnn_example_steps_dsl_after_every_optimizer_step(tmp_path, monkeypatch, capsys):
    # its docstring: "Call dsl.step() after every optimizer.step()", over the total_steps DSL was given
    calls, horizon = [], []

    class Counted(dslgraph.sparse.DynamicSparseLearning):
        def __init__(self, *args, total_steps, **kwargs):
            super().__init__(*args, total_steps=total_steps, **kwargs)
            horizon.append(total_steps)

        def attach(self, optimizer):
            optimizer.register_step_post_hook(lambda *_: calls.append("optimizer"))
            return super().attach(optimizer)

        def step(self):
            calls.append("dsl")
            super().step()

    monkeypatch.setattr(dslgraph.sparse, "DynamicSparseLearning", Counted)  # imported by the script from here
    main = _script("custom_gnn_dsl")["main"]
    monkeypatch.setattr(sys, "argv", ["custom_gnn_dsl.py", "--epochs", "1", "--root", str(tmp_path)])
    main()
    assert horizon and calls == ["optimizer", "dsl"] * horizon[0]
