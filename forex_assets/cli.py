"""`forex-assets` command line."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help"}:
        print("usage: forex-assets run [options]   (one cycle on the embedded instance; see --help)")
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "run":
        from forex_assets.cycle import main as run_main

        return run_main(rest)
    print(f"forex-assets: unknown command {command!r}; commands: run", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
