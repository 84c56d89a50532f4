"""Who hears about a request without asking: the chat identities linked to it.

A chat identity is linked when it proves it knows the request's verification digits
(bot.casework.verification.link). The delay notices and status-change messages
(bot.delivery.notices) are pushed to these identities on their own channels. Links made before
identities were kept in clear (revision 0003_delivery) have none and are left out.
"""

from __future__ import annotations

from sqlalchemy import Engine, select

from bot.db import transaction
from bot.db.models import IdentityLinkRow, ServiceRequestRow
from bot.tracking import normalize_tracking_number


def linked_identities(engine: Engine, tracking_number: str) -> list[str]:
    """The chat identities linked to the request, first linked first; [] for an unknown number."""
    canonical = normalize_tracking_number(tracking_number or "")
    if canonical is None:
        return []
    query = (
        select(IdentityLinkRow.identity)
        .join(ServiceRequestRow, ServiceRequestRow.id == IdentityLinkRow.request_id)
        .where(ServiceRequestRow.tracking_number == canonical, IdentityLinkRow.identity.is_not(None))
        .order_by(IdentityLinkRow.linked_at, IdentityLinkRow.identity)
    )
    with transaction(engine) as session:
        return list(dict.fromkeys(session.scalars(query)))
