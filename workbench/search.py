"""Search as people type names: case- and accent-insensitive ("munchen" finds "München").

One folding rule, used on both sides of every comparison:

- Python (`fold`): what we store in search columns and what we make of the words typed;
- the database (`Folded`, the ``__folded`` lookup): ``lower(unaccent(column))`` on PostgreSQL
  (the `unaccent` extension, created by migration 0016), and the same Python `fold` registered as
  ``unaccent`` (and the whole fold as ``wb_fold``: SQLite's lower() is ASCII-only) on SQLite
  connections, so both back ends find the same rows.

Letters that Unicode does not decompose (ß, ø, æ, ł...) are spelled out as PostgreSQL's unaccent
rules spell them, so "Strasse" finds "Straße" on both.
"""

from __future__ import annotations

import unicodedata

from django.db.models import CharField, TextField, Transform
from django.db.models.functions import Lower

SPELLED = str.maketrans(
    {
        "ß": "ss",
        "ẞ": "SS",
        "ø": "o",
        "Ø": "O",
        "æ": "ae",
        "Æ": "AE",
        "œ": "oe",
        "Œ": "OE",
        "ł": "l",
        "Ł": "L",
        "đ": "d",
        "Đ": "D",
        "ð": "d",
        "Ð": "D",
        "þ": "th",
        "Þ": "TH",
        "ı": "i",
    }
)


def unaccent(text: str | None) -> str | None:
    """Accents off, case kept (the SQLite stand-in for PostgreSQL's unaccent())."""
    if text is None:
        return None
    decomposed = unicodedata.normalize("NFKD", str(text).translate(SPELLED))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def fold(text: str | None) -> str:
    """Accents off, lower case: the stored and the typed form of searchable words."""
    return (unaccent(text) or "").lower()


class Unaccent(Transform):
    function = "unaccent"
    lookup_name = "unaccent_text"


class SqliteFold(Transform):
    function = "wb_fold"  # SQLite's lower() knows only ASCII: fold in Python there
    lookup_name = "wb_fold"


@CharField.register_lookup
@TextField.register_lookup
class Folded(Transform):
    """``name__folded__contains=fold(q)``: lower(unaccent(name)) in SQL on both back ends."""

    lookup_name = "folded"

    def as_sql(self, compiler, connection):
        return compiler.compile(Lower(Unaccent(self.lhs)))

    def as_sqlite(self, compiler, connection):
        return compiler.compile(SqliteFold(self.lhs))


def register_sqlite_unaccent(sender, connection, **kwargs) -> None:
    """connection_created handler: SQLite has no unaccent(); give it ours (and the whole fold)."""
    if connection.vendor == "sqlite":
        connection.connection.create_function("unaccent", 1, unaccent, deterministic=True)
        connection.connection.create_function(
            "wb_fold", 1, lambda t: None if t is None else fold(t), deterministic=True
        )
