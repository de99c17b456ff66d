"""CPU thread policy: the decision from fake load readings, and the /proc/stat arithmetic."""

from __future__ import annotations

import pytest

from rlreason import threads
from rlreason.threads import AdaptiveThreads, Sample, choose_threads, others_busy


@pytest.mark.parametrize(
    ("cores", "busy", "want"),
    [(2, 0.0, 2), (2, 0.1, 2), (2, 1.0, 1), (2, 0.7, 1), (2, 2.0, 1), (2, 5.0, 1), (16, 3.2, 13)],
)
def test_free_cores_rounded_to_whole_cores_and_never_zero(cores, busy, want):
    assert choose_threads(cores, busy) == want


def test_never_more_threads_than_the_ceiling():
    assert choose_threads(16, 0.0, ceiling=8) == 8
    assert choose_threads(16, 0.0, current=4, ceiling=8) == 8
    assert choose_threads(2, 0.0, ceiling=1) == 1


def test_a_thread_goes_once_a_neighbour_shares_the_cores_and_comes_back_when_free():
    assert choose_threads(2, 0.67, current=2) == 1  # 3 runnable threads on 2 cores
    assert choose_threads(2, 0.45, current=1) == 1  # 1.55 free: too close to 1.5
    assert choose_threads(2, 0.45) == 2
    assert choose_threads(2, 0.2, current=1) == 2
    assert choose_threads(2, 0.6, current=2) == 2
    assert choose_threads(2, 0.8, current=2) == 1


def test_others_busy_subtracts_this_process_cpu_time():
    a = Sample(busy=10.0, total=100.0, own=5.0)
    b = Sample(busy=12.0, total=104.0, own=6.0)  # 4 CPU-s elapsed on 2 cores: 2 s wall
    assert others_busy(a, b, cores=2) == pytest.approx(0.5)  # (2 - 1) / 4 * 2
    assert others_busy(a, Sample(10.0, 104.0, 7.0), cores=2) == 0.0  # never negative
    assert others_busy(a, a, cores=2) == 0.0


def test_read_proc_stat_parses_the_cpu_line(tmp_path):
    p = tmp_path / "stat"
    p.write_text("cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 1 2 3 4\n")
    busy, total = threads.read_proc_stat(str(p))
    hz = threads.os.sysconf("SC_CLK_TCK")
    assert busy == pytest.approx(150 / hz) and total == pytest.approx(1000 / hz)
    assert threads.read_proc_stat(str(tmp_path / "missing")) is None


def test_policy_drops_to_one_thread_under_a_burner_and_recovers(monkeypatch):
    readings = iter(
        [
            Sample(0.0, 0.0, 0.0),
            Sample(0.2, 0.4, 0.0),  # probe: a neighbour holds one of 2 cores
            Sample(1.4, 4.4, 1.0),  # then idle apart from this process
        ]
    )
    monkeypatch.setattr(threads, "take_sample", lambda: next(readings))
    set_to = []
    monkeypatch.setattr(
        AdaptiveThreads, "_apply", lambda self, n: (set_to.append(n), setattr(self, "threads", n))
    )
    policy = AdaptiveThreads(cores=2, interval_s=0.0)
    assert policy.start(probe_s=0.0) == 1
    assert policy.check() == 2
    assert set_to == [1, 2]
