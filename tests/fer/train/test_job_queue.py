"""fer.train.job_queue (through fer.train.jobs): slots shared by every user, a per-user limit, the queue,
who starts the next run, and heavy tasks in a child process with a time limit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from fer.errors import FerError
from fer.paths import jobs_dir, runs_dir
from fer.train import job_queue, jobs
from fer.train.config import TrainConfig
from fer.train.run_dir import RunDir

TINY = TrainConfig(preset="tiny", epochs=2, batch_size=8)


def end(process: subprocess.Popen) -> None:
    process.kill()
    process.wait()


def test_slots_are_shared_by_all_users_and_each_user_runs_one_job_at_a_time(sleepers, monkeypatch):
    monkeypatch.setenv("FER_STUDIO_MAX_JOBS", "2")
    first_of_ann = jobs.start_job("demo", TINY, user="ann", spawn=sleepers.spawn)
    second_of_ann = jobs.start_job("demo", TINY, user="ann", spawn=sleepers.spawn)  # Ann's limit: waits.
    of_bob = jobs.start_job("demo", TINY, user="bob", spawn=sleepers.spawn)  # The second slot.
    of_cem = jobs.start_job("demo", TINY, user="cem", spawn=sleepers.spawn)  # No slot left: waits.
    assert [run.parent for run in (first_of_ann, of_bob, of_cem)] == [
        runs_dir("ann").resolve(), runs_dir("bob").resolve(), runs_dir("cem").resolve()]
    assert jobs.active_runs("ann") == [first_of_ann] and jobs.active_runs("bob") == [of_bob]
    assert [jobs.run_summary(run).queue_position for run in (second_of_ann, of_cem)] == [1, 2]

    end(sleepers[1])  # Bob's job ends: Ann has one running, so Cem's run, behind hers, takes the slot.
    assert jobs.active_runs("cem", spawn=sleepers.spawn) == [of_cem]
    assert jobs.run_summary(second_of_ann).queue_position == 1
    end(sleepers[0])  # Ann's first ends: her second starts.
    assert jobs.active_runs("ann", spawn=sleepers.spawn) == [second_of_ann]


def test_a_user_sees_stops_and_resumes_only_their_own_runs(sleepers):
    of_ann = jobs.start_job("demo", TINY, user="ann", spawn=sleepers.spawn)
    assert [run.name for run in jobs.list_runs("ann")] == [of_ann.name]
    assert jobs.list_runs("bob") == [] and jobs.active_runs("bob") == [] and jobs.list_runs() == []
    for attempt in (lambda run: jobs.stop_job(run, user="bob"), lambda run: jobs.resume_job(run, user="bob")):
        for given in (of_ann, of_ann.name, f"../../ann/runs/{of_ann.name}"):
            with pytest.raises(FerError, match="no run named"):
                attempt(given)
    assert not (of_ann / "STOP").exists()
    jobs.stop_job(of_ann.name, user="ann")
    assert (of_ann / "STOP").exists()


def test_a_queued_run_leaves_the_queue_when_stopped_and_joins_it_again_when_resumed(sleepers):
    jobs.start_job("demo", TINY, spawn=sleepers.spawn)
    waiting = jobs.start_job("demo", TINY, spawn=sleepers.spawn)
    jobs.stop_job(waiting)
    stopped = jobs.run_summary(waiting)
    assert (stopped.status, stopped.queue_position, stopped.resumable) == ("stopped", None, True)
    jobs.resume_job(waiting, spawn=sleepers.spawn)
    assert jobs.run_summary(waiting).status == "queued" and len(sleepers) == 1


def test_a_user_may_queue_only_a_few_runs(sleepers):
    runs = [jobs.start_job("demo", TINY, spawn=sleepers.spawn) for _ in range(1 + job_queue.MAX_WAITING_PER_USER)]
    with pytest.raises(jobs.JobBusy, match="already have 3 runs waiting"):
        jobs.start_job("demo", TINY, spawn=sleepers.spawn)
    assert sorted(path.name for path in runs_dir().iterdir()) == sorted(run.name for run in runs)  # No extra folder.
    jobs.start_job("demo", TINY, user="bob", spawn=sleepers.spawn)  # Others still can.


def test_runs_started_by_threads_in_the_same_second_get_folders_of_their_own(sleepers, monkeypatch):
    monkeypatch.setattr(time, "strftime", lambda pattern: "20261201-120000")
    start = threading.Barrier(4)

    def start_one(_):
        start.wait()
        return jobs.start_job("demo", TINY, spawn=sleepers.spawn)

    with ThreadPoolExecutor(4) as pool:
        runs = list(pool.map(start_one, range(4)))
    assert len(set(runs)) == 4 and len(sleepers) == 1
    assert sorted(jobs.run_summary(run).status for run in runs) == ["queued"] * 3 + ["starting"]
    assert sorted(entry.run for entry in job_queue_entries()) == sorted(str(run) for run in runs
                                                                        if jobs.run_summary(run).status == "queued")


def job_queue_entries():
    with job_queue.guard():
        return job_queue.waiting()


def test_a_job_killed_for_memory_is_said_and_the_next_run_starts_with_no_server_looking(sleepers):
    killed = jobs.start_job("demo", TINY, spawn=sleepers.spawn)
    waiting = jobs.start_job("demo", TINY, spawn=sleepers.spawn)
    end(sleepers[0])
    # This process plays the first job's process: it takes over the slot as the job process holds it,
    # then supervises a training child that the kernel kills (as the OOM killer would).
    slot = jobs_dir() / "slot-1.lock"
    slot.write_text(json.dumps({**json.loads(slot.read_text()), "pid": os.getpid(), "marker": "python"}))
    RunDir(killed).update_state(status="running")
    oom = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"]

    assert jobs.supervise(killed, command=oom, spawn=sleepers.spawn) == 1

    summary = jobs.run_summary(killed)
    assert summary.status == "failed" and "killed (SIGKILL, perhaps for want of memory)" in summary.error
    assert summary.resumable
    assert len(sleepers) == 2 and sleepers[1].args[-1] == str(waiting)  # Started by the job process itself.
    assert json.loads(slot.read_text())["run"] == str(waiting)


def test_a_task_takes_a_slot_for_its_child_and_the_queue_moves_on_when_it_ends(sleepers, tmp_path):
    seen = []

    def poll():
        if not seen:
            seen.append(jobs.start_job("demo", TINY, spawn=sleepers.spawn))  # Started while the task runs.

    status = job_queue.run_task([sys.executable, "-c", "import time; time.sleep(1.5); print('done')"],
                                what="test task", seconds=60, user=None, log=tmp_path / "task.log",
                                spawn=sleepers.spawn, poll=poll)
    assert status == 0 and (tmp_path / "task.log").read_text() == "done\n"
    assert len(sleepers) == 1 and jobs.active_runs() == seen  # It waited for the task, then started.


def test_a_task_finds_every_slot_busy_or_runs_out_of_time_in_words(sleepers, tmp_path):
    jobs.start_job("demo", TINY, spawn=sleepers.spawn)
    with pytest.raises(jobs.JobBusy, match="every job slot is busy"):
        job_queue.run_task([sys.executable, "-c", "pass"], what="TFLite export", seconds=60, user=None,
                           log=tmp_path / "log")
    end(sleepers[0])
    assert jobs.active_runs(spawn=sleepers.spawn) == []  # The slot is free again.
    started = time.monotonic()
    with pytest.raises(FerError, match="the slow task took longer than 1s and was stopped"):
        job_queue.run_task([sys.executable, "-c", "import time; time.sleep(60)"], what="slow task", seconds=1,
                           user=None, log=tmp_path / "log", spawn=sleepers.spawn)
    assert time.monotonic() - started < 20 and not list(jobs_dir().glob("slot-*.lock"))
