"""Helpers that turn frames into Dagster metadata a person would rather look at than read."""

from __future__ import annotations

import math

import dagster as dg
import pandas as pd


def _column_type(series: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(series):
        return "bool"
    if pd.api.types.is_integer_dtype(series):
        return "int"
    if pd.api.types.is_float_dtype(series):
        return "float"
    return "string"


def _cell(value):
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d")
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 4)  # a missing number is shown empty, not "NaN"
    if hasattr(value, "item"):
        return value.item()
    return value


def table_metadata(frame: pd.DataFrame) -> dg.TableMetadataValue:
    columns = [
        dg.TableColumn(str(c), "string" if pd.api.types.is_datetime64_any_dtype(frame[c]) else _column_type(frame[c]))
        for c in frame.columns
    ]
    schema = dg.TableSchema(columns=columns)
    records = [dg.TableRecord({str(k): _cell(v) for k, v in row.items()}) for row in frame.to_dict("records")]
    return dg.MetadataValue.table(records=records, schema=schema)
