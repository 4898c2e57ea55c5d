"""Dashboard backend: a tiny stdlib-only HTTP API.

Routes:
  GET /health     -> 200 "ok" (the image's HEALTHCHECK wgets this)
  GET /api/stats  -> JSON with service name, version, uptime, request count and the
                     installed versions of its packages

Listens on 0.0.0.0:$PORT (default 8080). Its third-party packages (requirements.in,
pinned in requirements.lock) are installed into the image's site-packages by hoist's
python layer, so they import like any installed package: no pip, no sys.path set-up.
"""

import importlib.metadata
import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SERVICE = "dashboard"
VERSION = os.environ.get("APP_VERSION", "0.1.0")
STARTED = time.monotonic()
# The installed versions, read from the packages' metadata at start: a package missing
# from the image stops the server here, not on the first request.
PACKAGES = {name: importlib.metadata.version(name) for name in ("six", "typing_extensions")}

_requests = 0
_lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    server_version = "dashboard/" + VERSION

    def do_GET(self):  # noqa: N802 (name fixed by BaseHTTPRequestHandler)
        global _requests
        with _lock:
            _requests += 1
            count = _requests
        path = self.path.split("?", 1)[0]
        if path == "/health":
            self._send(200, "text/plain; charset=utf-8", b"ok\n")
        elif path == "/api/stats":
            body = {
                "service": SERVICE,
                "version": VERSION,
                "uptime_seconds": round(time.monotonic() - STARTED, 1),
                "requests": count,
                "packages": PACKAGES,
            }
            self._send(200, "application/json", json.dumps(body).encode() + b"\n")
        else:
            self._send(404, "application/json", b'{"error":"not found"}\n')

    def _send(self, status, content_type, body):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        # One line per request on stderr, without the reverse-DNS lookup of the default.
        sys.stderr.write("%s %s\n" % (self.client_address[0], fmt % args))


def main():
    port = int(os.environ.get("PORT", "8080"))
    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)
    # The image sets STOPSIGNAL SIGTERM: shut down cleanly instead of dying mid-response.
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"{SERVICE} {VERSION} listening on :{port}", file=sys.stderr, flush=True)
    server.serve_forever()
    server.server_close()


if __name__ == "__main__":
    main()
