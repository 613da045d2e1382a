"""The viewer driven for real: ``wisp-shacira view`` runs in a subprocess, headless
Chromium (playwright driving the system's ``chromium``) loads the page, moves the LOD
slider with the keyboard, and the served render (the viewport background) changes;
on a 16384^2 image it zooms from the whole picture to single pixels (auto LOD: more
levels), pans by half a view and centres on a click.

Needs viser, playwright (``pip install viser playwright``; playwright's own browser
download is not used) and Debian's ``chromium``; skips with a reason otherwise.
Screenshots are kept in ``test-artifacts/viewer/`` (or ``$WISP_SHACIRA_ARTIFACTS/viewer``).
Every wait is bounded; the viewer also stops by itself after ``--seconds``.
"""
from __future__ import annotations

import contextlib
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
from typing import Iterator

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


def _wait_refined(page, lod: int, levels: int = 4, *also: str) -> str:
    """Wait until the panel reports a refined render at ``lod`` (of ``levels``) whose
    text also holds each of ``also``; returns the panel text."""
    panel = page.locator("p", has_text=f"LOD {lod} / {levels}").filter(has_text="(refined)")
    for text in also:
        panel = panel.filter(has_text=text)
    panel.first.wait_for(timeout=WAIT_MS)
    time.sleep(1.0)  # the browser decodes the background texture asynchronously
    return panel.first.inner_text()


@contextlib.contextmanager
def _served_page(shac: Path) -> Iterator:
    """``wisp-shacira view shac`` in a subprocess and a 900x600 Chromium page on it."""
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
                yield page
            finally:
                browser.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def _keep(tmp_path: Path, *names: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy(tmp_path / name, ARTIFACTS / name)


def _loaded(text: str) -> int:
    return int(re.search(r"bytes loaded: ([\d,]+)", text).group(1).replace(",", ""))


@pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (apt-get install chromium)")
def test_lod_slider_changes_the_served_render(random_image_shac, tmp_path) -> None:
    shac = random_image_shac(tmp_path / "tiny.shac", 48, 64, spread=4, decoder_weight=0.5)
    with _served_page(shac) as page:
        full_text = _wait_refined(page, 4)
        before = _viewport(page)
        page.screenshot(path=str(tmp_path / "lod4.png"))
        slider = page.get_by_role("slider").first
        assert slider.get_attribute("aria-valuenow") == "4"
        slider.focus()
        page.keyboard.press("Home")  # moving the LOD slider by hand turns auto LOD off
        coarse_text = _wait_refined(page, 1)
        after = _viewport(page)
        page.screenshot(path=str(tmp_path / "lod1.png"))
    _keep(tmp_path, "lod4.png", "lod1.png")
    assert "(auto)" in full_text and "(auto)" not in coarse_text
    assert _loaded(coarse_text) < _loaded(full_text) == shac.stat().st_size
    change = np.abs(before[REGION] - after[REGION]).mean()
    assert change > 2.0, f"the render did not change with the LOD (mean |diff| {change:.2f})"


def _blockiness(image: np.ndarray) -> float:
    """Share of horizontally adjacent screenshot pixels of (nearly) equal colour."""
    region = image[REGION]
    return float((np.abs(np.diff(region, axis=1)).max(-1) < 4).mean())


@pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (apt-get install chromium)")
def test_zoom_from_the_whole_image_to_single_pixels(random_image_shac, tmp_path) -> None:
    # a 16384^2 image (detail at 8 scales, up to the pixels) seen through a 1536x1024 render
    shac = random_image_shac(tmp_path / "large.shac", 16384, 16384, num_levels=8,
                             max_res=16384, spread=4, decoder_weight=0.5)
    with _served_page(shac) as page:
        whole_text = _wait_refined(page, 6, 8, "(auto)", "x 0 y 0, 16,384 x 16,384 px")
        whole = _viewport(page)
        page.screenshot(path=str(tmp_path / "zoom_whole.png"))
        zoom = page.get_by_role("slider").nth(1)
        zoom.focus()
        page.keyboard.press("End")  # the largest zoom: 2^9, 32 render px per image px
        pixel_text = _wait_refined(page, 8, 8, "(auto)", "zoom 2^9.00", "32 render px")
        pixels = _viewport(page)
        page.screenshot(path=str(tmp_path / "zoom_pixels.png"))
        page.get_by_role("button", name="→", exact=True).click()  # half a view: 24 px
        _wait_refined(page, 8, 8, "x 8,192 y 8,176, 48 x 32 px")  # the centre moved 24 px
        panned = _viewport(page)
        page.screenshot(path=str(tmp_path / "zoom_panned.png"))
        page.mouse.click(225, 300)  # a quarter view left of the centre: centre x 8216 - 12
        clicked_text = _wait_refined(page, 8, 8, "x 8,180 y 8,176, 48 x 32 px")
        page.screenshot(path=str(tmp_path / "zoom_clicked.png"))
    _keep(tmp_path, "zoom_whole.png", "zoom_pixels.png", "zoom_panned.png", "zoom_clicked.png")
    assert "x 8,168 y 8,176, 48 x 32 px" in pixel_text and "18.8 screen px" in pixel_text
    assert _loaded(whole_text) < _loaded(pixel_text) == shac.stat().st_size
    assert "LOD 8 / 8 (auto)" in clicked_text
    for before, after, what in ((whole, pixels, "zooming in"), (pixels, panned, "panning")):
        change = np.abs(before[REGION] - after[REGION]).mean()
        assert change > 2.0, f"the render did not change when {what} (mean |diff| {change:.2f})"
    # one image pixel covers ~19 x 19 screen pixels: mostly flat, unlike the whole view
    assert _blockiness(pixels) > 0.8 > _blockiness(whole) + 0.3, \
        (_blockiness(pixels), _blockiness(whole))
