"""``python -m reviewd.examples``: print the example plugins' folder (see the package)."""

from __future__ import annotations

import sys

from reviewd.examples import plugin_path


def main() -> int:
    """Write the folder to stdout; a missing folder is one line on stderr and exit 1."""
    try:
        folder = plugin_path()
    except FileNotFoundError as exc:
        sys.stderr.write(f"reviewd.examples: {exc}\n")
        return 1
    sys.stdout.write(f"{folder}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
