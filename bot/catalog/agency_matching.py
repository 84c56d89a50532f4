"""Find which agency a Thai message names (ขนส่ง, อำเภอ, กงสุล, ตำรวจ, อบต. ...), from the
catalog's agency `aliases`.

Used by the NLU's agency extractor (the `agency` entity, value the agency `code`). Agency
aliases are short, ordinary words, so a match counts only where it is a word of the message,
never a piece of another one:

- both ends of the match are word boundaries: pythainlp `newmm` word edges, or a space or dot
  the citizen typed (สน. in "สน.ไม่รับเรื่อง", not in สนใจ; สถ. not in สถานะ; เขต not in หมดเขต,
  ขอบเขต, เขตอุตสาหกรรม, which newmm keeps whole);
- an abbreviation whose letters without the dot are a Thai word of their own (สน, "to care":
  "ไม่สนเลย") counts only with its dot typed;
- an ordinary word that also names something else stands only where it does not: `LOOKALIKES`
  lists, per alias, the words beside it that make it a zone, a parcel carrier or an adjective
  (เขตพื้นที่, ในเขต, บริษัทขนส่ง, ขนส่งพัสดุ), and the aliases that only name an agency after
  a word about going to, contacting or working at it (`NEEDS_AGENCY_CONTEXT`: ท้องถิ่น in
  "ไปติดต่อท้องถิ่น" but not in "อาหารท้องถิ่น"); messages about parcels and shopping
  (`bot.catalog.matching.OFF_DOMAIN_CUES`) name no transport department;
- a match inside a service mention is the service's words, not an agency (ตำรวจ in ใบผ่านตำรวจ,
  ทะเบียนพาณิชย์ in จดทะเบียนพาณิชย์): the caller passes the service mentions to `exclude`;
- an agency word written right after another agency's, without a space, qualifies it
  (จัดหางานเขตไหน: which area's employment office, not a district office).

Longer aliases win over the shorter ones inside them (ที่ว่าการอำเภอ, สำนักทะเบียนอำเภอ). There is
no typo tolerance: precision matters more than recall here (a wrong agency sends a complaint
to the wrong office), and normalisation already absorbs the common slips (marks typed in the
wrong order, เเ for แ, stretched letters, missing spaces, dots).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

from bot.catalog.loader import Catalog
from bot.catalog.matching import MAX_MATCH_CHARS, OFF_DOMAIN_CUES, _Context, thai_words
from bot.text import normalize


@dataclass(frozen=True)
class AgencyMention:
    """An agency named in the text; `start`/`end` index the original text."""

    code: str
    start: int
    end: int


@dataclass(frozen=True)
class Lookalikes:
    """Words that, right before or right after an alias, make it mean something else."""

    before: tuple[str, ...] = ()
    after: tuple[str, ...] = ()


# Measured on nlu_data (training and test sets) and the lookalikes in tests/nlu: each entry is a
# use of the word that is not the agency. Keys are normalised aliases (no spaces, no dots).
LOOKALIKES: dict[str, Lookalikes] = {
    # เขต the district office (ที่เขต, เจ้าหน้าที่เขต, เขตบางกะปิ) vs. a zone or area.
    "เขต": Lookalikes(
        before=("ใน", "นอก", "ข้าม", "ทุก", "หมด", "ขอบ", "แบ่ง", "เข้า", "ต่าง", "ออกนอก"),
        after=(
            "พื้นที่", "ห้าม", "ปลอด", "แดน", "ติดต่อ", "การศึกษา", "เลือกตั้ง", "รับผิดชอบ",
            "อุตสาหกรรม", "เศรษฐกิจ", "ชุมชน", "ทหาร", "อันตราย", "ป่า", "ก่อสร้าง",
            "โรงเรียน", "บริการ",
        ),
    ),
    # ขนส่ง the land transport office (ไปขนส่ง, ขนส่งเปิดกี่โมง) vs. freight and parcel carriers.
    "ขนส่ง": Lookalikes(
        before=("บริษัท", "รถ", "ระบบ", "ธุรกิจ", "ค่า", "การ", "ฝ่าย", "พนักงานส่ง", "เอกชน"),
        after=(
            "สินค้า", "พัสดุ", "เอกชน", "มวลชน", "ทางเรือ", "ทางอากาศ", "ทางราง", "ระบบราง",
            "เคอรี่", "kerry", "flash", "แฟลช", "ไปรษณีย์",
        ),
    ),
    "ท้องถิ่น": Lookalikes(after=("นิยม",)),
    "ปกครอง": Lookalikes(before=("ผู้", "การ", "ระบอบ", "ใต้", "อยู่ใต้")),
}

# Words that are agencies only after a word about going to, contacting or working at one: used
# alone they are adjectives (อาหารท้องถิ่น, ผู้นำท้องถิ่น, องค์กรปกครองส่วนท้องถิ่น).
NEEDS_AGENCY_CONTEXT = frozenset({"ท้องถิ่น", "ปกครอง"})
AGENCY_CONTEXT_BEFORE = (
    "ที่", "ไป", "มา", "ของ", "จาก", "กับ", "ถึง", "เจ้าหน้าที่", "จนท", "พนักงาน", "ข้าราชการ",
    "ร้องเรียน", "ร้องทุกข์", "ฟ้อง", "ติดต่อ", "แจ้ง", "ถาม", "โทร", "โทรหา", "หา", "ฝ่าย",
    "สำนักงาน", "เรื่อง",
)

# Words newmm joins to an agency word into one (เจ้าหน้าที่ตำรวจ, สถานกงสุล, ตำรวจจราจร): the
# alias still counts when its edge inside that word is exactly where one of these ends or starts.
JOINED_BEFORE = ("เจ้าหน้าที่", "จนท", "พนักงาน", "ข้าราชการ", "นายก", "ปลัด", "สถาน", "ฝ่าย", "ที่", "ไป")
JOINED_AFTER = ("จราจร", "ทางหลวง", "ภูธร", "นครบาล", "ตำบล", "นคร", "จังหวัด")

# Fields whose cues say the message is about something else than a government office, for
# the aliases that are ordinary words (ขนส่ง: "ขนส่งส่งพัสดุช้า" is a parcel carrier).
OFF_DOMAIN_FIELDS = ("shopping",)


def needs_dot(alias: str) -> bool:
    """An abbreviation that, without its dot, is a Thai word (สน.): the dot must be typed."""
    bare = alias.replace(".", "").replace(" ", "")
    return "." in alias and bare in thai_words()


class AgencyMatcher:
    """Agency mentions from the catalog's agency aliases (code -> aliases)."""

    def __init__(self, terms: Mapping[str, Sequence[str]]) -> None:
        self.terms = {code: tuple(aliases) for code, aliases in terms.items()}
        spellings: dict[tuple[str, str], list[str]] = {}
        for code, aliases in self.terms.items():
            for alias in aliases:
                key = normalize(alias, drop_spaces=True).text
                if key:
                    spellings.setdefault((code, key), []).append(alias)
        # Longer aliases first, so a longer match is kept over the shorter ones inside it.
        self._aliases = sorted(spellings, key=lambda ck: (-len(ck[1]), ck[1], ck[0]))
        # A dot is needed only when every spelling of the alias has it ("อบต." and "อบต": not).
        self._dotted = {
            key: normalize(found[0]).text.replace(" ", "")
            for (_, key), found in spellings.items()
            if all(needs_dot(alias) for alias in found)
        }
        self._ordinary = {key for _, key in spellings if key in thai_words()}
        self._cues = tuple(sorted({
            normalize(c, drop_spaces=True).text for f in OFF_DOMAIN_FIELDS for c in OFF_DOMAIN_CUES.get(f, ())
        }))
        self._lookalikes = {
            normalize(k, drop_spaces=True).text: Lookalikes(_norm(v.before), _norm(v.after))
            for k, v in LOOKALIKES.items()
        }
        self._context = _norm(AGENCY_CONTEXT_BEFORE)
        self._prefixes = _norm(JOINED_BEFORE)
        self._suffixes = _norm(JOINED_AFTER)

    @classmethod
    def from_catalog(cls, catalog: Catalog) -> "AgencyMatcher":
        return cls({a.code: tuple(a.aliases) for a in catalog.agencies.values()})

    def to_dict(self) -> dict[str, list[str]]:
        return {code: list(aliases) for code, aliases in self.terms.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Iterable[str]]) -> "AgencyMatcher":
        return cls({code: tuple(aliases) for code, aliases in data.items()})

    def resolve(self, text: str, exclude: Sequence[tuple[int, int]] = ()) -> tuple[AgencyMention, ...]:
        """The agencies `text` names, in order; none inside the `exclude` spans (original offsets)."""
        norm = normalize(text, drop_spaces=True)
        hay = norm.text[:MAX_MATCH_CHARS]
        hits = [
            (start, start + len(key), code, key)
            for code, key in self._aliases
            for start in _occurrences(hay, key)
        ]
        if not hits:
            return ()
        context = _Context(hay)
        # Word edges: newmm's, and wherever the citizen typed a space or a dot (dropped from hay).
        gaps = {i for i in range(1, len(hay)) if norm.starts[i] > norm.ends[i - 1]}
        edges = {s for _, s, _ in context.words} | {e for _, _, e in context.words} | gaps | {0, len(hay)}
        taken: list[tuple[int, int, str, str]] = []
        for start, end, code, key in hits:  # longest first
            if any(start < t[1] and end > t[0] for t in taken):
                continue
            if not (start in edges or self._joined(hay, edges, start, self._prefixes, before=True)):
                continue
            if not (end in edges or self._joined(hay, edges, end, self._suffixes, before=False)):
                continue
            if key in self._dotted and not self._dot_typed(text, norm.span(start, end), self._dotted[key]):
                continue
            if not self._stands(context, edges, start, end, key):
                continue
            span = norm.span(start, end)
            if any(span[0] < e and span[1] > s for s, e in exclude):
                continue
            taken.append((start, end, code, key))
        taken.sort()
        kept: list[tuple[int, int, str, str]] = []
        for item in taken:
            previous = kept[-1] if kept else None
            if previous and previous[1] == item[0] and item[0] not in gaps and previous[2] != item[2]:
                continue  # จัดหางานเขต: the second word qualifies the first agency
            kept.append(item)
        return tuple(AgencyMention(code, *norm.span(s, e)) for s, e, code, _ in kept)

    def _stands(self, context: _Context, edges: set[int], start: int, end: int, key: str) -> bool:
        """Whether the alias `key` at [start, end) of the message names its agency."""
        hay = context.hay

        def word_before(words: tuple[str, ...]) -> bool:
            return any(hay.endswith(w, 0, start) and start - len(w) in edges for w in words)

        def word_after(words: tuple[str, ...]) -> bool:
            return any(hay.startswith(w, end) and end + len(w) in edges for w in words)

        lookalikes = self._lookalikes.get(key)
        if lookalikes and (word_before(lookalikes.before) or word_after(lookalikes.after)):
            return False
        if key in NEEDS_AGENCY_CONTEXT and start > 0 and not word_before(self._context):
            return False
        if key in self._ordinary and context.has_word(start, end, self._cues):
            return False
        return True

    @staticmethod
    def _joined(hay: str, edges: set[int], at: int, words: tuple[str, ...], *, before: bool) -> bool:
        """Whether `at`, inside a newmm word, is where one of `words` joins the alias (the word
        before it, or after it, is exactly one of them): เจ้าหน้าที่|ตำรวจ, นายก|อบต, ตำรวจ|จราจร."""
        if before:
            return any(hay.endswith(w, 0, at) and at - len(w) in edges for w in words)
        return any(hay.startswith(w, at) and at + len(w) in edges for w in words)

    @staticmethod
    def _dot_typed(text: str, span: tuple[int, int], dotted: str) -> bool:
        """Whether the original text at `span` (and a dot right after it) spells `dotted`."""
        start, end = span
        typed = normalize(text[start : end + 3]).text.replace(" ", "")
        return typed.startswith(dotted)


def _norm(words: Iterable[str]) -> tuple[str, ...]:
    return tuple(normalize(w, drop_spaces=True).text for w in words)


def _occurrences(hay: str, key: str) -> Iterable[int]:
    at = hay.find(key)
    while at >= 0:
        yield at
        at = hay.find(key, at + 1)
