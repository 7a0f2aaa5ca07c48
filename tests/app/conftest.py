"""Fixtures shared by the app tests.

- `demo_run` / `demo`: ONE `codi-lens demo --quick` run (real weights, a few minutes on 2 busy cores) per session,
  read by every test that checks what the demo wrote (test_demo, test_demo_report, test_demo_organism,
  test_demo_deception); each such test carries `@pytest.mark.slow` (the demo loads the weights in a subprocess, so
  the session's real-weight watcher cannot see it).
- `grid_with_text`: a small probe grid with a text baseline, computed on planted data (fast).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import probes


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory):
    """`python -m app demo --quick` in a subprocess with every Python warning shown (PYTHONWARNINGS=default)."""
    out = tmp_path_factory.mktemp("demo")
    # one torch thread: on a shared CI runner, 2 OpenMP threads competing with other jobs spin for minutes
    env = {**os.environ, "PYTHONWARNINGS": "default", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    res = subprocess.run([sys.executable, "-m", "app", "demo", "--quick", "--out", str(out), "--threads", "1"],
                         env=env, capture_output=True, text=True, timeout=3600)
    assert res.returncode == 0, res.stderr[-3000:]
    return out, res.stdout, res.stderr


@pytest.fixture(scope="session")
def demo(demo_run):
    out = demo_run[0]
    return out, json.loads((out / "summary.json").read_text())


@pytest.fixture(scope="session")
def grid_with_text():
    """Label planted in the activations at latent_1 (layer 1 only) and in the words at 'resp_0'."""
    rng = np.random.default_rng(0)
    y, g = np.tile([0, 1], 30), np.repeat(np.arange(30), 2)
    pos = ["latent_0", "latent_1", "resp_0"]
    acts = rng.normal(size=(60, 2, 3, 6))
    acts[:, 1, 1] += 2.5 * (y - 0.5)[:, None]
    texts = [[[f"q{gi}"], [f"q{gi}"], [f"q{gi}", "lie" if yi else "truth"]] for yi, gi in zip(y, g)]
    grid = probes.sweep(acts, labels=y, groups=g, layers=[0, 1], positions=pos, Cs=(1.0,), n_permutations=10,
                        n_bootstrap=200, progress=False)
    return probes.text_baseline(grid, texts)
