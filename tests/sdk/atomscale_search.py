"""Checks labcat's search against the real Atomscale Python SDK (PyPI `atomscale`).

Run by tests/sdk/run_atomscale.sh, which starts `labcat serve` on a throwaway embedded
database and passes, in the environment:

    LABCAT_URL   base URL, e.g. http://127.0.0.1:18080/
    ALICE_KEY    a read,write key of user alice
    BOB_KEY      a read,write key of user bob
    ADMIN_KEY    the admin key `labcat serve` printed on its first start (optional)

The script first creates data entries for alice and bob over plain HTTP (requests, not
the SDK: the SDK has no create call), then drives `atomscale.Client.search()` and compares
the "Data ID" column of the DataFrame it returns with the ids it created. It prints one
line per check and ends with "atomscale: N passed, N failed"; the exit status is 0 only
when every check passed.
"""

import os
import sys
import traceback
from datetime import datetime, timedelta, timezone
from importlib.metadata import version

import requests
from atomscale import Client
from atomscale.core.client import ClientError

URL = os.environ["LABCAT_URL"]
if not URL.endswith("/"):
    URL += "/"
ALICE_KEY = os.environ["ALICE_KEY"]
BOB_KEY = os.environ["BOB_KEY"]
ADMIN_KEY = os.environ.get("ADMIN_KEY", "")

# (raw_name, char_source_type, pipeline_status or None for the server's default)
ALICE_ENTRIES = [
    ("GaN_buffer_growth_01.mp4", "rheed_video", "success"),
    ("GaN_survey_scan.vms", "xps", "success"),
    ("AlN_core_levels.vms", "xps", "error"),
    ("chamber_pressure_log.csv", "metrology", None),  # defaults to pending
    ("GaN_surface_5um.spm", "afm", "running"),
    ("GaN_raman_map.txt", "raman", "success"),
]
# Bob's entries are chosen so that every one of them would match one of alice's queries
# if the service leaked entries between users.
BOB_ENTRIES = [
    ("GaN_survey_scan_bob.vms", "xps", "success"),
    ("bob_chamber_log.csv", "metrology", "pending"),
    ("GaN_bob_growth.mp4", "rheed_video", "success"),
    ("bob_aln_afm.spm", "afm", "running"),
]


def create_entries(key, entries, owner):
    """POST each entry; returns {data_id: (raw_name, type, status)} as the server stored it."""
    created = {}
    for index, (raw_name, char_source_type, status) in enumerate(entries):
        body = {
            "raw_name": raw_name,
            "char_source_type": char_source_type,
            "raw_size_gb": 0.25 * (index + 1),
            "metadata": {"owner": owner, "index": index},
        }
        if status is not None:
            body["pipeline_status"] = status
        response = requests.post(
            URL + "data_entries", json=body, headers={"X-API-KEY": key}, timeout=30
        )
        if response.status_code != 201:
            raise AssertionError(
                f"POST /data_entries {body} -> {response.status_code}: {response.text}"
            )
        entry = response.json()
        expected_status = status or "pending"
        assert entry["raw_name"] == raw_name, entry
        assert entry["char_source_type"] == char_source_type, entry
        assert entry["pipeline_status"] == expected_status, entry
        assert entry["user_id"] == owner, entry
        created[entry["data_id"]] = (raw_name, char_source_type, expected_status)
    return created


def client(key):
    return Client(api_key=key, endpoint=URL, mute_bars=True)


def ids_of(frame):
    """The "Data ID" column as a set, checking it has no duplicate rows."""
    if len(frame) == 0:
        return set()
    assert "Data ID" in frame.columns, f"no 'Data ID' column in {list(frame.columns)}"
    ids = list(frame["Data ID"])
    assert len(ids) == len(set(ids)), f"duplicate rows: {ids}"
    return set(ids)


def select(entries, name_contains=None, char_source_type=None, status=None):
    return {
        data_id
        for data_id, (raw_name, kind, state) in entries.items()
        if (name_contains is None or name_contains.lower() in raw_name.lower())
        and (char_source_type is None or kind == char_source_type)
        and (status is None or state == status)
    }


def describe(ids, entries):
    return sorted(entries.get(i, ("<not created here: " + i + ">",))[0] for i in ids)


def expect_ids(frame, expected, everything):
    got = ids_of(frame)
    if got != expected:
        raise AssertionError(
            f"expected {describe(expected, everything)}, got {describe(got, everything)}"
            f" (missing {describe(expected - got, everything)},"
            f" unexpected {describe(got - expected, everything)})"
        )


def main():
    print(f"atomscale {version('atomscale')} against {URL}", flush=True)
    started = datetime.now(timezone.utc) - timedelta(seconds=5)
    alice = create_entries(ALICE_KEY, ALICE_ENTRIES, "alice")
    bob = create_entries(BOB_KEY, BOB_ENTRIES, "bob")
    everything = {**alice, **bob}
    print(f"created {len(alice)} entries for alice and {len(bob)} for bob", flush=True)

    alice_client = client(ALICE_KEY)
    bob_client = client(BOB_KEY)
    checks = []

    def check(name):
        def register(function):
            checks.append((name, function))
            return function

        return register

    @check("search() returns exactly alice's entries, none of bob's")
    def _():
        expect_ids(alice_client.search(), set(alice), everything)

    @check("search() as bob returns exactly bob's entries")
    def _():
        expect_ids(bob_client.search(), set(bob), everything)

    @check("the DataFrame has the SDK's columns with the stored values")
    def _():
        frame = alice_client.search()
        for column in ["Data ID", "File Name", "Type", "Status", "Upload Datetime", "Last Updated"]:
            assert column in frame.columns, f"no {column!r} in {list(frame.columns)}"
        for _, row in frame.iterrows():
            raw_name, kind, state = alice[row["Data ID"]]
            assert (row["File Name"], row["Type"], row["Status"]) == (raw_name, kind, state), (
                dict(row)
            )
        # Fields the SDK does not know pass through as extra columns.
        assert "raw_size_gb" in frame.columns, list(frame.columns)
        # user_id is dropped by the SDK.
        assert "user_id" not in frame.columns, list(frame.columns)

    @check("search(keywords='GaN', data_type='xps', status='success') is the one match")
    def _():
        expected = select(alice, "GaN", "xps", "success")
        assert len(expected) == 1
        frame = alice_client.search(keywords="GaN", data_type="xps", status="success")
        expect_ids(frame, expected, everything)

    @check("search(keywords='GaN') matches the names containing GaN")
    def _():
        expected = select(alice, "GaN")
        assert len(expected) == 4
        expect_ids(alice_client.search(keywords="GaN"), expected, everything)

    @check("search(data_type='xps') filters by type only")
    def _():
        expected = select(alice, char_source_type="xps")
        assert len(expected) == 2
        expect_ids(alice_client.search(data_type="xps"), expected, everything)

    @check("search(status='success') filters by status only")
    def _():
        expected = select(alice, status="success")
        assert len(expected) == 3
        expect_ids(alice_client.search(status="success"), expected, everything)

    @check("search(data_type='rheed_video', status='success')")
    def _():
        expected = select(alice, char_source_type="rheed_video", status="success")
        assert len(expected) == 1
        frame = alice_client.search(data_type="rheed_video", status="success")
        expect_ids(frame, expected, everything)

    @check("search(data_type='metrology') is sent as tool_state and finds metrology")
    def _():
        sent = []
        alice_client.session.hooks["response"].append(
            lambda response, *args, **kwargs: sent.append(response.request.url)
        )
        try:
            frame = alice_client.search(data_type="metrology")
        finally:
            alice_client.session.hooks["response"].pop()
        assert any("data_type=tool_state" in url for url in sent), sent
        expected = select(alice, char_source_type="metrology")
        assert len(expected) == 1
        expect_ids(frame, expected, everything)
        [row] = [r for _, r in frame.iterrows()]
        assert row["Type"] == "metrology" and row["Status"] == "pending", dict(row)

    @check("search(data_type='afm', status='success') is an empty DataFrame")
    def _():
        frame = alice_client.search(data_type="afm", status="success")
        assert len(frame) == 0, frame

    @check("search(data_ids=[alice's, bob's]) returns only alice's")
    def _():
        mine = sorted(alice)[:2]
        theirs = sorted(bob)[:1]
        frame = alice_client.search(data_ids=mine + theirs)
        expect_ids(frame, set(mine), everything)

    @check("search(upload_datetime=…) ranges (sent as 'YYYY-MM-DD HH:MM:SS+00:00')")
    def _():
        frame = alice_client.search(upload_datetime=(started, None))
        expect_ids(frame, set(alice), everything)
        frame = alice_client.search(upload_datetime=(None, started))
        assert len(frame) == 0, frame

    @check("the admin key sees none of alice's or bob's entries")
    def _():
        if not ADMIN_KEY:
            raise AssertionError("ADMIN_KEY was not given")
        assert ids_of(client(ADMIN_KEY).search()) & set(everything) == set()

    @check("an unknown key gets ClientError 401")
    def _():
        try:
            client("lc_" + "x" * 40).search()
        except ClientError as error:
            assert error.status_code == 401, error
        else:
            raise AssertionError("search() with an unknown key did not raise")

    # Sharing comes last: until here, alice and bob see only their own entries.
    shared = {}

    @check("list_projects() lists alice's projects, a new shared one included")
    def _():
        response = requests.post(
            URL + "projects",
            json={"name": "Shared GaN growth"},
            headers={"X-API-KEY": ALICE_KEY},
            timeout=30,
        )
        assert response.status_code == 201, response.text
        shared["project"] = response.json()["id"]
        projects = alice_client.list_projects()
        names = set(projects["Project Name"])
        assert {"Personal", "Shared GaN growth"} <= names, names
        assert shared["project"] in set(projects["Project ID"]), projects
        assert len(bob_client.list_projects()) == 1  # bob's personal project only

    @check("an entry bob adds to a project shared with him is found by alice's search() and get()")
    def _():
        project = shared["project"]
        response = requests.put(
            f"{URL}projects/{project}/members/bob",
            json={"role": "editor"},
            headers={"X-API-KEY": ALICE_KEY},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        response = requests.post(
            URL + "data_entries",
            json={"raw_name": "GaN_shared_scan.vms", "char_source_type": "xps",
                  "pipeline_status": "success", "project_id": project},
            headers={"X-API-KEY": BOB_KEY},
            timeout=30,
        )
        assert response.status_code == 201, response.text
        data_id = response.json()["data_id"]
        found = ids_of(alice_client.search(keywords="shared"))
        assert found == {data_id}, found
        results = alice_client.get([data_id])
        assert [r.data_id for r in results] == [data_id], results
        assert data_id in ids_of(bob_client.search())

    passed = failed = 0
    for name, function in checks:
        try:
            function()
        except Exception:  # report every check, not just the first failure
            failed += 1
            print(f"FAIL {name}", flush=True)
            traceback.print_exc(file=sys.stdout)
        else:
            passed += 1
            print(f"ok   {name}", flush=True)
    print(f"atomscale: {passed} passed, {failed} failed", flush=True)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
