#!/usr/bin/env python3
"""Issue 13's load test: one tenant's worst allowed requests must not starve another tenant.

Bounded and loopback only. Starts a throwaway PostgreSQL and a release build of labcat with
bench/run's functions, seeds two users (an attacker and a victim), and has the attacker
store a large entry (a 100,000-number array, or the largest the metadata limit takes) next
to ~1,000 ordinary ones. Then, for DURATION seconds, the attacker's key sends from
ATTACK_CONNECTIONS connections (wrk) the worst request each limit still allows, round robin:

  GET  /data_entries   with the most metadata.<key>=<value> filters, keywords and fields names
  GET  /v2/files       with the most metadata filters and fields names
  POST /v2/bulk/files/get with the most distinct ids, the large entry's first
  GET  /data_entries   with the most fields names on the largest page (the large entry in it)

while the victim's key GETs its own entries by id (wrk --latency, VICTIM_CONNECTIONS
connections). Pass: the victim's p99 < P99_BOUND_MS, no 5xx and no timeouts for it, labcat's
peak RSS (VmHWM) < LABCAT_RSS_BOUND_MIB, and the most PostgreSQL used at once (RSS summed over
the cluster's processes, sampled every 0.2 s) < POSTGRES_RSS_BOUND_MIB. Exits 1 otherwise.

Rate limiting is switched off (LABCAT__RATE_LIMIT__ENABLED=false, for both tenants: it is one
labcat), so the test measures the bounds on the work one request may cause, not the rate
limiter. Each limit's value is a constant below; when a branch changes a limit, change it here.

usage: bench/hardening.py [--smoke] [--duration 20] [--no-build | --binary PATH]
Needs wrk (Debian package wrk) and PostgreSQL's server binaries.
"""

import argparse
import http.client
import importlib.machinery
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# bench/run has no .py suffix: load it by path, to reuse its start-up and seeding.
_loader = importlib.machinery.SourceFileLoader("bench_run", f"{HERE}/run")
bench_run = importlib.util.module_from_spec(importlib.util.spec_from_loader("bench_run", _loader))
_loader.exec_module(bench_run)

PORT = 18434  # not bench/run's 18432, so both can run at once
ATTACK_CONNECTIONS = 8
VICTIM_CONNECTIONS = 4

# --- The limits whose worst case is sent (keep in step with the branches that set them) ---
# Per search (GET /data_entries, GET /v2/files), from main at 02b2f15 (h13-query merged),
# src/domain/file_query.rs: MAX_METADATA_FILTERS, MAX_KEYWORDS, MAX_FIELD_NAMES (more: 400 too_many_values).
MAX_METADATA_FILTERS = 32
MAX_KEYWORDS = 32
MAX_FIELDS_NAMES = 64
# Distinct ids per POST /v2/bulk/files/get: writes.bulk_max_items (config/default.toml,
# 1000), repeats refused as duplicate_item (h13-bulkkeys, src/routes/bulk.rs). With rate
# limiting on, also at most rate_limit.read_burst (400); it is off here.
MAX_BULK_IDS = 1000
# Metadata document size: limits.metadata.max_bytes (config/default.toml), measured as
# compact JSON on every write on h13-misc; as sent on create (main).
METADATA_MAX_BYTES = 262144
# Largest pages: src/domain/search.rs MAX_LIMIT, src/domain/file_query.rs MAX_LIMIT.
SEARCH_MAX_LIMIT = 10_000
FILES_MAX_LIMIT = 100

# --- The bounds checked ---
P99_BOUND_MS = 100.0
LABCAT_RSS_BOUND_MIB = 256.0
POSTGRES_RSS_BOUND_MIB = 1024.0

LARGE_ARRAY_LENGTH = 100_000
ENTRY_FIELDS = ["data_id", "raw_name", "char_source_type", "pipeline_status", "physical_sample_id",
                "upload_datetime", "last_updated", "raw_size_gb", "user_id", "metadata",
                "revision", "version"]
FILE_FIELDS = ["href", "id", "name", "size", "project", "created_on", "modified_on", "metadata"]

log = bench_run.log


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--smoke", action="store_true", help="a few seconds: CI keeps it working")
    parser.add_argument("--duration", type=int, default=20, help="seconds the victim is measured")
    parser.add_argument("--no-build", action="store_true", help="use the existing target/release/labcat")
    parser.add_argument("--binary", help="run this labcat binary instead (implies --no-build)")
    args = parser.parse_args()
    if args.smoke:
        args.duration = 3
    if not shutil.which("wrk"):
        sys.exit("wrk not found; apt-get install wrk")

    binary = args.binary or f"{ROOT}/target/release/labcat"
    if not (args.no_build or args.binary):
        log("building labcat (release) ...")
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    workdir = tempfile.mkdtemp(prefix="labcat-hardening-", dir="/tmp")
    os.chmod(workdir, 0o755)
    # Both tenants share the one labcat: rate limits are off for both. The victim's few
    # connections would not reach its limit anyway; the attacker's worst requests must be
    # limited by the work bounds, which is what is measured.
    os.environ["LABCAT__RATE_LIMIT__ENABLED"] = "false"
    server = None
    sampler = None
    try:
        server, psql = bench_run.start_labcat(workdir, binary, PORT)
        sampler = MemorySampler(server.pid, f"{workdir}/pg")
        sampler.start()
        attacker, victim = seed(workdir, psql)
        large = store_large_entry(attacker["key"])
        requests = attack_requests(attacker, large)
        probes = probe(requests, attacker["key"])
        request_file = f"{workdir}/attack.txt"
        with open(request_file, "w") as f:
            for method, path, body in requests:
                f.write(f"{method}\t{path}\t{body or ''}\n")
        result = load(workdir, request_file, attacker["key"], victim["targets"], args.duration)
        sampler.stop()
        result["labcat_peak_rss_mib"] = peak_rss_mib(server.pid)
        ok = report(args, large, probes, result, sampler)
    finally:
        if sampler:
            sampler.stop()
        if server:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
        shutil.rmtree(workdir, ignore_errors=True)
    sys.exit(0 if ok else 1)


def seed(workdir, psql):
    """Two users with a key each (bench/run's seed), each with MAX_BULK_IDS ordinary entries."""
    targets = bench_run.seed(workdir, psql, 2, 2 * MAX_BULK_IDS)
    by_key = {}
    with open(targets) as f:
        for line in f:
            key, data_id = line.split()
            by_key.setdefault(key, []).append(data_id)
    (attacker_key, attacker_ids), (victim_key, victim_ids) = sorted(by_key.items())[:2]
    victim_targets = f"{workdir}/victim.txt"
    with open(victim_targets, "w") as f:
        f.writelines(f"{victim_key} {data_id}\n" for data_id in victim_ids)
    return ({"key": attacker_key, "ids": attacker_ids},
            {"key": victim_key, "ids": victim_ids, "targets": victim_targets})


def call(method, path, key, body=None, timeout=120):
    connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=timeout)
    headers = {"X-API-KEY": key}
    if body is not None:
        headers["Content-Type"] = "application/json"
    started = time.monotonic()
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    data = response.read()
    elapsed_ms = (time.monotonic() - started) * 1000
    connection.close()
    return response.status, data, elapsed_ms


def store_large_entry(key):
    """The 100,000-number array if labcat takes it, else the longest array the metadata limit
    takes (measured as compact JSON; then, for main, as PostgreSQL prints it)."""
    def compact_fit(n):
        return len(json.dumps({"k": list(range(n))}, separators=(",", ":"))) <= METADATA_MAX_BYTES

    def printed_fit(n):
        return len(json.dumps({"k": list(range(n))})) <= METADATA_MAX_BYTES

    candidates = [LARGE_ARRAY_LENGTH, longest(compact_fit), longest(printed_fit)]
    refusals = []
    for n in candidates:
        metadata = {"k": list(range(n))}
        body = json.dumps({"raw_name": "large.raw", "char_source_type": "rheed_video",
                           "metadata": metadata}, separators=(",", ":"))
        status, data, _ = call("POST", "/data_entries", key, body)
        if status == 201:
            entry = json.loads(data)
            log(f"large entry stored: {n:,} numbers, {len(body):,} bytes sent")
            return {"id": entry["data_id"], "array_length": n, "bytes_sent": len(body),
                    "refused": refusals}
        refusals.append({"array_length": n, "status": status, "answer": data[:300].decode(errors="replace")})
        log(f"large entry of {n:,} numbers refused: {status} {data[:200]!r}")
    sys.exit("labcat refused every large entry tried")


def longest(fits):
    low, high = 1, LARGE_ARRAY_LENGTH
    while low < high:
        middle = (low + high + 1) // 2
        if fits(middle):
            low = middle
        else:
            high = middle - 1
    return low


def attack_requests(attacker, large):
    """(method, path, body) of the worst request each limit allows."""
    filters = "&".join(f"metadata.k={i}" for i in range(MAX_METADATA_FILTERS))
    keywords = "+".join(f"w{i}" for i in range(MAX_KEYWORDS))
    entry_fields = ",".join(ENTRY_FIELDS[i % len(ENTRY_FIELDS)] for i in range(MAX_FIELDS_NAMES))
    file_fields = ",".join(FILE_FIELDS[i % len(FILE_FIELDS)] for i in range(MAX_FIELDS_NAMES))
    ids = [large["id"]] + [i for i in attacker["ids"] if i != large["id"]][:MAX_BULK_IDS - 1]
    return [
        ("GET", f"/data_entries?{filters}&keywords={keywords}&fields={entry_fields}"
                f"&limit={SEARCH_MAX_LIMIT}", None),
        ("GET", f"/v2/files?{filters}&fields={file_fields}&limit={FILES_MAX_LIMIT}", None),
        ("POST", "/v2/bulk/files/get", json.dumps({"file_ids": ids}, separators=(",", ":"))),
        ("GET", f"/data_entries?fields={entry_fields}&limit={SEARCH_MAX_LIMIT}", None),
    ]


def probe(requests, key):
    """Each attack request once, alone: its status, time and answer size. A 4xx here means
    a constant above is larger than the limit labcat enforces (the test would then not send
    the worst allowed request), so it is reported."""
    results = []
    for method, path, body in requests:
        status, data, elapsed_ms = call(method, path, key, body)
        name = f"{method} {path.split('?')[0]}"
        results.append({"request": name, "status": status, "ms": round(elapsed_ms, 1),
                        "answer_bytes": len(data),
                        "refusal": data[:300].decode(errors="replace") if status >= 400 else None})
        log(f"probe {name}: {status} in {elapsed_ms:.0f} ms, {len(data):,} bytes")
    return results


def load(workdir, request_file, attacker_key, victim_targets, duration):
    """The attacker's wrk runs one second longer on each side of the victim's."""
    attack = subprocess.Popen(
        ["wrk", "-t2", f"-c{ATTACK_CONNECTIONS}", f"-d{duration + 2}s", "--timeout", "60s",
         "-s", f"{HERE}/hardening.lua", f"http://127.0.0.1:{PORT}"],
        env=dict(os.environ, LABCAT_ROLE="attacker", LABCAT_REQUESTS=request_file,
                 LABCAT_KEY=attacker_key),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1)
    victim = subprocess.run(
        ["wrk", "-t2", f"-c{VICTIM_CONNECTIONS}", f"-d{duration}s", "--latency", "--timeout", "2s",
         "-s", f"{HERE}/hardening.lua", f"http://127.0.0.1:{PORT}"],
        env=dict(os.environ, LABCAT_ROLE="victim", LABCAT_TARGETS=victim_targets),
        capture_output=True, text=True, check=True).stdout
    attack_out, attack_err = attack.communicate(timeout=duration + 120)
    if attack.returncode != 0:
        sys.exit(f"attacker's wrk failed: {attack_err}")
    return {"victim": parse_wrk(victim), "attacker": parse_wrk(attack_out)}


def parse_wrk(output):
    parsed = {"statuses": {}}
    for line in output.splitlines():
        words = line.split()
        if not words:
            continue
        if words[0] == "status":
            parsed["statuses"][words[1]] = int(words[2])
        elif words[0] == "latency_us":
            parsed["p50_ms"], parsed["p99_ms"], parsed["max_ms"] = (int(w) / 1000 for w in words[1:4])
        elif words[0] == "errors":
            parsed["socket_errors"] = {k: int(v) for k, v in (w.split("=") for w in words[1:])}
        elif words[0] == "requests":
            parsed["requests"] = int(words[1])
            parsed["rps"] = round(int(words[1]) / (int(words[3]) / 1e6), 1)
    return parsed


class MemorySampler(threading.Thread):
    """Every 0.2 s: labcat's RSS, and the RSS summed over the cluster's processes (the
    postmaster, found by its data directory, and its children). A sum of RSS counts shared
    buffers once per process that touched them: an upper bound on what PostgreSQL uses."""

    def __init__(self, labcat_pid, pg_dir):
        super().__init__(daemon=True)
        self.labcat_pid = labcat_pid
        self.pg_dir = pg_dir
        self.halt = threading.Event()
        self.samples = 0
        self.max_pg_sum_mib = 0.0
        self.max_pg_process_mib = 0.0
        self.max_pg_pss_sum_mib = 0.0
        self.max_labcat_rss_mib = 0.0

    def run(self):
        postmaster = None
        while not self.halt.is_set():
            if postmaster is None or not os.path.exists(f"/proc/{postmaster}"):
                postmaster = self.find_postmaster()
            if postmaster is not None:
                cluster = [postmaster] + children(postmaster)
                sizes = [rss_mib(pid) for pid in cluster]
                self.max_pg_sum_mib = max(self.max_pg_sum_mib, sum(sizes))
                self.max_pg_pss_sum_mib = max(self.max_pg_pss_sum_mib, sum(map(pss_mib, cluster)))
                self.max_pg_process_mib = max([self.max_pg_process_mib] + sizes)
            self.max_labcat_rss_mib = max(self.max_labcat_rss_mib, rss_mib(self.labcat_pid))
            self.samples += 1
            self.halt.wait(0.2)

    def find_postmaster(self):
        for pid in pids():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if argv and argv[0].endswith(b"postgres") and any(
                    arg.decode(errors="replace").startswith(self.pg_dir) for arg in argv[1:]):
                return pid
        return None

    def stop(self):
        self.halt.set()
        if self.is_alive():
            self.join()


def pids():
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def children(parent):
    found = []
    for pid in pids():
        try:
            with open(f"/proc/{pid}/stat") as f:
                # comm may hold spaces; the fields after its closing ')' do not
                if int(f.read().rsplit(")", 1)[1].split()[1]) == parent:
                    found.append(pid)
        except (OSError, IndexError, ValueError):
            continue
    return found


def rss_mib(pid):
    return status_field_mib(pid, "VmRSS:")


def pss_mib(pid):
    """Proportional set size: shared pages divided among the processes sharing them."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def peak_rss_mib(pid):
    return status_field_mib(pid, "VmHWM:")


def status_field_mib(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def report(args, large, probes, result, sampler):
    victim, attacker = result["victim"], result["attacker"]
    victim_5xx = sum(n for code, n in victim["statuses"].items() if code.startswith("5"))
    victim_timeouts = victim["socket_errors"]["timeout"]
    checks = {
        "victim_p99_ms": (victim["p99_ms"], P99_BOUND_MS, victim["p99_ms"] < P99_BOUND_MS),
        "victim_5xx": (victim_5xx, 0, victim_5xx == 0),
        "victim_timeouts": (victim_timeouts, 0, victim_timeouts == 0),
        "labcat_peak_rss_mib": (round(result["labcat_peak_rss_mib"], 1), LABCAT_RSS_BOUND_MIB,
                                result["labcat_peak_rss_mib"] < LABCAT_RSS_BOUND_MIB),
        "postgres_max_rss_sum_mib": (round(sampler.max_pg_sum_mib, 1), POSTGRES_RSS_BOUND_MIB,
                                     sampler.max_pg_sum_mib < POSTGRES_RSS_BOUND_MIB),
    }
    ok = all(passed for _, _, passed in checks.values()) and victim.get("requests", 0) > 0
    refused = [p for p in probes if p["status"] >= 400]
    summary = {
        "duration_s": args.duration,
        "rate_limit": "disabled (LABCAT__RATE_LIMIT__ENABLED=false): work bounds measured, not rate limits",
        "limits_sent": {"metadata_filters": MAX_METADATA_FILTERS, "keywords": MAX_KEYWORDS,
                        "fields_names": MAX_FIELDS_NAMES, "bulk_distinct_ids": MAX_BULK_IDS},
        "large_entry": {k: large[k] for k in ("array_length", "bytes_sent", "refused")},
        "probes": probes,
        "attacker": attacker,
        "victim": victim,
        "postgres_max_single_process_rss_mib": round(sampler.max_pg_process_mib, 1),
        "postgres_max_pss_sum_mib": round(sampler.max_pg_pss_sum_mib, 1),
        "memory_samples": sampler.samples,
        "checks": {name: {"value": value, "bound": bound, "pass": passed}
                   for name, (value, bound, passed) in checks.items()},
        "pass": ok,
    }
    print(json.dumps(summary, indent=2))
    print()
    print(f"attacker: {ATTACK_CONNECTIONS} connections, {attacker.get('requests', 0)} worst-case requests "
          f"({attacker.get('rps', 0)}/s), statuses {attacker['statuses']}; rate limiting OFF")
    print(f"victim:   {VICTIM_CONNECTIONS} connections, {victim.get('requests', 0)} GETs by id "
          f"({victim.get('rps', 0)}/s), statuses {victim['statuses']}")
    print(f"large entry: {large['array_length']:,}-number array, {large['bytes_sent']:,} bytes sent")
    print(f"PostgreSQL: largest process {sampler.max_pg_process_mib:.1f} MiB RSS; most PSS summed "
          f"{sampler.max_pg_pss_sum_mib:.1f} MiB (shared buffers counted once)")
    if refused:
        print(f"WARNING: {len(refused)} attack request(s) refused alone, so a limit constant above "
              f"exceeds labcat's: {[(p['request'], p['status']) for p in refused]}")
    print(f"\n{'check':<28} {'measured':>10} {'bound':>10}  result")
    for name, (value, bound, passed) in checks.items():
        bound_text = f"< {bound:g}" if isinstance(bound, float) else f"= {bound}"
        print(f"{name:<28} {value:>10} {bound_text:>10}  {'pass' if passed else 'FAIL'}")
    print(f"\n{'PASS' if ok else 'FAIL'}")
    return ok


if __name__ == "__main__":
    main()
