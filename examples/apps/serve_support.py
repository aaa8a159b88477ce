"""The customer-service model server: ``python3 serve_support.py MODEL.pkl`` on 127.0.0.1:$PORT.

GET /health -> 200 once the model is loaded; GET /answer?q=TEXT -> {"intent", "answer",
"confidence"}: the predicted intent and its FAQ answer (the answer retrieved for it).
"""

import json
import os
import pickle
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

with open(sys.argv[1], "rb") as f:
    saved = pickle.load(f)  # written by this pipeline's own train task
model, answers = saved["model"], saved["answers"]


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/health":
            return self._send({"ok": True})
        if url.path != "/answer":
            return self._send({"error": "not found"}, 404)
        q = urllib.parse.parse_qs(url.query).get("q", [""])[0]
        probs = model.predict_proba([q])[0]
        best = int(probs.argmax())
        intent = str(model.classes_[best])
        self._send({"intent": intent, "answer": answers[intent], "confidence": round(float(probs[best]), 4)})

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
