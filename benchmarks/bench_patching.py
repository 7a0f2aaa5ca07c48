"""Full activation-patching sweep (all layers x all latent positions): batched vs the cell-by-cell loop, one
run.

    python benchmarks/bench_patching.py                          # tiny-llama and smollm2-135m, 4 pairs, 6
    latents
    python benchmarks/bench_patching.py --models smollm2-135m --pairs 8 --subset-every 1   # time every cell

Rows per model (same clean/corrupt pairs, same cells, same CODI model merged with `merge()`):
- cell by cell: one latent loop per cell (`cells_per_pass=1, share_prompt=False`), the usual hand-written
loop;
- batched: the corrupt batch replicated along the batch dimension, one replica per cell
(`share_prompt=False`);
- batched + shared prompt call: as above, and the prompt call (question + <bot>), which latent cells never
  change, is computed once and its KV cache tiled to the replicas (`engine.run_cells(prompt=)` on the same study
  and edits as `patch`: what `patch` did before it resumed at later thoughts);
- batched + resumed at each cell's thought: cells are packed by the thought they edit and each pass starts from the
  baseline's state right before it (prompt call and earlier thoughts not recomputed; `engine.run_cells(resume=)` on
  the same study and edits, what `interp.interventions.patch` runs by default).
On a slow CPU the two slower methods are timed on a subset of the cells (layers 0, k, 2k, ... and 'input', all
latent positions; `--subset-every k`) and scaled to the full sweep by cell count (time is linear in cells);
the table says so. Every method's per-cell results are compared with the cell-by-cell ones (max abs
difference).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).parent


from machine import describe  # noqa: E402  (benchmarks/ is the script's folder)


def _machine() -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{describe()}, load average {load:.1f}, torch {torch.__version__}"


def _model(name: str, latents: int):
    from codi.config import CODIConfig
    from codi.model import CODIModel

    torch.manual_seed(0)
    run = Path(name)
    cm = (
        CODIModel.from_pretrained(run)
        if run.is_dir()
        else CODIModel.from_config(CODIConfig(name, num_latents=latents, lora_r=8))
    )
    return cm.merge().eval()


def _time(fn) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def _engine_sweep(cm, clean, corrupt, layers, share: str) -> tuple[np.ndarray, int]:
    """The sweep of `patch` (same study, edits and packing: `engine.run_cells` as `CellStudy.run` calls it), each
    pass resumed at its first edited call (share="resume", what `patch` does) or sharing only the prompt call
    (share="prompt"); returns the per-pair logit diff [layer, pos, pair] and the number of passes run."""
    from interp.interventions.engine import run_cells
    from interp.interventions.patch import open_pairs, patch_edits

    st, base_c = open_pairs(cm, "patching", clean, corrupt, layers, "latents")
    passes = []

    def count(chunks):
        passes.append(len(chunks))
        return chunks

    kw = {"resume": st.base} if share == "resume" else {"prompt": st.base.prompt}
    s = run_cells(cm, st.batch, patch_edits(st.cells, st.columns, base_c), st.base.plan, progress=count, **kw)
    return st.per_cell({"ld": s["logit_diff"]})["ld"], passes[0]


def bench(name: str, pairs: int, latents: int, every: int, seed: int) -> list[dict]:
    from codi import data
    from interp import interventions as P

    cm = _model(name, latents)
    clean, corrupt = P.changed_number_pairs(
        data.arithmetic(4 * pairs, steps=3, seed=seed), cm.tokenizer, seed=seed
    )
    clean, corrupt = clean[:pairs], corrupt[:pairs]
    n = cm.n_layers
    all_layers = ["input"] + list(range(n + 1))
    sub_layers = ["input"] + list(range(0, n + 1, every))
    n_lat = cm.config.num_latents
    full_cells, sub_cells = len(all_layers) * n_lat, len(sub_layers) * n_lat
    kw = dict(positions="latents", progress=False)
    P.patch(cm, clean[:1], corrupt[:1], layers=[1], positions=["latent_0"], progress=False)  # warm up
    rows = []
    t_full, (ld_full, n_full) = _time(lambda: _engine_sweep(cm, clean, corrupt, all_layers, "resume"))
    t_p, (ld_p, n_p) = _time(lambda: _engine_sweep(cm, clean, corrupt, all_layers, "prompt"))
    t_b, g_b = _time(lambda: P.patch(cm, clean, corrupt, layers=sub_layers, share_prompt=False, **kw))
    t_c, g_c = _time(
        lambda: P.patch(cm, clean, corrupt, layers=sub_layers, cells_per_pass=1, share_prompt=False, **kw)
    )
    li = [all_layers.index(x) for x in sub_layers]
    ref = g_c.scores

    scale = full_cells / sub_cells
    loops_c = full_cells
    per_pass = max(1, 256 // len(clean))
    loops_b = -(-full_cells // per_pass)
    tok = int(np.mean([len(cm.tokenizer(p.question)["input_ids"]) for p in clean]))
    base = dict(model=name, n_layers=n, latents=n_lat, pairs=len(clean), cells=full_cells, prompt_tokens=tok)
    rows.append(
        dict(
            base,
            method="cell by cell",
            loops=loops_c,
            seconds=t_c * scale,
            measured=f"{sub_cells} cells",
            diff=0.0,
        )
    )
    rows.append(
        dict(
            base,
            method="batched",
            loops=loops_b,
            seconds=t_b * scale,
            measured=f"{sub_cells} cells",
            diff=float(np.nanmax(np.abs(g_b.scores - ref))),
        )
    )
    rows.append(
        dict(
            base,
            method="batched + shared prompt call",
            loops=n_p,
            seconds=t_p,
            measured="all cells",
            diff=float(np.nanmax(np.abs(ld_p[li] - ref))),
        )
    )
    rows.append(
        dict(
            base,
            method="batched + resumed at each cell's thought",
            loops=n_full,
            seconds=t_full,
            measured="all cells",
            diff=float(np.nanmax(np.abs(ld_full[li] - ref))),
        )
    )
    for r in rows:
        r["speedup"] = rows[0]["seconds"] / r["seconds"]
    return rows


def table(rows: list[dict]) -> str:
    head = (
        "| model | layers x latents = cells | pairs | prompt tokens | method | latent loops "
        "| seconds (full sweep) "
        "| timed on | speed-up vs cell by cell | max abs diff of per-pair logit diff vs cell by cell |"
    )
    lines = [head, "|" + "---|" * 10]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['n_layers'] + 2} x {r['latents']} = {r['cells']} | {r['pairs']} | "
            f"{r['prompt_tokens']} | {r['method']} | {r['loops']} | {r['seconds']:.1f} | {r['measured']} | "
            f"{r['speedup']:.1f}x | {r['diff']:.1e} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--models",
        nargs="+",
        default=["tiny-llama", "smollm2-135m"],
        help="base model names (a fresh CODI on top) or trained CODI run folders",
    )
    ap.add_argument("--pairs", type=int, default=4)
    ap.add_argument("--latents", type=int, default=6)
    ap.add_argument(
        "--subset-every",
        type=int,
        nargs="+",
        default=[1, 6],
        help="per model: time the slow methods on layers 0, k, 2k, ... (1 = every layer)",
    )
    ap.add_argument(
        "--threads", type=int, default=1, help="torch intra-op threads (1 is fastest on a busy CPU)"
    )
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", default=str(HERE / "results" / "patching.md"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    every = args.subset_every + [args.subset_every[-1]] * (len(args.models) - len(args.subset_every))
    rows = []
    for name, k in zip(args.models, every):
        rows += bench(name, args.pairs, args.latents, k, args.seed)
        print(table(rows), flush=True)
    text = (
        f"# Patching sweep: batched vs cell by cell\n\nMachine: {_machine()}. Device: CPU, float32. "
        f"Command: `python benchmarks/bench_patching.py {' '.join(os.sys.argv[1:])}`\n\n"
        "Sweep: `interp.interventions.patch` over every layer (the fed-back thought 'input' and residual layers "
        "0..n_layers) x every latent position, changed-number pairs from `codi.data.arithmetic(steps=3)`, "
        "CODI models merged (`merge()`), LoRA r=8, untrained (timing does not depend on training). "
        "Seconds of the slower methods are measured on the listed subset of cells and scaled by cell "
        "count.\n\n"
        + table(rows)
        + "\n"
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
