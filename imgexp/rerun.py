"""`python -m imgexp.rerun`: the documented command; the tool is imgexp.tools.rerun."""

import sys

from imgexp.tools.rerun import main

if __name__ == "__main__":
    sys.exit(main())
