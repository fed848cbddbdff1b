"""enrollment-import KIND FILE: the importer as its own command (also `python -m enrollment_import`)."""

from __future__ import annotations

import argparse
import sys

from .importer import DESCRIPTION, add_arguments
from .importer import main as run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="enrollment-import", description=DESCRIPTION)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
