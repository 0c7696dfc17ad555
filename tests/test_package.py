"""The installed package keeps the promises pyproject.toml makes about it."""

import tomllib
from pathlib import Path

import smallvision

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_data_file_pyproject_lists_exists():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["smallvision"]
    package = Path(smallvision.__file__).parent
    assert "py.typed" in patterns  # type checkers read the package's annotations (PEP 561)
    for pattern in patterns:
        assert list(package.glob(pattern)), pattern
