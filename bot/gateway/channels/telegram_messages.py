"""Replies as Telegram messages: text split at the message limit, buttons as inline keyboards.

Pure functions, no network. Two Telegram limits shape them:

- a message holds at most 4,096 characters, counted as Telegram counts them (UTF-16 code
  units: an emoji outside the Basic Multilingual Plane counts twice). Longer answers are split
  on line breaks; a single line longer than the limit is split at a space, and failing that
  between two Thai character clusters, never between a consonant and its vowel or tone marks
  (which would show a dotted circle), nor after a leading vowel (เ แ โ ใ ไ) that belongs to the
  next consonant;
- a chat takes about one message a second before Telegram answers 429, so an answer's
  paragraphs (separate messages from Rasa) go out joined (`joined`);
- a button's `callback_data` holds 1 to 64 bytes, too few for a Rasa payload such as
  `/ask_documents{"service": "foreign_worker_permit"}` with Thai entity values. A button carries a
  short token derived from its payload instead (`button_token`); the channel keeps the
  token-to-payload map and hands the conversation exactly the payload it offered.
"""

from __future__ import annotations

import base64
import hashlib
import unicodedata
from typing import Iterable

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.answers.reply import Button, Reply

MESSAGE_LIMIT = 4096  # characters (UTF-16 code units) in one message's text
CALLBACK_DATA_MAX = 64  # bytes
TOKEN_PREFIX = "b:"
# Telegram shows an inline button's label on one line; two short labels share a row.
SHORT_LABEL = 12
# A reply that is only buttons (the "more" page) still needs words: Telegram refuses empty text.
BUTTONS_ONLY_TEXT = "เลือกหัวข้อได้จากปุ่มด้านล่าง"

_LEADING_VOWELS = frozenset("\u0e40\u0e41\u0e42\u0e43\u0e44")  # เ แ โ ใ ไ: written before their consonant
# Spacing characters that still belong to the cluster before them: SARA AM, LAKKHANGYAO.
_ATTACHED_THAI = frozenset("\u0e33\u0e45")
_ZWJ = "\u200d"


def telegram_length(text: str) -> int:
    """The length Telegram counts: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def _joins_previous(char: str) -> bool:
    """True for a character that must stay with the one before it (marks, SARA AM, ZWJ, selectors)."""
    return (
        unicodedata.category(char) in ("Mn", "Mc", "Me")
        or char in _ATTACHED_THAI
        or char == _ZWJ
        or "\ufe00" <= char <= "\ufe0f"
        or "\U0001f3fb" <= char <= "\U0001f3ff"  # skin tones
    )


def can_cut(text: str, index: int) -> bool:
    """Whether text[:index] / text[index:] splits between two clusters (Thai syllables stay whole)."""
    if index <= 0 or index >= len(text):
        return True
    return not (_joins_previous(text[index]) or text[index - 1] in _LEADING_VOWELS or text[index - 1] == _ZWJ)


def _fit(text: str, limit: int) -> int:
    """How many characters of `text` fit in `limit` UTF-16 code units."""
    used = 0
    for index, char in enumerate(text):
        used += 2 if ord(char) > 0xFFFF else 1
        if used > limit:
            return index
    return len(text)


def _cut_line(line: str, limit: int) -> list[str]:
    """A line longer than `limit`, in pieces: at the last space that fits, else between clusters."""
    pieces = []
    while telegram_length(line) > limit:
        end = _fit(line, limit)
        space = line.rfind(" ", 0, end + 1)
        if space > 0:
            pieces.append(line[:space])
            line = line[space + 1 :]
            continue
        cut = end
        while cut > 0 and not can_cut(line, cut):
            cut -= 1
        if cut == 0:  # one enormous cluster (never in real text): cut where it fits
            cut = end
        pieces.append(line[:cut])
        line = line[cut:]
    pieces.append(line)
    return pieces


def split_text(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """`text` as messages of at most `limit`, split on line breaks, never inside a Thai cluster."""
    if telegram_length(text) <= limit:
        return [text]
    chunks: list[str] = []
    current = ""
    for line in text.split("\n"):
        for piece in _cut_line(line, limit):
            candidate = f"{current}\n{piece}" if current else piece
            if current and telegram_length(candidate) > limit:
                chunks.append(current)
                current = piece
            else:
                current = candidate
    if current:
        chunks.append(current)
    return [chunk for chunk in chunks if chunk.strip()] or [text[: _fit(text, limit)]]


def button_token(payload: str) -> str:
    """The `callback_data` standing for a button's payload: short, ASCII, the same for the same payload."""
    digest = hashlib.sha256(payload.encode("utf-8")).digest()
    return TOKEN_PREFIX + base64.urlsafe_b64encode(digest[:9]).decode("ascii")


def inline_keyboard(buttons: Iterable[Button]) -> InlineKeyboardMarkup | None:
    """An inline keyboard for `buttons` (two short labels a row, else one), or None without buttons."""
    rows: list[list[InlineKeyboardButton]] = []
    pending: list[InlineKeyboardButton] = []
    for button in buttons:
        key = InlineKeyboardButton(button.title, callback_data=button_token(button.payload))
        if len(button.title) > SHORT_LABEL:
            if pending:
                rows.append(pending)
                pending = []
            rows.append([key])
            continue
        pending.append(key)
        if len(pending) == 2:
            rows.append(pending)
            pending = []
    if pending:
        rows.append(pending)
    return InlineKeyboardMarkup(rows) if rows else None


def joined(replies: Iterable[Reply], limit: int = MESSAGE_LIMIT) -> list[Reply]:
    """Consecutive replies joined into as few messages as fit, paragraphs kept apart by a blank line.

    Rasa's REST channel hands over an answer's paragraphs as separate messages (it splits text on
    blank lines); sent one by one they would arrive as a burst of bubbles, and Telegram allows a
    chat about one message a second before answering 429. A reply with buttons ends its group,
    so its keyboard stays under the text it belongs to.
    """
    out: list[Reply] = []
    text = ""
    for reply in replies:
        if not reply.text.strip() and not reply.buttons:
            continue
        candidate = f"{text}\n\n{reply.text}" if text and reply.text.strip() else (text or reply.text)
        if text and telegram_length(candidate) > limit:
            out.append(Reply(text))
            candidate = reply.text
        if reply.buttons:
            out.append(Reply(candidate, reply.buttons))
            text = ""
        else:
            text = candidate
    if text:
        out.append(Reply(text))
    return out


def messages(reply: Reply, limit: int = MESSAGE_LIMIT) -> list[tuple[str, InlineKeyboardMarkup | None]]:
    """One reply as (text, keyboard) messages in order; the keyboard goes with the last one."""
    text = reply.text if reply.text.strip() else (BUTTONS_ONLY_TEXT if reply.buttons else "")
    if not text:
        return []
    chunks = split_text(text, limit)
    keyboard = inline_keyboard(reply.buttons)
    return [(chunk, keyboard if index == len(chunks) - 1 else None) for index, chunk in enumerate(chunks)]
