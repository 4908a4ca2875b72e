"""The audit policy: which findings are ignored (and why, and until when), which severities fail
the run, and which findings a baseline already knew.

Read from `[tool.scancache.audit]` in pyproject.toml or `[audit]` in scancache's config file:

    [tool.scancache.audit]
    fail-on = "high"                       # exit 1 only for findings at or above this severity
    ignore = [
      {id = "GHSA-xxxx-xxxx-xxxx", reason = "not reachable: we never parse untrusted templates",
       expires = "2027-01-31"},
      {id = "CVE-2024-1234", reason = "waiting for upstream", until-fixed = true, package = "jinja2"},
    ]

An ignore's id matches a finding's id or any of its aliases (a match through an alias says so in the
ignore's reason); an optional `package = "name"` ties it to that package. An expired ignore stops
applying and is reported; an `until-fixed` ignore stops applying once a fixed version exists; an ignore that
matches nothing is reported, so lists do not rot. Unknown severity counts as failing any gate.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from scancache.vulndb._values import FACTORY, value_methods
from scancache.vulndb.inputs.base import normalize_name
from scancache.vulndb.severity import level_rank

__all__ = ["IgnoreRule", "Policy", "PolicyOutcome", "PolicyError", "load_policy", "parse_policy",
           "load_baseline", "apply_policy", "with_cli", "FAIL_ON_LEVELS"]

FAIL_ON_LEVELS = ("low", "medium", "high", "critical")


class PolicyError(ValueError):
    """A policy that cannot be read: the message names the file and the entry."""


@value_methods(frozen=True)
@dataclass(init=False, repr=False, eq=False)  # see scancache.vulndb._values
class IgnoreRule:
    """One ignore: an advisory id (or alias), why, until when, and where it was written."""

    id: str
    reason: str = ""
    expires: _dt.date | None = None
    until_fixed: bool = False
    source: str = ""
    package: str = ""  # PEP 503 name: the ignore applies to this package only ("" for any)

    def __init__(self, id: str, reason: str = "", expires: _dt.date | None = None,
                 until_fixed: bool = False, source: str = "", package: str = "") -> None:
        self.__dict__.update(id=id, reason=reason, expires=expires, until_fixed=until_fixed,
                             source=source, package=package)  # frozen: set as dataclass sets them


@value_methods
@dataclass(init=False, repr=False, eq=False)  # see scancache.vulndb._values
class Policy:
    """Ignores, a severity gate (None: any finding fails) and baseline keys (package, id)."""

    ignores: list[IgnoreRule] = field(default_factory=list)
    fail_on: str | None = None
    baseline: set[tuple[str, str]] = field(default_factory=set)
    baseline_source: str = ""

    def __init__(self, ignores: list[IgnoreRule] = FACTORY, fail_on: str | None = None,
                 baseline: set[tuple[str, str]] = FACTORY, baseline_source: str = "") -> None:
        self.ignores = [] if ignores is FACTORY else ignores
        self.fail_on = fail_on
        self.baseline = set() if baseline is FACTORY else baseline
        self.baseline_source = baseline_source


@value_methods
@dataclass(init=False, repr=False, eq=False)  # see scancache.vulndb._values
class PolicyOutcome:
    """Findings still reported, findings ignored (finding, reason) and notes about the policy."""

    findings: list[Any]
    ignored: list[tuple[Any, str]]
    notes: list[str]

    def __init__(self, findings: list[Any], ignored: list[tuple[Any, str]], notes: list[str]) -> None:
        self.findings = findings
        self.ignored = ignored
        self.notes = notes

    def fails(self, fail_on: str | None) -> bool:
        """Whether any reported finding is at or above fail_on (any finding when None)."""
        if fail_on is None:
            return bool(self.findings)
        gate = level_rank(fail_on)
        return any(level_rank(f.severity) >= gate for f in self.findings)


def _date(value: Any, where: str) -> _dt.date | None:
    if value is None:
        return None
    if isinstance(value, _dt.datetime):
        return value.date()
    if isinstance(value, _dt.date):
        return value
    try:
        return _dt.date.fromisoformat(str(value))
    except ValueError:
        raise PolicyError(f"{where}: expires {value!r} is not a date (YYYY-MM-DD)") from None


def parse_policy(table: dict[str, Any], source: str) -> Policy:
    """A Policy from a `[tool.scancache.audit]` / `[audit]` table; PolicyError names source and entry."""
    if not isinstance(table, dict):
        raise PolicyError(f"{source}: the audit policy must be a table")
    known = {"ignore", "fail-on", "fail_on"}
    unknown = sorted(set(table) - known)
    if unknown:
        raise PolicyError(f"{source}: unknown audit policy key(s) {', '.join(unknown)} "
                          f"(known: ignore, fail-on)")
    fail_on = table.get("fail-on", table.get("fail_on"))
    if fail_on is not None and fail_on not in FAIL_ON_LEVELS:
        raise PolicyError(f"{source}: fail-on {fail_on!r} is not one of {', '.join(FAIL_ON_LEVELS)}")
    entries = table.get("ignore") or []
    if not isinstance(entries, list):
        raise PolicyError(f"{source}: ignore must be a list of {{id, reason, expires}} tables")
    rules = []
    for index, entry in enumerate(entries, 1):
        where = f"{source}: ignore[{index}]"
        if isinstance(entry, str):
            entry = {"id": entry}
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str) or not entry["id"].strip():
            raise PolicyError(f"{where}: needs an id (a string)")
        extra = sorted(set(entry) - {"id", "reason", "expires", "until-fixed", "until_fixed", "package"})
        if extra:
            raise PolicyError(f"{where}: unknown key(s) {', '.join(extra)}")
        until_fixed = entry.get("until-fixed", entry.get("until_fixed", False))
        if not isinstance(until_fixed, bool):  # "false" (a string) would be truthy
            raise PolicyError(f"{where}: until-fixed must be true or false, got {until_fixed!r}")
        package = entry.get("package")
        if package is not None and (not isinstance(package, str) or not package.strip()):
            raise PolicyError(f"{where}: package must be a package name, got {package!r}")
        rules.append(IgnoreRule(entry["id"].strip(), str(entry.get("reason") or ""),
                                _date(entry.get("expires"), where), until_fixed, where,
                                normalize_name(package.strip()) if package else ""))
    return Policy(rules, fail_on)


def load_policy(pyproject: Path | None = None, config: Path | None = None) -> Policy:
    """The policy of `[tool.scancache.audit]` in pyproject (when the file has one), then `[audit]` of
    a scancache config file (TOML or YAML); ignores of both apply, the pyproject's fail-on wins."""
    policy = Policy()
    if config is not None and config.is_file():
        table = _config_section(config)
        if table is not None:
            policy = parse_policy(table, f"{config} [audit]")
    if pyproject is not None and pyproject.is_file():
        import tomllib

        try:
            document = tomllib.loads(pyproject.read_text(encoding="utf-8-sig"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise PolicyError(f"{pyproject}: not valid TOML: {exc}") from None
        table = ((document.get("tool") or {}).get("scancache") or {}).get("audit")
        if table is not None:
            found = parse_policy(table, f"{pyproject} [tool.scancache.audit]")
            policy = Policy(policy.ignores + found.ignores, found.fail_on or policy.fail_on)
    return policy


def _config_section(path: Path) -> dict[str, Any] | None:
    text = path.read_text(encoding="utf-8-sig")
    try:
        if path.suffix.lower() == ".toml":
            import tomllib

            data = tomllib.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text) or {}
    except Exception as exc:  # TOMLDecodeError, yaml.YAMLError: one line, never a traceback
        raise PolicyError(f"{path}: cannot read the [audit] section: {exc}") from None
    return data.get("audit") if isinstance(data, dict) else None


def load_baseline(path: Path) -> set[tuple[str, str]]:
    """(PEP 503 package, id) of every finding (and each alias) in an earlier scancache JSON report
    or pip-audit JSON report; PolicyError naming the file when it is neither."""
    import json

    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError) as exc:
        raise PolicyError(f"{path}: cannot read the baseline: {exc}") from None
    keys: set[tuple[str, str]] = set()
    if isinstance(data, dict) and isinstance(data.get("vulnerabilities"), list):
        for vuln in data["vulnerabilities"]:
            for vuln_id in (vuln.get("id"), *(vuln.get("aliases") or ())):
                keys.add((normalize_name(str(vuln.get("package", ""))), str(vuln_id)))
    elif isinstance(data, dict) and isinstance(data.get("dependencies"), list):  # pip-audit's
        for dep in data["dependencies"]:
            for vuln in dep.get("vulns") or ():
                for vuln_id in (vuln.get("id"), *(vuln.get("aliases") or ())):
                    keys.add((normalize_name(str(dep.get("name", ""))), str(vuln_id)))
    else:
        raise PolicyError(f"{path}: not a scancache or pip-audit JSON report")
    return keys


def apply_policy(policy: Policy, findings: list[Any], today: _dt.date | None = None) -> PolicyOutcome:
    """Split findings into reported and ignored by the policy, with notes on expired, outdated and
    unused ignores."""
    if not policy.ignores and not policy.baseline:  # the usual run: nothing to match, nothing to note
        return PolicyOutcome(list(findings), [], [])
    today = today or _dt.date.today()
    by_id: dict[str, list[IgnoreRule]] = {}
    for rule in policy.ignores:
        by_id.setdefault(rule.id.upper(), []).append(rule)
    used: set[IgnoreRule] = set()
    stopped: dict[IgnoreRule, str] = {}
    kept, ignored = [], []
    for finding in findings:
        ids = [finding.id, *finding.aliases]
        package = normalize_name(finding.package)
        if policy.baseline:
            known = next((i for i in ids if (package, i) in policy.baseline), None)
            if known is not None:
                ignored.append((finding, f"in the baseline {policy.baseline_source}".strip()
                                + _through_alias(known, finding)))
                continue
        reason = None
        for rule in (r for i in ids for r in by_id.get(i.upper(), ())):
            if rule.package and rule.package != package:
                continue
            if rule.expires is not None and rule.expires < today:
                stopped[rule] = f"expired on {rule.expires.isoformat()}"
                continue
            if rule.until_fixed and finding.fixed_versions:
                stopped[rule] = f"a fix exists now ({', '.join(finding.fixed_versions)})"
                continue
            used.add(rule)
            reason = (f"ignored by {rule.source}" + (f": {rule.reason}" if rule.reason else "")
                      + _through_alias(rule.id, finding))
            break
        if reason is None:
            kept.append(finding)
        else:
            ignored.append((finding, reason))
    notes = [f"ignore of {rule.id} ({rule.source}) no longer applies: {why}"
             for rule, why in stopped.items() if rule not in used]
    notes += [f"ignore of {rule.id} ({rule.source}) has expired ({rule.expires.isoformat()})"
              for rule in policy.ignores
              if rule.expires is not None and rule.expires < today and rule not in stopped]
    notes += [f"ignore of {rule.id} ({rule.source}) matches no finding" for rule in policy.ignores
              if rule not in used and rule not in stopped
              and not (rule.expires is not None and rule.expires < today)]
    return PolicyOutcome(kept, ignored, notes)


def _through_alias(matched: str, finding: Any) -> str:
    """" (matched through its alias X, not its id Y)" when an ignore or baseline id named one of the
    finding's aliases rather than its id: the record that carries the alias may not be the advisory
    the ignore was written for (a merged or hostile record inherits ignores through its aliases)."""
    if matched.upper() == finding.id.upper():
        return ""
    return f" (matched through its alias {matched}, not its id {finding.id})"


def with_cli(policy: Policy, *, ignore_vulns: list[str], until_fixed: list[str],
             fail_on: str | None) -> Policy:
    """The policy plus --ignore-vuln / --ignore-until-fixed ids and --fail-on (which wins)."""
    extra = [IgnoreRule(i, "", None, False, "--ignore-vuln") for i in ignore_vulns]
    extra += [IgnoreRule(i, "", None, True, "--ignore-until-fixed") for i in until_fixed]
    return replace(policy, ignores=policy.ignores + extra, fail_on=fail_on or policy.fail_on)

