"""The ``reviewd`` command line (placeholder until the daemon issue fills it)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "devserver":
        from reviewd.devserver.cli import main as devserver_main

        return devserver_main(argv[1:])
    if argv and argv[0] == "--version":
        from reviewd import __version__

        sys.stdout.write(f"reviewd {__version__}\n")
        return 0
    sys.stderr.write("reviewd: the daemon is not built yet; only 'reviewd devserver' works.\n")
    return 78


if __name__ == "__main__":
    sys.exit(main())
