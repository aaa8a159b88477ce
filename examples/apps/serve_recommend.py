"""The recommendation model server: ``python3 serve_recommend.py MODEL.npz`` on 127.0.0.1:$PORT.

GET /health -> 200 once the factors are loaded; POST /top {"user", "exclude", "k"} ->
{"items": [...]}: the user's k best-scored items (dot product of factors) not in ``exclude``.
"""

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

saved = np.load(sys.argv[1])
users, items = saved["users"], saved["items"]


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self._send(
            {"ok": True} if self.path == "/health" else {"error": "not found"},
            200 if self.path == "/health" else 404,
        )

    def do_POST(self) -> None:
        if self.path != "/top":
            return self._send({"error": "not found"}, 404)
        ask = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        scores = items @ users[int(ask["user"])]
        scores[list(ask.get("exclude", []))] = -np.inf
        k = int(ask.get("k", 10))
        top = np.argsort(-scores)[:k]
        self._send({"items": [int(i) for i in top]})

    def _send(self, value: object, status: int = 200) -> None:
        body = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
