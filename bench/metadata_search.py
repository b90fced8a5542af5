#!/usr/bin/env python3
"""Metadata queries at scale (issue 14): labcat over HTTP against the same SQL run directly.

Starts a release build of labcat on a throwaway embedded PostgreSQL, seeds ROWS entries with
varied nested metadata (quantities in mixed units, RFC 3339 strings, notes, tags), then for
each of six queries measures, in the same run:
  * labcat: the request, sequentially over one keep-alive connection, median latency;
  * PostgreSQL alone: pgbench -n -c 1 running every statement labcat ran for that request
    (captured from PostgreSQL's statement log), median latency from the per-transaction
    log: with the parameters substituted as literals, -M simple (parsed and planned on every
    run: "the same SQL run directly", the ratio's baseline) and -M prepared (planned once);
    and with them bound as pgbench variables, -M prepared ("bound": PostgreSQL's plan cache
    then picks a generic plan exactly when it does for labcat's prepared statements);
and checks that each captured page/count/facet statement's plan, with literals and as
labcat's prepared statement settles on it, reads an index of data_entries or
metadata_values, never scans data_entries sequentially and scans at most one (one path's)
partition of metadata_values: exit 1 if not. With --strict, also exit 1
when a ratio exceeds 1.3. Slow queries get fewer timed requests (--budget seconds a side).
Standard library only.

usage: bench/metadata_search.py [--rows 1000000] [--requests 300] [--rounds 3] [--budget 60]
                                [--labcat target/release/labcat] [--strict] [--keep]
                                [--reuse WORKDIR] [--kinds equality,q,...] [--explain-analyze]
"""

import argparse
import concurrent.futures
import glob
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
MAX_RATIO = 1.3
SEARCH = "/data_entries"
FACETS = "/data_entries/facets"

# (name, route, query parameters). Selectivities at any --rows: operator 1/1000, pass
# energy >= 198 2/200, >= 1000 K ~4 %, flagged 1 %, "anneal" 0.5 %, site3 10 %.
KINDS = [
    ("equality", SEARCH, [("metadata.operator", "op42"), ("limit", "100")]),
    ("range_sorted", SEARCH, [
        ("metadata.instrument.settings.pass_energy[gte]", "198"),
        ("order_by", "-metadata.instrument.settings.pass_energy"),
        ("limit", "100")]),
    ("unit_range", SEARCH, [("metadata.temperature[gte]", "1000 K"), ("limit", "100")]),
    ("exists", SEARCH, [("metadata.flagged[exists]", "true"), ("limit", "100")]),
    ("q", SEARCH, [("q", "anneal"), ("limit", "100")]),
    ("facet", FACETS, [("facet", "char_source_type"), ("facet", "metadata.operator"),
                       ("metadata.site", "site3")]),
]

# The only triggers on data_entries; seeding disables them and writes what they would.
INDEXED_PATHS = ("instrument.settings.pass_energy", "temperature", "flagged")
EXPECTED_TRIGGERS = {"metadata_values_on_insert", "metadata_values_on_update",
                     "metadata_values_on_delete"}
INDEXED_TABLES = ("data_entries", "metadata_values")
INDEX_NODES = ("Index Scan", "Index Only Scan", "Bitmap Index Scan")
# Statements a background task may run while a request is being captured (not the request's).
BACKGROUND = re.compile(r"\bidempotency_keys\b|\blast_used_at\s*=")
# Not per request: the key lookup (once per auth.key_cache_seconds) and sqlx's type
# introspection (once per connection and statement).
ONE_OFF = re.compile(r"\bFROM\s+api_keys\b|\bpg_catalog\.|\bFROM\s+pg_type\b")


def log(message):
    print(message, file=sys.stderr, flush=True)


def fail(message):
    log(f"FAIL: {message}")
    sys.exit(1)


def pg_binary(name):
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not candidates:
        sys.exit(f"{name} not found; install PostgreSQL")
    return candidates[-1]


class Database:
    """psql against the embedded cluster's socket."""

    def __init__(self, workdir):
        self.socket = f"{workdir}/pg/run"
        self.base = [pg_binary("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
                     "-h", self.socket, "-p", "5432", "-U", "postgres", "-d", "labcat"]

    def run(self, sql):
        """Runs statements (each in its own transaction unless the text says otherwise)."""
        subprocess.run(self.base + ["-f", "-"], input=sql, text=True, check=True,
                       stdout=subprocess.DEVNULL)

    def rows(self, sql):
        done = subprocess.run(self.base + ["-At", "-F", "\t", "-c", sql], text=True,
                              check=True, capture_output=True)
        return [line.split("\t") for line in done.stdout.splitlines()]

    def value(self, sql):
        return self.rows(sql)[0][0]

    def text(self, sql, script=False):
        """Unaligned output; a script runs in one session, its statements one by one."""
        if script:
            return subprocess.run(self.base + ["-At", "-f", "-"], input=sql, text=True,
                                  check=True, capture_output=True).stdout
        return subprocess.run(self.base + ["-At", "-c", sql], text=True, check=True,
                              capture_output=True).stdout

    def try_rows(self, sql):
        """(ok, stdout or error): for checking that a captured statement runs."""
        done = subprocess.run(self.base + ["-At", "-F", "\t", "-c", sql], text=True,
                              capture_output=True)
        return done.returncode == 0, done.stdout if done.returncode == 0 else done.stderr


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=300,
                        help="timed requests per query kind and side, over all rounds")
    parser.add_argument("--rounds", type=int, default=3,
                        help="labcat and pgbench alternate this many times per kind")
    parser.add_argument("--warmup", type=int, default=20, help="untimed requests per round")
    parser.add_argument("--labcat", default="target/release/labcat")
    parser.add_argument("--strict", action="store_true",
                        help=f"exit 1 if any ratio exceeds {MAX_RATIO}")
    parser.add_argument("--keep", action="store_true",
                        help="keep the work directory (cluster, statement log, scripts)")
    parser.add_argument("--explain-analyze", action="store_true",
                        help="also print EXPLAIN (ANALYZE, BUFFERS) of each captured statement")
    parser.add_argument("--reuse", metavar="WORKDIR",
                        help="measure on the cluster a --keep run left, without seeding")
    parser.add_argument("--budget", type=float, default=60,
                        help="seconds of timed requests per kind and side, at most: fewer "
                             "than --requests for slow queries (at least 5 per round)")
    parser.add_argument("--kinds", default=",".join(k[0] for k in KINDS),
                        help="comma-separated subset of the query kinds")
    args = parser.parse_args()
    wanted = args.kinds.split(",")
    unknown = set(wanted) - {k[0] for k in KINDS}
    if unknown:
        sys.exit(f"unknown kinds: {sorted(unknown)}")
    KINDS[:] = [k for k in KINDS if k[0] in wanted]

    if args.labcat == "target/release/labcat":
        subprocess.run(["cargo", "build", "--release", "--quiet"], check=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    if args.reuse:
        workdir = args.reuse.rstrip("/")
        for stale in glob.glob(f"{workdir}/*.sql") + glob.glob(f"{workdir}/pgbench_*"):
            os.remove(stale)
    else:
        workdir = tempfile.mkdtemp(prefix="labcat-bench-", dir="/tmp")
        os.chmod(workdir, 0o755)  # PostgreSQL runs as `postgres` under root and must reach it
    # Rate limiting off: one key sends every request, faster than the read bucket refills.
    # The paths the range, unit-aware and exists queries filter on are declared indexed, as a
    # lab declares the paths it searches by (config/default.toml, [search]).
    env = dict(os.environ, LABCAT__DATABASE__DATA_DIR=f"{workdir}/pg",
               LABCAT__LOG__LEVEL="warn", LABCAT__RATE_LIMIT__ENABLED="false",
               LABCAT__SEARCH__INDEXED_PATHS=",".join(INDEXED_PATHS))
    env.pop("DATABASE_URL", None)
    stdout = open(f"{workdir}/serve.out", "w+")
    server = subprocess.Popen(
        [args.labcat, "serve", "--addr", f"127.0.0.1:{PORT}"],
        env=env, stdout=stdout, stderr=open(f"{workdir}/serve.err", "w"),
    )
    try:
        if args.reuse:
            wait_for_ready(server)
            key = subprocess.run([args.labcat, "keys", "create", "--user", "admin",
                                  "--scopes", "read"], env=env, check=True,
                                 capture_output=True, text=True).stdout.strip()
            db = Database(workdir)
            args.rows = int(db.value("SELECT count(*) FROM data_entries"))
            seed_seconds = None
            log(f"reusing {workdir}: {args.rows} entries, seeded by an earlier run")
        else:
            key = wait_for_key(stdout, server)
            db = Database(workdir)
            seed_seconds = seed(db, args.rows)
            check_seed(db)
        client = Client(key)
        for name, route, params in KINDS:  # every kind answers, and its statements are prepared
            warm_up(client, route, params, args.warmup)
        captured, matches = capture(db, workdir, client)
        # The table each index and table belongs to: a partition's is its partitioned table.
        table_of = dict(db.rows(
            "SELECT c.relname, coalesce(pg_partition_root(owner.oid), owner.oid)::regclass "
            "FROM pg_class c "
            "LEFT JOIN pg_index i ON i.indexrelid = c.oid "
            "JOIN pg_class owner ON owner.oid = coalesce(i.indrelid, c.oid) "
            "WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'i', 'I')"))
        results = []
        for name, route, params in KINDS:
            statements = captured[name]
            checked = check_statements(db, name, statements, matches[name], table_of,
                                       args.explain_analyze)
            results.append(dict(kind=name, request=route + "?" + urllib.parse.urlencode(params),
                                **checked,
                                captured_bind_ms=sum(st.bind_ms for st in statements),
                                captured_execute_ms=sum(st.execute_ms for st in statements),
                                scripts=write_scripts(workdir, name, statements),
                                route=route, params=params))
        # What the client, HTTP and actix cost alone: /healthz over the same connection.
        floor = statistics.median(client.raw("/healthz")[0] for _ in range(200))
        log(f"GET /healthz (the HTTP floor): median {floor:.3f} ms")
        for result in results:
            log(f"measuring {result['kind']} (load average {os.getloadavg()[0]:.2f})")
            measure(db, workdir, client, result, args)
        report(results, args, commit, seed_seconds, floor)
        bad_plans = [r["kind"] for r in results if not r["plan_ok"]]
        bad_labcat_plans = [r["kind"] for r in results if not r["labcat_plan_ok"]]
        if bad_plans or bad_labcat_plans:
            fail(f"a plan reads no index of {'/'.join(INDEXED_TABLES)} or scans too much "
                 f"sequentially: with literals {', '.join(bad_plans) or 'none'}; "
                 f"as labcat's prepared statements {', '.join(bad_labcat_plans) or 'none'}")
        slow = [r["kind"] for r in results if r["ratio"] > MAX_RATIO]
        if slow:
            log(f"ratio above {MAX_RATIO}: {', '.join(slow)}")
            if args.strict:
                sys.exit(1)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
        if args.keep or args.reuse:
            log(f"kept {workdir} (the cluster is stopped)")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def wait_for_ready(server):
    # On a reused cluster labcat may first index newly declared paths over every entry.
    deadline = time.time() + 900
    while time.time() < deadline:
        if server.poll() is not None:
            sys.exit("labcat exited during start-up")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=5)
            connection.request("GET", "/readyz")
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit("labcat did not become ready")


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


# --- seeding -----------------------------------------------------------------------------

def entries_sql(rows):
    """The bulk INSERT: independent random draws per entry (seeded, so runs are alike)."""
    return f"""
SELECT setseed(0.14);
INSERT INTO data_entries (data_id, user_id, raw_name, char_source_type, pipeline_status,
                          raw_size_gb, metadata, project_id, upload_datetime, last_updated)
WITH draw AS MATERIALIZED (
    SELECT i, random() AS operator, random() AS site, random() AS instrument,
           random() AS pass_energy, random() AS dwell, random() AS kelvin,
           random() AS t_unit, random() AS pascal, random() AS p_unit, random() AS started,
           random() AS zone, random() AS note, random() AS note_pick, random() AS flag,
           random() AS tag1, random() AS tag2, random() AS material, random() AS type,
           random() AS status, random() AS size
    FROM generate_series(1, {rows}) AS i
),
shaped AS (
    SELECT *, 280 + kelvin * 750 AS t_k, power(10, -7 + pascal * 12) AS p_pa,
           timestamptz '2023-01-01T00:00:00Z' + started * interval '730 days' AS t_start
    FROM draw
)
SELECT gen_random_uuid(), 'admin', 'run_' || i || '.dat',
       (enum_range(NULL::char_source_type))[1 + floor(type * 12)::int],
       (enum_range(NULL::pipeline_status))[1 + floor(status * 4)::int],
       round((size * 10)::numeric, 3),
       jsonb_build_object(
           'operator', 'op' || floor(operator * 1000)::int,
           'site', 'site' || floor(site * 10)::int,
           'material', (ARRAY['GaN', 'SrTiO3', 'Si', 'GaAs', 'InP', 'SiC'])[1 + floor(material * 6)::int],
           'instrument', jsonb_build_object(
               'name', (ARRAY['PHI VersaProbe', 'Kratos Axis', 'Thermo K-Alpha', 'SPECS Phoibos',
                              'Scienta R4000', 'JEOL JSM', 'Bruker D8', 'Horiba LabRAM'])
                       [1 + floor(instrument * 8)::int],
               'settings', jsonb_build_object(
                   'pass_energy', floor(pass_energy * 200)::int,
                   'dwell_ms', 50 * (1 + floor(dwell * 10)::int))),
           'temperature', CASE floor(t_unit * 3)::int
               WHEN 0 THEN jsonb_build_object('value', round((t_k - 273.15)::numeric, 1), 'unit', 'degC')
               WHEN 1 THEN jsonb_build_object('value', round(t_k::numeric, 1), 'unit', 'K')
               ELSE jsonb_build_object('value', round((t_k * 1.8 - 459.67)::numeric, 1), 'unit', 'degF')
           END,
           'pressure', CASE floor(p_unit * 3)::int
               WHEN 0 THEN jsonb_build_object('value', round((p_pa / 100)::numeric, (2 - floor(log(p_pa / 100)))::int), 'unit', 'mbar')
               WHEN 1 THEN jsonb_build_object('value', round((p_pa / 133.322368)::numeric, (2 - floor(log(p_pa / 133.322368)))::int), 'unit', 'Torr')
               ELSE jsonb_build_object('value', round(p_pa::numeric, (2 - floor(log(p_pa)))::int), 'unit', 'Pa')
           END,
           'started', CASE WHEN zone < 0.7
               THEN to_char(t_start AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
               ELSE to_char((t_start + interval '1 hour') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"+01:00"')
           END,
           'notes', CASE WHEN note < 0.005
               THEN (ARRAY['post-growth anneal at 600 C', 'annealed in N2 for 30 min',
                           'Anneal step repeated'])[1 + floor(note_pick * 3)::int]
               ELSE (ARRAY['routine calibration', 'baseline drift check', 'substrate rotated',
                           'sputter clean before run', 'good signal', 'noisy spectrum, repeat',
                           'vacuum ok', 'etch test'])[1 + floor(note_pick * 8)::int]
           END,
           'tags', jsonb_build_array('t' || floor(tag1 * 16)::int, 't' || floor(tag2 * 16)::int))
       || CASE WHEN flag < 0.01 THEN '{{"flagged": true}}'::jsonb ELSE '{{}}'::jsonb END,
       (SELECT project_id FROM projects WHERE created_by = 'admin' AND personal),
       timestamptz '2025-01-01T00:00:00Z' + i * interval '20 seconds',
       timestamptz '2025-01-01T00:00:00Z' + i * interval '20 seconds'
FROM shaped;
"""


def seed(db, rows):
    """Bulk load without the per-row triggers, then metadata_values set-based, as they write it.

    The row triggers cost ~300 µs an entry; disabled (session_replication_role = replica),
    the load writes data_entries alone, and metadata_values is then filled with exactly the
    trigger's INSERT (metadata_values_at of each document, for each declared path). Secondary indexes are dropped for
    the load and recreated from their saved pg_get_indexdef, checked identical afterwards.
    """
    triggers = {r[0]: r[1] for r in db.rows(
        "SELECT tgname, tgenabled FROM pg_trigger "
        "WHERE tgrelid = 'data_entries'::regclass AND NOT tgisinternal")}
    if set(triggers) != EXPECTED_TRIGGERS or set(triggers.values()) != {"O"}:
        fail(f"data_entries has triggers {triggers}, this seeding writes what "
             f"{sorted(EXPECTED_TRIGGERS)} would: update seed()")
    if db.value("SELECT count(*) FROM data_entries") != "0":
        fail("the throwaway database already holds entries")
    indexes = db.rows(
        "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i "
        "JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE i.indrelid IN ('data_entries'::regclass, 'metadata_values'::regclass) "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conindid = i.indexrelid) "
        "ORDER BY 1")
    log(f"seeding {rows} entries (indexes dropped for the load: "
        f"{', '.join(name for name, _ in indexes)}) ...")
    started = time.time()
    db.run("".join(f"DROP INDEX {name};\n" for name, _ in indexes))
    db.run("BEGIN;\nSET LOCAL session_replication_role = replica;\n" + entries_sql(rows)
           + "COMMIT;\n")
    loaded = time.time()
    log(f"  data_entries: {loaded - started:.0f} s")
    # The trigger's INSERT, for every entry, in two sessions (halves by data_id).
    halves = ["e.data_id < '80000000-0000-0000-0000-000000000000'",
              "e.data_id >= '80000000-0000-0000-0000-000000000000'"]
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        list(pool.map(db.run, [
            "BEGIN;\nSET LOCAL session_replication_role = replica;\n"
            "INSERT INTO metadata_values (data_id, path, kind, value)\n"
            "SELECT e.data_id, indexed.path, fact.kind, fact.value\n"
            "FROM data_entries AS e CROSS JOIN metadata_indexed_paths AS indexed\n"
            "CROSS JOIN LATERAL metadata_values_at(e.metadata, indexed.path) AS fact\n"
            f"WHERE {half};\n"
            "COMMIT;\n" for half in halves]))
    filled = time.time()
    log(f"  metadata_values: {filled - loaded:.0f} s")
    # Two index builds at a time (btree builds also get parallel workers).
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        list(pool.map(db.run, [f"SET maintenance_work_mem = '512MB';\n"
                               # A partitioned table's index is shown ON ONLY it; built
                               # without ONLY, it is built on every partition too.
                               f"{definition.replace(' ON ONLY ', ' ON ')};\n"
                               for _, definition in sorted(indexes, key=lambda i: "gin" in i[1])]))
    rebuilt = db.rows(
        "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i "
        "JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE i.indrelid IN ('data_entries'::regclass, 'metadata_values'::regclass) "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conindid = i.indexrelid) "
        "ORDER BY 1")
    if rebuilt != indexes:
        fail(f"indexes after seeding differ from before:\n{indexes}\n{rebuilt}")
    indexed = time.time()
    log(f"  indexes: {indexed - filled:.0f} s")
    db.run("VACUUM ANALYZE;\n")
    seconds = time.time() - started
    log(f"  vacuum analyze: {time.time() - indexed:.0f} s")
    facts = db.value("SELECT count(*) FROM metadata_values")
    sizes = db.rows(
        "SELECT 'data_entries', pg_size_pretty(pg_total_relation_size('data_entries')) "
        "UNION ALL SELECT 'metadata_values', "
        "pg_size_pretty(sum(pg_total_relation_size(relid))::bigint) "
        "FROM pg_partition_tree('metadata_values')")
    log(f"seeded {rows} entries, {facts} metadata_values rows in {seconds:.0f} s "
        f"({', '.join(f'{n} {s}' for n, s in sizes)})")
    return round(seconds)


def check_seed(db):
    """The set-based fill equals what the trigger writes, on a sample of entries.

    In a transaction that is rolled back: 500 random entries are copied with triggers on
    (the real write path fills metadata_values for the copies); each original's rows must
    equal its copy's and metadata_values_at of its document at the declared paths, as
    multisets.
    """
    project = "(SELECT project_id FROM projects WHERE created_by = 'admin' AND personal)"
    out = db.rows(f"""
BEGIN;
CREATE TEMP TABLE sample ON COMMIT DROP AS
    SELECT data_id AS original, gen_random_uuid() AS copy, metadata
    FROM data_entries TABLESAMPLE BERNOULLI (1) REPEATABLE (14) LIMIT 500;
INSERT INTO data_entries (data_id, user_id, raw_name, char_source_type, metadata, project_id)
    SELECT copy, 'admin', 'copy', 'xps', metadata, {project} FROM sample;
SELECT count(*),
       count(*) FILTER (WHERE EXISTS (
           (SELECT path, kind, value FROM metadata_values WHERE data_id = original
            EXCEPT ALL SELECT path, kind, value FROM metadata_values WHERE data_id = copy)
           UNION ALL
           (SELECT path, kind, value FROM metadata_values WHERE data_id = copy
            EXCEPT ALL SELECT path, kind, value FROM metadata_values WHERE data_id = original))),
       count(*) FILTER (WHERE EXISTS (
           (SELECT path, kind, value FROM metadata_values WHERE data_id = original
            EXCEPT ALL SELECT indexed.path, fact.kind, fact.value
            FROM metadata_indexed_paths AS indexed,
                 metadata_values_at(metadata, indexed.path) AS fact)
           UNION ALL
           (SELECT indexed.path, fact.kind, fact.value
            FROM metadata_indexed_paths AS indexed,
                 metadata_values_at(metadata, indexed.path) AS fact
            EXCEPT ALL SELECT path, kind, value FROM metadata_values WHERE data_id = original))),
       (SELECT count(*) FROM metadata_values JOIN sample ON data_id = original)
FROM sample;
ROLLBACK;
""")
    sampled, differ_trigger, differ_function, facts = (
        int(v) for v in [row for row in out if len(row) == 4][-1])
    if sampled == 0 or differ_trigger or differ_function:
        fail(f"seeding check: of {sampled} sampled entries, {differ_trigger} differ from "
             f"the trigger's rows, {differ_function} from metadata_values_at")
    log(f"seeding check: {sampled} sampled entries ({facts} facts) have the rows the "
        "trigger writes and metadata_values_at gives")


# --- labcat over HTTP --------------------------------------------------------------------

class Client:
    """One keep-alive connection; every answer is checked."""

    def __init__(self, key):
        self.connection = http.client.HTTPConnection("127.0.0.1", PORT)
        self.headers = {"X-API-KEY": key}

    def raw(self, path):
        """(latency in ms, body) of an untimed-phase GET, e.g. /metrics or /healthz."""
        for attempt in (1, 2):
            try:
                started = time.perf_counter()
                self.connection.request("GET", path, headers=self.headers)
                response = self.connection.getresponse()
                body = response.read()
                return (time.perf_counter() - started) * 1000, body.decode()
            except (http.client.RemoteDisconnected, ConnectionError):
                self.connection.close()
                if attempt == 2:
                    raise

    def server_time(self, route):
        """(count, seconds) labcat's own histogram holds for GET route answered 200."""
        _, text = self.raw("/metrics")
        totals = {}
        for part in ("sum", "count"):
            values = [float(m.group(2)) for m in re.finditer(
                r'^labcat_http_request_duration_seconds_' + part + r'\{([^}]*)\} (\S+)$',
                text, re.M)
                if f'route="{route}"' in m.group(1) and 'status="200"' in m.group(1)
                and 'method="GET"' in m.group(1)]
            totals[part] = sum(values)
        return totals["count"], totals["sum"]

    def get(self, route, params):
        """The request's latency in ms and its match count."""
        path = route + "?" + urllib.parse.urlencode(params)
        for attempt in (1, 2):
            try:
                started = time.perf_counter()
                self.connection.request("GET", path, headers=self.headers)
                response = self.connection.getresponse()
                body = response.read()
                elapsed = (time.perf_counter() - started) * 1000
                break
            except (http.client.RemoteDisconnected, ConnectionError):
                # labcat closes a keep-alive connection idle for a few seconds (between
                # phases; every phase starts with untimed requests): connect again.
                self.connection.close()
                if attempt == 2:
                    raise
        if response.status != 200:
            fail(f"GET {path}: {response.status} {body[:300]!r}")
        answer = json.loads(body)
        if route == FACETS:
            facets = [value for name, value in params if name == "facet"]
            if not isinstance(answer, dict) or sorted(answer) != sorted(facets):
                fail(f"GET {path}: not one list per facet: {body[:300]!r}")
            # Every entry has a char_source_type: its counts add up to the matches.
            matches = sum(bucket["count"] for bucket in answer["char_source_type"])
        else:
            matches = int(response.getheader("X-Total-Count"))
            if len(answer) != min(matches, 100):
                fail(f"GET {path}: {len(answer)} entries with X-Total-Count {matches}")
        return elapsed, matches


# --- capturing what labcat sends ---------------------------------------------------------

LINE_START = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? \S+ \[(\d+)\] (\w+):  (.*)$")
EXECUTE = re.compile(r"^duration: ([\d.]+) ms  (?:execute [^:]*|statement): (.*)$", re.S)
BIND = re.compile(r"^duration: ([\d.]+) ms  bind [^:]*: ", re.S)
PARAMETER = re.compile(r"\$(\d+) = (NULL|'(?:[^']|'')*')")


class Statement:
    """One statement labcat ran: its text with $n placeholders, the logged parameters
    ({n: a quoted literal or NULL}), and PostgreSQL's bind and execute durations."""

    def __init__(self, raw, params, bind_ms=0.0, execute_ms=0.0):
        self.raw, self.params = raw.strip(), params
        self.bind_ms, self.execute_ms = bind_ms, execute_ms
        self.sql = self.substitute(lambda n: params[n])

    def substitute(self, value_of):
        def replace(match):
            number = int(match.group(1))
            if number not in self.params:
                fail(f"no logged value for ${number} of: {self.raw[:200]}")
            return value_of(number)
        return re.sub(r"\$(\d+)(?!\d)", replace, self.raw)

    def bound(self):
        """(text for pgbench with :pN variables, {pN: value}): bound as labcat binds them,
        so PostgreSQL's plan cache treats them alike. A NULL stays a literal NULL (pgbench
        cannot bind one)."""
        values = {f"p{n}": value[1:-1].replace("''", "'")
                  for n, value in self.params.items() if value != "NULL"}
        return self.substitute(
            lambda n: "NULL" if self.params[n] == "NULL" else f":p{n}"), values

    def arguments(self):
        return ", ".join(self.params[n] for n in sorted(self.params))

    def to_json(self):
        return {"sql": self.sql, "raw": self.raw, "parameters": self.params}


def capture(db, workdir, client):
    """{kind: [Statement, …]}: what one request of each kind made PostgreSQL run.

    Statement logging is on only around these requests. A request is captured in the
    steady state the timing sees: labcat looks its key up once per auth.key_cache_seconds
    (5 s) and sqlx reads pg_type once per connection for a statement's types, so a request
    that ran either is captured again (up to 5 times); what it left out is logged. Statements
    of background tasks (idempotency expiry, key last-use) are left out too.
    """
    log_path = f"{workdir}/pg/postgres.log"
    db.run("ALTER SYSTEM SET log_min_duration_statement = 0;\n"
           "ALTER SYSTEM SET log_parameter_max_length = -1;\n"
           "SELECT pg_reload_conf();\n")
    time.sleep(1)
    captured, matches = {}, {}
    try:
        for name, route, params in KINDS:
            for attempt in range(5):
                client.get(route, params)
                time.sleep(0.2)
                start = os.path.getsize(log_path)
                _, matches[name] = client.get(route, params)
                time.sleep(0.5)  # the backends' log lines land
                with open(log_path, errors="replace") as f:
                    f.seek(start)
                    text = f.read()
                ran = []
                for statement in logged_statements(text):
                    if BACKGROUND.search(statement.sql):
                        log(f"  {name}: left out a background statement: "
                            + " ".join(statement.sql.split())[:100])
                    else:
                        ran.append(statement)
                one_off = [st for st in ran if ONE_OFF.search(st.sql)]
                statements = [st for st in ran if not ONE_OFF.search(st.sql)]
                if not one_off:
                    break
                log(f"  {name}: captured again, the request also ran "
                    + "; ".join(" ".join(st.sql.split())[:80] for st in one_off))
            else:
                # Never steady: keep what it ran but the client library's type lookups.
                statements = [st for st in ran if "pg_catalog" not in st.sql]
                log(f"  {name}: kept the key lookup (no capture without one)")
            if not statements:
                fail(f"{name}: no statement captured")
            captured[name] = statements
            log(f"captured {name}: {len(statements)} statements, PostgreSQL bind "
                f"{sum(st.bind_ms for st in statements):.2f} ms + execute "
                f"{sum(st.execute_ms for st in statements):.2f} ms")
    finally:
        db.run("ALTER SYSTEM RESET log_min_duration_statement;\n"
               "ALTER SYSTEM RESET log_parameter_max_length;\n"
               "SELECT pg_reload_conf();\n")
        time.sleep(1)
    with open(f"{workdir}/captured.json", "w") as f:
        json.dump({name: [st.to_json() for st in statements]
                   for name, statements in captured.items()}, f, indent=2)
    return captured, matches


def logged_statements(text):
    """The executed statements in log order. Bind is where PostgreSQL plans a prepared
    statement that gets a custom plan; one that runs a cached generic plan binds in µs."""
    entries = []  # (pid, level, message)
    for line in text.splitlines():
        match = LINE_START.match(line)
        if match:
            entries.append([match.group(1), match.group(2), match.group(3)])
        elif entries:
            entries[-1][2] += "\n" + line
    statements = []  # [sql, parameters, bind ms, execute ms]
    pending = {}  # pid -> index into statements of its last execute
    bound = {}  # pid -> duration of its last bind
    for pid, level, message in entries:
        if level == "LOG":
            pending.pop(pid, None)
            match = EXECUTE.match(message)
            if match:
                statements.append([match.group(2), {}, bound.pop(pid, 0.0),
                                   float(match.group(1))])
                pending[pid] = len(statements) - 1
            match = BIND.match(message)
            if match:
                bound[pid] = float(match.group(1))
        elif level == "DETAIL" and message.lower().startswith("parameters: ") and pid in pending:
            statements[pending.pop(pid)][1] = dict(
                (int(n), v) for n, v in PARAMETER.findall(message[len("Parameters: "):]))
    return [Statement(*statement) for statement in statements]


def role_of(kind, sql):
    """What a captured statement is for; page, count and facet statements must use an index."""
    if not re.match(r"\s*(SELECT|WITH)\b", sql, re.I):
        return "session"  # BEGIN, SET LOCAL, COMMIT
    if re.search(r"\bFROM\s+api_keys\b", sql):
        return "key lookup"
    if not re.search(r"\bdata_entries\b", sql):
        return "projects" if re.search(r"\bFROM\s+projects\b", sql) else "other"
    if kind == "facet":
        return "facet"
    if re.match(r"\s*SELECT\s+count\(\*\)\s+FROM\s+data_entries\b", sql, re.I):
        return "count"
    return "page"


def plan_nodes(plan):
    yield plan
    for child in plan.get("Plans", []):
        yield from plan_nodes(child)


def plan_indexes(plan, table_of):
    """(indexes used, relations scanned sequentially, whether the plan is good: it reads an
    index of data_entries or metadata_values, never scans data_entries sequentially, and
    scans at most one partition of metadata_values sequentially).

    Each partition of metadata_values holds one declared path's facts, so reading one whole
    is reading that path's index (PostgreSQL does so when every row in it matches, as for
    `exists`); reading several would be reading the index of paths the query is not about."""
    used = {node["Index Name"] for node in plan_nodes(plan) if node["Node Type"] in INDEX_NODES}
    relations = {node["Relation Name"] for node in plan_nodes(plan)
                 if node["Node Type"] == "Seq Scan"}
    scanned = {table_of.get(relation, relation) for relation in relations}
    partitions = {relation for relation in relations
                  if table_of.get(relation) == "metadata_values" and relation != "metadata_values"}
    good = any(table_of.get(name) in INDEXED_TABLES for name in used) \
        and "data_entries" not in scanned \
        and "metadata_values" not in relations and len(partitions) <= 1
    return used, relations, good


def check_statements(db, kind, statements, matches, table_of, explain_analyze):
    """Runs each statement in psql (a count must give labcat's match count), and checks the
    plans of those that read entries.

    Two plans each: the one for the statement with literals (what pgbench runs), and the
    one PostgreSQL gives labcat's prepared statement in the steady state: the statement is
    PREPAREd with its placeholders and EXECUTEd five times, after which PostgreSQL's plan
    cache may switch to a generic plan, as it does for each of labcat's pooled connections.
    EXPLAIN ANALYZE (run twice in one session, the second kept: the first pays for a cold
    catalog cache) says how many rows each scan of the literal plan read."""
    indexes, seq_scans, roles, scans, labcat_plans = set(), set(), [], [], []
    labcat_indexes, labcat_seq_scans = set(), set()
    plan_ok = labcat_plan_ok = True
    planning_ms = execution_ms = 0.0
    widest = [0, ""]  # the most entries (rows of data_entries) one scan read
    for position, statement in enumerate(statements):
        sql = statement.sql
        role = role_of(kind, sql)
        roles.append(role)
        if role == "session":
            ok, out = db.try_rows(sql)
            if not ok:
                fail(f"{kind}: the captured statement does not run in psql: {out.strip()}\n{sql}")
            continue
        # In the session state the request gave it (labcat's SET LOCALs), rolled back.
        settings = "".join(f"{earlier.sql};\n" for earlier in statements[:position]
                           if re.match(r"\s*SET\b", earlier.sql, re.I))

        def in_context(text):
            return f"BEGIN;\n{settings}{text};\nROLLBACK;\n"

        try:
            out = db.text(in_context(sql), script=True)
        except subprocess.CalledProcessError as error:
            fail(f"{kind}: the captured statement does not run in psql: {error.stderr}\n{sql}")
        if role == "count" and out.strip() != str(matches):
            fail(f"{kind}: the captured count gives {out.strip()}, labcat said {matches}")
        analyzed = db.text(in_context(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql};\n"
                                      f"\\echo ====\n"
                                      f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}"),
                           script=True)
        top = json.loads(analyzed.split("====")[1])[0]
        planning_ms += top["Planning Time"]
        execution_ms += top["Execution Time"]
        if explain_analyze:
            log(f"--- {kind} ({role}):\n{sql}\n"
                + db.text(in_context(f"EXPLAIN (ANALYZE, BUFFERS) {sql}"), script=True))
        if role in ("key lookup", "projects", "other"):
            continue
        plan = json.loads(db.text(in_context(f"EXPLAIN (FORMAT JSON) {sql}"),
                                  script=True))[0]["Plan"]
        used, scanned, good = plan_indexes(plan, table_of)
        indexes |= used
        seq_scans |= scanned
        if not good:
            plan_ok = False
            log(f"{kind}: the {role} statement's plan reads no index of "
                f"{'/'.join(INDEXED_TABLES)} or scans too much (indexes {sorted(used)}, "
                f"seq scans {sorted(scanned)}):\n"
                + db.text(in_context(f"EXPLAIN {sql}"), script=True))
        for node in plan_nodes(top["Plan"]):
            if node["Node Type"] in INDEX_NODES + ("Seq Scan",):
                target = node.get("Index Name") or node.get("Relation Name")
                read = (node["Actual Rows"] + node.get("Rows Removed by Filter", 0)) \
                    * node["Actual Loops"]
                scans.append(f"{role}: {node['Node Type']} {target} {read:,.0f} rows"
                             + (f" ({node['Actual Loops']:,} loops)"
                                if node["Actual Loops"] > 1 else ""))
                if table_of.get(target) == "data_entries" \
                        and read > widest[0]:
                    widest[:] = [read, f"{target} {read:,.0f}"]
        # The plan labcat's prepared statement settles on.
        execute = f"EXECUTE labcat_statement({statement.arguments()})" \
            if statement.params else "EXECUTE labcat_statement"
        try:
            out = db.text(in_context(
                f"PREPARE labcat_statement AS {statement.raw};\n\\o /dev/null\n"
                + f"{execute};\n" * 5 + "\\o\n\\echo ====\n"
                f"EXPLAIN (FORMAT JSON) {execute};\n\\echo ====\n"
                "SELECT generic_plans FROM pg_prepared_statements "
                "WHERE name = 'labcat_statement'"), script=True)
        except subprocess.CalledProcessError as error:
            labcat_plans.append(f"{role}: not reproduced ({error.stderr.strip()[:120]})")
            continue
        _, explained, generic = out.split("====")
        used, scanned, good = plan_indexes(json.loads(explained)[0]["Plan"], table_of)
        labcat_indexes |= used
        labcat_seq_scans |= scanned
        generic = int(generic) > 0
        labcat_plans.append(f"{role}: {'generic' if generic else 'custom'}")
        if not good:
            labcat_plan_ok = False
            log(f"{kind}: the {role} statement's {'generic' if generic else 'custom'} plan "
                f"as labcat runs it reads no index of {'/'.join(INDEXED_TABLES)} or scans too much "
                f"(indexes {sorted(used)}, seq scans {sorted(scanned)})")
    if "page" not in roles and "facet" not in roles:
        plan_ok = False
        log(f"{kind}: no page or facet statement among the captured ones: {roles}")
    return dict(roles=roles, indexes=sorted(indexes), seq_scans=sorted(seq_scans),
                plan_ok=plan_ok, scans=scans, widest_scan=widest[1],
                labcat_plans=labcat_plans, labcat_indexes=sorted(labcat_indexes),
                labcat_seq_scans=sorted(labcat_seq_scans), labcat_plan_ok=labcat_plan_ok,
                psql_planning_ms=planning_ms, psql_execution_ms=execution_ms)


def write_scripts(workdir, kind, statements):
    """{mode: (script, extra pgbench arguments)}: the literal statements, and the same
    statements with pgbench variables bound as labcat binds its parameters."""
    literal, bound = f"{workdir}/{kind}.sql", f"{workdir}/{kind}.bound.sql"
    defines = []
    with open(literal, "w") as f:
        for statement in statements:
            f.write(statement.sql.rstrip().rstrip(";") + ";\n")
    with open(bound, "w") as f:
        for i, statement in enumerate(statements):
            text, values = statement.bound()
            # Each statement's parameters get names of their own: s<i>p<n>.
            for name, value in values.items():
                text = re.sub(rf":{name}(?![A-Za-z0-9_])", f":s{i}{name}", text)
                defines += ["-D", f"s{i}{name}={value}"]
            f.write(text.rstrip().rstrip(";") + ";\n")
    return {"simple": (literal, []), "prepared": (literal, []), "bound": (bound, defines)}


# --- measuring ---------------------------------------------------------------------------

def warm_up(client, route, params, count):
    """Untimed requests: `count`, or fewer (at least 2) once 5 s are spent. Their latencies."""
    warm, spent = [], 0.0
    while len(warm) < count and (len(warm) < 2 or spent < 5):
        elapsed, _ = client.get(route, params)
        warm.append(elapsed)
        spent += elapsed / 1000
    return warm


def measure(db, workdir, client, result, args):
    """Alternates labcat and pgbench (both modes), args.rounds times; medians over all
    timed requests and transactions."""
    labcat, matches = [], set()
    postgres = {mode: [] for mode in PGBENCH_MODES}
    server = [0, 0.0]  # requests, seconds inside labcat (its request-duration histogram)
    for round_ in range(args.rounds):
        warm = warm_up(client, result["route"], result["params"], args.warmup)
        if round_ == 0:
            # As many timed requests as fit the budget, at most --requests over all rounds.
            typical = statistics.median(warm) / 1000
            per_round = max(5, min(args.requests // args.rounds,
                                   int(args.budget / args.rounds / typical)))
            warmup = len(warm)
        before = client.server_time(result["route"])
        for i in range(per_round):
            elapsed, count = client.get(result["route"], result["params"])
            matches.add(count)
            labcat.append(elapsed)
        after = client.server_time(result["route"])
        server[0] += after[0] - before[0]
        server[1] += after[1] - before[1]
        for mode in PGBENCH_MODES:
            postgres[mode] += pgbench(workdir, result, mode, warmup, per_round, round_)
    if len(matches) != 1:
        fail(f"{result['kind']}: the match count changed between requests: {matches}")
    result["matches"] = matches.pop()
    result["timed"] = len(labcat)
    result["labcat_ms"] = statistics.median(labcat)
    result["labcat_p90_ms"] = statistics.quantiles(labcat, n=10)[-1]
    result["labcat_mean_ms"] = statistics.mean(labcat)
    if server[0] != len(labcat):
        fail(f"{result['kind']}: labcat's histogram counted {server[0]} requests, "
             f"{len(labcat)} were sent")
    result["labcat_server_mean_ms"] = server[1] * 1000 / server[0]
    result["pgbench_ms"] = statistics.median(postgres["simple"])
    result["pgbench_cached_ms"] = statistics.median(postgres["prepared"])
    result["pgbench_bound_ms"] = statistics.median(postgres["bound"])
    result["ratio"] = result["labcat_ms"] / result["pgbench_ms"]
    result["ratio_cached"] = result["labcat_ms"] / result["pgbench_cached_ms"]
    result["ratio_bound"] = result["labcat_ms"] / result["pgbench_bound_ms"]
    log(f"{result['kind']}: labcat {result['labcat_ms']:.2f} ms (mean "
        f"{result['labcat_mean_ms']:.2f}, of which inside labcat "
        f"{result['labcat_server_mean_ms']:.2f}); pgbench literal {result['pgbench_ms']:.2f} "
        f"ms (ratio {result['ratio']:.2f}), plan cached {result['pgbench_cached_ms']:.2f}, "
        f"bound as labcat binds {result['pgbench_bound_ms']:.2f} (ratio "
        f"{result['ratio_bound']:.2f}); {result['matches']} matches")


# pgbench runs the statements three ways:
#   simple   — with literals, parsed and planned on every run: "the same SQL run directly",
#              the ratio's baseline;
#   prepared — with literals, planned once (a plan no client whose values change can keep);
#   bound    — with pgbench variables, -M prepared: parameters bound as labcat binds them,
#              so PostgreSQL's plan cache switches to a generic plan after five runs exactly
#              when it does for labcat's pooled statements.
PGBENCH_MODES = ("simple", "prepared", "bound")


def pgbench(workdir, result, mode, warmup, timed, round_):
    log_prefix = f"{workdir}/pgbench_{result['kind']}_{mode}_{round_}"
    script, defines = result["scripts"][mode]
    done = subprocess.run(
        [pg_binary("pgbench"), "-n", "-M", "prepared" if mode == "bound" else mode, "-c", "1",
         "-t", str(warmup + timed), "-f", script, *defines, "-l", "--log-prefix", log_prefix,
         "-h", f"{workdir}/pg/run", "-p", "5432", "-U", "postgres", "labcat"],
        capture_output=True, text=True,
    )
    if done.returncode != 0:
        fail(f"pgbench {result['kind']} -M {mode}: {done.stderr.strip()}")
    latencies = []
    for path in sorted(glob.glob(log_prefix + ".*")):
        with open(path) as f:
            latencies += [int(line.split()[2]) / 1000 for line in f]
        os.remove(path)
    if len(latencies) != warmup + timed:
        fail(f"pgbench {result['kind']}: {len(latencies)} transactions logged")
    return latencies[warmup:]


def report(results, args, commit, seed_seconds, floor):
    summary = {
        "date": time.strftime("%Y-%m-%d"),
        "commit": commit,
        "rows": args.rows,
        "rounds": args.rounds,
        "seed_seconds": seed_seconds,
        "healthz_median_ms": round(floor, 3),
        # Other work on the machine skews both sides (their alternation only evens it out).
        "load_average_1min_at_end": round(os.getloadavg()[0], 2),
        "queries": [{
            "kind": r["kind"],
            "request": r["request"],
            "matches": r["matches"],
            "timed_requests": r["timed"],
            "labcat_median_ms": round(r["labcat_ms"], 3),
            "labcat_p90_ms": round(r["labcat_p90_ms"], 3),
            "labcat_mean_ms": round(r["labcat_mean_ms"], 3),
            "labcat_server_mean_ms": round(r["labcat_server_mean_ms"], 3),
            "pgbench_median_ms": round(r["pgbench_ms"], 3),
            "pgbench_plan_cached_median_ms": round(r["pgbench_cached_ms"], 3),
            "pgbench_bound_median_ms": round(r["pgbench_bound_ms"], 3),
            "ratio": round(r["ratio"], 2),
            "ratio_vs_plan_cached": round(r["ratio_cached"], 2),
            "ratio_vs_bound": round(r["ratio_bound"], 2),
            "statements": r["roles"],
            "captured_bind_ms": round(r["captured_bind_ms"], 3),
            "captured_execute_ms": round(r["captured_execute_ms"], 3),
            "psql_planning_ms": round(r["psql_planning_ms"], 3),
            "psql_execution_ms": round(r["psql_execution_ms"], 3),
            "indexes": r["indexes"],
            "seq_scans": r["seq_scans"],
            "scans": r["scans"],
            "widest_scan_of_data_entries": r["widest_scan"],
            "plan_uses_index": r["plan_ok"],
            "labcat_plans": r["labcat_plans"],
            "labcat_plan_indexes": r["labcat_indexes"],
            "labcat_plan_seq_scans": r["labcat_seq_scans"],
            "labcat_plan_uses_index": r["labcat_plan_ok"],
        } for r in results],
    }
    print(json.dumps(summary, indent=2))
    print()
    print("| query | matches | requests | labcat ms | SQL ms | ratio | SQL ms bound | ratio "
          "| labcat's plans | indexes (literal plan) | most entries one scan read |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|---|---|")
    for r in results:
        plans = ", ".join(p for p in r["labcat_plans"])
        print(f"| {r['kind']} | {r['matches']:,} | {r['timed']} | {r['labcat_ms']:.1f} | "
              f"{r['pgbench_ms']:.1f} | {r['ratio']:.2f} | {r['pgbench_bound_ms']:.1f} | "
              f"{r['ratio_bound']:.2f} | {plans} | {', '.join(r['indexes']) or 'none'} | "
              f"{r['widest_scan']} |")


if __name__ == "__main__":
    main()
