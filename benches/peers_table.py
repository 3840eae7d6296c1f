#!/usr/bin/env python3
"""Side-by-side solve times of scenario tax1 on the peers' economy, measured in one run:
tokencge (examples/peer_solve.rs, backend auto) against scipy-krylov and scipy-hybr (the peers'
run_all.py, each run a fresh process as the peers run it), with GAMS/PATH from its recorded
results (its demo licence expired: it cannot run here). Prints a Markdown table with, per N,
tokencge / krylov, / hybr, / PATH, the iterations of each, and the largest price difference
against scipy-hybr's solution (and GAMS/PATH's recorded solution where one exists, N <= 50).

Usage (from the repository root; numpy and scipy in the python that runs it):
  python3 benches/peers_table.py                        # N = 5 .. 2000, about 8 min on 2 cores (scipy-hybr: 80 s a run at N = 2000)
  python3 benches/peers_table.py --sizes 5,20,200 --reps 5
  TOKENCGE_PEERS=/path/to/shared/peers python3 benches/peers_table.py

The peers' folder is copied to a temporary directory first (run_all.py writes instances and
results next to itself), so the shared copy is never written to.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZES = "5,20,50,100,200,496,1000,2000"


def peers_dir():
    env = os.environ.get("TOKENCGE_PEERS")
    candidates = [env] if env else [os.path.join(ROOT, "..", "shared", "peers"),
                                     os.path.join(ROOT, "..", "..", "shared", "peers")]
    for c in candidates:
        if c and os.path.exists(os.path.join(c, "run_all.py")):
            return os.path.abspath(c)
    sys.exit("peers not found: set TOKENCGE_PEERS to the folder holding run_all.py")


def max_dprice(a, b):
    d = max(abs(x - y) for x, y in zip(a["P"], b["P"]))
    return max(d, abs(a["PK"] - b["PK"]), abs(a.get("PL", 1.0) - b.get("PL", 1.0)))


def fmt(x, digits=3):
    if x is None:
        return "–"
    if x != 0 and (abs(x) < 1e-3 or abs(x) >= 1e4):
        return f"{x:.2e}"
    return f"{x:.{digits}f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default=SIZES)
    ap.add_argument("--reps", type=int, default=3, help="runs per size (best reported)")
    ap.add_argument("--json", help="also write the measurements to this file")
    a = ap.parse_args()
    sizes = [int(s) for s in a.sizes.split(",") if s]
    peers = peers_dir()
    load0 = os.getloadavg()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())

    # tokencge: one process, every size, best of reps (the model built before the clock starts).
    subprocess.run(["cargo", "build", "--release", "--example", "peer_solve"], cwd=ROOT, check=True)
    exe = os.path.join(ROOT, "target", "release", "examples", "peer_solve")
    out = subprocess.run([exe, ",".join(map(str, sizes)), "auto", str(a.reps), "--json"],
                         cwd=ROOT, check=True, capture_output=True, text=True).stdout
    ours = {r["N"]: r for r in map(json.loads, out.splitlines())}

    # scipy: the peers' own runner, in a private copy of their folder.
    with tempfile.TemporaryDirectory(prefix="peers-") as tmp:
        work = os.path.join(tmp, "peers")
        shutil.copytree(peers, work, ignore=shutil.ignore_patterns(".venv", "results"))
        outdir = os.path.join(tmp, "results")
        subprocess.run([sys.executable, os.path.join(work, "run_all.py"), "--sizes", "",
                        "--scipy-only-sizes", ",".join(map(str, sizes)),
                        "--tools", "scipy-hybr,scipy-krylov", "--reps", str(a.reps),
                        "--outdir", outdir], check=True, capture_output=True, text=True)
        scipy = {}
        for r in json.load(open(os.path.join(outdir, "results_tax1.json"))):
            raw = os.path.join(outdir, "raw", f"tax1_{r['tool']}_N{r['N']}_H5_s1_r0.json")
            sol = json.load(open(raw)).get("solution") if os.path.exists(raw) else None
            scipy[(r["tool"], r["N"])] = dict(r, solution=sol)
    load1 = os.getloadavg()

    # GAMS/PATH: recorded (2026-11-24) solve times and, for N <= 50, solutions.
    path_rec = {r["N"]: r for r in json.load(open(os.path.join(peers, "results", "results_tax1.json")))
                if r["tool"] == "gamspy-path" and r.get("success")}
    path_sol = {}
    for n in sizes:
        f = os.path.join(peers, "data", f"cge_N{n}_H5_s1.solution.json")
        if os.path.exists(f):
            path_sol[n] = json.load(open(f))

    rows = []
    print(f"Measured {started} (1-min load average {load0[0]:.2f} before, {load1[0]:.2f} after); "
          f"best of {a.reps} runs each; GAMS/PATH recorded 2026-11-24 (not re-run).\n")
    print("| N | unknowns | tokencge s (it) | scipy-krylov s (it) | scipy-hybr s (nfev) | GAMS/PATH s, recorded (major it) "
          "| ÷ krylov | ÷ hybr | ÷ PATH | max \\|ΔP\\| vs hybr | vs PATH |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in sizes:
        t = ours.get(n)
        k = scipy.get(("scipy-krylov", n))
        h = scipy.get(("scipy-hybr", n))
        p = path_rec.get(n)
        ts = t["seconds"] if t else None
        tk = k.get("t_solve") if k and k.get("success") else None
        th = h.get("t_solve") if h and h.get("success") else None
        tp = p.get("t_solver") or p.get("t_solve") if p else None
        dh = max_dprice(t, h["solution"]) if t and h and h.get("solution") else None
        dp = max_dprice(t, path_sol[n]) if t and n in path_sol else None
        ratio = lambda x: f"{ts / x:.3g}" if ts is not None and x else "–"
        print(f"| {n} | {2 * n + 1 + 5} | {fmt(ts, 4)} ({t['iterations'] if t else '–'}) "
              f"| {fmt(tk, 4)} ({k.get('nit') if k else '–'}) | {fmt(th, 4)} ({h.get('nfev') if h else '–'}) "
              f"| {fmt(tp, 4)} ({p.get('major_iterations', '–') if p else '–'}) "
              f"| {ratio(tk)} | {ratio(th)} | {ratio(tp)} | {fmt(dh)} | {fmt(dp)} |")
        rows.append({"N": n, "tokencge": t, "scipy_krylov": k, "scipy_hybr": h, "path_recorded": p,
                     "max_dprice_vs_hybr": dh, "max_dprice_vs_path": dp})
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"started": started, "loadavg": [load0, load1], "rows": rows}, f, indent=1)
    bad = [r["N"] for r in rows if r["max_dprice_vs_hybr"] is not None and r["max_dprice_vs_hybr"] > 1e-8]
    if bad:
        print(f"\nAGREEMENT FAILURE (> 1e-8 vs scipy-hybr) at N = {bad}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
