"""`codi-lens train` and `codi-lens eval`: train a CODI model and measure its accuracy (the parser is in
app/cli.py). Flags are checked (app/flags.py) and the configs built, which checks every field, before a model
loads or anything is written.
"""

from __future__ import annotations

import argparse

from app.flags import check_eval, check_train, parse_set, parse_steps

__all__ = ["cmd_train", "cmd_eval", "codi_problems"]


def codi_problems(args: argparse.Namespace) -> list:
    """The problems of `train` / `eval`: a GSM8k-Aug file (--data) or generated arithmetic (--arith, default 2000).

    >>> args = argparse.Namespace(data=None, arith=2, arith_steps="2", data_seed=0)
    >>> [(p.steps, p.answer == str(p.values[-1])) for p in codi_problems(args)]
    [(2, True), (2, True)]
    """
    from codi import data

    if args.data and args.arith:
        raise ValueError("pass either --data FILE or --arith N, not both")
    if args.data:
        return data.load(args.data)
    steps = parse_steps("--arith-steps", args.arith_steps)
    return data.arithmetic(2000 if args.arith is None else args.arith, steps=steps, seed=args.data_seed)


def cmd_train(args: argparse.Namespace) -> int:
    from dataclasses import fields

    from codi import data
    from codi.config import CODIConfig
    from codi.model import CODIModel
    from codi.train import TrainConfig, check_run, train, train_dir
    from formats import read_json

    check_train(args)
    codi_kw = read_json(args.codi_config) if args.codi_config else {"base_model": args.base}
    if not isinstance(codi_kw, dict):
        raise ValueError(f"--codi-config {args.codi_config}: a JSON {type(codi_kw).__name__}, not a CODIConfig object")
    codi_cfg = CODIConfig.from_dict({**codi_kw, **parse_set(args.set, [f.name for f in fields(CODIConfig)])})
    over = {k: v for k, v in [("lr", args.lr), ("epochs", args.epochs), ("max_steps", args.max_steps),
                              ("batch_size", args.batch_size), ("micro_batch_size", args.micro_batch_size),
                              ("checkpoint_every", args.checkpoint_every), ("seed", args.seed)] if v is not None}
    if args.no_progress:
        over["progress"] = False
    tcfg = TrainConfig.from_dict({**(TrainConfig.load(args.config).to_dict() if args.config else {}), **over})
    check_run(args.out, args.resume)  # before the model loads: nothing to resume, a non-empty --out, ...
    problems = codi_problems(args)
    heldout = []
    if args.test_frac > 0:
        problems, heldout = data.split(problems, test_frac=args.test_frac, seed=args.data_seed)
    cm = CODIModel.from_config(codi_cfg)
    rec = train(cm, problems, args.out, config=tcfg, resume=args.resume)
    if heldout:
        print(f"held-out problems: {data.save(heldout, train_dir(args.out) / 'heldout.jsonl')}")
    last = rec.losses[-1] if rec.losses else {}
    print(f"trained {rec.step} steps -> {args.out}; last loss " + ", ".join(f"{k}={float(last.get(k, 'nan')):.4f}"
          for k in ("total", "teacher_ce", "student_ce", "distill")) + f"; rollbacks: "
          f"{sum(e['kind'] == 'rollback' for e in rec.events)}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    import json

    from codi import data
    from codi.evaluate import evaluate
    from codi.model import CODIModel
    from codi.train import train_dir

    check_eval(args)
    if args.data or args.arith:
        problems = codi_problems(args)
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
        from formats import atomic_write_text

        atomic_write_text(args.json, json.dumps(res, indent=1))
    return 0
