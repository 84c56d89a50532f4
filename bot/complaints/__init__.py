"""Complaints: filed by citizens, routed to the responsible agency, received, answered, escalated.

    desk = Desk(engine, settings.verification_secret, lambda: live_assistant.catalog,
                photos=PhotoStore(settings.data_dir / "photos"), outbox=delivery.outbox,
                can_push=notifier.can_push)
    complaint = file_complaint(desk, reporter="line:U1", idempotency_key=form_id, description="...",
                               agency_code="DLT", phone="0812345678", consent=True)
    complaint.tracking_number, complaint.agency_code, complaint.acknowledge_due_at

    officer = Officer("DLT", actor="officer:somchai")
    queue(desk, officer); acknowledge(desk, number, officer); reply(desk, number, officer, "...")
    transfer(desk, number, officer, "DOPA", "เป็นงานทะเบียนราษฎร"); resolve(desk, number, officer, "...")
    escalate_overdue(desk, now)                 # a scheduler, every few minutes
    status_for_reporter(desk, number, identity) # the chat's check_status with a CMP number
    reopen(desk, number, identity, "ยังไม่ได้รับการแก้ไข")

Modules: `routing` (who receives it: pure, over the catalog), `deadlines` (acknowledge-by and
resolve-by on the SLA clock), `intake` (the citizen's side), `officers` (the agencies' side),
`escalation`, `notify` and `messages` (what the reporter and agencies' systems are told),
`webhooks` (signed deliveries to agencies' systems), `photos`, `contact` (phone numbers with
consent, sealed at rest), `model` (the values callers get), `rows`, `desk`.
"""

from bot.complaints.contact import CONTACT_RETENTION, CONTACT_RETENTION_TH, Sealer, normalize_phone
from bot.complaints.deadlines import Dues, complaint_dues
from bot.complaints.desk import Desk
from bot.complaints.escalation import Escalation, escalate_overdue
from bot.complaints.intake import (
    file_complaint,
    my_complaints,
    purge_expired_contacts,
    reopen,
    status_for_reporter,
    verifier_token,
    verify,
)
from bot.complaints.messages import STATUS_LABELS
from bot.complaints.model import (
    STATUSES,
    Complaint,
    Message,
    Officer,
    OfficerCase,
    Photo,
    ReporterStatus,
    RouteDecision,
)
from bot.complaints.officers import (
    acknowledge,
    case_for_officer,
    contact_for_officer,
    history,
    queue,
    reply,
    resolve,
    set_status,
    transfer,
)
from bot.complaints.photos import MAX_PHOTO_BYTES, MAX_PHOTOS, PhotoStore, StoredPhoto
from bot.complaints.routing import Route, Subject, route
from bot.complaints.webhooks import WebhookSender, deliveries, resend, revoke, subscribe, subscriptions

__all__ = [
    "CONTACT_RETENTION", "CONTACT_RETENTION_TH", "Complaint", "Desk", "Dues", "Escalation",
    "MAX_PHOTOS", "MAX_PHOTO_BYTES", "Message", "Officer", "OfficerCase", "Photo", "PhotoStore", "ReporterStatus",
    "Route", "RouteDecision", "STATUSES", "STATUS_LABELS", "Sealer", "StoredPhoto", "Subject", "WebhookSender",
    "acknowledge", "case_for_officer", "complaint_dues", "contact_for_officer", "deliveries", "escalate_overdue",
    "file_complaint", "history", "my_complaints", "normalize_phone", "purge_expired_contacts",
    "queue", "reopen", "reply", "resend", "resolve", "revoke", "route", "set_status", "status_for_reporter",
    "subscribe", "subscriptions", "transfer", "verifier_token", "verify",
]
