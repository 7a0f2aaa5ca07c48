"""The `codi-lens` command line: the one place that wires codi, interp, probes and viz together.

Each subcommand is a `_cmd_<name>(args)` function plus one `add_parser` block in `_parser()`. Heavy imports happen
inside the command functions so `codi-lens --help` stays fast.
"""

from __future__ import annotations

import argparse
import sys


def _cmd_models(args: argparse.Namespace) -> int:
    from interp.models import cache_home, model_info

    print(f"cache: {cache_home() / 'models'}")
    print(f"{'name':<20} {'kind':<13} {'layers':>6} {'d_model':>7} {'size':>8}  present  description")
    for r in model_info():
        size = f"{r['size_mb']} MB" if r["size_mb"] else "-"
        print(f"{r['name']:<20} {r['kind']:<13} {r['n_layers']:>6} {r['d_model']:>7} {size:>8}  "
              f"{'yes' if r['present'] else 'no':<7}  {r['description']}")
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="codi-lens", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("models", help="list the model names that load offline, with size and whether present")
    s.set_defaults(func=_cmd_models)

    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, KeyError, FileNotFoundError) as err:
        print(f"codi-lens {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
