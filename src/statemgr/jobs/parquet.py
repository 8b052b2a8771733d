"""Archived rows as Parquet: one file per table per batch, typed columns an analyst's engine reads as they are.

Columns keep their PostgreSQL meaning: uuid as string, timestamptz as timestamp[us, UTC], jsonb as its JSON text,
text[] as list<string>, integers and booleans as such. The file's metadata names the tenant, the batch, the table
and each column's PostgreSQL type, which is what a restore needs to put the rows back exactly.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import uuid
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from statemgr.jobs.archive_store import ArchiveUnavailable
from statemgr.store.lifecycle import Columns, StoredObject

_PG_TYPES = b"statemgr.pg_types"
_JSON_TYPES = frozenset({"json", "jsonb"})
_ARROW: dict[str, pa.DataType] = {
    "uuid": pa.string(),
    "text": pa.string(),
    "varchar": pa.string(),
    "timestamptz": pa.timestamp("us", tz="UTC"),
    "timestamp": pa.timestamp("us"),
    "date": pa.date32(),
    "jsonb": pa.string(),
    "json": pa.string(),
    "_text": pa.list_(pa.string()),
    "int8": pa.int64(),
    "int4": pa.int32(),
    "int2": pa.int16(),
    "bool": pa.bool_(),
    "float8": pa.float64(),
}


def encode(columns: Columns, metadata: dict[str, str]) -> bytes:
    """The rows as a Parquet file (zstd), with `metadata` and the columns' PostgreSQL types in its schema."""
    arrays = [_array([row[i] for row in columns.rows], pg_type) for i, pg_type in enumerate(columns.types)]
    meta = {key.encode(): value.encode() for key, value in metadata.items()}
    meta[_PG_TYPES] = json.dumps(dict(zip(columns.names, columns.types, strict=True))).encode()
    schema = pa.schema([pa.field(name, array.type) for name, array in zip(columns.names, arrays, strict=True)], meta)
    return write(pa.Table.from_arrays(arrays, schema=schema))


def write(table: pa.Table) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    return buffer.getvalue()


def read(data: bytes) -> pa.Table:
    return pq.read_table(pa.BufferReader(data))


def checksum(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def verified(key: str, table: str, written: bytes, read_back: bytes, rows: int) -> StoredObject:
    """The manifest entry of an object read back equal to what was written, with the expected number of rows."""
    digest = checksum(written)
    if checksum(read_back) != digest:
        raise ArchiveUnavailable(f"{key} read back differs from what was written")
    if read(read_back).num_rows != rows:
        raise ArchiveUnavailable(f"{key} read back with a different row count")
    return StoredObject(table, key, rows, len(written), digest)


def pg_types(table: pa.Table) -> dict[str, str]:
    raw = (table.schema.metadata or {}).get(_PG_TYPES, b"{}")
    return dict(json.loads(raw))


def restorable_rows(table: pa.Table, keep: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
    """The rows `keep` selects, as JSON values PostgreSQL's jsonb_populate_recordset casts back to each column."""
    json_columns = {name for name, pg_type in pg_types(table).items() if pg_type in _JSON_TYPES}
    out = []
    for row in table.to_pylist():
        if keep(row):
            out.append({name: _json_value(value, name in json_columns) for name, value in row.items()})
    return out


def _array(values: list[Any], pg_type: str) -> pa.Array:
    arrow_type = _ARROW.get(pg_type, pa.string())
    if pg_type == "uuid":
        values = [None if v is None else str(v) for v in values]
    elif pg_type in _JSON_TYPES:
        values = [None if v is None else json.dumps(v, ensure_ascii=False, separators=(",", ":")) for v in values]
    elif pg_type not in _ARROW:
        values = [None if v is None else str(v) for v in values]
    return pa.array(values, type=arrow_type)


def _json_value(value: Any, is_json: bool) -> Any:
    if value is None:
        return None
    if is_json:
        return json.loads(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value
