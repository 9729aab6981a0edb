import copy
import errno
import functools
import inspect
import json
import logging
import os
import re
import warnings
from dataclasses import asdict, fields, replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch_geometric
import torch_geometric.transforms as T

import dslgraph.train.trainer as trainer_module
from dslgraph.config import FIELDS, OTHER_DEVICES, SETTING_PLACES, ConfigError, validate
from dslgraph.data import EDGE, make_interaction_data
from dslgraph.metrics import RankingEvaluator
from dslgraph.nn import LightGCN
from dslgraph.sparse import DynamicSparseLearning
from dslgraph.train import (
    CheckpointError,
    TrainConfig,
    Trainer,
    bpr_loss,
    load_checkpoint,
    locked_output,
    resolve_device,
    save_checkpoint,
)
from dslgraph.train.checkpoint import make_output_folder


def _trainer(data, out, epochs=4, **overrides):
    torch.manual_seed(0)
    settings = dict(epochs=epochs, batch_size=64, lr=0.01, eval_every=1, progress=False, seed=3) | overrides
    config = TrainConfig(**settings)
    return Trainer(LightGCN(30, 40, embedding_dim=8), data, config, output_dir=out, device="cpu")


def test_a_second_fit_of_one_trainer_goes_on_in_the_folder_it_wrote(small_data, tmp_path):
    """The files a trainer wrote are its own run, not an earlier one to refuse: stopped by max_seconds, it
    goes on with fit() again."""
    trainer = _trainer(small_data, tmp_path, epochs=3, max_seconds=1e-9)
    trainer.fit()
    assert trainer.epoch == 1
    trainer.fit()
    assert trainer.epoch == 2 and load_checkpoint(tmp_path / "last.pt")["epoch"] == 2


def test_a_resume_that_rounds_otherwise_says_it_once(small_data, tmp_path, caplog, monkeypatch):
    """Other CPU threads, another device or compile on or off: the run goes on from its checkpoint, though
    not bit for bit to the uninterrupted run's numbers, and nothing said so."""
    _trainer(small_data, tmp_path, epochs=2, stop_after_epoch=1).fit()
    threads = torch.get_num_threads()

    def warnings_at_resume(**overrides) -> list[str]:
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="dslgraph.train.trainer"):
            _trainer(small_data, tmp_path, epochs=2, **overrides).load(tmp_path / "last.pt")
        return [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]

    assert warnings_at_resume() == []  # as it was trained: bit for bit
    monkeypatch.setattr(torch, "get_num_threads", lambda: threads + 1)
    (said,) = warnings_at_resume(compile=True)
    assert said == (
        f"resumed from {tmp_path / 'last.pt'} with threads {threads}, now {threads + 1}; compile False, now "
        "True: the rest of the run rounds otherwise and will not be bit-identical to the uninterrupted run"
    )
    monkeypatch.setattr(Trainer, "_runtime", lambda self: {"device": "cuda (NVIDIA H200)"})
    (said,) = warnings_at_resume()  # on a GPU, which runs no CPU threads to compare
    assert "with device cpu, now cuda (NVIDIA H200): the rest of the run rounds otherwise" in said
    monkeypatch.undo()
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    state["runtime"] = {"device": "cuda (NVIDIA H200)"}  # a run resumed on the CPU after a GPU
    torch.save(state, tmp_path / "last.pt")
    (said,) = warnings_at_resume()
    assert "with device cuda (NVIDIA H200), now cpu: the rest of the run rounds otherwise" in said
    del state["runtime"]  # written before the runtime was recorded: only compile is known
    torch.save(state, tmp_path / "last.pt")
    assert warnings_at_resume() == []
    del state["config"]["compile"]  # and before compile was a setting: not compiled
    torch.save(state, tmp_path / "last.pt")
    assert warnings_at_resume() == []


def test_ks_up_to_the_number_of_items_are_taken(small_data):
    """A cut-off at the last item ranks the whole list, and every held-out item is in it: only ks beyond it
    are refused."""
    summary = _trainer(small_data, None, epochs=1, ks=(40,), monitor="recall@40").fit()
    assert summary["test"]["recall@40"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match=r"ks \(41,\) cut a ranking of the data's 40 items beyond its end"):
        _trainer(small_data, None, epochs=1, ks=(41,), monitor="recall@41")


def test_an_empty_test_split_is_named_before_ks_beyond_the_items():
    """Data too small to split has fewer items than the default ks too: the empty split is the cause."""
    train, test = torch.tensor([[0, 1, 2], [0, 1, 2]]), torch.empty(2, 0, dtype=torch.long)
    data = make_interaction_data(3, 5, train, test)
    with pytest.raises(ValueError, match="the test split of data holds no interaction"):
        Trainer(LightGCN(3, 5, embedding_dim=4), data, TrainConfig(epochs=1, progress=False), device="cpu")


@pytest.mark.parametrize("part", [0, None])
def test_data_split_by_random_link_split_is_refused_before_training(small_data, part):
    # its training part was trained on and evaluated against its own edges (and negatives) as the test split
    split = T.RandomLinkSplit(edge_types=EDGE)(small_data)
    message = "holds edge_label" if part == 0 else r"got a tuple \(PyG's RandomLinkSplit"
    with pytest.raises(ValueError, match=message):
        _trainer(split if part is None else split[part], None)


@pytest.mark.parametrize("split", ["test", "validation"])
def test_an_empty_evaluation_split_is_refused_before_training(small_data, split, tmp_path):
    # evaluated, it read as every metric 0 and made the first evaluation the best
    store = small_data[EDGE]
    empty = torch.empty(2, 0, dtype=torch.long)
    if split == "test":
        data = make_interaction_data(30, 40, store.edge_index, empty)
    else:
        data = make_interaction_data(30, 40, store.edge_index, store.edge_label_index, empty)
    with pytest.raises(ValueError, match=f"the {split} split of data holds no interaction"):
        _trainer(data, tmp_path / "run")
    assert not (tmp_path / "run").exists()  # refused before the output folder is made


def test_an_empty_test_split_is_refused_where_validation_picks_the_best(small_data):
    # the test metrics reported at the best validation epoch would all read 0
    store = small_data[EDGE]
    empty = torch.empty(2, 0, dtype=torch.long)
    data = make_interaction_data(30, 40, store.edge_index, empty, store.edge_label_index)
    with pytest.raises(ValueError, match="the test split of data holds no interaction"):
        _trainer(data, None)


def test_training_learns_and_writes_outputs(small_data, tmp_path):
    summary = _trainer(small_data, tmp_path, epochs=15).fit()
    first, last = summary["history"][0], summary["history"][-1]
    assert last["loss"] < first["loss"]
    assert summary["test"]["recall@20"] > first["test"]["recall@20"]
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written["test"] == summary["test"] and written["epochs"] == 15
    assert {"recall@20", "ndcg@20"} <= set(written["test"]) and written["train_seconds"] > 0
    assert (tmp_path / "best.pt").is_file() and (tmp_path / "last.pt").is_file()


def test_epoch_loss_is_the_mean_over_triples_and_a_diverged_one_fails(small_data, tmp_path):
    trainer = _trainer(small_data, tmp_path, batch_size=50)
    seen = []
    loss = trainer.model.loss
    trainer.model.loss = lambda *args, **kwargs: seen.append(loss(*args, **kwargs)) or seen[-1]
    mean = trainer.train_epoch()
    sizes = [users.numel() for users, *_ in trainer.batches]
    assert len(set(sizes)) > 1  # the last batch is smaller: the mean weighs each loss by its batch
    assert mean == pytest.approx(sum(value.item() * n for value, n in zip(seen, sizes)) / sum(sizes))
    trainer.model.loss = lambda *args, **kwargs: loss(*args, **kwargs) * float("nan")
    nan = r"training loss became nan in epoch 1; lower the lr, or .*\(CLI: --init-std, --reg-weight\)"
    with pytest.raises(FloatingPointError, match=nan):
        trainer.train_epoch()


def test_resume_continues_identically(small_data, tmp_path):
    full = _trainer(small_data, tmp_path / "a", epochs=4).fit()
    _trainer(small_data, tmp_path / "b", epochs=2).fit()
    resumed = _trainer(small_data, tmp_path / "b", epochs=4).fit(resume=True)
    strip = lambda h: [{k: v for k, v in e.items() if not k.endswith("seconds")} for e in h]  # noqa: E731
    assert strip(full["history"]) == strip(resumed["history"])


def test_a_compiled_model_writes_checkpoints_an_uncompiled_model_loads(small_data, tmp_path):
    """``Trainer(torch.compile(model))`` wrote the compiled module's state (``_orig_mod.embedding.weight``):
    loading ``last.pt`` into the model (or ``dslgraph eval`` on it) failed on every key. Such a run is not
    compiled (the wrapper compiles forward, which training and evaluation do not call): a warning says so."""
    torch.manual_seed(0)
    compiled = torch.compile(LightGCN(30, 40, embedding_dim=8), backend="eager")
    config = TrainConfig(epochs=2, batch_size=64, eval_every=1, progress=False, seed=3)
    not_compiled = r"torch\.compile wrapper, .* the run is not compiled; .*TrainConfig\(compile=True\)"
    with pytest.warns(UserWarning, match=not_compiled):
        trainer = Trainer(compiled, small_data, config, output_dir=tmp_path, device="cpu")
    trainer.fit()
    state = load_checkpoint(tmp_path / "last.pt")
    assert list(state["model"]) == ["embedding.weight"]
    model = LightGCN(30, 40, embedding_dim=8)
    model.load_state_dict(state["model"])
    torch.testing.assert_close(model.embedding.weight, compiled._orig_mod.embedding.weight)
    again = torch.compile(LightGCN(30, 40, embedding_dim=8), backend="eager")  # and a compiled run resumes
    config.epochs = 3
    with pytest.warns(UserWarning, match=not_compiled):
        trainer = Trainer(again, small_data, config, output_dir=tmp_path, device="cpu")
    assert trainer.fit(resume=True)["history"][-1]["epoch"] == 3
    with warnings.catch_warnings():  # where the loss is compiled, the wrapper is no mistake
        warnings.simplefilter("error")
        Trainer(again, small_data, replace(config, compile=True), output_dir=tmp_path, device="cpu")


def test_a_checkpoint_of_a_host_with_more_gpus_resumes_on_one(small_data, tmp_path, monkeypatch):
    _trainer(small_data, tmp_path, epochs=1).fit()
    state = load_checkpoint(tmp_path / "last.pt")
    state["cuda_rng"] = [torch.full((16,), i, dtype=torch.uint8) for i in range(2)]  # saved on two GPUs
    save_checkpoint(state, tmp_path / "last.pt")
    restored = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", restored.extend)  # torch's indexes GPU 1 and fails
    _trainer(small_data, tmp_path, epochs=2).load(tmp_path / "last.pt")
    assert len(restored) == 1 and torch.equal(restored[0], state["cuda_rng"][0])


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"lr": 0.02}, "lr was 0.01, now 0.02"),
        # a KeyError after the first resumed epoch: the saved best epoch has no recall@10 to compare with
        ({"ks": (10,), "monitor": "recall@10"}, "monitor was 'recall@20', now 'recall@10'"),
        ({"lr_schedule": "cosine", "lr_min": 1e-3}, "lr_min was 0.0001, now 0.001"),  # silently 1e-4
        # a run resumed under any of these is no longer the one the settings in its metrics.json describe
        ({"seed": 4}, "seed was 3, now 4"),
        ({"batch_size": 32}, "batch_size was 64, now 32"),
        ({"sampling": "user"}, "sampling was 'edge', now 'user'"),
        ({"reg_weight": 0.0}, "reg_weight was 0.0001, now 0.0"),
    ],
)
def test_resume_with_other_settings_fails(small_data, tmp_path, setting, message):
    _trainer(small_data, tmp_path, epochs=1, lr_schedule=setting.get("lr_schedule", "none")).fit()
    with pytest.raises(ValueError, match=re.escape(message)):
        _trainer(small_data, tmp_path, epochs=2, **setting).fit(resume=True)


@pytest.mark.parametrize(("saved", "now"), [("none", "cosine"), ("cosine", "none")])
def test_resume_under_another_lr_schedule_fails(small_data, tmp_path, saved, now):
    # resumed silently, a cosine run went on at its decayed lr held constant, and a constant one began a
    # cosine at the full lr half way through
    _trainer(small_data, tmp_path, epochs=1, lr_schedule=saved).fit()
    with pytest.raises(ValueError, match=f"lr_schedule was '{saved}', now '{now}'"):
        _trainer(small_data, tmp_path, epochs=2, lr_schedule=now).fit(resume=True)


def test_a_resumed_run_counts_its_training_seconds_on_from_the_checkpoint(small_data, tmp_path):
    # metrics.json's train_seconds is the whole run's, not the resumed part's
    _trainer(small_data, tmp_path, epochs=1).fit()
    saved = load_checkpoint(tmp_path / "last.pt")["train_seconds"]
    resumed = _trainer(small_data, tmp_path, epochs=2)
    resumed.load(tmp_path / "last.pt")
    assert saved > 0 and resumed.train_seconds == saved


def test_a_longer_resumed_run_lays_its_cosine_learning_rate_over_the_new_length(small_data, tmp_path):
    cosine = dict(lr_schedule="cosine", lr_min=1e-4)
    _trainer(small_data, tmp_path, epochs=2, **cosine).fit()
    longer = _trainer(small_data, tmp_path, epochs=4, **cosine)
    longer.load(tmp_path / "last.pt")
    half = 1e-4 + (0.01 - 1e-4) / 2  # iteration 2 of 4 epochs' worth: half way down the cosine
    assert longer.optimizer.param_groups[0]["lr"] == pytest.approx(half)
    longer.fit(resume=True)
    assert longer.optimizer.param_groups[0]["lr"] == pytest.approx(1e-4)  # not back up at 0.01
    shorter = _trainer(small_data, tmp_path, epochs=1, **cosine)  # past its end: the cosine stays at lr_min
    shorter.load(tmp_path / "last.pt")
    assert shorter.optimizer.param_groups[0]["lr"] == pytest.approx(1e-4)


def test_resume_from_another_model_fails_naming_the_checkpoint(small_data, tmp_path):
    _trainer(small_data, tmp_path, epochs=1).fit()
    config = TrainConfig(epochs=2, batch_size=64, lr=0.01, eval_every=1, progress=False, seed=3)
    wider = Trainer(LightGCN(30, 40, embedding_dim=16), small_data, config, output_dir=tmp_path, device="cpu")
    with pytest.raises(
        # named once: not again as "cannot resume from .../last.pt: checkpoint .../last.pt does not fit"
        CheckpointError,
        match=r"(?s)^checkpoint \S*last\.pt does not fit this model or dataset: .*size mismatch",
    ):
        wider.fit(resume=True)


def test_resume_on_other_data_or_with_another_optimizer_fails_naming_the_checkpoint(small_data, tmp_path):
    _trainer(small_data, tmp_path, epochs=1).fit()
    store = small_data[EDGE]
    swapped = make_interaction_data(40, 30, store.edge_index.flip(0), store.edge_label_index.flip(0))
    config = TrainConfig(epochs=2, batch_size=64, lr=0.01, eval_every=1, progress=False, seed=3)
    other = Trainer(LightGCN(40, 30, embedding_dim=8), swapped, config, output_dir=tmp_path, device="cpu")
    with pytest.raises(CheckpointError, match=r"last\.pt: it was trained on other interactions"):
        other.fit(resume=True)  # its table of 70 rows loaded silently
    model = LightGCN(30, 40, embedding_dim=8)
    sgd = Trainer(
        model,
        small_data,
        config,
        output_dir=tmp_path,
        device="cpu",
        optimizer=torch.optim.SGD(model.parameters(), lr=0.01),
    )
    with pytest.raises(CheckpointError, match=r"last\.pt: it was trained with Adam, now SGD"):
        sgd.fit(resume=True)  # loaded, then its first step failed: KeyError 'momentum'
    state = load_checkpoint(tmp_path / "last.pt")
    del state["data_fingerprint"], state["optimizer_class"]  # a checkpoint written before they were
    save_checkpoint(state, tmp_path / "last.pt")
    assert _trainer(small_data, tmp_path, epochs=2).fit(resume=True)["epochs"] == 2
    state["data_fingerprint"] = None  # recorded as none: taken as eval takes it, not as other interactions
    save_checkpoint(state, tmp_path / "last.pt")
    assert _trainer(small_data, tmp_path, epochs=2).fit(resume=True)["epochs"] == 2


@pytest.mark.parametrize(("value", "named"), [(Path("data"), "pathlib"), (np.int64(3), "numpy")])
def test_metadata_a_checkpoint_cannot_read_back_is_refused_before_training(
    small_data, tmp_path, value, named
):
    config = TrainConfig(epochs=1, batch_size=64, progress=False)
    with pytest.raises(
        ValueError, match=rf"metadata must hold only what a checkpoint reads back.*not a {named}"
    ):
        # saved in every checkpoint, then the resume failed: "Weights only load failed"
        Trainer(
            LightGCN(30, 40, embedding_dim=8),
            small_data,
            config,
            output_dir=tmp_path,
            device="cpu",
            metadata={"x": value},
        )
    metadata = {"root": "data", "sizes": (1, 2.5), "ok": None}
    trainer = Trainer(
        LightGCN(30, 40, embedding_dim=8),
        small_data,
        config,
        output_dir=tmp_path,
        device="cpu",
        metadata=metadata,
    )
    trainer.fit()
    assert load_checkpoint(tmp_path / "last.pt")["metadata"] == metadata


def _validation_data(data):
    """``data`` with its first 40 training interactions held out as the validation split."""
    store = data[EDGE]
    return make_interaction_data(
        30, 40, store.edge_index[:, 40:], store.edge_label_index, store.edge_index[:, :40]
    )


def test_validation_split_selects_best_epoch_and_early_stops(small_data, tmp_path):
    summary = _trainer(_validation_data(small_data), None, epochs=30, patience=2, lr=0.0).fit()
    assert summary["selection"] == "validation" and summary["validation"] is not None
    assert summary["epochs"] == 3  # lr 0: no improvement after the first evaluation


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        (
            "eval_every",
            0,
            r"eval_every must be an int in \[1, inf\), got 0",
        ),  # a ZeroDivisionError at the end of epoch 1
        ("epochs", -1, r"epochs must be an int in \[1, inf\), got -1"),  # trained nothing, silently
        ("seed", "x", r"seed must be an int in \[0, "),  # torch's "manual_seed expected a long"
        ("lr_schedule", "step", r"lr_schedule must be one of \['none', 'cosine'\], got 'step'"),
    ],
)
def test_a_setting_changed_after_the_config_was_made_is_checked_by_the_trainer(
    small_data, field, value, message
):
    config = TrainConfig(epochs=1, batch_size=64, progress=False)
    setattr(config, field, value)
    with pytest.raises(ConfigError, match=message):
        Trainer(LightGCN(30, 40, embedding_dim=8), small_data, config, device="cpu")


def test_evaluate_and_write_summary_name_what_they_lack(small_data):
    trainer = _trainer(small_data, None, epochs=1)
    with pytest.raises(ValueError, match=r"split must be 'test' or 'val' \(also 'validation'\), got 'train'"):
        trainer.evaluate("train")
    for split in ("validation", "val"):  # the evaluators' name of the split too
        with pytest.raises(ValueError, match="the data has no validation split; load it with val_ratio > 0"):
            trainer.evaluate(split)
    with pytest.raises(ValueError, match="no output_dir to hold metrics.json: pass Trainer an output_dir"):
        trainer.write_summary()
    with pytest.raises(ValueError, match="no output_dir to hold last.pt"):
        trainer.fit(resume=True)


def test_a_model_of_an_unknown_batch_kind_is_refused_naming_it(small_data):
    model = LightGCN(30, 40, embedding_dim=8)
    model.batch_kind = "triples"
    with pytest.raises(ValueError, match="model.batch_kind must be 'pairs' or 'users', got 'triples'"):
        Trainer(model, small_data, TrainConfig(epochs=1, progress=False), device="cpu")


def test_cosine_lr_reaches_minimum(small_data):
    trainer = _trainer(small_data, None, epochs=3, lr_schedule="cosine", lr_min=1e-4)
    trainer.fit()
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(1e-4)


def test_checkpoint_is_atomic_and_validated(tmp_path):
    path = save_checkpoint({"model": {}, "optimizer": {}, "epoch": 1, "config": {}}, tmp_path / "c.pt")
    assert load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="could not be read"):
        load_checkpoint(tmp_path / "bad.pt")
    torch.save({"model": {}}, tmp_path / "partial.pt")
    with pytest.raises(CheckpointError, match="lacks"):
        load_checkpoint(tmp_path / "partial.pt")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


def test_a_checkpoint_loads_onto_the_given_device_and_must_hold_a_dictionary(tmp_path):
    state = {"model": {"w": torch.ones(2)}, "optimizer": {}, "epoch": 1, "config": {}}
    path = save_checkpoint(state, tmp_path / "c.pt")
    assert load_checkpoint(path, map_location="meta")["model"]["w"].is_meta  # a CPU machine can map too
    torch.save(torch.zeros(3), tmp_path / "tensor.pt")  # a tensor answers `"model" in` with a RuntimeError
    with pytest.raises(CheckpointError, match="tensor.pt does not hold a dslgraph state dictionary"):
        load_checkpoint(tmp_path / "tensor.pt")


@pytest.mark.parametrize("text", [b"not a checkpoint", b'{"test": {"recall@20": 0.1}}'])
def test_a_file_that_is_no_checkpoint_fails_naming_what_it_is_not(text, tmp_path):
    (tmp_path / "metrics.json").write_bytes(text)  # e.g. `dslgraph eval run/metrics.json`
    with pytest.raises(CheckpointError, match="not the zip archive torch.save writes") as caught:
        load_checkpoint(tmp_path / "metrics.json")
    assert "weights_only" not in str(caught.value)  # torch's advice to unpickle it, code and all


# an empty tensor's entry records the CRC-32 of no bytes, 0, as a file written without checksums does: the
# others are checked all the same
@pytest.mark.parametrize("empty", [False, True])
def test_a_checkpoint_damaged_inside_a_tensor_is_refused(tmp_path, empty):
    """torch.load reads stored tensors without their checksums: bytes overwritten inside the weights
    loaded as NaN, which eval reported as a recall of 0 and recommend as a ranking."""
    model = {"w": torch.arange(4096.0), **({"empty": torch.empty(0)} if empty else {})}
    state = {"model": model, "optimizer": {}, "epoch": 1, "config": {}}
    path = save_checkpoint(state, tmp_path / "c.pt")
    data = bytearray(path.read_bytes())
    start = data.index(torch.arange(4096.0).numpy().tobytes()[:64])  # the tensor's bytes in the archive
    data[start + 100 : start + 4100] = b"\xff" * 4000
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(bytes(data))
    assert torch.load(damaged, weights_only=True)["model"]["w"].isnan().any()  # what torch alone gives
    message = r"damaged.pt is damaged: its entry \S+/data/0 fails its checksum"
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(damaged)
    assert load_checkpoint(path)["model"]["w"].equal(torch.arange(4096.0))


def test_a_checkpoint_written_without_checksums_loads(tmp_path):
    """torch can be told to write no CRC-32s (all 0): such a file is whole, not damaged."""
    state = {"model": {"w": torch.arange(4.0)}, "optimizer": {}, "epoch": 1, "config": {}}
    before = torch.serialization.get_crc32_options()
    torch.serialization.set_crc32_options(False)
    try:
        path = save_checkpoint(state, tmp_path / "c.pt")
    finally:
        torch.serialization.set_crc32_options(before)
    assert load_checkpoint(path)["model"]["w"].equal(torch.arange(4.0))


def test_failed_write_keeps_old_checkpoint(tmp_path, full_disk):
    path = save_checkpoint({"model": {}, "optimizer": {}, "epoch": 1, "config": {}}, tmp_path / "c.pt")
    state = {"model": {"weight": torch.zeros(10_000)}, "optimizer": {}, "epoch": 2, "config": {}}
    # a write cut short: had it gone to c.pt, c.pt would be lost. torch's own error named neither the file
    # nor the cause (RuntimeError: unexpected pos 704 vs 598), and the CLI answered it with a traceback
    with full_disk(), pytest.raises(OSError, match=f"File too large: '{path}'"):
        save_checkpoint(state, path)
    assert load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]


def test_a_model_without_loss_and_scorer_is_refused_when_the_trainer_is_made(small_data):
    """PyG's LightGCN, the model examples/custom_gnn_dsl.py trains in its own loop, failed in the first
    batch with an AttributeError, after the progress bar had started."""
    model = torch_geometric.nn.models.LightGCN(70, 8, 2)
    with pytest.raises(TypeError, match=r"LightGCN has no loss or scorer: .*examples/custom_gnn_dsl.py"):
        Trainer(model, small_data, TrainConfig(epochs=1, progress=False), device="cpu")


def test_a_fresh_fit_replaces_an_earlier_run_only_under_overwrite(small_data, tmp_path, monkeypatch):
    """Trainer(output_dir=...) wrote over an earlier run's files one by one, without a word, where the CLI
    refuses without --overwrite; under overwrite, a run that fails before its first checkpoint leaves them."""
    for name in ("last.pt", "best.pt", "metrics.json"):
        (tmp_path / name).write_text("earlier")
    earlier = {path.name: path.read_text() for path in tmp_path.iterdir()}
    with pytest.raises(CheckpointError, match=r"holds an earlier run \(last.pt, best.pt, metrics.json\)"):
        _trainer(small_data, tmp_path, epochs=1).fit()
    trainer = _trainer(small_data, tmp_path, epochs=1)
    trainer.overwrite = True
    monkeypatch.setattr(trainer, "train_epoch", lambda: 1 / 0)  # fails in the first epoch
    with pytest.raises(ZeroDivisionError):
        trainer.fit()
    assert {path.name: path.read_text() for path in tmp_path.iterdir()} == earlier
    trainer = _trainer(small_data, tmp_path, epochs=2, stop_after_epoch=1)
    trainer.overwrite = True
    trainer.fit()
    assert [load_checkpoint(tmp_path / name)["epoch"] for name in ("best.pt", "last.pt")] == [1, 1]
    trainer.config.stop_after_epoch = None
    assert trainer.fit()["epochs"] == 2  # its own files: a second fit trains on
    elsewhere = _trainer(small_data, tmp_path / "elsewhere", epochs=3)
    elsewhere.load(tmp_path / "last.pt")  # another folder's run, continued here: this folder's is not it
    (tmp_path / "elsewhere" / "best.pt").write_text("earlier")
    with pytest.raises(CheckpointError, match="elsewhere holds an earlier run"):
        elsewhere.fit()
    resumed = _trainer(small_data, tmp_path, epochs=3)
    resumed.load(tmp_path / "last.pt")  # its own folder's run: fit() goes on with it
    assert resumed.fit()["epochs"] == 3


def test_max_seconds_stops_with_a_checkpoint_to_resume(small_data, tmp_path):
    stopped = _trainer(small_data, tmp_path, epochs=4, max_seconds=1e-9).fit()
    assert stopped["epochs"] == 1 and stopped["history"][-1]["epoch"] == 1
    # epoch 1 is due (eval_every 1): evaluated on schedule before the budget is checked, so it may be the best
    # and counts towards patience, as in the uninterrupted run, not as a stop's unscheduled evaluation
    assert "scheduled" not in stopped["history"][-1]
    resumed = _trainer(small_data, tmp_path, epochs=4).fit(resume=True)
    assert resumed["epochs"] == 4
    assert [entry["epoch"] for entry in resumed["history"]] == [1, 2, 3, 4]


def test_stop_after_epoch_trains_the_longer_schedule_s_first_epochs(small_data, tmp_path):
    settings = dict(epochs=4, eval_every=2, lr_schedule="cosine")
    whole = _trainer(small_data, tmp_path / "whole", **settings).fit()
    stopped = _trainer(small_data, tmp_path / "stopped", **settings, stop_after_epoch=3).fit()
    assert [(e["epoch"], e.get("scheduled", True)) for e in stopped["history"]] == [(2, True), (3, False)]
    assert stopped["history"][0]["test"] == whole["history"][0]["test"]
    resumed = _trainer(small_data, tmp_path / "stopped", **settings).fit(resume=True)
    for key in ("epochs", "best_epoch", "test"):
        assert resumed[key] == whole[key], key


def test_a_run_early_stopped_at_its_stop_after_epoch_is_not_said_to_resume(small_data, tmp_path, caplog):
    # lr 0: epoch 2 ties epoch 1, and patience 1 stops the run at its stop_after_epoch: no resume goes on
    trainer = _trainer(small_data, tmp_path, eval_every=1, patience=1, lr=0.0, stop_after_epoch=2)
    with caplog.at_level(logging.INFO, logger="dslgraph.train.trainer"):
        assert trainer.fit()["epochs"] == 2
    assert "early stop at epoch 2" in caplog.text and "resume to go on" not in caplog.text
    caplog.clear()
    trainer = _trainer(small_data, tmp_path / "on", eval_every=1, stop_after_epoch=2)
    with caplog.at_level(logging.INFO, logger="dslgraph.train.trainer"):
        trainer.fit()
    assert "stopped after epoch 2 of 4 (stop_after_epoch); resume to go on" in caplog.text
    caplog.clear()
    trainer = _trainer(small_data, tmp_path / "whole", epochs=2, stop_after_epoch=2)  # its last epoch
    with caplog.at_level(logging.INFO, logger="dslgraph.train.trainer"):
        trainer.fit()
    assert "resume to go on" not in caplog.text


def test_stop_after_epoch_past_the_epochs_is_refused():
    with pytest.raises(ValueError, match=r"stop_after_epoch \(5\) must not exceed epochs \(4\), where"):
        TrainConfig(epochs=4, stop_after_epoch=5)
    with pytest.raises(ConfigError, match=r"stop_after_epoch \(5\) must not exceed epochs \(4\)"):
        validate({"epochs": 4, "stop_after_epoch": 5})
    assert TrainConfig(epochs=4, stop_after_epoch=4).stop_after_epoch == 4


def test_a_stop_between_evaluations_changes_neither_best_epoch_nor_patience(small_data, tmp_path):
    """With lr 0 every evaluation ties: had the stop's evaluation at epoch 1 counted, the resumed run's
    first scheduled one (epoch 2) would not improve on it and patience 1 would stop the run there."""
    settings = dict(epochs=4, eval_every=2, patience=1, lr=0.0)
    whole = _trainer(small_data, tmp_path / "whole", **settings).fit()
    _trainer(small_data, tmp_path / "split", **settings, max_seconds=1e-9).fit()
    resumed = _trainer(small_data, tmp_path / "split", **settings).fit(resume=True)
    assert [e["epoch"] for e in resumed["history"]] == [1, 2, 4] and resumed["history"][0][
        "scheduled"
    ] is False
    for key in ("epochs", "best_epoch", "test"):
        assert resumed[key] == whole[key], key


def test_a_stop_between_evaluations_that_scores_best_leaves_best_pt_at_the_best_epoch(small_data, tmp_path):
    # the stop's evaluation picks no best epoch: best.pt stays the scheduled best's, as metrics.json says
    recall = {"recall@20": [0.1, 0.2, 0.9, 0.1]}
    _scripted(_trainer(small_data, tmp_path, epochs=2, eval_every=2), recall, recall).fit()
    stopped = _trainer(small_data, tmp_path, epochs=4, eval_every=2, max_seconds=1e-9)
    assert _scripted(stopped, recall, recall).fit(resume=True)["history"][-1]["epoch"] == 3
    assert json.loads((tmp_path / "metrics.json").read_text())["best_epoch"] == 2
    assert load_checkpoint(tmp_path / "best.pt")["epoch"] == 2


def test_a_stop_before_the_first_scheduled_evaluation_writes_the_best_pt_it_names(small_data, tmp_path):
    # no scheduled evaluation has picked a best yet: the stop's stands in for it, in best.pt as in
    # metrics.json, which `dslgraph eval` of best.pt reads
    summary = _trainer(small_data, tmp_path, epochs=4, eval_every=3, stop_after_epoch=1).fit()
    assert summary["best_epoch"] == 1
    assert load_checkpoint(tmp_path / "best.pt")["epoch"] == 1


def test_a_stop_between_evaluations_writes_strict_json(small_data, tmp_path):
    """The evaluation a time-limited stop adds records the epoch's loss (it was NaN, which strict JSON
    readers such as jq reject)."""
    stopped = _trainer(small_data, tmp_path, epochs=4, eval_every=3, max_seconds=1e-9).fit()
    assert stopped["history"][-1]["epoch"] == 1

    def reject(constant):
        raise ValueError(f"{constant} in metrics.json")

    written = json.loads((tmp_path / "metrics.json").read_text(), parse_constant=reject)
    assert written["history"][-1]["loss"] > 0


def _checkpointed_run(data, out, sparsity, **settings) -> Trainer:
    """Five epochs evaluated at 3 and 5, of 4 batches each, under DSL (an update every 3 iterations: one in
    epoch 5, at iteration 18) where ``sparsity``."""
    torch.manual_seed(0)
    model = LightGCN(30, 40, embedding_dim=8)
    settings = dict(epochs=5, batch_size=64, lr=0.01, lr_schedule="cosine", eval_every=3, seed=3) | settings
    config = TrainConfig(**settings, progress=False)
    hooks = []
    if sparsity:
        hooks.append(DynamicSparseLearning(model, sparsity, total_steps=20, update_interval=3, seed=2))
    return Trainer(model, data, config, output_dir=out, device="cpu", hooks=hooks)


def _killed_in_epoch(trainer: Trainer, epoch: int, monkeypatch) -> None:
    """Makes ``trainer`` stop as a killed run does, as it begins ``epoch``."""
    train_epoch = trainer.train_epoch

    def killed():
        if trainer.epoch == epoch - 1:
            raise KeyboardInterrupt
        return train_epoch()

    monkeypatch.setattr(trainer, "train_epoch", killed)


@pytest.mark.parametrize("sparsity", [0.0, 0.5])
def test_a_run_killed_after_a_checkpoint_between_evaluations_resumes_to_the_whole_run(
    small_data, tmp_path, monkeypatch, sparsity
):
    """Killed in epoch 5, a run evaluated every 3 epochs lost epochs 4 and 5: its last.pt was epoch 3's.
    With checkpoint_every 2 it goes on from epoch 4 (and DSL's update in epoch 5) to the whole run's end."""
    whole = _checkpointed_run(small_data, tmp_path / "whole", sparsity)
    whole_summary = whole.fit()
    run = tmp_path / "killed"
    killed = _checkpointed_run(small_data, run, sparsity, checkpoint_every=2)
    _killed_in_epoch(killed, 5, monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        killed.fit()
    # last.pt alone is epoch 4's: an epoch not evaluated picks no best, and metrics.json is epoch 3's
    assert [load_checkpoint(run / name)["epoch"] for name in ("last.pt", "best.pt")] == [4, 3]
    assert [entry["epoch"] for entry in json.loads((run / "metrics.json").read_text())["history"]] == [3]
    resumed = _checkpointed_run(small_data, run, sparsity, checkpoint_every=2)
    summary = resumed.fit(resume=True)
    if sparsity:
        assert [update["iteration"] for update in resumed.hooks[0].updates][-2:] == [15, 18]
        assert _same(resumed.hooks[0].state_dict(), whole.hooks[0].state_dict())
    assert _same(resumed.model.state_dict(), whole.model.state_dict())
    assert _same(resumed.optimizer.state_dict(), whole.optimizer.state_dict())

    # the summary, and metrics.json as the last evaluation wrote it, are the whole run's, but for the times
    # and the setting itself
    def strip(summary):
        history = [{k: v for k, v in e.items() if not k.endswith("seconds")} for e in summary["history"]]
        config = {k: v for k, v in summary["config"].items() if k != "checkpoint_every"}
        kept = {k: v for k, v in summary.items() if k != "train_seconds"}
        return kept | {"history": history, "config": config}

    assert strip(summary) == strip(whole_summary)
    written = [json.loads((tmp_path / name / "metrics.json").read_text()) for name in ("killed", "whole")]
    assert strip(written[0]) == strip(written[1])


def test_a_checkpoint_between_evaluations_writes_last_pt_alone_and_once_an_epoch(
    small_data, tmp_path, monkeypatch
):
    """Every checkpoint_every epochs that are not evaluated; an evaluated one (epoch 6, and the stop's at
    epoch 4) writes its files as before, last.pt once."""
    written = []
    save_checkpoint, write_then_rename = trainer_module.save_checkpoint, trainer_module.write_then_rename

    def saved(state, path):
        written.append((state["epoch"], Path(path).name))
        return save_checkpoint(state, path)

    def summarised(path, write):
        written.append((trainer.epoch, Path(path).name))
        return write_then_rename(path, write)

    monkeypatch.setattr(trainer_module, "save_checkpoint", saved)
    monkeypatch.setattr(trainer_module, "write_then_rename", summarised)
    # lr 0: every evaluation ties the first, the best, so that best.pt is written once
    settings = dict(epochs=8, eval_every=3, checkpoint_every=2, lr=0.0)
    trainer = _trainer(small_data, tmp_path, **settings, stop_after_epoch=4)
    trainer.fit()
    assert written == [
        (2, "last.pt"),
        *[(3, "best.pt"), (3, "metrics.json"), (3, "last.pt")],
        *[(4, "metrics.json"), (4, "last.pt")],  # the stop's evaluation
    ]
    written.clear()
    trainer = _trainer(small_data, tmp_path, **settings)
    trainer.fit(resume=True)
    assert written == [(6, "metrics.json"), (6, "last.pt"), (8, "metrics.json"), (8, "last.pt")]
    written.clear()
    trainer = _trainer(small_data, None, **settings)  # no output_dir: nothing to write to, nothing asked
    trainer.fit()
    assert written == []


def test_a_first_checkpoint_between_evaluations_replaces_the_earlier_run_s_files(
    small_data, tmp_path, monkeypatch
):
    # all of them, as an evaluation's first write does: the earlier best.pt and metrics.json with this run's
    # last.pt would mix both runs
    for name in ("last.pt", "best.pt", "metrics.json"):
        (tmp_path / name).write_text("earlier")
    trainer = _trainer(small_data, tmp_path, epochs=3, eval_every=3, checkpoint_every=1)
    trainer.overwrite = True
    _killed_in_epoch(trainer, 2, monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["last.pt"]
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 1


def test_a_resume_that_ends_at_its_checkpoint_s_epoch_evaluates_it_on_the_schedule(
    small_data, tmp_path, monkeypatch
):
    """Killed after last.pt of epoch 4 and resumed with epochs=4, a run trains no epoch: its evaluation of
    epoch 4 was recorded as off the schedule, so it picked no best (the whole 4-epoch run's best, epoch 4,
    became epoch 3)."""
    whole = _trainer(small_data, tmp_path / "whole", epochs=4, eval_every=3).fit()
    run = tmp_path / "killed"
    killed = _trainer(small_data, run, epochs=8, eval_every=3, checkpoint_every=2)
    _killed_in_epoch(killed, 5, monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        killed.fit()
    assert load_checkpoint(run / "last.pt")["epoch"] == 4
    resumed = _trainer(small_data, run, epochs=4, eval_every=3, checkpoint_every=2).fit(resume=True)
    assert [entry.get("scheduled", True) for entry in resumed["history"]] == [True, True]
    assert resumed["best_epoch"] == whole["best_epoch"] == 4
    assert resumed["test"] == whole["test"]


def test_held_out_users_are_never_trained_on(small_data, tmp_path):
    from dslgraph.data import held_out_users
    from dslgraph.nn import CDAE

    data = held_out_users(small_data, num_test_users=5, seed=1)
    held_out = (~data["user"].train_mask).nonzero().squeeze(1)
    trainer = Trainer(
        CDAE(30, 40, hidden_channels=8), data, TrainConfig(epochs=1, batch_size=4, progress=False)
    )
    seen = torch.cat([users for (users,) in trainer.batches])
    assert held_out.numel() == 5 and not torch.isin(seen, held_out).any()
    assert seen.numel() == int(data["user"].train_mask.sum())
    summary = trainer.fit()
    assert set(summary["test"]) >= {"recall@20", "ndcg@20"} and summary["protocol"] == "full"


def test_a_node_split_train_mask_is_not_read_as_held_out_users(small_data):
    """T.RandomNodeSplit puts a train_mask on users: it trained a random 70% of them without a word."""
    data = T.RandomNodeSplit(num_val=0.1, num_test=0.2, key=None)(small_data)
    with pytest.raises(ValueError, match=r"train_mask .* was not split by it"):
        Trainer(LightGCN(30, 40, embedding_dim=8), data, TrainConfig(epochs=1, batch_size=4, progress=False))


def test_sampled_protocol_is_evaluated_on_candidates(small_data):
    from dslgraph.data import leave_one_out

    data = leave_one_out(small_data, num_negatives=10, seed=0)
    config = TrainConfig(epochs=1, batch_size=64, progress=False, ks=(5,), monitor="hr@5")
    trainer = Trainer(LightGCN(30, 40, embedding_dim=8), data, config)
    summary = trainer.fit()
    assert set(summary["test"]) == {"hr@5", "ndcg@5"} and summary["protocol"] == "sampled"
    model, graph = trainer.model, trainer.graph
    users, positives = data[EDGE].edge_label_index
    candidates = torch.cat([positives.view(-1, 1), data[EDGE].test_negatives], dim=1)
    scores = model.scorer(graph)(users, candidates)
    expected = ((scores[:, 1:] >= scores[:, :1]).sum(1) < 5).double().mean()
    assert summary["test"]["hr@5"] == pytest.approx(float(expected))


class MatrixFactorization(torch.nn.Module):
    """A model that needs no graph input, with only what the trainer's TrainableModel protocol requires."""

    def __init__(self):
        super().__init__()
        self.users, self.items = torch.nn.Embedding(30, 8), torch.nn.Embedding(40, 8)

    def input_graph(self, data):
        return None

    def loss(self, graph, users, pos, neg, reg_weight=0.0):
        user = self.users(users)
        return bpr_loss((user * self.items(pos)).sum(-1), (user * self.items(neg)).sum(-1))

    def scorer(self, graph):
        return lambda users, items=None: self.users(users) @ self.items.weight.T


def test_a_custom_model_without_a_graph_input_trains(small_data):
    summary = Trainer(MatrixFactorization(), small_data, TrainConfig(epochs=1, progress=False)).fit()
    assert summary["epochs"] == 1 and 0 < summary["test"]["recall@20"] <= 1


def test_a_monitor_or_cutoff_the_evaluation_cannot_report_fails_before_training(small_data):
    from dslgraph.data import leave_one_out

    data = leave_one_out(small_data, num_negatives=10, seed=0)  # HR and NDCG over 11 candidates
    model = LightGCN(30, 40, embedding_dim=8)
    with pytest.raises(ValueError, match=r"monitor 'recall@5' is not among .*'hr@5'"):
        Trainer(model, data, TrainConfig(ks=(5,), monitor="recall@5", progress=False))
    with pytest.raises(ValueError, match=r"monitor 'hr@10' is not among .*'hr@5'"):
        Trainer(model, data, TrainConfig(ks=(5,), monitor="hr@10", progress=False))
    with pytest.raises(ValueError, match=r"ks must be .* in \[1, candidates \(1 \+ negatives\)=11\]"):
        Trainer(model, data, TrainConfig(ks=(20,), monitor="hr@20", progress=False))


def test_the_default_monitor_is_the_cli_s_and_runs_record_it_by_name(small_data, tmp_path):
    """monitor=None is the CLI's default (recall, or HR under leave-one-out, at the first of ks): the default
    recall@20 was refused for TrainConfig(ks=(10,)) and for any leave-one-out data. The trainer's copy of
    the config, its checkpoints and metrics.json name the metric; the config given stays as it was."""
    from dslgraph.data import leave_one_out

    full = TrainConfig(ks=(10, 20), progress=False)
    assert full.monitor is None
    assert (
        Trainer(LightGCN(30, 40, embedding_dim=8), small_data, full, device="cpu").config.monitor
        == "recall@10"
    )
    assert full.monitor is None
    data = leave_one_out(small_data, num_negatives=10, seed=0)
    config = TrainConfig(epochs=1, batch_size=64, ks=(5,), progress=False)
    trainer = Trainer(LightGCN(30, 40, embedding_dim=8), data, config, output_dir=tmp_path, device="cpu")
    assert trainer.config.monitor == "hr@5"
    assert trainer.fit()["config"]["monitor"] == "hr@5"
    assert json.loads((tmp_path / "metrics.json").read_text())["config"]["monitor"] == "hr@5"
    assert load_checkpoint(tmp_path / "last.pt")["config"]["monitor"] == "hr@5"


def test_a_default_monitor_resumes_a_run_recorded_with_another(small_data, tmp_path):
    """A run recorded with recall@20 at ks (10, 20) (the default before monitor=None, whatever ks) resumes
    under monitor=None with the monitor it recorded, where the default would now be recall@10; one given
    still has to be the recorded one."""
    _trainer(small_data, tmp_path, epochs=1, ks=(10, 20), monitor="recall@20").fit()
    resumed = _trainer(small_data, tmp_path, epochs=2, ks=(10, 20))
    assert resumed.config.monitor == "recall@10"
    assert resumed.fit(resume=True)["config"]["monitor"] == "recall@20"
    assert resumed.best["epoch"] in (1, 2) and load_checkpoint(tmp_path / "last.pt")["config"]["monitor"] == (
        "recall@20"
    )
    with pytest.raises(ValueError, match=re.escape("monitor was 'recall@20', now 'recall@10'")):
        _trainer(small_data, tmp_path, epochs=3, ks=(10, 20), monitor="recall@10").fit(resume=True)
    # one no longer evaluated is not taken: the default is, refused as another monitor than the run's
    with pytest.raises(ValueError, match=re.escape("monitor was 'recall@20', now 'recall@10'")):
        _trainer(small_data, tmp_path, epochs=3, ks=(10,)).fit(resume=True)


@pytest.mark.parametrize(
    "monitor, hint",
    [
        ("hit@20", " (RecBole's 'hit' is 'hr' here)"),
        ("NDCG@20", " (metric names are lower case: 'ndcg@20')"),
        ("mrr@20", ""),  # computed nowhere: the refusal names it
    ],
)
def test_a_monitor_in_recbole_s_spelling_is_refused_naming_dslgraph_s(small_data, monitor, hint):
    model = LightGCN(30, 40, embedding_dim=8)
    with pytest.raises(ValueError, match=re.escape(f"'capped_recall@20'){hint}") + "$"):
        Trainer(model, small_data, TrainConfig(monitor=monitor, progress=False))


def test_trainer_attaches_its_own_optimizer_to_a_dsl_controller(small_data, tmp_path):
    torch.manual_seed(0)
    model = LightGCN(30, 40, embedding_dim=8)
    dsl = DynamicSparseLearning(model, 0.8, total_steps=8, update_interval=3)  # optimizer_state="reset"
    config = TrainConfig(epochs=2, batch_size=64, lr=0.01, eval_every=2, progress=False)
    trainer = Trainer(model, small_data, config, output_dir=tmp_path, device="cpu", hooks=[dsl])
    before = model.embedding.values.detach().clone()
    trainer.fit()  # resetting grown entries' state needs the optimizer: without it the update fails
    assert dsl.optimizer is trainer.optimizer and dsl.updates
    assert not torch.equal(before, model.embedding.values)


def test_a_dsl_controller_attached_to_an_optimizer_the_trainer_does_not_step_is_refused(small_data):
    # the trainer stepped its own Adam: DSL skipped every update with a warning, a static mask trained
    model = LightGCN(30, 40, embedding_dim=8)
    dsl = DynamicSparseLearning(model, 0.8, total_steps=8, update_interval=3)
    own = torch.optim.Adam(model.parameters(), lr=0.01)
    dsl.attach(own)
    config = TrainConfig(epochs=2, batch_size=64, progress=False)
    with pytest.raises(ValueError, match=r"attached to an optimizer the trainer does not step: pass that"):
        Trainer(model, small_data, config, device="cpu", hooks=[dsl])
    assert Trainer(model, small_data, config, device="cpu", hooks=[dsl], optimizer=own).optimizer is own


def test_a_dsl_controller_of_another_length_than_the_run_is_warned_of(small_data):
    # total_steps=1000 for an 8-step run: rho_t stayed at rho0 and nothing said so
    config = TrainConfig(epochs=2, batch_size=64, progress=False)
    model = LightGCN(30, 40, embedding_dim=8)
    steps = config.epochs * len(trainer_module.make_batches(model, small_data, config))
    dsl = DynamicSparseLearning(model, 0.8, total_steps=1000, update_interval=3)
    with pytest.warns(UserWarning, match=rf"total_steps=1000, but this trainer runs {steps} optimizer steps"):
        trainer = Trainer(model, small_data, config, device="cpu", hooks=[dsl])
    assert trainer.total_steps == steps == 8
    model = LightGCN(30, 40, embedding_dim=8)
    dsl = DynamicSparseLearning(model, 0.8, total_steps=steps, update_interval=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Trainer(model, small_data, config, device="cpu", hooks=[dsl])


def test_a_config_that_is_not_a_train_config_is_refused_naming_it(small_data):
    # a dict failed with "replace() should be called on dataclass instances"
    message = r"config must be a TrainConfig, got dict: pass TrainConfig\(\*\*config\)"
    with pytest.raises(TypeError, match=message):
        Trainer(LightGCN(30, 40, embedding_dim=8), small_data, {"epochs": 1})


def test_the_trainer_repr_names_the_model_progress_and_hooks(small_data, tmp_path):
    model = LightGCN(30, 40, embedding_dim=8)
    dsl = DynamicSparseLearning(model, 0.8, total_steps=8, update_interval=3)
    config = TrainConfig(epochs=2, batch_size=64, progress=False)
    trainer = Trainer(model, small_data, config, output_dir=tmp_path, device="cpu", hooks=[dsl])
    assert repr(trainer) == (
        "Trainer(model=LightGCN, epoch=0/2, device='cpu', hooks=['DynamicSparseLearning'], "
        f"output_dir='{tmp_path}')"
    )


def test_the_summary_holds_the_keys_its_docstring_lists(small_data):
    summary = _trainer(small_data, None, epochs=1).fit()
    documented = set(re.findall(r'``"(\w+)"``', Trainer.summary.__doc__.partition("Returns:")[2]))
    assert set(summary) | set(summary["history"][0]) <= documented


def test_compile_trains_the_compiled_loss_to_the_same_run(small_data, tmp_path, monkeypatch):
    compiled = []

    def aot_eager(function):  # traced forward and backward as inductor's, without its code generation
        compiled.append(function)
        return torch_compile(function, backend="aot_eager")

    torch_compile = torch.compile
    monkeypatch.setattr(torch, "compile", aot_eager)
    runs = {}
    for compile in (False, True):
        torch.manual_seed(0)
        model = LightGCN(30, 40, embedding_dim=8)
        dsl = DynamicSparseLearning(model, 0.5, total_steps=8, update_interval=3)
        config = TrainConfig(epochs=2, batch_size=64, lr=0.01, eval_every=1, progress=False, compile=compile)
        runs[compile] = Trainer(
            model, small_data, config, output_dir=tmp_path / str(compile), device="cpu", hooks=[dsl]
        ).fit()
        assert len(dsl.updates) == 2
    assert len(compiled) == 1 and compiled[0].__self__ is model  # the loss of the compiled run's model
    for before, after in zip(runs[False]["history"], runs[True]["history"]):
        assert after["loss"] == pytest.approx(before["loss"], rel=1e-6)
        assert after["test"] == pytest.approx(before["test"], rel=1e-6)
    assert "_orig_mod" not in "".join(load_checkpoint(tmp_path / "True" / "last.pt")["model"])


def test_resume_from_a_dsl_state_with_an_unknown_setting_names_it_and_the_checkpoint(small_data, tmp_path):
    # was "cannot resume from .../last.pt: 'prune_rule'" (a bare KeyError's text)
    def trainer():
        torch.manual_seed(0)
        model = LightGCN(30, 40, embedding_dim=8)
        dsl = DynamicSparseLearning(model, 0.8, total_steps=8, update_interval=3)
        config = TrainConfig(epochs=1, batch_size=64, lr=0.01, eval_every=1, progress=False)
        return Trainer(model, small_data, config, output_dir=tmp_path, device="cpu", hooks=[dsl])

    trainer().fit()
    state = load_checkpoint(tmp_path / "last.pt")
    state["hooks"][0]["settings"]["prune_rule"] = "magnitude"
    save_checkpoint(state, tmp_path / "last.pt")
    message = r"last\.pt: .*settings this version does not know \(prune_rule;"
    with pytest.raises(CheckpointError, match=message):
        trainer().load(tmp_path / "last.pt")


def test_resume_with_another_number_of_step_hooks_fails_saying_what_to_pass(small_data, tmp_path):
    _dsl_trainer(small_data, tmp_path, epochs=1).fit()
    dense = _trainer(small_data, tmp_path, epochs=2, lr_schedule="cosine")
    message = (
        r"last\.pt: it has 1 step hooks \(DSL\), now 0; pass the same hooks \(CLI: the same --sparsity\)"
    )
    with pytest.raises(ValueError, match=message):
        dense.load(tmp_path / "last.pt")
    _trainer(small_data, tmp_path / "dense", epochs=1, lr_schedule="cosine").fit()
    with pytest.raises(ValueError, match=r"last\.pt: it has 0 step hooks \(DSL\), now 1; pass the same"):
        _dsl_trainer(small_data, tmp_path / "dense", epochs=2).load(tmp_path / "dense" / "last.pt")


class Crash(Exception):
    pass


def test_a_crash_between_checkpoint_writes_leaves_a_best_pt_that_the_resume_completes(
    small_data, tmp_path, monkeypatch
):
    writes = []
    save = trainer_module.save_checkpoint

    def crash_at_the_second_write_of_epoch_2(state, path):
        writes.append(state["epoch"])
        if writes.count(2) == 2:
            raise Crash  # as a kill would, between best.pt and last.pt
        return save(state, path)

    monkeypatch.setattr(trainer_module, "save_checkpoint", crash_at_the_second_write_of_epoch_2)
    with pytest.raises(Crash):
        _trainer(small_data, tmp_path, epochs=2, lr=0.03).fit()
    monkeypatch.undo()
    summary = _trainer(small_data, tmp_path, epochs=2, lr=0.03).fit(resume=True)
    assert summary["best_epoch"] == 2  # the crash came while epoch 2 was saved as the best
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["best_epoch"] == load_checkpoint(tmp_path / "best.pt")["epoch"] == 2


def test_a_checkpoint_that_is_a_folder_or_a_foreign_pickle_fails_without_running_it(tmp_path):
    with pytest.raises(CheckpointError, match="is a folder; name the best.pt or last.pt in it"):
        load_checkpoint(tmp_path)

    class Payload:
        def __reduce__(self):
            return (Path.touch, (tmp_path / "ran",))

    torch.save({"model": {}, "optimizer": {}, "epoch": 1, "config": {}, "x": Payload()}, tmp_path / "best.pt")
    with pytest.raises(CheckpointError, match="could not be read"):
        load_checkpoint(tmp_path / "best.pt")
    assert not (tmp_path / "ran").exists()


def test_an_output_folder_is_checked_and_held_by_one_run(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(CheckpointError, match="is a file"), locked_output(tmp_path / "file"):
        pass
    (tmp_path / "taken" / ".lock").mkdir(parents=True)  # its lock file cannot be opened
    with (
        pytest.raises(
            CheckpointError, match=r"output folder .*taken cannot be used \(Is a directory\); --output"
        ),
        locked_output(tmp_path / "taken"),
    ):
        pass
    with locked_output(tmp_path / "run") as folder:
        assert folder.is_dir()
        with (
            pytest.raises(CheckpointError, match="in use by another dslgraph run"),
            locked_output(tmp_path / "run"),
        ):
            pass
    (tmp_path / "run" / ".last.pt.tmp-123").write_bytes(b"half")  # a run killed while saving
    with locked_output(tmp_path / "run"):  # free again once the first run ended, and its leftover gone
        assert not list((tmp_path / "run").glob(".*.tmp-*"))


def test_an_output_folder_is_held_by_one_run_on_windows_too(tmp_path, monkeypatch):
    """Windows has no fcntl: its output folders went unlocked (two runs mixed their checkpoints), a killed
    run's partial files stayed, and a run failing before it wrote removed its lock file while holding it
    open, which Windows refuses: a PermissionError hid the run's own error; and a lock left to the close
    was not released at once. Imitated here: msvcrt's lock by flock, and a file open refusing its removal."""
    import fcntl

    import dslgraph.train.checkpoint as checkpoint

    def locking(fd, mode, size):
        assert mode in (checkpoint.msvcrt.LK_NBLCK, checkpoint.msvcrt.LK_UNLCK) and size == 1
        assert os.lseek(fd, 0, os.SEEK_CUR) == 0  # the byte locked, from the file position
        if mode == checkpoint.msvcrt.LK_UNLCK:
            # released by the handle, while still open: a lock left to the close is freed only "depending
            # upon available system resources", and the next run on the folder could be refused it
            assert any(not handle.closed and handle.fileno() == fd for handle in handles)
            unlocked.append(fd)
            return fcntl.flock(fd, fcntl.LOCK_UN)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OSError(errno.EACCES, "Permission denied") from None
        locked.append(fd)

    handles, locked, unlocked = [], [], []

    def tracked_open(*args, **kwargs):
        handles.append(open(*args, **kwargs))  # noqa: SIM115
        return handles[-1]

    def unlink(path, missing_ok=False):
        if any(not handle.closed and Path(handle.name) == path for handle in handles):
            raise PermissionError(13, "The process cannot access the file: in use", str(path))
        return remove(path, missing_ok=missing_ok)

    remove = Path.unlink
    monkeypatch.setattr(checkpoint, "fcntl", None)
    fake = SimpleNamespace(LK_UNLCK=0, LK_NBLCK=2, locking=locking)
    monkeypatch.setattr(checkpoint, "msvcrt", fake, raising=False)
    monkeypatch.setattr(checkpoint, "open", tracked_open, raising=False)
    monkeypatch.setattr(Path, "unlink", unlink)
    with locked_output(tmp_path / "run") as folder:
        assert (folder / ".lock").is_file()
        with (
            pytest.raises(CheckpointError, match="in use by another dslgraph run"),
            locked_output(tmp_path / "run"),
        ):
            pass
    (tmp_path / "run" / ".last.pt.tmp-123").write_bytes(b"half")  # a run killed while saving
    with locked_output(tmp_path / "run"):
        assert not list((tmp_path / "run").glob(".*.tmp-*"))
    with pytest.raises(RuntimeError, match="bad settings"), locked_output(tmp_path / "new" / "run"):
        raise RuntimeError("bad settings")
    assert not (tmp_path / "new").exists()
    assert len(locked) == 3 and unlocked == locked  # each run's, the one refused took none


def test_a_windows_lock_is_released_however_the_run_ends(tmp_path, monkeypatch):
    """A killed run's partial file that cannot be removed (an antivirus scan holds it open) fails the run
    with the lock released before its handle closes, as any other failure; an unlock that Windows refuses
    hides no error of the run (the close frees the lock anyway)."""
    import dslgraph.train.checkpoint as checkpoint

    def locking(fd, mode, size):
        modes.append(mode)
        if mode == fake.LK_UNLCK and refuse_unlock:
            raise OSError(errno.EACCES, "Permission denied")

    def unlink(path, missing_ok=False):
        if path.name == ".last.pt.tmp-123":
            raise PermissionError(13, "The process cannot access the file: in use", str(path))
        return remove(path, missing_ok=missing_ok)

    modes, refuse_unlock, remove = [], False, Path.unlink
    fake = SimpleNamespace(LK_UNLCK=0, LK_NBLCK=2, locking=locking)
    monkeypatch.setattr(checkpoint, "fcntl", None)
    monkeypatch.setattr(checkpoint, "msvcrt", fake, raising=False)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / ".last.pt.tmp-123").write_bytes(b"half")
    with monkeypatch.context() as patched:
        patched.setattr(Path, "unlink", unlink)
        with pytest.raises(PermissionError, match="in use"), locked_output(tmp_path / "run"):
            pass
    assert modes == [fake.LK_NBLCK, fake.LK_UNLCK]
    refuse_unlock = True
    with pytest.raises(RuntimeError, match="bad settings"), locked_output(tmp_path / "run"):
        raise RuntimeError("bad settings")
    with locked_output(tmp_path / "run"):
        pass
    assert modes == [fake.LK_NBLCK, fake.LK_UNLCK] * 3


def test_a_run_that_fails_before_writing_removes_the_output_folders_it_made(tmp_path):
    with pytest.raises(RuntimeError), locked_output(tmp_path / "new" / "run"):
        raise RuntimeError("bad settings")
    assert not (tmp_path / "new").exists()
    (tmp_path / "kept").mkdir()  # not made by the run: kept, without its lock file
    with pytest.raises(RuntimeError), locked_output(tmp_path / "kept"):
        raise RuntimeError("bad settings")
    assert (tmp_path / "kept").is_dir()
    with pytest.raises(RuntimeError), locked_output(tmp_path / "wrote") as folder:
        (folder / "metrics.json").write_text("{}")
        raise RuntimeError("interrupted")
    assert (tmp_path / "wrote" / "metrics.json").is_file()


def test_a_failed_run_keeps_its_folder_locked_until_the_lock_file_is_gone(tmp_path, monkeypatch):
    """Released before its lock file was removed, the lock let a run starting at that moment take the folder:
    its lock was then on a removed file (a third run took a new one) in a folder removed under it."""
    import fcntl

    taken = []

    def unlink(path, missing_ok=False):
        if path.name == ".lock":  # another run, arriving now, opens the lock file and tries to take it
            with open(path, "a") as other:
                try:
                    fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    taken.append(True)
                except BlockingIOError:
                    taken.append(False)
        return remove(path, missing_ok=missing_ok)

    remove = Path.unlink
    monkeypatch.setattr(Path, "unlink", unlink)
    with pytest.raises(RuntimeError, match="bad settings"), locked_output(tmp_path / "new" / "run"):
        raise RuntimeError("bad settings")
    assert taken == [False]
    assert not (tmp_path / "new").exists()


def test_an_output_dir_that_cannot_be_written_fails_before_training(small_data, tmp_path, monkeypatch):
    (tmp_path / "file").write_text("")
    with pytest.raises(CheckpointError, match="output folder .*file is a file"):
        _trainer(small_data, tmp_path / "file")  # it failed at the first checkpoint, after eval_every epochs
    with pytest.raises(CheckpointError, match=r"output folder .*run cannot be made \(Not a directory\)"):
        _trainer(small_data, tmp_path / "file" / "run")
    monkeypatch.setattr(os, "access", lambda path, mode: False)  # read-only, which root cannot make a folder
    with pytest.raises(CheckpointError, match="output folder .*run cannot be written to"):
        make_output_folder(tmp_path / "run")


def test_numpy_ks_are_taken_and_written_as_numbers(small_data, tmp_path):
    # ks=np.arange(...) was refused; kept as np.int64, metrics.json (json's default=str) would hold "5"
    trainer = _trainer(small_data, tmp_path, epochs=1, ks=np.arange(5, 15, 5), monitor="recall@5")
    assert trainer.config.ks == (5, 10) and all(type(k) is int for k in trainer.config.ks)
    trainer.fit()
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written["config"]["ks"] == [5, 10]
    assert {"recall@5", "recall@10"} <= set(written["test"])


NUMBER_SETTINGS = [
    ("model", "num_users", 30, int),
    ("model", "num_items", 40, int),
    ("model", "embedding_dim", 8, int),
    ("model", "num_layers", 2, int),
    ("config", "epochs", 1, int),
    ("config", "batch_size", 64, int),
    ("config", "lr", 0.01, float),
    ("config", "lr_min", 1e-4, float),
    ("config", "reg_weight", 1e-4, float),
    ("config", "eval_every", 1, int),
    ("config", "eval_batch_size", 16, int),
    ("config", "patience", 3, int),
    ("config", "seed", 3, int),
    ("config", "max_seconds", 3600.0, float),
    ("config", "progress", False, bool),
    ("dsl", "sparsity", 0.5, float),
    ("dsl", "total_steps", 8, int),  # two epochs of 4 batches
    ("dsl", "update_interval", 3, int),
    ("dsl", "rho0", 0.5, float),
    ("dsl", "rho_min", 0.01, float),
    ("dsl", "t_end", 7, int),
    ("dsl", "chunk_rows", 8, int),
    ("dsl", "seed", 2, int),
    ("dsl", "skip_zero_gradient", False, bool),
    ("dsl", "schedule", "linear", str),  # np.str_ choices were kept, into the checkpoint's settings
    ("dsl", "growth", "random", str),
    ("dsl", "optimizer_state", "keep", str),
    ("dsl", "distribution", "erk", str),
    ("dsl", "mask_init", "aligned", str),
    ("dsl", "backend", "compact", str),
]


def _number_run(data, out, settings, epochs=None, resume=False) -> Trainer:
    """A LightGCN run with DSL and a cosine learning rate, of the (where, name) -> value ``settings``."""
    given = {where: {} for where in ("model", "config", "dsl")}
    for where, name in settings:
        given[where][name] = settings[where, name]
    torch.manual_seed(0)
    model = LightGCN(**given["model"])
    dsl = DynamicSparseLearning(model, **given["dsl"])
    config = TrainConfig(lr_schedule="cosine", **given["config"] | ({"epochs": epochs} if epochs else {}))
    trainer = Trainer(model, data, config, output_dir=out, device="cpu", hooks=[dsl])
    trainer.fit(resume=resume)
    return trainer


@pytest.mark.parametrize(("int_type", "float_type"), [(np.int64, np.float64), (np.int32, np.float32)])
def test_numpy_settings_run_write_and_resume_as_python_numbers(small_data, tmp_path, int_type, float_type):
    # epochs=np.int64 was refused; lr=np.float64 and DSL's sparsity=np.float64 were kept, and the checkpoint
    # held NumPy scalars, which torch.load(weights_only=True) refuses: the run could not resume
    numpy = {bool: np.bool_, int: int_type, float: float_type, str: np.str_}
    settings = {(where, name): numpy[kind](value) for where, name, value, kind in NUMBER_SETTINGS}
    trainer = _number_run(small_data, tmp_path / "numpy", settings)
    assert len(trainer.batches) == 4  # total_steps of two epochs
    kept = {
        "model": vars(trainer.model) | vars(trainer.model.embedding),
        "config": asdict(trainer.config),
        "dsl": vars(trainer.hooks[0]),
    }
    kept["model"]["embedding_dim"] = trainer.model.embedding.embedding_dim
    for where, name, _, kind in NUMBER_SETTINGS:
        if (where, name) not in (("dsl", "seed"), ("dsl", "distribution")):  # used, not kept
            assert type(kept[where][name]) is kind, (where, name, kept[where][name])
    written = json.loads((tmp_path / "numpy" / "metrics.json").read_text())
    for where, name, _, kind in NUMBER_SETTINGS:
        if where == "config":  # numbers, not the strings of json's default=str
            assert type(written["config"][name]) is kind and written["config"][name] == settings[where, name]
    state = load_checkpoint(tmp_path / "numpy" / "last.pt")  # weights_only=True
    assert state["hooks"][0]["settings"]["sparsity"] == 0.5
    resumed = _number_run(small_data, tmp_path / "numpy", settings, epochs=int_type(2), resume=True)
    assert resumed.epoch == 2 and [entry["epoch"] for entry in resumed.history] == [1, 2]
    assert [update["iteration"] for update in resumed.hooks[0].updates] == [3, 6]  # one in each epoch
    # the run is the one of the same values given as Python's numbers
    plain = {(where, name): kind(settings[where, name]) for where, name, _, kind in NUMBER_SETTINGS}
    _number_run(small_data, tmp_path / "plain", plain)
    reference = _number_run(small_data, tmp_path / "plain", plain, epochs=2, resume=True)
    strip = lambda h: [{k: v for k, v in e.items() if not k.endswith("seconds")} for e in h]  # noqa: E731
    assert strip(resumed.history) == strip(reference.history)
    assert _same(resumed.model.state_dict(), reference.model.state_dict())


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"eval_every": 0}, r"eval_every must be an int in \[1, inf\), got 0"),  # a ZeroDivisionError later
        ({"ks": ()}, "ks must be a non-empty list of positive integers"),
        (
            {"ks": np.array([5.0, 10.0])},
            r"ks must be a non-empty list of positive integers, got \[(np.float64\()?5",
        ),
        ({"ks": (np.True_,)}, "ks must be a non-empty list of positive integers"),
        ({"ks": 20}, "ks must be a list, got 20"),
        ({"lr_schedule": "step"}, r"lr_schedule must be one of \['none', 'cosine'\]"),
        ({"batch_size": 0}, r"batch_size must be an int in \[1, inf\)"),
        ({"checkpoint_every": -1}, r"checkpoint_every must be an int in \[0, inf\), got -1"),
        ({"checkpoint_every": 2.5}, r"checkpoint_every must be an int in \[0, inf\), got 2.5"),
    ],
)
def test_train_config_built_from_python_is_checked(setting, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**setting)


@pytest.mark.parametrize(
    ("arguments", "hint"),
    [
        ({"learning_rate": 0.01}, " (RecBole's 'learning_rate' is 'lr' here)"),
        (
            {"train_batch_size": 512, "stopping_step": 3},
            " (RecBole's 'train_batch_size' is 'batch_size', 'stopping_step' N is 'patience' N + 1 here)",
        ),
        ({"decay": 1e-4}, " (the LightGCN code's 'decay' is 'reg_weight' here)"),
        ({"epoch": 5}, " (did you mean 'epochs'?)"),
    ],
)
def test_train_config_named_in_recbole_s_words_names_its_own_field(arguments, hint):
    # Python's own refusal said "unexpected keyword argument 'learning_rate'" and no more
    given = list(arguments)
    with pytest.raises(TypeError, match=re.escape(f"keyword argument(s) {given}{hint}") + "$"):
        TrainConfig(**arguments)


@pytest.mark.parametrize(
    ("arguments", "hint"),
    [
        ({"embedding_dim": 64}, "'embedding_dim' is the model's argument: LightGCN"),
        ({"embedding_size": 64}, "'embedding_size' is 'embedding_dim' here, the model's argument: LightGCN"),
        ({"recdim": 64}, "'recdim' is 'embedding_dim' here, the model's argument: LightGCN"),
        (
            {"sparsity": 0.8, "epoch": 5},
            "'sparsity' is DynamicSparseLearning's argument: .*; did you mean 'epochs'",
        ),
        (
            {"init_std": 0.1},
            r"'init_std' is the model's argument 'std': LightGCN\(num_users, num_items, std=\.\.\.\)",
        ),
        ({"device": "cpu"}, r"'device' is Trainer's argument: Trainer\(model, data, config, device='cpu'\)"),
        # RecBole's names of what dslgraph train takes besides its settings named no place
        (
            {"checkpoint_dir": "runs"},
            r"'checkpoint_dir' is 'output' here, Trainer's argument output_dir: "
            r"Trainer\(model, data, config, output_dir=\.\.\.\)",
        ),
        (
            {"USER_ID_FIELD": "user_id"},
            r"'USER_ID_FIELD' is 'user_col' here, load_file's keyword argument: load_file\(path, user_col=",
        ),
        ({"sep": ","}, r"'sep' is load_file's keyword argument: load_file\(path, sep=\.\.\.\)"),
    ],
)
def test_a_setting_train_config_does_not_hold_is_refused_naming_where_it_goes(arguments, hint):
    # TrainConfig(embedding_size=64), RecBole's way, was refused with no hint: the size is the model's
    with pytest.raises(TypeError, match=re.escape(f"keyword argument(s) {list(arguments)} (") + hint):
        TrainConfig(**arguments)


def test_every_setting_of_the_cli_is_in_train_config_or_has_a_place_named():
    own = {field.name for field in fields(TrainConfig)}
    assert set(FIELDS) - own == set(SETTING_PLACES) and not own & set(SETTING_PLACES)
    # what a place names as an argument is one
    dsl = inspect.signature(DynamicSparseLearning).parameters
    model = inspect.signature(LightGCN).parameters
    for name, place in SETTING_PLACES.items():
        if place.startswith("DynamicSparseLearning's argument"):
            assert name in dsl
        if place.startswith("the model's argument"):
            assert re.search(r"\b(\w+)=\.\.\.\)$", place)[1] in model


def test_train_config_defaults_are_the_cli_s():
    # a setting left out trains the same run from Python as from `dslgraph train` (LightGCN has no
    # MODEL_DEFAULTS)
    cli = validate({"model": "lightgcn"})
    config = asdict(TrainConfig())
    config["ks"] = list(config["ks"])
    # the monitor left out: the CLI's validation settles it, the trainer TrainConfig's (the test above)
    assert FIELDS["monitor"].default is None and config.pop("monitor") is None
    assert cli["monitor"] == "recall@20"
    shared = config.keys() & cli.keys()  # all but progress, which the CLI sets from --no-progress
    assert {name: cli[name] for name in shared} == {name: config[name] for name in shared}


def _dsl_trainer(data, out, epochs=2, embedding_dim=8):
    torch.manual_seed(0)
    model = LightGCN(30, 40, embedding_dim=embedding_dim)
    config = TrainConfig(epochs=epochs, batch_size=64, lr=0.01, lr_schedule="cosine", progress=False, seed=3)
    steps = epochs * -(-data[EDGE].edge_index.size(1) // 64)
    dsl = DynamicSparseLearning(model, 0.8, total_steps=steps, update_interval=3, seed=2)
    return Trainer(model, data, config, output_dir=out, device="cpu", hooks=[dsl])


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    return a == b


def _break_model(state):
    state["model"]["embedding.values"] = torch.zeros(3)  # another model's table: fails after the DSL state


def _break_optimizer(state):
    state["optimizer"]["param_groups"][0]["params"] = [0, 1]  # fails after the model


def _break_generator(state):
    state["generator"] = torch.zeros(3, dtype=torch.uint8)  # fails after the model, optimizer and counters


def _drop_hooks(state):
    del state["hooks"]  # a KeyError before


@pytest.mark.parametrize("damage", [_break_model, _break_optimizer, _break_generator, _drop_hooks])
def test_a_failed_load_leaves_the_trainer_as_it_was(small_data, tmp_path, damage):
    _dsl_trainer(small_data, tmp_path, epochs=1).fit()
    state = load_checkpoint(tmp_path / "last.pt")
    damage(state)
    save_checkpoint(state, tmp_path / "broken.pt")
    trainer = _dsl_trainer(small_data, tmp_path / "another")
    trainer.train_epoch()  # with optimizer state, an lr down the cosine and a controller past iteration 0
    before = copy.deepcopy(trainer.state_dict())
    with pytest.raises(CheckpointError, match="broken.pt"):
        trainer.load(tmp_path / "broken.pt")
    after = trainer.state_dict()
    for key in before:
        assert _same(before[key], after[key]), key
    assert trainer.scheduler.get_last_lr() == before["scheduler"]["_last_lr"]
    trainer.fit()  # and it trains on from where it was


def test_an_interrupt_while_loading_stays_an_interrupt(small_data, tmp_path, monkeypatch):
    # Ctrl-C during a resume is no damaged checkpoint: not reported as "cannot resume from last.pt"
    _trainer(small_data, tmp_path, epochs=1).fit()
    trainer = _trainer(small_data, tmp_path, epochs=2)
    before = copy.deepcopy(trainer.model.state_dict())
    load_model_state, calls = trainer_module.load_model_state, []

    def interrupted_once(*args):
        calls.append(args)
        if len(calls) == 1:
            raise KeyboardInterrupt
        load_model_state(*args)

    monkeypatch.setattr(trainer_module, "load_model_state", interrupted_once)
    with pytest.raises(KeyboardInterrupt):
        trainer.load(tmp_path / "last.pt")
    assert trainer.epoch == 0 and _same(trainer.model.state_dict(), before)


def test_a_checkpoint_that_cannot_be_opened_fails_saying_so(tmp_path, monkeypatch):
    path = save_checkpoint({"model": {}, "optimizer": {}, "epoch": 1, "config": {}}, tmp_path / "last.pt")
    real_open = open

    def denied(file, *args, **kwargs):  # chmod 000 would not stop root, who runs the tests in containers
        if Path(file) == path:
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", denied)
    with pytest.raises(CheckpointError, match=r"last\.pt could not be read \(Permission denied\)") as caught:
        load_checkpoint(path)
    assert "zip archive" not in str(caught.value)  # it is one: it could not be opened


def test_an_optimizer_state_of_another_shape_is_refused_before_any_step(small_data, tmp_path):
    _trainer(small_data, tmp_path, epochs=1).fit()
    state = load_checkpoint(tmp_path / "last.pt")
    moments = state["optimizer"]["state"][0]
    moments["exp_avg"] = moments["exp_avg"].flatten()[:280]  # a sparse run's moments of the 70 x 8 table
    save_checkpoint(state, tmp_path / "last.pt")
    trainer = _trainer(small_data, tmp_path, epochs=2)
    # torch loaded it, and Adam's first step wrote past it: a segmentation fault, or heap corruption
    with pytest.raises(
        CheckpointError, match=r"last\.pt holds an optimizer state exp_avg of shape \[280\] for"
    ):
        trainer.fit(resume=True)
    assert trainer.epoch == 0
    moments["exp_avg"] = torch.zeros(3)
    del state["optimizer"]["param_groups"]
    save_checkpoint(state, tmp_path / "last.pt")
    with pytest.raises(CheckpointError, match=r"last\.pt holds no optimizer state_dict"):
        trainer.fit(resume=True)  # was: KeyError 'param_groups'


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_checkpoint_of_non_finite_weights_is_refused_and_leaves_the_model(small_data, tmp_path, bad):
    # evaluated, NaN weights ranked every item level and reported 0 for every metric, without a word
    _trainer(small_data, tmp_path, epochs=1).fit()
    state = load_checkpoint(tmp_path / "last.pt")
    state["model"]["embedding.weight"][3, 1] = bad
    save_checkpoint(state, tmp_path / "last.pt")
    trainer = _trainer(small_data, tmp_path, epochs=2)
    before = trainer.model.embedding.weight.detach().clone()
    with pytest.raises(
        CheckpointError, match=r"last\.pt holds non-finite values \(NaN or infinity\) in embedding"
    ):
        trainer.fit(resume=True)
    assert torch.equal(trainer.model.embedding.weight, before)


def _drop_moments(optimizer_state):
    del optimizer_state["state"]


def _add_group(optimizer_state):
    optimizer_state["param_groups"].append({**optimizer_state["param_groups"][0], "params": []})


@pytest.mark.parametrize(
    ("damage", "said"),
    [
        (_drop_moments, "holds no optimizer state_dict"),  # was: 'NoneType' object has no attribute 'get'
        (_add_group, "holds an optimizer state that does not fit: .*number of parameter groups"),  # torch's
    ],
)
def test_an_optimizer_state_of_another_layout_is_named_as_such(small_data, tmp_path, damage, said):
    _trainer(small_data, tmp_path, epochs=1).fit()
    state = load_checkpoint(tmp_path / "last.pt")
    damage(state["optimizer"])
    save_checkpoint(state, tmp_path / "last.pt")
    trainer = _trainer(small_data, tmp_path, epochs=2)
    with pytest.raises(CheckpointError, match=rf"^checkpoint \S+last\.pt {said}"):
        trainer.fit(resume=True)
    assert trainer.epoch == 0


def test_a_buffer_that_holds_infinity_by_design_loads():
    """Only parameters are checked for non-finite values: a custom model's buffer may hold -inf by design (a
    mask added to its scores), and its checkpoint is whole."""
    from dslgraph.train.checkpoint import load_model_state

    model = torch.nn.Linear(3, 2)
    model.register_buffer("blocked", torch.tensor([0.0, float("-inf")]))
    state = {"model": copy.deepcopy(model.state_dict())}
    torch.nn.init.zeros_(model.weight)
    load_model_state(model, state, "c.pt")
    assert torch.equal(model.weight, state["model"]["weight"])


class _ColumnMomentum(torch.optim.Optimizer):
    """An optimizer of one's own (GaLore-like) keeping an ``exp_avg`` of its own shape: a column mean."""

    def __init__(self, params, lr=0.01):
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is not None:
                    state = self.state[param]
                    state["exp_avg"] = 0.9 * state.get("exp_avg", 0) + param.grad.mean(0)
                    param.sub_(group["lr"] * state["exp_avg"])


@pytest.mark.parametrize(
    "optimizer",
    [
        pytest.param(
            "Adafactor",
            marks=pytest.mark.skipif(not hasattr(torch.optim, "Adafactor"), reason="torch without Adafactor"),
        ),
        "own",
    ],
)
def test_an_optimizer_with_states_of_other_shapes_resumes(small_data, tmp_path, optimizer):
    """Adafactor keeps a row and a column variance of other shapes than the parameter's, as it should, and
    an optimizer of one's own may keep even an ``exp_avg`` so: only the states torch's optimizers keep one
    per entry are checked against the parameter's shape."""

    def trainer(epochs):
        torch.manual_seed(0)
        config = TrainConfig(epochs=epochs, batch_size=64, eval_every=1, progress=False, seed=3)
        model = LightGCN(30, 40, embedding_dim=8)
        made = torch.optim.Adafactor if optimizer == "Adafactor" else _ColumnMomentum
        return Trainer(
            model, small_data, config, output_dir=tmp_path, device="cpu", optimizer=made(model.parameters())
        )

    trainer(1).fit()
    kept = load_checkpoint(tmp_path / "last.pt")["optimizer"]["state"][0]
    assert kept["row_var" if optimizer == "Adafactor" else "exp_avg"].shape != (70, 8)
    resumed = trainer(2)
    resumed.fit(resume=True)
    assert resumed.epoch == 2


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("epoch", "1"),  # TypeError: '>=' not supported between instances of 'str' and 'int'
        ("epoch", -1),  # resumed at epoch -1
        ("epoch", 1.5),  # resumed, and wrote "epochs": 2.5
        ("model", [1]),  # TypeError: 'int' object is not subscriptable
        ("history", "x"),  # AttributeError: 'str' object has no attribute 'append'
        ("best", "x"),
        ("bad_evals", True),
        ("bad_evals", -1),  # patience counted from below 0
        ("train_seconds", float("nan")),
        ("hooks", {}),
    ],
)
def test_a_checkpoint_entry_of_another_type_is_refused_naming_it(small_data, tmp_path, key, value):
    _trainer(small_data, tmp_path, epochs=1).fit()
    state = load_checkpoint(tmp_path / "last.pt")
    state[key] = value
    save_checkpoint(state, tmp_path / "last.pt")
    trainer = _trainer(small_data, tmp_path, epochs=2)
    with pytest.raises(CheckpointError, match=rf"last\.pt holds {key}=.*, where dslgraph's trainer writes "):
        trainer.fit(resume=True)
    assert trainer.epoch == 0 and trainer.history == []


def test_a_checkpoint_name_the_system_refuses_fails_naming_it(tmp_path):
    path = tmp_path / ("x" * 300) / "last.pt"  # OSError from Path.is_dir(), also in the CLI's error handler
    with pytest.raises(CheckpointError, match=r"last\.pt could not be read \(File name too long\)"):
        load_checkpoint(path)


def test_a_checkpoint_of_another_dsl_backend_fails_naming_it(small_data, tmp_path):
    def trainer(out, backend):
        torch.manual_seed(0)
        model = LightGCN(30, 40, embedding_dim=8)
        dsl = DynamicSparseLearning(model, 0.8, total_steps=8, update_interval=3, backend=backend)
        config = TrainConfig(epochs=2, batch_size=64, lr=0.01, progress=False, seed=3)
        return Trainer(model, small_data, config, output_dir=out, device="cpu", hooks=[dsl])

    trainer(tmp_path, "masked").fit()
    with pytest.raises(ValueError, match=r"last\.pt: .*backend was 'masked', now 'sparse'"):
        trainer(tmp_path / "sparse", "sparse").load(tmp_path / "last.pt")  # named its keys, not the backend


def _model_run(data, out, model_name, backend, growth, epochs, resume=False, optimizer_state="reset"):
    from dslgraph.nn import CDAE, ConvNCF, MultVAE, NeuMF, UltraGCN

    torch.manual_seed(0)
    models = {
        "lightgcn": lambda: LightGCN(30, 40, embedding_dim=8),
        "cdae": lambda: CDAE(30, 40, hidden_channels=8),  # dropout corruption: the global RNG
        "multvae": lambda: MultVAE(30, 40, hidden_channels=8, latent_dim=4),  # and reparametrisation noise
        "neumf": lambda: NeuMF(30, 40, embedding_dim=8),  # dropout; 4 negatives drawn batch by batch
        "ultragcn": lambda: UltraGCN(30, 40, embedding_dim=8, num_negatives=5),
        # pre-training (its count a buffer) still under way when the run stops after 2 epochs of 30 batches
        "convncf": lambda: ConvNCF(30, 40, embedding_dim=8, pretrain_steps=70),
    }
    model = models[model_name]()
    config = TrainConfig(
        epochs=4, batch_size=8, lr=0.01, lr_schedule="cosine", eval_every=1, progress=False, seed=1
    )
    steps = 4 * len(trainer_module.make_batches(model, data, config))
    dsl = DynamicSparseLearning(
        model,
        0.5,
        steps,
        list(model.dsl_targets),
        update_interval=3,
        growth=growth,
        optimizer_state=optimizer_state,
        backend=backend,
        seed=2,
    )
    trainer = Trainer(model, data, config, output_dir=out, device="cpu", hooks=[dsl])
    trainer.config.epochs = epochs
    return trainer.fit(resume=resume), model


@pytest.mark.parametrize(
    ("model_name", "backend", "growth", "optimizer_state"),
    [
        ("lightgcn", "compact", "gradient", "reset"),
        ("lightgcn", "masked", "random", "reset"),  # the controller's RNG
        ("cdae", "sparse", "gradient", "reset"),
        ("multvae", "sparse", "gradient", "reset"),
        ("neumf", "masked", "momentum", "keep"),
        ("ultragcn", "sparse", "random", "keep"),
        ("convncf", "sparse", "gradient", "reset"),
    ],
)
def test_resume_reproduces_the_whole_run_of_each_backend_and_batch_kind(
    small_data, tmp_path, model_name, backend, growth, optimizer_state
):
    run = functools.partial(
        _model_run,
        small_data,
        model_name=model_name,
        backend=backend,
        growth=growth,
        optimizer_state=optimizer_state,
    )
    full, full_model = run(tmp_path / "full", epochs=4)
    run(tmp_path / "split", epochs=2)
    resumed, resumed_model = run(tmp_path / "split", epochs=4, resume=True)
    strip = lambda h: [{k: v for k, v in e.items() if not k.endswith("seconds")} for e in h]  # noqa: E731
    assert strip(full["history"]) == strip(resumed["history"])
    assert _same(full_model.state_dict(), resumed_model.state_dict())


def test_resolve_device_names_a_device_torch_cannot_parse_or_does_not_have(monkeypatch):
    with pytest.raises(ValueError, match="device 'gpu' is not a torch device; use 'cpu', 'cuda'"):
        resolve_device("gpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    message = r"device 'cuda:0' was asked for but torch sees no CUDA device; use 'cpu' or 'auto' \(CLI: "
    with pytest.raises(ValueError, match=message):
        resolve_device("cuda:0")  # named as given (it said 'cuda')
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(ValueError, match="device 'cuda:2' does not exist: torch sees 2 CUDA devices"):
        resolve_device("cuda:2")
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.parametrize("device", ["mps", "mps:0", torch.device("mps"), "xpu"])
def test_a_device_other_than_cpu_and_cuda_is_refused_naming_the_ones_that_run(small_data, device):
    """torch has no sparse CSR tensors on MPS, nor float64: a run on an Apple GPU failed deep inside torch
    (NotImplementedError at the graph's transfer, a TypeError at the first epoch's float64 loss sum)."""
    message = rf"device '(mps|mps:0|xpu)' is not supported: {re.escape(OTHER_DEVICES)}$"
    with pytest.raises(ValueError, match=message):
        resolve_device(device)
    with pytest.raises(ValueError, match=message):
        Trainer(
            LightGCN(30, 40, embedding_dim=8),
            small_data,
            TrainConfig(epochs=1, progress=False),
            device=device,
        )


def _scripted(trainer, validation, test):
    """Makes ``trainer.evaluate`` report the given ``{metric: [value at epoch 1, 2, ...]}`` per split, so that
    which epoch the trainer picks, stops at or checkpoints follows from these numbers alone."""

    def evaluate(split="test"):
        script = validation if split == "validation" else test
        return {name: values[trainer.epoch - 1] for name, values in script.items()}

    trainer.evaluate = evaluate
    return trainer


def test_the_best_epoch_is_the_validation_monitors_strict_maximum(small_data, tmp_path):
    """The best epoch is picked on the validation split by the monitored metric; a later tie does not
    replace it; the summary, metrics.json and best.pt are that epoch's, with its test numbers."""
    validation = {"recall@20": [0.9, 0.1, 0.1, 0.2], "ndcg@20": [0.1, 0.3, 0.2, 0.3]}
    test = {"recall@20": [0.9, 0.8, 0.7, 0.6], "ndcg@20": [0.5, 0.2, 0.9, 0.8]}
    trainer = _trainer(_validation_data(small_data), tmp_path, epochs=4, monitor="ndcg@20", lr=0.0)
    summary = _scripted(trainer, validation, test).fit()
    # validation ndcg@20 peaks first at epoch 2 (0.3) and epoch 4 only ties it; recall@20 would pick
    # epoch 1, test ndcg@20 epoch 3, the last evaluation epoch 4
    assert summary["best_epoch"] == 2
    assert summary["validation"] == {"recall@20": 0.1, "ndcg@20": 0.3}
    assert summary["test"] == {"recall@20": 0.8, "ndcg@20": 0.2}
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert (written["best_epoch"], written["validation"]) == (2, {"recall@20": 0.1, "ndcg@20": 0.3})
    assert load_checkpoint(tmp_path / "best.pt")["epoch"] == 2
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 4


def test_patience_counts_evaluations_since_the_last_improvement(small_data):
    # patience 2: epoch 3 improves on epoch 1, so epochs 4 and 5 are the two without gain (stop at 5,
    # before epoch 6's 0.5); counted since epoch 1 instead, epochs 2 and 4 would stop the run at 4
    validation = {"recall@20": [0.1, 0.0, 0.2, 0.0, 0.0, 0.5]}
    trainer = _trainer(_validation_data(small_data), None, epochs=6, patience=2, lr=0.0)
    summary = _scripted(trainer, validation, validation).fit()
    assert summary["epochs"] == 5 and summary["best_epoch"] == 3


def test_a_resumed_run_keeps_its_best_epoch_and_patience(small_data, tmp_path):
    """Stopped after epoch 2 and resumed, the run stops where the whole one does: epoch 1 stays the best and
    epoch 2 still counts against patience (3), so epochs 3 and 4 end the run before epoch 5's 0.9."""
    validation = {"recall@20": [0.3, 0.1, 0.2, 0.1, 0.9]}
    data = _validation_data(small_data)

    def run(out, epochs):
        return _scripted(_trainer(data, out, epochs=epochs, patience=3, lr=0.0), validation, validation)

    whole = run(tmp_path / "whole", 5).fit()
    assert whole["epochs"] == 4 and whole["best_epoch"] == 1
    run(tmp_path / "split", 2).fit()
    resumed = run(tmp_path / "split", 5).fit(resume=True)
    assert resumed["epochs"] == 4 and resumed["best_epoch"] == 1


def test_a_run_stopped_early_and_resumed_stays_stopped_unless_patience_grows(small_data, tmp_path):
    # patience 1 stops the run at epoch 2; resumed under the same patience it trained on to epoch 3 (one
    # more evaluation without gain) and rewrote its checkpoints, which the uninterrupted run did not
    validation = {"recall@20": [0.3, 0.1, 0.2, 0.5, 0.1]}
    data = _validation_data(small_data)

    def run(patience):
        trainer = _trainer(data, tmp_path, epochs=5, patience=patience, lr=0.0)
        return _scripted(trainer, validation, validation)

    assert run(1).fit()["epochs"] == 2
    written = (tmp_path / "last.pt").read_bytes()
    resumed = run(1).fit(resume=True)
    assert resumed["epochs"] == 2 and len(resumed["history"]) == 2
    assert (tmp_path / "last.pt").read_bytes() == written
    # a larger patience trains on: epoch 4 improves on epoch 1, epoch 5 does not
    assert run(3).fit(resume=True)["best_epoch"] == 4


@pytest.mark.parametrize(
    "bad_evals, patience, stopped",
    [(0, 1, False), (1, 1, True), (2, 3, False), (4, 3, True), (0, 0, False), (5, 0, False)],
)
def test_stopped_early_is_one_rule_for_the_trainer_and_the_cli_s_resume(bad_evals, patience, stopped):
    # the trainer stops on it and `dslgraph train --resume` refuses a stopped run on it (with --patience 0,
    # which never stops, named as the way to train on): one rule, not two that could drift apart
    assert trainer_module.stopped_early(bad_evals, patience) is stopped


@pytest.mark.parametrize("max_seconds", [0.0, 1e6])  # also under a time budget the run stays within
def test_the_last_epoch_is_a_scheduled_evaluation(small_data, max_seconds):
    # eval_every 2 over 3 epochs: epochs 2 and 3 are evaluated, and epoch 3 (the better) can be the best
    validation = {"recall@20": [0.0, 0.1, 0.5]}
    trainer = _trainer(
        _validation_data(small_data), None, epochs=3, eval_every=2, lr=0.0, max_seconds=max_seconds
    )
    summary = _scripted(trainer, validation, validation).fit()
    assert [entry["epoch"] for entry in summary["history"]] == [2, 3]
    assert summary["best_epoch"] == 3 and "scheduled" not in summary["history"][-1]


def test_validation_is_ranked_on_the_validation_split_with_training_items_excluded(small_data):
    data = _validation_data(small_data)
    trainer = _trainer(data, None, epochs=1)
    trainer.fit()
    scores = trainer.model.scorer(trainer.graph)
    on_val = RankingEvaluator.from_data(data, "val", ks=(20,))(scores)
    on_test = RankingEvaluator.from_data(data, "test", ks=(20,))(scores)
    assert on_val != on_test  # else the test tells nothing
    assert trainer.evaluate("validation") == on_val and trainer.evaluate("test") == on_test
    assert trainer.evaluate("val") == on_val


class DropoutMatrixFactorization(MatrixFactorization):
    """A model of one's own whose scores go through dropout in training mode, as PyTorch modules' do."""

    def __init__(self):
        super().__init__()
        self.dropout = torch.nn.Dropout(0.5)

    def scorer(self, graph):
        return lambda users, items=None: self.dropout(self.users(users)) @ self.items.weight.T


def test_evaluation_scores_the_model_in_eval_mode(small_data):
    """The models of dslgraph.nn score alike in both modes, a model of one's own need not: evaluated in
    training mode, right after an epoch, its metrics would be those of random dropout masks."""
    torch.manual_seed(0)
    model = DropoutMatrixFactorization()
    trainer = Trainer(model, small_data, TrainConfig(epochs=1, progress=False), device="cpu")
    trainer.train_epoch()
    evaluations = []
    for seed in (1, 2):
        model.train()
        torch.manual_seed(seed)
        evaluations.append(trainer.evaluate())
    model.eval()
    expected = RankingEvaluator.from_data(small_data, ks=(20,))(model.scorer(None))
    assert evaluations == [expected, expected]


def test_a_run_resumed_under_its_max_seconds_trains_for_as_long_again(small_data, tmp_path, monkeypatch):
    clock = iter(range(10**6))  # every reading a second later: an epoch trains for 1 s
    monkeypatch.setattr(trainer_module.time, "perf_counter", lambda: float(next(clock)))
    assert _trainer(small_data, tmp_path, epochs=6, max_seconds=2).fit()["epochs"] == 2
    # the same budget again (docs/results.md's recipe: "the same with --resume"); against the 2 s trained in
    # all, the resumed run stopped after one epoch
    resumed = _trainer(small_data, tmp_path, epochs=6, max_seconds=2).fit(resume=True)
    assert resumed["epochs"] == 4
    # each evaluation's entry holds the training seconds up to it, the whole run's: not the evaluations' time,
    # and on from the checkpoint's after the resume
    assert [entry["seconds"] for entry in resumed["history"]] == [1, 2, 3, 4]


@pytest.mark.parametrize("progress", [True, False])
def test_full_ranking_evaluation_shows_progress_as_an_epoch_does(small_data, capsys, progress):
    """Scoring every item for every user takes as long as an epoch on a large catalogue: it had no bar."""
    _trainer(small_data, None, epochs=1, progress=progress, eval_batch_size=8).fit()
    err = capsys.readouterr().err
    assert ("epoch 1" in err) == progress
    assert ("evaluating" in err) == progress


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_data_moved_to_cuda_trains_as_the_cpus_does_on_cuda(small_data):
    # Trainer(model, data.to("cuda"), ..., "cuda") failed building the graph (CPU degrees) and the batches
    # (torch.cat of a CPU zero and GPU counts)
    def run(data):
        torch.manual_seed(0)
        config = TrainConfig(epochs=2, batch_size=64, lr=0.01, eval_every=1, progress=False, seed=3)
        trainer = Trainer(LightGCN(30, 40, embedding_dim=8), data, config, device="cuda")
        trainer.fit()
        return trainer.history

    moved, kept = run(small_data.to("cuda")), run(small_data)
    # alike, not equal: a GPU's atomic adds (the gradients of gathered rows) sum in any order
    assert [entry["loss"] for entry in moved] == pytest.approx([entry["loss"] for entry in kept], rel=1e-3)
    assert moved[-1]["test"]["recall@20"] == pytest.approx(kept[-1]["test"]["recall@20"], abs=0.02)


def test_a_setting_named_where_it_goes_is_not_also_spelt_like_a_field():
    # eval_negatives is spelt close to eval_every, which it does not mean
    hint = "('eval_negatives' is load_dataset's protocol_options={'num_negatives': 100})"
    with pytest.raises(TypeError, match=re.escape(f"keyword argument(s) ['eval_negatives'] {hint}") + "$"):
        TrainConfig(eval_negatives=100)


def test_every_optimizer_step_s_loss_is_given_the_reg_weight(small_data):
    trainer = _trainer(small_data, None, epochs=1, reg_weight=0.5)
    loss, given = trainer.model.loss, []

    def spy(*batch, reg_weight):
        given.append(reg_weight)
        return loss(*batch, reg_weight=reg_weight)

    trainer.model.loss = spy
    trainer.train_epoch()
    assert given == [0.5] * len(trainer.batches)


def test_the_trainer_keeps_its_own_copy_of_the_config(small_data):
    # a grid that changes its config object for the next run must not change the run it has made already
    config = TrainConfig(epochs=2, batch_size=64, lr=0.01, eval_every=1, progress=False, seed=3)
    trainer = Trainer(LightGCN(30, 40, embedding_dim=8), small_data, config, device="cpu")
    config.epochs, config.eval_every = 1, 2
    summary = trainer.fit()
    assert [entry["epoch"] for entry in summary["history"]] == [1, 2]
    assert (summary["epochs"], summary["config"]["epochs"], summary["config"]["eval_every"]) == (2, 2, 1)


def test_the_sampling_setting_decides_what_an_epoch_visits(small_data):
    edges = sorted(map(tuple, small_data[EDGE].edge_index.t().tolist()))

    def epoch(sampling):
        batches = _trainer(small_data, None, epochs=1, sampling=sampling).batches
        return sorted((u, i) for users, items, _ in batches for u, i in zip(users.tolist(), items.tolist()))

    assert epoch("edge") == edges  # every training interaction once
    visited = epoch("user")  # a user drawn uniformly, then one of its items: some interactions twice
    assert visited != edges and len(visited) == len(edges) and set(visited) <= set(edges)


def test_the_arguments_after_config_are_keyword_only(small_data, tmp_path, monkeypatch):
    # Trainer(model, data, config, "cpu") made a folder "cpu" and trained on the automatic device (then it was
    # refused as a device name); nothing after config is taken by position now
    monkeypatch.chdir(tmp_path)
    config = TrainConfig(epochs=1, progress=False)
    with pytest.raises(TypeError, match=r"takes 4 positional arguments but 5 were given"):
        Trainer(LightGCN(30, 40, embedding_dim=8), small_data, config, "cpu")
    with pytest.raises(TypeError, match=r"takes 4 positional arguments but 6 were given"):
        Trainer(LightGCN(30, 40, embedding_dim=8), small_data, config, tmp_path, "cpu")
    assert not (tmp_path / "cpu").exists()
    parameters = inspect.signature(Trainer).parameters.values()
    assert [p.name for p in parameters if p.kind is not p.KEYWORD_ONLY] == ["model", "data", "config"]
    # by name, a folder so called is what was asked for
    assert (
        Trainer(LightGCN(30, 40, embedding_dim=8), small_data, config, output_dir="cpu").output_dir.name
        == "cpu"
    )
