"""``infoprobe embed CHECKPOINT``: the UMAP of the bottleneck codes alone (PIE paper's
manifold figure), without the entropy analysis."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

HELP = "UMAP of a model's bottleneck codes, coloured by class (no entropy analysis)"


def configure(parser: argparse.ArgumentParser) -> None:
    from infoprobe.commands.analyze import add_model_data_options

    parser.add_argument("checkpoint", help="checkpoint (.pt) or state_dict (with --model)")
    add_model_data_options(parser)
    parser.add_argument("--layer", help="module whose output to embed (default: model.encode(x))")
    parser.add_argument("--max-points", type=int, default=5000, metavar="N",
                        help="embed a seeded subsample of at most N codes (default: %(default)s)")
    parser.add_argument("--out", type=Path, help="output folder (default: <checkpoint>_embedding)")


def codes(model: Any, x: Any, *, layer: str | None, device: Any, batch_size: int) -> Any:
    """Bottleneck codes (n, d) as a float32 array: ``model.encode`` or the output of ``layer``."""
    import numpy as np
    import torch

    from infoprobe.errors import InfoprobeError

    if layer is None and not hasattr(model, "encode"):
        raise InfoprobeError(f"{type(model).__name__} has no encode(); pass --layer MODULE_NAME.")
    if layer is not None and layer not in dict(model.named_modules()):
        raise InfoprobeError(f"Layer {layer!r} is not a module of {type(model).__name__}; see 'infoprobe inspect'.")
    model = model.to(device).eval()
    chunks = []
    with torch.no_grad():
        if layer is None:
            for start in range(0, x.shape[0], batch_size):
                out = model.encode(x[start : start + batch_size].to(device))
                out = out[0] if isinstance(out, tuple | list) else out
                chunks.append(out.reshape(out.shape[0], -1).float().cpu().numpy())
            return np.concatenate(chunks)
        from infoprobe.recording import record

        run = model.reconstruct if hasattr(model, "reconstruct") else model
        with record(model, include=[layer]) as rec:
            for start in range(0, x.shape[0], batch_size):
                run(x[start : start + batch_size].to(device))
        first = rec.layers[0].label
        return rec[first].reshape(x.shape[0], -1).float().cpu().numpy()


def run(args: argparse.Namespace) -> int:
    from infoprobe.commands.analyze import load_data, load_model
    from infoprobe.device import resolve_device
    from infoprobe.embedding import umap_embedding
    from infoprobe.layers import prepare_inputs
    from infoprobe.plotting import plot_umap
    from infoprobe.results import AnalysisResult, GlobalEstimates

    ckpt, model = load_model(args.checkpoint, model_spec=args.model)
    data = load_data(ckpt, args)
    x, y, info = prepare_inputs(data, None, args.samples, args.seed)
    z = codes(model, x, layer=args.layer, device=resolve_device(args.device), batch_size=args.batch_size)
    emb = umap_embedding(z, y, max_samples=args.max_points, seed=args.seed, progress=True)
    emb["layer"] = args.layer or "encode(x)"
    out = args.out or Path(args.checkpoint).with_name(Path(args.checkpoint).stem + "_embedding")
    out.mkdir(parents=True, exist_ok=True)
    (out / "embedding.json").write_text(json.dumps({
        "checkpoint": str(Path(args.checkpoint).resolve()), "model": ckpt.model_name,
        "dataset": info, "embedding": emb}) + "\n")
    view = AnalysisResult(model={"name": ckpt.model_name}, dataset=info, settings={}, layers=[],
                          globals=GlobalEstimates(), embedding=emb)
    plot_umap(view, out / "umap.png")
    print(f"wrote umap.png and embedding.json in {out} ({len(emb['coords'])} codes, {emb['seconds']:.1f} s)")
    return 0
