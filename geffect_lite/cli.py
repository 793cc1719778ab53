"""Command line: ``python -m geffect_lite <command>``.

=============  ==================================================================================================
command        what it does
=============  ==================================================================================================
``demo``       the main job: every paper objective's G-effect trajectory on a model (default ``tiny``), a figure
               grid in the style of the paper's Figs. 3–8, a CSV of everything and a summary table → ``--out``
``report``     what the model knows: answer-token accuracy and greedy exact match per split
``bench``      the efficiency benchmark (forward-mode vs backward loops; tracked vs plain step; peak memory)
``claims``     the paper's testable claims, checked live on a model (reproduced / not reproduced / n.a.)
``table1``     the Table 1 analogue: every objective unlearned and evaluated TOFU-style
``objectives`` the registry of objectives with their equations and defaults
``build``      rebuild the shipped tiny models from the seed (``build tiny``) or the SmolLM2 caches
``notebooks``  re-execute every notebook in place (``--execute``)
=============  ==================================================================================================
Every command takes ``--json`` to print machine-readable output.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def _print(obj, as_json: bool):
    if as_json:
        print(json.dumps(obj, indent=1, default=float))
    else:
        import pandas as pd
        if isinstance(obj, pd.DataFrame):
            with pd.option_context("display.width", 160, "display.max_columns", 30):
                print(obj.to_string(index=False))
        else:
            print(obj)


# ---------------------------------------------------------------------------------------------------------------
DEMO_OBJECTIVES = {   # name → (objective, hyper-parameters); the paper's figure settings where it has them
    "GA": ("ga", {}),
    "WGA (α=0.5)": ("wga", {"alpha": 0.5}),
    "NPO (β=1)": ("npo", {"beta": 1.0}),
    "TNPO (β=1)": ("tnpo", {"beta": 1.0}),
    "WTNPO (β=1, α=1)": ("wtnpo", {}),
    "PO": ("po", {}),
    "RMU (middle)": ("rmu", {}),
    "GA+GD": ("ga+gd", {}),
    "GA+KL": ("ga+kl", {}),
}


def demo(args):
    import copy
    import pandas as pd
    import geffect_lite as gl
    from geffect_lite import plots
    from geffect_lite.config import fast_mode, set_threads
    from geffect_lite.objectives import get_objective
    from geffect_lite.trajectory import run
    set_threads()
    t0 = time.time()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model0, tok = gl.load_model(args.model)
    data = gl.load_data()
    steps = args.steps or (8 if fast_mode() else 20)
    n_forget = args.n_forget or (None if args.model.startswith("tiny") else 4)
    n_retain = args.n_retain or (16 if args.model.startswith("tiny") else 4)
    forget_split = args.split if args.model.startswith("tiny") or args.model.startswith("random") else "forget01"
    forget, retain = gl.batches(data, tok, forget_split, n_forget=n_forget, n_retain=n_retain)
    small = args.model.startswith(("tiny", "random"))
    # AdamW (the paper's optimiser; scale-free, so one lr suits every objective) unless --optimizer sgd
    lr = args.lr or ({"adamw": 1e-3, "sgd": 0.2}[args.optimizer] if small else {"adamw": 2e-5, "sgd": 1e-3}[args.optimizer])
    trajs, summary, frames = {}, [], {"steps": [], "groups": [], "terms": []}
    names = list(DEMO_OBJECTIVES) if not args.objectives else [k for k in DEMO_OBJECTIVES
                                                                if DEMO_OBJECTIVES[k][0] in args.objectives]
    for label in names:
        key, hp = DEMO_OBJECTIVES[label]
        model = copy.deepcopy(model0) if args.model.startswith(("tiny", "random")) else model0
        if not args.model.startswith(("tiny", "random")) and trajs:
            model0, tok = gl.load_model(args.model)   # large model: reload rather than hold two copies
            model = model0
        obj = get_objective(key, **hp)
        ref = gl.reference_for(model, obj, forget, retain) if obj.needs_ref else None
        tr = run(model, obj, forget, retain, ref, steps=steps, lr=lr, optimizer=args.optimizer, desc=label,
                 progress=not args.json)
        trajs[label] = tr
        s = tr.steps[tr.steps.status == "ok"]
        summary.append(dict(objective=label, steps=len(s), e_u_first=float(s.e_u.iloc[0]),
                            e_r_first=float(s.e_r.iloc[0]), e_u_min=float(s.e_u.min()), e_r_min=float(s.e_r.min()),
                            ratio_abs_er_eu=float(abs(s.e_r).sum() / max(abs(s.e_u).sum(), 1e-30)),
                            forget_risk_start=float(s.risk_u.iloc[0]), forget_risk_end=float(s.risk_u.iloc[-1]),
                            retain_risk_start=float(s.risk_r.iloc[0]), retain_risk_end=float(s.risk_r.iloc[-1]),
                            blew_up=bool((tr.steps.status != "ok").any())))
        for kind, df in (("steps", tr.steps), ("groups", tr.groups), ("terms", tr.terms)):
            if df is not None:
                frames[kind].append(df.assign(objective=label))
        del model
    for kind, fs in frames.items():   # written once, so a rerun into the same folder replaces, not appends
        if fs:
            df = pd.concat(fs, ignore_index=True)
            df[["objective"] + [c for c in df.columns if c != "objective"]].to_csv(out / f"{kind}.csv", index=False)
    summ = pd.DataFrame(summary)
    summ.to_csv(out / "summary.csv", index=False)
    plots.setup()
    fig = plots.grid(trajs)
    plots.save(fig, out / "geffects_grid.png")
    elapsed = time.time() - t0
    if args.json:
        _print(dict(model=args.model, seconds=elapsed, out=str(out), summary=summary), True)
    else:
        _print(summ.round(4), False)
        print(f"\nwrote {out}/geffects_grid.png, steps.csv, groups.csv, terms.csv, summary.csv in {elapsed:.0f} s")


def report(args):
    import geffect_lite as gl
    from geffect_lite.config import set_threads
    from geffect_lite.train import memorisation
    set_threads()
    model, tok = gl.load_model(args.model)
    data = gl.load_data()
    splits = ("forget01", "forget05", "forget10", "retain90", "retain_eval", "world_facts", "real_authors")
    if args.model == "smollm2-tofu":
        from geffect_lite.train import smollm2_tofu_rows
        rows, forget = smollm2_tofu_rows(data)
        data.splits["smol_forget"] = forget
        data.splits["smol_retain"] = [r for r in rows if r not in forget]
        splits = ("smol_forget", "smol_retain", "world_facts")
    df = memorisation(model, tok, data, splits)
    if args.json:
        _print(dict(model=args.model, report=df.to_dict("records")), True)
    else:
        print(f"model {args.model}: {gl.models.describe(model)}")
        _print(df.round(4), False)


def build(args):
    from geffect_lite.train import build_tiny
    if args.what == "tiny":
        rep = build_tiny(args.out, seed=args.seed)
        _print(rep, args.json)
    elif args.what == "smollm2":
        from geffect_lite.models import convert_smollm2
        print(convert_smollm2(force=True))
    elif args.what == "smollm2-tofu":
        from geffect_lite.config import cache_dir
        from geffect_lite.train import build_smollm2_tofu
        _print(build_smollm2_tofu(cache_dir() / "smollm2-tofu"), args.json)


def objectives_cmd(args):
    from geffect_lite.objectives import list_objectives
    df = list_objectives()
    _print(df.to_dict("records") if args.json else df, args.json)


def bench(args):
    from geffect_lite.bench import main as bench_main
    bench_main(args)


def claims(args):
    from geffect_lite.claims import main as claims_main
    claims_main(args)


def table1(args):
    from geffect_lite.claims import table1_main
    table1_main(args)


def notebooks(args):
    """Execute notebooks in place with nbclient (kernel = this Python), so committed outputs are current."""
    import nbclient
    import nbformat
    root = Path(__file__).resolve().parent.parent / "notebooks"
    nbs = sorted(root.glob("*.ipynb"))
    if args.only:
        nbs = [nb for nb in nbs if any(nb.name.startswith(o) for o in args.only)]
    if not nbs:
        print(f"no notebooks found in {root}")
        return
    for nb_path in nbs:
        t = time.time()
        print(f"executing {nb_path.name} …", flush=True)
        nb = nbformat.read(str(nb_path), as_version=4)
        nb.metadata["kernelspec"] = dict(name="python3", display_name="Python 3", language="python")
        nbclient.NotebookClient(nb, timeout=args.timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(root)}}).execute()
        nbformat.write(nb, str(nb_path))
        print(f"  done in {time.time() - t:.0f} s", flush=True)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m geffect_lite", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)

    d = sub.add_parser("demo", help="every paper objective's G-effect trajectory, figures, CSV, summary")
    d.add_argument("--model", default="tiny")
    d.add_argument("--out", default="outputs/demo")
    d.add_argument("--split", default="forget05")
    d.add_argument("--steps", type=int, default=None)
    d.add_argument("--lr", type=float, default=None)
    d.add_argument("--optimizer", default="adamw", choices=["sgd", "adamw"])
    d.add_argument("--n-forget", type=int, default=None)
    d.add_argument("--n-retain", type=int, default=None)
    d.add_argument("--objectives", nargs="*", default=None, help="subset, e.g. ga npo")
    d.add_argument("--json", action="store_true")
    d.set_defaults(fn=demo)

    r = sub.add_parser("report", help="what the model knows, per split")
    r.add_argument("--model", default="tiny")
    r.add_argument("--json", action="store_true")
    r.set_defaults(fn=report)

    b = sub.add_parser("bench", help="efficiency benchmark (ratios measured side by side)")
    b.add_argument("--models", nargs="*", default=["tiny", "smollm2"])
    b.add_argument("--repeats", type=int, default=3)
    b.add_argument("--json", action="store_true")
    b.set_defaults(fn=bench)

    c = sub.add_parser("claims", help="the paper's claims, checked live")
    c.add_argument("--model", default="tiny")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--json", action="store_true")
    c.set_defaults(fn=claims)

    t = sub.add_parser("table1", help="the Table 1 analogue (TOFU-style evaluation of every objective)")
    t.add_argument("--model", default="tiny")
    t.add_argument("--split", default="forget05")
    t.add_argument("--out", default="outputs/table1")
    t.add_argument("--json", action="store_true")
    t.set_defaults(fn=table1)

    o = sub.add_parser("objectives", help="list the objectives")
    o.add_argument("--json", action="store_true")
    o.set_defaults(fn=objectives_cmd)

    bu = sub.add_parser("build", help="rebuild models: tiny | smollm2 | smollm2-tofu")
    bu.add_argument("what", choices=["tiny", "smollm2", "smollm2-tofu"])
    bu.add_argument("--out", default=None, help="(tiny) output folder; default: the package assets")
    bu.add_argument("--seed", type=int, default=0)
    bu.add_argument("--json", action="store_true")
    bu.set_defaults(fn=build)

    n = sub.add_parser("notebooks", help="re-execute every notebook in place")
    n.add_argument("--execute", action="store_true")
    n.add_argument("--only", nargs="*", default=None, help="notebook name prefixes, e.g. 03 05")
    n.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    n.set_defaults(fn=notebooks)

    args = p.parse_args(argv)
    try:
        import transformers
        transformers.utils.logging.disable_progress_bar()
        transformers.utils.logging.set_verbosity_error()
    except Exception:
        pass
    args.fn(args)


if __name__ == "__main__":
    main()
