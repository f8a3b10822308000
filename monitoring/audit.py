"""Dependency audit: look up every pinned requirement's known vulnerabilities on PyPI.

pip-audit asks PyPI's per-release JSON (``/pypi/NAME/VERSION/json``) or OSV; from this project's
machines neither answers (the per-release pages are 404 and OSV is unreachable), so pip-audit
"passes" having looked nothing up. The project page (``/pypi/NAME/json``) does answer, and its
``vulnerabilities`` are the advisories (PYSEC, GHSA, CVE) of the latest release. So a pin that
*is* the latest release is really checked; an older pin is reported as not covered, with the
release that would be, instead of being passed in silence. Exit status: 1 when a pin has a known
vulnerability or could not be looked up, 0 otherwise.

``python -m monitoring.audit`` audits every distribution installed in this interpreter (the
pins and everything they pulled in); ``-r FILE`` audits the pins of requirements files instead.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

DEFAULT_INDEX = "https://pypi.org"


@dataclass(frozen=True)
class Pin:
    name: str
    version: str
    source: str


@dataclass
class Finding:
    """What the index says about one pin."""

    pin: Pin
    status: str  # "ok", "vulnerable", "not_covered" or "unreachable"
    latest: str = ""
    advisories: list[str] = field(default_factory=list)
    note: str = ""


def read_pins(paths: Iterable[Path]) -> list[Pin]:
    """Every ``name==version`` pin of the files, following ``-r`` includes, once per name."""
    pins: dict[str, Pin] = {}
    seen: set[Path] = set()

    def visit(path: Path) -> None:
        path = path.resolve()
        if path in seen:
            return
        seen.add(path)
        for raw in path.read_text().splitlines():
            line = raw.split("#", 1)[0].strip()
            if line.startswith("-r "):
                visit(path.parent / line[3:].strip())
                continue
            if not line or line.startswith("-"):
                continue
            try:
                requirement = Requirement(line)
            except InvalidRequirement:
                continue
            exact = [spec.version for spec in requirement.specifier if spec.operator == "=="]
            if exact:
                name = canonicalize_name(requirement.name)
                pins.setdefault(name, Pin(name, exact[0], path.name))

    for path in paths:
        visit(path)
    return sorted(pins.values(), key=lambda pin: pin.name)


def installed_pins() -> list[Pin]:
    """Every distribution this interpreter can import, at its installed version."""
    pins = {}
    for dist in metadata.distributions():
        name = canonicalize_name(dist.metadata["Name"] or "")
        if name:
            pins.setdefault(name, Pin(name, dist.version, "installed"))
    return sorted(pins.values(), key=lambda pin: pin.name)


def judge(pin: Pin, project: dict) -> Finding:
    """Read one project page: advisories apply to the pin only when it is the latest release."""
    latest = str(project.get("info", {}).get("version", ""))
    releases = project.get("releases", {})
    files = releases.get(pin.version, [])
    yanked = bool(files) and all(item.get("yanked") for item in files)
    if pin.version != latest:
        note = "pinned release is yanked; " if yanked else ""
        return Finding(
            pin,
            "not_covered",
            latest,
            note=note + f"advisories are published here for the latest release only ({latest})",
        )
    advisories = []
    for item in project.get("vulnerabilities") or []:
        fixed = ", ".join(item.get("fixed_in") or []) or "no fix yet"
        advisories.append(f"{item.get('id', '?')} (fixed in {fixed})")
    return Finding(pin, "vulnerable" if advisories else "ok", latest, advisories)


def fetch_project(index: str, name: str, timeout_s: float = 20.0) -> dict:
    url = f"{index.rstrip('/')}/pypi/{name}/json"
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        return json.load(response)


def audit(pins: Sequence[Pin], index: str) -> list[Finding]:
    def one(pin: Pin) -> Finding:
        try:
            return judge(pin, fetch_project(index, pin.name))
        except (urllib.error.URLError, TimeoutError, ValueError) as exc:
            return Finding(pin, "unreachable", note=f"{type(exc).__name__}: {exc}")

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(one, pins))


def render(findings: Sequence[Finding]) -> str:
    lines = []
    for f in findings:
        detail = "; ".join(f.advisories) or f.note
        lines.append(f"{f.status:12} {f.pin.name}=={f.pin.version} ({f.pin.source}) {detail}")
    counts = {status: 0 for status in ("ok", "vulnerable", "not_covered", "unreachable")}
    for f in findings:
        counts[f.status] += 1
    lines.append(" ".join(f"{status}={count}" for status, count in counts.items()))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "-r", dest="files", action="append", type=Path, help="audit a requirements file's pins"
    )
    parser.add_argument("--index", default=DEFAULT_INDEX, help="PyPI base URL")
    args = parser.parse_args(argv)
    pins = read_pins(args.files) if args.files else installed_pins()
    findings = audit(pins, args.index)
    print(render(findings))
    return 1 if any(f.status in ("vulnerable", "unreachable") for f in findings) else 0


if __name__ == "__main__":
    sys.exit(main())
