"""`scancache mirror import|update FILE`: keep an offline copy of an OSV all.zip dump in SQLite."""

from __future__ import annotations

import argparse
import json
import sys
import zipfile
from pathlib import Path

from scancache.cli._common import CommandError, load_settings, progress, progress_wanted
from scancache.cli._components import check_osv_dump, default_mirror_path, open_mirror

__all__ = ["run"]


def run(args: argparse.Namespace) -> int:
    """Import (or update) the mirror from FILE and print what changed as one JSON object."""
    source = check_osv_dump(Path(args.file).expanduser(), "OSV dump")
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
    for name, reason in report.skipped_files:
        sys.stderr.write(f"scancache: warning: skipped {name}: {reason}\n")
    print(json.dumps(summary))
    return 0
