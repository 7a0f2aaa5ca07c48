"""`codi-lens compare`: the same study (cache a task, probe sweep) on several models, one comparison report.

    >>> from app.compare import CompareConfig, run_compare
    >>> cfg = CompareConfig.load("examples/compare.toml")     # three real-weight models: minutes  # doctest: +SKIP
    >>> res = run_compare(cfg)                                                                     # doctest: +SKIP
    >>> res.rows[0]["best_latent_auroc"], res.report                                               # doctest: +SKIP

(`run_compare` below shows the same on a tiny random model, in seconds.)

The config file (TOML or YAML) names the task once and the models as a list; see examples/compare.toml:

    title = "Deception probes across scale"
    out = "runs/compare"
    [task]                        # probes.tasks.load(name, n=, seed=, **options)
    name = "deception-arith"
    n = 64
    placement = "before"
    [study]                       # optional; defaults below
    layer_stride = 2
    permutations = 20
    [[models]]
    model = "smollm2-135m"        # registry name, HF id or local folder
    name = "SmolLM2-135M"         # display name (optional)
    checkpoint = "runs/codi-smol" # optional CODI checkpoint of this base

Per model: with `checkpoint`, that CODI model; else `codi = "fresh"` (default) wraps the base in an untrained
CODI model (LoRA at its identity init, so the base weights are unchanged; the projection is random, so the
thoughts are untrained) to get the same positions (question tail, <bot>, thoughts, <eot>, response) for every
model; or `codi = "none"`: the plain model reads prompt + response as one text (positions `prompt[-k]`).
The report shows each model's heatmap and, across models, the best latent vs best response cell with its CI.
Every sweep gets the text-only baseline (`probes.text_baseline` over the tokens visible at each position,
`interp.textview`), and each model's row reports the white-box gain (probe AUROC - text AUROC, with its CI) at its
best latent cell and the largest gain over all cells: the cross-scale question is asked of the gain, not of an
AUROC the prompt text alone may reach (`text_baseline = false` in [study] skips it).
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import formats
from app.compare_table import model_row, summary_markdown

__all__ = ["CompareConfig", "ModelSpec", "CompareResult", "run_compare", "load_config", "summary_markdown"]

CODI_MODES = ("fresh", "none")


@dataclass
class ModelSpec:
    """One model of a comparison: `model` (name/folder/HF id), display `name`, optional CODI `checkpoint`.

    `codi`: "fresh" (an untrained CODI wrapper of the base) or "none" (the plain model); ignored with `checkpoint`.

    >>> ModelSpec("tiny-llama")
    ModelSpec(model='tiny-llama', name='tiny-llama', checkpoint=None, codi='fresh')
    >>> ModelSpec("tiny-llama", codi="lora")
    Traceback (most recent call last):
    ...
    ValueError: model 'tiny-llama': codi = 'lora'; use one of ('fresh', 'none') ('fresh': untrained CODI wrapper, ...
    """

    model: str
    name: str | None = None
    checkpoint: str | None = None
    codi: str = "fresh"

    def __post_init__(self) -> None:
        if self.codi not in CODI_MODES:
            raise ValueError(
                f"model {self.model!r}: codi = {self.codi!r}; use one of {CODI_MODES} "
                f"('fresh': untrained CODI wrapper, 'none': plain model), or give checkpoint ="
            )
        self.name = self.name or self.model


@dataclass
class CompareConfig:
    """A comparison study; `CompareConfig.load(path)` reads TOML (.toml) or YAML (.yaml/.yml) (or JSON).

    `from_dict` takes the file's layout: top-level title, out, task, models, and the other fields under "study".

    >>> cfg = CompareConfig.from_dict({"task": {"name": "deception-arith", "n": 32}, "study": {"layer_stride": 3},
    ...                                "models": [{"model": "tiny-llama"}, {"model": "tiny-gpt2", "codi": "none"}]})
    >>> cfg.layer_stride, [(m.name, m.codi) for m in cfg.models]
    (3, [('tiny-llama', 'fresh'), ('tiny-gpt2', 'none')])
    >>> CompareConfig.from_dict(cfg.to_dict()) == cfg
    True
    """

    models: list[ModelSpec]
    task: dict = field(
        default_factory=lambda: {"name": "deception-arith", "n": 64, "seed": 1, "placement": "before"}
    )
    title: str = "codi-lens: the same probe study across models"
    out: str = "runs/compare"
    layer_stride: int = 2
    positions: list[str] | None = None  # default: app.demo.CACHE_POSITIONS (CODI) / PLAIN_POSITIONS
    target: str = "label"
    method: str = "logreg"
    folds: int = 5
    permutations: int = 20
    Cs: list[float] | None = None  # logistic C grid (default probes.DEFAULT_CS; 3 values: 2.5x faster)
    batch_size: int = 8
    seed: int = 0
    text_baseline: bool = True  # text-only baseline + white-box gain beside every cell (binary targets)

    def __post_init__(self) -> None:
        if not self.models:
            raise ValueError(
                'the config names no models: add [[models]] entries with model = "<name or folder>"'
            )
        self.models = [m if isinstance(m, ModelSpec) else ModelSpec(**m) for m in self.models]
        names = [m.name for m in self.models]
        if len(set(names)) != len(names):
            raise ValueError(
                f"model display names repeat ({names}); give each [[models]] entry its own name ="
            )
        if "name" not in self.task:
            raise ValueError('[task] needs name = (a probes task like "deception-arith" or a .jsonl file)')

    @classmethod
    def from_dict(cls, d: dict) -> CompareConfig:
        d = dict(d)
        study = d.pop("study", {}) or {}
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted((set(d) | set(study)) - fields)
        if unknown:
            raise ValueError(
                f"unknown config key(s) {unknown}; top-level keys: title, out, task, models, study; "
                f"[study] keys: {sorted(fields - {'title', 'out', 'task', 'models'})}"
            )
        models = d.pop("models", None)
        if not isinstance(models, list):
            raise ValueError("the config needs a list of models: [[models]] entries (TOML) or models: (YAML)")
        bad = [m for m in models if not isinstance(m, dict) or "model" not in m]
        if bad:
            raise ValueError(f'every models entry needs model = "<name or folder>"; got {bad[0]!r}')
        unknown_m = sorted({k for m in models for k in m} - {f.name for f in dataclasses.fields(ModelSpec)})
        if unknown_m:
            raise ValueError(f"unknown models key(s) {unknown_m}; use model, name, checkpoint, codi")
        return cls(models=[ModelSpec(**m) for m in models], **d, **study)

    @classmethod
    def load(cls, path: str | Path) -> CompareConfig:
        return cls.from_dict(load_config(path))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def load_config(path: str | Path) -> dict:
    """The raw dict of a .toml / .yaml / .yml / .json config file.

    >>> import tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> path = Path(tmp.name) / "c.toml"
    >>> _ = path.write_text('[task]\\nname = "deception-arith"\\n[[models]]\\nmodel = "tiny-llama"\\n')
    >>> load_config(path)
    {'task': {'name': 'deception-arith'}, 'models': [{'model': 'tiny-llama'}]}
    >>> tmp.cleanup()
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config {path} not found; see examples/compare.toml for the format")
    text = path.read_text()
    if path.suffix == ".toml":
        import tomllib

        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            raise ValueError(f"{path} is not valid TOML: {err}") from None
    if path.suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise ValueError(
                f"{path}: reading YAML needs PyYAML (pip install pyyaml), or write the config as TOML"
            ) from None
        d = yaml.safe_load(text)
        if not isinstance(d, dict):
            raise ValueError(f"{path}: the YAML file must hold a mapping (title, out, task, models, study)")
        return d
    if path.suffix == ".json":
        return json.loads(text)
    raise ValueError(f"config {path}: use a .toml, .yaml/.yml or .json file")


@dataclass
class CompareResult:
    """What `run_compare` made: the report path, one row per model (`app.compare_table.model_row`), the grids by
    display name, the wall time (see `run_compare`'s example)."""

    report: Path
    rows: list[dict]
    grids: dict = field(default_factory=dict)
    seconds: float = 0.0


PLAIN_POSITIONS = [f"prompt[-{k}]" for k in range(8, 0, -1)]


def _load(spec: ModelSpec):
    """(model for interp.cache, how it was made, n_layers)."""
    import interp
    from codi import CODIConfig, CODIModel

    if spec.checkpoint:
        folder = Path(spec.checkpoint).expanduser()
        if not (folder / "codi_config.json").exists():
            raise FileNotFoundError(
                f"model {spec.name!r}: checkpoint {folder} has no codi_config.json; pass a folder "
                f"written by `codi-lens train`"
            )
        cm = CODIModel.from_pretrained(folder).eval()
        return cm, f"CODI checkpoint {folder}"
    if spec.codi == "fresh":
        cm = CODIModel.from_config(CODIConfig(base_model=spec.model, num_latents=6, lora_r=8)).eval()
        return cm, "untrained CODI wrapper (base weights unchanged, random projection)"
    return interp.load_model(spec.model), "plain model (prompt + response as one text)"


def _plain_records(task) -> list[dict]:
    """Prompt + response as one text, for a plain model (the response tokens end the text)."""
    recs = []
    for s in task.records():
        resp = s.get("response")
        recs.append({**s, "text": s["text"] + ("\n" + resp if resp else "")})
    return recs


def run_compare(
    cfg: CompareConfig, report: str | Path | None = None, png: str | Path | None = None, verbose: bool = True
) -> CompareResult:
    """Cache the task on every model, sweep probes, write `<out>/compare.html` (or `report`) + summary files.

    `png`: also a screenshot of the comparison figure alone (needs headless Chromium; skipped with a message).

    >>> import tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> cfg = CompareConfig(models=[ModelSpec("tiny-llama")], task={"name": "deception-arith", "n": 16},
    ...                     out=tmp.name, positions=["q[-1]", "latent_0", "latent_5", "resp_0"], folds=2,
    ...                     permutations=0, Cs=[1.0])
    >>> res = run_compare(cfg, verbose=False)                 # a tiny random model: a few seconds
    >>> row = res.rows[0]
    >>> gain = row["best_latent_auroc"] - row["latent_text_auroc"]          # the white-box gain at the best latent
    >>> row["model"], row["n_layers"], row["best_latent_cell"], abs(row["latent_gain"] - gain) < 1e-12
    ('tiny-llama', 2, 'L...', True)
    >>> res.report.name, sorted(f.name for f in res.report.parent.iterdir())
    ('compare.html', ['compare.html', 'summary.json', 'summary.md', 'tiny-llama'])
    >>> tmp.cleanup()
    """
    import interp
    import probes
    import viz
    from app.demo import CACHE_POSITIONS, layer_subset
    from basemodels.facts import is_codi

    t0 = time.perf_counter()
    out = Path(cfg.out)
    task_kw = {k: v for k, v in cfg.task.items() if k != "name"}
    task = probes.tasks.load(cfg.task["name"], **task_kw)  # bad task settings fail before any model loads
    grids, rows = {}, []
    for i, spec in enumerate(cfg.models, start=1):
        say = print if verbose else (lambda *a, **k: None)
        say(
            f"[compare {i}/{len(cfg.models)} +{time.perf_counter() - t0:.0f}s] {spec.name}: "
            f"loading {spec.model}"
        )
        model, how = _load(spec)
        codi = is_codi(model)
        n_layers = model.n_layers
        layers = layer_subset(n_layers, cfg.layer_stride)
        positions = cfg.positions or (CACHE_POSITIONS if codi else PLAIN_POSITIONS)
        folder = out / spec.name.replace("/", "-")
        t1 = time.perf_counter()
        c = interp.cache(
            model,
            task if codi else _plain_records(task),
            layers=layers,
            positions=positions,
            batch_size=cfg.batch_size,
            out=folder / "cache",
            progress=verbose,
        )
        t2 = time.perf_counter()
        grid = probes.sweep(
            c,
            target=cfg.target,
            method=cfg.method,
            folds=cfg.folds,
            chunk=32,
            Cs=tuple(cfg.Cs) if cfg.Cs else None,
            n_permutations=cfg.permutations,
            n_bootstrap=500,
            seed=cfg.seed,
            progress=verbose,
        )
        if cfg.text_baseline and cfg.method != "ridge" and "auroc" in grid.metrics:
            from interp.textview import visible_tokens

            grid = probes.text_baseline(grid, visible_tokens(c, model))
        t3 = time.perf_counter()
        grid.config.update(model=spec.name, n_layers=n_layers, how=how)
        grid.save(folder / "grid")
        grids[spec.name] = grid
        rows.append(model_row(spec.name, how, grid, t2 - t1, t3 - t2))
        r = rows[-1]
        say(
            f"  {spec.name}: {n_layers} layers, cached in {t2 - t1:.0f}s, swept in {t3 - t2:.0f}s; best "
            + ", ".join(
                f"{k} {r[f'best_{k}_auroc']:.3f} [{r[f'best_{k}_lo']:.3f}, {r[f'best_{k}_hi']:.3f}]"
                for k in ("latent", "response")
                if f"best_{k}_auroc" in r
            )
            + (f"; white-box gain at the best latent {r['latent_gain']:+.3f} [{r['latent_gain_lo']:+.3f}, "
               f"{r['latent_gain_hi']:+.3f}] (text-only {r['latent_text_auroc']:.3f})" if "latent_gain" in r else "")
        )
        del model, c
    md = summary_markdown(rows, cfg)
    out.mkdir(parents=True, exist_ok=True)
    formats.atomic_write_text(out / "summary.md", md)
    formats.atomic_write_text(out / "summary.json",
                              json.dumps({"config": cfg.to_dict(), "rows": rows}, indent=1, default=float))
    names = list(grids)
    path = viz.report(
        list(grids.values()),
        out=report or out / "compare.html",
        title=cfg.title,
        names=names,
        extra_sections=[("Summary table", md), ("Config", json.dumps(cfg.to_dict(), indent=1))],
    )
    if png is not None:
        _compare_png(list(grids.values()), names, cfg.title, Path(png), say)
    seconds = time.perf_counter() - t0
    say(md)
    say(f"compare finished in {seconds / 60:.1f} min; report: {path}")
    return CompareResult(report=path, rows=rows, grids=grids, seconds=seconds)


def _compare_png(grids: list, names: list[str], title: str, png: Path, say) -> Path | None:
    """Screenshot of the comparison figure alone (a small temporary HTML page drawn by headless Chromium)."""
    import tempfile

    import viz

    if viz.find_browser() is None:
        say(f"PNG skipped: {viz.browser.no_browser_message()}")
        return None
    fig = viz.compare(grids, names=names, title=title)
    with tempfile.TemporaryDirectory(prefix="codi-lens-compare-") as tmp:
        page = Path(tmp) / "compare.html"
        fig.write_html(page, include_plotlyjs="inline", full_html=True)
        width, height = int(fig.layout.width or 1000) + 40, int(fig.layout.height or 820) + 40
        shot = viz.browser.screenshot(page, png, window=(width, height))
    say(f"wrote {shot}")
    return shot
