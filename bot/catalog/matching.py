"""Find which catalog service a Thai message talks about, from the catalog's aliases.

Used by the NLU's service extractor (to emit the `service` entity) and by the actions (to
offer candidates when the message is ambiguous), so both always agree. Matching runs on
normalised text without spaces, so "บัตร ปชช." finds the alias "บัตรปชช"; longer aliases also
match with one or two typing mistakes. Keywords are weak, shared words: they never resolve a
service on their own, they only suggest candidates.

A matcher must never invent a service. Matches are therefore checked against the rest of
the message (pythainlp's Thai word list and Thai National Corpus counts, which ship with the
package, tell real words):

- a typo match (an alias found with edits) stands only when the typing mistake did not just
  produce other real Thai words (แจ้งเปิด, "report a reopened line", is not a typo of แจ้งเกิด:
  เกิด became the common word เปิด; ต่อภาสีรถ is a typo of ต่อภาษีรถ; a tone mark dropped or
  swapped, แจงเกิด, is the commonest Thai typo and stays one);
- a typo match, or an exact match of an alias that is an ordinary word in its own right
  (บัตรประชาชน, ร้านอาหาร, พาสปอร์ต, English terms), stands only when the message is not about
  another field: banks, phone companies, shopping, dining, health, weather, travel, insurance,
  entertainment (`OFF_DOMAIN_CUES`: "เปิดบัญชีธนาคารใช้บัตรประชาชนไหม" names no service).
  Service phrases (ต่อภาษีรถ, แจ้งเกิด, ย้ายที่อยู่) give way to phone-company cues only;
- an ordinary-word alias naming premises or a household activity (ร้านอาหาร, คาเฟ่, สร้างบ้าน)
  stands only in a message about the procedure, or alone (`VENUE_AND_ACTIVITY_HEADS`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
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

# Words that put a message in another field than government services. They overrule typo
# matches and matches of ordinary-word aliases (see the module's docstring); an exact service
# phrase only for `FIELDS_OVERRULING_SERVICE_PHRASES`. A Thai cue counts where one of its ends
# is a word boundary of the message (Thai runs words together, and pythainlp keeps compounds
# such as การแพ้ยา whole), an English cue where it is a whole word; a cue that is part of one
# of the matched service's own terms (แพทย์ in ใบรับรองแพทย์) does not count against it. Left
# out on purpose, because citizens use them about services too: paying (บัตรเครดิต, โอนเงิน,
# พร้อมเพย์, ส่วนลด), phone numbers of offices (เบอร์โทร), parcels vs the transport department
# (ขนส่ง), travel abroad (เที่ยว, วีซ่า: passports), vehicle insurance (พ.ร.บ.: vehicle tax),
# medical certificates and health checks (หาหมอ, คลินิก, ความดัน, ประกันสุขภาพ: driving
# licences, work permits), homes (ที่พัก), partnerships (หุ้นส่วน), app menus (เมนู), reviews
# of a procedure (รีวิว), schools.
OFF_DOMAIN_CUES: dict[str, tuple[str, ...]] = {
    "bank": (
        "ธนาคาร", "แบงก์", "แบงค์", "เปิดบัญชี", "บัญชีธนาคาร", "บัญชีออมทรัพย์", "ออมทรัพย์",
        "เงินฝาก", "ฝากเงิน", "ฝากประจำ", "ดอกเบี้ย", "กู้เงิน", "เงินกู้", "ยื่นกู้", "สินเชื่อ",
        "บัตรเอทีเอ็ม", "เอทีเอ็ม", "atm", "ตู้กดเงิน", "กดเงิน", "บัตรเดบิต", "mobile banking",
        "โมบายแบงก์กิ้ง", "แอปธนาคาร", "สมัครพร้อมเพย์", "ผ่อนบัตร", "ออมสิน", "กสิกร", "kbank",
        "scb", "ktb", "ttb", "ธกส",
    ),
    "telecom": (
        "ซิม", "ซิมการ์ด", "sim", "เปิดเบอร์", "ปิดเบอร์", "เบอร์ใหม่", "ย้ายค่าย", "ค่ายมือถือ",
        "ค่าโทร", "แพ็กเกจ", "แพ็คเกจ", "โปรเน็ต", "เน็ตบ้าน", "อินเทอร์เน็ตบ้าน", "ไวไฟ", "wifi",
        "สัญญาณมือถือ", "สัญญาณหาย", "สัญญาณเน็ต", "ไม่มีสัญญาณ", "เติมเงิน", "ais", "dtac",
        "truemove", "ทรูมูฟ", "ดีแทค", "เอไอเอส", "3bb",
    ),
    "shopping": (
        "shopee", "ช้อปปี้", "lazada", "ลาซาด้า", "สั่งของ", "สั่งซื้อ", "พัสดุ", "คืนสินค้า",
        "เปลี่ยนสินค้า", "โค้ดส่วนลด", "ไซส์", "flash sale", "รองเท้า", "เสื้อผ้า",
    ),
    "dining": (
        "อร่อย", "เมนูอาหาร", "จองโต๊ะ", "รีวิวร้าน", "บุฟเฟ่ต์", "หมูกระทะ", "ชาบู", "สั่งอาหาร",
        "grabfood", "lineman", "foodpanda", "wongnai", "แนะนำร้าน", "แนะนำคาเฟ่", "สูตรอาหาร",
        "บรรยากาศ",
    ),
    "health": (
        "ปวด", "ไข้", "ตัวร้อน", "เจ็บคอ", "ท้องเสีย", "กินยา", "ยาแก้", "หมอฟัน", "ทำฟัน",
        "ทันตกรรม", "นัดหมอ", "วัคซีน", "ฉีดยา", "ค่ารักษา", "แพ้ยา", "ผ่าตัด",
    ),
    "weather": (
        "ฝนตก", "ฝนจะตก", "สภาพอากาศ", "พยากรณ์", "อากาศร้อน", "อากาศหนาว", "อากาศวันนี้",
        "พายุ", "ฝุ่น", "pm25", "อุณหภูมิ", "หนาว",
    ),
    "travel": ("ตั๋วเครื่องบิน", "จองตั๋ว", "สายการบิน", "เที่ยวบิน", "เช็คอิน", "โรงแรม", "เช่ารถ", "รถทัวร์"),
    "insurance": ("ประกันชีวิต", "เคลม", "เบี้ยประกัน"),
    "leisure": (
        "หวย", "ลอตเตอรี่", "ฟุตบอล", "ดูบอล", "ซีรีส์", "หนังเข้าใหม่", "เกม", "ซื้อหุ้น",
        "เล่นหุ้น", "หุ้นตัวไหน", "คริปโต", "บิทคอยน์", "ราคาทอง",
    ),
    # not ค่าน้ำ alone: ค่าน้ำร้อนน้ำชา ("tea money") is a bribe, and complaints about it are ours
    "utilities": ("ค่าไฟ", "ค่าน้ำประปา", "บิลค่าน้ำ", "จ่ายค่าน้ำ", "การไฟฟ้า", "การประปา"),
}

# Fields whose cues overrule even a service phrase: nothing a citizen asks a government
# service about is said with them ("ย้ายที่อยู่ติดตั้งเน็ตบ้านใหม่ได้ไหม" is about home internet).
# Not banks (fees are paid there), dining and shopping (food shops and online sellers need
# permits and registrations), health, travel.
FIELDS_OVERRULING_SERVICE_PHRASES = ("telecom",)

# Ordinary-word aliases that name a business's premises or a household activity (ร้านอาหาร,
# ร้านกาแฟ, คาเฟ่, ภัตตาคาร, สร้างบ้าน, ย้ายบ้าน) are what people talk about anyway: "ร้านอาหาร
# เปิดกี่โมง" asks about a restaurant. They name their service only in a message about the
# procedure (`PROCEDURE_WORDS`), or alone ("ร้านอาหารค่ะ", with `FILLER_WORDS` at most). The names
# of documents (พาสปอร์ต, บัตรประชาชน) need no such help: asked about, they are the service.
VENUE_AND_ACTIVITY_HEADS = ("ร้าน", "คาเฟ่", "ภัตตาคาร", "สร้าง", "ย้าย", "ต่อเติม")
PROCEDURE_WORDS = (
    "ยื่น", "อนุญาต", "ใบอนุญาต", "ขออนุญาต", "จดทะเบียน", "ลงทะเบียน", "ทะเบียน", "เอกสาร",
    "หลักฐาน", "ค่าธรรมเนียม", "ค่าปรับ", "ขั้นตอน", "สำนักงาน", "เขต", "อำเภอ", "เทศบาล", "อบต",
    "หน่วยงาน", "เจ้าหน้าที่", "ราชการ", "คุณสมบัติ", "คำขอ", "ร้องเรียน", "ดำเนินการ", "กฎหมาย",
    "ต่ออายุ", "แบบแปลน", "วิศวกร", "สุขาภิบาล", "สาธารณสุข", "กองช่าง", "โยธา", "permit",
    "license", "licence", "registration",
)
FILLER_WORDS = frozenset(
    (
        "ครับ", "ค่ะ", "คะ", "คับ", "ค้าบ", "ครับผม", "ค่า", "คร้าบ", "ฮะ", "จ้า", "จ้ะ", "นะ", "หน่อย",
        "อยาก", "จะ", "เรื่อง", "สอบถาม", "ถาม", "ขอถาม", "สนใจ", "เกี่ยวกับ", "การ", "อยากรู้",
        "สวัสดี", "hi", "hello",
    )
)

_TONE_MARKS = "\u0e48\u0e49\u0e4a\u0e4b"


def allowed_edits(length: int) -> int:
    """Typing mistakes tolerated for an alias of `length` characters."""
    if length >= 14:
        return 2
    if length >= 8:
        return 1
    return 0


# A word of the word list "is typed" when the Thai National Corpus has it this often (about
# 3 in a million words): rare and archaic entries (ขัย in ใบขัยขี่) do not make a typo real.
COMMON_WORD_MIN_COUNT = 100


@lru_cache(maxsize=1)
def thai_words() -> frozenset[str]:
    """pythainlp's Thai word list (shipped with the package: no download)."""
    from pythainlp.corpus import thai_words as words

    return frozenset(words())


@lru_cache(maxsize=1)
def common_thai_words() -> frozenset[str]:
    """The words of `thai_words` people commonly write (Thai National Corpus counts, offline)."""
    from pythainlp.corpus import tnc

    words = thai_words()
    return frozenset(w for w, n in tnc.word_freqs() if n >= COMMON_WORD_MIN_COUNT and w in words)


def segment(text: str) -> list[tuple[str, int, int]]:
    """(word, start, end) of `text` by pythainlp `newmm`, without whitespace."""
    from pythainlp.tokenize import word_tokenize

    out: list[tuple[str, int, int]] = []
    cursor = 0
    for word in word_tokenize(text, engine="newmm", keep_whitespace=False):
        start = text.find(word, cursor)
        if start < 0:
            continue
        cursor = start + len(word)
        if word.strip():
            out.append((word, start, cursor))
    return out


def is_ordinary_word(term: str) -> bool:
    """An alias that is a word in its own right (บัตรประชาชน, ร้านอาหาร) or English."""
    return term in thai_words() or term.isascii()


class ServiceMatcher:
    """Service mentions from the catalog's aliases.

    `guarded=False` turns off the checks that keep it from inventing services (typo
    plausibility, other fields' cues, venue and activity words): the matcher as it was before
    them, for comparisons.
    """

    def __init__(
        self,
        terms: Mapping[str, ServiceTerms],
        off_domain_cues: Mapping[str, tuple[str, ...]] = OFF_DOMAIN_CUES,
        *,
        guarded: bool = True,
    ) -> None:
        self._aliases = [
            (service_id, normalize(alias, drop_spaces=True).text)
            for service_id, t in terms.items()
            for alias in t.aliases
        ]
        # q-gram lemma: a match within k edits shares >= len-1-2k of the alias's bigrams (counted
        # with repeats), so an alias sharing fewer with the message is not searched for typos.
        self._alias_grams = [
            (service_id, alias, tuple(alias[i : i + 2] for i in range(len(alias) - 1)), k, len(alias) - 1 - 2 * k)
            for service_id, alias in self._aliases
            for k in (allowed_edits(len(alias)),)
        ]
        self._keywords = [
            (service_id, normalize(word, drop_spaces=True).text)
            for service_id, t in terms.items()
            for word in t.keywords
        ]
        self._guarded = guarded
        self._ordinary = {alias for _, alias in self._aliases if is_ordinary_word(alias)}
        self._venues = {a for a in self._ordinary if a.startswith(VENUE_AND_ACTIVITY_HEADS)}
        own_terms: dict[str, list[str]] = {}
        for service_id, term in self._aliases + self._keywords:
            own_terms.setdefault(service_id, []).append(term)

        def cues_against(service_id: str, fields) -> tuple[str, ...]:
            # A cue that is part of one of the service's own terms does not count against it.
            own = own_terms.get(service_id, ())
            found = {normalize(c, drop_spaces=True).text for f in fields for c in off_domain_cues.get(f, ())}
            return tuple(sorted(c for c in found if not any(c in term for term in own)))

        overruling = [f for f in off_domain_cues if f in FIELDS_OVERRULING_SERVICE_PHRASES]
        self._cues = {sid: cues_against(sid, list(off_domain_cues)) for sid in own_terms}
        self._phrase_cues = {sid: cues_against(sid, overruling) for sid in own_terms}
        self._procedure = tuple(normalize(w, drop_spaces=True).text for w in PROCEDURE_WORDS)
        self.terms = dict(terms)
        if guarded:
            common_thai_words()  # load the word lists now, not in the middle of a message

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
        context = _Context(hay)
        found: list[tuple[int, int, int, str]] = []  # (start, end, edits, service) in `hay`
        for service_id, alias, alias_pairs, k, shared_needed in self._alias_grams:
            start = hay.find(alias)
            if start >= 0:
                while start >= 0:
                    end = start + len(alias)
                    if self._stands(context, start, end, 0, alias, service_id):
                        found.append((start, end, 0, service_id))
                    start = hay.find(alias, start + 1)
                continue
            if k and sum(map(pairs.__contains__, alias_pairs)) >= shared_needed:
                found += [
                    (s, e, d, service_id)
                    for s, e, d in _approximate(alias, hay, k)
                    if self._stands(context, s, e, d, alias, service_id)
                ]
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

    def _stands(self, context: "_Context", start: int, end: int, edits: int, alias: str, service_id: str) -> bool:
        """Whether a match of `alias` at [start, end) of the message names its service."""
        if not self._guarded:
            return True
        if edits and not is_plausible_typo(context.hay[start:end], alias):
            return False
        if edits or alias in self._ordinary:
            if context.has_word(start, end, self._cues[service_id]):
                return False
        elif context.has_word(start, end, self._phrase_cues[service_id]):
            return False
        if alias in self._venues:
            return context.has_word(start, end, self._procedure) or context.alone(start, end)
        return True


class _Context:
    """The message around a match, segmented into words only when a check needs it."""

    def __init__(self, hay: str) -> None:
        self.hay = hay
        self._words: list[tuple[str, int, int]] | None = None

    @property
    def words(self) -> list[tuple[str, int, int]]:
        if self._words is None:
            self._words = segment(self.hay)
        return self._words

    def has_word(self, start: int, end: int, words: tuple[str, ...]) -> bool:
        """Whether one of `words` stands beside the match [start, end) (or shares a word with
        it: แนะนำร้าน|อาหาร), not within it. A Thai word counts where one of its ends is a word
        boundary (Thai runs words together, and pythainlp keeps compounds such as การแพ้ยา
        whole), an English one where it is a whole word."""
        hay = self.hay
        present = [w for w in words if w in hay]
        if not present:
            return False
        starts = {s for _, s, _ in self.words}
        ends = {e for _, _, e in self.words}
        for word in present:
            at = hay.find(word)
            while at >= 0:
                word_end = at + len(word)
                if at < start or word_end > end:
                    if word.isascii():
                        whole = not (at and hay[at - 1].isascii() and hay[at - 1].isalnum()) and not (
                            word_end < len(hay) and hay[word_end].isascii() and hay[word_end].isalnum()
                        )
                    else:
                        whole = at in starts or word_end in ends or start <= at < end or start < word_end <= end
                    if whole:
                        return True
                at = hay.find(word, at + 1)
        return False

    def alone(self, start: int, end: int) -> bool:
        """Whether the message is the match and filler words (particles, "อยาก", "เรื่อง") only."""
        return all(
            word in FILLER_WORDS or not any(ch.isalnum() for ch in word)
            for word, s, e in self.words
            if e <= start or s >= end
        )


def is_plausible_typo(typed: str, alias: str) -> bool:
    """Whether `typed` (a few edits from `alias`) reads as a mistyped alias, not as other words.

    Not when `typed` is itself a word, nor when a word of it that holds an edit is a common
    word of three or more letters standing where the alias has another real word (แจ้งเปิด for
    แจ้งเกิด, ย้ายร้าน for ย้ายบ้าน), unless only tone marks differ (แจงเกิด).
    """
    if typed in thai_words():
        return False
    words = common_thai_words()
    # For each character of `typed`, the alias character it stands for (None: inserted), and
    # the alias characters deleted just before it.
    aligned, deleted_before = _align(alias, typed)
    edited = {i for i, a in enumerate(aligned) if a is None or alias[a] != typed[i]}
    edited |= {min(i, len(typed) - 1) for i, gone in deleted_before.items() if gone}
    for word, start, end in segment(typed):
        if not edited & set(range(start, end)):
            continue
        if len(word) < 3 or word not in words:
            continue
        indices = [a for a in aligned[start:end] if a is not None]
        indices += [d for i in range(start + 1, end) for d in deleted_before.get(i, [])]
        if not indices:
            continue
        counterpart = alias[min(indices) : max(indices) + 1]
        if counterpart == word or counterpart not in thai_words():
            continue
        if _strip_tones(counterpart) == _strip_tones(word):
            continue
        return False
    return True


def _strip_tones(text: str) -> str:
    return "".join(ch for ch in text if ch not in _TONE_MARKS)


def _align(alias: str, typed: str) -> tuple[list[int | None], dict[int, list[int]]]:
    """A minimal edit alignment: each typed character's alias index (None when inserted), and
    for each typed index the alias indices deleted just before it (key len(typed): at the end)."""
    n, m = len(alias), len(typed)
    cost = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        cost[i][0] = i
    for j in range(m + 1):
        cost[0][j] = j
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            cost[i][j] = min(
                cost[i - 1][j - 1] + (alias[i - 1] != typed[j - 1]),
                cost[i - 1][j] + 1,
                cost[i][j - 1] + 1,
            )
    aligned: list[int | None] = [None] * m
    deleted: dict[int, list[int]] = {}
    i, j = n, m
    while i or j:
        if i and j and cost[i][j] == cost[i - 1][j - 1] + (alias[i - 1] != typed[j - 1]):
            aligned[j - 1] = i - 1
            i, j = i - 1, j - 1
        elif i and cost[i][j] == cost[i - 1][j] + 1:
            deleted.setdefault(j, []).append(i - 1)
            i -= 1
        else:
            j -= 1
    return aligned, deleted


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
