"""`vivim-studio`: the review app (GUI) and its headless commands."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    print("vivim-studio: the review GUI is not part of this build yet; use `vivim-core` for the model.",
          file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
