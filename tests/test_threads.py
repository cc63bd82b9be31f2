"""Threading set-up and the host's core budget (tsunami.threads, tsunami.cores).

Speed under load is measured by `tsunami bench --contention`, never asserted here; these
tests check that the set-up is applied and that the budget's invariants hold.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import sys
import textwrap
from importlib import metadata

import numba
import pytest

from tsunami.bench import coastal_test_model
from tsunami.cores import SLOTS, CoreBudget
from tsunami.simulation import Simulation

LAYER_PROBE = textwrap.dedent("""
    import json, os, numba
    from tsunami.bench import coastal_test_model
    coastal_test_model(40).step()  # parallel kernels: Numba starts its threads here
    print(json.dumps({"layer": numba.threading_layer(),
                      "wait": os.environ.get("OMP_WAIT_POLICY")}))
""")


def _probe(**env) -> dict:
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("NUMBA_THREADING_LAYER", "OMP_WAIT_POLICY", "TSUNAMI_THREADING")}
    out = subprocess.run([sys.executable, "-c", LAYER_PROBE], env=environment | env,
                         capture_output=True, text=True, timeout=300, check=True)
    return json.loads(out.stdout.splitlines()[-1])


def _has_tbb() -> bool:
    try:
        metadata.distribution("tbb")
    except metadata.PackageNotFoundError:
        return False
    return True


def test_kernels_run_on_tbb_with_passive_openmp_fallback():
    """Numba's default on Linux is OpenMP with spinning barriers; the kernels must run on
    TBB where its wheel is installed (a dependency on x86_64), and a fallback to OpenMP
    must wait passively."""
    if platform.machine().lower() in ("x86_64", "amd64"):
        assert _has_tbb(), "the tbb wheel is a dependency on x86_64"
    got = _probe()
    assert got["layer"] == ("tbb" if _has_tbb() else got["layer"])
    assert got["layer"] != "omp" or got["wait"] == "PASSIVE"
    assert got["wait"] == "PASSIVE"


def test_user_threading_choice_is_respected():
    got = _probe(NUMBA_THREADING_LAYER="workqueue", OMP_WAIT_POLICY="ACTIVE")
    assert got == {"layer": "workqueue", "wait": "ACTIVE"}


def test_fair_shares_follow_the_runs_present(tmp_path):
    budget = CoreBudget(tmp_path, cores=8)
    first = budget.join()
    assert first.share() == range(0, 8)
    assert first.acquire(8) == 8
    second, third = budget.join(), budget.join()
    assert [len(m.share()) for m in (first, second, third)] == [3, 3, 2]
    # The first run still holds all tokens for its chunk: the others get none yet and
    # step on one thread, never on tokens another run holds.
    assert second.acquire(8) == 1 and second.tokens == 0
    assert first.acquire(8) == 3  # next chunk: its share
    assert second.acquire(8) == 3 and third.acquire(8) == 2
    assert first.acquire(2) == 2  # never more than asked
    second.close()
    third.close()
    assert first.acquire(8) == 8  # alone again: all the cores
    first.close()


def test_single_thread_takes_no_token_and_small_shares_step_on_one_thread(tmp_path):
    budget = CoreBudget(tmp_path, cores=2)
    with budget.join() as a, budget.join() as b:
        assert a.acquire(1) == 1 and a.tokens == 0
        assert a.acquire(2) == 1 and b.acquire(2) == 1  # a share of one core: no tokens
        assert a.tokens == b.tokens == 0


def test_more_runs_than_slots_step_on_one_thread(tmp_path):
    budget = CoreBudget(tmp_path, cores=4)
    members = [budget.join() for _ in range(SLOTS + 1)]
    try:
        assert members[-1].slot is None
        assert members[-1].acquire(4) == 1
    finally:
        for m in members:
            m.close()


TALLY_RUN = textwrap.dedent("""
    import fcntl, os, sys, time
    from tsunami.cores import CoreBudget
    folder, cores, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    budget = CoreBudget(folder, cores)
    tally = os.open(os.path.join(folder, "tally"), os.O_RDWR | os.O_CREAT)

    def add(n):
        fcntl.flock(tally, fcntl.LOCK_EX)
        total = int(os.pread(tally, 32, 0) or b"0") + n
        os.ftruncate(tally, 0)
        os.pwrite(tally, str(total).encode(), 0)
        fcntl.flock(tally, fcntl.LOCK_UN)
        return total

    most = multi = 0
    for _ in range(rounds):
        # Join and leave every round, so shares change under the other processes' feet.
        with budget.join() as member:
            for _ in range(3):
                threads = member.acquire(cores)
                if threads > 1:
                    multi += 1
                    most = max(most, add(threads))
                    time.sleep(0.002)
                    add(-threads)
    print(most, multi)
""")


def test_tokens_never_exceed_cores_across_processes(tmp_path):
    """Processes joining, leaving and leasing concurrently: the threads of all
    multi-threaded leases held at one time never exceed the cores."""
    cores = 4
    runs = [subprocess.Popen([sys.executable, "-c", TALLY_RUN, str(tmp_path), str(cores),
                              "60"], stdout=subprocess.PIPE, text=True) for _ in range(3)]
    results = [run.communicate(timeout=300)[0].split() for run in runs]
    assert all(run.returncode == 0 for run in runs)
    most = max(int(r[0]) for r in results)
    assert sum(int(r[1]) for r in results) > 0  # multi-threaded leases did happen
    assert 2 <= most <= cores


HOLDER = textwrap.dedent("""
    import sys, time
    from tsunami.cores import CoreBudget
    member = CoreBudget(sys.argv[1], 2).join()
    print(member.acquire(2), flush=True)
    time.sleep(600)
""")


def test_a_killed_run_releases_its_tokens_and_presence(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "2"
        with CoreBudget(tmp_path, cores=2).join() as member:
            assert len(member.runs()) == 2
            assert member.acquire(2) == 1  # the holder has both tokens
            holder.send_signal(signal.SIGKILL)
            holder.wait(timeout=60)
            assert member.runs() == [member.slot]
            assert member.acquire(2) == 2
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def test_budget_off_and_unusable_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("TSUNAMI_CORES", "0")
    with CoreBudget.from_environment().join() as member:
        assert member.acquire(2) == 2
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.warns(RuntimeWarning, match="core budget off"):
        budget = CoreBudget(blocker / "cores", cores=2)
    assert not budget.enabled
    assert budget.join().acquire(2) == 2


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="one core")
def test_simulation_steps_with_its_share(tmp_path):
    """A simulation takes its kernel threads from the budget: one beside another run on
    two cores, both when alone; Numba's setting is restored afterwards."""
    budget = CoreBudget(tmp_path, cores=2)
    before = numba.get_num_threads()

    def threads_used(other_present: bool) -> set[int]:
        model = coastal_test_model(30)
        seen = set()
        sim = Simulation(model, stop_time=10 * model.dt, cores=budget,
                         callbacks=[lambda m: seen.add(numba.get_num_threads())])
        if other_present:
            with budget.join():
                sim.run()
        else:
            sim.run()
        return seen

    assert threads_used(other_present=True) == {1}
    assert threads_used(other_present=False) == {2}
    assert numba.get_num_threads() == before
