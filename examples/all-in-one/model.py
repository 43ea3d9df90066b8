"""A model-server stand-in for the all-in-one example (Python standard library only).

    GET  /api/tags      the models it serves, as JSON: its readiness endpoint,
                        as in Ollama; it answers only once the model is loaded
    POST /api/generate  {"prompt": "..."} -> {"response": "..."} (the prompt, reversed)

MODEL_LOAD_SECONDS (default 2) stands in for loading weights: the port opens
after it. SIGTERM shuts the server down cleanly (exit 0).
"""

import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(os.environ.get("MODEL_PORT", "11434"))
LOAD = float(os.environ.get("MODEL_LOAD_SECONDS", "2"))
MODEL = "stand-in:latest"
MAX_BODY = 64 * 1024


def log(msg):
    print(f"model: {msg}", flush=True)


class Handler(BaseHTTPRequestHandler):
    server_version = "dockhand-model"

    def reply(self, code, obj):
        data = (json.dumps(obj) + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/api/tags":
            self.reply(200, {"models": [{"name": MODEL}]})
        else:
            self.reply(404, {"error": "not found"})

    def do_POST(self):
        if self.path != "/api/generate":
            self.reply(404, {"error": "not found"})
            return
        n = int(self.headers.get("Content-Length") or 0)
        if n < 0 or n > MAX_BODY:
            self.reply(413, {"error": "body too large"})
            return
        try:
            prompt = str(json.loads(self.rfile.read(n) or b"{}").get("prompt", ""))
        except (ValueError, AttributeError):
            self.reply(400, {"error": "expected a JSON object"})
            return
        self.reply(200, {"model": MODEL, "response": prompt[::-1]})

    def log_message(self, fmt, *args):
        if not self.path.startswith("/api/tags"):
            log("%s %s" % (self.address_string(), fmt % args))


def main():
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    log(f"loading {MODEL} ({LOAD:g}s)")
    if stop.wait(LOAD):
        log("SIGTERM while loading: stopped")
        return 0
    server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
    server.daemon_threads = True

    def on_term(signum, _frame):
        log(f"{signal.Signals(signum).name}: shutting down")
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_term)
    log(f"listening on 127.0.0.1:{PORT} as uid {os.getuid()}")
    server.serve_forever()
    server.server_close()
    log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
