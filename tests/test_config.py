"""NumPy scalars as settings (``epochs=np.int64(5)`` from a grid): taken where Python's number is, and
passed on as Python's, which JSON writes as numbers and ``torch.load(weights_only=True)`` reads."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from dslgraph.config import FIELDS, OTHER_DEVICES, ConfigError, check_settings, validate, with_article
from dslgraph.train.trainer import check_metadata

#: A valid value of every int setting, and of every float one (exact in float32).
INTS = {
    "eval_negatives": 100,  # its default: other values act under leave-one-out only
    "embedding_dim": 8,
    "num_layers": 2,
    "epochs": 5,
    "batch_size": 64,
    "eval_every": 2,
    "eval_batch_size": 128,
    "patience": 3,
    "stop_after_epoch": 2,
    "checkpoint_every": 3,
    "seed": 7,
    "split_seed": 8,
    "threads": 1,
    "update_interval": 50,
    "t_end": 100,
}
FLOATS = {
    "init_std": 0.25,
    "lr": 0.5,
    "lr_min": 0.125,
    "reg_weight": 0.25,
    "val_ratio": 0.25,
    "max_seconds": 2.5,
    "sparsity": 0.75,
    "rho0": 0.5,
    "rho_min": 0.25,
}
BOOLS = {"skip_zero_gradient": True, "static_mask": True, "compile": True}


def numpy_free(value) -> bool:
    """Whether ``value`` holds no NumPy scalar, in its containers neither."""
    if isinstance(value, dict):
        return all(map(numpy_free, value.values()))
    if isinstance(value, (list, tuple)):
        return all(map(numpy_free, value))
    return not isinstance(value, np.generic)


def test_the_tables_cover_every_number_setting():
    for kind, table in ((int, INTS), (float, FLOATS), (bool, BOOLS)):
        assert set(table) == {name for name, field in FIELDS.items() if field.kind is kind}


@pytest.mark.parametrize("numpy_type", [np.int64, np.int32, np.uint8])
@pytest.mark.parametrize("name", sorted(INTS))
def test_numpy_integers_are_taken_as_ints(name, numpy_type):
    value = validate({name: numpy_type(INTS[name])})[name]
    assert type(value) is int and value == INTS[name]


@pytest.mark.parametrize("numpy_type", [np.float64, np.float32, np.int64, np.int32])
@pytest.mark.parametrize("name", sorted(FLOATS))
def test_numpy_reals_are_taken_as_floats(name, numpy_type):
    # an integer in range: 1, or 0 where the range ends below 1 or rho_min would exceed rho0
    integral = 0 if name in ("val_ratio", "sparsity", "rho_min") else 1
    given = FLOATS[name] if np.issubdtype(numpy_type, np.floating) else integral
    settings = validate({name: numpy_type(given)})
    assert type(settings[name]) is float and settings[name] == given
    assert numpy_free(settings)  # a model argument (init_std) too, in the model's options


@pytest.mark.parametrize("name", sorted(BOOLS))
def test_numpy_bools_are_taken_as_bools(name):
    assert validate({name: np.True_})[name] is True


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        # as the Python values are refused: a float, however integral, and a bool are no int
        ("epochs", np.float64(2.5), r"epochs must be an int in \[1, inf\), got {}"),
        ("epochs", np.float64(5.0), r"epochs must be an int in \[1, inf\), got {}"),
        ("epochs", np.True_, r"epochs must be an int in \[1, inf\), got {}"),
        ("epochs", np.int64(0), r"epochs must be an int in \[1, inf\), got 0$"),
        ("seed", np.int64(-1), r"seed must be an int in \[0, 18446744073709551615\], got -1$"),
        ("checkpoint_every", np.int64(-1), r"checkpoint_every must be an int in \[0, inf\), got -1$"),
        ("sparsity", np.float32(1.0), r"sparsity must be a float in \[0, 1\), got 1.0$"),
        ("lr", np.float64("nan"), r"lr must be a float in \(0, inf\), got nan$"),
        ("lr", np.True_, r"lr must be a float in \(0, inf\), got {}"),
        ("static_mask", np.int64(1), r"static_mask must be a bool, got {}"),
        ("model", np.str_("lightgnc"), r"model must be one of \["),
    ],
)
def test_wrong_numpy_values_are_refused_as_python_ones_are(name, value, message):
    # {} is the value as NumPy writes it: np.float64(2.5) from NumPy 2 on, 2.5 before
    with pytest.raises(ConfigError, match=message.format(re.escape(repr(value)))):
        validate({name: value})


def test_model_options_take_numpy_numbers_as_their_defaults_types():
    settings = validate(
        {
            "model": "neumf",
            "embedding_dim": np.int64(8),
            "options": {
                "dropout": np.float32(0.25),
                "block_pairs": np.int64(64),
                "mlp_layers": np.arange(32, 7, -8),
            },
        }
    )
    assert settings["options"] == {"dropout": 0.25, "block_pairs": 64, "mlp_layers": [32, 24, 16, 8]}
    assert numpy_free(settings) and settings["embedding_dim"] == 8
    json.dumps(settings)  # np.int64 is no JSON number
    written = re.escape(repr(np.float64(64.0)))  # np.float64(64.0) from NumPy 2 on, 64.0 before
    with pytest.raises(ConfigError, match=rf"block_pairs of model 'neumf' must be an int .*got {written}"):
        validate({"model": "neumf", "options": {"block_pairs": np.float64(64.0)}})
    with pytest.raises(ConfigError, match=r"mlp_layers of model 'neumf' must be a list of int"):
        validate({"model": "neumf", "options": {"mlp_layers": np.array([32.0, 8.0])}})


@pytest.mark.parametrize(
    ("model", "option", "value", "message"),
    [
        # "must be a int" before
        ("neumf", "block_pairs", 1.5, "block_pairs of model 'neumf' must be an int (like its default"),
        ("ultragcn", "w1", "small", "w1 of model 'ultragcn' must be a float (like its default"),
        # "must be a tuple (like its default (32, 32, 16, 8))" before, where the settings take a list
        ("neumf", "mlp_layers", 5, "mlp_layers of model 'neumf' must be a list of int (like its default [32"),
    ],
)
def test_a_model_argument_of_the_wrong_type_is_refused_naming_its_type(model, option, value, message):
    with pytest.raises(ConfigError) as error:
        validate({"model": model, "options": {option: value}})
    assert str(error.value).startswith(message), error.value


def test_with_article_gives_each_type_name_its_article():
    names = ["int", "float", "bool", "str", "list", "tuple", "dict", "object"]
    assert [with_article(name) for name in names] == [
        "an int", "a float", "a bool", "a str", "a list", "a tuple", "a dict", "an object"
    ]  # fmt: skip


def test_check_settings_returns_plain_values_and_leaves_others_alone():
    given = {"epochs": np.int64(3), "lr": np.float32(0.5), "ks": np.arange(5, 15, 5), "progress": np.False_}
    checked = check_settings(given)
    assert checked == {"epochs": 3, "lr": 0.5, "ks": [5, 10], "progress": np.False_}  # progress: no setting
    assert type(checked["epochs"]) is int and type(checked["lr"]) is float and type(checked["ks"][0]) is int
    assert type(given["epochs"]) is np.int64  # the caller's mapping is not changed


def test_a_setting_given_as_null_is_refused_unless_it_may_be_left_unset():
    """A config file's ``"epochs": null`` fails naming the setting, not later in the trainer; settings whose
    default is "unset" (the model's own ``embedding_dim``) take null."""
    with pytest.raises(ConfigError, match=r"epochs must be an int in \[1, inf\), got None$"):
        validate({"epochs": None})
    with pytest.raises(ConfigError, match=r"epochs must be an int in \[1, inf\), got None$"):
        check_settings({"epochs": None})
    assert validate({"embedding_dim": None})["embedding_dim"] is None
    assert check_settings({"embedding_dim": None}) == {"embedding_dim": None}


def test_a_bool_is_no_int_setting_nor_int_model_argument():
    # True == 1 in Python: "epochs": true would have trained one epoch
    with pytest.raises(ConfigError, match=r"epochs must be an int in \[1, inf\), got True$"):
        validate({"epochs": True})
    with pytest.raises(ConfigError, match=r"block_pairs of model 'neumf' must be an int .*got True$"):
        validate({"model": "neumf", "options": {"block_pairs": True}})


def test_an_open_lower_bound_refuses_the_bound_and_a_closed_one_takes_it():
    for name in ("lr", "init_std"):  # (0, inf): a learning rate or a spread of 0 trains nothing
        with pytest.raises(ConfigError, match=rf"{name} must be a float in \(0, inf\), got 0.0$"):
            validate({name: 0.0})
    assert validate({"reg_weight": 0.0, "lr_min": 0.0})["reg_weight"] == 0.0  # [0, inf)


def test_bounds_between_settings_take_equal_values():
    """rho_min "must not exceed" rho0 nor lr_min lr: equal ones (a constant fraction, a flat cosine) pass."""
    assert validate({"rho0": 0.3, "rho_min": 0.3})["rho_min"] == 0.3
    assert validate({"lr": 0.01, "lr_min": 0.01, "lr_schedule": "cosine"})["lr_min"] == 0.01


def test_a_monitor_at_a_cutoff_outside_ks_is_refused_before_the_data_is_loaded():
    # the trainer refused it too, but only once the data had been read and split
    with pytest.raises(ConfigError, match=r"with K in ks=\[10, 20\] under protocol 'full', got 'recall@5'$"):
        validate({"ks": [10, 20], "monitor": "recall@5"})
    with pytest.raises(ConfigError, match=r"got 'recall@020'$"):
        validate({"ks": [20], "monitor": "recall@020"})


def test_the_default_monitor_is_at_the_first_of_ks():
    assert validate({"ks": [10, 20]})["monitor"] == "recall@10"
    assert validate({"model": "neumf", "ks": [5, 10]})["monitor"] == "hr@5"


def test_eval_negatives_is_refused_under_every_protocol_but_leave_one_out():
    with pytest.raises(
        ConfigError, match="eval_negatives acts under protocol 'leave-one-out' only, not 'held"
    ):
        validate({"model": "cdae", "protocol": "held-out-users", "eval_negatives": 20})
    assert validate({"protocol": "leave-one-out", "eval_negatives": 20})["eval_negatives"] == 20


def test_a_target_that_is_an_empty_pattern_is_refused():
    # the empty regular expression matches every parameter name: DSL would sparsify the whole model
    with pytest.raises(ConfigError, match=r"targets must be a non-empty list .*, got \['tables', ''\]"):
        validate({"sparsity": 0.5, "targets": ["tables", ""]})


def test_a_model_argument_given_overrides_the_preset_s():
    settings = validate({"model": "ultragcn", "dataset": "gowalla", "options": {"num_negatives": 20}})
    assert settings["options"]["num_negatives"] == 20
    assert settings["options"]["negative_weight"] == 300.0  # the preset's others stay


def test_numpy_text_is_taken_as_a_python_str():
    settings = validate({"model": np.str_("cdae"), "sampling": np.str_("user")})
    assert type(settings["model"]) is str and type(settings["sampling"]) is str


@pytest.mark.parametrize("folder", [Path("cache"), np.str_("cache")])
def test_a_path_given_as_a_model_argument_is_taken_as_text(folder):
    """UltraGCN's cache_dir (its default None says no type) as a Path or np.str_, from an example script's
    defaults: kept as it was, it went into the run's settings, which a Trainer refused as "metadata" that a
    checkpoint cannot read back, before training."""
    settings = validate({"model": "ultragcn", "options": {"cache_dir": folder}})
    assert type(settings["options"]["cache_dir"]) is str and settings["options"]["cache_dir"] == "cache"
    check_metadata({"settings": settings})
    assert validate({"model": "ultragcn", "options": {"cache_dir": None}})["options"]["cache_dir"] is None


@pytest.mark.parametrize("value", [3, 1.5, True, ["cache"]])
def test_a_model_argument_of_no_default_type_that_is_not_a_path_is_refused(value):
    """``--option cache_dir=3`` was taken, and UltraGCN refused it only after the data had loaded."""
    with pytest.raises(ConfigError, match=r"cache_dir of model 'ultragcn' must be a path \(text\), got"):
        validate({"model": "ultragcn", "options": {"cache_dir": value}})


def test_a_config_file_that_is_missing_or_no_json_object_is_refused_naming_it(tmp_path):
    from dslgraph.config import load_config_file

    with pytest.raises(ConfigError, match=rf"config file {tmp_path / 'none.json'} does not exist$"):
        load_config_file(tmp_path / "none.json")
    config = tmp_path / "c.json"
    config.write_text('[{"epochs": 2}]')
    with pytest.raises(ConfigError, match=rf"config file {config} must hold a JSON object of settings$"):
        load_config_file(config)


def test_text_given_for_a_list_is_refused_quoting_it_not_its_characters():
    with pytest.raises(ConfigError, match=r"ks must be a list, got '20'$"):
        check_settings({"ks": "20"})  # as TrainConfig(ks="20") checks it
    with pytest.raises(ConfigError, match=r"mlp_layers of model 'neumf' must be a list of int .*got '32'$"):
        validate({"model": "neumf", "options": {"mlp_layers": "32"}})


def test_ks_beyond_the_leave_one_out_candidates_are_refused_before_the_data_is_loaded():
    assert validate({"protocol": "leave-one-out", "eval_negatives": 19})["ks"] == [20]
    # was refused by the evaluator, after the data was read and split: ks must be ... in [1, 11]
    with pytest.raises(ConfigError, match=r"ks \[20\] must not exceed 11 under .*eval_negatives=10"):
        validate({"protocol": "leave-one-out", "eval_negatives": 10})
    assert validate({"ks": [500], "monitor": "recall@500"})["ks"] == [500]  # full ranking: the items bound it


def test_a_config_file_s_paths_may_start_at_the_home_folder(tmp_path, monkeypatch):
    from dslgraph.config import load_config_file

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    config = tmp_path / "exp.json"
    config.write_text('{"data_file": "~/mine.csv", "root": "~/data"}')  # no shell expands them
    assert load_config_file(config) == {
        "data_file": str(tmp_path / "home" / "mine.csv"),  # was tmp_path/~/mine.csv
        "root": str(tmp_path / "home" / "data"),
    }


def test_a_config_file_with_a_byte_order_mark_is_read(tmp_path):
    from dslgraph.config import load_config_file

    config = tmp_path / "c.json"
    config.write_text('{"epochs": 2}', encoding="utf-8-sig")  # as Notepad saves it
    assert load_config_file(config) == {"epochs": 2}  # was: not valid JSON: Unexpected UTF-8 BOM


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000 + "]" * 100_000,  # RecursionError from json, with a traceback
        '{"seed": 1' + "0" * 5000 + "}",  # ValueError: Exceeds the limit (4300 digits), naming no file
    ],
)
def test_a_config_file_json_cannot_read_is_refused_naming_it(tmp_path, text):
    from dslgraph.config import load_config_file

    config = tmp_path / "c.json"
    config.write_text(text)
    with pytest.raises(ConfigError, match=rf"^config file {config} could not be read as JSON: "):
        load_config_file(config)


def test_a_yaml_config_file_is_refused_saying_json_is_read(tmp_path):
    from dslgraph.config import load_config_file

    config = tmp_path / "exp.yaml"
    config.write_text("epochs: 2\nsparsity: 0.8\n")  # was: not valid JSON: Expecting value: line 1 column 1
    with pytest.raises(
        ConfigError, match=r"exp.yaml is not valid JSON \(YAML is not read: write the settings as"
    ):
        load_config_file(config)


def test_a_share_given_as_a_percentage_is_refused_with_the_fraction_meant():
    with pytest.raises(ConfigError, match=r"got 80.0 \(a fraction: 0.8 for 80%\)$"):
        validate({"sparsity": 80})
    with pytest.raises(ConfigError, match=r"got 100.0 \(a fraction: 1 for 100%\)$"):
        validate({"sparsity": 100})
    with pytest.raises(ConfigError, match=r"val_ratio must be a float in \[0, 1\), got 1.0$"):
        validate({"val_ratio": 1})  # 1 is no percentage: the share's open bound


@pytest.mark.parametrize(
    "recbole, ours",
    [
        ("learning_rate", "lr"),
        ("topk", "ks"),
        ("train_batch_size", "batch_size"),  # was: did you mean 'eval_batch_size'?
        ("embedding_size", "embedding_dim"),
        ("eval_step", "eval_every"),
        ("n_layers", "num_layers"),
        ("valid_metric", "monitor"),
        ("data_path", "root"),  # was: did you mean 'data_options'?
    ],
)
def test_recbole_s_name_of_a_setting_is_answered_with_dslgraph_s(recbole, ours):
    with pytest.raises(
        ConfigError, match=rf"\['{recbole}'\] \(RecBole's '{recbole}' is '{ours}' here\); known"
    ):
        validate({recbole: 1})


def test_recbole_s_stopping_step_is_answered_with_the_patience_it_stands_for():
    # RecBole stops after stopping_step + 1 evaluations without a gain: its 3 as patience 3 stopped earlier
    with pytest.raises(
        ConfigError, match=r"\(RecBole's 'stopping_step' N is 'patience' N \+ 1 here\); known"
    ):
        validate({"stopping_step": 3})
    with pytest.raises(
        ConfigError,
        match=r"\(RecBole's 'learning_rate' is 'lr', 'stopping_step' N is 'patience' N \+ 1 here\); known",
    ):
        validate({"learning_rate": 0.01, "stopping_step": 3})


@pytest.mark.parametrize(
    "recbole, ours",
    [
        ("mf_embedding_size", "embedding_dim"),
        ("mlp_embedding_size", "mlp_layers"),
        ("mlp_hidden_size", "mlp_layers"),
    ],
)
def test_recbole_s_neumf_widths_are_answered_with_the_argument_that_holds_them(recbole, ours):
    # mlp_embedding_size was answered as embedding_dim, the GMF tables' width, not the MLP tables'
    with pytest.raises(ConfigError, match=rf"RecBole's '{recbole}' is '{ours}' here|option {ours}=VALUE"):
        validate({"model": "neumf", recbole: 16})


@pytest.mark.parametrize(
    "recbole, value, answer",
    [
        ("metrics", ["Recall", "NDCG"], "every evaluation reports all of ['recall', 'ndcg', 'precision', "),
        ("neg_sampling", {"uniform": 1}, "training draws uniform negatives among each user's unseen items"),
        ("train_neg_sample_args", {"distribution": "uniform"}, "training draws uniform negatives"),
        ("eval_args", {"mode": "full"}, "the test split is the dataset's own"),  # was: 'eval_every'?
    ],
)
def test_recbole_s_settings_that_dslgraph_has_none_for_say_what_stands_in(recbole, value, answer):
    # metrics had no hint, and neg_sampling was answered "did you mean 'sampling'?", how positives are drawn
    with pytest.raises(ConfigError) as raised:
        validate({recbole: value})
    assert f"(RecBole's '{recbole}' has no setting here: {answer}" in str(raised.value)
    assert "did you mean" not in str(raised.value)


def test_recbole_s_names_of_how_a_file_is_read_are_answered_with_data_options_keys():
    with pytest.raises(
        ConfigError,
        match=r"\(\['sep'\] go in data_options; RecBole's 'USER_ID_FIELD' is 'user_col', "
        r"'user_inter_num_interval' is 'min_user_interactions' in data_options; RecBole's 'threshold' has no "
        r"setting here: RecBole labels interactions by it; data_options' rating_threshold, with rating_col, "
        r"keeps only those rated at or above it\); known",
    ):  # threshold was answered "did you mean 'threads'?", user_inter_num_interval 'update_interval'
        validate({"sep": "\t", "USER_ID_FIELD": "user_id", "threshold": 4, "user_inter_num_interval": 5})


@pytest.mark.parametrize(
    "settings, hint",
    [
        ({"monitor": "Recall@20"}, " (metric names are lower case: 'recall@20')"),
        ({"monitor": "hit@20"}, " (RecBole's 'hit' is 'hr' here)"),
        ({"protocol": "leave-one-out", "monitor": "Hit@20"}, " (RecBole's 'Hit' is 'hr' here)"),
        ({"monitor": "mrr@20"}, ""),  # computed nowhere: the refusal names it
        ({"monitor": "NDCG@10"}, " (metric names are lower case: 'ndcg@10')"),  # and K=10 is in no ks
    ],
)
def test_a_monitor_in_recbole_s_spelling_is_refused_naming_dslgraph_s(settings, hint):
    with pytest.raises(ConfigError, match=re.escape(f"got {settings['monitor']!r}{hint}") + "$"):
        validate(settings)


@pytest.mark.parametrize(
    "name, value",
    [("model", "LightGCN"), ("model", "NeuMF"), ("dataset", "ML-100K"), ("device", "CUDA:1")],
)
def test_a_choice_written_in_capitals_is_refused_naming_it_in_lower_case(name, value):
    with pytest.raises(ConfigError, match=re.escape(f"got {value!r} (lower case: {value.lower()!r})") + "$"):
        validate({name: value})
    with pytest.raises(ConfigError, match=r"got 'GPU'$"):  # no choice in any case
        validate({"device": "GPU"})


@pytest.mark.parametrize("device", ["mps", "mps:0", "MPS", "xpu"])
def test_a_torch_device_other_than_cpu_and_cuda_is_refused_saying_why_and_what_to_use(device):
    """`--device mps` said only which devices are allowed, not that dslgraph's kernels lack MPS."""
    with pytest.raises(ConfigError, match=re.escape(f"got {device!r} ({OTHER_DEVICES})") + "$"):
        validate({"device": device})
    assert "sparse kernels" in OTHER_DEVICES and "use 'cpu'" in OTHER_DEVICES


@pytest.mark.parametrize("device", ["cpu:0", "CPU:1", "meta:x", "cuda:0:1"])
def test_a_device_spelled_otherwise_is_not_told_its_backend_is_missing(device):
    # cpu:0 is the CPU, whose kernels dslgraph has: "no MPS or other backend" was said of it too
    with pytest.raises(
        ConfigError,
        match=re.escape(f"must be one of ['auto', 'cpu', 'cuda', 'cuda:N'], got {device!r}") + "$",
    ):
        validate({"device": device})


def test_a_torch_device_s_name_given_to_another_setting_is_not_said_to_be_a_device():
    with pytest.raises(ConfigError, match=r"model must be one of .*, got 'mps'$"):
        validate({"model": "mps"})


def test_unknown_settings_are_each_given_what_they_may_mean():
    with pytest.raises(
        ConfigError,
        match=r"\['epoch', 'learning_rate', 'sep'\] \(\['sep'\] go in data_options; RecBole's "
        r"'learning_rate' is 'lr' here; did you mean 'epochs'\?\)",  # sep's hint was the only one
    ):
        validate({"epoch": 3, "learning_rate": 0.1, "sep": ","})
    # a model argument at the top level, as RecBole's flat config files give it
    with pytest.raises(
        ConfigError,
        match=r"\(arguments of model 'multvae' go in options: --option dropout=VALUE \(RecBole's "
        r"dropout_prob\) --option latent_dim=VALUE\)",
    ):
        validate({"model": "multvae", "dropout_prob": 0.2, "latent_dim": 100})
    with pytest.raises(ConfigError, match=r"\(RecBole's 'mlp_hidden_size' is 'hidden_channels' here\)"):
        validate({"model": "multvae", "options": {"mlp_hidden_size": [600]}})
    with pytest.raises(ConfigError, match=r"\(RecBole's 'mlp_hidden_size' is 'mlp_layers' here\)"):
        validate({"model": "neumf", "options": {"mlp_hidden_size": [64, 32]}})
    with pytest.raises(  # was: did you mean 'root'?
        ConfigError,
        match=r"\('dropout' names an argument of model\(s\) \['neumf', 'multvae'\], not of 'cdae'\)",
    ):
        validate({"model": "cdae", "dropout": 0.1})
    with pytest.raises(ConfigError, match=r"unknown setting\(s\) \['q'\]; known"):
        validate({"model": ["not", "a", "name"], "q": 1})  # no model to look the name up in


def test_a_flag_of_train_in_a_config_file_is_named_as_a_flag():
    with pytest.raises(ConfigError, match=r"\['epoch', 'output'\] \(--output: flags of dslgraph train, not"):
        validate({"output": "runs/x", "epoch": 3})  # was: unknown, with no word
    # RecBole's name of --output (its checkpoint_dir), which README's table gives, had no word either
    with pytest.raises(
        ConfigError,
        match=r"\(RecBole's 'checkpoint_dir' is --output here, a flag of dslgraph train, not a setting\)",
    ):
        validate({"checkpoint_dir": "runs/x"})
