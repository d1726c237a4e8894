"""Training for every zoo model: recipes, progress, metrics, resumable checkpoints, AMP and DDP.

``train(model, data)`` optimises ``model.loss(x)["loss"]`` with the model's own
``default_recipe()`` (the reference recipe of its family and dataset); any keyword given here
overrides the recipe entry of the same name.

Reproducibility and resuming. The order of the training images in epoch ``e`` is a
permutation drawn from a generator seeded with ``(seed, e)`` only, so it does not depend on
what happened before. A checkpoint written at an epoch end (or on an interruption, after the
last finished step) holds the model, optimizer, scheduler, AMP scaler, torch RNG states and
the position ``(epoch, step)``; ``resume=True`` restores all of it and skips the steps already
done, so on the CPU a resumed run ends with the same parameters as an uninterrupted one.

Distributed. Launched by ``torchrun`` (``WORLD_SIZE`` > 1 in the environment), ``train``
joins the process group (gloo on the CPU, nccl on CUDA) and wraps the model in
``DistributedDataParallel``. Every rank draws the same epoch permutation and takes its share
of each *global* batch of ``batch_size`` images (a seeded equivalent of ``DistributedSampler``
that keeps the global batches of a one-process run); each rank's mean loss is weighted by its
share of the batch so that DDP's gradient average equals the gradient of the global batch
mean. Only rank 0 evaluates, writes checkpoints, ``metrics.jsonl`` and TensorBoard scalars.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from infoprobe import checkpoint
from infoprobe.checkpoint import interrupts_deferred
from infoprobe.data import subset_indices
from infoprobe.device import resolve_device
from infoprobe.errors import InfoprobeError
from models.recipes import (
    OPTIMIZERS,
    apply_recipe,
    make_optimizer,
    resolve_recipe,
    resumed_recipe,
)

__all__ = ["OPTIMIZERS", "TrainResult", "kl_weight", "resolve_recipe", "train"]


CHECKPOINT_NAME = "checkpoint.pt"
METRICS_NAME = "metrics.jsonl"


@dataclass
class TrainResult:
    """What :func:`train` returns. ``history`` has one dict per epoch (as in ``metrics.jsonl``)."""

    model: nn.Module
    recipe: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    epochs_done: int = 0
    images_per_second: float = float("nan")
    device: str = "cpu"
    checkpoint: Path | None = None

    @property
    def final(self) -> dict[str, Any]:
        """The last epoch's metrics (empty if no epoch ran)."""
        return dict(self.history[-1]) if self.history else {}


def _images(data: Any, what: str) -> tuple[Tensor, dict[str, Any] | None]:
    """The N×C×H×W image tensor of an ``ImageData`` or a bare tensor, and its description."""
    if isinstance(data, Tensor):
        return data, {"name": "tensor", "n": int(data.shape[0]), "shape": list(data.shape[1:])}
    if isinstance(getattr(data, "images", None), Tensor):
        describe = getattr(data, "describe", None)
        return data.images, (describe() if callable(describe) else None)
    raise InfoprobeError(
        f"Expected the {what} data as an ImageData (infoprobe.load_dataset) or an N×C×H×W tensor, "
        f"got {type(data).__name__}."
    )


def _same_model(ckpt: checkpoint.Checkpoint, model: nn.Module) -> bool:
    """Whether ``ckpt`` holds this model: same registry name and config, where a config saved
    before an option existed counts as the same when rebuilding it gives the model's config."""
    name, config = getattr(model, "registry_name", None), dict(getattr(model, "config", {}))
    if ckpt.model_name != name:
        return False
    if ckpt.model_config == config:
        return True
    if name is None or set(ckpt.model_config) - set(config):
        return False
    import models

    try:
        return dict(getattr(models.build(name, **ckpt.model_config), "config", {})) == config
    except InfoprobeError:
        return False


def _take(images: Tensor, n: int | None, seed: int) -> Tensor:
    if n is None or n >= images.shape[0]:
        return images
    return images[subset_indices(images.shape[0], n, seed=seed)]


def _epoch_order(n: int, seed: int, epoch: int) -> Tensor:
    """The permutation of epoch ``epoch``: a function of (seed, epoch) alone."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))


def _global_batches(order: Tensor, batch_size: int) -> Iterator[Tensor]:
    yield from order.split(batch_size)


class _LossModule(nn.Module):
    """``forward = model.loss``, so DistributedDataParallel sees the objective as the forward."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        return self.model.loss(x)  # type: ignore[no-any-return, operator]


def kl_weight(recipe: Mapping[str, Any], global_step: int, steps_per_epoch: int) -> float:
    """β of step ``global_step`` (0-based, over all epochs): linear from 1/W to 1 over the
    W = ``kl_warmup`` epochs' steps, then 1; always 1 without a warm-up."""
    warmup_steps = float(recipe.get("kl_warmup") or 0.0) * steps_per_epoch
    return 1.0 if warmup_steps <= 0 else min(1.0, (global_step + 1) / warmup_steps)


def _objective(terms: Mapping[str, Tensor], recipe: Mapping[str, Any], global_step: int,
               steps_per_epoch: int) -> Tensor:
    """What the step minimises: ``loss``, or ``re + β·kl`` during a KL warm-up."""
    beta = kl_weight(recipe, global_step, steps_per_epoch)
    if beta == 1.0:
        return terms["loss"]
    if "re" not in terms or "kl" not in terms:
        raise InfoprobeError(f"kl_warmup needs a model whose loss reports 're' and 'kl' (the VAE family); "
                             f"this one reports {sorted(terms)}. Train it with kl_warmup=0.")
    return terms["re"] + beta * terms["kl"]


@dataclass
class _Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    created: bool = False

    @property
    def main(self) -> bool:
        return self.rank == 0


def _init_distributed(device: str | torch.device) -> tuple[_Dist, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist(), resolve_device(device)
    import torch.distributed as dist

    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device)
    if dev.type == "cuda":
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
    created = False
    if not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
        created = True
    return _Dist(rank, dist.get_world_size(), local_rank, created), dev


def _rng_state(device: torch.device) -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: Mapping[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


@torch.no_grad()
def _evaluate(model: nn.Module, images: Tensor, batch_size: int, device: torch.device, amp: bool) -> dict[str, float]:
    was_training = model.training
    model.eval()
    sums: dict[str, float] = {}
    for batch in images.split(batch_size):
        with _autocast(device, amp):
            terms = model.loss(batch.to(device, non_blocking=True))  # type: ignore[operator]
        for key, value in terms.items():
            sums[key] = sums.get(key, 0.0) + float(value.float()) * batch.shape[0]
    model.train(was_training)
    return {key: value / images.shape[0] for key, value in sums.items()}


def _autocast(device: torch.device, amp: bool) -> contextlib.AbstractContextManager[Any]:
    if amp and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.float16)
    return contextlib.nullcontext()


def _output_paths(out: str | os.PathLike[str] | None) -> tuple[Path | None, Path | None, Path | None]:
    """(folder, checkpoint, metrics) for ``out``: a folder, or a checkpoint file path ending in .pt."""
    if out is None:
        return None, None, None
    path = Path(out)
    if path.suffix == ".pt":
        return path.parent, path, path.with_suffix(".metrics.jsonl")
    return path, path / CHECKPOINT_NAME, path / METRICS_NAME


def _tensorboard(log_dir: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        return None
    return SummaryWriter(log_dir=str(log_dir))


def train(
    model: nn.Module,
    train_data: Any,
    *,
    test_data: Any = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    optimizer: str | None = None,
    betas: list[float] | None = None,
    eps: float | None = None,
    weight_decay: float | None = None,
    milestones: list[int] | None = None,
    gamma: float | None = None,
    device: str | torch.device = "auto",
    amp: bool = False,
    seed: int = 0,
    subset: int | None = None,
    test_subset: int | None = None,
    out: str | os.PathLike[str] | None = None,
    resume: bool = False,
    progress: bool = True,
    recipe: Mapping[str, Any] | None = None,
    checkpoint_every: float | None = 600.0,
) -> TrainResult:
    """Train a zoo model by its ``loss`` with its default recipe; every given option overrides it.

    Args:
        model: a zoo model (``loss(x) -> {"loss": total, ...}``, ``default_recipe()``, ``config``).
        train_data, test_data: ``ImageData`` (from ``infoprobe.load_dataset``) or N×C×H×W tensors.
        epochs … gamma: recipe overrides (``recipe=`` takes the same keys plus ``momentum``,
            ``clip_grad`` and ``kl_warmup``); None keeps the model's default. ``kl_warmup`` (epochs,
            default 0) trains a model whose loss reports ``re`` and ``kl`` (the VAE family) on
            ``re + β·kl`` with β rising linearly from 0 to 1 over that many epochs, a remedy for
            posterior collapse that none of the zoo's papers uses; the logged ``loss`` stays the
            full negative ELBO.
        device: ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda"``, ``"cuda:1"``.
        amp: mixed precision (float16 autocast + gradient scaling) on CUDA; ignored on the CPU.
        seed: seeds the data order of every epoch and torch's RNG (stochastic losses).
        subset / test_subset: train / evaluate on a seeded random subset of that many images.
        out: folder for ``checkpoint.pt`` (every epoch end and on interruption), ``metrics.jsonl``
            (one JSON line per epoch: ``train_<term>``, ``test_<term>``, ``lr``, ``images_per_second``,
            ``seconds`` (wall) and ``cpu_seconds`` (this process), both including the part of an
            epoch done before a resume, and ``resumed_at_step`` for an epoch that was resumed)
            and TensorBoard scalars in ``tensorboard/`` (when tensorboard is installed). A path
            ending in ``.pt`` is the checkpoint itself, with ``<name>.metrics.jsonl`` and
            ``<name>.tensorboard/`` beside it. None writes nothing.
        resume: continue from ``out/checkpoint.pt`` if it exists (model, optimizer, scheduler,
            scaler, RNG, epoch and step); start afresh otherwise. A resumed run keeps the
            checkpoint's recipe; options given now change it from the next step on (an lr
            schedule then gives the lr a run with it from the start would have had), recorded
            in the checkpoint's ``training["recipe_changes"]``.
        progress: show a tqdm progress bar (rank 0 only).
        checkpoint_every: seconds between mid-epoch checkpoints (at a step boundary, single
            process only), so that a kill that leaves no time to save (SIGKILL, a lost machine)
            loses at most that much of a long epoch; None saves only at epoch ends and on
            interruption.

    Returns:
        :class:`TrainResult` with the trained model (on ``device``, in train mode).
    """
    if checkpoint_every is not None and not checkpoint_every >= 0:
        raise InfoprobeError(f"Expected checkpoint_every >= 0 seconds (or None), got {checkpoint_every!r}; "
                             "pass e.g. 600, or 0 to save after every step", parameter="checkpoint_every")
    dist_info, dev = _init_distributed(device)
    try:
        result = _train(model, train_data, test_data=test_data, device=dev, dist_info=dist_info,
                      amp=amp, seed=seed, subset=subset, test_subset=test_subset, out=out,
                      resume=resume, progress=progress, checkpoint_every=checkpoint_every,
                      overrides={"epochs": epochs, "batch_size": batch_size, "lr": lr,
                                 "optimizer": optimizer, "betas": betas, "eps": eps,
                                 "weight_decay": weight_decay, "milestones": milestones,
                                 "gamma": gamma, **(recipe or {})})
        if dist_info.world > 1:
            import torch.distributed as dist

            # rank 0 still evaluates and writes the last checkpoint; a rank that tears gloo down
            # before it aborts ("terminate called without an active exception", seen in CI)
            dist.barrier()
        return result
    finally:
        if dist_info.created:
            import torch.distributed as dist

            dist.destroy_process_group()


def _train(
    model: nn.Module, train_data: Any, *, test_data: Any, device: torch.device, dist_info: _Dist,
    amp: bool, seed: int, subset: int | None, test_subset: int | None,
    out: str | os.PathLike[str] | None, resume: bool, progress: bool, overrides: dict[str, Any],
    checkpoint_every: float | None = None,
) -> TrainResult:
    recipe = resolve_recipe(model, overrides)
    if amp and device.type != "cuda":
        warnings.warn("Mixed precision (amp) needs CUDA; training in float32 on the CPU.", stacklevel=3)
        amp = False
    images, train_desc = _images(train_data, "training")
    images = _take(images, subset, seed)
    if train_desc is not None:
        train_desc = {**train_desc, "n": int(images.shape[0])}
    test_images = None
    test_desc = None
    if test_data is not None:
        test_images, test_desc = _images(test_data, "test")
        test_images = _take(test_images, test_subset, seed)
        if test_desc is not None:
            test_desc = {**test_desc, "n": int(test_images.shape[0])}
    expected = tuple(getattr(model, "input_shape", images.shape[1:]))
    if tuple(images.shape[1:]) != expected:
        raise InfoprobeError(
            f"Expected training images of shape {expected} for this model "
            f"({getattr(model, 'config', {}).get('dataset', '?')} configuration), got "
            f"{tuple(images.shape[1:])}; build the model with the matching dataset=."
        )
    if images.shape[0] == 0:
        raise InfoprobeError("The training data are empty.")

    out_dir, ckpt_path, metrics_path = _output_paths(out)
    model.to(device).train()
    torch.manual_seed(seed + dist_info.rank)
    ckpt = None
    changed: dict[str, list[Any]] = {}
    recipe_changes: list[dict[str, Any]] = []
    if resume and ckpt_path is not None and ckpt_path.is_file():
        ckpt = checkpoint.load(ckpt_path)
        name = getattr(model, "registry_name", None)
        if not _same_model(ckpt, model):
            raise InfoprobeError(
                f"Cannot resume from {ckpt_path}: it holds {ckpt.model_name!r} {ckpt.model_config}, "
                f"but the model to train is {name!r} {getattr(model, 'config', {})}. Use another --out."
            )
        if ckpt.state is None:
            raise InfoprobeError(f"Cannot resume from {ckpt_path}: it has no training state (not written by train).")
        # A resumed run keeps the checkpoint's recipe: only the options given now change it.
        recipe, changed = resumed_recipe(model, ckpt.training.get("recipe") or {}, overrides,
                                          epoch=int(ckpt.state["epoch"]), step=int(ckpt.state["step"]))
        recipe_changes = list(ckpt.training.get("recipe_changes", []))
        if changed:
            recipe_changes.append({"epoch": int(ckpt.state["epoch"]), "step": int(ckpt.state["step"]),
                                   "changed": changed})
    opt = make_optimizer(model.parameters(), recipe)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=recipe["milestones"], gamma=float(recipe["gamma"]))
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    start_epoch, start_step = 0, 0
    partial: dict[str, float] = {}
    history: list[dict[str, Any]] = []
    if ckpt is not None and ckpt.state is not None:
        model.load_state_dict(ckpt.state_dict)
        opt.load_state_dict(ckpt.state["optimizer"])
        sched.load_state_dict(ckpt.state["scheduler"])
        if changed:
            apply_recipe(opt, sched, recipe, changed)
        scaler.load_state_dict(ckpt.state["scaler"])
        start_epoch, start_step = int(ckpt.state["epoch"]), int(ckpt.state["step"])
        partial = dict(ckpt.state["partial"])
        history = list(ckpt.metrics.get("history", []))
        _set_rng_state(ckpt.state["rng"][min(dist_info.rank, len(ckpt.state["rng"]) - 1)], device)
    elif dist_info.main and out_dir is not None and metrics_path is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        metrics_path.write_text("")

    step_module: nn.Module = _LossModule(model)
    if dist_info.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        step_module = DistributedDataParallel(
            step_module, device_ids=[device.index] if device.type == "cuda" else None
        )
    writer = None
    if dist_info.main and metrics_path is not None:
        writer = _tensorboard(metrics_path.with_name(metrics_path.name.replace("metrics.jsonl", "tensorboard")))
    bs, world, n = recipe["batch_size"], dist_info.world, images.shape[0]
    n_batches = math.ceil(n / bs)
    position = {"epoch": start_epoch, "step": start_step}
    # An interruption before the optimizer step of a batch changes nothing but the RNG, restored from
    # its snapshot; one during or after it (until the step is counted) leaves a half-updated state.
    mutating = False
    step_rng: dict[str, Any] | None = None
    rates: list[float] = []
    last_save = time.perf_counter()
    # Time spent in the current epoch, carried through resumes: wall clock (includes waiting for a
    # busy CPU) and this process's CPU time (what the training itself cost on a loaded machine).
    carried = {"seconds": float(partial.pop("_seconds", 0.0)), "cpu_seconds": float(partial.pop("_cpu_seconds", 0.0))}
    clock: dict[str, float] | None = None

    def epoch_time() -> dict[str, float]:
        if clock is None:
            return {"seconds": 0.0, "cpu_seconds": 0.0}
        return {"seconds": carried["seconds"] + time.perf_counter() - clock["wall"],
                "cpu_seconds": carried["cpu_seconds"] + time.process_time() - clock["cpu"]}

    def save(final: bool, rng_now: dict[str, Any] | None = None) -> None:
        """Write the checkpoint (rank 0); every rank must call it, as it gathers their RNG states."""
        if ckpt_path is None:
            return
        rng = [rng_now if rng_now is not None else _rng_state(device)]
        if world > 1:
            import torch.distributed as dist

            gathered: list[Any] = [None] * world
            dist.all_gather_object(gathered, {k: v.cpu() for k, v in rng[0].items()})
            rng = gathered
        if not dist_info.main:
            return
        training = {
            "recipe": recipe, "seed": seed, "device": str(device), "amp": amp, "world_size": world,
            "epochs_done": position["epoch"], "step_in_epoch": position["step"],
            "images_per_second": (sum(rates) / len(rates)) if rates else None, "finished": final,
            **({"recipe_changes": recipe_changes} if recipe_changes else {}),
        }
        state = {"optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                 "scaler": scaler.state_dict(), "epoch": position["epoch"],
                 "step": position["step"], "rng": rng,
                 "partial": {**partial, **{f"_{k}": v for k, v in epoch_time().items()}}}
        metrics = {**(history[-1] if history else {}), "history": history}
        checkpoint.save(ckpt_path, model, dataset=train_desc,
                        training={**training, "test_dataset": test_desc}, metrics=metrics, state=state)

    try:
        from tqdm.auto import tqdm

        for epoch in range(start_epoch, recipe["epochs"]):
            order = _epoch_order(n, seed, epoch)
            first = position["step"] if epoch == start_epoch else 0
            if first == 0:
                partial = {}
                carried = {"seconds": 0.0, "cpu_seconds": 0.0}
            clock = {"wall": time.perf_counter(), "cpu": time.process_time()}
            bar = tqdm(total=n_batches, initial=first, desc=f"epoch {epoch + 1}/{recipe['epochs']}",
                       disable=not (progress and dist_info.main), leave=False, unit="batch")
            t0, seen = time.perf_counter(), 0
            for step, batch_idx in enumerate(_global_batches(order, bs)):
                if step < first:
                    continue
                share = batch_idx[dist_info.rank::world]
                if share.numel() == 0:  # fewer images left than ranks: every rank skips the batch
                    position["step"] = step + 1
                    continue
                step_rng = _rng_state(device)
                x = images[share].to(device, non_blocking=True)
                with _autocast(device, amp):
                    terms = step_module(x)
                weight = share.numel() / batch_idx.numel() * world
                opt.zero_grad(set_to_none=True)
                scaler.scale(_objective(terms, recipe, epoch * n_batches + step, n_batches) * weight).backward()
                if recipe["clip_grad"]:
                    scaler.unscale_(opt)
                    nn.utils.clip_grad_norm_(model.parameters(), float(recipe["clip_grad"]))
                with interrupts_deferred():
                    mutating = True
                    scaler.step(opt)
                    scaler.update()
                    for key, value in terms.items():
                        partial[key] = partial.get(key, 0.0) + float(value.detach().float()) * share.numel()
                    partial["_n"] = partial.get("_n", 0.0) + share.numel()
                    seen += batch_idx.numel()
                    position["step"] = step + 1
                    mutating, step_rng = False, None
                if (checkpoint_every is not None and world == 1
                        and time.perf_counter() - last_save >= checkpoint_every):
                    save(final=False)  # between steps: the RNG now is the next step's
                    last_save = time.perf_counter()
                rate = seen / max(time.perf_counter() - t0, 1e-9)
                loss_now = float(terms["loss"].detach())
                bar.set_postfix(loss=f"{loss_now:.4g}", img_s=f"{rate:.0f}", refresh=False)
                bar.update()
            bar.close()
            elapsed = time.perf_counter() - t0
            spent = epoch_time()
            clock = None
            if seen:
                rates.append(seen / elapsed)
            sums = dict(partial)
            if world > 1:
                import torch.distributed as dist

                keys = sorted(sums)
                totals = torch.tensor([sums[k] for k in keys], dtype=torch.float64, device=device)
                dist.all_reduce(totals)
                sums = dict(zip(keys, totals.tolist(), strict=True))
            count = max(sums.pop("_n", 0.0), 1.0)
            row: dict[str, Any] = {"epoch": epoch + 1}
            row.update({f"train_{k}": v / count for k, v in sums.items()})
            if test_images is not None and dist_info.main:
                row.update({f"test_{k}": v for k, v in _evaluate(model, test_images, bs, device, amp).items()})
            row["lr"] = opt.param_groups[0]["lr"]
            row["images_per_second"] = seen / elapsed if seen else None
            row["seconds"] = spent["seconds"]
            row["cpu_seconds"] = spent["cpu_seconds"]
            if first:
                row["resumed_at_step"] = first
            if not math.isfinite(row.get("train_loss", 0.0)):
                raise InfoprobeError(
                    f"The training loss is {row['train_loss']} after epoch {epoch + 1}; lower the "
                    "learning rate (--lr) or enable gradient clipping (recipe clip_grad)."
                )
            sched.step()
            history.append(row)
            position.update(epoch=epoch + 1, step=0)
            partial = {}
            if dist_info.main and metrics_path is not None:
                with metrics_path.open("a") as fh:
                    fh.write(json.dumps(row) + "\n")
                if writer is not None:
                    for key, value in row.items():
                        if key != "epoch" and isinstance(value, int | float):
                            writer.add_scalar(key, value, epoch + 1)
            save(final=epoch + 1 == recipe["epochs"])
    except BaseException:
        # An interruption (Ctrl-C, a crash) keeps every finished step, unless it hit an optimizer
        # update (half-updated state) or a distributed run (the other ranks may be gone).
        if world == 1 and not mutating:
            save(final=False, rng_now=step_rng)
        raise
    finally:
        if writer is not None:
            writer.close()
    if position["epoch"] == start_epoch and start_epoch >= recipe["epochs"]:
        save(final=True)  # nothing left to do: refresh the checkpoint's metadata
    return TrainResult(
        model=model, recipe=recipe, history=history, epochs_done=position["epoch"],
        images_per_second=(sum(rates) / len(rates)) if rates else float("nan"),
        device=str(device), checkpoint=ckpt_path if dist_info.main else None,
    )
