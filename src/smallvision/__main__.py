"""``python -m smallvision``: the same as the ``smallvision`` command (used to start study workers,
and by ``torchrun ... -m smallvision run FILE`` to start the ranks of one run)."""

from smallvision.cli import main

main()
