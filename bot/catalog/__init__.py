"""The SLA catalog: the single source of truth for every service the bot talks about."""

from bot.catalog.loader import Catalog, load_catalog
from bot.catalog.schema import Agency, Service
from bot.catalog.validation import CatalogError, Problem

__all__ = ["Agency", "Catalog", "CatalogError", "Problem", "Service", "load_catalog"]
