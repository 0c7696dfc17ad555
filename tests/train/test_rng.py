"""One seed gives every random stream; their saved state puts each back exactly."""

import random

import numpy as np
import torch

from smallvision.train.rng import rng_state, seed_everything, set_rng_state


def draws(gen):
    return (
        torch.rand(3).tolist(),
        torch.rand(3, generator=gen).tolist(),
        np.random.rand(3).tolist(),
        [random.random() for _ in range(3)],
    )


def test_the_same_seed_gives_the_same_draws_from_every_stream():
    first = draws(seed_everything(7))
    torch.rand(10), np.random.rand(10), random.random()  # whatever ran in between
    assert draws(seed_everything(7)) == first
    other = draws(seed_everything(8))
    assert all(a != b for a, b in zip(first, other, strict=True))


def test_a_saved_state_puts_every_stream_back():
    gen = seed_everything(3)
    draws(gen)
    state = rng_state(gen)
    expected = draws(gen)
    fresh = seed_everything(99)
    set_rng_state(fresh, state)
    assert draws(fresh) == expected


def test_negative_and_large_seeds_are_accepted():
    assert draws(seed_everything(-1)) == draws(seed_everything(-1))
    assert draws(seed_everything(2**40)) == draws(seed_everything(2**40))
