"""Every registered augmentation against one contract, then each op's own effect."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from smallvision.data.augment.affine import AffineAugmentation, apply_affine
from smallvision.data.augment.base import KINDS, MaskingAugmentation
from smallvision.data.augment.pipeline import Pipeline, build_augment
from smallvision.errors import UserError
from smallvision.registry import AUGMENTATIONS

NAMES = AUGMENTATIONS.list()


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def batch(b: int = 8, c: int = 1, h: int = 12, w: int = 12, seed: int = 1) -> torch.Tensor:
    return torch.rand(b, c, h, w, generator=gen(seed))


def op(name: str, **params):
    return build_augment({name: params}).ops[0]


# ---------------------------------------------------------------- the contract


def test_the_issue_s_augmentations_are_registered():
    expected = {
        "rotate",
        "shift",
        "zoom",
        "shear",
        "brightness",
        "contrast",
        "hflip",
        "vflip",
        "crop",
        "noise",
    }
    assert expected | {"mask_pixels", "mask_patches", "permute"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("shape", [(8, 1, 12, 12), (3, 3, 10, 14), (1, 1, 7, 7)])
def test_contract(name, shape):
    aug = op(name)
    assert aug.kind in KINDS
    x = torch.rand(shape, generator=gen(5))
    before = x.clone()
    y = aug(x, gen(2))
    assert y.shape == x.shape and y.dtype == x.dtype
    assert torch.equal(x, before), "augmentations never modify their input"
    assert torch.isfinite(y).all() and y.min() >= 0 and y.max() <= 1
    assert torch.equal(y, aug(x, gen(2))), "same generator seed, same output"
    if "p" in aug.__dataclass_fields__:
        assert torch.equal(op(name, p=0.0)(x, gen(2)), x), "p=0 leaves every image alone"


@pytest.mark.parametrize("name", NAMES)
def test_contract_float64_and_pipeline_agree(name):
    x = batch().double()
    y = op(name)(x, gen(3))
    assert y.dtype == torch.float64
    assert torch.allclose(Pipeline([op(name)])(x, gen(3)), y)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("name", NAMES)
def test_cuda_batches_match_cpu(name):
    x = batch()
    y_cpu = op(name)(x, gen(4))
    y_gpu = op(name)(x.cuda(), gen(4))
    assert y_gpu.device.type == "cuda"
    assert torch.allclose(y_gpu.cpu(), y_cpu, atol=1e-5)


# ---------------------------------------------------------------- identity at zero strength


@pytest.mark.parametrize(
    "name, params",
    [
        ("rotate", {"degrees": 0}),
        ("shift", {"fraction": 0}),
        ("zoom", {"amount": 0}),
        ("shear", {"amount": 0}),
        ("brightness", {"amount": 0}),
        ("contrast", {"amount": 0}),
        ("noise", {"std": 0}),
        ("mask_pixels", {"ratio": 0}),
        ("mask_patches", {"ratio": 0}),
        ("crop", {"padding": 0}),
        ("hflip", {"p": 0}),
        ("vflip", {"p": 0}),
    ],
)
def test_zero_strength_is_identity(name, params):
    x = batch()
    assert torch.allclose(op(name, **params)(x, gen()), x, atol=1e-6)


# ---------------------------------------------------------------- geometric


def test_grid_matches_torch_affine_grid():
    x = batch(6, 2, 9, 11)
    mats = torch.eye(3).repeat(6, 1, 1)
    mats[:, :2, :] += 0.2 * torch.randn(6, 2, 3, generator=gen(7))
    ref = F.grid_sample(
        x, F.affine_grid(mats[:, :2], list(x.shape), align_corners=False), align_corners=False
    )
    assert torch.allclose(apply_affine(x, mats), ref, atol=1e-5)


def test_known_matrices_move_pixels_exactly():
    x = batch(2, 1, 8, 8)
    quarter = torch.tensor([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]]).repeat(2, 1, 1)
    assert torch.allclose(apply_affine(x, quarter), torch.rot90(x, 1, dims=(2, 3)), atol=1e-5)
    shift = torch.eye(3).repeat(2, 1, 1)
    shift[:, 0, 2] = -2 * 2 / 8  # output column j reads input column j - 2: content moves right by 2
    moved = apply_affine(x, shift)
    assert torch.allclose(moved[..., 2:], x[..., :-2], atol=1e-5) and moved[..., :2].abs().max() < 1e-6


def test_affine_runs_are_fused_into_one_resampling():
    x = batch()
    ops = [
        op("rotate", degrees=30),
        op("shift", fraction=0.2),
        op("zoom", amount=0.2),
        op("shear", amount=0.3),
    ]
    g = gen(9)
    mats = [o.matrix(len(x), g) for o in ops]
    expected = apply_affine(x, mats[0] @ mats[1] @ mats[2] @ mats[3])
    assert torch.allclose(Pipeline(ops)(x, gen(9)), expected, atol=1e-6)


def test_rotation_keeps_a_centred_blob_and_moves_an_off_centre_one():
    yy, xx = torch.meshgrid(torch.arange(21.0), torch.arange(21.0), indexing="ij")
    centred = torch.exp(-((yy - 10) ** 2 + (xx - 10) ** 2) / 8).expand(64, 1, 21, 21)
    rotate = op("rotate", degrees=90)
    assert (rotate(centred, gen()) - centred).abs().max() < 0.05  # a round blob looks the same at any angle
    off = torch.exp(-((yy - 10) ** 2 + (xx - 16) ** 2) / 2).expand(64, 1, 21, 21)  # 6 px right of centre
    y = rotate(off, gen())
    w = y[:, 0] / y[:, 0].sum(dim=(1, 2), keepdim=True)
    cy, cx = (w * yy).sum(dim=(1, 2)) - 10, (w * xx).sum(dim=(1, 2)) - 10
    assert torch.allclose(torch.hypot(cy, cx), torch.full((64,), 6.0), atol=0.2)  # same distance from centre
    angles = torch.atan2(cy, cx) * 180 / math.pi
    assert angles.abs().max() <= 90.5 and angles.std() > 30  # spread over [-90, 90]


def test_p_chooses_images():
    x = batch(400)
    touched = (op("shift", fraction=0.3, p=0.5)(x, gen()) != x).flatten(1).any(1).float().mean()
    assert 0.4 < touched < 0.6


@pytest.mark.parametrize("name, dim", [("hflip", -1), ("vflip", -2)])
def test_flip_twice_is_identity(name, dim):
    x = batch()
    flip = op(name, p=1.0)
    assert torch.equal(flip(x, gen()), x.flip(dim))
    assert torch.equal(flip(flip(x, gen()), gen()), x)
    half = (op(name)(batch(400), gen()) != batch(400)).flatten(1).any(1).float().mean()
    assert 0.4 < half < 0.6  # default p = 0.5


def test_crop_is_an_integer_shift_with_black_padding():
    x = batch(16, 2, 10, 10) + 0.01  # no zero pixels, so padding is visible
    pad = 3
    y = op("crop", padding=pad)(x, gen())
    xp = F.pad(x, (pad,) * 4)
    windows = torch.stack([xp[:, :, i : i + 10, j : j + 10] for i in range(7) for j in range(7)], 1)
    matches = (windows == y[:, None]).flatten(2).all(2)  # (B, 49): which offset each image took
    assert matches.any(1).all()
    assert matches[:, 3 * 7 + 3].float().mean() < 0.5  # not all centred


def test_permutation_is_a_fixed_bijection_identical_across_images():
    perm = op("permute", seed=11)
    values = torch.arange(2 * 6 * 5, dtype=torch.float32).view(1, 2, 6, 5).repeat(3, 1, 1, 1)
    y = perm(values, gen(0))
    assert torch.equal(y[0], y[1]) and torch.equal(y[1], y[2])  # same permutation for every image
    assert torch.equal(perm(values, gen(99)), y)  # and every call, whatever the generator
    for c in range(2):  # a bijection of positions, the same in every channel
        assert torch.equal(y[0, c].flatten().sort().values, values[0, c].flatten())
        assert torch.equal(y[0, c].flatten() - 30 * c, y[0, 0].flatten())
    assert not torch.equal(y, values)
    assert not torch.equal(op("permute", seed=12)(values, gen()), y)
    p = perm.permutation(6, 5)
    assert torch.equal(y[0, 0].flatten(), values[0, 0].flatten()[p])
    assert perm.at_eval and perm.kind == "geometric"


# ---------------------------------------------------------------- photometric


def test_brightness_scales_each_image_by_one_factor_in_range():
    x = batch() * 0.5 + 0.25
    y = op("brightness", amount=0.2)(x, gen())
    ratio = (y / x).flatten(1)
    assert torch.allclose(ratio, ratio[:, :1].expand_as(ratio), atol=1e-5)
    assert ratio.min() >= 0.8 - 1e-6 and ratio.max() <= 1.2 + 1e-6 and ratio[:, 0].std() > 0


def test_contrast_keeps_each_image_mean():
    x = batch() * 0.2 + 0.4
    y = op("contrast", amount=0.5)(x, gen())
    assert torch.allclose(y.mean(dim=(1, 2, 3)), x.mean(dim=(1, 2, 3)), atol=1e-5)
    spread = y.std(dim=(1, 2, 3)) / x.std(dim=(1, 2, 3))
    assert spread.min() >= 0.5 - 1e-4 and spread.max() <= 1.5 + 1e-4


# ---------------------------------------------------------------- corruption


def test_noise_std_and_clipping():
    x = torch.full((64, 1, 32, 32), 0.5)
    y = op("noise", std=0.05)(x, gen())
    assert abs(float((y - x).std()) - 0.05) < 0.002 and abs(float((y - x).mean())) < 0.002
    raw = op("noise", std=1.0, clip=False)(x, gen())
    assert raw.min() < 0 and raw.max() > 1 and abs(float((raw - x).std()) - 1.0) < 0.03
    assert op("noise", std=1.0)(x, gen()).min() >= 0


@pytest.mark.parametrize("ratio", [0.2, 0.4, 0.6, 0.8])
def test_pixel_masking_hides_exactly_the_ratio(ratio):
    x = batch(32, 3, 28, 28) + 0.01
    y, mask = Pipeline([op("mask_pixels", ratio=ratio)]).masked(x, gen())
    assert mask.shape == (32, 1, 28, 28) and mask.dtype == torch.bool
    assert (mask.flatten(1).sum(1) == round(ratio * 784)).all()
    assert (y[mask.expand_as(y)] == 0).all() and torch.equal(y[~mask.expand_as(y)], x[~mask.expand_as(x)])
    assert mask.float().mean(0).std() < 0.2  # different pixels in different images


@pytest.mark.parametrize("ratio, patch", [(0.25, 4), (0.5, 7), (0.75, 5)])
def test_patch_masking_hides_whole_patches_near_the_ratio(ratio, patch):
    x = batch(16, 1, 28, 28) + 0.01
    y, mask = Pipeline([op("mask_patches", ratio=ratio, patch=patch, value=0.5)]).masked(x, gen())
    share = mask.float().mean(dim=(1, 2, 3))
    assert (share - ratio).abs().max() < 0.1
    blocks = (
        F.pad(mask.float(), (0, -28 % patch, 0, -28 % patch)).unfold(2, patch, patch).unfold(3, patch, patch)
    )
    first = blocks.flatten(-2)[..., :1]
    cut = 28 // patch  # whole patches only (the last row and column may be cut short)
    assert torch.equal(
        blocks.flatten(-2)[:, :, :cut, :cut], first[:, :, :cut, :cut].expand(-1, -1, -1, -1, patch * patch)
    )
    assert (y[mask] == 0.5).all()


# ---------------------------------------------------------------- the pipeline


def test_split_keeps_order_and_separates_corruption():
    spec = {"rotate": {}, "noise": {}, "hflip": {}, "mask_pixels": {}, "brightness": {}, "permute": {}}
    pipe = build_augment(spec)
    clean, corrupt = pipe.split()
    assert [type(o).__name__ for o in clean.ops] == ["Rotate", "HorizontalFlip", "Brightness", "Permute"]
    assert [type(o).__name__ for o in corrupt.ops] == ["GaussianNoise", "MaskPixels"]
    assert all(o.kind != "corruption" for o in clean.ops) and all(o.kind == "corruption" for o in corrupt.ops)
    assert [type(o).__name__ for o in pipe.eval_pipeline().ops] == ["Permute"]
    assert len(Pipeline([clean, corrupt])) == len(pipe)  # nested pipelines flatten


def test_masked_returns_the_union_of_the_masks():
    x = batch()
    y, mask = build_augment({"rotate": {}, "noise": {}}).masked(x, gen())
    assert mask is None and y.shape == x.shape
    assert Pipeline([]).masked(x, gen()) == (x, None)
    two = Pipeline([op("mask_pixels", ratio=0.3), op("mask_patches", ratio=0.3, patch=3)])
    y, mask = two.masked(x + 0.01, gen())
    assert torch.equal(mask, y == 0) and mask.float().mean() > 0.3  # the union of both masks
    assert isinstance(two.ops[0], MaskingAugmentation)
    y2, mask2 = Pipeline([op("mask_pixels", p=0.0)]).masked(x, gen())
    assert torch.equal(y2, x) and not mask2.any()


def test_clean_then_corruption_equals_the_whole_pipeline():
    pipe = build_augment({"rotate": {}, "shift": {}, "noise": {}, "mask_pixels": {}})
    clean, corrupt = pipe.split()
    x = batch()
    g = gen(3)
    staged = corrupt(clean(x, g), g)
    assert torch.allclose(staged, pipe(x, gen(3)), atol=1e-6)


def test_affine_subclass_contract():
    for name in ("rotate", "shift", "zoom", "shear"):
        aug = op(name)
        assert isinstance(aug, AffineAugmentation) and aug.matrix(5, gen()).shape == (5, 3, 3)


# ---------------------------------------------------------------- configuration errors


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"rotat": {}}, "unknown augmentation 'rotat'; did you mean 'rotate'"),
        (
            {"rotate": {"degree": 10}},
            r"data.augment.rotate.degree: unknown parameter; did you mean 'degrees'",
        ),
        (
            {"rotate": {"degrees": 400}},
            r"data.augment.rotate.degrees: expected a number in \[0, 180\], got 400",
        ),
        ({"hflip": {"p": 1.5}}, r"data.augment.hflip.p: expected a number in \[0, 1\]"),
        ({"mask_pixels": {"ratio": "half"}}, r"data.augment.mask_pixels.ratio: expected a number"),
        ({"mask_patches": {"patch": 2.5}}, r"data.augment.mask_patches.patch: expected an integer"),
        ({"crop": {"padding": -1}}, r"data.augment.crop.padding: expected an integer in \[0, inf\]"),
        ({"noise": {"clip": "yes"}}, r"data.augment.noise.clip: expected true or false"),
        ({"zoom": 0.1}, r"data.augment.zoom: expected a mapping of parameters"),
    ],
)
def test_bad_parameters_are_user_errors_naming_the_key(spec, message):
    with pytest.raises(UserError, match=message):
        build_augment(spec)


def test_radians_are_not_degrees():
    # 0.26 rad would be a plausible mistake; degrees keep their meaning: 15 degrees stays small
    m = op("rotate", degrees=15).matrix(1000, gen())
    angles = torch.atan2(m[:, 1, 0], m[:, 0, 0]) * 180 / math.pi
    assert angles.abs().max() <= 15 + 1e-4 and angles.abs().max() > 14


def test_empty_pipeline_is_a_no_op_that_draws_nothing():
    x, g = batch(), gen()
    state = g.get_state()
    assert Pipeline()(x, g) is x and len(Pipeline()) == 0
    assert torch.equal(g.get_state(), state)
    clean, corrupt = Pipeline().split()
    assert len(clean) == len(corrupt) == len(Pipeline().eval_pipeline()) == 0
