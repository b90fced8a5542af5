"""Checks labcat's /v2 surface against the real Seven Bridges Python client (PyPI
`sevenbridges-python`).

Run by tests/sdk/run_sevenbridges.sh, which starts `labcat serve` on a throwaway embedded
database and passes, in the environment:

    LABCAT_URL   base URL, e.g. http://127.0.0.1:18081/
    ALICE_KEY    a read,write key of user alice
    BOB_KEY      a read,write key of user bob

The script creates data entries over labcat's native API (plain HTTP: the client has no
call that registers a file's metadata without uploading it), then drives
`sevenbridges.Api(url=<labcat>/v2, token=<key>)` the way a partner integration would, and
checks every value that comes back, also by reading the entries over the native API. It
prints one line per check and ends with "sevenbridges: N passed, N failed"; the exit status
is 0 only when every check passed.
"""

import os
import sys
import traceback
import uuid
from datetime import datetime
from importlib.metadata import version

import requests
import sevenbridges as sbg
from sevenbridges.errors import Forbidden, NotFound, PaginationError, Unauthorized

URL = os.environ["LABCAT_URL"].rstrip("/")
V2 = URL + "/v2"
ALICE_KEY = os.environ["ALICE_KEY"]
BOB_KEY = os.environ["BOB_KEY"]

# (raw_name, raw_size_gb, metadata); the sample_id values drive the query checks.
ALICE_FILES = [
    ("a.fastq", 0.5, {"sample_id": "S1", "library": "L1"}),
    ("b.fastq", 1.25, {"sample_id": "S1", "library": "L2"}),
    ("c.fastq", 2.0, {"sample_id": "S2", "library": "L1"}),
    ("d.fastq", 0.001, {"sample_id": "S1"}),
    ("e.fastq", None, {"sample_id": "S3"}),
]
# Bob's file would match alice's queries if files leaked between users.
BOB_FILES = [("bob.fastq", 1.0, {"sample_id": "S1", "library": "L1"})]


def create(key, files):
    """POSTs each entry natively; returns [data_id] in the order given."""
    ids = []
    for raw_name, size, metadata in files:
        body = {"raw_name": raw_name, "char_source_type": "xps", "metadata": metadata}
        if size is not None:
            body["raw_size_gb"] = size
        response = requests.post(
            URL + "/data_entries", json=body, headers={"X-API-KEY": key}, timeout=30
        )
        if response.status_code != 201:
            raise AssertionError(f"POST /data_entries -> {response.status_code}: {response.text}")
        ids.append(response.json()["data_id"])
    return ids


def native(key, data_id):
    """The entry as labcat's native API shows it."""
    response = requests.get(
        f"{URL}/data_entries/{data_id}", headers={"X-API-KEY": key}, timeout=30
    )
    assert response.status_code == 200, (response.status_code, response.text)
    return response.json()


def expect_raises(exception, function):
    try:
        function()
    except exception as error:
        return error
    raise AssertionError(f"expected {exception.__name__}, nothing was raised")


def main():
    print(f"sevenbridges-python {version('sevenbridges-python')} against {V2}", flush=True)
    alice_ids = create(ALICE_KEY, ALICE_FILES)
    bob_ids = create(BOB_KEY, BOB_FILES)
    a, b, c, d, e = alice_ids
    print(f"created {len(alice_ids)} entries for alice and {len(bob_ids)} for bob", flush=True)

    # debug=True: the client refuses plain http:// otherwise.
    api = sbg.Api(url=V2, token=ALICE_KEY, debug=True)
    checks = []

    def check(name):
        def register(function):
            checks.append((name, function))
            return function

        return register

    @check("files.get(id) maps the entry: id, name, integer size, project, metadata, times")
    def _():
        f = api.files.get(a)
        assert f.id == a, f.id
        assert f.name == "a.fastq", f.name
        assert f.size == 500_000_000 and isinstance(f.size, int), f.size
        # Entries made without a project are in their owner's personal project.
        assert f.project == "alice/personal", f.project
        assert f.type == "file" and not f.is_folder(), f.type
        assert dict(f.metadata) == {"sample_id": "S1", "library": "L1"}, f.metadata
        assert f.tags == [], f.tags
        assert f.href == f"{V2}/files/{a}", f.href
        assert isinstance(f.created_on, datetime), f.created_on
        assert isinstance(f.modified_on, datetime), f.modified_on
        entry = native(ALICE_KEY, a)
        assert f.created_on.strftime("%Y-%m-%dT%H:%M:%S") == entry["upload_datetime"][:19]
        assert api.files.get(e).size is None, "an unknown size stays unknown"

    @check("metadata['foo'] = 'bar'; save() patches one key and keeps the others")
    def _():
        f = api.files.get(a)
        f.metadata["foo"] = "bar"
        f.save()
        expected = {"sample_id": "S1", "library": "L1", "foo": "bar"}
        assert dict(f.metadata) == expected, f.metadata  # save() reloads through href
        assert dict(api.files.get(a).metadata) == expected
        assert native(ALICE_KEY, a)["metadata"] == expected

    @check("metadata = {...}; save() replaces the whole metadata")
    def _():
        f = api.files.get(b)
        f.metadata = {"sample_id": "S9", "platform": "illumina"}
        f.save()
        expected = {"sample_id": "S9", "platform": "illumina"}
        assert dict(f.metadata) == expected, f.metadata
        assert native(ALICE_KEY, b)["metadata"] == expected

    @check("metadata['platform'] = None; save() deletes the key")
    def _():
        f = api.files.get(b)
        f.metadata["platform"] = None
        f.save()
        assert dict(api.files.get(b).metadata) == {"sample_id": "S9"}
        assert native(ALICE_KEY, b)["metadata"] == {"sample_id": "S9"}

    @check("setting a key to its current value sends PATCH {} and changes nothing")
    def _():
        revision = native(ALICE_KEY, d)["revision"]
        f = api.files.get(d)
        f.metadata["sample_id"] = "S1"
        f.save()
        assert dict(f.metadata) == {"sample_id": "S1"}, f.metadata
        assert native(ALICE_KEY, d)["revision"] == revision

    @check("files.query(metadata=…, limit=1): total, next_page(), previous_page(), all()")
    def _():
        expected = {a, d}  # b was moved to S9 above; c is S2; e is S3; bob's is not alice's
        page = api.files.query(project="alice", metadata={"sample_id": "S1"}, limit=1)
        assert page.total == 2, page.total
        first = [f.id for f in page]
        assert len(first) == 1, first
        second_page = page.next_page()
        second = [f.id for f in second_page]
        assert len(second) == 1 and set(first + second) == expected, (first, second)
        expect_raises(PaginationError, second_page.next_page)
        assert [f.id for f in second_page.previous_page()] == first
        everything = [f.id for f in page.all()]
        assert sorted(everything) == sorted(expected), everything
        for f in api.files.query(project="alice", metadata={"sample_id": "S1"}).all():
            assert f.metadata["sample_id"] == "S1", f.metadata  # items are full files

    @check("files.query: a repeated metadata key is OR, different keys are AND")
    def _():
        page = api.files.query(project="alice", metadata={"sample_id": ["S2", "S3"]})
        assert sorted(f.id for f in page.all()) == sorted([c, e])
        page = api.files.query(project="alice", metadata={"sample_id": "S2", "library": "L1"})
        assert [f.id for f in page.all()] == [c]
        page = api.files.query(project="alice", metadata={"sample_id": "S2", "library": "L2"})
        assert page.total == 0 and list(page) == []

    @check("files.query(project=<someone else's>) is NotFound")
    def _():
        expect_raises(NotFound, lambda: api.files.query(project="bob"))

    @check("bulk_get([id, id, missing, bob's]) answers per item, in order")
    def _():
        missing = str(uuid.uuid4())
        records = api.files.bulk_get([a, c, missing, bob_ids[0]])
        assert [r.valid for r in records] == [True, True, False, False], records
        assert [r.resource.id for r in records[:2]] == [a, c]
        assert records[1].resource.name == "c.fastq"
        for record in records[2:]:
            assert record.error.status == 404, record.error
            assert record.error.code == 5002, record.error

    @check("bulk_edit(files) merges each file's metadata")
    def _():
        files = list(api.files.query(project="alice", metadata={"sample_id": "S1"}).all())
        for f in files:
            f.metadata["batch"] = "7"
        records = api.files.bulk_edit(files)
        assert all(r.valid for r in records), [r.error for r in records]
        assert [r.resource.id for r in records] == [f.id for f in files]
        for record in records:
            assert record.resource.metadata["batch"] == "7", record.resource.metadata
        assert native(ALICE_KEY, a)["metadata"] == {
            "sample_id": "S1",
            "library": "L1",
            "foo": "bar",
            "batch": "7",
        }
        assert native(ALICE_KEY, d)["metadata"] == {"sample_id": "S1", "batch": "7"}

    @check("bulk_update(files) replaces name, tags and metadata")
    def _():
        f = api.files.get(e)
        f.metadata = {"sample_id": "S3", "stage": "raw"}
        f.name = "e-final.fastq"
        records = api.files.bulk_update([f])
        assert records[0].valid, records[0].error
        entry = native(ALICE_KEY, e)
        assert entry["raw_name"] == "e-final.fastq", entry
        assert entry["metadata"] == {"sample_id": "S3", "stage": "raw"}, entry

    @check("tags: assign and append, save(), then query by tag")
    def _():
        f = api.files.get(c)
        f.tags = ["qc-passed"]
        f.save()
        f.tags.append("paper-1")
        f.save()
        assert api.files.get(c).tags == ["qc-passed", "paper-1"]
        assert [x.id for x in api.files.query(project="alice", tags=["paper-1"])] == [c]

    @check("name = ...; save() renames the file (the entry's raw_name)")
    def _():
        f = api.files.get(d)
        f.name = "d-renamed.fastq"
        f.save()
        assert f.name == "d-renamed.fastq"
        assert api.files.get(d).name == "d-renamed.fastq"
        assert native(ALICE_KEY, d)["raw_name"] == "d-renamed.fastq"
        assert [x.id for x in api.files.query(project="alice", names=["d-renamed.fastq"])] == [d]

    @check("a wrong token raises Unauthorized (401, code 90001)")
    def _():
        wrong = sbg.Api(url=V2, token="lc_" + "x" * 40, debug=True)
        error = expect_raises(Unauthorized, lambda: wrong.files.get(a))
        assert error.status == 401 and error.code == 90001, (error.status, error.code)

    @check("a missing file raises NotFound (404, code 5002), also for a non-UUID id")
    def _():
        for missing in [str(uuid.uuid4()), "5f0c0e0e0e0e0e0e0e0e0e01", bob_ids[0]]:
            error = expect_raises(NotFound, lambda: api.files.get(missing))
            assert error.status == 404 and error.code == 5002, (error.status, error.code)
            assert missing in error.message, error.message

    @check("rate limit: api.limit/remaining/reset_time and X-Request-Id come from headers")
    def _():
        assert api.limit > 0 and 0 <= api.remaining <= api.limit, (api.limit, api.remaining)
        assert isinstance(api.reset_time, datetime), api.reset_time
        assert api.request_id, "no X-Request-Id"
        assert api.rate_limit.get().rate.limit == api.limit

    @check("users.me() is the key's user")
    def _():
        assert api.users.me().username == "alice"

    @check("projects.query() and projects.get(id) show the personal project as owner/slug")
    def _():
        ids = [p.id for p in api.projects.query()]
        assert "alice/personal" in ids, ids
        personal = api.projects.get("alice/personal")
        assert personal.created_by == "alice" and personal.type == "v2", personal
        assert isinstance(personal.created_on, datetime), personal.created_on
        assert personal.billing_group is not None and personal.tags == []
        expect_raises(NotFound, lambda: api.projects.get("bob/personal"))

    @check("projects: create, rename with save(), members, files shared with bob by role")
    def _():
        project = api.projects.create(name="Shared Run")
        assert project.id == "alice/shared-run", project.id
        project.name = "Shared Run (renamed)"
        project.description = "growth runs"
        project.save()
        again = api.projects.get(project.id)
        assert (again.id, again.name, again.description) == (
            "alice/shared-run", "Shared Run (renamed)", "growth runs"), again
        assert [q.id for q in api.projects.query(name="Shared Run (renamed)")] == [project.id]

        # A file of the shared project (made natively, by its project's native id).
        listing = requests.get(URL + "/projects", headers={"X-API-KEY": ALICE_KEY}, timeout=30)
        native_id = next(p["project_id"] for p in listing.json() if p["slug"] == "shared-run")
        response = requests.post(
            URL + "/data_entries",
            json={"raw_name": "shared.fastq", "char_source_type": "xps",
                  "project_id": native_id},
            headers={"X-API-KEY": ALICE_KEY}, timeout=30,
        )
        assert response.status_code == 201, response.text
        shared = response.json()["data_id"]
        for which in (project, project.id):
            files = list(api.files.query(project=which))
            assert [f.id for f in files] == [shared], files
            assert files[0].project == project.id, files[0].project

        assert [m.username for m in project.get_members()] == ["alice"]
        member = project.add_member(user="bob", permissions={"write": True, "copy": True})
        assert member.username == "bob" and member.permissions["write"] is True, member
        assert member.permissions["admin"] is False
        assert sorted(m.username for m in project.get_members()) == ["alice", "bob"]

        bob = sbg.Api(url=V2, token=BOB_KEY, debug=True)
        assert project.id in [p.id for p in bob.projects.query()]
        mine = bob.files.get(shared)
        assert mine.project == project.id, mine.project
        mine.name = "shared-by-bob.fastq"
        mine.save()
        assert api.files.get(shared).name == "shared-by-bob.fastq"

        # Demoted to read (the client PATCHes <member.href>/permissions).
        member.permissions["write"] = False
        member.save()
        assert project.get_member("bob").permissions["write"] is False
        mine = bob.files.get(shared)
        mine.name = "not-allowed.fastq"
        error = expect_raises(Forbidden, mine.save)
        assert error.code == 3001, error.code

        project.remove_member("bob")
        assert [m.username for m in project.get_members()] == ["alice"]
        expect_raises(NotFound, lambda: bob.files.get(shared))
        expect_raises(NotFound, lambda: bob.projects.get(project.id))
        expect_raises(NotFound, lambda: bob.files.query(project=project.id))

        project.delete()
        expect_raises(NotFound, lambda: api.projects.get("alice/shared-run"))

    @check("file.delete() removes the entry")
    def _():
        [doomed] = create(ALICE_KEY, [("doomed.fastq", None, {})])
        api.files.get(doomed).delete()
        expect_raises(NotFound, lambda: api.files.get(doomed))

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
    print(f"sevenbridges: {passed} passed, {failed} failed", flush=True)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
