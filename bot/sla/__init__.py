"""Service-level agreements: the clock that judges a request against its catalog times."""

from bot.sla.clock import Assessment, Pause, StepDue, StepRecord, assess, delay_notice_due

__all__ = ["Assessment", "Pause", "StepDue", "StepRecord", "assess", "delay_notice_due"]
