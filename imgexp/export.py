"""`python -m imgexp.export`: the documented command; the tool is imgexp.tools.export."""

import sys

from imgexp.tools.export import main

if __name__ == "__main__":
    sys.exit(main())
