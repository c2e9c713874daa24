"""MkDocs hook: one API reference page per module of the ``tinyrnn`` package.

Every ``tinyrnn/**/*.py`` (``__init__.py`` gives the package itself; private
``_name.py`` files and ``__main__.py`` are skipped) becomes a page
``api/<dotted.name>.md`` holding ``::: dotted.name``, which mkdocstrings fills
from the docstrings. The pages are appended to the navigation under
"API reference". Generating them at build time means a new engine module is
documented (and its docstrings checked by ``--strict``) without editing the docs.
"""

from __future__ import annotations

import ast
import pathlib

from mkdocs.structure.files import File

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "tinyrnn"


def module_names() -> list[str]:
    """Dotted names of tinyrnn's public modules, packages first within each folder."""
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        elif parts[-1].startswith("_"):
            continue
        names.append(".".join(parts))
    return sorted(names, key=lambda name: (name.count(".") > 0, name.split(".")[:-1], name))


def api_page(name: str) -> str:
    return f"api/{name}.md"


def page_source(name: str) -> str:
    """``::: name``; a package page lists only what its ``__init__.py`` defines
    (the classes it re-exports are documented on their own module's page)."""
    init = PACKAGE.parent / name.replace(".", "/") / "__init__.py"
    options = "      heading_level: 1\n"
    if init.exists():
        defined = [node.name for node in ast.parse(init.read_text()).body
                   if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_")]
        options += f"      members: {defined or False}\n".replace("'", '"')
    return f"::: {name}\n    options:\n{options}"


def on_config(config, **kwargs):
    nav = config.get("nav")
    if nav is not None and not any("API reference" in entry for entry in nav if isinstance(entry, dict)):
        nav.append({"API reference": [{name: api_page(name)} for name in module_names()]})
    return config


def on_files(files, config, **kwargs):
    for name in module_names():
        if files.get_file_from_path(api_page(name)) is None:
            files.append(File.generated(config, api_page(name), content=page_source(name)))
    return files
