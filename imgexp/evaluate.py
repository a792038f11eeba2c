"""`python -m imgexp.evaluate`: the documented command; the tool is imgexp.tools.evaluate."""

import sys

from imgexp.tools.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
