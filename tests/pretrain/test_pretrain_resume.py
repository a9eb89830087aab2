"""Pretraining runs: seeded, resumable (2 + 1 epochs == 3), refuse a changed config, find a finished run,
and report user mistakes in one line."""

from __future__ import annotations

import subprocess

import pytest
import torch

from al_bench.errors import ALBenchError, ConfigMismatchError, MissingDatasetError
from al_bench.pretrain.checkpoint import load_state, read_encoder_checkpoint
from al_bench.pretrain.runner import (
    STATE_FILE,
    check_ssl_config,
    fingerprint,
    make_augment,
    run,
    saved_config,
)
from tests.conftest import PYTHON, ROOT, config_names
from tests.pretrain.ssl_cases import TINY_SSL, compose_pretrain


def weights(path) -> dict[str, torch.Tensor]:
    return read_encoder_checkpoint(path)["state_dict"]


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_resume_after_two_epochs_equals_three_in_one_go(tmp_path):
    whole = run(compose_pretrain(tmp_path / "a"))
    assert whole.status == "finished" and whole.epoch == 3 and len(whole.losses) == 3

    first = run(compose_pretrain(tmp_path / "b", "stop_after=2"))
    assert first.status == "stopped" and first.encoder_path is None
    assert load_state(first.run_dir / STATE_FILE)["epoch"] == 2
    rest = run(compose_pretrain(tmp_path / "b"))
    assert rest.status == "finished"
    assert rest.losses == whole.losses
    assert_same_weights(weights(rest.encoder_path), weights(whole.encoder_path))

    again = run(compose_pretrain(tmp_path / "b"))  # finished: nothing is trained again
    assert again.status == "already_finished" and again.encoder_path == rest.encoder_path


def test_seed_decides_the_encoder(tmp_path):
    a = run(compose_pretrain(tmp_path / "a", "ssl.epochs=1"))
    b = run(compose_pretrain(tmp_path / "b", "ssl.epochs=1"))
    c = run(compose_pretrain(tmp_path / "c", "ssl.epochs=1", "seed=1"))
    assert_same_weights(weights(a.encoder_path), weights(b.encoder_path))
    wa, wc = weights(a.encoder_path), weights(c.encoder_path)
    assert any(not torch.equal(wa[k], wc[k]) for k in wa if wa[k].is_floating_point())
    assert "seed=1" in str(c.run_dir) and "synthetic" in str(c.run_dir) and "test_resnet" in str(c.run_dir)


def test_changed_config_is_refused_unless_overwrite(tmp_path):
    run(compose_pretrain(tmp_path, "stop_after=1"))
    with pytest.raises(ConfigMismatchError, match=r"ssl.temperature: 0.5 there, 0.2 now"):
        run(compose_pretrain(tmp_path, "ssl.temperature=0.2"))
    result = run(compose_pretrain(tmp_path, "ssl.temperature=0.2", "overwrite=true", "ssl.epochs=1"))
    assert result.status == "finished" and result.losses and len(result.losses) == 1
    # where the data lives is not part of the configuration
    moved = run(
        compose_pretrain(tmp_path, "ssl.temperature=0.2", "ssl.epochs=1", f"paths.data_dir={tmp_path}/x")
    )
    assert moved.status == "already_finished"


def test_uint8_images_get_their_statistics(tmp_path):
    result = run(compose_pretrain(tmp_path, "dataset.as_uint8=true", "dataset.shape=[3,8,8]", "ssl.epochs=1"))
    ckpt = read_encoder_checkpoint(result.encoder_path)
    assert ckpt["in_chans"] == 3 and len(ckpt["mean"]) == 3 and ckpt["input_size"] == 16
    assert all(0.05 < m < 0.95 for m in ckpt["mean"]) and all(0.01 < s < 0.6 for s in ckpt["std"])
    float_ckpt = read_encoder_checkpoint(run(compose_pretrain(tmp_path / "f", "ssl.epochs=1")).encoder_path)
    assert float_ckpt["mean"] == [0.0] and float_ckpt["std"] == [1.0]  # float data: fed as stored


@pytest.mark.parametrize("name", config_names("ssl"))
@pytest.mark.parametrize("dataset", ["digits", "fashion_mnist", "cifar10"])
def test_every_ssl_config_composes_with_every_kind_of_dataset(tmp_path, name, dataset):
    cfg = compose_pretrain(tmp_path, f"ssl={name}", f"dataset={dataset}", tiny=False)
    check_ssl_config(cfg.ssl)
    assert make_augment(cfg.ssl).size == cfg.ssl.input_size
    saved = fingerprint(saved_config(cfg))  # resolved: the dataset's data_dir interpolation too
    assert saved["seed"] == 0 and saved["ssl"]["name"] == name and saved["dataset"]["name"] == dataset
    assert cfg.paths.run_dir.endswith(f"ssl/{dataset}/{name}/{cfg.ssl.arch}/seed=0")


@pytest.mark.parametrize(
    "override,message",
    [
        ("ssl.arch=no_such_net", "unknown timm architecture"),
        ("ssl.temperature=0", "ssl.temperature must be > 0"),
        ("ssl.batch_size=1", "ssl.batch_size must be >= 2"),
        ("ssl.optimizer=lamb", "unknown ssl.optimizer"),
        ("ssl.augment.flip_p=2", "bad ssl.augment"),
    ],
)
def test_user_mistakes_raise_albench_errors(tmp_path, override, message):
    with pytest.raises(ALBenchError, match=message):
        run(compose_pretrain(tmp_path, override))


def test_missing_dataset_files(tmp_path):
    cfg = compose_pretrain(tmp_path, "dataset=fashion_mnist", "dataset.fallback_dir=null", tiny=False)
    with pytest.raises(MissingDatasetError):
        run(cfg)


def _cli(tmp_path, *overrides: str) -> subprocess.CompletedProcess:
    args = [*TINY_SSL, f"paths.results_dir={tmp_path}/results", "verbose=true", *overrides]
    return subprocess.run(
        [PYTHON, "-m", "al_bench.pretrain", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        timeout=300,
    )


@pytest.mark.slow
def test_cli_prints_one_line_per_epoch_and_the_run_directory(tmp_path):
    done = _cli(tmp_path, "ssl.epochs=2")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    epochs = [line for line in lines if line.startswith("ssl epoch")]
    assert len(epochs) == 2 and "loss" in epochs[0] and " s  ETA " in epochs[0]
    assert lines[-1].startswith("al_bench.pretrain: run directory ") and "seed=0" in lines[-1]
    assert (tmp_path / "results/ssl/synthetic/simclr/test_resnet/seed=0/encoder.pt").is_file()


@pytest.mark.slow
def test_cli_user_error_is_one_line_and_exit_2(tmp_path):
    done = _cli(tmp_path, "ssl.arch=no_such_net")
    assert done.returncode == 2
    assert done.stderr.strip().startswith("al_bench: error: unknown timm architecture")
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
