"""The app server of the all-in-one example (Python standard library only).

    GET  /health   200 when PostgreSQL accepts a query and the model server
                   lists its models; 503 (saying which is down) otherwise
    POST /visits   count one visit in PostgreSQL; the new total
    GET  /visits   the total, from PostgreSQL (the data volume)
    POST /ask      the request body as a prompt to the model server; its answer

PostgreSQL is reached through psql on its local socket (no driver needed).
SIGTERM shuts the server down cleanly (exit 0).
"""

import json
import os
import signal
import subprocess
import sys
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(os.environ.get("APP_PORT", "8000"))
MODEL_URL = os.environ.get("MODEL_URL", "http://127.0.0.1:11434")
PSQL = ["psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-h", "/run/postgresql", "-U", "postgres"]
MAX_BODY = 64 * 1024
# No proxy: every service is in this container.
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def log(msg):
    print(f"app: {msg}", flush=True)


def sql(query):
    r = subprocess.run(PSQL + ["-c", query], capture_output=True, text=True, timeout=5)
    if r.returncode != 0:
        raise RuntimeError(r.stderr.strip() or f"psql exited {r.returncode}")
    return r.stdout.strip()


def model(path, body=None):
    req = urllib.request.Request(MODEL_URL + path, data=body, method="POST" if body else "GET")
    with opener.open(req, timeout=3) as r:
        return json.loads(r.read())


class Handler(BaseHTTPRequestHandler):
    server_version = "dockhand-aio"

    def reply(self, code, body):
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/health":
            down = []
            try:
                sql("SELECT 1")
            except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
                down.append(f"postgres: {e}")
            try:
                model("/api/tags")
            except (OSError, ValueError) as e:
                down.append(f"model: {e}")
            self.reply(503 if down else 200, "; ".join(down) + "\n" if down else "ok\n")
        elif self.path == "/visits":
            self.reply(200, sql("SELECT n FROM visits") + "\n")
        else:
            self.reply(404, "not found\n")

    def do_POST(self):
        if self.path == "/visits":
            self.reply(200, sql("UPDATE visits SET n = n + 1 RETURNING n") + "\n")
        elif self.path == "/ask":
            n = int(self.headers.get("Content-Length") or 0)
            if n < 0 or n > MAX_BODY:
                self.reply(413, "body too large\n")
                return
            prompt = self.rfile.read(n).decode("utf-8", "replace")
            answer = model("/api/generate", json.dumps({"prompt": prompt}).encode())
            self.reply(200, answer.get("response", "") + "\n")
        else:
            self.reply(404, "not found\n")

    def log_message(self, fmt, *args):
        if not self.path.startswith("/health"):
            log("%s %s" % (self.address_string(), fmt % args))


def main():
    # waitfor held this start until PostgreSQL accepted connections.
    sql("CREATE TABLE IF NOT EXISTS visits (n bigint NOT NULL);"
        "INSERT INTO visits SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM visits)")
    server = ThreadingHTTPServer(("0.0.0.0", PORT), Handler)
    server.daemon_threads = True

    def on_term(signum, _frame):
        log(f"{signal.Signals(signum).name}: shutting down")
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_term)
    log(f"listening on :{PORT} as uid {os.getuid()}, {sql('SELECT n FROM visits')} visits so far")
    server.serve_forever()
    server.server_close()
    log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
