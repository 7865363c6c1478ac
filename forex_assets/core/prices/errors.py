"""The price sources' error (its own module so that the CSV reader and the sources share it)."""


class PriceSourceError(RuntimeError):
    """A price source could not deliver a series; the message names the source and the cause."""
