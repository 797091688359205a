"""qa_fleet (seed 000) end to end: a real server and worker, both backends, the device
farm simulated; the release and the lost device planned, dispatched and run on any
free device of a pool, and no device ever accepting a stale fencing token."""

from __future__ import annotations

from collections.abc import Callable

from examples.qa_fleet.scenario import APP, LOST, STARTERS, VERSION
from tests.examples.conftest import Running, wait_for

ANDROID = ["device:android-galaxy-s23", "device:android-pixel-7", "device:android-pixel-8"]
IOS = ["device:ios-iphone-14", "device:ios-iphone-15"]


def test_qa_fleet(run_example: Callable[..., Running]) -> None:
    example = run_example("qa_fleet")
    outcome = example.run()
    api, ids = example.client, outcome["ids"]

    # the three starter templates, and the fleet's versions of them over them
    for name in STARTERS:
        assert [v["version"] for v in api.versions(name)] == ["1.1.0", "1.0.0"]

    # app.release: the manager planned and dispatched an exploration and two suites per
    # platform; each ran on a device of its platform's pool, taken when free
    release = ids["release"]
    [manager] = [t for t in release if t["agent"] == "qa-manager"]
    assert manager["version"] == "1.1.0" and manager["priority"] == 7
    assert sorted(manager["output"]["dispatched"]) == sorted(
        f"qa.{kind}.requested {platform} {what}" for platform in ("android", "ios")
        for kind, what in (("explore", "explore"), ("run", "smoke"), ("run", "regression")))
    ran = [t for t in release if t["agent"] != "qa-manager"]
    assert len(ran) == 6 and {t["status"] for t in ran} == {"succeeded"}
    assert {t["correlation_id"] for t in release} == {ids["correlations"][0]}
    for task in ran:
        pool = ANDROID if task["input"]["platform"] == "android" else IOS
        assert task["output"]["device"] in pool, task
        assert task["version"] == "1.1.0" and task["attempt"] == 1
    # three iOS tasks on two iPhones: one waited in the queue of each
    queued = api.list_events(type="lock.queued", limit=1000)["events"]
    assert {e["payload"]["resource"] for e in queued} == set(IOS)

    # fencing: the technician's write after her lease lapsed was refused, and no device
    # ever accepted a token lower than one it had accepted
    bench, writes = ids["bench"], ids["writes"]
    assert bench["resource"] == "device:ios-iphone-14" and ids["first"] == 200
    assert ids["stale"] == 409
    refused = [w for w in writes if not w["accepted"]]
    assert [(w["device"], w["owner"], w["token"]) for w in refused] == [
        (bench["resource"], "lab-bench", bench["token"])]
    assert refused[0]["highest"] > bench["token"]
    assert ids["stale_accepted"] == []
    expired = api.list_events(type="lock.expired", limit=100)["events"]
    assert [(e["payload"]["resource"], e["payload"]["owner"]) for e in expired] == [
        (bench["resource"], "lab-bench")]
    # every write a task made carried the token AgentOS granted that task for that device
    granted = {(e["payload"]["resource"], e["payload"]["token"]): e["payload"]["owner"]
               for e in api.list_events(type="lock.acquired", limit=1000)["events"]}
    by_tasks = [w for w in writes if w["owner"].startswith("task:")]
    assert len(by_tasks) == len(writes) - 2  # all but the bench's two
    for write in by_tasks:
        assert granted[(write["device"], write["token"])] == write["owner"], write

    # a bug report for each failed test case, caused by the run that found it
    bugs = ids["bugs"]
    assert sorted((b["payload"]["platform"], b["payload"]["case"]) for b in bugs) == [
        ("android", "settings"), ("ios", "checkout"), ("ios", "search")]
    failed = sorted((t["input"]["platform"], case) for t in ran
                    for case, result in (t["output"].get("results") or {}).items()
                    if result == "failed")
    assert failed == sorted((b["payload"]["platform"], b["payload"]["case"]) for b in bugs)
    runs_by_id = {t["id"]: t for t in ran}
    for bug in bugs:
        run = runs_by_id[bug["causation_id"]]
        assert bug["id"] in run["output"]["bugs"]
        assert bug["payload"]["device_id"] == run["output"]["device"]
        assert bug["payload"]["version"] == VERSION and bug["payload"]["app"] == APP
        assert bug["priority"] == "high"

    # alert.device_offline: the smoke suite rerun at once, urgently, on the Android
    # devices still online (a list leaving the lost one out)
    rerun = ids["rerun"]
    [again] = [t for t in rerun if t["agent"] == "executor"]
    assert again["priority"] == 9 and again["status"] == "succeeded"
    assert again["input"]["pool"] == [d for d in ANDROID if d != LOST]
    assert again["output"]["device"] == ANDROID[0]
    assert set(again["output"]["results"].values()) == {"passed"}
    # the lost device was written by release tasks only, and nothing tried it after
    assert {w["owner"] for w in writes if w["device"] == LOST} <= {
        f"task:{t['id']}" for t in ran}

    # execution history and per-agent metrics
    history = api.list_tasks(agent="executor", limit=100)["tasks"]
    assert len(history) == 5
    for task in history:
        [attempt] = api.get_task(task["id"])["attempts"]
        assert attempt["outcome"] == "succeeded" and attempt["duration_ms"] > 0
    assert outcome["cases"] == {"passed": 14, "failed": 3}
    # per-agent metrics (the workers flush them every few seconds)
    for agent, count in (("qa-manager", 2), ("explorer", 2), ("executor", 5)):
        wait_for(f"{agent}'s summary of {count} tasks", lambda agent=agent, count=count: api.
                 agent_summary(agent, window="1h")["tasks"] == {"succeeded": count},
                 timeout=30, running=example)
    every_device = {lock["resource"]: lock for lock in
                    [api.get_lock(d) for d in ANDROID + IOS]}
    assert all(lock["holder"] is None and lock["queue"] == []
               for lock in every_device.values())

