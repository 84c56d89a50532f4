"""Citizen-facing Thai answers rendered from the catalog (wording in templates/th/)."""
