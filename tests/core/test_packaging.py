"""The wheel carries the config tree, so an installed al_bench runs outside the checkout."""

from __future__ import annotations

import subprocess
import zipfile

import pytest

from tests.conftest import PYTHON, ROOT, config_names


@pytest.mark.slow
def test_wheel_ships_every_config(tmp_path):
    subprocess.run(
        [
            PYTHON,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (wheel,) = tmp_path.glob("al_bench-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "al_bench/configs/config.yaml" in names
    for group in ("dataset", "model", "strategy", "budget", "trainer", "logger", "experiment"):
        for name in config_names(group):
            assert f"al_bench/configs/{group}/{name}.yaml" in names


def test_cli_finds_the_config_tree():
    from al_bench.cli import config_dir

    assert (ROOT / "configs" / "config.yaml").samefile(f"{config_dir()}/config.yaml")
