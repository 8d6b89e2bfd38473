"""The JSON routes against a live server, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.web.conftest import Server

PARKED = "parked"  # no worker ever takes this queue: its jobs stay queued


def unique() -> str:
    return uuid.uuid4().hex[:10]


def enqueue(client: httpx.Client, type: str = "noop", input: Any = None, **options: Any) -> Any:
    options.setdefault("queue", PARKED)
    body = {"type": type, "input": {"a": 1} if input is None else input, **options}
    response = client.post("/api/jobs", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    """The error body, after checking the status and the one error shape."""
    assert response.status_code == status, response.text[:2000]
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert {"type", "message"} <= set(body["error"]) <= {"type", "message", "fields"}
    return body["error"]  # type: ignore[no-any-return]


def run_worker(server: Server, queue: str) -> dict[str, Any]:
    with server.client("admin") as admin:
        response = admin.post(
            "/api/worker/run", params={"queue": queue, "max_seconds": 10, "max_jobs": 50}
        )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_enqueue_get_and_run(server: Server) -> None:
    queue = f"q-{unique()}"
    with server.client("alice") as alice:
        job = enqueue(alice, "add", {"a": 2, "b": 3}, queue=queue, tags=["t1"], metadata={"m": 1})
        assert job["status"] == "queued"
        assert job["owner"] == "alice"
        assert (job["tags"], job["metadata"], job["queue"]) == (["t1"], {"m": 1}, queue)
        ran = run_worker(server, queue)
        assert ran["processed"] == 1
        detail = alice.get(f"/api/jobs/{job['id']}").json()
        assert detail["status"] == "succeeded"
        assert detail["output"] == {"total": 5}
        assert detail["input"] == {"a": 2, "b": 3}
        assert detail["progress"] == 1.0
        assert detail["finished_at"] is not None
        (attempt,) = detail["attempt_history"]
        assert attempt["number"] == 1
        assert attempt["status"] == "succeeded"
        assert attempt["worker_id"] == ran["worker_id"]
        events = alice.get(f"/api/jobs/{job['id']}/events").json()
        kinds = [(e["kind"], e["status"]) for e in events["events"]]
        assert kinds[0] == ("status", "queued")
        assert ("status", "running") in kinds
        assert ("progress", None) in kinds
        assert kinds[-1] == ("status", "succeeded")
        seqs = [e["seq"] for e in events["events"]]
        assert seqs == sorted(seqs)
        assert events["next_after"] is None
        page = alice.get(
            f"/api/jobs/{job['id']}/events", params={"after": seqs[0], "limit": 1}
        ).json()
        assert [e["seq"] for e in page["events"]] == [seqs[1]]
        assert page["next_after"] == seqs[1]


def test_failed_attempts_carry_their_errors(server: Server) -> None:
    queue = f"q-{unique()}"
    with server.client("alice") as alice:
        job = enqueue(alice, "flaky", {"fail_times": 9, "message": "nope"}, queue=queue)
        run_worker(server, queue)
        detail = alice.get(f"/api/jobs/{job['id']}").json()
    assert detail["status"] == "failed"
    assert len(detail["attempt_history"]) == 4
    assert [a["error"]["message"] for a in detail["attempt_history"]] == [
        f"nope #{n}" for n in range(1, 5)
    ]
    assert detail["errors"][-1]["type"] == "RuntimeError"


def test_invalid_input_names_each_field(server: Server) -> None:
    with server.client("alice") as alice:
        response = alice.post("/api/jobs", json={"type": "add", "input": {"b": "x"}})
    error = error_of(response, 422)
    assert error["type"] == "InvalidJobInput"
    assert {f["field"] for f in error["fields"]} == {"input.a", "input.b"}


def test_unknown_type_names_the_known_ones(server: Server) -> None:
    with server.client("alice") as alice:
        error = error_of(alice.post("/api/jobs", json={"type": "nope", "input": {}}), 422)
    assert error["type"] == "UnknownJobType"
    for known in ("'add'", "'noop'", "'testplugin.greet'"):
        assert known in error["message"]


def test_bad_options_and_bodies(server: Server) -> None:
    with server.client("alice") as alice:
        error = error_of(
            alice.post("/api/jobs", json={"type": "noop", "input": {"a": 1}, "queue": "a b"}), 422
        )
        assert error["type"] == "InvalidJobOption"
        assert error["fields"][0]["field"] == "queue"
        error = error_of(alice.post("/api/jobs", json={"type": "noop", "oops": 1}), 422)
        assert error["type"] == "ValidationError"
        assert error["fields"][0]["field"] == "body.oops"
        response = alice.post(
            "/api/jobs", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert error_of(response, 422)["type"] == "ValidationError"
        big = {"type": "permanent", "input": {"text": "y" * 1_100_000}}
        assert error_of(alice.post("/api/jobs", json=big), 413)["type"] == "PayloadTooLarge"


def test_unique_key_returns_the_existing_job(server: Server) -> None:
    key = f"k-{unique()}"
    with server.client("alice") as alice, server.client("bob") as bob:
        first = enqueue(alice, unique_key=key)
        again = alice.post("/api/jobs", json={"type": "noop", "input": {"a": 2}, "unique_key": key})
        assert again.status_code == 200
        assert again.json()["id"] == first["id"]
        refused = alice.post(
            "/api/jobs",
            json={"type": "noop", "input": {"a": 2}, "unique_key": key, "on_conflict": "reject"},
        )
        assert error_of(refused, 409)["type"] == "DuplicateJob"
        # Someone else's job holding the key is not shown.
        other = bob.post("/api/jobs", json={"type": "noop", "input": {"a": 2}, "unique_key": key})
        error = error_of(other, 422)
        assert str(first["id"]) not in error["message"]


def test_list_filters_and_cursor(server: Server) -> None:
    tag = f"tag-{unique()}"
    with server.client("alice") as alice, server.client("admin") as admin:
        before = datetime.now(UTC) - timedelta(seconds=1)
        made = [enqueue(alice, tags=[tag]) for _ in range(5)]
        made.append(enqueue(alice, "add", tags=[tag]))
        ids = [job["id"] for job in made]
        seen: list[int] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"tag": tag, "limit": 2}
            if cursor:
                params["cursor"] = cursor
            page = alice.get("/api/jobs", params=params).json()
            seen += [job["id"] for job in page["jobs"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == sorted(ids, reverse=True)

        def listed(**params: Any) -> list[int]:
            response = admin.get("/api/jobs", params={"tag": tag, **params})
            assert response.status_code == 200, response.text
            return [job["id"] for job in response.json()["jobs"]]

        assert listed(type="add") == [ids[-1]]
        assert listed(status="queued", queue=PARKED) == sorted(ids, reverse=True)
        assert listed(status="succeeded") == []
        assert listed(owner="alice") == sorted(ids, reverse=True)
        assert listed(owner="bob") == []
        assert listed(created_after=before.isoformat()) == sorted(ids, reverse=True)
        assert listed(created_before=before.isoformat()) == []
        error = error_of(admin.get("/api/jobs", params={"created_after": "2024-01-01T00:00"}), 422)
        assert error["fields"][0]["field"] == "query.created_after"
        assert error_of(admin.get("/api/jobs", params={"status": "nope"}), 422)


def test_a_user_sees_only_its_own_jobs(server: Server) -> None:
    tag = f"tag-{unique()}"
    with server.client("alice") as alice, server.client("bob") as bob:
        mine = enqueue(alice, tags=[tag])
        theirs = enqueue(bob, tags=[tag])
        assert [j["id"] for j in alice.get("/api/jobs", params={"tag": tag}).json()["jobs"]] == [
            mine["id"]
        ]
        assert alice.get("/api/jobs", params={"tag": tag, "owner": "bob"}).json()["jobs"] == []
        error = error_of(alice.get(f"/api/jobs/{theirs['id']}"), 404)
        assert error["type"] == "JobNotFound"
        assert error_of(alice.post(f"/api/jobs/{theirs['id']}/cancel"), 404)
        response = alice.post(
            "/api/jobs", json={"type": "noop", "input": {"a": 1}, "depends_on": [theirs["id"]]}
        )
        assert error_of(response, 422)["fields"][0]["field"] == "depends_on"


def test_actions_on_one_job(server: Server) -> None:
    with server.client("alice") as alice:
        job = enqueue(alice)
        url = f"/api/jobs/{job['id']}"
        moved = alice.post(f"{url}/move", json={"queue": "elsewhere", "priority": 7})
        assert (moved.json()["queue"], moved.json()["priority"]) == ("elsewhere", 7)
        cancelled = alice.post(f"{url}/cancel").json()
        assert cancelled["status"] == "cancelled"
        assert cancelled["job"]["status"] == "cancelled"
        assert error_of(alice.post(f"{url}/cancel"), 409)["type"] == "InvalidJobState"
        retried = alice.post(f"{url}/retry")
        assert retried.status_code == 200
        assert retried.json()["status"] == "queued"
        copy = alice.post(f"{url}/resubmit")
        assert copy.status_code == 201
        assert copy.json()["original_id"] == job["id"]
        assert copy.json()["id"] != job["id"]
        bad = alice.post(f"{url}/complete", json={"output": {"total": "many"}})
        error = error_of(bad, 422)
        assert error["type"] == "InvalidJobOutput"
        assert [f["field"] for f in error["fields"]] == ["output.total"]
        done = alice.post(f"{url}/complete", json={"output": {"total": 3}})
        assert (done.json()["status"], done.json()["output"]) == ("succeeded", {"total": 3})
        failed = alice.post(f"/api/jobs/{copy.json()['id']}/fail", json={"reason": "gone"})
        assert failed.json()["status"] == "failed"
        assert failed.json()["errors"][-1]["type"] == "FailedByRequest"
        assert failed.json()["errors"][-1]["message"] == "gone"
        assert error_of(alice.post(f"{url}/report", json={"progress": 0.5}), 409)
        events = alice.get(f"{url}/events").json()["events"]
        assert {e["actor"] for e in events if e["kind"] != "progress"} >= {"alice"}
        assert error_of(alice.post("/api/jobs/999999/retry"), 404)["type"] == "JobNotFound"


def test_tracking_jobs(server: Server) -> None:
    with server.client("alice") as alice:
        job = enqueue(alice, "add", {"a": 1}, track_ttl=600)
        assert (job["status"], job["tracked"], job["track_ttl"]) == ("running", True, 600)
        url = f"/api/jobs/{job['id']}"
        report = alice.post(
            f"{url}/report", json={"progress": 0.4, "message": "40%", "usage": {"rows": 4}}
        )
        assert report.status_code == 200, report.text
        assert (report.json()["progress"], report.json()["progress_message"]) == (0.4, "40%")
        assert error_of(alice.post(f"{url}/report", json={"progress": 4}), 422)
        bad = alice.post(f"{url}/complete", json={"output": {"nope": 1}})
        assert error_of(bad, 422)["type"] == "InvalidJobOutput"
        done = alice.post(f"{url}/complete", json={"output": {"total": 1}, "usage": {"rows": 6}})
        assert done.status_code == 200, done.text
        assert done.json()["status"] == "succeeded"
        assert done.json()["usage"] == {"rows": 10}
        assert error_of(alice.post(f"{url}/report", json={}), 409)["type"] == "InvalidJobState"

        other = enqueue(alice, "add", {"a": 1}, track_ttl=60)
        failed = alice.post(f"/api/jobs/{other['id']}/fail", json={"reason": "corrupt"})
        assert failed.json()["status"] == "failed"
        assert failed.json()["errors"][-1]["type"] == "TrackedFailure"
        # Usage is for tracking jobs; settling another job by hand takes none.
        plain = enqueue(alice)
        response = alice.post(
            f"/api/jobs/{plain['id']}/fail", json={"reason": "x", "usage": {"rows": 1}}
        )
        assert error_of(response, 422)["fields"][0]["field"] == "usage"


def test_bulk_actions(server: Server) -> None:
    tag = f"tag-{unique()}"
    since = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    with server.client("alice") as alice, server.client("admin") as admin:
        jobs = [enqueue(alice, tags=[tag]) for _ in range(3)]
        ids = sorted((j["id"] for j in jobs), reverse=True)
        bob_job = enqueue(admin, tags=[tag])
        dry = alice.post(
            "/api/jobs/bulk/cancel", json={"tag": tag, "created_after": since, "dry_run": True}
        ).json()
        assert (dry["matched"], dry["changed"], dry["dry_run"]) == (ids, [], True)
        assert alice.get(f"/api/jobs/{ids[0]}").json()["status"] == "queued"
        done = alice.post("/api/jobs/bulk/cancel", json={"tag": tag, "created_after": since}).json()
        assert (done["action"], done["changed"]) == ("cancel", ids)
        # The admin's job was not the user's to cancel.
        assert admin.get(f"/api/jobs/{bob_job['id']}").json()["status"] == "queued"
        error = error_of(alice.post("/api/jobs/bulk/retry", json={"tag": tag}), 422)
        assert error["fields"][0]["field"] == "created_after"
        by_ids = alice.post(
            "/api/jobs/bulk/retry", json={"ids": [ids[0], ids[1], bob_job["id"], 999999]}
        ).json()
        assert by_ids["changed"] == [ids[0], ids[1]]
        assert by_ids["skipped"] == [bob_job["id"], 999999]
        mixed = alice.post("/api/jobs/bulk/retry", json={"ids": [ids[0]], "tag": tag})
        assert error_of(mixed, 422)["type"] == "InvalidJobOption"
        assert error_of(alice.post("/api/jobs/bulk/explode", json={}), 422)
        statuses = {i: alice.get(f"/api/jobs/{i}").json()["status"] for i in ids}
        assert statuses == {ids[0]: "queued", ids[1]: "queued", ids[2]: "cancelled"}


def test_types_and_system_routes(server: Server) -> None:
    with server.client("viewer") as viewer, server.client("alice") as alice:
        types = {t["name"]: t for t in viewer.get("/api/types").json()}
        assert {"add", "noop", "testplugin.greet"} <= set(types)
        add = types["add"]
        assert set(add["input_schema"]["properties"]) == {"a", "b"}
        assert add["output_schema"]["required"] == ["total"]
        assert (add["max_attempts"], add["queue"]) == (2, "default")
        assert add["plugin"] == "tests.support.jobs"
        assert types["testplugin.greet"]["plugin"] == "testplugin"

        enqueue(alice, "add", {"a": 1}, track_ttl=60, queue="default")
        stats = viewer.get("/api/stats").json()
        assert stats["by_type"]["add"]["running"] >= 1
        own = alice.get("/api/stats").json()
        assert set(own["usage_by_owner"]) <= {"alice"}

        queues = {q["name"]: q for q in viewer.get("/api/queues").json()}
        assert "add" in queues["default"]["types"]
        assert viewer.get("/api/workers").json() == {"workers": []}
        assert viewer.get("/api/schedules").json() == []
        plugins = viewer.get("/api/plugins").json()
        names = {p["name"]: p for p in plugins["plugins"]}
        assert names["testplugin"]["job_types"] == ["testplugin.greet"]
        assert "add" in names["tests.support.jobs"]["job_types"]
        assert plugins["failures"] == []


def test_health_needs_no_token(server: Server) -> None:
    response = httpx.get(f"{server.base_url}/healthz")
    assert response.status_code == 200
    body = response.json()
    assert (body["ok"], body["schema_current"]) == (True, True)


def test_errors_have_one_shape(server: Server) -> None:
    with server.client("admin") as admin:
        assert error_of(admin.get("/nowhere"), 404)["type"] == "NotFound"
        assert error_of(admin.get("/api/jobs/0"), 422)["fields"][0]["field"] == "path.job_id"
        assert error_of(admin.get("/api/jobs/abc"), 422)
        assert error_of(admin.delete("/api/jobs"), 405)["type"] == "MethodNotAllowed"
        assert error_of(admin.put("/api/jobs/1/cancel"), 405)
        assert error_of(admin.get("/api/jobs/2147483647"), 404)["type"] == "JobNotFound"
        assert error_of(admin.post("/api/worker/run", params={"max_seconds": -1}), 422)


def test_openapi_holds_every_job_types_models(server: Server) -> None:
    document = httpx.get(f"{server.base_url}/openapi.json").json()
    schemas = document["components"]["schemas"]
    with server.client("viewer") as viewer:
        types = [t["name"] for t in viewer.get("/api/types").json()]
    for name in types:
        key = "job." + name.replace(":", "_")
        assert f"{key}.Input" in schemas
        assert f"{key}.Output" in schemas
        assert schemas[f"{key}.Enqueue"]["properties"]["type"]["const"] == name
    assert set(schemas["job.add.Input"]["properties"]) == {"a", "b"}
    body = document["paths"]["/api/jobs"]["post"]["requestBody"]["content"]["application/json"]
    assert set(body["schema"]["discriminator"]["mapping"]) == set(types)
    assert len(body["schema"]["oneOf"]) == len(types)
    error = document["paths"]["/api/jobs/{job_id}"]["get"]["responses"]["404"]
    assert error["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
