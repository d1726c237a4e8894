"""Training recipes: the defaults every zoo model starts from, and how a resumed run changes them.

A recipe is a plain dict (optimizer, lr, betas, eps, weight decay, momentum, lr milestones and
gamma, epochs, batch size, gradient clipping, KL warm-up). :func:`resolve_recipe` fills it from the model's
``default_recipe()`` and the options given; a resumed run starts from the recipe stored in its
checkpoint, and an option given on resume applies from the next step on (:func:`resumed_recipe`,
:func:`apply_recipe`), or is refused with a message where it cannot.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from infoprobe.errors import InfoprobeError

__all__ = ["OPTIMIZERS", "RECIPE_KEYS", "apply_recipe", "make_optimizer", "resolve_recipe", "resumed_recipe"]

OPTIMIZERS = ("adam", "adamax", "sgd")
RECIPE_KEYS = ("optimizer", "lr", "betas", "eps", "weight_decay", "momentum", "milestones",
               "gamma", "epochs", "batch_size", "clip_grad", "kl_warmup")


def resolve_recipe(model: nn.Module, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The model's ``default_recipe()`` with every non-None entry of ``overrides`` applied."""
    default_recipe = getattr(model, "default_recipe", None)
    base = default_recipe() if callable(default_recipe) else {}
    recipe = {"optimizer": "adam", "lr": 1e-3, "betas": [0.9, 0.999], "eps": 1e-8,
              "weight_decay": 0.0, "momentum": 0.0, "milestones": [], "gamma": 0.1,
              "epochs": 10, "batch_size": 128, "clip_grad": None, "kl_warmup": 0, **base}
    for key, value in (overrides or {}).items():
        if key not in RECIPE_KEYS:
            raise InfoprobeError(f"Unknown training option {key!r}; expected one of {', '.join(RECIPE_KEYS)}.")
        if value is not None:
            recipe[key] = value
    recipe["betas"] = [float(b) for b in recipe["betas"]]
    recipe["milestones"] = sorted(int(m) for m in recipe["milestones"])
    recipe["epochs"], recipe["batch_size"] = int(recipe["epochs"]), int(recipe["batch_size"])
    if recipe["optimizer"] not in OPTIMIZERS:
        raise InfoprobeError(f"Unknown optimizer {recipe['optimizer']!r}; expected one of {', '.join(OPTIMIZERS)}.")
    recipe["kl_warmup"] = float(recipe["kl_warmup"])
    if recipe["kl_warmup"] < 0:
        raise InfoprobeError(f"Expected kl_warmup >= 0 epochs (0: the full KL from the first step), "
                             f"got {recipe['kl_warmup']}.")
    if recipe["epochs"] < 0 or recipe["batch_size"] < 1 or float(recipe["lr"]) <= 0:
        raise InfoprobeError(
            f"Expected epochs >= 0, batch size >= 1 and lr > 0, got epochs={recipe['epochs']}, "
            f"batch size={recipe['batch_size']}, lr={recipe['lr']}."
        )
    return recipe


def make_optimizer(params: Any, recipe: dict[str, Any]) -> torch.optim.Optimizer:
    lr, wd = float(recipe["lr"]), float(recipe["weight_decay"])
    if recipe["optimizer"] == "adam":
        return torch.optim.Adam(params, lr=lr, betas=tuple(recipe["betas"]), eps=float(recipe["eps"]), weight_decay=wd)
    if recipe["optimizer"] == "adamax":
        return torch.optim.Adamax(params, lr=lr, betas=tuple(recipe["betas"]), eps=float(recipe["eps"]), weight_decay=wd)
    return torch.optim.SGD(params, lr=lr, momentum=float(recipe["momentum"]), weight_decay=wd)


#: recipe keys each optimizer reads (a change of another one would do nothing)
_OPTIMIZER_KEYS = {"adam": ("betas", "eps"), "adamax": ("betas", "eps"), "sgd": ("momentum",)}


def resumed_recipe(model: nn.Module, previous: Mapping[str, Any], overrides: Mapping[str, Any],
                    *, epoch: int, step: int) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """The recipe of a resumed run: the checkpoint's, with the options given now applied on top.

    Returns it and what the given options change, ``{key: [before, after]}`` (``epochs`` is not a
    change: extending a run is what resuming is for; asking for fewer than the run has done leaves
    it at the epochs done). A change applies from the next step on, so
    what cannot apply from there is refused: another optimizer, another batch size in the middle
    of an epoch (the remaining steps are counted in batches), a milestone added or removed at an
    epoch already begun, and any change to a run with no epoch left to train.
    """
    before = resolve_recipe(model, {k: v for k, v in previous.items() if k in RECIPE_KEYS})
    recipe = resolve_recipe(model, {**before, **{k: v for k, v in overrides.items() if v is not None}})
    # fewer epochs than the run has done trains nothing, and the recipe keeps saying what was done
    recipe["epochs"] = max(recipe["epochs"], epoch)
    ignored = {"momentum", "betas", "eps"} - set(_OPTIMIZER_KEYS.get(recipe["optimizer"], ()))
    changed = {k: [before[k], recipe[k]] for k in RECIPE_KEYS
               if k != "epochs" and k not in ignored and before[k] != recipe[k]}
    if "optimizer" in changed:
        raise InfoprobeError(
            f"Cannot resume a run trained with {before['optimizer']!r} with optimizer {recipe['optimizer']!r}; "
            "start a new run (another --out)."
        )
    if changed and epoch >= recipe["epochs"]:
        raise InfoprobeError(
            f"The run has done all its {recipe['epochs']} epochs, so {', '.join(sorted(changed))} cannot apply to "
            f"anything; to continue it with them, give more epochs (e.g. --epochs {epoch + 1})."
        )
    if "batch_size" in changed and step:
        raise InfoprobeError(
            f"Cannot change the batch size from {before['batch_size']} to {recipe['batch_size']} in the middle "
            f"of an epoch (checkpoint at step {step}); resume with the old batch size until the epoch ends."
        )
    # a milestone m lowers the lr from epoch m + 1 on: it may change only if that epoch has not begun
    begun = epoch + (1 if step else 0)
    moved = sorted(set(before["milestones"]) ^ set(recipe["milestones"]))
    if [m for m in moved if m < begun]:
        raise InfoprobeError(
            f"Cannot add or remove lr milestone(s) {[m for m in moved if m < begun]}: the run is at epoch {epoch} "
            f"(step {step}), past them. A milestone given on resume must be at least {begun}."
        )
    return recipe, changed


def apply_recipe(opt: torch.optim.Optimizer, sched: torch.optim.lr_scheduler.MultiStepLR,
                  recipe: Mapping[str, Any], changed: Mapping[str, Any]) -> None:
    """Make restored optimizer and scheduler states follow the ``changed`` entries of ``recipe``.

    With a new lr, gamma or milestones the lr of the next step is computed as MultiStepLR does,
    one passed milestone at a time, so that it equals, bit for bit, the lr of a run that had this
    schedule from the start; entries that did not change keep their restored values.
    """
    from collections import Counter

    if {"lr", "gamma", "milestones"} & set(changed):
        if "milestones" in changed:
            sched.milestones = Counter(recipe["milestones"])
        if "gamma" in changed:
            sched.gamma = float(recipe["gamma"])
        if "lr" in changed:
            sched.base_lrs = [float(recipe["lr"])] * len(opt.param_groups)
        for group, base in zip(opt.param_groups, sched.base_lrs, strict=True):
            lr = float(base)
            for milestone in sorted(sched.milestones):
                if milestone <= sched.last_epoch:
                    lr = lr * sched.gamma ** sched.milestones[milestone]
            group["initial_lr"], group["lr"] = float(base), lr
        sched._last_lr = [group["lr"] for group in opt.param_groups]  # what get_last_lr() reports
    for key, cast in (("weight_decay", float), ("eps", float), ("momentum", float), ("betas", tuple)):
        if key in changed:
            for group in opt.param_groups:
                group[key] = cast(recipe[key])
