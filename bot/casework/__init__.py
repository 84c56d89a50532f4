"""Casework: citizens' service requests, their tracking numbers, verification, API keys, audit.

    registry = Registry(engine, settings.verification_secret, lambda: live_assistant.catalog)
    request = registry.create_request("DLT", "vehicle_tax_renewal", "ขนส่งพื้นที่ 1", "1234", actor=key_id)
"""

from bot.casework.api_keys import ApiKeyInfo, ApiKeys, CreatedKey, Principal
from bot.casework.audit import AuditEntry
from bot.casework.errors import (
    CaseworkError,
    Conflict,
    InvalidDigits,
    InvalidInput,
    InvalidTransition,
    NotFound,
    NumbersExhausted,
    RequestClosed,
    StepOutOfRange,
    UnknownAgency,
    UnknownService,
    UnknownStatus,
)
from bot.casework.registry import DueNotice, Registry
from bot.casework.request import CLOSED_STATUSES, STATUSES, ServiceRequest, StatusChange, StepEntry
from bot.casework.verification import VerifyResult, normalize_digits, verifier_token

__all__ = [
    "ApiKeyInfo", "ApiKeys", "AuditEntry", "CLOSED_STATUSES", "CaseworkError", "Conflict", "CreatedKey",
    "DueNotice", "InvalidDigits", "InvalidInput", "InvalidTransition", "NotFound", "NumbersExhausted",
    "Principal", "Registry", "RequestClosed", "STATUSES", "ServiceRequest", "StatusChange", "StepEntry",
    "StepOutOfRange", "UnknownAgency", "UnknownService", "UnknownStatus", "VerifyResult", "normalize_digits",
    "verifier_token",
]
