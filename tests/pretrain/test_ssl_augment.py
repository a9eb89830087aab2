"""SimCLR augmentations: deterministic per generator, shapes and [0, 1] kept, each op checked against
torchvision's functional version or a known answer."""

from __future__ import annotations

import pytest
import torch
import torchvision.transforms.functional as TF

from al_bench.pretrain.augment import (
    SimCLRAugment,
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
    crop_boxes,
    gaussian_blur,
    grayscale,
    resize_to,
    resized_crop,
)

OFF = dict(scale=(1.0, 1.0), ratio=(1.0, 1.0), flip_p=0.0, jitter_p=0.0, grayscale_p=0.0, blur_p=0.0)


def images(b: int, c: int, h: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(b, c, h, h, generator=torch.Generator().manual_seed(seed))


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("c,h,size", [(1, 8, 32), (1, 28, 32), (3, 32, 32), (3, 32, 16)])
def test_shape_range_and_determinism(c, h, size):
    aug = SimCLRAugment(size=size, blur_p=0.5)
    x = images(12, c, h)
    a, b = aug(x, gen(7)), aug(x, gen(7))
    assert a.shape == (12, c, size, size) and a.dtype == torch.float32
    assert torch.equal(a, b)
    assert a.min() >= 0 and a.max() <= 1
    assert not torch.equal(a, aug(x, gen(8)))
    assert torch.equal(x, images(12, c, h))  # the input is left untouched


def test_random_draws_do_not_depend_on_the_images():
    aug = SimCLRAugment(size=16, blur_p=0.5)
    g1, g2 = gen(3), gen(3)
    aug(torch.zeros(9, 3, 16, 16), g1)
    aug(torch.ones(9, 3, 16, 16), g2)
    assert torch.equal(g1.get_state(), g2.get_state())


def test_everything_off_is_a_resize_and_full_flip_mirrors():
    x = images(4, 3, 32)
    torch.testing.assert_close(SimCLRAugment(size=32, **OFF)(x, gen(0)), x, atol=1e-6, rtol=0)
    y = images(4, 1, 8)
    torch.testing.assert_close(SimCLRAugment(size=32, **OFF)(y, gen(0)), resize_to(y, 32), atol=1e-6, rtol=0)
    flip = {**OFF, "flip_p": 1.0}
    torch.testing.assert_close(SimCLRAugment(size=32, **flip)(x, gen(0)), x.flip(-1), atol=1e-6, rtol=0)


def test_resized_crop_of_an_integer_box_is_torchvision_resized_crop():
    x = images(1, 3, 32)
    box = torch.tensor([[4.0, 6.0, 16.0, 20.0]])  # top, left, h, w
    ours = resized_crop(x, box, 32)
    ref = TF.resized_crop(x, 4, 6, 16, 20, [32, 32], antialias=False)
    # inside; on the outermost output pixels ours reads the image just outside the box, torchvision's edge
    torch.testing.assert_close(ours[..., 1:-1, 1:-1], ref[..., 1:-1, 1:-1], atol=1e-5, rtol=0)
    assert not torch.allclose(ours, ref, atol=1e-3)


def test_crop_boxes_follow_scale_and_ratio():
    boxes = crop_boxes(2000, 28, 28, (0.2, 1.0), (3 / 4, 4 / 3), gen(0), torch.device("cpu"))
    top, left, h, w = boxes.unbind(1)
    assert (
        (top >= 0).all()
        and (left >= 0).all()
        and (top + h <= 28 + 1e-4).all()
        and (left + w <= 28 + 1e-4).all()
    )
    area = h * w / 28**2
    assert area.min() >= 0.2 - 1e-5 and area.max() <= 1 + 1e-5
    ratio = w / h
    assert ratio.min() >= 3 / 4 - 1e-5 and ratio.max() <= 4 / 3 + 1e-5
    assert area.std() > 0.1  # really random
    # a scale no candidate can fit (wide crops of > 100%): the whole image
    whole = crop_boxes(5, 10, 10, (1.0, 1.0), (2.0, 3.0), gen(0), torch.device("cpu"))
    torch.testing.assert_close(whole, torch.tensor([[0.0, 0.0, 10.0, 10.0]] * 5))


@pytest.mark.parametrize(
    "ours,theirs,factor",
    [
        (adjust_brightness, TF.adjust_brightness, 1.3),
        (adjust_contrast, TF.adjust_contrast, 0.6),
        (adjust_saturation, TF.adjust_saturation, 1.4),
        (adjust_hue, TF.adjust_hue, 0.08),
        (adjust_hue, TF.adjust_hue, -0.1),
    ],
)
def test_colour_ops_match_torchvision(ours, theirs, factor):
    x = images(3, 3, 10, seed=5)
    out = ours(x.clone(), torch.full((3,), factor))
    ref = torch.stack([theirs(img, factor) for img in x])
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)


def test_grey_images_skip_saturation_hue_and_grayscale():
    x = images(4, 1, 8)
    f = torch.full((4,), 1.5)
    assert torch.equal(adjust_saturation(x, f), x) and torch.equal(adjust_hue(x, f * 0.1), x)
    aug = SimCLRAugment(size=8, **{**OFF, "grayscale_p": 1.0})
    torch.testing.assert_close(aug(x, gen(0)), x, atol=1e-6, rtol=0)


def test_grayscale_gives_equal_channels_of_luma():
    x = images(5, 3, 8)
    out = SimCLRAugment(size=8, **{**OFF, "grayscale_p": 1.0})(x, gen(0))
    torch.testing.assert_close(out, grayscale(x).expand_as(x), atol=1e-6, rtol=0)
    torch.testing.assert_close(grayscale(x)[:, 0], TF.rgb_to_grayscale(x)[:, 0], atol=1e-6, rtol=0)


def test_gaussian_blur_keeps_constants_and_matches_torchvision():
    flat = torch.full((2, 3, 9, 9), 0.3)
    torch.testing.assert_close(gaussian_blur(flat, torch.tensor([0.5, 2.0]), 5), flat)
    x = images(2, 3, 16)
    out = gaussian_blur(x, torch.tensor([0.7, 1.5]), 5)
    ref = torch.stack([TF.gaussian_blur(x[i], [5, 5], [s, s]) for i, s in enumerate((0.7, 1.5))])
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)


def test_bad_settings_and_uint8_input_raise():
    with pytest.raises(ValueError, match="scale"):
        SimCLRAugment(size=8, scale=(0.5, 0.2))
    with pytest.raises(ValueError, match="flip_p"):
        SimCLRAugment(size=8, flip_p=1.5)
    with pytest.raises(TypeError, match="uint8"):
        SimCLRAugment(size=8)(torch.zeros(2, 1, 8, 8, dtype=torch.uint8), gen(0))
