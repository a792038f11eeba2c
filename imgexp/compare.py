"""`python -m imgexp.compare`: the documented command; the tool is imgexp.tools.compare."""

import sys

from imgexp.tools.compare import main

if __name__ == "__main__":
    sys.exit(main())
