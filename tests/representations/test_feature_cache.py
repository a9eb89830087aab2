"""The feature cache: extracted once per (backbone, weights, images, transform), reused, atomic, locked, and
re-extracted with one warning line when its file is corrupt. Tiny timm model, 8x8 images resized to 16."""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path

import pytest
import torch

import al_bench.representations.feature_cache as fc
from al_bench.data.base import ArrayDataset
from al_bench.errors import ALBenchError
from al_bench.representations import BackboneSpec, create_backbone, extract_features, resolve_backbone

SPEC = BackboneSpec("test_resnet", input_size=16, init_seed=0)


def images(n: int, seed: int) -> torch.Tensor:
    return torch.randint(
        0, 256, (n, 1, 8, 8), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8
    )


@pytest.fixture
def ds() -> ArrayDataset:
    y = torch.arange(24) % 3
    return ArrayDataset(
        "tiny", images(24, 0), y, images(9, 1), torch.arange(9) % 3, 3, mean=(0.5,), std=(0.2,)
    )


@pytest.fixture
def count(monkeypatch) -> list[int]:
    """How many times features were actually extracted (not read from the cache)."""
    calls: list[int] = []
    real = fc._extract

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(fc, "_extract", counting)
    return calls


def files(cache: Path) -> list[Path]:
    return sorted(cache.glob("features/*/*.pt"))


def test_features_are_the_backbones_on_raw_pixels(tmp_path, ds, count):
    train, test = extract_features(SPEC, ds, cache_dir=tmp_path, verbose=False)
    backbone = create_backbone(resolve_backbone(SPEC), seed=SPEC.init_seed).eval()
    with torch.no_grad():
        expected = backbone(ds.x_train.float() / 255)
    assert train.shape == (24, backbone.num_features) and test.shape == (9, backbone.num_features)
    assert train.dtype == torch.float32
    torch.testing.assert_close(train, expected, rtol=1e-4, atol=1e-5)  # channels-last vs NCHW rounding
    assert count == [1]


def test_second_call_reads_the_cache_and_content_not_identity_is_the_key(tmp_path, ds, count):
    a = extract_features(SPEC, ds, cache_dir=tmp_path, verbose=False)
    copy = dataclasses.replace(ds, x_train=ds.x_train.clone(), x_test=ds.x_test.clone())
    relabelled = dataclasses.replace(ds, y_train=ds.y_train.flip(0))  # labels do not change features
    b = extract_features(SPEC, copy, cache_dir=tmp_path, verbose=False)
    c = extract_features(SPEC, relabelled, cache_dir=tmp_path, verbose=False)
    assert count == [1] and len(files(tmp_path)) == 1
    for x, y in zip(a + b, b + c):
        assert torch.equal(x, y)


@pytest.mark.parametrize(
    "change",
    ["image", "test_image", "init_seed", "input_size", "arch", "interpolation"],
)
def test_anything_the_features_depend_on_gives_another_file(tmp_path, ds, count, change):
    extract_features(SPEC, ds, cache_dir=tmp_path, verbose=False)
    spec, other = SPEC, ds
    if change == "image":
        x = ds.x_train.clone()
        x[0, 0, 0, 0] ^= 1
        other = dataclasses.replace(ds, x_train=x)
    elif change == "test_image":
        other = dataclasses.replace(ds, x_test=ds.x_test.flip(0))
    elif change == "init_seed":
        spec = dataclasses.replace(SPEC, init_seed=1)
    elif change == "input_size":
        spec = dataclasses.replace(SPEC, input_size=24)
    elif change == "arch":
        spec = dataclasses.replace(SPEC, arch="test_efficientnet")
    else:
        spec = dataclasses.replace(SPEC, interpolation="nearest")
    a = torch.cat(extract_features(SPEC, ds, cache_dir=tmp_path, verbose=False))
    b = torch.cat(extract_features(spec, other, cache_dir=tmp_path, verbose=False))
    assert count == [1, 1] and len(files(tmp_path)) == 2
    assert a.shape != b.shape or not torch.equal(a, b)


def test_weights_content_is_part_of_the_key(tmp_path, ds, count):
    import timm

    path = tmp_path / "w.pt"
    torch.save(timm.create_model("test_resnet", num_classes=0).state_dict(), path)
    spec = dataclasses.replace(SPEC, weights=str(path))
    first = extract_features(spec, ds, cache_dir=tmp_path / "c", verbose=False)[0]
    torch.manual_seed(123)
    torch.save(timm.create_model("test_resnet", num_classes=0).state_dict(), path)  # same path, new content
    second = extract_features(spec, ds, cache_dir=tmp_path / "c", verbose=False)[0]
    assert count == [1, 1] and not torch.equal(first, second)


def test_random_init_is_fixed_by_init_seed_and_leaves_the_global_rng_alone(tmp_path, ds):
    torch.manual_seed(5)
    before = torch.random.get_rng_state()
    a = extract_features(SPEC, ds, cache_dir=tmp_path / "a", verbose=False)[0]
    assert torch.equal(torch.random.get_rng_state(), before)
    b = extract_features(SPEC, ds, cache_dir=tmp_path / "b", verbose=False)[0]  # extracted afresh
    assert torch.equal(a, b)


def test_corrupt_file_is_extracted_again_with_one_warning_line(tmp_path, ds, count, capsys):
    good = extract_features(SPEC, ds, cache_dir=tmp_path, verbose=False)[0]
    (path,) = files(tmp_path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # truncated
    again = extract_features(SPEC, ds, cache_dir=tmp_path, verbose=False)[0]
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("warning: feature cache") and "extracting again" in err[0]
    assert count == [1, 1] and torch.equal(good, again)
    extract_features(SPEC, ds, cache_dir=tmp_path, verbose=False)
    assert count == [1, 1], "the rewritten file is read"


def test_a_file_that_does_not_match_its_key_is_not_trusted(tmp_path, ds, count):
    extract_features(SPEC, ds, cache_dir=tmp_path, verbose=False)
    (path,) = files(tmp_path)
    obj = torch.load(path, weights_only=True)
    obj["train"] = obj["train"][:-1]  # wrong number of rows
    torch.save(obj, path)
    train = extract_features(SPEC, ds, cache_dir=tmp_path, verbose=False)[0]
    assert count == [1, 1] and len(train) == 24


def test_a_failed_write_leaves_no_file_and_no_temporary(tmp_path, ds, monkeypatch):
    def broken_save(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(fc.torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        extract_features(SPEC, ds, cache_dir=tmp_path, verbose=False)
    leftovers = [p for p in tmp_path.rglob("*") if p.is_file() and not p.name.endswith(".lock")]
    assert leftovers == []


def test_concurrent_jobs_extract_once(tmp_path, ds, monkeypatch):
    """Two jobs asking for the same features at once: one extracts, the other waits on the lock and reads."""
    calls: list[int] = []
    real = fc._extract

    def slow(*args, **kwargs):
        calls.append(1)
        time.sleep(0.5)  # a window in which the second job certainly arrives
        return real(*args, **kwargs)

    monkeypatch.setattr(fc, "_extract", slow)
    out: list = [None, None]

    def job(i: int) -> None:
        out[i] = extract_features(SPEC, ds, cache_dir=tmp_path, verbose=False)

    threads = [threading.Thread(target=job, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [1]
    assert torch.equal(out[0][0], out[1][0]) and torch.equal(out[0][1], out[1][1])


def test_progress_and_summary_go_to_stderr(tmp_path, ds, capsys):
    extract_features(SPEC, ds, cache_dir=tmp_path, verbose=True)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "features test_resnet tiny" in captured.err and "img/s" in captured.err


def test_float_images_are_taken_as_pixels(tmp_path, ds):
    """Float datasets (e.g. Repeated-MNIST's noisy copies, stored as [0, 1] pixels) go in as they are."""
    as_float = dataclasses.replace(ds, x_train=ds.x_train.float() / 255, x_test=ds.x_test.float() / 255)
    a = extract_features(SPEC, ds, cache_dir=tmp_path, verbose=False)[0]
    b = extract_features(SPEC, as_float, cache_dir=tmp_path, verbose=False)[0]
    torch.testing.assert_close(a, b)


def test_unwritable_cache_dir_is_one_line(tmp_path, ds):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ALBenchError, match="cannot write the feature cache") as e:
        extract_features(SPEC, ds, cache_dir=blocker / "cache", verbose=False)
    assert "\n" not in str(e.value)


def test_config_source_uses_paths_cache_dir_and_extract_batch_size(make_cfg, tmp_path, ds, monkeypatch):
    seen = []
    real = fc.compute_features

    def spy(backbone, x, batch_size=256, device="cpu", progress=None):
        seen.append(batch_size)
        return real(backbone, x, batch_size, device, progress)

    monkeypatch.setattr(fc, "compute_features", spy)
    base = ["model=timm", "model.arch=test_resnet", "model.input_size=16"]
    cfg = make_cfg(*base, "model.extract_batch_size=7", f"paths.cache_dir={tmp_path / 'from_cfg'}")
    extract_features(cfg, ds, verbose=False)
    assert seen == [7, 7] and len(files(tmp_path / "from_cfg")) == 1  # train, then test
    extract_features(make_cfg(*base, f"paths.cache_dir={tmp_path / 'auto'}"), ds, verbose=False)
    assert seen[2:] == [fc.AUTO_BATCH_SIZE["cpu"]] * 2 == [16, 16]  # null: the CPU size


def test_killed_extraction_resumes_at_its_first_unfinished_chunk(tmp_path, ds, monkeypatch, capsys):
    reference = extract_features(SPEC, ds, cache_dir=tmp_path / "ref", verbose=False)
    monkeypatch.setattr(fc, "CHUNK", 8)  # 24 train images: 3 chunks, 9 test images: 2 chunks
    real = fc.compute_features
    computed: list[int] = []

    def dies_after_two_chunks(backbone, images, *args, **kwargs):
        if len(computed) == 2:
            raise KeyboardInterrupt
        computed.append(len(images))
        return real(backbone, images, *args, **kwargs)

    monkeypatch.setattr(fc, "compute_features", dies_after_two_chunks)
    with pytest.raises(KeyboardInterrupt):
        extract_features(SPEC, ds, cache_dir=tmp_path, verbose=False)
    assert files(tmp_path) == [] and len(list(tmp_path.glob("features/*/*.parts/*.pt"))) == 2
    computed.clear()
    monkeypatch.setattr(fc, "compute_features", lambda *a, **k: computed.append(len(a[1])) or real(*a, **k))
    train, test = extract_features(SPEC, ds, cache_dir=tmp_path, verbose=True)
    assert computed == [8, 8, 1], "only the unfinished chunks: the third train chunk and both test chunks"
    assert "resuming, 16 of 33 images" in capsys.readouterr().err
    torch.testing.assert_close(train, reference[0])
    torch.testing.assert_close(test, reference[1])
    assert len(files(tmp_path)) == 1 and list(tmp_path.glob("features/*/*.parts")) == []


def test_parts_of_another_key_are_not_reused(tmp_path, ds, monkeypatch):
    monkeypatch.setattr(fc, "CHUNK", 8)
    extract_features(SPEC, ds, cache_dir=tmp_path, verbose=False)
    (path,) = files(tmp_path)
    parts = path.with_name(path.name + ".parts")
    parts.mkdir()
    stale = {"format": fc.FORMAT, "spec": {"other": 1}, "features": torch.ones(8, 4)}
    fc._write(parts / "train-000000000.pt", stale)
    path.unlink()
    train = extract_features(SPEC, ds, cache_dir=tmp_path, verbose=False)[0]
    assert not torch.equal(train[:8, :4], torch.ones(8, 4)) and not parts.exists()


def test_non_finite_features_are_refused_and_nothing_is_cached(tmp_path, ds, monkeypatch):
    real = fc.compute_features
    monkeypatch.setattr(fc, "compute_features", lambda *a, **k: real(*a, **k) * float("nan"))
    with pytest.raises(ALBenchError, match="non-finite features"):
        extract_features(SPEC, ds, cache_dir=tmp_path, verbose=False)
    assert [p for p in tmp_path.rglob("*") if p.is_file() and not p.name.endswith(".lock")] == []
