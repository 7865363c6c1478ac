"""The drift severity levels, ordered (``Severity.MEDIUM >= Severity.LOW``). Here, apart from the detector in
``drift.py`` (numpy, scipy, river), so that what only names a level (the trigger policy, the decision log,
`forex-assets status` and `history`) loads none of them."""

from __future__ import annotations

from enum import IntEnum


class Severity(IntEnum):
    NONE = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
