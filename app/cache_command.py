"""`codi-lens cache`: cache a model's residual stream on prompts (or a task) into a store folder.

    codi-lens cache --model smollm2-135m --prompts "The capital of France is" "Hi" --layers 0,10-12 --out runs/c
    codi-lens cache --model smollm2-135m --prompts prompts.jsonl --positions tok_0,last --out runs/c
    codi-lens cache --model runs/codi-smol --task deception-arith --n 400 --out runs/c-codi

Every flag is checked before the model loads and before anything is written; a refusal names the flag. Several
processes: `accelerate launch --multi_gpu --num_processes N -m app cache ...` (GPUs), or on CPU
`ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes N -m app cache ...`: the processes split the
batches and write one store (`interp.ranks`); only process 0 prints.

    >>> parse_layers("0,5,10-12")
    [0, 5, 10, 11, 12]
    >>> parse_layers("2-0")
    Traceback (most recent call last):
    ...
    argcheck.errors.BadArgument: --layers '2-0': must be integers or ranges LO-HI with LO <= HI, ...
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import poslabels
from app.flags import parse_ints
from argcheck import BadArgument, check_int, check_out_folder

__all__ = ["cmd_cache", "parse_layers", "cache_prompts", "DEFAULT_CACHE_PROMPTS", "PROMPT_FILE_SUFFIXES"]

DEFAULT_CACHE_PROMPTS = [
    "The capital of France is",
    "Tom has 3 bags of 4 apples. He eats 2. How many are left?",
    "def add(a, b):\n    return",
    "The opposite of hot is",
]
PROMPT_FILE_SUFFIXES = (".jsonl", ".json", ".txt")  # a --prompts value ending so must be a file
_FLAGS = {"prompts": "--prompts", "layers": "--layers", "positions": "--positions", "batch_size": "--batch-size",
          "shard_size": "--shard-size", "out": "--out", "padding_side": "--padding-side",
          "max_new_tokens": "--max-new-tokens"}


def _as_file(item: str) -> Path | None:
    """The prompt file `item` names, or None when it is prompt text. A value ending in .jsonl/.json/.txt must be a
    file; a long text or one with line breaks is never tried as a path (it would raise "File name too long")."""
    if len(item) > 1024 or "\n" in item:
        return None
    path = Path(item).expanduser()
    try:
        exists = path.is_file()
    except OSError:  # e.g. a name longer than the file system allows
        exists = False
    if not exists and path.suffix.lower() in PROMPT_FILE_SUFFIXES:
        raise BadArgument("--prompts", item, "ends in .jsonl/.json/.txt but no such file exists",
                          "check the path; to cache that text itself, put it in a .txt file (one prompt per line)")
    return path if exists else None


def cache_prompts(items: list[str] | None) -> list:
    """--prompts values: a .txt file (one prompt per line), a .jsonl/.json file (dicts with "text", or strings), or
    the prompt text itself (`--prompts "first prompt" "second prompt"`); none: 4 built-in prompts.

    >>> cache_prompts(["The capital of France is", "Hi"])
    ['The capital of France is', 'Hi']
    >>> cache_prompts(["missing.jsonl"])
    Traceback (most recent call last):
    ...
    argcheck.errors.BadArgument: --prompts 'missing.jsonl': ends in .jsonl/.json/.txt but no such file exists. ...
    """
    if not items:
        return list(DEFAULT_CACHE_PROMPTS)
    prompts: list = []
    for item in items:
        path = _as_file(item)
        if path is None:
            prompts.append(item)
        elif path.suffix == ".jsonl":
            prompts += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        elif path.suffix == ".json":
            prompts += json.loads(path.read_text())
        else:
            prompts += [line for line in path.read_text().splitlines() if line.strip()]
    return prompts


def parse_layers(text: str) -> str | list[int]:
    """--layers: "all" or a comma list of layers and ranges low-high, e.g. "0,5,10-12" (see the module docstring)."""
    return "all" if str(text).strip() == "all" else parse_ints("--layers", text)


def _positions(text: str) -> str | list[str]:
    return "all" if text == "all" else [p.strip() for p in text.split(",")]


def _check_flags(args: argparse.Namespace) -> None:
    """The flags that need no model, checked before anything loads or is written."""
    check_int("--batch-size", args.batch_size, min=1)
    check_int("--shard-size", args.shard_size, min=1, none_ok=True)
    check_int("--n", args.n, min=1, none_ok=True)
    check_int("--max-new-tokens", args.max_new_tokens, min=2 if args.generate else 0)
    if args.out is not None:
        check_out_folder("--out", args.out)


def _device(args: argparse.Namespace) -> str | None:
    """--device, else this process's device under `accelerate launch` (each process on its own GPU)."""
    from interp.ranks import launch_device

    device = launch_device()
    return args.device or (None if device is None else str(device))


def _main_process() -> bool:
    from interp.ranks import Ranks

    return Ranks.current().main


def cmd_cache(args: argparse.Namespace) -> int:
    """Run `codi-lens cache`; an argument interp.cache refuses is reported under the flag that carried it."""
    try:
        return _cmd_cache(args)
    except BadArgument as err:
        base = err.name.split("[")[0]
        if base not in _FLAGS:
            raise
        raise BadArgument(_FLAGS[base], err.value, err.allowed, err.fix) from None


def _cmd_cache(args: argparse.Namespace) -> int:
    import numpy as np

    import interp

    _check_flags(args)
    if args.task or (Path(args.model).expanduser() / "codi_config.json").exists():
        return _cmd_cache_task(args)  # CODI checkpoints and task files/names (interp.codi_cache)
    positions, prompts, layers = _positions(args.positions), cache_prompts(args.prompts), parse_layers(args.layers)
    m = interp.load_model(args.model, dtype=args.dtype, device=_device(args))
    out = args.out or f"runs/cache-{m.name.replace('/', '-')}"
    t0 = time.perf_counter()
    c = interp.cache(m, prompts, layers=layers, positions=positions, batch_size=args.batch_size, out=out,
                     padding_side=args.padding_side, shard_size=args.shard_size, progress=_main_process())
    if not _main_process():
        return 0
    seconds = time.perf_counter() - t0
    size = sum(f.stat().st_size for f in Path(out).iterdir()) / 2**20
    print(f"{c!r}")
    print(f"cached {len(c)} prompts x {len(c.layers)} layers x {len(c.positions)} positions x {c.meta['d_model']} "
          f"({c.meta['dtype']}) in {seconds:.2f} s -> {out} ({size:.1f} MB, {c.meta['n_shards']} shard(s))")
    print(f"valid cells: {int(c.valid.sum())} of {c.valid.size} (samples have {c.valid.sum(1).min()}.."
          f"{c.valid.sum(1).max()} of the positions)")
    shown = sorted({c.layers[0], c.layers[len(c.layers) // 2], c.layers[-1]})
    tokens = [lab for lab in map(poslabels.parse, c.positions) if lab.kind == "token" and not lab.relative]
    last = "last" if "last" in c.positions or tokens else c.positions[0]  # `last` resolves from stored tok_*
    norms = {layer: np.linalg.norm(c.sel(layer=layer, position=last, allow_missing=True), axis=-1) for layer in shown}
    print(f"residual norm at position {last!r}: "
          + "  ".join(f"layer {k}: mean {v.mean():.2f}" for k, v in norms.items()))
    print(f"read it back: interp.load_cache({out!r}).sel(layer={shown[-1]}, position={last!r})")
    return 0


def _task_records(task: str, n: int | None, seed: int) -> list:
    path = Path(task).expanduser()
    if path.suffix in (".jsonl", ".json") or path.exists():
        if not path.exists():
            raise FileNotFoundError(f"task file {path} not found; pass a .jsonl/.json file or a task name.")
        text = path.read_text()
        rows = json.loads(text) if path.suffix == ".json" else [json.loads(x) for x in text.splitlines() if x.strip()]
        return rows[:n] if n else rows
    import probes.tasks

    return probes.tasks.load(task, n=n or 200, seed=seed)


def _cmd_cache_task(args: argparse.Namespace) -> int:
    import interp
    from app.model_spec import load_for_cache
    from basemodels.facts import is_codi
    from interp.codi_cache import codi_cache
    from interp.identity import summary_text
    from interp.templates import Template

    positions, layers = _positions(args.positions), parse_layers(args.layers)
    records = _task_records(args.task, args.n, args.seed) if args.task else cache_prompts(args.prompts)
    template = None
    if args.system or args.user or args.response:
        template = Template(system=args.system, user=args.user or "{text}", response=args.response)
    m = load_for_cache(args.model, device=_device(args))
    name = f"{m.config.base_model}-codi" if is_codi(m) else m.name
    out = args.out or f"runs/cache-{str(name).replace('/', '-')}"
    t0 = time.perf_counter()
    if is_codi(m):
        c = codi_cache(m, records, layers=layers, positions=positions, batch_size=args.batch_size, out=out,
                       generate=args.generate, max_new_tokens=args.max_new_tokens, template=template,
                       shard_size=args.shard_size, progress=_main_process())
    else:
        if template is not None:
            from interp.templates import as_records, render_all

            recs = as_records(records)
            records = [{**r, "text": x.prompt + (x.response or "")} for r, x in zip(recs, render_all(template, recs,
                                                                                                 m.tokenizer))]
        c = interp.cache(m, records, layers=layers, positions=positions, batch_size=args.batch_size, out=out,
                         shard_size=args.shard_size, progress=_main_process())
    if not _main_process():
        return 0
    print(f"{c!r}")
    print(f"cached {len(c)} samples x {len(c.layers)} layers x {len(c.positions)} positions in "
          f"{time.perf_counter() - t0:.2f} s -> {out}")
    extras = getattr(c, "extras", None) or {}
    if extras:
        print("latent views: "
              + ", ".join(f"{k} {tuple(v.shape)}" for k, v in extras.items() if k.startswith("latent")))
    if "generated_text" in c.samples:
        print(f"generated (first sample): {c.samples['generated_text'].iloc[0]!r}")
    print(summary_text(c))
    return 0
