"""Read the Bicep in infra/ as data, with pycep (the parser checkov uses; no Bicep CLI here).

pycep gives each file as JSON: `parameters`, `variables`, `resources`, `modules`, `outputs`.
A reference to a symbol (`workerIdentity`) and a string literal (`'aci'`) both come out as plain
strings, so `Template.is_symbol` tells them apart by the names the file declares. Helpers here
raise `KeyError`/`AssertionError` when a property is missing: a test built on them fails when a
property is absent, not only when it is wrong.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from pycep import BicepParser

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
MAIN = INFRA / "main.bicep"


@dataclass(frozen=True)
class Resource:
    file: Path
    symbol: str
    type: str
    existing: bool
    config: dict[str, Any]

    def prop(self, path: str) -> Any:
        """`prop("properties/minimumTlsVersion")`; KeyError naming the resource when absent."""
        node: Any = self.config
        for part in path.split("/"):
            if not isinstance(node, dict) or part not in node:
                raise KeyError(f"{self.file.name}: resource {self.symbol} has no {path}")
            node = node[part]
        return node


class Template:
    def __init__(self, path: Path):
        self.path = path
        self.text = path.read_text(encoding="utf-8")
        self.doc: dict[str, Any] = BicepParser().parse(file_path=path)
        self.parameters: dict[str, Any] = self.doc.get("parameters") or {}
        self.variables: dict[str, Any] = self.doc.get("variables") or {}
        self.modules: dict[str, Any] = self.doc.get("modules") or {}
        self.outputs: dict[str, Any] = self.doc.get("outputs") or {}
        self.resources = [
            Resource(path, sym, r["type"], bool(r.get("existing")), r.get("config") or {})
            for sym, r in (self.doc.get("resources") or {}).items()
        ]

    @property
    def target_scope(self) -> str:
        scope = (self.doc.get("globals") or {}).get("scope") or {}
        return scope.get("value", "resourceGroup")

    def is_symbol(self, value: Any) -> bool:
        return isinstance(value, str) and (
            value in self.parameters
            or value in self.variables
            or value in self.modules
            or any(r.symbol == value for r in self.resources)
        )

    def resource(self, symbol: str) -> Resource:
        for r in self.resources:
            if r.symbol == symbol:
                return r
        raise KeyError(f"{self.path.name}: no resource {symbol}")

    def variable(self, name: str) -> Any:
        if name not in self.variables:
            raise KeyError(f"{self.path.name}: no variable {name}")
        return self.variables[name]["value"]

    def decorators(self, param: str) -> dict[str, Any]:
        return {d["type"]: d.get("argument") for d in self.parameters[param].get("decorators") or []}


@cache
def template(path: Path) -> Template:
    return Template(path)


def bicep_files() -> list[Path]:
    return sorted(INFRA.rglob("*.bicep"))


def all_templates() -> list[Template]:
    return [template(p) for p in bicep_files()]


def all_resources(type_: str | None = None, *, include_existing: bool = False) -> Iterator[Resource]:
    for t in all_templates():
        for r in t.resources:
            if (type_ is None or r.type.lower() == type_.lower()) and (include_existing or not r.existing):
                yield r


def one_resource(type_: str) -> Resource:
    found = list(all_resources(type_))
    assert len(found) == 1, f"expected exactly one {type_} in infra/, found {len(found)}"
    return found[0]


def accessor_path(expr: Any) -> list[str]:
    """`a.b.c` (pycep's nested property_accessor) as ["a", "b", "c"]; [] for anything else."""
    if isinstance(expr, str):
        return [expr]
    op = expr.get("operator") if isinstance(expr, dict) else None
    if not op or op.get("type") != "property_accessor":
        return []
    left = accessor_path(op["operands"]["operand_1"])
    right = accessor_path(op["operands"]["operand_2"])
    return left + right if left and right else []


def function_call(expr: Any) -> tuple[str, dict[str, Any]] | None:
    """(`name`, parameters) when `expr` is a function call, else None."""
    if isinstance(expr, dict) and "function" in expr:
        fn = expr["function"]
        return fn["type"], fn.get("parameters") or {}
    return None


def module_param(module_symbol: str, name: str) -> Any:
    """The expression main.bicep passes to a module parameter."""
    main = template(MAIN)
    params = main.modules[module_symbol]["config"]["params"]
    if name not in params:
        raise KeyError(f"main.bicep: module {module_symbol} gets no parameter {name}")
    return params[name]
