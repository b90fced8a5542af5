"""Webhook deliveries of a real labcat, checked by a receiver on 127.0.0.1 that verifies each
one with the `standardwebhooks` package (the Standard Webhooks reference library).

    webhook_check.py path/to/labcat WORKDIR

Three phases on one embedded database under WORKDIR:
  1. retries: the receiver refuses the first two attempts of every message; each event
     still arrives, verified, in order per entry, and the delivery records say so;
  2. restart: deliveries are pending (the receiver is down) when labcat is stopped; after a
     restart they are delivered;
  3. two instances on the same database: every event arrives once; duplicates (allowed by
     at-least-once, not expected without a crash) are counted and reported.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

BINARY, WORK = sys.argv[1], sys.argv[2]
TIMEOUT = 60


def log(message):
    print(f"webhook_check: {message}", file=sys.stderr, flush=True)


class Receiver:
    """Answers 503 while `down`, or to a message's first `fail_first` attempts; otherwise
    verifies the signature and records the event."""

    def __init__(self):
        self.lock = threading.Lock()
        self.secret = None
        self.fail_first = 0
        self.down = False
        self.attempts = {}
        self.received = []  # (webhook-id, event)
        self.invalid = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["content-length"]))
                headers = {k.lower(): v for k, v in self.headers.items()}
                message_id = headers.get("webhook-id", "")
                with receiver.lock:
                    receiver.attempts[message_id] = receiver.attempts.get(message_id, 0) + 1
                    refuse = receiver.down or receiver.attempts[message_id] <= receiver.fail_first
                    secret = receiver.secret
                if refuse:
                    self.send_response(503)
                    self.end_headers()
                    return
                try:
                    event = Webhook(secret).verify(body, headers)
                except WebhookVerificationError as error:
                    with receiver.lock:
                        receiver.invalid.append((message_id, str(error)))
                    self.send_response(400)
                    self.end_headers()
                    return
                with receiver.lock:
                    receiver.received.append((message_id, event))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self):
        with self.lock:
            return list(self.received)

    def wait_for(self, count, what):
        deadline = time.time() + TIMEOUT
        while len(self.events()) < count:
            if time.time() > deadline:
                sys.exit(f"webhook_check: {what}: {len(self.events())} of {count} deliveries arrived")
            time.sleep(0.1)
        return self.events()


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


RUNNING = []


class Instance:
    def __init__(self, name):
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items()
               if k not in ("DATABASE_URL", "LABCAT_CONFIG") and not k.startswith("LABCAT__")}
        env.update({
            "LABCAT__DATABASE__DATA_DIR": os.path.join(WORK, "db"),
            "LABCAT__WEBHOOKS__ALLOW_PRIVATE_NETWORKS": "true",
            "LABCAT__WEBHOOKS__RETRY_INITIAL_SECONDS": "0.3",
            "LABCAT__WEBHOOKS__ATTEMPT_TIMEOUT_SECONDS": "2",
            "LABCAT__RATE_LIMIT__ENABLED": "false",
            "LABCAT__LOG__LEVEL": "warn",
        })
        self.stdout = os.path.join(WORK, f"{name}.out")
        self.process = subprocess.Popen(
            [BINARY, "serve", "--addr", f"127.0.0.1:{self.port}"],
            env=env, stdout=open(self.stdout, "w"), stderr=open(os.path.join(WORK, f"{name}.err"), "w"))
        RUNNING.append(self)
        deadline = time.time() + TIMEOUT
        while True:
            if self.process.poll() is not None:
                sys.exit(f"webhook_check: labcat {name} exited during start-up; see {name}.err")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            if time.time() > deadline:
                sys.exit(f"webhook_check: labcat {name} did not become healthy")
            time.sleep(0.3)
        log(f"labcat {name} serves {self.url}")

    def admin_key(self):
        with open(self.stdout) as out:
            for word in out.read().split():
                if word.startswith("lc_") and len(word) == 43:
                    return word
        sys.exit("webhook_check: the first start printed no admin key")

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=TIMEOUT)
            log(f"labcat {self.name} stopped")


def call(instance, key, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{instance.url}{path}", data=data, method=method,
                                     headers={"X-API-KEY": key, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read()
            return response.status, (json.loads(text) if text else None)
    except urllib.error.HTTPError as error:
        sys.exit(f"webhook_check: {method} {path}: {error.code} {error.read().decode()}")


def deliveries(instance, key, project, webhook):
    return call(instance, key, "GET", f"/projects/{project}/webhooks/{webhook}/deliveries")[1]


def main():
    receiver = Receiver()
    first = Instance("a")
    key = first.admin_key()
    _, project = call(first, key, "POST", "/projects", {"name": "Webhook check"})
    project = project["project_id"]
    _, webhook = call(first, key, "POST", f"/projects/{project}/webhooks",
                      {"url": receiver.url, "events": ["entry.created", "entry.updated"]})
    receiver.secret = webhook["secret"]
    webhook_id = webhook["webhook_id"]
    report = {}

    # 1. The receiver refuses each message twice; every event still arrives, in order.
    receiver.fail_first = 2
    _, entry = call(first, key, "POST", "/data_entries",
                    {"raw_name": "run.mp4", "char_source_type": "rheed_video", "project_id": project})
    entry_id = entry["data_id"]
    for n in range(3):
        call(first, key, "PATCH", f"/data_entries/{entry_id}", {"metadata": {"n": n}})
    events = receiver.wait_for(4, "retries")
    revisions = [event["revision"] for _, event in events]
    assert revisions == [1, 2, 3, 4], revisions
    # labcat records an outcome after the receiver has answered: wait for the last record.
    deadline = time.time() + TIMEOUT
    while True:
        records = deliveries(first, key, project, webhook_id)
        if all(d["status"] == "delivered" for d in records) or time.time() > deadline:
            break
        time.sleep(0.1)
    assert all(d["status"] == "delivered" and d["attempts"] == 3 for d in records), records
    report["retried_then_delivered"] = len(records)
    receiver.fail_first = 0

    # 2. Pending deliveries survive a restart.
    receiver.down = True
    for n in range(3, 6):
        call(first, key, "PATCH", f"/data_entries/{entry_id}", {"metadata": {"n": n}})
    deadline = time.time() + TIMEOUT
    while not any(d["status"] == "pending" and d["attempts"] >= 1
                  for d in deliveries(first, key, project, webhook_id)):
        if time.time() > deadline:
            sys.exit("webhook_check: no attempt was made while the receiver was down")
        time.sleep(0.1)
    pending = [d for d in deliveries(first, key, project, webhook_id) if d["status"] == "pending"]
    first.stop()
    receiver.down = False
    first = Instance("a-restarted")
    events = receiver.wait_for(7, "after the restart")
    revisions = [event["revision"] for _, event in events]
    assert revisions == [1, 2, 3, 4, 5, 6, 7], revisions
    report["pending_at_restart_then_delivered"] = len(pending)

    # 3. Two instances on one database: each event once.
    second = Instance("b")
    before = len(receiver.events())
    created = []
    for n in range(40):
        instance = first if n % 2 == 0 else second
        _, made = call(instance, key, "POST", "/data_entries",
                       {"raw_name": f"pair_{n}.mp4", "char_source_type": "sem", "project_id": project})
        created.append(made["data_id"])
    deadline = time.time() + TIMEOUT
    while {e["data_id"] for _, e in receiver.events()[before:]} != set(created):
        if time.time() > deadline:
            sys.exit("webhook_check: not every event of the two instances arrived")
        time.sleep(0.1)
    time.sleep(2)  # room for a duplicate to show up
    ids = [message_id for message_id, _ in receiver.events()]
    duplicates = len(ids) - len(set(ids))
    report["two_instances_events"] = len(created)
    report["duplicates"] = duplicates
    report["invalid_signatures"] = len(receiver.invalid)
    second.stop()
    first.stop()
    print(json.dumps({"webhook_check": report}))
    assert not receiver.invalid, receiver.invalid
    assert duplicates == 0, f"{duplicates} events were delivered twice"


if __name__ == "__main__":
    try:
        main()
    finally:
        # The instance that started the embedded cluster stops it: the others go first.
        for instance in reversed(RUNNING):
            instance.stop()
