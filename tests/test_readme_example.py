"""README.md shows examples/mnist.yaml verbatim, so the documented default is the one that runs."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_example_block_is_the_example_file():
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"The example `examples/mnist.yaml`:\n\n```yaml\n(.*?)```", readme, re.S)
    assert block is not None, "README.md lost its examples/mnist.yaml block"
    assert block.group(1) == (ROOT / "examples" / "mnist.yaml").read_text()
