"""OSV dump files (all.zip: one <ID>.json per record): read them into dicts, write small ones."""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

__all__ = ["load_records", "all_zip_bytes", "iter_dump", "iter_dump_files"]


def iter_dump_files(source: str | os.PathLike[str] | bytes | IO[bytes]
                    ) -> Iterator[tuple[int, str, bytes]]:
    """(total, file name, raw JSON) for each record file of an all.zip (path, bytes or file) or a
    directory of <ID>.json files."""
    if not isinstance(source, bytes | bytearray) and not hasattr(source, "read") \
            and Path(source).is_dir():
        paths = sorted(Path(source).glob("*.json"))
        for path in paths:
            yield len(paths), path.name, path.read_bytes()
        return
    if isinstance(source, bytes | bytearray):
        source = io.BytesIO(source)
    with zipfile.ZipFile(source) as archive:
        names = [n for n in archive.namelist() if n.endswith(".json")]
        for name in names:
            yield len(names), name, archive.read(name)


def iter_dump(source: str | os.PathLike[str] | bytes | IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """(total, raw JSON) for each record file of an all.zip (path, bytes or file) or a directory."""
    for total, _, raw in iter_dump_files(source):
        yield total, raw


def load_records(source: str | os.PathLike[str] | bytes | IO[bytes]) -> dict[str, dict[str, Any]]:
    """{id: record} from an OSV all.zip (path, bytes or file) or a directory of <ID>.json files."""
    records: dict[str, dict[str, Any]] = {}
    for _, raw in iter_dump(source):
        record = json.loads(raw)
        records[record["id"]] = record
    return records


def all_zip_bytes(records: Iterable[Mapping[str, Any]]) -> bytes:
    """An OSV all.zip (one <ID>.json per record) in memory: for mirror tests and small fixtures."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for record in records:
            archive.writestr(f"{record['id']}.json", json.dumps(record, sort_keys=True))
    return buffer.getvalue()
