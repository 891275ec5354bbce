"""MkDocs hooks of the documentation site (``mkdocs.yml`` names this file under ``hooks:``).

The reference pages are generated from the code at build time, so they cannot
drift from it:

- ``reference/cli.md`` walks the click group (every command's ``--help``, its
  environment variables, the exit codes);
- ``reference/rest.md`` renders the OpenAPI document the server serves
  (``litecoord.rest.openapi``), its error table included;
- ``reference/python.md`` names every entry of ``litecoord.__all__`` for
  mkdocstrings to render from the docstrings.

``mkdocs build --strict`` turns every warning logged here into a failure: a
public name without a docstring, or a placeholder naming nothing we know.
Hand-written pages pull generated parts in with ``<!-- generated: NAME -->``
(see ``PLACEHOLDERS``), and the benchmarks page includes BENCHMARKS.md with
``<!-- include: BENCHMARKS.md -->`` (read at build time, never copied).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

log = logging.getLogger("mkdocs.plugins.litecoord")

ROOT = Path(__file__).resolve().parents[1]

#: Help texts are laid out for this width, whatever terminal builds the site.
HELP_WIDTH = 80

#: Where a public name is defined when ``litecoord`` only imports it on first use.
LAZY_NAMES = {"PostgresCoordinator": "litecoord.backends.postgres.coordinator.PostgresCoordinator"}

#: Coordinator implementations: their methods are the protocol's, documented once on ``Coordinator``.
IMPLEMENTATIONS = {"SqliteCoordinator", "PostgresCoordinator", "HttpCoordinator"}


# -- the Python API: every public name, each with a docstring --------------------------------------


def public_names() -> list[str]:
    import litecoord

    return [name for name in litecoord.__all__ if name != "__version__"] + ["__version__"]


def undocumented_public_names(package: str = "litecoord", names: list[str] | None = None) -> list[str]:
    """The names of ``package.__all__`` that have no docstring, as griffe (so mkdocstrings) reads them."""
    import importlib

    import griffe

    module = importlib.import_module(package)
    names = list(module.__all__) if names is None else names
    loaded = griffe.load(package, resolve_aliases=True, resolve_external=False)
    missing = []
    for name in names:
        path = LAZY_NAMES.get(name) if package == "litecoord" else None
        try:
            obj = griffe.load(path.rsplit(".", 1)[0])[path.rsplit(".", 1)[1]] if path else loaded[name]
            target = obj.final_target if obj.is_alias else obj
        except (KeyError, griffe.AliasResolutionError, griffe.CyclicAliasError):
            missing.append(f"{name} (not found)")
            continue
        if not (target.docstring and target.docstring.value.strip()):
            missing.append(name)
    return missing


def python_reference() -> str:
    out = [
        "# Python API reference",
        "",
        "Generated from the docstrings of every public name (`litecoord.__all__`) by mkdocstrings;",
        "`mkdocs build --strict` fails on a public name without one. The coordinators"
        " (`SqliteCoordinator`, `PostgresCoordinator`, `HttpCoordinator`) implement the"
        " [`Coordinator`](#litecoord.Coordinator) protocol: its methods are documented there, once.",
        "",
    ]
    for title, names in _python_sections():
        out += [f"## {title}", ""]
        for name in names:
            out.append(f"::: {LAZY_NAMES.get(name, f'litecoord.{name}')}")
            out += ["    options:", "      heading_level: 3"]
            if name in IMPLEMENTATIONS:
                out.append("      members: false")
            out.append("")
    return "\n".join(out)


def _python_sections() -> list[tuple[str, list[str]]]:
    """The public names by what they are: every name of ``litecoord.__all__`` exactly once."""
    from litecoord import types

    names = public_names()
    errors = [n for n in names if n.endswith("Error")]
    kinds = [n for n in names if n not in errors and n in vars(types)]
    rest = [n for n in names if n not in errors and n not in kinds]
    return [("Coordinators, configuration and the server", rest), ("Results and types", kinds), ("Errors", errors)]


# -- the command line ------------------------------------------------------------------------------


def _help(command: click.Command, name: str, parent: click.Context | None) -> str:
    ctx = click.Context(command, info_name=name, parent=parent, terminal_width=HELP_WIDTH,
                        max_content_width=HELP_WIDTH)
    return command.get_help(ctx)


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    cell = lambda text: str(text).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return out + ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]


def exit_code_table(codes: dict[int, str]) -> str:
    return "\n".join(_table(["code", "meaning"], [[f"{code}", text] for code, text in codes.items()]))


def cli_reference() -> str:
    from litecoord.cli import EXIT_CODES, cli
    from litecoord.cli import runner as worker

    root = click.Context(cli, info_name="litecoord", terminal_width=HELP_WIDTH, max_content_width=HELP_WIDTH)
    out = [
        "# Command-line reference",
        "",
        "Generated from the click commands when the site is built: what `litecoord COMMAND --help` prints.",
        "A guide to the commands is in [the command line](../cli.md).",
        "",
        "```text",
        cli.get_help(root).rstrip(),
        "```",
        "",
        "## Exit codes",
        "",
        "Every command but `work`:",
        "",
        exit_code_table(EXIT_CODES),
        "",
        "`litecoord work` ([the worker runner](../runner.md)):",
        "",
        exit_code_table(worker.EXIT_CODES),
        "",
    ]
    for name in sorted(cli.commands):
        command = cli.commands[name]
        out += [f"## litecoord {name}", "", "```text", _help(command, name, root).rstrip(), "```", ""]
        env = [
            [f"`{'`, `'.join(p.opts)}`", f"`{p.envvar}`"]
            for p in command.params
            if isinstance(p, click.Option) and p.envvar
        ]
        if env:
            out += [*_table(["option", "environment variable"], env), ""]
    return "\n".join(out)


# -- the REST API, from its OpenAPI document ---------------------------------------------------------


def _schema_name(ref: str) -> str:
    return ref.rsplit("/", 1)[1]


def _type(schema: dict[str, Any]) -> str:
    """A short, readable type: a link for a named schema."""
    if "$ref" in schema:
        name = _schema_name(schema["$ref"])
        return f"[{name}](#schema-{name.lower()})"
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " or ".join(_type(s) for s in schema[key])
    kind = schema.get("type", "any")
    kinds = kind if isinstance(kind, list) else [kind]
    words = []
    for k in kinds:
        if k == "array":
            words.append(f"array of {_type(schema.get('items', {}))}")
        elif k == "string" and "enum" in schema:
            words.append(" \\| ".join(f"`{v}`" for v in schema["enum"]))
        elif k == "string" and schema.get("format"):
            words.append(f"string ({schema['format']})")
        else:
            words.append(str(k))
    return " or ".join(words)


def _resolve(doc: dict[str, Any], obj: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in obj:
        section, name = obj["$ref"].split("/")[-2:]
        obj = doc["components"][section][name]
    return obj


def _body(content: dict[str, Any] | None) -> str:
    if not content:
        return ""
    return "; ".join(f"{_type(media['schema'])} (`{kind}`)" for kind, media in content.items() if "schema" in media)


def rest_reference(doc: dict[str, Any] | None = None) -> str:
    from litecoord.rest import testclock
    from litecoord.rest.openapi import openapi_document

    # What `serve` answers on /openapi.json, and with --test-clock: the clock's two operations too.
    doc = doc or testclock.add_to_document(openapi_document())
    info = doc["info"]
    out = [
        "# REST API reference",
        "",
        f"{info['title']}, version {info['version']} (OpenAPI {doc['openapi']}). {info.get('description', '')}",
        "",
        "Generated when the site is built from the OpenAPI document that `litecoord serve` answers on",
        "`GET /openapi.json`. A guide to the API, with curl, is in [the REST API](../rest.md).",
        "",
        "**Authentication.** A server started with a token requires `Authorization: Bearer <token>` on every",
        "operation not marked *public*.",
        "",
        "## Errors",
        "",
        'Every error is JSON `{"detail": "...", "code": "..."}` plus facts such as `field`,',
        "`work_item_id` or `holder`; never a traceback. The codes are stable:",
        "",
        *_table(
            ["status", "code", "when"],
            [[str(e["status"]), f"`{e['code']}`", e["when"]] for e in doc.get("x-error-codes", [])],
        ),
        "",
        "## Operations",
        "",
    ]
    from litecoord.rest.openapi import BASE

    groups: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for path, operations in doc["paths"].items():
        group = "work-items" if path.startswith(BASE) else "sessions" if path.startswith("/sessions") else "server"
        groups.setdefault(group, []).extend((path, method, op) for method, op in operations.items())
    titles = {
        "work-items": f"### Work items\n\nEvery path below is under `{BASE}`.",
        "sessions": "### Sessions and what the status page reads",
        "server": "### The server: health, the page, metrics, this document",
    }
    for group in ("work-items", "sessions", "server"):
        out += [titles[group], ""]
        for path, method, op in groups.get(group, []):
            shown = path[len(BASE) :] or "/" if group == "work-items" else path
            public = " *(public)*" if op.get("security") == [] else ""
            out += [f"#### `{method.upper()} {shown}`{public}", "", op.get("summary", "") + ".", ""]
            if op.get("description"):
                out += [op["description"], ""]
            params = [_resolve(doc, p) for p in op.get("parameters", [])]
            if params:
                rows = [[f"`{p['name']}`", p["in"], "yes" if p.get("required") else "no", _type(p.get("schema", {})),
                         p.get("description", "")] for p in params]
                out += _table(["parameter", "in", "required", "type", "description"], rows) + [""]
            if "requestBody" in op:
                body = op["requestBody"]
                need = "required" if body.get("required") else "optional"
                out += [f"Request body ({need}): {_body(body.get('content'))}", ""]
            rows = []
            for status, response in op["responses"].items():
                response = _resolve(doc, response)
                rows.append([status, response.get("description", ""), _body(response.get("content"))])
            out += _table(["status", "answer", "body"], rows) + [""]
    out += ["## Schemas", ""]
    for name, schema in doc["components"]["schemas"].items():
        out += [f"### {name} {{#schema-{name.lower()}}}", ""]
        if schema.get("description"):
            out += [schema["description"], ""]
        properties = schema.get("properties")
        if properties:
            required = set(schema.get("required", ()))
            rows = [[f"`{prop}`", _type(sub), "yes" if prop in required else "no", sub.get("description", "")]
                    for prop, sub in properties.items()]
            out += _table(["field", "type", "required", "description"], rows) + [""]
        else:
            out += [f"Type: {_type(schema)}", ""]
        if "example" in schema:
            out += ["Example:", "", "```json", json.dumps(schema["example"], indent=2), "```", ""]
    return "\n".join(out)


# -- placeholders in hand-written pages ------------------------------------------------------------


def _runner_exit_codes() -> str:
    from litecoord.cli import runner as worker

    return exit_code_table(worker.EXIT_CODES)


def _command_exit_codes() -> str:
    from litecoord.cli import EXIT_CODES

    return exit_code_table(EXIT_CODES)


def _error_codes() -> str:
    from litecoord.rest.openapi import ERROR_CODES

    return "\n".join(_table(["status", "code", "when"], [[str(s), f"`{c}`", w] for s, c, w in ERROR_CODES]))


PLACEHOLDERS: dict[str, Callable[[], str]] = {
    "runner-exit-codes": _runner_exit_codes,
    "command-exit-codes": _command_exit_codes,
    "rest-error-codes": _error_codes,
}

_PLACEHOLDER = re.compile(r"<!-- generated: ([\w-]+) -->")
_INCLUDE = re.compile(r"<!-- include: ([\w./-]+) -->")


def include(name: str) -> str:
    """A file of the repository's root, its links made to work from a page of the site."""
    text = (ROOT / name).read_text(encoding="utf-8")
    text = re.sub(r"\]\(docs/", "](", text)  # the site's pages, as the root's files link to them
    return re.sub(rf"\]\({re.escape(name)}(#[^)]*)\)", r"](\1)", text)  # links within the file itself


def expand(markdown: str, page: str) -> str:
    def placeholder(match: re.Match[str]) -> str:
        make = PLACEHOLDERS.get(match.group(1))
        if make is None:
            log.warning("%s: no generated part named %r (known: %s)", page, match.group(1), ", ".join(PLACEHOLDERS))
            return match.group(0)
        return make()

    def included(match: re.Match[str]) -> str:
        path = ROOT / match.group(1)
        if not path.is_file():
            log.warning("%s: cannot include %s: no such file", page, match.group(1))
            return match.group(0)
        return include(match.group(1))

    return _INCLUDE.sub(included, _PLACEHOLDER.sub(placeholder, markdown))


# -- MkDocs events ---------------------------------------------------------------------------------

GENERATED: dict[str, Callable[[], str]] = {
    "reference/cli.md": cli_reference,
    "reference/rest.md": rest_reference,
    "reference/python.md": python_reference,
}


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    for name in undocumented_public_names():
        log.warning("litecoord.%s is public (litecoord.__all__) but has no docstring", name)
    for src, make in GENERATED.items():
        files.append(File.generated(config, src, content=make()))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    return expand(markdown, page.file.src_uri)
