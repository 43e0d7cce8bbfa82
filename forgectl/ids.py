"""Ids as people type them: a unique prefix names an object, as git does with hashes.

The real server's ids are UUIDs: one written in full is used as given, and a
shorter start of one (``3f2a``, ``3f2a1b2c-9d``) is matched against the ids the
server lists. :func:`match_prefix` is the rule (an exact id wins; one id starting
with the prefix is it; several are a usage error naming them; none is "not
found"); :func:`short_ids` is its inverse, the shortest prefixes that stay unique,
which ``ps`` prints.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from .errors import AmbiguousId, NotFoundError

#: A UUID as the real server writes it (``8-4-4-4-12`` hex digits).
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_DASHES = (8, 13, 18, 23)
_HEX = frozenset("0123456789abcdefABCDEF")
#: Short ids are never shorter than a UUID's first group (git's default is 7).
SHORT = 8


def is_uuid(value: str) -> bool:
    """Whether ``value`` is a whole UUID (the real server's ids)."""
    return len(value) == 36 and _UUID.fullmatch(value) is not None


def uuid_prefix(value: str) -> bool:
    """Whether ``value`` is the start of a UUID, shorter than a whole one: hex
    digits, with dashes exactly where a UUID has them."""
    if not 0 < len(value) < 36:
        return False
    for i, char in enumerate(value):
        if (char != "-") if i in _DASHES else (char not in _HEX):
            return False
    return True


def match_prefix(kind: str, given: str, candidates: Mapping[str, str] | Iterable[str]) -> str:
    """The one id among ``candidates`` that ``given`` names: itself, else the only
    one starting with it (case-insensitively, as UUIDs compare).

    ``candidates`` maps each id to a few words describing it (shown when the
    prefix is ambiguous), or is a plain iterable of ids. Raises
    :class:`~forgectl.errors.AmbiguousId` (exit 2) when several ids start with
    ``given`` and :class:`~forgectl.errors.NotFoundError` (exit 5) when none does.
    """
    described = candidates if isinstance(candidates, Mapping) else dict.fromkeys(candidates, "")
    if given in described:
        return given
    start = given.lower()
    found = sorted(ident for ident in described if ident.lower().startswith(start))
    if len(found) == 1:
        return found[0]
    if not found:
        raise NotFoundError(f"{kind} {given} not found (no {kind} id starts with it)")
    raise AmbiguousId(kind, given, [(ident, described[ident]) for ident in found])


def short_ids(ids: Iterable[str], minimum: int = SHORT) -> dict[str, str]:
    """Each id's shortest prefix (at least ``minimum`` characters) that no other
    id of ``ids`` starts with; an id that is a prefix of another stays whole."""
    unique = sorted(set(ids), key=str.lower)
    out: dict[str, str] = {}
    for i, ident in enumerate(unique):
        need = minimum
        for other in (unique[i - 1] if i else None, unique[i + 1] if i + 1 < len(unique) else None):
            if other is not None:
                need = max(need, _common(ident.lower(), other.lower()) + 1)
        out[ident] = ident[:need]
    return out


def _common(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
