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
