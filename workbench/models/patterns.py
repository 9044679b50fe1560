r"""Mapping-rule patterns: compiled by RE2, which matches in time linear in the value, so an
admin's pattern like ``(a+)+$`` cannot hang validation on a long value the way Python's
backtracking ``re`` does. RE2 has no backreferences, lookaround, atomic groups, possessive
quantifiers or conditionals; a pattern using them is refused when the rule is saved. RE2's ``\d``,
``\w`` and ``\s`` are ASCII-only, which suits codes such as cost centers and GL accounts.

Every place that compiles a mapping pattern goes through ``compile_pattern``: the rule's ``clean``
and ``matches`` (used by the mapping index, the preview and the application). It sits beside the
model rather than in ``workbench.rules`` because the rules import the models, not the other way.
"""

from __future__ import annotations

import functools
import re

import re2

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # a refused pattern is the admin's form error, not a line on stderr
# What RE2 cannot do, found in the pattern once backslash pairs are dropped (so "\\1" is no backreference).
_UNSUPPORTED = [
    (re.compile(r"\\[1-9]|\(\?P="), r"backreferences such as \1 or (?P=name)"),
    (re.compile(r"\(\?<?[=!]"), "lookahead and lookbehind such as (?=…), (?!…), (?<=…) or (?<!…)"),
    (re.compile(r"\(\?>"), "atomic groups (?>…)"),
    (re.compile(r"[*+?}]\+"), "possessive quantifiers such as a*+"),
    (re.compile(r"\(\?\("), "conditional groups (?(1)…|…)"),
]


class PatternError(ValueError):
    """The pattern is refused; the message says why in words an admin can act on."""


@functools.lru_cache(maxsize=1024)
def compile_pattern(text: str):
    """The compiled RE2 pattern (``.fullmatch(value)`` as in ``re``), or PatternError."""
    try:
        return re2.compile(text, _OPTIONS)
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        plain = text.replace("\\\\", "")
        for found, what in _UNSUPPORTED:
            if found.search(plain):
                raise PatternError(
                    f"Patterns cannot use {what}: they are matched by RE2, in time linear in the value ({reason})."
                ) from None
        raise PatternError(f"Not a regular expression RE2 accepts: {reason}.") from None
