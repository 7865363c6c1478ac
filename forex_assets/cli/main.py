"""`forex-assets` command line: run, status, history."""

from __future__ import annotations

import sys

USAGE = """usage: forex-assets COMMAND [options]

commands:
  run                      one cycle on the embedded instance (what `make run` does)
  status                   per horizon: deployed version, drift, performance, optimizations, alerts
  history --horizon H      deploys, rollbacks, trigger decisions and validations of one horizon
                           [--since YYYY-MM-DD] [--kind deploy rollback decision validation seed]
  replay                   the whole policy over a range of history, day by day, without look-ahead;
                           report against the ADR's success metrics (table, JSON, HTML)

Each command takes --help."""


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help"}:
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "run":
        from forex_assets.cli.run import main as run_main

        return run_main(rest)
    if command == "replay":
        from forex_assets.cli.replay import main as replay_main

        return replay_main(rest)
    if command in {"status", "history"}:
        from forex_assets.cli.operator import main as operator_main

        return operator_main(command, rest)
    print(f"forex-assets: unknown command {command!r}; commands: run, status, history, replay", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
