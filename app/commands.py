"""What each `codi-lens` subcommand does: one `cmd_<name>(args)` function per command.

The parser that routes to them is in `app/cli.py`. Heavy imports happen inside each function so
`codi-lens --help` stays fast.
"""

from __future__ import annotations

import argparse

import poslabels


def cmd_models(args: argparse.Namespace) -> int:
    from interp.models import cache_home, model_info

    print(f"cache: {cache_home() / 'models'}")
    print(f"{'name':<20} {'kind':<13} {'layers':>6} {'d_model':>7} {'size':>8}  present  description")
    for r in model_info():
        size = f"{r['size_mb']} MB" if r["size_mb"] else "-"
        print(f"{r['name']:<20} {r['kind']:<13} {r['n_layers']:>6} {r['d_model']:>7} {size:>8}  "
              f"{'yes' if r['present'] else 'no':<7}  {r['description']}")
    from app.organism_commands import cmd_organism_list

    print("\nmodel organisms (codi.organisms.load(name); codi-lens organism study NAME):")
    return cmd_organism_list(args)


def _codi_problems(args: argparse.Namespace) -> list:
    from codi import data

    if args.data and args.arith:
        raise ValueError("pass either --data FILE or --arith N, not both")
    if args.data:
        return data.load(args.data)
    lo, _, hi = args.arith_steps.partition("-")
    return data.arithmetic(args.arith or 2000, steps=(int(lo), int(hi or lo)), seed=args.data_seed)


def cmd_train(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from codi import data
    from codi.config import CODIConfig
    from codi.model import CODIModel
    from codi.train import TrainConfig, train, train_dir

    problems = _codi_problems(args)
    heldout = []
    if args.test_frac > 0:
        problems, heldout = data.split(problems, test_frac=args.test_frac, seed=args.data_seed)
    codi_kw = json.loads(Path(args.codi_config).read_text()) if args.codi_config else {"base_model": args.base}
    for item in args.set:
        key, _, val = item.partition("=")
        try:
            codi_kw[key] = json.loads(val)  # numbers, true/false/null, lists
        except json.JSONDecodeError:
            codi_kw[key] = val  # plain strings
    tcfg = TrainConfig.load(args.config) if args.config else TrainConfig()
    over = {k: v for k, v in [("lr", args.lr), ("epochs", args.epochs), ("max_steps", args.max_steps),
                              ("batch_size", args.batch_size), ("micro_batch_size", args.micro_batch_size),
                              ("checkpoint_every", args.checkpoint_every), ("seed", args.seed)] if v is not None}
    if args.no_progress:
        over["progress"] = False
    cm = CODIModel.from_config(CODIConfig.from_dict(codi_kw))
    rec = train(cm, problems, args.out, config=tcfg, resume=args.resume, **over)
    if heldout:
        print(f"held-out problems: {data.save(heldout, train_dir(args.out) / 'heldout.jsonl')}")
    last = rec.losses[-1] if rec.losses else {}
    print(f"trained {rec.step} steps -> {args.out}; last loss " + ", ".join(f"{k}={last.get(k, float('nan')):.4f}"
          for k in ("total", "teacher_ce", "student_ce", "distill")) + f"; rollbacks: "
          f"{sum(e['kind'] == 'rollback' for e in rec.events)}")
    return 0


DEFAULT_CACHE_PROMPTS = [
    "The capital of France is",
    "Tom has 3 bags of 4 apples. He eats 2. How many are left?",
    "def add(a, b):\n    return",
    "The opposite of hot is",
]


def _cache_prompts(items: list[str] | None) -> list:
    """--prompts values: a .txt file (one prompt per line), a .jsonl/.json file (dicts with "text" or strings),
    or the prompt text itself."""
    import json
    from pathlib import Path

    if not items:
        return list(DEFAULT_CACHE_PROMPTS)
    prompts: list = []
    for item in items:
        path = Path(item)
        if not path.is_file():
            prompts.append(item)
        elif path.suffix == ".jsonl":
            prompts += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        elif path.suffix == ".json":
            prompts += json.loads(path.read_text())
        else:
            prompts += [line for line in path.read_text().splitlines() if line.strip()]
    return prompts


def _parse_layers(text: str) -> str | list[int]:
    if text == "all":
        return "all"
    layers: list[int] = []
    for part in text.split(","):
        lo, dash, hi = part.strip().partition("-")
        layers += list(range(int(lo), int(hi) + 1)) if dash else [int(lo)]
    return layers


def cmd_cache(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    import numpy as np

    import interp

    if args.task or (Path(args.model).expanduser() / "codi_config.json").exists():
        return _cmd_cache_task(args)  # CODI checkpoints and task files/names (interp.codi_cache)
    positions = "all" if args.positions == "all" else [p.strip() for p in args.positions.split(",")]
    prompts = _cache_prompts(args.prompts)
    layers = _parse_layers(args.layers)
    m = interp.load_model(args.model, dtype=args.dtype, device=args.device)
    out = args.out or f"runs/cache-{m.name.replace('/', '-')}"
    t0 = time.perf_counter()
    c = interp.cache(m, prompts, layers=layers, positions=positions, batch_size=args.batch_size, out=out,
                     padding_side=args.padding_side)
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
    import json
    from pathlib import Path

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
    import time

    import interp
    from app.model_spec import load_for_cache
    from interp.codi_cache import codi_cache, is_codi
    from interp.identity import summary_text
    from interp.templates import Template

    positions = "all" if args.positions == "all" else [p.strip() for p in args.positions.split(",")]
    layers = _parse_layers(args.layers)
    records = _task_records(args.task, args.n, args.seed) if args.task else _cache_prompts(args.prompts)
    template = None
    if args.system or args.user or args.response:
        template = Template(system=args.system, user=args.user or "{text}", response=args.response)
    m = load_for_cache(args.model)
    name = f"{m.config.base_model}-codi" if is_codi(m) else m.name
    out = args.out or f"runs/cache-{str(name).replace('/', '-')}"
    t0 = time.perf_counter()
    if is_codi(m):
        c = codi_cache(m, records, layers=layers, positions=positions, batch_size=args.batch_size, out=out,
                       generate=args.generate, max_new_tokens=args.max_new_tokens, template=template)
    else:
        if template is not None:
            from interp.templates import as_records, render_all

            recs = as_records(records)
            records = [{**r, "text": x.prompt + (x.response or "")} for r, x in zip(recs, render_all(template, recs,
                                                                                                 m.tokenizer))]
        c = interp.cache(m, records, layers=layers, positions=positions, batch_size=args.batch_size, out=out)
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


def cmd_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    import probes
    import viz

    folders = [Path(f) for f in args.probe]
    missing = [str(f) for f in folders if not (f / "grid.json").exists()]
    if missing:
        raise FileNotFoundError(f"no grid.json in {missing}; pass folders written by grid.save (probe or patch grids)")
    if args.name and len(args.name) != len(folders):
        raise ValueError(f"got {len(folders)} --probe folders but {len(args.name)} --name values: one each")
    grids = [probes.load_grid(f) for f in folders]  # a probe sweep or any result grid (ablation, patching, ...)
    lens = viz.LensTable.load(args.lens) if args.lens else None
    out = viz.report(grids, out=args.out, title=args.title, names=args.name, lens=lens, metric=args.metric)
    print(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MB, self-contained: opens in any browser, offline)")
    if args.png:
        if viz.find_browser() is None:
            print(f"PNG skipped: {viz.browser.no_browser_message()}")
        else:
            print(f"wrote {viz.export_png(out, args.png)}")
    return 0


def cmd_probe(args: argparse.Namespace) -> int:
    from pathlib import Path

    import probes
    try:
        from interp import load_cache
    except ImportError as err:  # the cache reader is interp's; probes itself does not need it
        raise ValueError(f"interp.load_cache is not available ({err}); pass arrays to probes.sweep in Python") from err

    out = Path(args.out)
    if (out / "grid.json").exists() and not args.overwrite:
        raise ValueError(f"{out}/grid.json exists; pass --overwrite or another --out")
    cache = load_cache(args.cache)
    layers = [int(x) for x in args.layers.split(",")] if args.layers else None
    positions = args.positions.split(",") if args.positions else None
    grid = probes.sweep(cache, target=args.target, method=args.method, layers=layers, positions=positions,
                        folds=args.folds, Cs=tuple(args.C) if args.C else None, n_permutations=args.permutations,
                        test_size=args.test_size, seed=args.seed)
    grid.save(out)
    print(grid.summary())
    print(f"wrote {out}/grid.json, table.csv, scores.safetensors")
    return 0


def _patch_model(args: argparse.Namespace):
    """(CODI model, model to run (merged with --merge), problems) for `codi-lens patch`."""
    from codi.model import CODIModel

    if (args.model is None) == (args.organism is None):
        raise ValueError("pass exactly one of --model RUN_FOLDER or --organism NAME (codi-lens organism list)")
    if args.organism is not None:
        import codi.organisms as organisms

        if args.organism not in organisms.available():
            raise ValueError(f"--organism {args.organism!r}: not shipped; choose one of {organisms.available()}")
        if args.data or args.arith:
            raise ValueError("--organism brings its own problems; drop --data / --arith")
        cm, make = organisms.load(args.organism)
        problems = make(args.n, seed=args.data_seed)
    else:
        cm = CODIModel.from_pretrained(args.model)
        problems = _codi_problems(args)
    cm = cm.eval()
    model = cm.merge().eval() if args.merge else cm
    return cm, model, problems


def _patch_curve(args: argparse.Namespace, model, problems, target) -> int:
    import formats
    from interp import interventions

    fn = interventions.necessity if args.study == "necessity" else interventions.early_exit
    c = fn(model, problems)
    target.parent.mkdir(parents=True, exist_ok=True)
    formats.atomic_write_json(target, c.to_dict())
    print(c.table().to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    print(f"wrote {target}")
    return 0


def _patch_pairs(args: argparse.Namespace, cm, problems) -> tuple[list, list]:
    """(clean, corrupt): the organism's pairs that differ from --hop on, or changed-number arithmetic pairs."""
    from interp import interventions

    if args.organism is not None:
        import codi.organisms as organisms

        return organisms.pairs(args.organism, args.n, seed=args.data_seed, step=args.hop)
    clean, corrupt = interventions.changed_number_pairs(problems, cm.tokenizer, seed=args.data_seed)
    if not clean:
        raise ValueError("no changed-number pairs could be made from these problems (they need GSM8k-Aug cot steps)")
    return clean, corrupt


def cmd_patch(args: argparse.Namespace) -> int:
    from pathlib import Path

    from interp import interventions

    if args.study == "ablate" and args.mode not in interventions.MODES:
        raise ValueError(f"--mode {args.mode!r}: choose one of {interventions.MODES}")
    words = [w.strip() for w in args.layers.split(",")]
    layers = "all" if args.layers == "all" else (["input"] if "input" in words else []) + (
        _parse_layers(",".join(w for w in words if w != "input")) if any(w != "input" for w in words) else [])
    positions = args.positions or ("latents" if args.study == "ablate" else "all")
    if positions not in ("all", "latents"):
        positions = [p.strip() for p in positions.split(",")]
    for flag in ("verify_top", "verify_sample"):
        if getattr(args, flag) < 0:
            raise ValueError(f"--{flag.replace('_', '-')} {getattr(args, flag)}: give a count >= 0")
    out = Path(args.out)
    curve = args.study in ("necessity", "early-exit")
    target = out / ("curve.json" if curve else "grid.json")
    if target.exists() and not args.overwrite:
        raise ValueError(f"{target} exists; pass --overwrite or another --out")
    cm, model, problems = _patch_model(args)
    if curve:
        return _patch_curve(args, model, problems, target)
    if args.study == "ablate":
        grid = interventions.ablate(model, problems, positions=positions, layers=layers, mode=args.mode,
                               together=args.together, max_rows=args.max_rows)
        metric = "delta_accuracy"
    else:
        clean, corrupt = _patch_pairs(args, cm, problems)
        if args.study == "attribute":
            grid = interventions.attribute(model, clean, corrupt, layers=layers, positions=positions,
                                      verify_top=args.verify_top, verify_sample=args.verify_sample,
                                      max_rows=args.max_rows)
            v = grid.config["verification"]
            print(f"AtP: {len(v['top'])} top cells and {len(v['sample'])} random cells patched exactly; "
                  f"Spearman over the random cells {v['spearman_sample']}, false-negative rate "
                  f"{v['false_negative_rate']}")
            for w in grid.warnings:
                print(w)
        else:
            grid = interventions.patch(model, clean, corrupt, layers=layers, positions=positions,
                                  max_rows=args.max_rows)
        metric = "recovered"
    grid.save(out)
    if args.heatmap:
        import viz

        fig = viz.heatmap(grid, metric=metric, chance=0.0, title=f"{args.study}: {metric}")
        fig.write_html(out / "heatmap.html")
    table = grid.table().sort_values(metric, key=lambda c: -c.abs())
    print(grid.config.get("baseline"))
    print(table.head(args.top).to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    print(f"wrote {out}/grid.json, table.csv{', heatmap.html' if args.heatmap else ''}; "
          f"viz.heatmap(grids.ResultGrid.load({str(out)!r}), metric={metric!r})")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from codi import data
    from codi.evaluate import evaluate
    from codi.model import CODIModel
    from codi.train import train_dir

    if args.data or args.arith:
        problems = _codi_problems(args)
    else:
        held = train_dir(args.ckpt) / "heldout.jsonl"
        if not held.is_file():
            raise FileNotFoundError(f"no --data given and no held-out file {held}; pass --data FILE or --arith N")
        problems = data.load(held)
    problems = problems[:args.limit] if args.limit else problems
    cm = CODIModel.from_pretrained(args.ckpt)
    res = evaluate(cm, problems, batch_size=args.batch_size, modes=tuple(args.modes.split(",")),
                   max_new_tokens=args.max_new_tokens)
    print(f"{'mode':<8} {'accuracy':>9} {'correct':>8} {'n':>5}")
    for mode, r in res.items():
        print(f"{mode:<8} {r['accuracy'] * 100:>8.1f}% {r['correct']:>8} {r['n']:>5}")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from app.demo import run_demo

    over = {k: v for k, v in [("train_steps", args.train_steps), ("n_deception", args.n),
                              ("n_values", args.n and max(2, 3 * args.n // 4)), ("layer_stride", args.layer_stride),
                              ("permutations", args.permutations)] if v is not None}
    if args.organism:
        over["organism"] = "" if args.organism == "none" else args.organism
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    res = run_demo(args.model, out=args.out, quick=args.quick, checkpoint=args.checkpoint, **over)
    if args.png:
        import viz

        print(f"wrote {viz.export_png(res.report, args.png)}" if viz.find_browser() else
              f"PNG skipped: {viz.browser.no_browser_message()}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from app.compare import CompareConfig, run_compare

    cfg = CompareConfig.load(args.config)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.out:
        cfg.out = args.out
    run_compare(cfg, report=args.report, png=args.png)
    return 0
