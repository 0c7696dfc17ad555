"""``python -m smallvision``: the same as the ``smallvision`` command (used to start study workers)."""

from smallvision.cli import main

main()
