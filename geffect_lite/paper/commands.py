"""The ``claims`` and ``table1`` commands (``python -m geffect_lite claims | table1``)."""
from __future__ import annotations

import json
import sys
import time

import pandas as pd

from .diagnoses import diagnose, rejudge
from .render import frontier_markdown, markdown, readme_block, settings_markdown
from .scoreboard import aggregate, counts, scoreboard, sensitivity
from .scoreboard_io import merge_rejudged, save, three_scales
from .table import agreement, plot_fq_mu, save_table, summary, tables


def claims_main(args) -> None:
    """One scoreboard (default), the sensitivity runs (``--sensitivity``; ``--save`` commits them), the three-scale
    table from the committed results (``--scales``) or the diagnoses of every miss (``--diagnose``)."""
    t0 = time.time()
    if args.scales:
        if args.readme:                          # write the table into the README (a test keeps them equal)
            from pathlib import Path
            readme = Path(args.readme)
            text = readme_block(readme.read_text(), "claims", markdown())
            text = readme_block(text, "frontier", frontier_markdown())
            readme.write_text(readme_block(text, "settings", settings_markdown()))
        return _show(three_scales(), args.json)
    if getattr(args, "settings", False):
        from .scoreboard_io import settings_table
        t = settings_table(args.model)
        if t is None:
            return print(f"no official-setting scoreboard committed for {args.model} (python -m geffect_lite claims "
                         f"--model {args.model} --setting official --sensitivity --replications 0 1 2 3 4 --lr-scales 1 --save)")
        return _show(t, args.json)
    if getattr(args, "rejudge", False):
        df = rejudge((args.models or ["tiny"])[0], progress=not args.json,
                     command=" ".join(["python -m geffect_lite"] + sys.argv[1:]))
        return _show(df[["claim", "factor", "baselines", "ablateds", "survives", "why"]], args.json)
    if args.diagnose:
        df = diagnose((args.models or ["tiny"])[0], progress=not args.json,
                      command=" ".join(["python -m geffect_lite"] + sys.argv[1:]))
        return _show(df.drop(columns=[c for c in ("series", "series_base") if c in df]), args.json)
    if args.sensitivity:
        name = f"scoreboard-{args.model}" + ("" if args.setting == "paper" else f"-{args.setting}")
        long = sensitivity(args.model, replications=tuple(args.replications), lr_scales=tuple(args.lr_scales),
                           fast=args.fast or None, claims=args.claims, progress=not args.json,
                           setting=args.setting, partial=f"{name}-partial" if args.save else None,
                           rates_at=getattr(args, "rates_at", None))
        if args.save:
            command = " ".join(["python -m geffect_lite"] + sys.argv[1:])
            seconds = time.time() - t0 + long.attrs.get("seconds_before", 0.0)
            if args.claims and args.setting == "paper":   # re-judge a few claims on the same runs, keep the others
                long, command, before = merge_rejudged(args.model, long, command)
                seconds += before
            save(args.model, long, command, seconds, setting=args.setting)
            from .. import results
            results.path(f"{name}-partial").unlink(missing_ok=True)      # the whole grid is committed now
        agg = aggregate(long)
        if args.json:
            return _show(agg, True)
        print(f"\n{args.model}, the paper's claims: " + ", ".join(f"{v}: {n}" for v, n in counts(agg).items())
              + " (checks and extensions listed apart)")
        return _show(agg[["group", "claim", "summary", "per_rate"]].sort_values("group", kind="stable"), False)
    df = scoreboard(args.model, seed=args.seed, fast=args.fast or None, claims=args.claims, progress=not args.json,
                    replication=args.replication, setting=args.setting)
    if args.json:
        return print(json.dumps(dict(config=df.attrs["config"], claims=df.drop(columns=["values"]).to_dict("records")),
                                indent=1, default=str))
    print(f"\nClaims scoreboard — {df.attrs['config']['setting']}")
    for r in df.itertuples():
        print(f"\n[{r.verdict.upper()}] {r.claim} — {r.paper}\n    numbers: {r.numbers}\n    {r.reason}")
    print(f"\nthe paper's claims: {', '.join(f'{v}: {n}' for v, n in counts(df).items())} ({time.time() - t0:.0f} "
          "s). Verdicts depend on the model, the replication and the learning rate: `--sensitivity` checks "
          "replications × rates.")


def table1_main(args) -> None:
    """The Table 1 analogue over seeds: table, agreement with the paper's statements, FQ–MU figure → ``--out``
    (``--frontier``: :func:`frontier_main`)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from pathlib import Path
    if getattr(args, "frontier", False):
        return frontier_main(args)
    t0 = time.time()
    df = tables(args.model, seeds=tuple(args.seeds), fast=args.fast or None, progress=not args.json)
    agr = agreement(df)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / "table1.csv", index=False)
    agr.to_csv(out / "agreement.csv", index=False)
    ax = plot_fq_mu(df)
    ax.figure.savefig(out / "fq_mu.png", dpi=150, bbox_inches="tight")
    plt.close(ax.figure)
    if args.save:
        save_table(args.model, df, " ".join(["python -m geffect_lite"] + sys.argv[1:]), time.time() - t0)
    if args.json:
        return print(json.dumps(dict(summary=summary(df).to_dict("records"), agreement=agr.to_dict("records"),
                                     seconds=time.time() - t0, out=str(out)), indent=1, default=float))
    with pd.option_context("display.width", 200, "display.max_columns", 30, "display.max_colwidth", 90):
        print(summary(df).to_string(index=False, float_format=lambda x: f"{x:.3g}"))
        print("\nAgreement with the paper's stated orderings")
        print(agr.to_string(index=False))
    print(f"\nwritten: {out}/table1.csv, agreement.csv, fq_mu.png ({time.time() - t0:.0f} s)")


def frontier_main(args) -> None:
    """Table 1 as a frontier (``paper/frontier.py``): points for both hyper-parameter sets, the four comparisons,
    each objective at the matched forget level, the figure → ``--out``; ``--save`` commits
    ``results/frontier-<model>.json``."""
    import matplotlib.pyplot as plt
    from pathlib import Path
    from . import frontier as F
    t0 = time.time()
    kw = dict(fast=args.fast or None, progress=not args.json)
    reps = tuple(args.seeds)
    df = pd.concat([F.frontier(args.model, replications=reps, hparams=h, keep_partial=bool(args.save), **kw)
                    for h in F.HPARAM_SETS], ignore_index=True)
    m = pd.concat([F.matched(args.model, replication=r, hparams=h, **kw) for h in F.HPARAM_SETS for r in reps],
                  ignore_index=True)
    cmp, mcmp = F.claims(df), F.matched_claims(m)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / "frontier.csv", index=False)
    m.to_csv(out / "frontier_matched.csv", index=False)
    cmp.to_csv(out / "frontier_claims.csv", index=False)
    mcmp.to_csv(out / "frontier_matched_claims.csv", index=False)
    fig = F.plot_sets(df)
    fig.savefig(out / "frontier.png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    if args.save:
        from ..tooling.results import save as save_result
        save_result(f"frontier-{args.model}", dict(model=args.model, rows=df.to_dict("records"),
                                                   claims=cmp.to_dict("records"), matched=m.to_dict("records"),
                                                   matched_claims=mcmp.to_dict("records"), scales=list(F.SCALES),
                                                   levels=list(F.LEVELS), hparams=F.HPARAM_SETS),
                    " ".join(["python -m geffect_lite"] + sys.argv[1:]),
                    max(time.time() - t0, float(df.seconds.sum() + m.seconds.sum())))
        from .. import results
        results.path(F.partial_name(args.model)).unlink(missing_ok=True)   # the whole frontier is committed now
    if args.json:
        return print(json.dumps(dict(claims=cmp.to_dict("records"), matched=mcmp.to_dict("records"),
                                     seconds=time.time() - t0), indent=1))
    print(cmp.to_string(index=False))
    print("\nat the matched forget level (the retain-only twin's forget risk):")
    print(mcmp.to_string(index=False))
    print(f"\nwritten: {out}/frontier*.csv, frontier.png ({time.time() - t0:.0f} s)")


def _show(df: pd.DataFrame, as_json: bool) -> None:
    if as_json:
        print(json.dumps(df.to_dict("records"), indent=1, default=str))
    else:
        with pd.option_context("display.width", 220, "display.max_columns", 20, "display.max_colwidth", 80):
            print(df.to_string(index=False))


__all__ = ["claims_main", "table1_main", "frontier_main"]
