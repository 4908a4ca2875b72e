"""`scancache mirror import|update FILE`: keep an offline copy of an OSV all.zip dump in SQLite."""

from __future__ import annotations

import argparse
import json
import zipfile
from pathlib import Path

from scancache.cli._common import CommandError, load_settings, progress, progress_wanted
from scancache.cli._components import default_mirror_path, open_mirror

__all__ = ["run"]


def run(args: argparse.Namespace) -> int:
    """Import (or update) the mirror from FILE and print what changed as one JSON object."""
    source = Path(args.file).expanduser()
    if not source.exists():
        raise CommandError(f"OSV dump not found: {source}")
    if not source.is_dir() and not zipfile.is_zipfile(source):
        raise CommandError(f"not an OSV all.zip (nor a directory of JSON records): {source}")
    settings = load_settings(args)
    target = Path(args.mirror_db).expanduser() if args.mirror_db else default_mirror_path(settings)
    mirror = open_mirror(target, must_exist=args.action == "update")
    try:
        with progress(progress_wanted(args), f"{args.action}ing {source.name}", None) as bar:
            try:
                report = mirror.import_dump(source, progress=bar.update)
            except zipfile.BadZipFile as exc:
                raise CommandError(f"cannot read {source}: {exc}") from None
        summary = {"mirror": str(target), **report.as_dict(), "records": len(mirror)}
    finally:
        mirror.close()
    summary["seconds"] = round(summary["seconds"], 3)
    print(json.dumps(summary))
    return 0
