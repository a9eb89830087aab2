"""index.html rendered by headless Chromium: the screenshot shows the figures and the tables (slow; skips
without a chromium binary, which .ci/run installs from Debian's ``chromium`` package where apt exists)."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from matplotlib import image

from al_bench.report.__main__ import main
from tests.report.test_report_html import variant_sweep

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
WIDTH, HEIGHT = 1400, 9000
TAB_BLUE, TAB_ORANGE = (31, 119, 180), (255, 127, 14)  # matplotlib's first two colours: only figures use them
TABLE_HEADER = (232, 238, 247)  # html.STYLE's th background (#e8eef7): only tables use it


def chromium() -> str | None:
    return next((path for path in map(shutil.which, BROWSERS) if path), None)


def count(rgb: np.ndarray, color: tuple[int, int, int], tol: int = 6) -> int:
    """Pixels of rgb[H, W, 3] within ``tol`` of ``color`` in every channel."""
    return int((np.abs(rgb - np.array(color)) <= tol).all(axis=-1).sum())


@pytest.mark.slow
def test_screenshot_shows_figures_and_tables(tmp_path):
    binary = chromium()
    if binary is None:
        pytest.skip("no chromium binary on PATH (Debian: apt-get install chromium; .ci/run installs it)")
    results = variant_sweep(tmp_path / "results")
    assert main([str(results)]) == 0
    shot = tmp_path / "shot.png"
    command = [
        binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'profile'}", f"--window-size={WIDTH},{HEIGHT}", f"--screenshot={shot}",
        (results / "report" / "index.html").as_uri(),
    ]  # fmt: skip
    proc = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert shot.exists(), proc.stderr[-2000:]
    rgb = np.round(image.imread(shot)[..., :3] * 255).astype(int)  # [H, W, 3]
    assert rgb.shape == (HEIGHT, WIDTH, 3)
    assert rgb.std() > 20  # not a blank page
    # the figures: matplotlib's blue and orange lines, markers and bars, thousands of pixels of each
    assert count(rgb, TAB_BLUE) > 2000 and count(rgb, TAB_ORANGE) > 2000
    # the tables: header cells, in more than one table (rows far apart)
    header_rows = np.flatnonzero((np.abs(rgb - np.array(TABLE_HEADER)) <= 2).all(axis=-1).sum(axis=1) > 100)
    assert header_rows.size > 0 and header_rows.max() - header_rows.min() > 500
    # the top of the page (title and summary) has no figure colours; the figures come below it
    top = rgb[:250]
    assert count(top, TAB_BLUE) == 0 and count(rgb[250:], TAB_BLUE) > 2000
