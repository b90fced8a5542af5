"""The change feed's side of `bench/run --events`: what a busy labcat also carries while it is
measured, and what it is measured doing.

On the measured instance: 100 idle live subscribers (SSE streams that follow a project
nothing happens in), one webhook (on a probe project, delivering to a receiver on
127.0.0.1), and a probe that PATCHes one entry of the probe project ten times a second and
times, for each write, how long after its response the write's event arrives on an SSE
stream (the lag). Afterwards `delivery_phase` sends wrk's PATCH load at the probe project's
entries only, so every write is a webhook delivery, and reports the delivery rate.
"""

import http.client
import json
import statistics
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

IDLE_SUBSCRIBERS = 100
PROBE_ENTRIES = 200
PROBE_INTERVAL_S = 0.1


def api(port, key, method, path, body=None):
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"X-API-KEY": key, "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        text = response.read()
        return json.loads(text) if text else None


class Receiver:
    """Counts webhook deliveries (answers 204 at once; keep-alive, as a real receiver)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.count = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                self.rfile.read(int(self.headers["content-length"]))
                with receiver.lock:
                    receiver.count += 1
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def delivered(self):
        with self.lock:
            return self.count


def stream(port, key, query, on_event, stop):
    """Follows /events?{query} until `stop` is set, calling on_event(event, arrival)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=None)
    connection.request("GET", f"/events?{query}",
                       headers={"X-API-KEY": key, "Accept": "text/event-stream"})
    response = connection.getresponse()
    assert response.status == 200, response.status
    for line in response:
        if stop.is_set():
            break
        if line.startswith(b"data: "):
            on_event(json.loads(line[6:]), time.monotonic())
    connection.close()


class FeedLoad:
    def __init__(self, port, targets):
        self.port = port
        self.stop = threading.Event()
        lines = open(targets).read().split("\n")
        keys = []
        for line in lines:
            key = line.split(" ")[0]
            if key and key not in keys:
                keys.append(key)
            if len(keys) == 2:
                break
        self.key, idle_key = keys
        self.probe_project = api(port, self.key, "POST", "/projects", {"name": "feed probe"})["project_id"]
        self.probe_ids = [
            api(port, self.key, "POST", "/data_entries",
                {"raw_name": f"probe_{n}.dat", "char_source_type": "sem",
                 "project_id": self.probe_project})["data_id"]
            for n in range(PROBE_ENTRIES)]
        self.receiver = Receiver()
        api(port, self.key, "POST", f"/projects/{self.probe_project}/webhooks",
            {"url": self.receiver.url, "events": ["entry.updated"]})
        idle_project = api(port, idle_key, "GET", "/projects")[0]["project_id"]
        for _ in range(IDLE_SUBSCRIBERS):
            threading.Thread(target=stream, daemon=True, args=(
                port, idle_key, f"project_id={idle_project}&type=sample.created",
                lambda *_: None, self.stop)).start()
        self.arrivals = {}
        self.responses = {}
        self.measuring = False
        self.lock = threading.Lock()
        threading.Thread(target=stream, daemon=True, args=(
            port, self.key, f"project_id={self.probe_project}&type=entry.updated",
            self.arrived, self.stop)).start()
        threading.Thread(target=self.probe, daemon=True).start()

    def arrived(self, event, at):
        with self.lock:
            self.arrivals[(event["data_id"], event["revision"])] = at

    def probe(self):
        entry = self.probe_ids[0]
        n = 0
        while not self.stop.is_set():
            n += 1
            written = api(self.port, self.key, "PATCH", f"/data_entries/{entry}", {"metadata": {"probe": n}})
            answered = time.monotonic()
            if self.measuring:
                with self.lock:
                    self.responses[(entry, written["revision"])] = answered
            time.sleep(PROBE_INTERVAL_S)

    def lag_ms(self):
        """p50 and p99 of (event arrival - write response) over the writes made while
        measuring, in ms; a write whose event never came counts as missing."""
        time.sleep(1)
        with self.lock:
            lags = [(self.arrivals[k] - t) * 1000 for k, t in self.responses.items() if k in self.arrivals]
            missing = sum(1 for k in self.responses if k not in self.arrivals)
        if not lags:
            return {"samples": 0, "missing": missing}
        lags.sort()
        return {"samples": len(lags), "missing": missing,
                "p50_ms": round(statistics.median(lags), 1),
                "p99_ms": round(lags[min(len(lags) - 1, int(len(lags) * 0.99))], 1)}

    def probe_targets(self, workdir):
        path = f"{workdir}/probe_targets.txt"
        with open(path, "w") as f:
            for data_id in self.probe_ids:
                f.write(f"{self.key} {data_id}\n")
        return path


def delivery_phase(load, workdir, duration, run_wrk):
    """wrk's PATCH load on the probe project's entries: every write is a delivery."""
    before = load.receiver.delivered()
    measured = run_wrk(load.probe_targets(workdir), duration)
    during = load.receiver.delivered() - before
    writes = measured["rps"] * duration
    started = time.monotonic()
    while load.receiver.delivered() - before < writes * 0.99 and time.monotonic() - started < 120:
        time.sleep(0.2)
    drained = load.receiver.delivered() - before
    return {"patch_rps": round(measured["rps"]), "delivered_per_s_during_load": round(during / duration),
            "delivered_total": drained, "writes": round(writes),
            "seconds_to_deliver_the_rest": round(time.monotonic() - started, 1)}
