"""probes.parallel: jobs in order, in several threads, single-threaded inside, thread counts restored, errors raised."""

import threading
import time

import pytest
import torch
from threadpoolctl import threadpool_info

from probes.parallel import resolve_workers, run_jobs, single_threaded


def _blas_threads() -> list[int]:
    return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]


def test_jobs_run_in_threads_single_threaded_and_come_back_in_order():
    before, blas_before = torch.get_num_threads(), _blas_threads()
    seen = []

    def job(k):
        time.sleep(0.05 * (4 - k))                     # later jobs finish first: order must still hold
        seen.append((threading.get_ident(), torch.get_num_threads(), _blas_threads()))
        return k * k

    out = list(run_jobs(job, range(4), workers=2))
    assert out == [(0, 0), (1, 1), (2, 4), (3, 9)]
    assert len({ident for ident, _, _ in seen}) == 2                  # two worker threads took part
    assert all(n == 1 for _, n, _ in seen)                            # torch single-threaded inside
    assert all(all(b == 1 for b in blas) for _, _, blas in seen)      # and every BLAS pool
    assert torch.get_num_threads() == before and _blas_threads() == blas_before


def test_an_error_in_a_job_is_raised_and_threads_are_restored():
    before = torch.get_num_threads()

    def job(k):
        if k == 2:
            raise ValueError("job 2 failed")
        return k

    with pytest.raises(ValueError, match="job 2 failed"):
        list(run_jobs(job, range(5), workers=2))
    assert torch.get_num_threads() == before


def test_single_threaded_restores_on_error():
    before = torch.get_num_threads()
    with pytest.raises(RuntimeError), single_threaded():
        assert torch.get_num_threads() == 1
        raise RuntimeError("inside")
    assert torch.get_num_threads() == before


def test_resolve_workers():
    assert resolve_workers(None, torch.device("cpu")) == torch.get_num_threads()
    assert resolve_workers(None, torch.device("cuda")) == 1
    assert resolve_workers(2, torch.device("cuda")) == 2
    with pytest.raises(ValueError, match="n_jobs=-1"):
        resolve_workers(-1, torch.device("cpu"))
