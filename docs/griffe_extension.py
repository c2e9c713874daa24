"""Griffe extension for the API reference: leave out undocumented instance attributes.

The reference shows undocumented methods (a cell's ``step_backward`` is read
for its source, next to the derivation pages), but the ``self.units = ...``
assignments of every ``__init__`` would bury them, so instance attributes
without a docstring are dropped. Class attributes (``gates``,
``weight_names``) stay: they are part of a layer's contract.
"""

from __future__ import annotations

from griffe import Extension


class DropUndocumentedInstanceAttributes(Extension):
    def on_class_members(self, *, cls, **kwargs) -> None:
        for name, member in list(cls.members.items()):
            if (not member.is_alias and member.is_attribute and member.docstring is None
                    and "instance-attribute" in member.labels and "class-attribute" not in member.labels):
                cls.del_member(name)
