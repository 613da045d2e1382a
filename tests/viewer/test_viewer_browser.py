"""The viewer driven for real: ``wisp-shacira view`` runs in a subprocess, headless
Chromium (playwright driving the system's ``chromium``) loads the page, moves the LOD
slider with the keyboard, and the served render (the viewport background) changes.

Needs viser, playwright (``pip install viser playwright``; playwright's own browser
download is not used) and Debian's ``chromium``; skips with a reason otherwise.
Screenshots are kept in ``test-artifacts/viewer/`` (or ``$WISP_SHACIRA_ARTIFACTS/viewer``).
Every wait is bounded; the viewer also stops by itself after ``--seconds``.
"""
from __future__ import annotations

import io
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


pytest.importorskip("viser", reason="the viewer needs viser (pip install viser)")
sync_api = pytest.importorskip("playwright.sync_api",
                               reason="browser test needs playwright (pip install playwright)")

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(os.environ.get("WISP_SHACIRA_ARTIFACTS", ROOT / "test-artifacts")) / "viewer"
WAIT_MS = 120_000  # generous: Chromium renders in software, slow on a loaded 2-core box
SERVER_LIFETIME_S = 420
# Part of the viewport away from the control panel (top right) and notifications (top left).
REGION = (slice(220, 560), slice(40, 440))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_http(url: str, proc: subprocess.Popen, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"viewer exited with {proc.returncode}: {proc.stdout.read()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"viewer did not answer at {url} within {timeout} s")


def _viewport(page) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(page.screenshot())).convert("RGB"), dtype=np.float64)


def _wait_refined(page, lod: int) -> str:
    """Wait until the panel reports a refined render at ``lod``; returns the panel text."""
    panel = page.locator("p", has_text=f"LOD {lod} / 4").filter(has_text="(refined)")
    panel.first.wait_for(timeout=WAIT_MS)
    time.sleep(1.0)  # the browser decodes the background texture asynchronously
    return panel.first.inner_text()


@pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (apt-get install chromium)")
def test_lod_slider_changes_the_served_render(random_image_shac, tmp_path) -> None:
    shac = random_image_shac(tmp_path / "tiny.shac", 48, 64, spread=4, decoder_weight=0.5)
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "wisp_shacira.cli.main", "view", str(shac),
                             "--port", str(port), "--seconds", str(SERVER_LIFETIME_S)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        _wait_http(f"http://127.0.0.1:{port}/", proc)
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, timeout=WAIT_MS,
                                         args=["--use-angle=swiftshader",
                                               "--enable-unsafe-swiftshader",
                                               "--disable-dev-shm-usage"])
            try:
                page = browser.new_page(viewport={"width": 900, "height": 600})
                page.goto(f"http://127.0.0.1:{port}/", timeout=WAIT_MS)
                full_text = _wait_refined(page, 4)
                before = _viewport(page)
                page.screenshot(path=str(tmp_path / "lod4.png"))
                slider = page.get_by_role("slider").first
                assert slider.get_attribute("aria-valuenow") == "4"
                slider.focus()
                page.keyboard.press("Home")
                coarse_text = _wait_refined(page, 1)
                after = _viewport(page)
                page.screenshot(path=str(tmp_path / "lod1.png"))
            finally:
                browser.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for name in ("lod4.png", "lod1.png"):
        shutil.copy(tmp_path / name, ARTIFACTS / name)
    loaded = [int(re.search(r"bytes loaded: ([\d,]+)", t).group(1).replace(",", ""))
              for t in (full_text, coarse_text)]
    assert loaded[1] < loaded[0] == shac.stat().st_size
    change = np.abs(before[REGION] - after[REGION]).mean()
    assert change > 2.0, f"the render did not change with the LOD (mean |diff| {change:.2f})"
