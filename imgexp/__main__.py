"""`python -m imgexp` runs the Hydra app."""

from imgexp.app import main

main()
