"""The fleet's small service (Python standard library only).

    GET /health   200 "ok"; counts the request
    GET /hits     how many /health requests it has answered (not counted)

SIGTERM stops it (exit 0).
"""

import signal
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

hits = 0


class Handler(BaseHTTPRequestHandler):
    def reply(self, body):
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        global hits
        if self.path == "/health":
            hits += 1
            self.reply("ok\n")
        elif self.path == "/hits":
            self.reply(f"{hits}\n")
        else:
            self.send_error(404)

    def log_message(self, fmt, *args):
        pass


def main():
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    HTTPServer(("0.0.0.0", 8000), Handler).serve_forever()


if __name__ == "__main__":
    main()
