"""Allow ``python -m harpagon``."""

from harpagon.cli import main

main()
