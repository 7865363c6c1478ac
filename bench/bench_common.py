"""What every benchmark shares, light to import (no torch): the machine line, the section writer of
results.md, and a child environment free of the developer's settings."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results.md"


def replace_section(start: str, end: str, text: str) -> None:
    """Write ``text`` (which starts with ``start`` and ends with ``end``) into results.md in place of the
    section between those markers, or at the end when it is not there yet."""
    old = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    if start in old:
        old = old[: old.index(start)] + old[old.index(end) + len(end) :].lstrip("\n")
    RESULTS.write_text(old.rstrip("\n") + "\n\n" + text)


def machine() -> str:
    """CPU model, cores, memory, Python (and torch, when the benchmark loaded it)."""
    cpu, memory = "unknown CPU", ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        kib = next(
            int(x.split()[1]) for x in Path("/proc/meminfo").read_text().splitlines() if x.startswith("MemTotal")
        )
        memory = f", {kib / 1024 / 1024:.1f} GiB memory"
    except (OSError, StopIteration):
        pass
    torch = sys.modules.get("torch")
    version = f", torch {torch.__version__}" if torch is not None else ""
    return f"{cpu}, nproc {os.cpu_count()}{memory}, Python {platform.python_version()}{version}"


def clean_environment(**settings: str) -> dict[str, str]:
    """This process's environment without any FOREX_* setting of the developer's shell (a real database, remote,
    SMTP server, cache or policy file must not reach a benchmark's children), offline, plus ``settings``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("FOREX_")}
    return base | {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"} | settings
