"""``report.html`` and ``compare.html`` in a real browser: headless Chromium, driven through the
Chrome DevTools protocol over ``--remote-debugging-pipe`` (NUL-separated JSON on file
descriptors 3 and 4; no Python dependency, no network port, nothing injected into the page).

Checked: the page loads with no console message of level error and no uncaught exception; it
fetches nothing but itself (images are embedded); every ``<img>`` is decoded by the browser
(``naturalWidth`` > 0) and, independently, by PIL from the page's base64 with the same size; a
1280×900 screenshot is not blank (pixel variance); the ``#summary`` block starts above the fold
(its box top < 900 px, and the screenshot's top region shows its background #f7f9fc); the page
is not wider than the window. Skips, saying why, only where no Chromium can be started.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import re
import select
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

import models
from infoprobe import checkpoint
from infoprobe.cli import main

WIDTH, HEIGHT = 1280, 900
SUMMARY_RGB = (0xF7, 0xF9, 0xFC)


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no Chromium on PATH (Debian: apt-get install chromium); the browser test needs one")


class DevTools:
    """A minimal client of the DevTools protocol over Chromium's remote-debugging pipe."""

    def __init__(self, executable: str, profile: Path) -> None:
        to_child, self._write = os.pipe()  # Chromium reads commands from fd 3
        self._read, from_child = os.pipe()  # and writes replies and events to fd 4

        def wire() -> None:  # dup first: dup2 onto an fd it already has would keep close-on-exec
            a, b = os.dup(to_child), os.dup(from_child)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [executable, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
             f"--window-size={WIDTH},{HEIGHT}", f"--user-data-dir={profile}", "--no-first-run",
             "--hide-scrollbars", "--mute-audio", "about:blank"],
            preexec_fn=wire, close_fds=False, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        os.close(to_child)
        os.close(from_child)
        self._buffer = b""
        self._id = 0
        self.events: list[dict[str, Any]] = []

    def _receive(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            ready, _, _ = select.select([self._read], [], [], max(0.0, deadline - time.monotonic()))
            chunk = os.read(self._read, 1 << 20) if ready else b""
            if not chunk:
                why = "timed out" if not ready else "exited"
                raise RuntimeError(f"Chromium {why}: {self.proc.stderr.read(4000) if not ready else ''}")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, params: dict[str, Any] | None = None, *, session: str | None = None,
             timeout: float = 30.0) -> dict[str, Any]:
        self._id += 1
        message: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._write, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._receive(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def wait_for(self, event: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == event for e in self.events):
            self.events.append(self._receive(deadline))

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, OSError):  # it may be gone already
            self.call("Browser.close", timeout=5)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._write)
        os.close(self._read)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Any:
    executable = _chromium()
    try:
        tools = DevTools(executable, tmp_path_factory.mktemp("chromium-profile"))
        tools.call("Browser.getVersion", timeout=60)
    except (OSError, RuntimeError) as exc:
        pytest.skip(f"Chromium at {executable} cannot be started headless: {exc}")
    yield tools
    tools.close()


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """report.html of an INN and of a classical AE (untrained, digits) and their compare.html."""
    folder = tmp_path_factory.mktemp("pages")
    runs = []
    for family in ("inn-ae", "classical-ae"):
        torch.manual_seed(0)
        path = checkpoint.save(folder / f"{family}.pt", models.build(family, dataset="digits"),
                               dataset={"name": "digits", "split": "train"})
        out = folder / family
        assert main(["analyze", str(path), "--samples", "120", "--joint-samples", "120", "--n-boot", "4",
                     "--no-umap", "--device", "cpu", "--quiet", "--out", str(out)]) == 0
        runs.append(str(out))
    assert main(["compare", *runs, "--names", "inn-ae", "classical-ae", "--out", str(folder / "compare")]) == 0
    return {"report": folder / "inn-ae" / "report.html", "compare": folder / "compare" / "compare.html"}


PROBE = """JSON.stringify({
  images: Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight]),
  summary: (() => { const s = document.querySelector('#summary');
                    if (!s) return null; const r = s.getBoundingClientRect();
                    return [r.top, r.height, getComputedStyle(s).visibility]; })(),
  scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth
})"""


def _open(browser: DevTools, page: Path) -> tuple[dict[str, Any], np.ndarray, list[dict[str, Any]]]:
    target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = browser.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    browser.events.clear()
    for domain in ("Page", "Runtime", "Log", "Network"):
        browser.call(f"{domain}.enable", session=session)
    browser.call("Emulation.setDeviceMetricsOverride", {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1,
                                                        "mobile": False}, session=session)
    browser.call("Page.navigate", {"url": page.resolve().as_uri()}, session=session)
    browser.wait_for("Page.loadEventFired")
    probe = browser.call("Runtime.evaluate", {"expression": PROBE, "returnByValue": True}, session=session)
    shot = browser.call("Page.captureScreenshot", {"format": "png"}, session=session)["data"]
    events = [e for e in browser.events if e.get("sessionId") == session]
    browser.call("Target.closeTarget", {"targetId": target})
    png = base64.b64decode(shot)
    (page.parent / f"{page.stem}_screenshot.png").write_bytes(png)  # to look at when it fails
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    return json.loads(probe["result"]["value"]), pixels, events


def _errors(events: list[dict[str, Any]]) -> list[str]:
    out = []
    for e in events:
        method, params = e.get("method"), e.get("params", {})
        if method == "Runtime.exceptionThrown":
            out.append(f"uncaught: {params['exceptionDetails'].get('text')}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            out.append(f"console.{params['type']}: {params.get('args')}")
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            out.append(f"log: {params['entry'].get('text')}")
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name", ["report", "compare"])
def test_page_renders_with_the_summary_above_the_fold(browser: DevTools, pages: dict[str, Path],
                                                      name: str) -> None:
    page = pages[name]
    probe, pixels, events = _open(browser, page)

    assert _errors(events) == []
    requested = [e["params"]["request"]["url"] for e in events if e.get("method") == "Network.requestWillBeSent"]
    assert requested and all(u == page.resolve().as_uri() or u.startswith("data:") for u in requested), requested

    embedded = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page.read_text(encoding="utf-8"))
    assert len(embedded) >= 2 and len(probe["images"]) == len(embedded)
    for (complete, width, height), data in zip(probe["images"], embedded, strict=True):
        image = Image.open(io.BytesIO(base64.b64decode(data)))
        image.verify()  # a well-formed PNG, decoded without the browser
        assert complete and (width, height) == image.size, "the browser decoded every image at its size"

    assert pixels.shape == (HEIGHT, WIDTH, 3)
    assert pixels.std() > 20, "the screenshot is blank"
    top, height, visibility = probe["summary"]
    assert 0 <= top < HEIGHT and height > 100 and visibility == "visible"
    summary_colour = np.all(pixels == SUMMARY_RGB, axis=-1)
    assert summary_colour.mean() > 0.2, "the top of the page shows the summary block's background"
    assert probe["scrollWidth"] <= probe["innerWidth"], "the page is wider than the window"


@pytest.mark.slow
def test_the_checks_catch_a_broken_page(browser: DevTools, tmp_path: Path) -> None:
    """The probes themselves can fail: an undecodable image, an uncaught error, a summary below the fold."""
    page = tmp_path / "broken.html"
    page.write_text("<!DOCTYPE html><html><body><div style='height:1500px'></div><section id='summary'>s</section>"
                    "<img src='data:image/png;base64,iVBORw0KGgoAAAAA'><script>not_defined()</script></body></html>",
                    encoding="utf-8")
    probe, pixels, events = _open(browser, page)
    assert any("not_defined" in e or "Uncaught" in e for e in _errors(events))
    assert probe["images"] and probe["images"][0][1] == 0  # naturalWidth 0: not decoded
    assert probe["summary"][0] >= HEIGHT
    assert pixels.std() < 1  # an empty white viewport
