import threading

import pytest

from core import own_connection
from core.own_connection import on_own_connection


@pytest.mark.parametrize("fails", [False, True])
def test_a_thread_closes_its_own_connections_whether_its_work_returns_or_raises(monkeypatch, fails):
    closed_in = []
    monkeypatch.setattr(own_connection.connections, "close_all", lambda: closed_in.append(threading.current_thread().name))
    outcome = []

    @on_own_connection
    def work(x):
        if fails:
            raise ValueError("stopped")
        return x * 2

    def body():
        try:
            outcome.append(work(21))
        except ValueError as exc:
            outcome.append(str(exc))

    thread = threading.Thread(target=body, name="beside")
    thread.start()
    thread.join()
    assert outcome == (["stopped"] if fails else [42])
    assert closed_in == ["beside"]
