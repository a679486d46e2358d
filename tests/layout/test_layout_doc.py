"""docs/design.md's Layout section names every package and module of the project, and nothing that
is gone (issue 20): a newcomer reads the architecture there, so a module added without its line, or
moved without its row, fails here."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# The project's own packages (tests and tooling scripts apart); each package, subpackages included,
# must have a row of its own whose text names each of its modules.
PACKAGES = ("activities", "api", "bench", "devhost", "entities", "orchestrators", "retention", "sweeper",
            "videojob", "worker")
NOT_LISTED = {"__init__.py", "__main__.py"}


def layout_rows(design: str) -> dict[str, str]:
    """`path/` -> the rest of its row, from the tables of the `## Layout` section."""
    section = design.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and (m := re.fullmatch(r"`([\w/]+/)`", cells[0])):
            rows[m.group(1)] = " | ".join(cells[1:])
    return rows


def packages() -> dict[str, list[str]]:
    """`path/` of every package -> its modules' file names."""
    found = {}
    for top in PACKAGES:
        for init in sorted((REPO / top).rglob("__init__.py")):
            directory = init.parent
            name = directory.relative_to(REPO).as_posix() + "/"
            found[name] = sorted(p.name for p in directory.glob("*.py") if p.name not in NOT_LISTED)
    return found


def missing_from(rows: dict[str, str], found: dict[str, list[str]]) -> list[str]:
    problems = []
    for package, modules in found.items():
        if package not in rows:
            problems.append(f"no row for {package}")
            continue
        named = set(re.findall(r"`([\w./]+\.py)`", rows[package]))
        for module in modules:
            if module not in named and f"{package}{module}" not in named:
                problems.append(f"{package}{module} is not named in its row")
    for package, text in rows.items():
        if package.rstrip("/").split("/")[0] not in PACKAGES:
            continue
        if package not in found:
            problems.append(f"the row {package} names a package that does not exist")
            continue
        for module in re.findall(r"`([\w]+\.py)`", text):
            if not (REPO / package / module).is_file():
                problems.append(f"the row {package} names {module}, which is not in it")
    return problems


def test_the_layout_section_names_every_package_and_module():
    rows = layout_rows((REPO / "docs" / "design.md").read_text(encoding="utf-8"))
    assert missing_from(rows, packages()) == []


def test_a_module_without_its_line_fails():
    rows = {"videojob/contract/": "`wire.py` (the wire)"}
    found = {"videojob/contract/": ["staging.py", "wire.py"], "videojob/domain/": ["settings.py"]}
    assert missing_from(rows, found) == [
        "videojob/contract/staging.py is not named in its row",
        "no row for videojob/domain/",
    ]


def test_a_row_naming_a_module_that_moved_fails():
    rows = {"videojob/": "`contract.py` (the wire)"}
    assert missing_from(rows, {"videojob/": []}) == ["the row videojob/ names contract.py, which is not in it"]
