"""``scripts/perf-history``: keep main's benchmark results per machine, and draw them.

    scripts/perf-history record [COMMIT] --machine NAME   # time COMMIT (default HEAD), store it
    scripts/perf-history dashboard --machine NAME         # write an offline HTML page

``record`` times the gated benchmarks (perf-compare's, same worker processes)
of one commit and stores ``<dir>/<machine>/<commit date>-<hash>.json``.
``dashboard`` draws every stored benchmark over the commits with matplotlib
and writes one self-contained HTML file (images inline, no scripts), which a
browser opens offline, from ``file://``.
"""
import argparse
import base64
import html
import io
import json
import os
import platform
import re
import sys
import time

from . import commits
from .compare import MODES, measure

DEFAULT_DIR = os.path.join("asv_bench", "history")


def build_parser():
    p = argparse.ArgumentParser(prog="scripts/perf-history", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record", help="benchmark one commit and store its results")
    rec.add_argument("commit", nargs="?", default="HEAD")
    rec.add_argument("--quick", action="store_true", help="perf-compare's quick set only")
    rec.add_argument("--bench", metavar="REGEX", default=None)
    rec.add_argument("--threads", choices=["1", "default"], default="1")
    rec.add_argument("--workdir", default=None)
    rec.add_argument("--log", metavar="PATH")
    dash = sub.add_parser("dashboard", help="draw the stored results into one HTML file")
    dash.add_argument("--out", default=None, help="default <dir>/<machine>.html")
    for sp in (rec, dash):
        sp.add_argument("--machine", default=os.environ.get("FASTBP_BENCH_MACHINE"),
                        help="a fixed name for this machine (or FASTBP_BENCH_MACHINE)")
        sp.add_argument("--dir", default=DEFAULT_DIR, help=f"results folder ({DEFAULT_DIR})")
        sp.add_argument("--repo", default=".")
    return p


def record(args):
    t0 = time.perf_counter()
    repo = commits.git(args.repo, "rev-parse", "--show-toplevel")
    sha = commits.resolve(repo, args.commit)
    date = commits.git(repo, "log", "-1", "--format=%cI", sha)
    source = commits.export(repo, sha, args.workdir or commits.default_workdir())
    bench_dir = os.path.join(source, "asv_bench", "benchmarks")
    mode = dict(MODES["quick" if args.quick else "full"])
    log = open(args.log, "a") if args.log else None
    try:
        samples, failed, numbers = measure(args, mode, {"this": source}, bench_dir, log,
                                           first="this")
    finally:
        if log:
            log.close()
    results = {}
    for i, s in samples.items():
        flat = sorted(t for r in s["this"] for t in r)
        rounds = [sorted(r)[len(r) // 2] for r in s["this"] if r]
        results[i] = dict(median=flat[len(flat) // 2], round_medians=rounds,
                          calls_per_sample=numbers.get(i))
    out = dict(commit=sha, date=date, machine=args.machine, recorded=time.time(),
               python=platform.python_version(), cpus=os.cpu_count(), mode=mode,
               threads=args.threads, results=results, failed=failed)
    folder = os.path.join(args.dir, args.machine)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{date[:19].replace(':', '')}-{sha[:12]}.json")
    with open(path + ".tmp", "w") as f:
        json.dump(out, f, indent=1)
    os.replace(path + ".tmp", path)
    print(f"wrote {path} ({len(results)} benchmarks) in {time.perf_counter() - t0:.0f} s")
    return 1 if failed else 0


def load(folder):
    """The stored runs of one machine, oldest commit first (a commit's latest run)."""
    runs = {}
    for name in sorted(os.listdir(folder)):
        if name.endswith(".json"):
            with open(os.path.join(folder, name)) as f:
                run = json.load(f)
            runs[run["commit"]] = run
    return sorted(runs.values(), key=lambda r: r["date"])


def _figure_png(title, runs, ids):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 3.2))
    x = list(range(len(runs)))
    for i in ids:
        med = [r["results"].get(i, {}).get("median") for r in runs]
        pts = [(k, v) for k, v in zip(x, med) if v is not None]
        if pts:
            label = i[len(title):] or i
            ax.plot([p[0] for p in pts], [p[1] * 1e3 for p in pts], "o-", ms=3, label=label)
    ax.set_title(title, fontsize=9)
    ax.set_ylabel("ms per call")
    ax.set_xticks(x)
    ax.set_xticklabels([r["commit"][:7] for r in runs], rotation=60, fontsize=7)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, loc="lower left")
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def dashboard(args):
    folder = os.path.join(args.dir, args.machine)
    if not os.path.isdir(folder):
        raise RuntimeError(f"no results for machine {args.machine!r} in {args.dir}")
    runs = load(folder)
    ids = sorted({i for r in runs for i in r["results"]})
    groups = {}
    for i in ids:
        groups.setdefault(re.sub(r"\(.*$", "", i), []).append(i)
    parts = [f"<h1>fastbp benchmarks on {html.escape(args.machine)}</h1>",
             f"<p>{len(runs)} commits, oldest first; median time per call of each benchmark "
             f"(lower is better). Recorded with <code>scripts/perf-history record</code>.</p>"]
    for title, members in groups.items():
        png = _figure_png(title, runs, members)
        parts.append(f'<h2>{html.escape(title)}</h2><img src="data:image/png;base64,{png}">')
    rows = "".join(f"<tr><td>{html.escape(r['commit'][:12])}</td><td>{html.escape(r['date'])}"
                   f"</td><td>{len(r['results'])}</td></tr>" for r in runs)
    parts.append(f"<h2>Commits</h2><table><tr><th>commit</th><th>date</th><th>benchmarks</th>"
                 f"</tr>{rows}</table>")
    out = args.out or os.path.join(args.dir, f"{args.machine}.html")
    with open(out, "w") as f:
        f.write("<!doctype html><meta charset='utf-8'><title>fastbp benchmarks</title>"
                "<body style='font-family:sans-serif'>" + "\n".join(parts) + "</body>")
    print(f"wrote {out} ({len(runs)} commits, {len(ids)} benchmarks)")
    return 0


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.machine:
        parser.error("name this machine: --machine NAME (or FASTBP_BENCH_MACHINE)")
    args.python = commits.python_with_deps()
    try:
        return record(args) if args.command == "record" else dashboard(args)
    except RuntimeError as exc:
        print(f"perf-history: {exc}", file=sys.stderr)
        return 2
