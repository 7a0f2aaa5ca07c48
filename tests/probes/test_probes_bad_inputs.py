"""Bad inputs to probes: the sweep and its friends (text_baseline, transfer, pick_best), and task files. Each is
refused before any fitting with the expected error type and a message naming the argument (or the file and line);
the working folder is unchanged (`refused`, tests/conftest.py). A case is (id, call(t, d), error, named, prep(t)).
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

import probes
from probes.tasks.files import load_jsonl, load_liars_bench_csv


@pytest.fixture(scope="module")
def d():
    rng = np.random.default_rng(0)
    y, g = np.tile([0, 1], 20), np.repeat(np.arange(20), 2)
    X = rng.normal(size=(40, 1, 2, 8)) + y[:, None, None, None]
    grid = probes.sweep(X, labels=y, groups=g, n_permutations=0, n_bootstrap=20, progress=False)
    return SimpleNamespace(X=X, y=y, g=g, grid=grid, v=np.arange(40.0))


def sweep(**kw):
    def call(t, d):
        args = {"labels": d.y, "groups": d.g, "n_permutations": 0, "progress": False, **kw}
        return probes.sweep(args.pop("data", d.X), **args)
    return call


def transfer(**kw):
    return lambda t, d: probes.transfer(d.X, d.y, d.g, d.X, d.y, d.g, **kw)


def write(name: str, text: bytes):
    return lambda t: (t / name).write_bytes(text)


def line(label, group='"q0"', text='"a"') -> bytes:
    return f'{{"text": {text}, "label": {label}, "group": {group}}}\n'.encode()


OK = line(0) + line(1, '"q1"')
V, K = ValueError, KeyError
CASES = [
    # ---- probes.sweep: arguments checked before any fit
    ("sweep-folds-1", sweep(folds=1), V, "folds=1"),
    ("sweep-folds-0", sweep(folds=0), V, "folds=0"),
    ("sweep-folds-text", sweep(folds="5"), V, "folds='5'"),
    ("sweep-folds-float", sweep(folds=2.5), V, "folds=2.5"),
    ("sweep-folds-above-groups", sweep(folds=30), V, "folds=30"),
    ("sweep-permutations-negative", sweep(n_permutations=-1), V, "n_permutations=-1"),
    ("sweep-permutations-float", sweep(n_permutations=1.5), V, "n_permutations=1.5"),
    ("sweep-bootstrap-0", sweep(n_bootstrap=0), V, "n_bootstrap=0"),
    ("sweep-seed-negative", sweep(seed=-1), V, "seed=-1"),
    ("sweep-seed-text", sweep(seed="0"), V, "seed='0'"),
    ("sweep-method-unknown", sweep(method="svm"), V, "method='svm'"),
    ("sweep-method-case", sweep(method="Logreg"), V, "method='Logreg'"),
    ("sweep-target-empty", sweep(target=""), V, "target=''"),
    ("sweep-target-int", sweep(target=5), V, "target=5"),
    ("sweep-Cs-empty", sweep(Cs=[]), V, "Cs=[]"),
    ("sweep-Cs-zero", sweep(Cs=[1.0, 0]), V, "Cs[1]=0"),
    ("sweep-Cs-scalar", sweep(Cs=1.0), V, "Cs=1.0"),
    ("sweep-inner-folds-1", sweep(inner_folds=1), V, "inner_folds=1"),
    ("sweep-test-size-0", sweep(test_size=0), V, "test_size=0"),
    ("sweep-test-size-1", sweep(test_size=1.0), V, "test_size=1.0"),
    ("sweep-chunk-0", sweep(chunk=0), V, "chunk=0"),
    ("sweep-tol-0", sweep(tol=0), V, "tol=0"),
    ("sweep-max-iter-0", sweep(max_iter=0), V, "max_iter=0"),
    ("sweep-progress-text", sweep(progress="yes"), V, "progress='yes'"),
    ("sweep-data-none", sweep(data=None), V, "data=None"),
    ("sweep-data-path", sweep(data="runs/cache"), V, "data='runs/cache'"),
    ("sweep-labels-three-values", lambda t, d: probes.sweep(d.X, labels=d.y * 2 + d.g % 2, groups=d.g,
                                                            progress=False), V, "binary 0/1"),
    ("sweep-labels-nan", lambda t, d: probes.sweep(d.X, labels=np.where(d.y, np.nan, 0.0), groups=d.g,
                                                   progress=False), V, "NaN"),
    ("sweep-labels-one-class", lambda t, d: probes.sweep(d.X, labels=np.zeros(40), groups=d.g, progress=False), V,
     "one class only"),
    ("sweep-ridge-constant", lambda t, d: probes.sweep(d.X, labels=np.full(40, 3.0), groups=d.g, method="ridge",
                                                       progress=False), V, "labels="),
    ("sweep-labels-missing", lambda t, d: probes.sweep(d.X, groups=d.g, progress=False), V, "labels="),
    ("sweep-groups-missing", lambda t, d: probes.sweep(d.X, labels=d.y, progress=False), V, "groups="),
    ("sweep-groups-none-values", lambda t, d: probes.sweep(d.X, labels=d.y, groups=[None] * 40, progress=False), V,
     "groups contain missing values"),
    ("sweep-length-mismatch", lambda t, d: probes.sweep(d.X, labels=d.y[:-2], groups=d.g[:-2], progress=False), V,
     "mismatched sample counts"),
    ("sweep-duplicate-across-groups", lambda t, d: probes.sweep(np.concatenate([d.X, d.X[:1]]),
                                                                labels=np.append(d.y, d.y[0]),
                                                                groups=np.append(d.g, 99), progress=False), V,
     "identical activations at every cell"),
    ("sweep-activations-nan", lambda t, d: probes.sweep(np.where(d.X > 2.5, np.nan, d.X), labels=d.y, groups=d.g,
                                                        progress=False), V, "NaN/inf activations"),
    ("sweep-shape-5d", lambda t, d: probes.sweep(d.X[..., None], labels=d.y, groups=d.g, progress=False), V,
     "activations have shape"),
    ("sweep-axis-names", lambda t, d: probes.sweep(d.X, labels=d.y, groups=d.g, positions=["a"], progress=False), V,
     "positions="),
    # ---- text_baseline, transfer, pick_best
    ("text-grid-none", lambda t, d: probes.text_baseline(None, []), V, "grid=None"),
    ("text-texts-string", lambda t, d: probes.text_baseline(d.grid, "tokens"), V, "texts='tokens'"),
    ("text-threshold-above-1", lambda t, d: probes.text_baseline(d.grid, [[["a"]] * 2] * 40, threshold=2), V,
     "threshold=2"),
    ("text-permutations-negative", lambda t, d: probes.text_baseline(d.grid, [[["a"]] * 2] * 40, n_permutations=-1),
     V, "n_permutations=-1"),
    ("text-wrong-length", lambda t, d: probes.text_baseline(d.grid, [[["a"]] * 2] * 3), V, "texts has 3 samples"),
    ("text-one-string-per-cell", lambda t, d: probes.text_baseline(d.grid, [["a b", "c"]] * 40), TypeError,
     "texts[0][0] is one string"),
    ("transfer-Cs-zero", transfer(Cs=[0.0]), V, "Cs[0]=0.0"),
    ("transfer-inner-folds-1", transfer(inner_folds=1), V, "inner_folds=1"),
    ("transfer-bootstrap-0", transfer(n_bootstrap=0), V, "n_bootstrap=0"),
    ("transfer-seed-negative", transfer(seed=-3), V, "seed=-3"),
    ("transfer-layer-mismatch", lambda t, d: probes.transfer(d.X, d.y, d.g, d.X[:, :, :1], d.y, d.g), V,
     "the train set has positions"),
    ("pick-best-not-a-grid", lambda t, d: probes.pick_best({"auroc": 1}), V, "grid="),
    ("pick-best-unknown-select", lambda t, d: probes.pick_best(d.grid, select="auc"), V, "select='auc'"),
    ("pick-best-no-test", lambda t, d: probes.pick_best(d.grid), V, "report='test_auroc'"),
    # ---- task files and names
    ("task-unknown-name", lambda t, d: probes.tasks.load("deception"), K, "unknown task 'deception'"),
    ("task-n-0", lambda t, d: probes.tasks.load("deception-arith", n=0), V, "n=0"),
    ("task-n-text", lambda t, d: probes.tasks.load("deception-arith", n="8"), V, "n='8'"),
    ("task-seed-negative", lambda t, d: probes.tasks.load("deception-arith", n=8, seed=-1), V, "seed=-1"),
    ("task-name-none", lambda t, d: probes.tasks.load(None), V, "name=None"),
    ("task-file-missing", lambda t, d: probes.tasks.load(str(t / "nope.jsonl")), V, "nope.jsonl"),
    ("task-label-2-binary", lambda t, d: load_jsonl(t / "t.jsonl", labels="binary"), V, "t.jsonl:2: label 2",
     write("t.jsonl", line(0) + line(2))),
    ("task-label-half-binary", lambda t, d: load_jsonl(t / "t.jsonl", labels="binary"), V, "t.jsonl:3: label 0.5",
     write("t.jsonl", OK + line(0.5))),
    ("task-label-2-among-words", lambda t, d: load_jsonl(t / "t.jsonl"), V, "t.jsonl:3: label 2",
     write("t.jsonl", line('"honest"') + line('"deceptive"') + line(2))),
    ("task-label-word-unknown", lambda t, d: load_jsonl(t / "t.jsonl"), V, "t.jsonl:2: label 'maybe'",
     write("t.jsonl", line("true") + line('"maybe"'))),
    ("task-label-nan-numeric", lambda t, d: load_jsonl(t / "t.jsonl", labels="numeric"), V, "t.jsonl:2: label nan",
     write("t.jsonl", line(1.5) + line("NaN"))),
    ("task-labels-kind", lambda t, d: load_jsonl(t / "t.jsonl", labels="ternary"), V, "labels='ternary'",
     write("t.jsonl", OK)),
    ("task-not-utf8", lambda t, d: load_jsonl(t / "t.jsonl"), V, "t.jsonl:3: not UTF-8",
     write("t.jsonl", OK + b'{"text": "\xe9t\xe9", "label": 1, "group": "q2"}\n')),
    ("task-not-json", lambda t, d: load_jsonl(t / "t.jsonl"), V, "t.jsonl:2: not valid JSON",
     write("t.jsonl", line(0) + b"{text: a}\n")),
    ("task-line-not-object", lambda t, d: load_jsonl(t / "t.jsonl"), V, "t.jsonl:1: a JSON list",
     write("t.jsonl", b'["a", 1, "q0"]\n')),
    ("task-missing-group", lambda t, d: load_jsonl(t / "t.jsonl"), V, "t.jsonl:1: missing key 'group'",
     write("t.jsonl", b'{"text": "a", "label": 1}\n')),
    ("task-group-null", lambda t, d: load_jsonl(t / "t.jsonl"), V, "t.jsonl:2: text must be a string",
     write("t.jsonl", line(0) + line(1, "null"))),
    ("task-text-not-string", lambda t, d: load_jsonl(t / "t.jsonl"), V, "t.jsonl:1: text must be a string",
     write("t.jsonl", line(0, text="7"))),
    ("task-duplicate-id", lambda t, d: load_jsonl(t / "t.jsonl"), V, "t.jsonl:2: id 'x' appears twice",
     write("t.jsonl", b'{"id": "x", "text": "a", "label": 0, "group": 1}\n'
                      b'{"id": "x", "text": "b", "label": 1, "group": 2}\n')),
    ("task-empty-file", lambda t, d: load_jsonl(t / "t.jsonl"), V, "t.jsonl: no samples", write("t.jsonl", b"\n\n")),
    ("task-label-key-empty", lambda t, d: load_jsonl(t / "t.jsonl", label_key=""), V, "label_key=''",
     write("t.jsonl", OK)),
    ("csv-no-label-column", lambda t, d: load_liars_bench_csv(t / "l.csv"), V, "could not find a label column",
     write("l.csv", b"text,score\nhello,1\n")),
    ("csv-not-utf8", lambda t, d: load_liars_bench_csv(t / "l.csv"), V, "l.csv:2: not UTF-8",
     write("l.csv", b"text,label\n\xff\xfe,1\n")),
    ("csv-label-not-binary", lambda t, d: load_liars_bench_csv(t / "l.csv"), V, "label '7' is not binary",
     write("l.csv", b"text,label\nhello,true\nbye,7\n")),
    ("csv-missing", lambda t, d: load_liars_bench_csv(t / "nope.csv"), V, "nope.csv"),
]


@pytest.mark.parametrize("call, error, named, prep",
                         [pytest.param(*(list(x[1:]) + [None] * (5 - len(x))), id=x[0]) for x in CASES])
def test_refused(refused, tmp_path, d, call, error, named, prep):
    if prep is not None:
        prep(tmp_path)
    refused(lambda: call(tmp_path, d), error, named)


def test_binary_and_numeric_task_files_still_load(tmp_path):
    (tmp_path / "b.jsonl").write_bytes(line('"honest"') + line("true", '"q1"'))
    (tmp_path / "n.jsonl").write_bytes(line(0) + line(2.5, '"q1"'))
    assert load_jsonl(tmp_path / "b.jsonl").labels.tolist() == [0, 1]
    task = load_jsonl(tmp_path / "n.jsonl")
    assert task.labels.tolist() == [0, 2.5] and task.config["labels"] == "numeric" and not math.isnan(task.labels[1])
