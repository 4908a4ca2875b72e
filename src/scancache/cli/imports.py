"""`scancache imports profile MODULE...`: each module's import time and memory, as a tree."""

from __future__ import annotations

import argparse
import json

from scancache.cli._common import CommandError

__all__ = ["run"]


def _check_module_name(name: str) -> None:
    # The name ends up in `import NAME` run by a child interpreter: only dotted identifiers pass.
    if not name or not all(part.isidentifier() for part in name.split(".")):
        raise CommandError(f"bad module name {name!r} (expected a dotted name such as xml.dom)")


def run(args: argparse.Namespace) -> int:
    """Profile each module in a fresh interpreter; exit 2 if any of them fails to import."""
    for name in args.modules:
        _check_module_name(name)
    from scancache.lazyload.profile import profile_imports, render_text

    profiles = profile_imports(args.modules)
    good = [p for p in profiles if p.ok]
    if args.format == "json":
        print(json.dumps([p.to_dict() for p in profiles], indent=2))
    elif good:
        print(render_text(good, max_depth=args.depth + 1, min_us=int(args.min_ms * 1000)))
    failed = [p for p in profiles if not p.ok]
    if failed:
        detail = "; ".join(f"{p.module}: {p.error}" for p in failed)
        raise CommandError(f"cannot import {detail}")
    return 0
