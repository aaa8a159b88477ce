"""The server's routes, one module per resource: ``runs`` and ``site`` (everything else)."""
