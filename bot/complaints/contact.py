"""How a complaint's reporter may be reached: anonymously, or by a phone number given with consent.

PDPA: a phone number is asked only with a consent line saying why (to contact the reporter about
this complaint) and for how long it is kept (`CONTACT_RETENTION`). The complaint stores the
consent time, the date the number must be erased (`retain_until`) and the number itself only
sealed: encrypted and authenticated under a key derived from the app's secret, so a database
dump, a log line or an audit entry never shows it. Its last 4 digits are kept only as the
registry's verifier hash (bot.casework.verification), so the reporter can look the complaint up
from another chat, as with a request. `Sealer.open` is called only for an officer allowed to
contact the reporter, and that access is audited (bot.complaints.officers.contact_for_officer).

The sealing uses only the standard library (the app environment has no AES): HMAC-SHA256 as a
pseudorandom function in counter mode for the keystream, and encrypt-then-MAC with HMAC-SHA256
over the version, nonce and ciphertext, under two keys derived from the secret by HKDF (RFC
5869). A 16-byte random nonce per value; the `v1.` prefix leaves room for another scheme.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
import secrets
from typing import Optional

from bot.casework.errors import InvalidInput
from bot.text import thai_digits_to_arabic

CONTACT_RETENTION = dt.timedelta(days=365)
CONTACT_RETENTION_TH = "1 ปี"
_VERSION = b"v1"
_NONCE = 16
_TAG = 32
# Thai numbers: 0 then 8 (landline, 02 Bangkok) or 9 digits (mobile 06, 08, 09); +66 for the 0.
_PHONE = re.compile(r"^0[1-9][0-9]{7,8}$")


def normalize_phone(text: str) -> Optional[str]:
    """'081-234 5678', '+66 81 234 5678', '๐๘๑๒๓๔๕๖๗๘' -> '0812345678'; None unless a Thai number."""
    digits = re.sub(r"[\s\-.()]", "", thai_digits_to_arabic(text or ""))
    if digits.startswith("+66"):
        digits = "0" + digits[3:]
    elif digits.startswith("66") and len(digits) in (10, 11):
        digits = "0" + digits[2:]
    return digits if _PHONE.match(digits) else None


_PHONE_IN_TEXT = re.compile(r"(?:\+66|0)[0-9๐-๙](?:[\s\-.]?[0-9๐-๙]){7,8}")
PHONE_IN_TRANSIT = "chat-phone"  # the Sealer purpose of a phone number on its way to the actions


def find_phone(text: str) -> Optional[str]:
    """The first Thai phone number in `text` ("เบอร์ 081-234-5678 ค่ะ" -> '0812345678'), or None."""
    for match in _PHONE_IN_TEXT.finditer(thai_digits_to_arabic(text or "")):
        phone = normalize_phone(match.group(0))
        if phone is not None:
            return phone
    return None


def phone_in_transit(secret: str, phone: str) -> str:
    """A phone number sealed for its way through Rasa (which stores every message): the gateway
    seals what the citizen typed, only the action server (same secret) opens it."""
    return Sealer(secret, PHONE_IN_TRANSIT).seal(phone)


def phone_from_transit(secret: str, token: str) -> Optional[str]:
    try:
        return normalize_phone(Sealer(secret, PHONE_IN_TRANSIT).open(token))
    except ValueError:
        return None


def check_phone(text: str) -> str:
    phone = normalize_phone(text)
    if phone is None:
        raise InvalidInput("the phone number must be a Thai number such as 081-234-5678", field="phone")
    return phone


def mask_phone(phone: str) -> str:
    """'0812345678' -> '08x-xxx-xx78': enough to recognise it, not to call it."""
    return f"{phone[:2]}x-xxx-xx{phone[-2:]}"


class Sealer:
    """Encrypts and authenticates short secrets (phone numbers, webhook secrets) at rest."""

    def __init__(self, secret: str, purpose: str) -> None:
        if not secret:
            raise ValueError("sealing needs a secret (VERIFICATION_SECRET)")
        okm = _hkdf(secret.encode(), salt=b"sla-bot sealer", info=purpose.encode(), length=64)
        self._encryption_key, self._mac_key = okm[:32], okm[32:]

    def seal(self, plaintext: str) -> str:
        nonce = secrets.token_bytes(_NONCE)
        data = plaintext.encode()
        cipher = _xor(data, self._keystream(nonce, len(data)))
        tag = hmac.new(self._mac_key, _VERSION + nonce + cipher, hashlib.sha256).digest()
        return _VERSION.decode() + "." + base64.urlsafe_b64encode(nonce + cipher + tag).decode()

    def open(self, sealed: str) -> str:
        """The plaintext; ValueError when `sealed` was not sealed by this key (or was altered)."""
        version, _, encoded = (sealed or "").partition(".")
        try:
            raw = base64.urlsafe_b64decode(encoded.encode())
        except (ValueError, TypeError) as exc:
            raise ValueError("not a sealed value") from exc
        if version.encode() != _VERSION or len(raw) < _NONCE + _TAG:
            raise ValueError("not a sealed value")
        nonce, cipher, tag = raw[:_NONCE], raw[_NONCE:-_TAG], raw[-_TAG:]
        expected = hmac.new(self._mac_key, _VERSION + nonce + cipher, hashlib.sha256).digest()
        if not hmac.compare_digest(tag, expected):
            raise ValueError("the sealed value was altered or sealed under another key")
        return _xor(cipher, self._keystream(nonce, len(cipher))).decode()

    def _keystream(self, nonce: bytes, length: int) -> bytes:
        blocks = (length + 31) // 32
        return b"".join(
            hmac.new(self._encryption_key, nonce + i.to_bytes(4, "big"), hashlib.sha256).digest() for i in range(blocks)
        )[:length]


def _xor(data: bytes, keystream: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(data, keystream, strict=True))


def _hkdf(key: bytes, *, salt: bytes, info: bytes, length: int) -> bytes:
    """HKDF-SHA256 (RFC 5869): extract, then expand to `length` bytes."""
    prk = hmac.new(salt, key, hashlib.sha256).digest()
    out, block = b"", b""
    for counter in range(1, (length + 31) // 32 + 1):
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
    return out[:length]
