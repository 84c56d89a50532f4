"""Find which catalog service a Thai message talks about, from the catalog's aliases.

Used by the NLU's service extractor (to emit the `service` entity) and by the actions (to
offer candidates when the message is ambiguous), so both always agree. Matching runs on
normalised text without spaces, so "บัตร ปชช." finds the alias "บัตรปชช"; longer aliases also
match with one or two typing mistakes. Keywords are weak, shared words: they never resolve a
service on their own, they only suggest candidates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from bot.catalog.loader import Catalog
from bot.text import normalize


@dataclass(frozen=True)
class ServiceTerms:
    aliases: tuple[str, ...]
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True)
class ServiceMention:
    """A service named in the text; `start`/`end` index the original text."""

    service_id: str
    start: int
    end: int
    edits: int


@dataclass(frozen=True)
class Resolution:
    mentions: tuple[ServiceMention, ...]
    candidates: tuple[str, ...]

    @property
    def service_ids(self) -> tuple[str, ...]:
        """Distinct services mentioned, in the order they appear."""
        return tuple(dict.fromkeys(m.service_id for m in self.mentions))

    @property
    def service_id(self) -> str | None:
        """The one service the text names, or None if it names none or several."""
        ids = self.service_ids
        return ids[0] if len(ids) == 1 else None


# Only the start of a message is searched for service names. The typo-tolerant search grows
# faster than linearly with the text (an adversarial 1,000-character message took 0.37 s,
# 300 characters 37 ms); questions name their service early, and the gateway accepts longer
# messages (complaint descriptions) without letting them stall the NLU.
MAX_MATCH_CHARS = 300


def allowed_edits(length: int) -> int:
    """Typing mistakes tolerated for an alias of `length` characters."""
    if length >= 14:
        return 2
    if length >= 8:
        return 1
    return 0


class ServiceMatcher:
    def __init__(self, terms: Mapping[str, ServiceTerms]) -> None:
        self._aliases = [
            (service_id, normalize(alias, drop_spaces=True).text)
            for service_id, t in terms.items()
            for alias in t.aliases
        ]
        self._keywords = [
            (service_id, normalize(word, drop_spaces=True).text)
            for service_id, t in terms.items()
            for word in t.keywords
        ]
        self.terms = dict(terms)

    @classmethod
    def from_catalog(cls, catalog: Catalog) -> "ServiceMatcher":
        return cls(
            {
                s.id: ServiceTerms(tuple(s.aliases), tuple(s.keywords))
                for s in catalog.services.values()
            }
        )

    def to_dict(self) -> dict[str, dict[str, list[str]]]:
        return {
            sid: {"aliases": list(t.aliases), "keywords": list(t.keywords)}
            for sid, t in self.terms.items()
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Mapping[str, list[str]]]) -> "ServiceMatcher":
        return cls(
            {
                sid: ServiceTerms(tuple(t.get("aliases", ())), tuple(t.get("keywords", ())))
                for sid, t in data.items()
            }
        )

    def resolve(self, text: str) -> Resolution:
        norm = normalize(text, drop_spaces=True)
        hay = norm.text[:MAX_MATCH_CHARS]
        if not hay:
            return Resolution((), ())
        pairs = _bigrams(hay)
        found: list[tuple[int, int, int, str]] = []  # (start, end, edits, service) in `hay`
        for service_id, alias in self._aliases:
            start = hay.find(alias)
            if start >= 0:
                while start >= 0:
                    found.append((start, start + len(alias), 0, service_id))
                    start = hay.find(alias, start + 1)
                continue
            k = allowed_edits(len(alias))
            # q-gram lemma: a match within k edits shares >= len-1-2k of the alias's bigrams.
            if k and sum(alias[i : i + 2] in pairs for i in range(len(alias) - 1)) >= len(alias) - 1 - 2 * k:
                found += [(s, e, d, service_id) for s, e, d in _approximate(alias, hay, k)]
        # Exact before fuzzy, longer before shorter, earlier before later; no overlaps.
        found.sort(key=lambda f: (f[2], -(f[1] - f[0]), f[0]))
        taken: list[tuple[int, int, int, str]] = []
        for item in found:
            if all(item[1] <= t[0] or item[0] >= t[1] for t in taken):
                taken.append(item)
        taken.sort()
        mentions = tuple(
            ServiceMention(sid, *norm.span(s, e), edits=d) for s, e, d, sid in taken
        )
        if mentions:
            return Resolution(mentions, tuple(dict.fromkeys(m.service_id for m in mentions)))
        candidates = tuple(dict.fromkeys(sid for sid, word in self._keywords if word in hay))
        return Resolution((), candidates)


def _bigrams(text: str) -> set[str]:
    return {text[i : i + 2] for i in range(len(text) - 1)}


def _approximate(pattern: str, text: str, k: int) -> list[tuple[int, int, int]]:
    """Substrings of `text` within `k` edits of `pattern` (Sellers' algorithm).

    Returns the best (fewest edits, then longest) non-overlapping (start, end, edits).
    """
    m = len(pattern)
    # Each cell holds (edits, start of the match in text).
    prev = [(i, 0) for i in range(m + 1)]
    hits: list[tuple[int, int, int]] = []
    for j, ch in enumerate(text, start=1):
        cur = [(0, j)]
        for i in range(1, m + 1):
            sub = prev[i - 1][0] + (pattern[i - 1] != ch)
            dele = cur[i - 1][0] + 1
            ins = prev[i][0] + 1
            if sub <= dele and sub <= ins:
                cur.append((sub, prev[i - 1][1]))
            elif dele <= ins:
                cur.append((dele, cur[i - 1][1]))
            else:
                cur.append((ins, prev[i][1]))
        edits, start = cur[m]
        if edits <= k:
            hits.append((start, j, edits))
        prev = cur
    hits.sort(key=lambda h: (h[2], -(h[1] - h[0])))
    best: list[tuple[int, int, int]] = []
    for h in hits:
        if all(h[1] <= b[0] or h[0] >= b[1] for b in best):
            best.append(h)
    return best
