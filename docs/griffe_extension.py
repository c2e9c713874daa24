"""Griffe extensions for the API reference.

``DropUndocumentedInstanceAttributes``: the reference shows undocumented
methods (a cell's ``step_backward`` is read for its source, next to the
derivation pages), but the ``self.units = ...`` assignments of every
``__init__`` would bury them, so instance attributes without a docstring are
dropped. Class attributes (``gates``, ``weight_names``) stay: they are part of
a layer's contract.

``ExamplesInExamplesSections``: a ``>>>`` example renders as code only inside
a numpy-style ``Examples`` section (elsewhere Markdown reads ``>>>`` as three
nested quotes). A docstring with ``>>>`` lines outside one gets a warning,
which fails ``mkdocs build --strict``.
"""

from __future__ import annotations

import logging
import re

from griffe import Extension

logger = logging.getLogger("mkdocs.plugins.tinyrnn_docstrings")  # counted by --strict
SECTION = re.compile(r"^(?P<title>\S[^\n]*)\n-{3,}\s*$", re.M)


class DropUndocumentedInstanceAttributes(Extension):
    def on_class_members(self, *, cls, **kwargs) -> None:
        for name, member in list(cls.members.items()):
            if (not member.is_alias and member.is_attribute and member.docstring is None
                    and "instance-attribute" in member.labels and "class-attribute" not in member.labels):
                cls.del_member(name)


def examples_outside_sections(docstring: str) -> list[str]:
    """The ``>>>`` lines of a numpy-style docstring that are not in its ``Examples`` section."""
    lines, section = [], ""
    for part in re.split(r"(^\S[^\n]*\n-{3,}[ \t]*$)", docstring, flags=re.M):
        header = SECTION.match(part)
        if header:
            section = header["title"].strip()
        elif section != "Examples":
            lines += [line.strip() for line in part.splitlines() if line.lstrip().startswith(">>>")]
    return lines


class ExamplesInExamplesSections(Extension):
    def on_instance(self, *, obj, **kwargs) -> None:
        if obj.docstring is None:
            return
        stray = examples_outside_sections(obj.docstring.value)
        if stray:
            logger.warning(f"{obj.path}: '>>>' outside an 'Examples' section renders as nested quotes; "
                           f"put it under 'Examples' followed by a line of dashes: {stray[0]!r}")
