"""`Reply`s as LINE messages: LINE's limits, and cutting Thai text without breaking a character.

LINE refuses (400) a request that breaks one of its limits, so everything is cut here first
(after joining the short messages Rasa splits an answer into, see `merged`):

- a text message holds at most 5,000 characters; longer text is split at a line break, else
  a space, else anywhere that does not split a character cluster;
- a quick-reply label holds at most 20 characters, and a message at most 13 quick-reply items;
- one reply or push call carries at most 5 messages.

LINE counts characters as UTF-16 code units (an emoji outside the BMP counts two), so lengths
are measured that way. A Thai "character" as a reader sees it is a cluster: a base letter with
the vowel and tone marks written above or below it (ที่ is three code points). Cutting between
them leaves a stray mark that renders as a dotted circle, so no cut falls before a combining
mark, SARA AM (ำ) or LAKKHANGYAO (ๅ), inside an emoji sequence joined by ZWJ, or before a
variation selector or a skin-tone modifier.
"""

from __future__ import annotations

import unicodedata
import uuid
from typing import Iterable

from linebot.v3.messaging import Message, MessageAction, PostbackAction, QuickReply, QuickReplyItem, TextMessage

from bot.answers.reply import Reply

TEXT_MAX = 5000
LABEL_MAX = 20
QUICK_REPLY_MAX = 13
MESSAGES_PER_CALL = 5
POSTBACK_DATA_MAX = 300
DISPLAY_TEXT_MAX = 300
ELLIPSIS = "…"
# Shown above buttons that come without text (the gateway's "more" page): LINE needs some text.
BUTTONS_ONLY_TEXT = "เลือกหัวข้อได้จากปุ่มด้านล่าง"
# Fixed namespace for the X-Line-Retry-Key UUIDs: the same key and batch always give the same UUID.
RETRY_KEY_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/sla-bot/line/x-line-retry-key")

_ZWJ = "\u200d"
_ATTACHED_THAI = {"\u0e33", "\u0e45"}  # SARA AM and LAKKHANGYAO: spacing, yet part of the cluster before


def line_length(text: str) -> int:
    """The length LINE counts: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def _joins_previous(char: str) -> bool:
    """True when `char` belongs to the cluster of the character before it."""
    if char in _ATTACHED_THAI or char == _ZWJ:
        return True
    if "\ufe00" <= char <= "\ufe0f" or "\U0001f3fb" <= char <= "\U0001f3ff":  # variation selectors, skin tones
        return True
    return unicodedata.category(char) in ("Mn", "Mc", "Me")


def safe_cut(text: str, limit: int) -> int:
    """The largest index i with line_length(text[:i]) <= limit that does not split a cluster.

    Falls back to a plain cut only when a single cluster is longer than `limit`.
    """
    units = 0
    end = len(text)
    for index, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > limit:
            end = index
            break
    if end == len(text):
        return end
    cut = end
    while cut > 0 and (_joins_previous(text[cut]) or text[cut - 1] == _ZWJ):
        cut -= 1
    return cut or end


def cut_label(title: str, limit: int = LABEL_MAX) -> str:
    """A button title that fits LINE's label limit, ending in "…" when it had to be cut."""
    title = " ".join(title.split())
    if line_length(title) <= limit:
        return title
    return title[: safe_cut(title, limit - line_length(ELLIPSIS))].rstrip() + ELLIPSIS


def split_text(text: str, limit: int = TEXT_MAX) -> list[str]:
    """`text` in pieces of at most `limit` characters, split at line breaks or spaces if possible."""
    pieces: list[str] = []
    text = text.strip()
    while line_length(text) > limit:
        cut = safe_cut(text, limit)
        head = text[:cut]
        for separator in ("\n\n", "\n", " "):
            at = head.rfind(separator)
            if at > cut // 2:
                cut = at
                break
        pieces.append(text[:cut].rstrip())
        text = text[cut:].strip()
    if text:
        pieces.append(text)
    return pieces


def merged(replies: Iterable[Reply], limit: int = TEXT_MAX) -> list[Reply]:
    """Consecutive replies joined into one message while they fit and carry no buttons before the end.

    Rasa's REST channel splits an answer at every blank line into separate messages; on LINE
    each would be a message of its own, and more than 5 would cost pushes. Joined back with
    the blank line, the answer reads as written.
    """
    joined: list[Reply] = []
    for reply in replies:
        if not reply.text.strip() and not reply.buttons:
            continue
        last = joined[-1] if joined else None
        if (
            last is not None
            and not last.buttons
            and reply.text.strip()
            and line_length(last.text) + 2 + line_length(reply.text) <= limit
        ):
            joined[-1] = Reply(f"{last.text.rstrip()}\n\n{reply.text.strip()}", reply.buttons)
        else:
            joined.append(reply)
    return joined


def line_sized(replies: Iterable[Reply]) -> list[Reply]:
    """The replies re-cut so that each becomes exactly one LINE text message.

    Short consecutive replies are joined (`merged`); a long text becomes several replies, its
    buttons with the last piece. A reply with buttons but no text gets BUTTONS_ONLY_TEXT; one
    with neither is dropped.
    """
    sized: list[Reply] = []
    for reply in merged(replies):
        pieces = split_text(reply.text)
        if not pieces:
            if not reply.buttons:
                continue
            pieces = [BUTTONS_ONLY_TEXT]
        sized.extend(Reply(piece) for piece in pieces[:-1])
        sized.append(Reply(pieces[-1], reply.buttons))
    return sized


def batches(replies: list[Reply], size: int = MESSAGES_PER_CALL) -> list[list[Reply]]:
    return [replies[i : i + size] for i in range(0, len(replies), size)]


def quick_reply_item(title: str, payload: str) -> QuickReplyItem:
    """A button as a quick reply: a postback carrying the payload, showing the full title in chat.

    A payload too long for postback data (LINE allows 300 characters) is sent as the title
    typed as a message instead, which the NLU reads like any question.
    """
    label = cut_label(title)
    shown = title[: safe_cut(title, DISPLAY_TEXT_MAX)] or label
    if line_length(payload) <= POSTBACK_DATA_MAX:
        return QuickReplyItem(action=PostbackAction(label=label, data=payload, display_text=shown))
    return QuickReplyItem(action=MessageAction(label=label, text=shown))


def to_messages(batch: list[Reply]) -> list[Message]:
    """One call's worth of line-sized replies (at most 5) as LINE text messages.

    LINE shows quick replies only under the last message of a call, so the buttons of the
    batch's last reply that has buttons go there.
    """
    if len(batch) > MESSAGES_PER_CALL:
        raise ValueError(f"at most {MESSAGES_PER_CALL} messages per LINE call, got {len(batch)}")
    buttons = next((reply.buttons for reply in reversed(batch) if reply.buttons), ())
    messages: list[Message] = []
    for index, reply in enumerate(batch):
        quick_reply = None
        if index == len(batch) - 1 and buttons:
            items = [quick_reply_item(b.title, b.payload) for b in buttons[:QUICK_REPLY_MAX]]
            quick_reply = QuickReply(items=items)
        messages.append(TextMessage(text=reply.text, quick_reply=quick_reply))
    return messages


def retry_key(key: str, batch_index: int) -> str:
    """The X-Line-Retry-Key (a UUID) for one push call: the same key and batch, the same UUID."""
    return str(uuid.uuid5(RETRY_KEY_NAMESPACE, f"{key}#{batch_index}"))
