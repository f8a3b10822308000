"""monitoring.audit: which pins it reads, and when PyPI's advisories really apply to a pin."""

from __future__ import annotations

from pathlib import Path

from monitoring.audit import Pin, installed_pins, judge, read_pins, render


def test_pins_follow_includes_and_skip_what_is_not_an_exact_pin(tmp_path: Path) -> None:
    (tmp_path / "base.txt").write_text("Flask==3.1.3  # web\nnumpy>=2\n-e .\n")
    (tmp_path / "dev.txt").write_text("-r base.txt\npytest==9.2.0\nflask==9.9\nnot a requirement\n")
    pins = read_pins([tmp_path / "dev.txt"])
    assert [(p.name, p.version, p.source) for p in pins] == [
        ("flask", "3.1.3", "base.txt"),
        ("pytest", "9.2.0", "dev.txt"),
    ]


def project(latest: str, vulnerabilities: list[dict], yanked: bool = False) -> dict:
    return {
        "info": {"version": latest},
        "releases": {"1.0": [{"yanked": yanked}], latest: [{"yanked": False}]},
        "vulnerabilities": vulnerabilities,
    }


def test_the_latest_release_is_judged_by_its_advisories() -> None:
    advisory = {"id": "PYSEC-2017-94", "fixed_in": ["2.7"]}
    finding = judge(Pin("pycrypto", "2.6.1", "x"), project("2.6.1", [advisory]))
    assert finding.status == "vulnerable"
    assert finding.advisories == ["PYSEC-2017-94 (fixed in 2.7)"]
    assert judge(Pin("flask", "3.1.3", "x"), project("3.1.3", [])).status == "ok"


def test_an_older_pin_is_not_covered_rather_than_passed() -> None:
    finding = judge(Pin("numpy", "1.0", "x"), project("2.5.5", [{"id": "GHSA-x"}], yanked=True))
    assert finding.status == "not_covered"
    assert finding.advisories == []
    assert "2.5.5" in finding.note and "yanked" in finding.note


def test_the_summary_counts_every_status() -> None:
    findings = [
        judge(Pin("a", "1", "x"), project("1", [])),
        judge(Pin("b", "1.0", "x"), project("2", [])),
    ]
    assert render(findings).splitlines()[-1] == "ok=1 vulnerable=0 not_covered=1 unreachable=0"


def test_the_installed_environment_includes_the_projects_own_dependencies() -> None:
    names = {pin.name for pin in installed_pins()}
    assert {"flask", "pika", "numpy"} <= names
