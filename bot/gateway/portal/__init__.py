"""The agency portal (`/portal`): officers log in per agency and handle their complaints.

Server-rendered Thai pages (Jinja, autoescaped), one small CSS file, no scripts or outside
resources. `accounts` (officers, argon2 hashes; `sla-bot portal add-officer`), `sessions`
(server-side, expiring, revocable; the CSRF token bound to each), `views` (the routes),
`demo` (the demo officers `make run` creates on embedded defaults).

    app.include_router(portal.router())   # the app's desk (app.state.complaints.desk) does the rest
"""

from bot.gateway.portal.views import PREFIX, Portal, portal_of, router

__all__ = ["PREFIX", "Portal", "portal_of", "router"]
