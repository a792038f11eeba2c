"""Errors a user can cause and fix, reported as one line with a non-zero exit."""

import sys
from typing import NoReturn

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130  # as a shell reports a process ended by Ctrl-C (128 + SIGINT)


class UserError(Exception):
    """A problem in the config, the data or a path that the user can fix.

    The message is one line that names the key or file and says the fix.
    """


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, with where it stopped (`at epoch 5/15`, `after trial 3 of 6`) for the one line the CLI prints."""

    def __init__(self, where: str):
        super().__init__(where)
        self.where = where


def error_line(message: object, prog: str = "imgexp") -> str:
    """`prog: error: message`, folded onto one line."""
    return f"{prog}: error: {' '.join(str(message).split())}"


def exit_with(message: object) -> NoReturn:
    """Print `imgexp: error: message` on stderr and exit with EXIT_USER_ERROR."""
    print(error_line(message), file=sys.stderr)
    sys.exit(EXIT_USER_ERROR)
