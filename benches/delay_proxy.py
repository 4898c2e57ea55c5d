#!/usr/bin/env python3
"""A delaying HTTP/1.1 proxy on loopback for the registry benchmarks:

    delay_proxy.py UPSTREAM_PORT DELAY_MS PORT_FILE

listens on 127.0.0.1 (a free port, written to PORT_FILE once it listens) and forwards
every request to 127.0.0.1:UPSTREAM_PORT after DELAY_MS milliseconds (a registry one
round trip away, as GHCR is from a CI runner). Keep-alive is kept on both sides (one
upstream connection per client connection), so the connections it counts are the
ones the client opened. `GET /__stats` (not forwarded) answers what it saw since the
last such request and starts counting afresh: requests by method, the most client
connections open at once and the most requests in flight at once, and the request
body bytes of blob uploads (PUT/PATCH under /blobs/uploads/). With PROXY_TRACE=FILE in
the environment, each request also appends a line to FILE: when it arrived and when it
was answered (seconds since the proxy started), its method and path, the client
connection it came on (numbered from 1 since the last `/__stats`) and the status; to see
where a client leaves its requests in flight idle, and after which answers it drops a
connection.

The `Host` header is forwarded as the client sent it, so the registry's upload
`Location`s name the proxy, and uploads go through it too. Bodies are read whole
(blobs of the benchmark are a few MB), chunked requests de-chunked.
"""
import http.client
import http.server
import json
import os
import sys
import threading
import time

upstream_port, delay = int(sys.argv[1]), int(sys.argv[2]) / 1000.0
port_file = sys.argv[3]
lock = threading.Lock()
started = time.monotonic()
trace = open(os.environ["PROXY_TRACE"], "a") if os.environ.get("PROXY_TRACE") else None
HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "te", "upgrade"}


def fresh():
    return {"requests": {}, "connections_max": 0, "in_flight_max": 0,
            "connections_total": 0, "upload_bytes": 0}


stats, live = fresh(), {"connections": 0, "in_flight": 0}


def bump(key, by):
    with lock:
        live[key] += by
        stats[key + "_max"] = max(stats[key + "_max"], live[key])


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        self.upstream = None
        bump("connections", 1)
        with lock:
            stats["connections_total"] += 1
            self.connection_id = stats["connections_total"]

    def finish(self):
        bump("connections", -1)
        if self.upstream is not None:
            self.upstream.close()
        super().finish()

    def log_message(self, *args):
        pass

    def body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length", "0") or 0)
        return self.rfile.read(length) if length else b""

    def answer_stats(self):
        global stats
        with lock:
            data, stats = json.dumps(stats).encode(), fresh()
            stats["connections_max"] = live["connections"]
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def relay(self):
        if self.path == "/__stats":
            self.body()
            return self.answer_stats()
        body = self.body()
        arrived = time.monotonic() - started
        status = "-"
        bump("in_flight", 1)
        try:
            with lock:
                stats["requests"][self.command] = stats["requests"].get(self.command, 0) + 1
                if self.command in ("PUT", "PATCH") and "/blobs/uploads/" in self.path:
                    stats["upload_bytes"] += len(body)
            time.sleep(delay)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
            if body or self.command in ("PUT", "PATCH", "POST"):
                headers["Content-Length"] = str(len(body))
            if self.upstream is None:
                self.upstream = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=60)
            self.upstream.request(self.command, self.path, body=body, headers=headers)
            answer = self.upstream.getresponse()
            data = answer.read()
            status = answer.status
        finally:
            bump("in_flight", -1)
            if trace is not None:
                with lock:
                    trace.write(f"{arrived:.4f} {time.monotonic() - started:.4f} {self.command} {self.path} conn={self.connection_id} status={status}\n")
                    trace.flush()
        self.send_response_only(answer.status, answer.reason)
        for k, v in answer.getheaders():
            if k.lower() not in HOP and not (k.lower() == "content-length" and self.command != "HEAD"):
                self.send_header(k, v)
        if self.command != "HEAD":
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = relay


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256


server = Server(("127.0.0.1", 0), Handler)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.replace(port_file + ".tmp", port_file)
server.serve_forever()
