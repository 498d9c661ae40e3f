"""A small reader of Bicep files for the infra tests, built on tree-sitter-bicep.

No Bicep compiler can be installed here, so the tests read the templates' syntax trees: the
declarations (parameters, variables, resources, modules, outputs) and, where a value is a literal,
its Python value. Anything that is not a literal (a reference, a call, an interpolated string) is
kept as an `Expr` holding its source text, so a test can still look at what it says.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tree_sitter_bicep
from tree_sitter import Language, Node, Parser

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"


@dataclass(frozen=True)
class Expr:
    """A value that is not a literal: its Bicep source text."""

    text: str


@dataclass
class Resource:
    """A `resource` declaration: its symbolic name, type@version, body and where it is."""

    file: Path
    symbol: str
    type: str
    api_version: str
    body: dict[str, Any]
    conditional: bool
    loop: bool
    text: str
    children: list[Resource] = field(default_factory=list)


@dataclass
class Param:
    name: str
    type: str
    default: Any
    has_default: bool
    decorators: dict[str, Any]


@dataclass
class BicepFile:
    """The declarations of one parsed .bicep file."""

    path: Path
    source: bytes
    root: Node
    params: dict[str, Param]
    variables: dict[str, Any]
    resources: list[Resource]
    modules: dict[str, tuple[str, dict[str, Any]]]
    outputs: dict[str, Any]

    def all_resources(self) -> Iterator[Resource]:
        """Every resource, nested ones included."""
        stack = list(self.resources)
        while stack:
            res = stack.pop(0)
            yield res
            stack.extend(res.children)


@functools.cache
def parser() -> Parser:
    return Parser(Language(tree_sitter_bicep.language()))


def syntax_errors(source: bytes) -> list[str]:
    """Each ERROR or MISSING node of the parse, with its line: empty when the file parses."""
    tree = parser().parse(source)
    problems: list[str] = []

    def walk(node: Node) -> None:
        if node.type == "ERROR" or node.is_missing:
            kind = "missing " + node.type if node.is_missing else "error"
            snippet = source[node.start_byte : node.end_byte][:60].decode(errors="replace")
            problems.append(f"line {node.start_point[0] + 1}: {kind} near {snippet!r}")
        for child in node.children:
            walk(child)

    walk(tree.root_node)
    return problems


def bicep_files() -> list[Path]:
    return sorted(INFRA.rglob("*.bicep"))


def _text(node: Node, source: bytes) -> str:
    return source[node.start_byte : node.end_byte].decode()


def _named(node: Node) -> list[Node]:
    return [c for c in node.named_children if c.type != "comment"]


def value(node: Node, source: bytes) -> Any:
    """The Python value of a literal node; an `Expr` for anything else."""
    kind = node.type
    if kind == "object":
        result: dict[str, Any] = {}
        for prop in _named(node):
            if prop.type != "object_property":
                continue
            parts = _named(prop)
            if len(parts) < 2:
                continue  # a nested resource declaration, read separately
            key_node, val_node = parts[0], parts[-1]
            key = value(key_node, source) if key_node.type == "string" else _text(key_node, source)
            result[key if isinstance(key, str) else _text(key_node, source)] = value(
                val_node, source
            )
        return result
    if kind == "array":
        return [value(item, source) for item in _named(node)]
    if kind == "string":
        inner = _named(node)
        if all(part.type in ("string_content", "escape_sequence") for part in inner):
            text = "".join(_text(part, source) for part in inner)
            return text.replace("\\'", "'").replace("\\\\", "\\")
        return Expr(_text(node, source))
    if kind == "number":
        return int(_text(node, source))
    if kind == "boolean":
        return _text(node, source) == "true"
    if kind == "null":
        return None
    if kind == "unary_expression" and _text(node, source).lstrip("-").isdigit():
        return int(_text(node, source))
    if kind == "parenthesized_expression" and len(_named(node)) == 1:
        return value(_named(node)[0], source)
    return Expr(_text(node, source))


def _decorators(node: Node | None, source: bytes) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if node is None or node.type != "decorators":
        return found
    for deco in _named(node):
        call = _named(deco)[0]
        if call.type == "call_expression":
            name_node, args = _named(call)[0], _named(call)[-1]
            arg_values = [value(a, source) for a in _named(args)]
            found[_text(name_node, source)] = arg_values[0] if len(arg_values) == 1 else arg_values
        else:
            found[_text(call, source)] = True
    return found


def _resource(node: Node, source: bytes, path: Path, parent: Resource | None = None) -> Resource:
    parts = _named(node)
    symbol = _text(parts[0], source)
    type_version = value(parts[1], source)
    assert isinstance(type_version, str), f"{path}: resource {symbol} has a computed type"
    rtype, _, version = type_version.partition("@")
    if parent is not None and "/" not in rtype:
        # A nested resource names its type relative to its parent's and may leave out the version.
        rtype = f"{parent.type}/{rtype}"
        version = version or parent.api_version
    conditional = any(p.type == "if_statement" for p in parts)
    loop = any(p.type == "for_statement" for p in parts)
    body_node = _body_object(node)
    body = value(body_node, source) if body_node is not None else {}
    resource = Resource(
        file=path,
        symbol=symbol,
        type=rtype,
        api_version=version,
        body=body,
        conditional=conditional,
        loop=loop,
        text=_text(node, source),
    )
    if body_node is not None:
        for prop in _named(body_node):
            for child in _named(prop):
                if child.type == "resource_declaration":
                    resource.children.append(_resource(child, source, path, resource))
    return resource


def _body_object(node: Node) -> Node | None:
    """The object literal a resource/module declares, through any `if (...)` or `[for ...]`."""
    for child in _named(node):
        if child.type == "object":
            return child
        if child.type in ("if_statement", "for_statement"):
            found = _body_object(child)
            if found is not None:
                return found
    return None


@functools.cache
def load(path: Path) -> BicepFile:
    """Parse one file into its declarations (asserting it parses cleanly first)."""
    source = path.read_bytes()
    problems = syntax_errors(source)
    assert not problems, f"{path} does not parse: {problems}"
    root = parser().parse(source).root_node
    params: dict[str, Param] = {}
    variables: dict[str, Any] = {}
    resources: list[Resource] = []
    modules: dict[str, tuple[str, dict[str, Any]]] = {}
    outputs: dict[str, Any] = {}
    pending_decorators: Node | None = None
    for node in _named(root):
        if node.type == "decorators":
            pending_decorators = node
            continue
        parts = _named(node)
        if node.type == "parameter_declaration":
            name = _text(parts[0], source)
            has_default = len(parts) > 2
            params[name] = Param(
                name=name,
                type=_text(parts[1], source),
                default=value(parts[2], source) if has_default else None,
                has_default=has_default,
                decorators=_decorators(pending_decorators, source),
            )
        elif node.type == "variable_declaration":
            variables[_text(parts[0], source)] = value(parts[-1], source)
        elif node.type == "resource_declaration":
            resources.append(_resource(node, source, path))
        elif node.type == "module_declaration":
            module_path = value(parts[1], source)
            body_node = _body_object(node)
            body = value(body_node, source) if body_node is not None else {}
            modules[_text(parts[0], source)] = (str(module_path), body)
        elif node.type == "output_declaration":
            outputs[_text(parts[0], source)] = value(parts[-1], source)
        pending_decorators = None
    return BicepFile(
        path=path,
        source=source,
        root=root,
        params=params,
        variables=variables,
        resources=resources,
        modules=modules,
        outputs=outputs,
    )


def all_resources() -> list[Resource]:
    """Every resource declared in any file under infra/."""
    return [res for path in bicep_files() for res in load(path).all_resources()]


def resources_of(rtype: str) -> list[Resource]:
    """Every resource of one type (case-insensitive), across infra/."""
    return [res for res in all_resources() if res.type.lower() == rtype.lower()]
