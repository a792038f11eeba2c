"""Errors a user can cause and fix, reported as one line with a non-zero exit."""

import sys
from typing import NoReturn

EXIT_USER_ERROR = 2


class UserError(Exception):
    """A problem in the config, the data or a path that the user can fix.

    The message is one line that names the key or file and says the fix.
    """


def exit_with(message: str) -> NoReturn:
    """Print `imgexp: error: message` on stderr and exit with EXIT_USER_ERROR."""
    one_line = " ".join(str(message).split())
    print(f"imgexp: error: {one_line}", file=sys.stderr)
    sys.exit(EXIT_USER_ERROR)
