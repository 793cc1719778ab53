"""Command line: ``python -m geffect_lite <command>`` (also installed as ``geffect-lite``).

=============  ==================================================================================================
command        what it does
=============  ==================================================================================================
``demo``       the main job: every paper objective's G-effect trajectory under the protocol, a figure grid in the
               style of the paper's Figs. 3–8, CSVs and a summary → ``--out``
``report``     what a model knows: answer-token accuracy and greedy exact match per split
``bench``      the efficiency benchmark (``gl.run`` and ``gl.geffect`` against the plain step; forward mode; memory)
``claims``     the paper's claims: one scoreboard, ``--sensitivity`` over replications × rates (``--save`` commits it),
               ``--scales`` (the committed three-scale table), ``--diagnose`` (the ablations of every miss)
``table1``     the Table 1 analogue over seeds: every objective unlearned and evaluated TOFU-style; ``--frontier``
               sweeps the rate and compares frontiers (forget quality at a kept utility; two hyper-parameter
               sets), and each objective stopped at a matched forget level
``protocol``   the protocol's settings per model; ``--calibrate`` re-derives the learning rates by its rule
``objectives`` the registry: equations, weights, defaults, notebooks
``build``      rebuild a model: ``tiny`` / ``deep`` (shipped) the ``smollm2`` cache, or ``smollm2-tofu``'s shipped delta
``notebooks``  execute the notebooks in place (``--execute``), recording how in their metadata
``cache``      the on-disk run cache: ``--list`` (key, objective, setting, model, size, age, code version,
               diverged, check) or ``--clear [--older-than 7d|12h|30m]``
=============  ==================================================================================================

Every argument is checked before anything is loaded: bad input exits with status 2 and one line naming the bad
value and the valid ones (``--debug`` shows the traceback of a failure instead).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from . import protocol
from .protocol import FIGURE_SETTINGS, SETTINGS, TIERS

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
BENCH_MODELS = ("tiny", "deep", "smollm2", "smollm2-tofu")
TABLE1_MODELS = ("tiny", "deep")
#: the scoreboard's claims, in its order (a test keeps this equal to the registered rules, which need torch to import)
CLAIM_IDS = ('ga_identity', 'layer_additivity', 'npo_at_theta_o', 'first_order', 'accumulated', 'ga_spike',
             'ga_inverse_confidence', 'ga_layers', 'ga_lm_head', 'wga_vs_ga', 'npo_weight_decay',
             'npo_beta_magnitudes', 'npo_weighting', 'tnpo_vs_npo', 'po_relearning', 'rmu_layers', 'reg_gd_term',
             'reg_kl_term', 'reg_rr_term', 'table1_tradeoff', 'table1_kl_helps', 'insight_shallow_layers',
             'insight_retention', 'insight_excessive', 'insight_weighting', 'insight_kl_best')


class Parser(argparse.ArgumentParser):
    """argparse whose errors are one line (no usage block) and exit with status 2."""

    def error(self, message):
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(2)


def positive_int(s):
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r} is not an integer (expected a positive integer)")
    if v < 1:
        raise argparse.ArgumentTypeError(f"{v} is not positive (expected an integer ≥ 1)")
    return v


def nonneg_int(s):
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r} is not an integer (expected an integer ≥ 0)")
    if v < 0:
        raise argparse.ArgumentTypeError(f"{v} is negative (expected an integer ≥ 0)")
    return v


def positive_float(s):
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r} is not a number (expected a positive number)")
    if not v > 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"{s} is not a positive finite number (expected a number > 0)")
    return v


def model_name(s):
    """A built-in model name (``models.MODEL_NAMES``) or an existing model folder (hub ids need network: not accepted
    here)."""
    if Path(s).expanduser().is_dir() and (Path(s).expanduser() / "config.json").exists():
        return s
    from .models import MODEL_NAMES          # the one list of names (importing it imports torch)
    if s in MODEL_NAMES:
        return s
    raise argparse.ArgumentTypeError(f"unknown model {s!r}; valid: {', '.join(MODEL_NAMES)}, or a folder with a "
                                     "config.json")


def writable_dir(s):
    """A folder that exists and can be written, or can be created: checked before any run starts."""
    p = Path(s).expanduser()
    if p.exists() and not p.is_dir():
        raise argparse.ArgumentTypeError(f"cannot write to {s!r}: it is a file, not a folder (expected a folder "
                                         "that exists or can be created)")
    parent = p
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise argparse.ArgumentTypeError(f"cannot create {s!r}: {str(parent)!r} is a file, not a folder (expected a "
                                         "folder that exists or can be created)")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"cannot write to {s!r}: {str(parent)!r} is not writable (expected a "
                                         "folder that exists or can be created)")
    return s


def device_name(s):
    from .config import check_device
    try:
        return check_device(s)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e))


def _choices(name, valid):
    def check(s):
        if s not in valid:
            raise argparse.ArgumentTypeError(f"unknown {name} {s!r}; valid: {', '.join(valid)}")
        return s
    return check


# --- the commands (each imports what it needs only once its arguments are valid) --------------------------------
def demo(args):
    from .config import set_threads
    from .demo import run_demo
    set_threads()
    r = run_demo(args.model, args.out, args.objectives, args.setting, args.steps, progress=not args.json)
    if args.json:
        return print(json.dumps(dict(r, summary=r["summary"].to_dict("records")), indent=1, default=float))
    print(r["summary"].round(4).to_string(index=False))
    print(f"\n{r['setting']}\nwrote {r['out']}/geffects_grid.png, steps.csv, groups.csv, terms.csv, summary.csv "
          f"in {r['seconds']:.0f} s")


def report(args):
    from . import protocol, run_cache, setting_data
    from .config import device, set_threads
    from .models import describe, load_model, memorisation
    set_threads()
    model, tok = run_cache.loaded(args.model) if args.model in TIERS else load_model(args.model, device=device())
    data = run_cache.dataset()
    splits = ("forget01", "forget05", "forget10", "retain90", "retain_eval", "world_facts", "real_authors")
    if args.model == "smollm2-tofu":
        S = protocol.setting("paper", "smollm2-tofu")
        data.splits["smollm2_forget"] = setting_data.forget_rows(data, S)
        data.splits["smollm2_retain"] = setting_data.retain_pool(data, S)
        splits = ("smollm2_forget", "smollm2_retain", "world_facts")
    df = memorisation(model, tok, data, splits)
    if args.json:
        return print(json.dumps(dict(model=args.model, report=df.to_dict("records")), indent=1, default=float))
    print(f"model {args.model}: {describe(model)}")
    print(df.round(4).to_string(index=False))


def build(args):
    if args.what in ("tiny", "deep"):
        from .models.train import build_shipped
        rep = build_shipped(args.what, args.out, seed=args.seed)
    elif args.what == "smollm2":
        from .models.smollm2 import convert_smollm2
        rep = str(convert_smollm2(force=True))
    else:
        from .models.train import build_smollm2_tofu_delta
        rep = build_smollm2_tofu_delta(args.out)
    print(json.dumps(rep, indent=1, default=str))


def objectives_cmd(args):
    import pandas as pd
    from .objectives import list_objectives
    df = list_objectives()
    if args.json:
        return print(json.dumps(df.to_dict("records"), indent=1, default=str))
    with pd.option_context("display.width", 220, "display.max_colwidth", 70):
        print(df.to_string(index=False))


def protocol_cmd(args):
    from . import calibration
    if args.calibrate:
        calibration.calibrate_models(tuple(args.models or ("tiny",)), progress=not args.json)
    rows = []
    for m in args.models or tuple(TIERS):
        for name in SETTINGS:
            try:
                S = protocol.setting(name, m, fast=False)
                rows.append(dict(model=m, setting=name, description=S.describe(), optimizer=S.optimizer, lr=S.lr,
                                 lr_source="the rule, calibrated: geffect_lite/results/calibration.json",
                                 steps=S.steps, batch=S.batch, warmup=S.warmup, decay=S.decay))
            except KeyError as e:
                rows.append(dict(model=m, setting=name, description=f"not calibrated ({e.args[0]})"))
    if args.json:
        return print(json.dumps(rows, indent=1))
    import textwrap
    print(textwrap.fill(protocol.rule(), 110) + "\n")
    for r in rows:
        print(f"  {r['description']}")


def bench(args):
    from .tooling.bench import main as bench_main
    bench_main(args)


def claims(args):
    from .paper.commands import claims_main
    claims_main(args)


def table1(args):
    from .paper.commands import table1_main
    table1_main(args)


def notebooks(args):
    from .tooling.notebooks import execute
    execute(args.only, timeout=args.timeout, fast=args.fast)


def age(s):
    """An age such as 7d, 12h or 30m, in seconds."""
    from .run_store import parse_age
    try:
        return parse_age(s)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e))


def cache_cmd(args):
    from . import run_store
    if args.older_than is not None and not args.clear:
        raise ValueError("--older-than goes with --clear (e.g. cache --clear --older-than 7d)")
    from .models.smollm2 import conversion_status
    if args.list:
        rows = run_store.entries()
        if args.json:
            return print(json.dumps(rows, indent=1))
        return print(run_store.table(rows) + "\n" + conversion_status())
    n, size = run_store.clear(args.older_than)
    print(f"removed {n} cached run file(s), {size / 2 ** 20:.1f} MB, from {run_store.runs_dir()} (the SmolLM2 "
          "conversion is kept: `python -m geffect_lite build smollm2` converts it again)")


def notebook_prefix(s):
    names = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
    if not any(n.startswith(s) for n in names):
        raise argparse.ArgumentTypeError(f"no notebook starts with {s!r}; valid: {', '.join(n[:2] for n in names)}")
    return s


def parser() -> Parser:
    p = Parser(prog="python -m geffect_lite", description=__doc__.split("\n")[0])
    p.add_argument("--debug", action="store_true", help="show the traceback of a failure")
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=Parser)
    _run_commands(sub)
    _paper_commands(sub)
    _model_commands(sub)
    for name in ("demo", "report", "bench", "claims", "table1", "protocol"):      # the commands that compute
        sub.choices[name].add_argument("--device", type=device_name, default=None,
                                       help="where the models run: cpu (default) or cuda[:N]; the same code on either")
    return p


def _run_commands(sub):
    """demo, report, bench."""
    keys = tuple(dict.fromkeys(k for k, _ in protocol.DEMO.values()))
    d = sub.add_parser("demo", help="every paper objective's G-effect trajectory, figures, CSV, summary")
    d.add_argument("--model", type=_choices("model", tuple(TIERS)), default="tiny")
    d.add_argument("--setting", type=_choices("setting", ("paper", "theory")), default="paper")
    d.add_argument("--steps", type=positive_int, default=None, help="instead of the protocol's")
    d.add_argument("--objectives", nargs="+", type=_choices("objective", keys), default=None)
    d.add_argument("--out", type=writable_dir, default="outputs/demo", help="checked before anything runs")
    d.add_argument("--json", action="store_true")
    d.set_defaults(fn=demo)

    r = sub.add_parser("report", help="what a model knows, per split")
    r.add_argument("--model", type=model_name, default="tiny")
    r.add_argument("--json", action="store_true")
    r.set_defaults(fn=report)

    b = sub.add_parser("bench", help="efficiency benchmark (ratios measured side by side)")
    b.add_argument("--models", nargs="+", type=_choices("model", BENCH_MODELS), default=["tiny", "smollm2"])
    b.add_argument("--repeats", type=positive_int, default=3)
    b.add_argument("--json", action="store_true")
    b.set_defaults(fn=bench)


def _paper_commands(sub):
    """claims, table1, protocol."""
    c = sub.add_parser("claims", help="the paper's claims, checked")
    c.add_argument("--model", type=_choices("model", tuple(TIERS)), default="tiny")
    c.add_argument("--seed", type=nonneg_int, default=None, help="default: the replication")
    c.add_argument("--replication", type=nonneg_int, default=0, help="which authors are forgotten (0: the protocol's)")
    c.add_argument("--setting", type=_choices("setting", FIGURE_SETTINGS), default="paper",
                   help="where the figures' runs are made: paper (full batch) or official (the official recipe)")
    c.add_argument("--fast", action="store_true", help="the CI-size runs")
    c.add_argument("--sensitivity", action="store_true", help="every replication at every rate scale")
    c.add_argument("--replications", nargs="+", type=nonneg_int, default=[0, 1, 2, 3, 4],
                   help="with --sensitivity: the replications (distinct ints ≥ 0)")
    c.add_argument("--lr-scales", nargs="+", type=positive_float, default=[0.5, 1.0, 2.0],
                   help="with --sensitivity: the rate scales, each run at every replication (a claim is reproduced "
                        "only if it holds at ×0.5, ×1 and ×2)")
    c.add_argument("--rates-at", nargs="+", type=nonneg_int, default=None,
                   help="with --sensitivity: the other rates than ×1 only at these replications (SmolLM2: 0)")
    c.add_argument("--claims", nargs="+", type=_choices("claim", CLAIM_IDS), default=None,
                   help="only these claims (with --sensitivity --save: re-judged and merged into the committed file)")
    c.add_argument("--save", action="store_true", help="commit the sensitivity runs to geffect_lite/results")
    c.add_argument("--scales", action="store_true", help="the committed claim | paper | tiny | deep | SmolLM2 table")
    c.add_argument("--readme", default=None, help="with --scales: write the table into this README")
    c.add_argument("--diagnose", action="store_true", help="ablate every committed miss, one factor at a time")
    c.add_argument("--settings", action="store_true",
                   help="the paper's claims in the paper and the official setting, same replications, rate ×1")
    c.add_argument("--rejudge", action="store_true",
                   help="re-judge the committed diagnoses' flips (and the schedule) at replications 0-2, committed")
    c.add_argument("--models", nargs="+", type=_choices("model", tuple(TIERS)), default=None)
    c.add_argument("--json", action="store_true")
    c.set_defaults(fn=claims)

    t = sub.add_parser("table1", help="the Table 1 analogue over seeds")
    t.add_argument("--model", type=_choices("model", TABLE1_MODELS), default="tiny")
    t.add_argument("--seeds", nargs="+", type=nonneg_int, default=[0, 1, 2])
    t.add_argument("--fast", action="store_true")
    t.add_argument("--out", type=writable_dir, default="outputs/table1")
    t.add_argument("--save", action="store_true", help="commit the tables to geffect_lite/results")
    t.add_argument("--frontier", action="store_true", help="Table 1 as a frontier: GA, WGA, NPO, TNPO, WTNPO over "
                   "rates (×1/16…×1) at replications 0–2 (--seeds), official and figure hyper-parameters, and at the "
                   "retain twin's forget risk, judged by the frontier rules (docs/rules.md)")
    t.add_argument("--json", action="store_true")
    t.set_defaults(fn=table1)

    pr = sub.add_parser("protocol", help="the protocol's settings; --calibrate re-derives the learning rates")
    pr.add_argument("--calibrate", action="store_true")
    pr.add_argument("--models", nargs="+", type=_choices("model", tuple(TIERS)), default=None)
    pr.add_argument("--json", action="store_true")
    pr.set_defaults(fn=protocol_cmd)


def _model_commands(sub):
    """objectives, build, notebooks, cache."""
    o = sub.add_parser("objectives", help="list the objectives")
    o.add_argument("--json", action="store_true")
    o.set_defaults(fn=objectives_cmd)

    bu = sub.add_parser("build", help="rebuild a model: tiny | deep | smollm2 | smollm2-tofu")
    bu.add_argument("what", type=_choices("model family", ("tiny", "deep", "smollm2", "smollm2-tofu")))
    bu.add_argument("--out", default=None, help="(tiny, deep, smollm2-tofu's delta) output folder; default: the package assets")
    bu.add_argument("--seed", type=nonneg_int, default=0)
    bu.set_defaults(fn=build)

    n = sub.add_parser("notebooks", help="execute the notebooks in place")
    n.add_argument("--execute", action="store_true", required=True)
    n.add_argument("--only", nargs="+", type=notebook_prefix, default=None, help="name prefixes, e.g. 03 05")
    n.add_argument("--fast", action="store_true", help="the CI switch (committed outputs use the full protocol)")
    n.add_argument("--timeout", type=positive_int, default=900, help="seconds per cell")
    n.set_defaults(fn=notebooks)

    ca = sub.add_parser("cache", help="the on-disk run cache: list it or clear it")
    what = ca.add_mutually_exclusive_group(required=True)
    what.add_argument("--list", action="store_true", help="one line per cached run")
    what.add_argument("--clear", action="store_true", help="delete cached runs (all, or --older-than)")
    ca.add_argument("--older-than", type=age, default=None, help="with --clear: only runs older than this (7d, 12h, 30m)")
    ca.add_argument("--json", action="store_true")
    ca.set_defaults(fn=cache_cmd)


def main(argv=None):
    args = parser().parse_args(argv)
    if getattr(args, "device", None):              # every model this process (and its children) loads goes there
        os.environ["GEFFECT_DEVICE"] = args.device
    try:
        import transformers
        transformers.utils.logging.disable_progress_bar()
        transformers.utils.logging.set_verbosity_error()
    except Exception:
        pass
    try:
        args.fn(args)
    except (ValueError, KeyError, TypeError, OSError, FileNotFoundError) as e:
        if args.debug:
            raise
        msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        sys.stderr.write(f"python -m geffect_lite {args.cmd}: error: {msg}\n")
        sys.exit(2)


__all__ = ["main", "parser"]


if __name__ == "__main__":
    main()
