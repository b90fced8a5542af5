#!/usr/bin/env python3
"""Metadata-filtered search: labcat over HTTP against the same SQL run directly.

Starts a release build of labcat on a throwaway embedded PostgreSQL, seeds ROWS entries
with varied metadata, then measures, in the same run:
  * labcat: GET /data_entries?metadata.operator=<v>&limit=100, sequentially over one
    keep-alive connection, median latency;
  * PostgreSQL alone: pgbench -M prepared, one client, running the statements labcat runs
    for that request (key lookup, page, count), median latency from the per-transaction log.
and prints both with their ratio. Standard library only.

usage: bench/metadata_search.py [--rows 1000000] [--requests 300] [--labcat target/release/labcat]
"""

import argparse
import glob
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

PORT = 18431
FILTER_VALUE = "op42"


def log(message):
    print(message, file=sys.stderr, flush=True)


def pg_binary(name):
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not candidates:
        sys.exit(f"{name} not found; install PostgreSQL")
    return candidates[-1]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--labcat", default="target/release/labcat")
    args = parser.parse_args()

    if args.labcat == "target/release/labcat":
        subprocess.run(["cargo", "build", "--release", "--quiet"], check=True)
    workdir = tempfile.mkdtemp(prefix="labcat-bench-", dir="/tmp")
    os.chmod(workdir, 0o755)  # PostgreSQL runs as `postgres` under root and must reach it
    env = dict(os.environ, LABCAT__DATABASE__DATA_DIR=f"{workdir}/pg", LABCAT__LOG__LEVEL="warn")
    env.pop("DATABASE_URL", None)
    stdout = open(f"{workdir}/serve.out", "w+")
    server = subprocess.Popen(
        [args.labcat, "serve", "--addr", f"127.0.0.1:{PORT}"],
        env=env, stdout=stdout, stderr=open(f"{workdir}/serve.err", "w"),
    )
    try:
        key = wait_for_key(stdout, server)
        psql = [pg_binary("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
                "-h", f"{workdir}/pg/run", "-p", "5432", "-U", "postgres", "-d", "labcat"]
        seed(psql, args.rows)
        labcat_ms = measure_labcat(key, args.requests)
        pg_ms = measure_pgbench(workdir, key, args.requests)
        print(json.dumps({
            "rows": args.rows,
            "requests": args.requests,
            "filter": f"metadata.operator={FILTER_VALUE}&limit=100",
            "labcat_median_ms": round(labcat_ms, 3),
            "postgres_median_ms": round(pg_ms, 3),
            "ratio_labcat_over_postgres": round(labcat_ms / pg_ms, 2),
        }, indent=2))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
        shutil.rmtree(workdir, ignore_errors=True)


def wait_for_key(stdout, server):
    deadline = time.time() + 120
    while time.time() < deadline:
        if server.poll() is not None:
            sys.exit("labcat exited during start-up")
        stdout.seek(0)
        match = re.search(r"lc_[A-Za-z0-9]{40}", stdout.read())
        if match:
            return match.group(0)
        time.sleep(0.2)
    sys.exit("labcat printed no key")


def seed(psql, rows):
    log(f"seeding {rows} entries ...")
    started = time.time()
    sql = f"""
        INSERT INTO data_entries (data_id, user_id, raw_name, char_source_type, pipeline_status,
                                  raw_size_gb, metadata, project_id)
        SELECT gen_random_uuid(), 'admin', 'run_' || i || '.dat',
               (enum_range(NULL::char_source_type))[1 + i % 12],
               (enum_range(NULL::pipeline_status))[1 + i % 4],
               (i % 1000) / 100.0,
               jsonb_build_object(
                   'operator', 'op' || (i % 1000),
                   'run', i,
                   'batch', i % 97,
                   'instrument', (ARRAY['mbe-1', 'mbe-2', 'xps-a', 'sem-3', 'afm-9'])[1 + i % 5],
                   'substrate', jsonb_build_object('material', (ARRAY['GaN', 'Si', 'SiC'])[1 + i % 3],
                                                   'size_mm', 10 + i % 40),
                   'tags', jsonb_build_array('t' || (i % 13), 't' || (i % 17))),
               (SELECT project_id FROM projects WHERE created_by = 'admin' AND personal)
        FROM generate_series(1, {rows}) AS i;
        ANALYZE data_entries;
    """
    subprocess.run(psql + ["-c", sql], check=True)
    log(f"seeded in {time.time() - started:.0f}s")


def measure_labcat(key, requests):
    connection = http.client.HTTPConnection("127.0.0.1", PORT)
    path = "/data_entries?" + urllib.parse.urlencode(
        {f"metadata.operator": FILTER_VALUE, "limit": 100})
    headers = {"X-API-KEY": key}
    latencies = []
    for i in range(requests + 20):
        started = time.perf_counter()
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        body = response.read()
        elapsed = (time.perf_counter() - started) * 1000
        if response.status != 200 or len(json.loads(body)) != 100:
            sys.exit(f"unexpected answer {response.status}: {body[:200]!r}")
        if i >= 20:  # the first requests warm caches and connections
            latencies.append(elapsed)
    return statistics.median(latencies)


def measure_pgbench(workdir, key, requests):
    key_hash = hashlib.sha256(key.encode()).hexdigest()
    document = json.dumps({"operator": FILTER_VALUE}).replace("'", "''")
    script = f"""
SELECT key_id, user_id, scopes FROM api_keys WHERE key_hash = decode('{key_hash}', 'hex') AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now());
SELECT * FROM data_entries WHERE user_id = 'admin' AND (metadata @> '{document}'::jsonb) ORDER BY upload_datetime ASC, data_id ASC LIMIT 101;
SELECT count(*) FROM data_entries WHERE user_id = 'admin' AND (metadata @> '{document}'::jsonb);
"""
    script_path = f"{workdir}/search.sql"
    with open(script_path, "w") as f:
        f.write(script)
    log_prefix = f"{workdir}/pgbench_log"
    subprocess.run(
        [pg_binary("pgbench"), "-n", "-M", "prepared", "-c", "1", "-t", str(requests + 20),
         "-f", script_path, "-l", "--log-prefix", log_prefix,
         "-h", f"{workdir}/pg/run", "-p", "5432", "-U", "postgres", "labcat"],
        check=True, stdout=subprocess.DEVNULL,
    )
    latencies = []
    for path in glob.glob(log_prefix + "*"):
        with open(path) as f:
            for line in f:
                latencies.append(int(line.split()[2]) / 1000)
    return statistics.median(latencies[20:])


if __name__ == "__main__":
    main()
