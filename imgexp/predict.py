"""`python -m imgexp.predict`: the documented command; the tool is imgexp.tools.predict."""

import sys

from imgexp.tools.predict import main

if __name__ == "__main__":
    sys.exit(main())
