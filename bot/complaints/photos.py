"""Complaint photos: the bytes live under the data directory, the database keeps their ids.

`PhotoStore.save(data)` accepts a JPEG or PNG (recognised by its first bytes, whatever name or
type the platform claims) of at most `max_bytes` (5 MB), writes it atomically under
`<root>/<2 hex>/<id>.<ext>` and returns its id, a random name that says nothing about the
complaint or the citizen. The chat adapters (LINE's blob API, Telegram's getFile) save what the
citizen sent, and `file_complaint` attaches the ids; the portal and Open311's `media_url` serve
`path(id)`. Ids are checked against a strict pattern before they touch the file system.
"""

from __future__ import annotations

import os
import re
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from bot.casework.errors import InvalidInput

MAX_PHOTO_BYTES = 5 * 1024 * 1024
MAX_PHOTOS = 5
_KINDS = {  # magic bytes -> (media type, extension)
    b"\xff\xd8\xff": ("image/jpeg", "jpg"),
    b"\x89PNG\r\n\x1a\n": ("image/png", "png"),
}
_MEDIA_TYPES = {ext: media for media, ext in _KINDS.values()}
_ID = re.compile(r"^[0-9a-f]{32}\.(jpg|png)$")


@dataclass(frozen=True)
class StoredPhoto:
    id: str
    media_type: str
    size: int


def sniff(data: bytes) -> Optional[tuple[str, str]]:
    """(media type, extension) of a JPEG or PNG by its magic bytes, else None."""
    for magic, kind in _KINDS.items():
        if data.startswith(magic):
            return kind
    return None


def valid_photo_id(photo_id: str) -> bool:
    return isinstance(photo_id, str) and bool(_ID.match(photo_id))


class PhotoStore:
    def __init__(self, root: Path, *, max_bytes: int = MAX_PHOTO_BYTES) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes

    def save(self, data: bytes) -> StoredPhoto:
        """Store one photo; InvalidInput when it is empty, too large, or not a JPEG or PNG."""
        if not isinstance(data, (bytes, bytearray)) or not data:
            raise InvalidInput("the photo is empty", field="photo")
        if len(data) > self.max_bytes:
            raise InvalidInput(f"a photo may be at most {self.max_bytes // (1024 * 1024)} MB", field="photo")
        kind = sniff(bytes(data[:8]))
        if kind is None:
            raise InvalidInput("only JPEG and PNG photos are accepted", field="photo")
        media_type, ext = kind
        photo_id = f"{secrets.token_hex(16)}.{ext}"
        target = self._path(photo_id)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return StoredPhoto(photo_id, media_type, len(data))

    def info(self, photo_id: str) -> Optional[StoredPhoto]:
        """The stored photo's type and size, or None for an unknown or malformed id."""
        if not valid_photo_id(photo_id):
            return None
        path = self._path(photo_id)
        if not path.is_file():
            return None
        return StoredPhoto(photo_id, _MEDIA_TYPES[photo_id.rsplit(".", 1)[1]], path.stat().st_size)

    def path(self, photo_id: str) -> Optional[Path]:
        """Where the photo's bytes are, to serve them; None for an unknown or malformed id."""
        return self._path(photo_id) if self.info(photo_id) is not None else None

    def read(self, photo_id: str) -> Optional[bytes]:
        path = self.path(photo_id)
        return path.read_bytes() if path is not None else None

    def delete(self, photo_id: str) -> bool:
        path = self.path(photo_id)
        if path is None:
            return False
        path.unlink(missing_ok=True)
        return True

    def _path(self, photo_id: str) -> Path:
        return self.root / photo_id[:2] / photo_id
