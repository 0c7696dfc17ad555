"""The contract every registered builtin dataset keeps (a new builtin is checked by existing)."""

import pytest
import torch

from smallvision.data.load import load_source
from smallvision.registry import BUILTINS


@pytest.mark.parametrize("name", BUILTINS.list())
def test_builtin_contract(name):
    data = load_source(f"builtin:{name}", seed=0)
    n, c, h, w = data.images.shape
    assert n > 0 and c in (1, 3) and min(h, w) >= 8
    assert data.images.dtype in (torch.uint8, torch.float32)
    for target, values in data.targets.items():
        info = data.info[target]
        if info.kind == "classification":
            assert values.dtype == torch.int64
            assert int(values.min()) >= 0 and int(values.max()) < info.num_classes
            assert len(torch.unique(values)) == info.num_classes, "every declared class occurs"
        else:
            assert values.dtype == torch.float32 and bool(torch.isfinite(values).all())
    again = load_source(f"builtin:{name}", seed=0)
    assert again.fingerprint() == data.fingerprint(), "same seed, same data"
