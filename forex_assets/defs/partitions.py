import dagster as dg

from forex_assets.core.horizons import HORIZONS

horizon_partitions = dg.StaticPartitionsDefinition(list(HORIZONS))
