"""Where archives live: a local folder or any S3-compatible store, through obstore (one async API for both).

STATEMGR_ARCHIVE_URL chooses: `file:///var/lib/statemgr/archive` (a plain path works too), or
`s3://bucket/prefix`, with credentials and region from the usual AWS_* variables (or the instance's role) and
STATEMGR_ARCHIVE_S3_ENDPOINT for a store other than AWS (MinIO, Ceph, ...). Every failure of the store (refused,
timed out, denied) surfaces as ArchiveUnavailable: the job stops that tenant's batch and keeps its rows.

Layout: `tenant=<tenant id>/date=<YYYY-MM-DD>/<table>/<batch id>.parquet` (the date the batch was archived, UTC),
so a query engine reads the directories as partitions (tenant, date) and each table as one dataset.
"""

from __future__ import annotations

import datetime as dt
import pathlib
import urllib.parse
import uuid
from typing import Any

import obstore
from obstore.store import ObjectStore, from_url

from statemgr.config import Settings


class ArchiveUnavailable(Exception):
    """The archive store could not be reached or refused the request."""


def object_key(tenant_id: uuid.UUID, archive_date: dt.date, table: str, batch_id: uuid.UUID) -> str:
    return f"tenant={tenant_id}/date={archive_date.isoformat()}/{table}/{batch_id}.parquet"


def normalized_url(url: str) -> str:
    """`url` with a plain path turned into a file:// URL of the absolute path."""
    if urllib.parse.urlparse(url).scheme:
        return url
    return pathlib.Path(url).expanduser().resolve().as_uri()


class ArchiveStore:
    """Objects by key under the configured URL. Built without I/O; the client is made on first use."""

    def __init__(self, url: str, s3_endpoint: str = "", timeout_seconds: float = 30.0) -> None:
        self.url = normalized_url(url)
        self._s3_endpoint = s3_endpoint
        self._timeout = dt.timedelta(seconds=timeout_seconds)
        self._store: ObjectStore | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> ArchiveStore:
        return cls(settings.archive_url, settings.archive_s3_endpoint, settings.archive_timeout_seconds)

    async def put(self, key: str, data: bytes) -> None:
        try:
            await obstore.put_async(self._client(), key, data)
        except Exception as exc:
            raise ArchiveUnavailable(f"cannot write {key}: {_first_line(exc)}") from exc

    async def get(self, key: str) -> bytes:
        try:
            result = await obstore.get_async(self._client(), key)
            return bytes(await result.bytes_async())
        except Exception as exc:
            raise ArchiveUnavailable(f"cannot read {key}: {_first_line(exc)}") from exc

    async def delete(self, key: str) -> None:
        """Deletes `key`; a key that is already gone is not an error."""
        try:
            await obstore.delete_async(self._client(), key)
        except FileNotFoundError:
            return
        except Exception as exc:
            raise ArchiveUnavailable(f"cannot delete {key}: {_first_line(exc)}") from exc

    async def keys(self, prefix: str = "") -> list[str]:
        """Every key under `prefix` (tests and operators; the job itself goes by the manifest in PostgreSQL)."""
        try:
            listed = await obstore.list(self._client(), prefix or None).collect_async()
        except Exception as exc:
            raise ArchiveUnavailable(f"cannot list {prefix!r}: {_first_line(exc)}") from exc
        return sorted(str(entry["path"]) for entry in listed)

    def _client(self) -> ObjectStore:
        if self._store is None:
            self._store = self._build()
        return self._store

    def _build(self) -> ObjectStore:
        scheme = urllib.parse.urlparse(self.url).scheme
        if scheme == "file":
            return from_url(self.url, mkdir=True)
        connect_timeout = min(self._timeout, dt.timedelta(seconds=5))
        options: dict[str, Any] = {
            "client_options": {"timeout": self._timeout, "connect_timeout": connect_timeout},
            "retry_config": {"max_retries": 2, "retry_timeout": self._timeout},
        }
        if scheme in ("s3", "s3a") and self._s3_endpoint:
            options["endpoint"] = self._s3_endpoint
            if self._s3_endpoint.startswith("http://"):
                options["client_options"]["allow_http"] = True
        return from_url(self.url, **options)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
