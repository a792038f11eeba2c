"""What the tools' command lines share: an error a user can fix is one line and exit code 2."""

import argparse
import sys
from collections.abc import Callable

from imgexp.errors import EXIT_USER_ERROR, UserError, error_line


def run_tool(prog: str, work: Callable[[], object]) -> int:
    """Run `work`: the exit code it returns (an int; anything else is 0), or EXIT_USER_ERROR
    after one `prog: error: ...` line."""
    try:
        result = work()
    except UserError as err:
        print(error_line(err, prog), file=sys.stderr)
        return EXIT_USER_ERROR
    return result if isinstance(result, int) and not isinstance(result, bool) else 0


class OneLineParser(argparse.ArgumentParser):
    """argparse, with a bad argument said in one line (argparse prints its usage first) and exit code 2."""

    def error(self, message: str):
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message} (see --help)\n")
