"""Training: loss goes down, outputs and checkpoints, exact resume, DDP equals one process, CLI."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor, nn

import models
from infoprobe.checkpoint import build_model, load
from infoprobe.cli import main
from infoprobe.data import load_dataset
from infoprobe.errors import InfoprobeError
from models.base import Autoencoder
from models.training import train


@pytest.fixture(scope="module")
def digits() -> Any:
    return load_dataset("digits", split="train").subset(256, seed=1)


@pytest.fixture(scope="module")
def digits_test() -> Any:
    return load_dataset("digits", split="test").subset(64, seed=1)


def _params(model: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _assert_same(a: dict[str, Tensor], b: dict[str, Tensor], atol: float = 0.0) -> None:
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=atol, rtol=0, msg=key)


class NoisyAE(Autoencoder):
    """A stochastic toy model (dropout and a sampled latent) to check that RNG state is resumed."""

    registry_name = "test-noisy-ae"

    def __init__(self) -> None:
        super().__init__({"dataset": "digits"}, input_shape=(1, 8, 8))
        self.enc = nn.Linear(64, 4)
        self.drop = nn.Dropout(0.2)
        self.dec = nn.Linear(4, 64)

    def encode(self, x: Tensor) -> Tensor:
        h = self.enc(self.drop(x.flatten(1)))
        return h + 0.1 * torch.randn_like(h)

    def decode(self, code: Tensor) -> Tensor:
        return self.dec(code).view(-1, 1, 8, 8)

    def loss(self, x: Tensor) -> dict[str, Tensor]:
        err = (self.reconstruct(x) - x).abs().mean()
        return {"loss": err, "l1": err}


class _Interrupt:
    """Forward pre-hook raising KeyboardInterrupt at the n-th call, as a Ctrl-C mid-epoch would."""

    def __init__(self, at_call: int) -> None:
        self.calls, self.at_call = 0, at_call

    def __call__(self, module: nn.Module, args: Any) -> None:
        self.calls += 1
        if self.calls == self.at_call:
            raise KeyboardInterrupt("simulated interruption")


@pytest.mark.parametrize("name", ["inn-ae", "classical-ae"])
def test_training_lowers_loss_and_writes_metrics_and_checkpoint(name, digits, digits_test, tmp_path) -> None:
    model = models.build(name, dataset="digits")
    result = train(model, digits, test_data=digits_test, epochs=3, out=tmp_path, progress=False)
    assert result.epochs_done == 3
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in lines] == [1, 2, 3]
    assert lines[-1]["train_loss"] < lines[0]["train_loss"]
    assert lines[-1]["test_loss"] < lines[0]["test_loss"]
    assert {"train_l1", "test_l1", "lr", "images_per_second"} <= set(lines[0])
    assert lines == result.history

    ckpt = load(tmp_path / "checkpoint.pt")  # weights_only=True, including the training state
    assert ckpt.state is not None and ckpt.state["epoch"] == 3
    assert ckpt.training["recipe"]["epochs"] == 3
    assert ckpt.training["seed"] == 0 and ckpt.training["epochs_done"] == 3
    assert ckpt.dataset is not None and ckpt.dataset["n"] == 256
    assert ckpt.metrics["test_loss"] == lines[-1]["test_loss"]
    again = build_model(ckpt)
    x = digits_test.images[:8]
    model.eval()
    torch.testing.assert_close(again.reconstruct(x), model.reconstruct(x), atol=0, rtol=0)


def test_out_may_name_the_checkpoint_file(digits, tmp_path) -> None:
    model = models.build("classical-ae", dataset="digits")
    train(model, digits, epochs=1, out=tmp_path / "ae.pt", progress=False)
    assert load(tmp_path / "ae.pt").training["epochs_done"] == 1
    assert len((tmp_path / "ae.metrics.jsonl").read_text().splitlines()) == 1
    assert not (tmp_path / "ae.pt").is_dir()


def test_recipe_defaults_and_overrides(digits) -> None:
    model = models.build("inn-ae", dataset="digits")
    result = train(model, digits, epochs=1, lr=5e-4, progress=False, recipe={"milestones": [1]})
    assert result.recipe["betas"] == [0.8, 0.8]  # the reference INN recipe
    assert result.recipe["eps"] == 1e-4 and result.recipe["weight_decay"] == 1e-6
    assert result.recipe["lr"] == 5e-4 and result.recipe["milestones"] == [1]
    assert result.history[0]["lr"] == 5e-4  # the lr used in epoch 1, before the milestone


def _run(model_factory, digits, out, **kw) -> dict[str, Tensor]:
    torch.manual_seed(123)
    model = model_factory()
    train(model, digits, out=out, progress=False, seed=7, batch_size=64, **kw)
    return _params(model)


@pytest.mark.parametrize("factory", [lambda: models.build("inn-ae", dataset="digits"), NoisyAE],
                         ids=["inn-ae", "stochastic"])
def test_resume_after_interruption_mid_epoch_matches_uninterrupted(factory, digits, tmp_path) -> None:
    recipe = {"milestones": [2], "gamma": 0.5}
    full = _run(factory, digits, tmp_path / "full", epochs=3, recipe=recipe)

    torch.manual_seed(123)
    model = factory()
    stop = _Interrupt(at_call=7)  # 4 batches per epoch: stop at step 3 of epoch 2
    handle = getattr(model, "bottleneck", getattr(model, "enc", None)).register_forward_pre_hook(stop)
    with pytest.raises(KeyboardInterrupt, match="simulated interruption"):
        train(model, digits, out=tmp_path / "cut", progress=False, seed=7, batch_size=64,
              epochs=3, recipe=recipe)
    handle.remove()
    state = load(tmp_path / "cut" / "checkpoint.pt").state
    assert state is not None and (state["epoch"], state["step"]) == (1, 2)
    before = state["partial"]["_seconds"], state["partial"]["_cpu_seconds"]
    assert before[0] > 0 and before[1] > 0

    torch.manual_seed(999)  # the resumed run must not depend on the caller's RNG or init
    resumed = factory()
    result = train(resumed, digits, out=tmp_path / "cut", progress=False, seed=7, batch_size=64,
                   epochs=3, recipe=recipe, resume=True)
    assert result.epochs_done == 3
    _assert_same(_params(resumed), full)
    rows = [json.loads(x) for x in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    # the interrupted epoch's time includes the part before the interruption
    assert [r.get("resumed_at_step") for r in rows] == [None, 2, None]
    assert rows[1]["seconds"] > before[0] and rows[1]["cpu_seconds"] > before[1]
    assert not any(k.startswith("train__") for r in rows for k in r)
    full_rows = [json.loads(x) for x in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    assert [r["train_loss"] for r in rows] == pytest.approx([r["train_loss"] for r in full_rows], abs=1e-6)


def test_mid_epoch_checkpoints_survive_a_kill_with_no_time_to_save(digits, tmp_path) -> None:
    # a SIGKILL runs no handler: what is on disk then is the last periodic checkpoint. Copy the
    # files as they are at step 3 of epoch 2 (before the interruption handler could write) and
    # resume from the copy.
    def factory() -> nn.Module:
        return models.build("classical-ae", dataset="digits")

    full = _run(factory, digits, tmp_path / "full", epochs=2)
    calls = {"n": 0}

    def kill(module: nn.Module, inputs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 7:  # 4 batches per epoch (batch 64): step 3 of epoch 2
            shutil.copytree(tmp_path / "cut", tmp_path / "killed")
            raise KeyboardInterrupt("simulated kill")

    torch.manual_seed(123)
    model = factory()
    handle = model.encoder.register_forward_pre_hook(kill)
    with pytest.raises(KeyboardInterrupt, match="simulated kill"):
        train(model, digits, out=tmp_path / "cut", progress=False, seed=7, batch_size=64, epochs=2,
              checkpoint_every=0)
    handle.remove()
    state = load(tmp_path / "killed" / "checkpoint.pt").state
    assert state is not None and (state["epoch"], state["step"]) == (1, 2)
    torch.manual_seed(999)
    resumed = factory()
    train(resumed, digits, out=tmp_path / "killed", progress=False, seed=7, batch_size=64, epochs=2, resume=True)
    _assert_same(_params(resumed), full)


def test_negative_checkpoint_interval_is_a_user_error(digits, capsys) -> None:
    with pytest.raises(InfoprobeError, match=r"Expected checkpoint_every >= 0 seconds"):
        train(models.build("classical-ae", dataset="digits"), digits, checkpoint_every=-1, progress=False)
    assert main(["train", "classical-ae", "--dataset", "digits", "--checkpoint-every", "-5"]) == 2
    assert "Expected --checkpoint-every >= 0 seconds" in capsys.readouterr().err


def test_resume_at_epoch_end_with_more_epochs_matches_uninterrupted(digits, tmp_path) -> None:
    def factory() -> nn.Module:
        return models.build("classical-ae", dataset="digits")

    full = _run(factory, digits, tmp_path / "full", epochs=3)
    _run(factory, digits, tmp_path / "two", epochs=2)
    assert load(tmp_path / "two" / "checkpoint.pt").state["epoch"] == 2
    resumed = _run(factory, digits, tmp_path / "two", epochs=3, resume=True)
    _assert_same(resumed, full)
    # fewer epochs than done: nothing trains, and neither the result nor the checkpoint claims fewer
    result = train(factory(), digits, epochs=1, out=tmp_path / "two", resume=True, progress=False)
    assert result.epochs_done == 3 and result.recipe["epochs"] == 3 and len(result.history) == 3
    assert load(tmp_path / "two" / "checkpoint.pt").training["recipe"]["epochs"] == 3
    _assert_same(_params(result.model), full)


def test_a_schedule_given_on_resume_applies_as_if_used_from_the_start(digits, tmp_path) -> None:
    # the run is extended with an lr drop at its end (what one does when a curve flattens):
    # the result equals a run that had the drop in its recipe from the start
    def factory() -> nn.Module:
        return models.build("classical-ae", dataset="digits")

    full = _run(factory, digits, tmp_path / "full", epochs=3, milestones=[2], gamma=0.5)
    _run(factory, digits, tmp_path / "two", epochs=2)
    resumed = _run(factory, digits, tmp_path / "two", epochs=3, resume=True, milestones=[2], gamma=0.5)
    _assert_same(resumed, full)
    ckpt = load(tmp_path / "two" / "checkpoint.pt")
    assert ckpt.training["recipe"]["milestones"] == [2] and ckpt.training["recipe"]["gamma"] == 0.5
    assert ckpt.training["recipe_changes"] == [
        {"epoch": 2, "step": 0, "changed": {"milestones": [[], [2]], "gamma": [0.1, 0.5]}}
    ]
    lrs = [r["lr"] for r in ckpt.metrics["history"]]
    assert lrs == [1e-3, 1e-3, 5e-4]


def test_an_added_milestone_gives_the_lr_bit_for_bit(digits, tmp_path) -> None:
    # MultiStepLR lowers the lr one milestone at a time: 1e-3 * 0.1 * 0.1 is not 1e-3 * 0.1 ** 2
    def factory() -> nn.Module:
        return models.build("classical-ae", dataset="digits")

    full = _run(factory, digits, tmp_path / "full", epochs=3, milestones=[1, 2], gamma=0.1)
    _run(factory, digits, tmp_path / "cut", epochs=2, milestones=[1], gamma=0.1)
    resumed = _run(factory, digits, tmp_path / "cut", epochs=3, milestones=[2, 1], resume=True)
    _assert_same(resumed, full)
    assert [r["lr"] for r in load(tmp_path / "cut" / "checkpoint.pt").metrics["history"]][-1] == 1e-3 * 0.1 * 0.1


def test_changes_that_cannot_apply_from_now_on_are_refused(digits, tmp_path) -> None:
    model = models.build("classical-ae", dataset="digits")
    train(model, digits, epochs=2, out=tmp_path, progress=False)
    with pytest.raises(InfoprobeError, match=r"Cannot add or remove lr milestone\(s\) \[1\]: the run is at epoch 2"):
        train(models.build("classical-ae", dataset="digits"), digits, epochs=3, milestones=[1], out=tmp_path,
              progress=False, resume=True)
    with pytest.raises(InfoprobeError, match=r"has done all its 2 epochs, so lr cannot apply .*--epochs 3"):
        train(models.build("classical-ae", dataset="digits"), digits, lr=1e-4, out=tmp_path,
              progress=False, resume=True)


def test_resume_keeps_the_checkpoints_recipe_unless_told_otherwise(digits, tmp_path) -> None:
    model = models.build("classical-ae", dataset="digits")
    train(model, digits, epochs=1, lr=5e-4, weight_decay=0.0, out=tmp_path, progress=False)
    result = train(models.build("classical-ae", dataset="digits"), digits, epochs=2, out=tmp_path,
                   progress=False, resume=True)
    assert result.recipe["lr"] == 5e-4 and result.recipe["weight_decay"] == 0.0
    assert result.history[-1]["lr"] == 5e-4
    assert "recipe_changes" not in load(tmp_path / "checkpoint.pt").training
    with pytest.raises(InfoprobeError, match=r"Cannot resume a run trained with 'adam' with optimizer 'sgd'"):
        train(models.build("classical-ae", dataset="digits"), digits, epochs=3, out=tmp_path,
              progress=False, resume=True, optimizer="sgd")


def test_resume_refuses_a_checkpoint_of_another_model(digits, tmp_path) -> None:
    train(models.build("classical-ae", dataset="digits"), digits, epochs=1, out=tmp_path, progress=False)
    with pytest.raises(InfoprobeError, match=r"Cannot resume from .*holds 'classical-ae'"):
        train(models.build("inn-ae", dataset="digits"), digits, epochs=1, out=tmp_path,
              progress=False, resume=True)


def test_resume_accepts_a_checkpoint_saved_before_an_option_existed(digits, tmp_path) -> None:
    tiny = {"dataset": "digits", "sigma": 0.1, "hidden_channels": 4, "hidden_features": 8, "couplings_per_block": 1}
    train(models.build("pie", **tiny), digits, epochs=1, out=tmp_path, progress=False)
    path = tmp_path / "checkpoint.pt"
    raw = torch.load(path, weights_only=True)
    del raw["model"]["config"]["recon_weight"]  # as written before PIE had the option
    torch.save(raw, path)
    result = train(models.build("pie", **tiny), digits, epochs=2, out=tmp_path, progress=False, resume=True)
    assert result.epochs_done == 2
    with pytest.raises(InfoprobeError, match=r"Cannot resume from .*holds 'pie'"):  # a real difference still refuses
        train(models.build("pie", **{**tiny, "sigma": 0.2}), digits, epochs=3, out=tmp_path, progress=False,
              resume=True)


def test_bad_options_are_clear_errors(digits) -> None:
    model = models.build("classical-ae", dataset="digits")
    with pytest.raises(InfoprobeError, match="Unknown optimizer 'rmsprop'"):
        train(model, digits, optimizer="rmsprop", progress=False)
    with pytest.raises(InfoprobeError, match="Unknown training option 'momentun'"):
        train(model, digits, recipe={"momentun": 0.9}, progress=False)
    with pytest.raises(InfoprobeError, match=r"Expected training images of shape \(1, 28, 28\)"):
        train(models.build("classical-ae", dataset="mnist"), digits, progress=False)
    with pytest.raises(InfoprobeError, match="as an ImageData"):
        train(model, [1, 2, 3], progress=False)


def test_amp_on_the_cpu_warns_and_trains_in_float32(digits) -> None:
    model = models.build("classical-ae", dataset="digits")
    with pytest.warns(UserWarning, match="needs CUDA"):
        result = train(model, digits, epochs=1, amp=True, device="cpu", progress=False)
    assert result.device == "cpu" and next(model.parameters()).dtype == torch.float32


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error without CUDA")
def test_cuda_without_cuda_is_a_clear_error(digits) -> None:
    with pytest.raises(InfoprobeError, match="no CUDA device"):
        train(models.build("classical-ae", dataset="digits"), digits, device="cuda", progress=False)


def test_sgd_and_adamax_optimizers_train(digits) -> None:
    for name in ("sgd", "adamax"):
        model = models.build("classical-ae", dataset="digits")
        result = train(model, digits, epochs=2, optimizer=name, progress=False,
                       recipe={"momentum": 0.9} if name == "sgd" else None)
        assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]


# --- distributed and CLI ----------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_ddp_with_two_processes_matches_one_process(tmp_path) -> None:
    """``torchrun --nproc_per_node 2 -m infoprobe train`` (gloo, CPU) ends with the parameters of the
    one-process run on the same global batches. Tolerance: 1e-6 absolute on every parameter after
    14 Adam steps; the runs differ only by float32 rounding of the gradient average across ranks."""
    # 270 images: 7 global batches of 40 per epoch, the last of 30 (15 per rank)
    common = ["train", "inn-ae", "--dataset", "digits", "--subset", "270", "--batch-size", "40",
              "--epochs", "2", "--seed", "3", "--device", "cpu", "--no-progress"]
    assert main([*common, "--out", str(tmp_path / "one")]) == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--master_port", str(_free_port()), "-m", "infoprobe", *common, "--out", str(tmp_path / "two")]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("checkpoint:") == 1  # only rank 0 reports and writes

    one, two = load(tmp_path / "one" / "checkpoint.pt"), load(tmp_path / "two" / "checkpoint.pt")
    assert (one.training["world_size"], two.training["world_size"]) == (1, 2)
    _assert_same(two.state_dict, one.state_dict, atol=1e-6)  # measured: 3e-8
    torch.manual_seed(3)
    init = models.build("inn-ae", dataset="digits").state_dict()
    moved = max((v - init[k]).abs().max().item() for k, v in one.state_dict.items())
    assert moved > 1e-2  # training did move the parameters, so the comparison is not vacuous
    rows = [json.loads(x) for x in (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert rows[-1]["train_loss"] == pytest.approx(one.metrics["train_loss"], abs=1e-5)


def test_cli_trains_resumes_and_reports_errors(tmp_path, capsys) -> None:
    out = tmp_path / "run"

    def args(epochs: int, *extra: str) -> list[str]:
        return ["train", "classical-ae", "--dataset", "digits", "--bottleneck", "4", "--subset",
                "128", "--epochs", str(epochs), "--out", str(out), "--no-progress", "--set",
                "hidden=[32]", *extra]

    assert main(args(1)) == 0
    assert "checkpoint:" in capsys.readouterr().out
    ckpt = load(out / "checkpoint.pt")
    assert ckpt.model_config == {"dataset": "digits", "bottleneck": 4, "hidden": [32]}
    assert main(args(2, "--resume", "--recipe", "milestones=[1]")) == 0
    resumed = load(out / "checkpoint.pt")
    assert resumed.training["epochs_done"] == 2
    assert resumed.training["recipe"]["milestones"] == [1]
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2
    capsys.readouterr()
    assert main(args(2, "--resume")) == 0  # finished: resuming trains nothing and says so
    said = capsys.readouterr().out
    assert "nothing left to train" in said and "nan" not in said
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2

    assert main(["train", "no-such-model", "--dataset", "digits", "--out", str(tmp_path / "x")]) == 2
    assert "Unknown model 'no-such-model'" in capsys.readouterr().err
    assert main(["train", "inn-ae", "--dataset", "mnist", "--data-root", str(tmp_path / "none"),
                 "--out", str(tmp_path / "y")]) == 2
    assert "MNIST not found" in capsys.readouterr().err
    assert main(["train", "inn-ae", "--set", "oops", "--out", str(tmp_path / "z")]) == 2
    assert "Expected --set key=value" in capsys.readouterr().err


def test_a_signal_during_the_optimizer_update_waits_for_the_step_to_end() -> None:
    # a SIGTERM inside the update would leave a half-updated state that cannot be checkpointed
    import signal

    from infoprobe.checkpoint import interrupts_deferred

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    reached = []
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        with pytest.raises(KeyboardInterrupt, match=f"signal {int(signal.SIGTERM)}"), interrupts_deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            reached.append("the rest of the step")
        assert reached == ["the rest of the step"]
        assert signal.getsignal(signal.SIGTERM) is handler
        with interrupts_deferred():  # no signal: nothing happens
            reached.append("a quiet step")
    finally:
        signal.signal(signal.SIGTERM, previous)


class KLToy(Autoencoder):
    """Deterministic, with a VAE's ``re`` / ``kl`` terms, so a KL warm-up step can be redone by hand."""

    registry_name = "test-kl-toy"

    def __init__(self) -> None:
        super().__init__({"dataset": "digits"}, input_shape=(1, 8, 8))
        self.enc = nn.Linear(64, 4)
        self.dec = nn.Linear(4, 64)

    def encode(self, x: Tensor) -> Tensor:
        return self.enc(x.flatten(1))

    def decode(self, code: Tensor) -> Tensor:
        return self.dec(code).view(-1, 1, 8, 8)

    def loss(self, x: Tensor) -> dict[str, Tensor]:
        code = self.encode(x)
        re = (self.decode(code) - x).pow(2).flatten(1).sum(1).mean()
        kl = code.pow(2).sum(1).mean()
        return {"loss": re + kl, "re": re, "kl": kl}


def test_kl_weight_rises_linearly_over_the_warmup_epochs() -> None:
    from models.training import kl_weight

    # 2 epochs of 3 steps: β = 1/6, 2/6, ..., 1, then 1
    assert [kl_weight({"kl_warmup": 2}, s, 3) for s in range(8)] == pytest.approx([1 / 6, 2 / 6, 3 / 6, 4 / 6, 5 / 6, 1, 1, 1])
    assert kl_weight({"kl_warmup": 0}, 0, 3) == 1.0 and kl_weight({}, 0, 3) == 1.0


def test_kl_warmup_steps_on_re_plus_beta_kl_and_logs_the_full_loss(digits) -> None:
    torch.manual_seed(0)
    model, reference = KLToy(), KLToy()
    reference.load_state_dict(model.state_dict())
    # one step per epoch (the whole subset): β = 1/4 in the first step of a 4-epoch warm-up
    result = train(model, digits, epochs=1, batch_size=len(digits), optimizer="sgd", lr=0.01,
                   recipe={"kl_warmup": 4}, progress=False)
    terms = reference.loss(digits.images)
    (terms["re"] + 0.25 * terms["kl"]).backward()
    with torch.no_grad():
        for p in reference.parameters():
            p -= 0.01 * p.grad
    _assert_same(_params(model), _params(reference), atol=1e-6)
    assert result.recipe["kl_warmup"] == 4.0
    assert result.history[0]["train_loss"] == pytest.approx(float(terms["loss"].detach()), rel=1e-5)  # β = 1 in the log


def test_kl_warmup_resumes_where_it_was(digits, tmp_path) -> None:
    whole = _run(KLToy, digits, None, epochs=3, recipe={"kl_warmup": 2.5})
    _run(KLToy, digits, tmp_path, epochs=1, recipe={"kl_warmup": 2.5})
    resumed = _run(KLToy, digits, tmp_path, epochs=3, resume=True)
    _assert_same(whole, resumed)


def test_kl_warmup_needs_re_and_kl_terms(digits) -> None:
    with pytest.raises(InfoprobeError, match=r"kl_warmup needs a model whose loss reports 're' and 'kl'.*\['l1', 'loss'\]"):
        train(NoisyAE(), digits, epochs=1, recipe={"kl_warmup": 1}, progress=False)
    with pytest.raises(InfoprobeError, match=r"Expected kl_warmup >= 0 epochs .*got -1.0"):
        train(KLToy(), digits, epochs=1, recipe={"kl_warmup": -1}, progress=False)
