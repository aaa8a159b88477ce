"""``podium server``: an authenticated HTTP API and a live web UI over the run store.

Modules, one concept each: ``app`` (the parts wired together, the ASGI app), ``auth`` (token,
session cookie, Host/CSRF/body checks), ``routes`` (one module per resource), ``web``
(strict request reading, JSON out), ``problems`` (errors to HTTP statuses), ``openapi``,
``data`` (the one place runs are read), ``redact`` (what leaves the server), ``stream`` (live
events), ``watch`` (run statuses), ``workers`` (run processes), ``workflows`` (the registered
catalog), ``config`` (``[server]`` in ``podium.toml``), ``state`` (the server's own records),
``scheduler`` and ``cron``, ``notifier`` (webhooks), ``planview`` (the plan beside a run).
Invariant: importing ``podium`` never imports this package; starlette and uvicorn are imported
only by its modules (install the ``server`` extra).
"""
