"""The `codi-lens` command line: the one place that wires codi, interp, probes and viz together.

Each subcommand is one `add_parser` block in `_parser()` here plus its `cmd_<name>(args)` function in
`app/commands.py`, which imports heavy packages only when the command runs, so `codi-lens --help` stays fast.
Every error is printed as ONE line naming the flag (exit status 2); `--debug` (before or after the subcommand)
shows the traceback instead. Flags are checked (`app/flags.py`) before a command does any work.
"""

from __future__ import annotations

import argparse
import sys

from app.commands import cmd_cache, cmd_compare, cmd_demo, cmd_models, cmd_patch, cmd_probe, cmd_report
from app.flags import flag_names, one_line
from app.organism_commands import add_parsers as add_organism_parsers
from app.train_commands import cmd_eval, cmd_train
from app.transfer_command import add_parsers as add_transfer_parsers


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line (no usage block): `codi-lens train: error: argument --max-steps: ...`."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="codi-lens", description=__doc__.splitlines()[0])
    p.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("models", help="list the model names that load offline, with size and whether present")
    s.set_defaults(func=cmd_models)

    s = sub.add_parser("cache", help="cache the residual stream of a model on prompts into a store folder (several "
                       "processes: accelerate launch --multi_gpu --num_processes N -m app cache ...)")
    s.add_argument("--model", default="smollm2-135m", help="registry name, local folder or HF id")
    s.add_argument("--prompts", nargs="+", metavar="FILE_OR_TEXT",
                   help="prompt texts, or .txt (one per line) / .jsonl / .json files; default: 4 built-in prompts")
    s.add_argument("--out", help="store folder (default runs/cache-MODEL); rerun the same command to resume")
    s.add_argument("--layers", default="all", help="'all' or e.g. '0,5,10-12' (0 = embeddings .. n_layers)")
    s.add_argument("--positions", default="all", help="'all' or labels e.g. 'tok_0,last,prompt[-2]'")
    s.add_argument("--batch-size", type=int, default=16)
    s.add_argument("--shard-size", type=int, help="rows per shard file (default: about 256 MB of rows)")
    s.add_argument("--padding-side", choices=["left", "right"], help="default: the tokenizer's")
    s.add_argument("--dtype", help="model dtype (default float32 on CPU, bfloat16 on CUDA)")
    s.add_argument("--device", help="default cuda when present, else cpu")
    s.add_argument("--task", help="task name (probes.tasks) or .jsonl/.json file of samples (text/label/group/...)")
    s.add_argument("--n", type=int, help="number of task samples (default: all in a file, 200 for a task name)")
    s.add_argument("--seed", type=int, default=0, help="task seed")
    s.add_argument("--generate", action="store_true", help="CODI: generate the responses instead of teacher forcing")
    s.add_argument("--max-new-tokens", type=int, default=16, help="CODI: tokens to generate with --generate")
    s.add_argument("--system", help="template system/instruction part, e.g. '{instruction}'")
    s.add_argument("--user", help="template question part (default '{text}')")
    s.add_argument("--response", help="template response part teacher forced after <eot>, e.g. '{response}'")
    s.set_defaults(func=cmd_cache)

    s = sub.add_parser("train", help="train a CODI model (works under `accelerate launch`)")
    s.add_argument("--base", default="smollm2-135m", help="base model name or folder (ignored with --codi-config)")
    s.add_argument("--codi-config", help="CODIConfig JSON file")
    s.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="CODIConfig field, e.g. lora_r=8")
    s.add_argument("--data", help="GSM8k-Aug .json/.jsonl file")
    s.add_argument("--arith", type=int, help="generate N arithmetic problems instead (default 2000)")
    s.add_argument("--arith-steps", default="2-3", help="steps per generated problem, N or LO-HI")
    s.add_argument("--data-seed", type=int, default=0)
    s.add_argument("--test-frac", type=float, default=0.0,
                   help="hold out this fraction (saved to OUT-train/heldout.jsonl for `codi-lens eval`)")
    s.add_argument("--out", required=True, help="output folder (checkpoints, final model, train_record.json)")
    s.add_argument("--config", help="TrainConfig JSON file; the flags below override it")
    s.add_argument("--lr", type=float)
    s.add_argument("--epochs", type=float)
    s.add_argument("--max-steps", type=int)
    s.add_argument("--batch-size", type=int)
    s.add_argument("--micro-batch-size", type=int)
    s.add_argument("--checkpoint-every", type=int)
    s.add_argument("--seed", type=int)
    s.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("report", help="write one self-contained HTML report of probe sweeps (opens offline)")
    s.add_argument("--probe", nargs="+", required=True, metavar="DIR", help="folders of ProbeGrid.save")
    s.add_argument("--out", default="report.html", help="HTML file to write (default report.html)")
    s.add_argument("--title", default="codi-lens report")
    s.add_argument("--name", nargs="+", help="a display name per --probe folder (default: config's model)")
    s.add_argument("--lens", help="logit-lens JSON written by viz.LensTable.save")
    s.add_argument("--metric", default="auroc", help="metric drawn in the heatmaps (default auroc)")
    s.add_argument("--png", help="also save a screenshot PNG of the report (needs headless Chromium)")
    s.set_defaults(func=cmd_report)

    s = sub.add_parser("probe", help="probe sweep over every (layer, position) of a cache folder")
    s.add_argument("--cache", required=True, help="cache folder written by interp.cache(..., out=...)")
    s.add_argument("--target", default="label", help="sample-table column to predict (default label)")
    s.add_argument("--method", default="logreg", choices=["logreg", "ridge", "diffmean", "lda", "lat"])
    s.add_argument("--out", required=True, help="folder for grid.json, table.csv, scores.safetensors")
    s.add_argument("--layers", help="comma-separated layers (default all)")
    s.add_argument("--positions", help="comma-separated position labels (default all)")
    s.add_argument("--folds", type=int, default=5)
    s.add_argument("--C", type=float, nargs="+", help="C grid (ridge: alphas); default 1e-4 .. 10")
    s.add_argument("--permutations", type=int, default=100, help="group-level label shuffles for p-values")
    s.add_argument("--test-size", type=float, help="hold out this fraction of groups for pick-best reporting")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--overwrite", action="store_true")
    s.set_defaults(func=cmd_probe)

    s = sub.add_parser("patch", help="ablation / activation patching on a CODI run's continuous thoughts")
    s.add_argument("--model", help="CODI run folder (CODIModel.save_pretrained); or --organism")
    s.add_argument("--organism", help="a shipped model organism instead (codi-lens organism list): its held-out "
                                      "problems, and pairs that differ from --hop on")
    s.add_argument("--hop", type=int, default=1, help="--organism pairs: the first hop whose value differs")
    s.add_argument("--n", type=int, default=64, help="--organism: problems (or pairs) to use")
    s.add_argument("--study", choices=["ablate", "patch", "attribute", "necessity", "early-exit"], default="patch",
                   help="ablate: remove cells, score the answer; patch: clean -> changed-number corrupt runs; "
                        "attribute: AtP estimates of every patch cell (one backward pass) + exact check of the "
                        "top cells; necessity: accuracy with only the first j thoughts; early-exit: the answer "
                        "read by the LM head after j thoughts")
    s.add_argument("--verify-top", type=int, default=10,
                   help="attribute: patch this many top-|estimate| cells exactly (0 = none)")
    s.add_argument("--verify-sample", type=int, default=20,
                   help="attribute: patch this many random cells exactly, drawn among the moved cells outside "
                        "the top (rank correlation, false negatives)")
    s.add_argument("--data", help="GSM8k-Aug .json/.jsonl file")
    s.add_argument("--arith", type=int, help="generate N arithmetic problems (default 2000; try 64)")
    s.add_argument("--arith-steps", default="3", help="steps per generated problem, N or LO-HI")
    s.add_argument("--data-seed", type=int, default=1)
    s.add_argument("--layers", default="all", help="'all' or e.g. 'input,0,5,10-12' (input: the thought)")
    s.add_argument("--positions", help="'all', 'latents' or labels e.g. 'latent_1,eot' (default: latents for "
                                      "ablate, all for patch)")
    s.add_argument("--mode", default="zero", help="ablate: zero | mean | resample")
    s.add_argument("--together", action="store_true", help="ablate: remove all --positions at once")
    s.add_argument("--max-rows", type=int, default=256, help="rows per forward pass (replicas x problems)")
    s.add_argument("--merge", action="store_true", help="fold LoRA into the base first (faster)")
    s.add_argument("--out", required=True, help="folder for grid.json + table.csv (ProbeGrid.load)")
    s.add_argument("--heatmap", action="store_true", help="also write heatmap.html")
    s.add_argument("--top", type=int, default=10, help="print this many strongest cells")
    s.add_argument("--overwrite", action="store_true")
    s.set_defaults(func=cmd_patch)

    s = sub.add_parser("eval", help="accuracy of a CODI checkpoint: latent (codi), no reasoning, written reasoning")
    s.add_argument("--ckpt", required=True, help="folder written by `codi-lens train` / save_pretrained")
    s.add_argument("--data", help="GSM8k-Aug .json/.jsonl file (default: CKPT-train/heldout.jsonl)")
    s.add_argument("--arith", type=int, help="generate N arithmetic problems instead")
    s.add_argument("--arith-steps", default="2-3")
    s.add_argument("--data-seed", type=int, default=1)
    s.add_argument("--limit", type=int, help="evaluate only the first N problems")
    s.add_argument("--batch-size", type=int, default=16)
    s.add_argument("--modes", default="codi,no_cot,cot", help="comma-separated subset of codi,no_cot,cot")
    s.add_argument("--max-new-tokens", type=int, default=16)
    s.add_argument("--json", help="also write the results (with examples) to this JSON file")
    s.set_defaults(func=cmd_eval)

    s = sub.add_parser("demo", help="the whole study on a CODI model: accuracy, probes on thoughts and responses, "
                                    "ablation, logit lens -> report.html (~12 min on 2 CPU cores; --quick: ~3.5)")
    s.add_argument("--quick", action="store_true", help="reduced sizes (CI): a few minutes on a 2-core CPU")
    s.add_argument("--out", default="runs/demo", help="output folder (report.html, summary.json, grids/, caches)")
    s.add_argument("--model", default="smollm2-135m", help="base model for the CODI model (registry name or folder)")
    s.add_argument("--checkpoint", help="CODI checkpoint folder (default: codi/pretrained/MODEL-arith if shipped, "
                                        "else a short training run)")
    s.add_argument("--train-steps", type=int, help="training steps when no checkpoint is used (0: untrained)")
    s.add_argument("--n", type=int, help="deception-arith samples (even; intermediate-values gets 3/4 of it)")
    s.add_argument("--layer-stride", type=int, help="cache every k-th layer (default 2; --quick 6)")
    s.add_argument("--permutations", type=int, help="label shuffles per probe cell (default 10)")
    s.add_argument("--png", help="also save a screenshot of the report's top (needs headless Chromium)")
    s.add_argument("--threads", type=int, help="torch CPU threads (use 1 on a busy shared machine)")
    s.add_argument("--organism", help="shipped organism that opens the report (default pointer3; 'none' skips it)")
    s.set_defaults(func=cmd_demo)

    add_organism_parsers(sub)
    add_transfer_parsers(sub)

    s = sub.add_parser("compare", help="the same probe study on several models (config file) -> one report")
    s.add_argument("--config", required=True, help="TOML/YAML experiment file, e.g. examples/compare.toml")
    s.add_argument("--out", help="output folder (overrides the config's out)")
    s.add_argument("--report", help="HTML report path (default OUT/compare.html)")
    s.add_argument("--png", help="also a screenshot of the comparison figure (needs headless Chromium)")
    s.add_argument("--threads", type=int, help="torch CPU threads (use 1 on a busy shared machine)")
    s.set_defaults(func=cmd_compare)

    _add_debug(p)
    return p


def _add_debug(parser: argparse.ArgumentParser) -> None:
    """--debug also after a subcommand (and its verbs); SUPPRESS keeps the top-level value when not given."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command in action.choices.values():
                if not any(a.dest == "debug" for a in command._actions):
                    command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                                         help="show the full traceback of an error")
                _add_debug(command)


def _subparser(p: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
    command = sub.choices[args.command]
    nested = [a for a in command._actions if isinstance(a, argparse._SubParsersAction)]  # codi-lens organism ...
    for action in nested:
        chosen = getattr(args, action.dest, None)
        if chosen in action.choices:
            return action.choices[chosen]
    return command


def main(argv: list[str] | None = None) -> int:
    """Run `codi-lens ARGV` (default: sys.argv[1:]); the exit status. An error is one line on stderr, status 2.

    >>> main(["demo", "--n", "7"])      # stderr: codi-lens demo: error: --n 7: must be even (...). Fix: pass --n 8.
    2
    >>> main(["organism", "list"])
    organism   task ...
    0
    """
    p = _parser()
    args = p.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except Exception as err:  # every error: one line naming the flag; --debug for the traceback
        if args.debug:
            raise
        text = one_line(err, flag_names(_subparser(p, args)))
        print(f"codi-lens {args.command}: error: {text} (--debug shows the traceback)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
