"""The layer recorder: selection, labels, FrEIA forward + inverse, copy semantics, streaming."""

from __future__ import annotations

from typing import Any

import FrEIA.framework as Ff
import FrEIA.modules as Fm
import pytest
import torch
from torch import Tensor, nn

import infoprobe
from infoprobe.errors import InfoprobeError
from infoprobe.recording import INPUT_LABEL, LayerInfo, default_layers, record


def _close(a: Tensor, b: Tensor) -> None:
    """Equal up to float32 round-off (batched matmuls may differ in the last bits)."""
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def _hook_count(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


class Nested(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 2))
        self.dec = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Sequential(nn.Linear(4, 6)))

    def forward(self, x: Tensor) -> Tensor:
        return self.dec(self.enc(x))


class Twice(nn.Module):
    """``shared`` is called twice per pass."""

    def __init__(self) -> None:
        super().__init__()
        self.first = nn.Linear(3, 3)
        self.shared = nn.Linear(3, 3)
        self.act = nn.Tanh()
        self.last = nn.Linear(3, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.last(self.shared(self.act(self.shared(self.first(x)))))


# -- order, labels, values -------------------------------------------------------------------------


def test_sequential_order_labels_and_values() -> None:
    model = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3))
    x = torch.randn(7, 5)
    with infoprobe.record(model) as rec:
        y = model(x)
    assert rec.labels == ["0", "1", "2"]
    assert [i.module_type for i in rec.layers] == ["Linear", "ReLU", "Linear"]
    assert rec.layers[0] == LayerInfo("0", "forward", 0, "Linear", (4,), "0")
    h = model[0](x)
    torch.testing.assert_close(rec["0"], h, rtol=0, atol=0)
    torch.testing.assert_close(rec["1"], h.relu(), rtol=0, atol=0)
    torch.testing.assert_close(rec.output, y.detach(), rtol=0, atol=0)
    torch.testing.assert_close(rec.input, x, rtol=0, atol=0)
    assert rec.n_samples == 7
    assert not rec["0"].requires_grad


def test_nested_modules_and_batches_accumulate() -> None:
    model = Nested()
    xs = [torch.randn(n, 6) for n in (5, 1, 9)]
    with torch.no_grad(), record(model) as rec:
        for x in xs:
            model(x)
    assert rec.labels == ["enc.0", "enc.1", "enc.2", "dec.0", "dec.1", "dec.2.0"]
    x = torch.cat(xs)
    with torch.no_grad():
        code = model.enc(x)
        _close(rec["enc.2"], code)
        _close(rec.get("dec.1"), torch.tanh(model.dec[0](code)))
        _close(rec.output, model(x))
    assert torch.equal(rec.input, x)
    assert rec.n_samples == 15 and rec.rows("dec.2.0") == 15
    assert [i.feature_shape for i in rec.layers] == [(4,), (4,), (2,), (4,), (4,), (6,)]


def test_default_layers_skip_containers_and_coupling_subnets() -> None:
    model = _ae(_tiny_inn())
    names = [n for n, _ in default_layers(model)]
    assert names == ["inn.module_list.0", "inn.module_list.1", "inn.module_list.2",
                     "inn.module_list.3", "inn.module_list.4", "bottleneck"]


def test_module_called_twice() -> None:
    model = Twice()
    xs = [torch.randn(4, 3), torch.randn(2, 3)]
    with torch.no_grad(), record(model) as rec:
        for x in xs:
            model(x)
    assert rec.labels == ["first", "shared", "act", "shared#2", "last"]
    assert [i.call for i in rec.layers] == [0, 0, 0, 1, 0]
    x = torch.cat(xs)
    with torch.no_grad():
        once = model.shared(model.first(x))
        twice = model.shared(torch.tanh(once))
    _close(rec["shared"], once)
    _close(rec.get("shared", call=1), twice)
    assert rec.rows("shared#2") == 6


def test_manual_passes_when_first_layer_is_called_twice() -> None:
    lin = nn.Linear(3, 3)
    model = nn.Sequential(lin, nn.Tanh(), lin)  # the first layer is also the last
    xs = [torch.randn(4, 3), torch.randn(2, 3)]
    with torch.no_grad(), record(model) as rec:
        for x in xs:
            rec.new_pass()
            model(x)
    assert rec.labels == ["0", "1", "0#2"]
    x = torch.cat(xs)
    with torch.no_grad():
        _close(rec["0#2"], model(x))
    assert torch.equal(rec.input, x)


# -- FrEIA: forward and inverse --------------------------------------------------------------------


def _conv(c_in: int, c_out: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(c_in, 8, 3, padding=1), nn.LeakyReLU(0.1),
                         nn.Conv2d(8, c_out, 1))


def _fc(c_in: int, c_out: int) -> nn.Module:
    return nn.Sequential(nn.Linear(c_in, 16), nn.ReLU(), nn.Linear(16, c_out))


def _tiny_inn() -> Ff.GraphINN:
    """Haar (1×4×4 → 4×2×2) → GLOW → Flatten → RealNVP (16) → Reshape (4×2×2)."""
    nodes: list[Any] = [Ff.InputNode(1, 4, 4, name="input")]
    nodes.append(Ff.Node(nodes[-1], Fm.HaarDownsampling, {}, name="haar"))
    nodes.append(Ff.Node(nodes[-1], Fm.GLOWCouplingBlock,
                         {"subnet_constructor": _conv, "clamp": 1.0}, name="glow"))
    nodes.append(Ff.Node(nodes[-1], Fm.Flatten, {}, name="flatten"))
    nodes.append(Ff.Node(nodes[-1], Fm.RNVPCouplingBlock,
                         {"subnet_constructor": _fc, "clamp": 1.0}, name="fc"))
    nodes.append(Ff.Node(nodes[-1], Fm.Reshape, {"output_dims": (4, 2, 2)}, name="reshape"))
    nodes.append(Ff.OutputNode(nodes[-1], name="output"))
    inn = Ff.GraphINN(nodes)
    with torch.no_grad():  # non-trivial couplings (FrEIA-style init would start as identity)
        for p in inn.parameters():
            if p.requires_grad:  # not the fixed Haar weights
                p.normal_(0, 0.3)
    return inn


class ZeroPad(nn.Module):
    """Bottleneck: keep the first k of the flattened code, zero the rest (the INN-AE recipe)."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.k = k

    def forward(self, z: Tensor) -> Tensor:
        flat = z.flatten(1)
        return torch.cat([flat[:, :self.k], torch.zeros_like(flat[:, self.k:])], 1).view_as(z)


class INNAE(nn.Module):
    def __init__(self, inn: Ff.GraphINN, k: int = 5) -> None:
        super().__init__()
        self.inn = inn
        self.bottleneck = ZeroPad(k)

    def reconstruct(self, x: Tensor) -> Tensor:
        z, _ = self.inn(x)
        x_hat, _ = self.inn(self.bottleneck(z), rev=True)
        return x_hat


def _ae(inn: Ff.GraphINN) -> INNAE:
    return INNAE(inn)


def _manual(model: INNAE, x: Tensor) -> dict[str, Tensor]:
    """Call the node modules one by one, cloning every output before the next module runs."""
    mods = list(model.inn.module_list)
    names = [f"inn.module_list.{i}" for i in range(len(mods))]
    out: dict[str, Tensor] = {}
    h = x.clone()
    for name, mod in zip(names, mods, strict=True):
        (h,), _ = mod((h,), rev=False)
        out[name] = h.clone()
    h = model.bottleneck(h)
    out["bottleneck"] = h.clone()
    for name, mod in zip(reversed(names), reversed(mods), strict=True):
        (h,), _ = mod((h,), rev=True)
        out[f"{name}:inverse"] = h.clone()
    return out


def test_freia_graph_forward_and_inverse_sequence() -> None:
    model = _ae(_tiny_inn())
    batches = [torch.rand(6, 1, 4, 4), torch.rand(3, 1, 4, 4)]
    with torch.no_grad(), record(model) as rec:
        results = [model.reconstruct(x) for x in batches]
    blocks = [f"inn.module_list.{i}" for i in range(5)]
    assert rec.labels == [*blocks, "bottleneck", *[f"{b}:inverse" for b in reversed(blocks)]]
    assert [i.module_type for i in rec.layers] == [
        "HaarDownsampling", "GLOWCouplingBlock", "Flatten", "RNVPCouplingBlock", "Reshape",
        "ZeroPad", "Reshape", "RNVPCouplingBlock", "Flatten", "GLOWCouplingBlock",
        "HaarDownsampling"]
    assert [i.direction for i in rec.layers] == ["forward"] * 6 + ["inverse"] * 5
    assert rec.layers[2].feature_shape == (16,) and rec.layers[-1].feature_shape == (1, 4, 4)
    assert rec.get("inn.module_list.1", direction="inverse").shape == (9, 4, 2, 2)

    x = torch.cat(batches)
    with torch.no_grad():
        expected = _manual(model, x)
    for label in rec.labels:
        torch.testing.assert_close(rec[label], expected[label], rtol=1e-5, atol=1e-6, msg=label)
    torch.testing.assert_close(rec.input, x, rtol=0, atol=0)
    torch.testing.assert_close(rec.output, torch.cat(results), rtol=0, atol=0)
    # independent check of the chain: without a bottleneck the INN is the identity
    with torch.no_grad():
        z = rec["inn.module_list.4"]
        x_back, _ = model.inn(z, rev=True)
    torch.testing.assert_close(x_back, x, rtol=1e-4, atol=1e-5)
    assert _hook_count(model) == 0


def test_haar_inverse_in_place_scaling_does_not_change_the_record() -> None:
    # FrEIA's HaarDownsampling inverse multiplies its input in place: the input of the Haar
    # inverse is the GLOW inverse's output tensor, which a reference-keeping recorder would
    # silently report scaled by 0.5.
    model = _ae(_tiny_inn())
    x = torch.rand(4, 1, 4, 4)
    seen: list[Tensor] = []
    glow = model.inn.module_list[1]
    handle = glow.register_forward_hook(
        lambda m, a, k, out: seen.append(out[0][0]) if k.get("rev") else None, with_kwargs=True)
    with torch.no_grad(), record(model) as rec:
        model.reconstruct(x)
    handle.remove()
    kept_reference = seen[0]
    with torch.no_grad():
        true_value = _manual(model, x)["inn.module_list.1:inverse"]
    recorded = rec["inn.module_list.1:inverse"]
    torch.testing.assert_close(recorded, true_value, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(kept_reference, 0.5 * true_value, rtol=1e-5, atol=1e-6)


def test_in_place_activation_after_a_layer() -> None:
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(inplace=True))
    x = torch.randn(32, 4)
    with torch.no_grad(), record(model) as rec:
        model(x)
    with torch.no_grad():
        pre = model[0](x)
    assert (rec["0"] < 0).any()
    assert torch.equal(rec["0"], pre)
    assert torch.equal(rec["1"], pre.relu())


def test_sequence_inn_and_directions_filter() -> None:
    inn = Ff.SequenceINN(2, 4, 4)
    inn.append(Fm.HaarDownsampling)
    inn.append(Fm.AllInOneBlock, subnet_constructor=_conv)
    x = torch.rand(3, 2, 4, 4)
    with torch.no_grad(), record(inn, directions="inverse") as rec:
        z, _ = inn(x)
        inn(z.clone(), rev=True)
    assert rec.labels == ["module_list.1:inverse", "module_list.0:inverse"]
    torch.testing.assert_close(rec.input, z, rtol=0, atol=0)
    torch.testing.assert_close(rec.output, x, rtol=1e-4, atol=1e-5)
    with pytest.raises(InfoprobeError, match="directions"):
        record(inn, directions="sideways")


def test_log_jacobian_never_recorded() -> None:
    inn = _tiny_inn()
    with torch.no_grad(), record(inn, include="*") as rec:
        inn(torch.rand(2, 1, 4, 4))
    # the whole GraphINN is recorded too (include="*"), as its output only
    assert rec.labels[-1] == "<root>"
    assert all(info.feature_shape != () for info in rec.layers)
    assert rec["<root>"].shape == (2, 4, 2, 2)


# -- selection ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("include", "exclude", "expected"),
    [
        ("enc.0", None, ["enc.0"]),
        (["enc.0", "dec.1"], None, ["enc.0", "dec.1"]),
        ("enc.*", None, ["enc.0", "enc.1", "enc.2"]),
        (nn.Linear, None, ["enc.0", "enc.2", "dec.0", "dec.2.0"]),
        (lambda name, m: isinstance(m, nn.Linear) and m.out_features == 4, None,
         ["enc.0", "dec.0"]),
        ("enc", None, ["enc"]),  # a container, explicitly
        (None, "dec.*", ["enc.0", "enc.1", "enc.2"]),
        (None, nn.Linear, ["enc.1", "dec.1"]),
        (None, lambda name, m: name.startswith("enc"), ["dec.0", "dec.1", "dec.2.0"]),
        (nn.Linear, "dec*", ["enc.0", "enc.2"]),
    ],
)
def test_include_exclude(include: Any, exclude: Any, expected: list[str]) -> None:
    model = Nested()
    with torch.no_grad(), record(model, include=include, exclude=exclude) as rec:
        model(torch.randn(3, 6))
    assert rec.labels == expected


def test_selection_errors() -> None:
    model = Nested()
    with pytest.raises(InfoprobeError, match="include='encoder' to name a module"):
        record(model, include="encoder")
    with pytest.raises(InfoprobeError, match="at least one module"):
        record(model, include="nothing*")
    with pytest.raises(InfoprobeError, match="predicates"):
        record(model, include=[3])


# -- robustness ------------------------------------------------------------------------------------


def test_hooks_removed_after_exception_in_body() -> None:
    model = Nested()
    x = torch.randn(2, 6)
    with pytest.raises(RuntimeError, match="boom"), record(model) as rec:
        model(x)
        assert _hook_count(model) > 0
        raise RuntimeError("boom")
    assert _hook_count(model) == 0
    assert rec.rows("enc.0") == 2  # what was recorded before stays readable
    model(x)
    assert rec.rows("enc.0") == 2


def test_hooks_removed_after_exception_inside_a_hook() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Identity())
    with pytest.raises(InfoprobeError, match="keep its shape"), record(model):
        model(torch.randn(2, 3))
        model(torch.randn(2, 4))
    assert _hook_count(model) == 0


def test_train_mode_inference_mode_and_grad() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))
    model.train()
    x = torch.randn(10, 4)
    with record(model) as rec:
        y = model(x)
    assert torch.equal(rec["1"], y.detach())  # the dropout mask actually used
    y.sum().backward()  # the model's graph is untouched
    model.eval()
    with torch.inference_mode(), record(model) as rec2:
        model(x)
    w = torch.ones(4, requires_grad=True)
    (rec2["1"] * w).sum().backward()  # recorded tensors are normal tensors
    assert not rec2["1"].is_inference()


def test_structured_outputs_nan_and_distributions() -> None:
    class Posterior(nn.Module):
        def forward(self, x: Tensor) -> torch.distributions.Distribution:
            return torch.distributions.Normal(x, x.exp())

    class Pair(nn.Module):
        def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
            return x[:, :2], x[:, 2:] / 0.0

    class Named(nn.Module):
        def forward(self, x: Tensor) -> dict[str, Any]:
            return {"mu": x, "note": "text", "scale": torch.tensor(1.0)}

    class Model(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.pair, self.post, self.named = Pair(), Posterior(), Named()

        def forward(self, x: Tensor) -> Any:
            a, b = self.pair(x)
            return self.post(a), self.named(b)

    x = torch.randn(5, 3)
    model = Model()
    with torch.no_grad(), record(model) as rec:
        model(x)
    assert rec.labels == ["pair[0]", "pair[1]", "post[mean]", "post[stddev]", "named"]
    assert torch.equal(rec.get("pair", part="1").isinf(), (x[:, 2:] / 0.0).isinf())
    torch.testing.assert_close(rec["post[stddev]"], x[:, :2].exp())
    assert torch.equal(rec["named"], rec["pair[1]"])  # the dict's only batch tensor
    assert isinstance(rec.output, Tensor)


# -- options ---------------------------------------------------------------------------------------


def test_max_samples_dtype_and_spill(tmp_path) -> None:
    model = Nested()
    x = torch.randn(40, 6)
    with torch.no_grad(), record(model, max_samples=25, dtype=torch.float16, memory_budget=0,
                                 spill_dir=tmp_path) as rec:
        for chunk in x.split(7):
            model(chunk)
    with torch.no_grad():
        expected = model.enc(x[:25])
    assert rec["enc.2"].dtype == torch.float16 and rec["enc.2"].shape == (25, 2)
    torch.testing.assert_close(rec["enc.2"].float(), expected, rtol=1e-2, atol=2e-3)
    assert rec.n_samples == 25
    folder = rec.store.spill_folder
    assert folder is not None and folder.exists()
    rec.close()
    assert not folder.exists()
    with pytest.raises(InfoprobeError, match="closed"):
        rec["enc.2"]


def test_spilled_recording_equals_in_memory_recording() -> None:
    model = _ae(_tiny_inn())
    x = torch.rand(30, 1, 4, 4)
    recs = []
    for budget in (None, 2000):
        with torch.no_grad(), record(model, memory_budget=budget) as rec:
            for chunk in x.split(8):
                model.reconstruct(chunk)
        recs.append(rec)
    memory, spilled = recs
    assert spilled.store.disk_bytes > 0 and memory.store.disk_bytes == 0
    assert memory.labels == spilled.labels
    for label in [INPUT_LABEL, *memory.labels]:
        assert torch.equal(memory[label], spilled[label])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_tensors_copied_to_device() -> None:
    model = Nested().cuda()
    with torch.no_grad(), record(model, device="cpu") as rec:
        model(torch.randn(3, 6, device="cuda"))
    assert rec["enc.0"].device.type == "cpu"


# -- streaming statistics --------------------------------------------------------------------------


class RunningMoments:
    """Test accumulator: per-feature running sum and sum of squares."""

    def __init__(self) -> None:
        self.n = 0
        self.total: Tensor | None = None
        self.squares: Tensor | None = None

    def update(self, batch: Tensor) -> None:
        assert batch.dim() == 2
        b = batch.double()
        self.total = b.sum(0) if self.total is None else self.total + b.sum(0)
        self.squares = (b * b).sum(0) if self.squares is None else self.squares + (b * b).sum(0)
        self.n += batch.shape[0]

    def compute(self) -> tuple[int, Tensor, Tensor]:
        assert self.total is not None and self.squares is not None
        mean = self.total / self.n
        return self.n, mean, self.squares / self.n - mean**2


def test_streaming_statistics_equal_all_at_once() -> None:
    model = _ae(_tiny_inn())
    x = torch.rand(50, 1, 4, 4)
    with torch.no_grad(), record(model, reduce={"*:inverse": RunningMoments,
                                                 INPUT_LABEL: RunningMoments}) as streamed:
        for chunk in x.split(7):
            model.reconstruct(chunk)
    with torch.no_grad(), record(model) as stored:
        model.reconstruct(x)
    reduced = [i.label for i in streamed.layers if i.reduced]
    assert reduced == [label for label in stored.labels if label.endswith(":inverse")]
    assert set(streamed.statistics) == {*reduced, INPUT_LABEL}
    for label in [*reduced, INPUT_LABEL]:
        n, mean, var = streamed.statistics[label]
        full = stored[label].flatten(1).double()
        assert n == 50
        # two passes over different batch sizes: float32 activations agree to round-off only
        torch.testing.assert_close(mean, full.mean(0), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(var, full.var(0, unbiased=False), rtol=1e-5, atol=1e-6)
        assert label not in streamed.store
    with pytest.raises(InfoprobeError, match="reduced on the fly"):
        streamed["inn.module_list.0:inverse"]
    _close(streamed["bottleneck"], stored["bottleneck"])  # not reduced: stored


def test_reduce_respects_max_samples_and_validates() -> None:
    model = Nested()
    with torch.no_grad(), record(model, reduce={"enc.2": RunningMoments}, max_samples=5) as rec:
        model(torch.randn(4, 6))
        model(torch.randn(4, 6))
    assert rec.statistics["enc.2"][0] == 5
    with pytest.raises(InfoprobeError, match="update"), torch.no_grad(), \
            record(model, reduce={"enc.2": object}):
        model(torch.randn(4, 6))
    assert _hook_count(model) == 0


def test_get_and_repr_messages() -> None:
    model = Twice()
    with torch.no_grad(), record(model) as rec:
        model(torch.randn(2, 3))
    with pytest.raises(InfoprobeError, match="recorded labels of that module"):
        rec.get("shared", call=2)
    with pytest.raises(InfoprobeError, match="Expected a recorded label"):
        rec["nope"]
    assert "shared#2" in repr(rec)
    empty = record(model)
    with pytest.raises(InfoprobeError, match="nothing was recorded"):
        empty["first"]


# -- modules following FrEIA's convention without FrEIA (PIE-style bijections) ---------------------


class Scale(nn.Module):
    """y = 2x, with ``rev`` as a positional parameter and a per-sample log-det."""

    def forward(self, x: Tensor, rev: bool = False) -> tuple[Tensor, Tensor]:
        y = x / 2 if rev else x * 2
        return y, torch.full((x.shape[0],), -1.0 if rev else 1.0)


class Coupling(nn.Module):
    """Affine-free additive coupling with a subnet (which must not be recorded on its own)."""

    def __init__(self) -> None:
        super().__init__()
        self.subnet = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 2))

    def forward(self, x: Tensor, *, rev: bool = False) -> tuple[Tensor, Tensor]:
        a, b = x[:, :2], x[:, 2:]
        b = b - self.subnet(a) if rev else b + self.subnet(a)
        return torch.cat([a, b], 1), x.new_zeros(x.shape[0])


class Split(nn.Module):
    def forward(self, x: Tensor, rev: bool = False) -> Any:
        if rev:
            return torch.cat([x, torch.zeros_like(x)], 1)
        return x[:, :2], x[:, 2:]


class Bijective(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList([Scale(), Coupling()])
        self.split = Split()

    def reconstruct(self, x: Tensor) -> Tensor:
        for layer in self.layers:
            x, _ = layer(x)
        kept, _ = self.split(x)
        x = self.split(kept, True)  # positional rev
        for layer in reversed(self.layers):
            x, _ = layer(x, rev=True)
        return x


def test_rev_convention_modules_without_freia() -> None:
    model = Bijective()
    x = torch.randn(5, 4)
    assert [n for n, _ in default_layers(model)] == ["layers.0", "layers.1", "split"]
    with torch.no_grad(), record(model) as rec:
        out = model.reconstruct(x)
    assert rec.labels == ["layers.0", "layers.1", "split[0]", "split[1]", "split:inverse",
                          "layers.1:inverse", "layers.0:inverse"]
    with torch.no_grad():
        h = model.layers[1](model.layers[0](x)[0])[0]
    _close(rec["layers.0"], 2 * x)  # the log-det is dropped
    _close(rec["layers.1"], h)
    _close(rec["split[1]"], h[:, 2:])  # both halves of a split are kept
    _close(rec["split:inverse"], torch.cat([h[:, :2], torch.zeros(5, 2)], 1))
    _close(rec.output, out)
