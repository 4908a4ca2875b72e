"""profile_imports: what importing each module costs, as a tree, measured in a fresh interpreter.

Each module is imported in its own `python -X importtime` subprocess, so nothing already imported
here skews the numbers. The interpreter's stderr is parsed into a tree of (module, self_us,
cumulative_us, children), and the subprocess reports its RSS after the import; a baseline
interpreter that imports nothing gives the RSS the module added.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ImportNode", "ImportProfile", "parse_importtime", "profile_imports", "render_text"]

_MARK = "--scancache-profile-start--"
# Runs in the child: mark where our import starts in stderr, import, print RSS (bytes) on stdout.
_CHILD_CODE = """
import sys
sys.stderr.write({mark!r} + "\\n"); sys.stderr.flush()
{body}
def _rss():
    try:
        import os
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except Exception:
        pass
    try:
        import resource
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024
    except Exception:
        return -1
print(_rss())
"""


@dataclass
class ImportNode:
    """One module in an import tree: its own time, time including children, and its children."""

    module: str
    self_us: int
    cumulative_us: int
    children: list[ImportNode] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A plain nested dict (JSON-ready)."""
        return {"module": self.module, "self_us": self.self_us, "cumulative_us": self.cumulative_us,
                "children": [child.to_dict() for child in self.children]}


@dataclass
class ImportProfile:
    """The cost of importing one module in a fresh interpreter."""

    module: str
    ok: bool
    total_us: int = 0
    rss_mb: float | None = None
    rss_delta_mb: float | None = None
    tree: list[ImportNode] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A plain nested dict (JSON-ready)."""
        return {"module": self.module, "ok": self.ok, "total_us": self.total_us, "rss_mb": self.rss_mb,
                "rss_delta_mb": self.rss_delta_mb, "error": self.error,
                "tree": [node.to_dict() for node in self.tree]}


def parse_importtime(stderr: str) -> list[ImportNode]:
    """Parse `-X importtime` lines into root nodes (lines that are not importtime are ignored).

    The interpreter prints a module after its children, indented two spaces per level, so a line
    at depth d adopts the pending lines deeper than d that precede it.
    """
    pending: list[tuple[int, ImportNode]] = []
    for line in stderr.splitlines():
        if not line.startswith("import time:"):
            continue
        parts = line[len("import time:"):].split("|")
        if len(parts) != 3 or not parts[0].strip().isdigit():
            continue  # the header line
        label = parts[2]
        stripped = label.lstrip(" ")
        depth = (len(label) - len(stripped) - 1) // 2
        node = ImportNode(stripped.strip(), int(parts[0]), int(parts[1]))
        children: list[ImportNode] = []
        while pending and pending[-1][0] > depth:
            children.append(pending.pop()[1])
        node.children = children[::-1]
        pending.append((depth, node))
    return [node for _, node in pending]


def _run_child(body: str, python: str, env: dict[str, str], timeout: float) -> tuple[int, str, str]:
    code = _CHILD_CODE.format(mark=_MARK, body=body)
    done = subprocess.run([python, "-X", "importtime", "-c", code], capture_output=True, text=True,
                          env=env, timeout=timeout, check=False)
    return done.returncode, done.stdout, done.stderr


def _rss_mb(stdout: str) -> float | None:
    lines = stdout.strip().splitlines()
    try:
        value = int(lines[-1])
    except (IndexError, ValueError):
        return None
    return None if value < 0 else round(value / (1024 * 1024), 2)


def profile_imports(modules: Iterable[str], *, python: str | None = None,
                    extra_paths: Sequence[str] = (), timeout: float = 60.0) -> list[ImportProfile]:
    """Import each module in a fresh `python -X importtime` and return its cost tree and RSS.

    python: interpreter to use (default: this one); extra_paths: prepended to PYTHONPATH. Cost:
    one interpreter start per module plus one baseline (tens of ms each). A module that fails to
    import gives ok=False and the error's last line; a subprocess timeout raises
    subprocess.TimeoutExpired.
    """
    python = python or sys.executable
    env = dict(os.environ)
    if extra_paths:
        env["PYTHONPATH"] = os.pathsep.join([*extra_paths, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    _, base_out, _ = _run_child("pass", python, env, timeout)
    baseline_mb = _rss_mb(base_out)
    profiles = []
    for name in modules:
        code, out, err = _run_child(f"import {name}", python, env, timeout)
        tail = err.split(_MARK, 1)[-1]
        if code != 0:
            last = [ln for ln in tail.strip().splitlines() if not ln.startswith("import time:")]
            profiles.append(ImportProfile(name, False, error=last[-1] if last else f"exit code {code}"))
            continue
        tree = parse_importtime(tail)
        rss = _rss_mb(out)
        delta = round(rss - baseline_mb, 2) if rss is not None and baseline_mb is not None else None
        profiles.append(ImportProfile(name, True, sum(n.cumulative_us for n in tree), rss, delta, tree))
    return profiles


def render_text(profiles: Iterable[ImportProfile], *, max_depth: int = 3, min_us: int = 1000) -> str:
    """Indented text of each profile's tree (nodes under `min_us` cumulative are summarised)."""
    lines: list[str] = []

    def walk(node: ImportNode, depth: int) -> None:
        lines.append(f"{'  ' * depth}{node.module:<{max(1, 48 - 2 * depth)}} "
                     f"{node.cumulative_us / 1000:9.1f} ms  (self {node.self_us / 1000:.1f} ms)")
        if depth + 1 >= max_depth:
            return
        small = [child for child in node.children if child.cumulative_us < min_us]
        for child in node.children:
            if child.cumulative_us >= min_us:
                walk(child, depth + 1)
        if small:
            total = sum(child.cumulative_us for child in small)
            lines.append(f"{'  ' * (depth + 1)}... {len(small)} more under {min_us / 1000:g} ms each, "
                         f"{total / 1000:.1f} ms in all")

    for profile in profiles:
        if not profile.ok:
            lines.append(f"{profile.module}: import failed: {profile.error}")
            continue
        memory = "" if profile.rss_mb is None else f", RSS {profile.rss_mb:.1f} MB"
        if profile.rss_delta_mb is not None:
            memory += f" (+{profile.rss_delta_mb:.1f} MB)"
        lines.append(f"{profile.module}: {profile.total_us / 1000:.1f} ms{memory}")
        for node in profile.tree:
            walk(node, 1)
    return "\n".join(lines)
