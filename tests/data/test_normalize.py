import numpy as np
import torch

from smallvision.data.normalize import fit_normalizer


def test_statistics_come_from_the_training_images_only():
    train = torch.full((10, 1, 4, 4), 100, dtype=torch.uint8)
    train[5:] = 200
    norm = fit_normalizer(train, "standardize")
    assert np.isclose(norm.mean[0], 150 / 255)
    assert np.isclose(norm.std[0], 50 / 255, rtol=1e-5)
    x = norm(train)
    assert abs(float(x.mean())) < 1e-5 and abs(float(x.std(unbiased=False)) - 1) < 1e-4


def test_per_channel_and_scale_modes():
    imgs = torch.zeros(4, 3, 2, 2, dtype=torch.uint8)
    imgs[:, 1] = 255
    norm = fit_normalizer(imgs, "standardize")
    assert norm.mean[0] == 0 and np.isclose(norm.mean[1], 1.0)
    scaled = fit_normalizer(imgs, "scale")
    assert scaled.mean == (0.0, 0.0, 0.0) and scaled.std == (1.0, 1.0, 1.0)
    assert float(scaled(imgs).max()) == 1.0
    floats = fit_normalizer(torch.rand(4, 1, 2, 2), "none")
    assert floats.scale == 1.0


def test_imagenet_uses_the_fixed_statistics_and_their_mean_for_grey():
    from smallvision.config import build_config
    from smallvision.data.normalize import IMAGENET_MEAN, IMAGENET_STD

    rgb = fit_normalizer(torch.randint(0, 256, (6, 3, 4, 4), dtype=torch.uint8), "imagenet")
    assert rgb.mean == (0.485, 0.456, 0.406) and rgb.std == (0.229, 0.224, 0.225)
    assert rgb.scale == 1 / 255  # the statistics are on the [0, 1] scale, not learned from the images
    grey = fit_normalizer(torch.zeros(6, 1, 4, 4, dtype=torch.uint8), "imagenet")
    assert np.isclose(grey.mean[0], np.mean(IMAGENET_MEAN)) and np.isclose(grey.std[0], np.mean(IMAGENET_STD))
    assert np.isclose(float(grey(torch.zeros(1, 1, 1, 1, dtype=torch.uint8))), -0.449 / 0.226)
    assert build_config({"data": {"normalize": "imagenet"}}).data.normalize == "imagenet"
