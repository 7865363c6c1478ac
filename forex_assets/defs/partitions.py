import dagster as dg

from forex_assets.horizons import HORIZONS

horizon_partitions = dg.StaticPartitionsDefinition(list(HORIZONS))
