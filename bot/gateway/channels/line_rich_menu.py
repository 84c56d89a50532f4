"""The LINE rich menu (help, request status, complaint, hotline), from committed files.

`line_rich_menu.json` is LINE's own rich menu object (size, chat bar text, four tappable areas);
each area sends a message the NLU knows ("ทำอะไรได้บ้าง" is the help intent's first example ...),
so a tap is answered exactly like typing it. `line_rich_menu.png` is its image, made from
`line_rich_menu.html` (the command to regenerate it is at the top of that file).

`sla-bot line rich-menu` calls `install_rich_menu`: create the menu, upload the image, make it
every user's default, then delete the menus this command made before (same `name`), so running
it again after an edit replaces the menu instead of piling them up.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

from linebot.v3.messaging import (
    AsyncApiClient,
    AsyncMessagingApi,
    AsyncMessagingApiBlob,
    Configuration,
    RichMenuRequest,
)

HERE = Path(__file__).resolve().parent
DEFINITION = HERE / "line_rich_menu.json"
IMAGE = HERE / "line_rich_menu.png"
IMAGE_MAX_BYTES = 1024 * 1024
API_TIMEOUT_SECONDS = 30.0


class RichMenuError(ValueError):
    """The committed definition or image does not satisfy LINE's rules; the message says which."""


@dataclass(frozen=True)
class Installed:
    rich_menu_id: str
    removed: list[str]


def image_type(image: bytes) -> str:
    if image.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if image.startswith(b"\xff\xd8"):
        return "image/jpeg"
    raise RichMenuError("the rich menu image must be a PNG or JPEG file")


def check(definition: dict, image: bytes) -> str:
    """The image's content type, after checking what LINE would refuse."""
    content_type = image_type(image)
    if len(image) > IMAGE_MAX_BYTES:
        raise RichMenuError(f"the rich menu image is {len(image):,} bytes; LINE accepts at most 1 MB")
    size = definition.get("size") or {}
    width, height = size.get("width"), size.get("height")
    if content_type == "image/png" and image[12:16] == b"IHDR":
        actual = struct.unpack(">II", image[16:24])
        if actual != (width, height):
            raise RichMenuError(f"the image is {actual[0]}x{actual[1]} but the definition says {width}x{height}")
    for area in definition.get("areas", []):
        bounds = area.get("bounds", {})
        if bounds.get("x", 0) + bounds.get("width", 0) > width or bounds.get("y", 0) + bounds.get("height", 0) > height:
            raise RichMenuError(f"area {area.get('action', {}).get('label', '?')!r} lies outside the menu")
    return content_type


async def install_rich_menu(
    access_token: str,
    api_base_url: str = "",
    *,
    definition_path: Path = DEFINITION,
    image_path: Path = IMAGE,
    keep_old: bool = False,
) -> Installed:
    """Create the rich menu, upload its image, set it as the default; remove the ones it replaces."""
    definition = json.loads(definition_path.read_text(encoding="utf-8"))
    image = image_path.read_bytes()
    content_type = check(definition, image)
    configuration = Configuration(access_token=access_token, host=api_base_url.rstrip("/") or None)
    async with AsyncApiClient(configuration) as client:
        api = AsyncMessagingApi(client)
        blob = AsyncMessagingApiBlob(client)
        existing = await api.get_rich_menu_list(_request_timeout=API_TIMEOUT_SECONDS)
        old = [menu.rich_menu_id for menu in existing.richmenus if menu.name == definition.get("name")]
        created = await api.create_rich_menu(
            RichMenuRequest.from_dict(definition), _request_timeout=API_TIMEOUT_SECONDS
        )
        menu_id = created.rich_menu_id
        try:
            await blob.set_rich_menu_image(
                menu_id, image, _headers={"Content-Type": content_type}, _request_timeout=API_TIMEOUT_SECONDS
            )
            await api.set_default_rich_menu(menu_id, _request_timeout=API_TIMEOUT_SECONDS)
        except Exception:
            await api.delete_rich_menu(menu_id, _request_timeout=API_TIMEOUT_SECONDS)
            raise
        removed = []
        if not keep_old:
            for old_id in old:
                await api.delete_rich_menu(old_id, _request_timeout=API_TIMEOUT_SECONDS)
                removed.append(old_id)
    return Installed(menu_id, removed)
