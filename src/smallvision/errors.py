"""Errors a user can fix: the CLI prints them as one line and exits with code 2."""


class UserError(Exception):
    """Bad input: a missing file, a wrong key or value, a corrupt image.

    The message names the file / key / value, says what was expected and, where it can,
    how to fix it. It must fit on one line.
    """
