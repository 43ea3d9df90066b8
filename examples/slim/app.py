"""A small web service for the dockhand slim example (Python standard library only).

    GET  /health   200 "ok", or 503 once /fail was called (until the process restarts)
    POST /fail     break /health from now on: what a wedged service looks like
    GET  /notes    the notes kept in /app/data/notes.txt (the data volume)
    POST /notes    append the request body as one note
    GET  /         who and what this process is, as JSON

Each start increments /app/data/boots, so restarts show up in the data too.
SIGTERM shuts the server down cleanly (exit 0).

`app.py worker` is the Compose example's second service: it posts one note to
$APP_URL (it is started only once the app is healthy), then idles until SIGTERM.
"""

import json
import os
import signal
import sys
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DATA = os.environ.get("APP_DATA", "/app/data")
PORT = int(os.environ.get("APP_PORT", "8000"))
NOTES = os.path.join(DATA, "notes.txt")
BOOTS = os.path.join(DATA, "boots")
MAX_BODY = 64 * 1024

broken = threading.Event()


def log(msg):
    print(f"app: {msg}", flush=True)


def read_int(path):
    try:
        with open(path) as f:
            return int(f.read().strip() or 0)
    except FileNotFoundError:
        return 0


def count_boot():
    n = read_int(BOOTS) + 1
    tmp = BOOTS + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{n}\n")
    os.replace(tmp, BOOTS)
    return n


class Handler(BaseHTTPRequestHandler):
    server_version = "dockhand-example"

    def reply(self, code, body, ctype="text/plain; charset=utf-8"):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n < 0 or n > MAX_BODY:
            raise ValueError("body too large")
        return self.rfile.read(n).decode("utf-8", "replace")

    def do_GET(self):
        if self.path == "/health":
            if broken.is_set():
                self.reply(503, "broken on purpose (POST /fail)\n")
            else:
                self.reply(200, "ok\n")
        elif self.path == "/notes":
            try:
                with open(NOTES) as f:
                    self.reply(200, f.read())
            except FileNotFoundError:
                self.reply(200, "")
        elif self.path == "/":
            info = {
                "pid": os.getpid(),
                "uid": os.getuid(),
                "gid": os.getgid(),
                "groups": sorted(os.getgroups()),
                "boots": read_int(BOOTS),
                "healthy": not broken.is_set(),
            }
            self.reply(200, json.dumps(info) + "\n", "application/json")
        else:
            self.reply(404, "not found\n")

    def do_POST(self):
        if self.path == "/fail":
            broken.set()
            log("health endpoint broken on request; /health answers 503 from now on")
            self.reply(200, "broken\n")
        elif self.path == "/notes":
            try:
                note = self.body().replace("\n", " ").strip()
            except ValueError as e:
                self.reply(413, f"{e}\n")
                return
            with open(NOTES, "a") as f:
                f.write(note + "\n")
                f.flush()
                os.fsync(f.fileno())
            self.reply(201, "stored\n")
        else:
            self.reply(404, "not found\n")

    def log_message(self, fmt, *args):
        # Health probes every few seconds would drown the log; keep the rest.
        if not self.path.startswith("/health"):
            log("%s %s" % (self.address_string(), fmt % args))


def main():
    boots = count_boot()
    server = ThreadingHTTPServer(("0.0.0.0", PORT), Handler)
    server.daemon_threads = True

    def on_term(signum, _frame):
        log(f"{signal.Signals(signum).name}: shutting down")
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    log(f"listening on :{PORT} as uid {os.getuid()} gid {os.getgid()} "
        f"groups {sorted(os.getgroups())}, boot {boots}, data in {DATA}")
    server.serve_forever()
    server.server_close()
    log("stopped")
    return 0


def worker():
    url = os.environ.get("APP_URL", "http://app:8000")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    req = urllib.request.Request(f"{url}/notes", data=b"hello from the worker", method="POST")
    # No proxy: the app is on the Compose network, not behind $http_proxy.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(req, timeout=5) as r:
        print(f"worker: {url} answered {r.status} on its first request", flush=True)
    stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(worker() if sys.argv[1:] == ["worker"] else main())
