"""The group writer through its real database: several writer threads commit every job exactly once,
and closing drains the queue before the threads end."""

from __future__ import annotations

import threading
from collections.abc import Callable

from sqlalchemy import func, insert, select

from sharelake.services.lake import Lake
from sharelake.settings import Settings
from sharelake.storage.engine import write_transaction
from sharelake.storage.tables import kv
from sharelake.storage.writer import GroupWriter, WriteJob


def test_several_writer_threads_commit_every_job_once_and_close_cleanly(
    settings_factory: Callable[..., Settings],
) -> None:
    lake = Lake(settings_factory())

    def commit(jobs: list[WriteJob]) -> None:
        with write_transaction(lake.engine) as conn:
            conn.execute(insert(kv), [row for job in jobs for row in job.items])
        for job in jobs:
            job.result = len(job.items)

    writer = GroupWriter(commit, max_batch=8, threads=3)
    try:
        errors: list[BaseException] = []

        def submit(n: int) -> None:
            for i in range(40):
                try:
                    writer.write_sync(WriteJob(items=[{"key": f"writer-test-{n}-{i}", "value": "x"}]))
                except BaseException as exc:
                    errors.append(exc)

        clients = [threading.Thread(target=submit, args=(n,)) for n in range(6)]
        for client in clients:
            client.start()
        for client in clients:
            client.join()
        writer.close()  # returns only once every writer thread has ended
        assert errors == []
        with lake.engine.connect() as conn:
            stored = conn.execute(select(func.count()).where(kv.c.key.like("writer-test-%"))).scalar_one()
        assert stored == 240
    finally:
        writer.close()
        lake.close()
