"""HTTP APIs for agencies' systems (and, later, Open311 clients)."""
