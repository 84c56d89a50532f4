"""Photos and locations a citizen sends on LINE or Telegram, for the complaint form.

The form's place and photo questions tell the gateway what they accept (a control message the
conversation remembers until the citizen's next message: `Conversation.expected_media`). Only
then does an adapter take a location or a photo: the photo's bytes are fetched from the
platform (LINE's blob API, Telegram's getFile), checked (JPEG or PNG, at most the photo store's
limit) and saved in the gateway's `PhotoStore`; Rasa receives a payload the gateway writes itself
with the photo's id, or the location's coordinates and name. Anything else gets the channel's
polite "please type"; while a form is open that answer goes through the conversation as the
`/help` payload, which the form reads as "not an answer" (it never becomes a description).
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Awaitable, Callable, Optional

from bot.answers.reply import Reply
from bot.casework.errors import InvalidInput
from bot.complaints.photos import MAX_PHOTO_BYTES, PhotoStore
from bot.delivery.types import InboundEvent
from bot.gateway.conversation import Conversation, Turn

logger = logging.getLogger(__name__)

EXPECTS_LOCATION = "complaint_location"
EXPECTS_PHOTO = "complaint_photo"
# What the adapters send for "please type" (the help menu's buttons come back with it).
HELP_PAYLOAD = "/help"
MAX_PLACE_NAME = 200
PHOTO_REJECTED = (
    f"ขออภัย รับได้เฉพาะรูป JPEG หรือ PNG ขนาดไม่เกิน {MAX_PHOTO_BYTES // (1024 * 1024)} MB "
    "กรุณาส่งรูปใหม่ หรือกด \"เสร็จแล้ว\" / \"ข้าม\" เพื่อไปต่อ"
)
PHOTO_UNAVAILABLE = "ขออภัย ดึงรูปจากแอปไม่สำเร็จ กรุณาส่งรูปอีกครั้ง"


class PhotoTooLarge(Exception):
    """The platform says the file is over the limit (checked before downloading it)."""


@dataclass(frozen=True)
class Location:
    latitude: float
    longitude: float
    name: str = ""


def location_payload(location: Location) -> str:
    entities: dict[str, object] = {"latitude": location.latitude, "longitude": location.longitude}
    name = " ".join(location.name.split())[:MAX_PLACE_NAME]
    if name:
        entities["place_name"] = name
    return "/file_complaint" + json.dumps(entities, ensure_ascii=False)


def photo_payload(photo_id: str) -> str:
    return "/file_complaint" + json.dumps({"photo_id": photo_id})


async def take_location(
    conversation: Conversation, identity: str, location: Location, max_buttons: Optional[int]
) -> Optional[Turn]:
    """The form's turn for a shared location, or None when no open question takes one."""
    if await conversation.expected_media(identity) not in (EXPECTS_LOCATION, EXPECTS_PHOTO):
        return None
    return await conversation.handle(
        identity, "", max_buttons=max_buttons, gateway_payload=location_payload(location)
    )


async def take_photo(
    conversation: Conversation,
    identity: str,
    photos: Optional[PhotoStore],
    fetch: Callable[[], Awaitable[bytes]],
    max_buttons: Optional[int],
) -> Optional[Turn]:
    """The form's turn for a photo (fetched, checked and stored first), or None when no open
    question takes one. A photo that is too large, not an image, or cannot be fetched gets a
    polite answer and the question stays open."""
    if photos is None or await conversation.expected_media(identity) != EXPECTS_PHOTO:
        return None
    try:
        data = await fetch()
        stored = await asyncio.to_thread(photos.save, bytes(data))
    except (InvalidInput, PhotoTooLarge):
        return Turn([Reply(PHOTO_REJECTED)], refused="photo_rejected")
    except Exception as exc:  # the platform's errors: described by type only (URLs may hold a token)
        logger.warning("fetching a photo failed: %s", type(exc).__name__)
        return Turn([Reply(PHOTO_UNAVAILABLE)], refused="photo_unavailable")
    return await conversation.handle(identity, "", max_buttons=max_buttons, gateway_payload=photo_payload(stored.id))


async def take_media(
    conversation: Conversation,
    event: InboundEvent,
    photos: Optional[PhotoStore],
    photo_key: str,
    fetch: Callable[[str], Awaitable[bytes]],
    max_buttons: Optional[int],
) -> Optional[Turn]:
    """The form's turn for what a channel adapter put in `event.extra`: a `location` (latitude,
    longitude, name), or a photo's platform id under `photo_key`, which `fetch(id)` downloads;
    None when the event carries neither or no open question takes it."""
    location = event.extra.get("location")
    if isinstance(location, dict):
        where = Location(float(location["latitude"]), float(location["longitude"]), location.get("name", ""))
        return await take_location(conversation, event.identity, where, max_buttons)
    photo_id = event.extra.get(photo_key)
    if isinstance(photo_id, str) and photo_id:
        return await take_photo(conversation, event.identity, photos, lambda: fetch(photo_id), max_buttons)
    return None
