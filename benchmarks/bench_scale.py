"""How each data stage's time and memory grow with the catalog: ingest -> dedupe -> tfrecord-build.

For every size (default 10k, 50k and 200k products) the demo generator writes a catalog at a
realistic image size (320 px by default) with its planted duplicates and faults; its images are
served on loopback; then each stage runs as its own ``python -m ecom_kfp.cli`` subprocess on the
previous stage's output. Per stage and size it measures:

- ``seconds`` (wall) and ``cpu_seconds`` (user + system of every process of the stage's tree,
  polled every :data:`POLL_SECONDS`; a shared machine disturbs it far less than wall time), per
  product and products/s. Polling, because the build's writers are children of a forkserver that
  nobody reaps, so ``wait4`` would not see them (its figure is kept as ``cpu_seconds_reaped``);
- ``peak_rss_mb``: the largest resident set of any one process of the stage's tree (its ``VmHWM``,
  polled every :data:`POLL_SECONDS`; not ``wait4``'s ``ru_maxrss``, which Linux carries across
  fork and exec, so it would give this script's own peak when that is larger);
- ``peak_pss_mb``: the largest sum over the stage's process tree of proportional set sizes
  (``/proc/PID/smaps_rollup``, polled every :data:`POLL_SECONDS`): what the tree holds, with pages
  shared between a forkserver and its workers counted once, as a pod's memory limit sees them;
- ``peak_anon_mb``: the same peak of the tree's anonymous memory only (``Pss_Anon``): its heaps,
  without the pages of files it maps. A shared library's pages are divided among every process on
  the machine that maps them, so another job importing TensorFlow changes the build's PSS by
  hundreds of MB while the build does the same (measured: one forkserver at 215-498 MB with the
  same two writers); anonymous pages are shared only within the stage's own tree, so this figure
  is the one the memory goals are judged on, with the PSS beside it;
- ``output_bytes`` of the stage's output directory.

Then, per stage, the growth from the smallest to the largest size of per-product time (wall and
CPU) and of peak memory, and the issue's goals: per-product time within 1.25x, ingest and build
peak memory within 1.25x, dedupe peak memory at most 1 GB at the largest size.

Catalogs are kept under ``--work`` and reused when their ``report.json`` matches (generation is
not measured); stage outputs are deleted after measuring unless ``--keep``. Each size's result is
saved to ``--work/results/size-<N>.json`` as soon as it is measured, and ``--reuse-results`` takes
saved sizes instead of re-running them, so a long run can be completed in parts. One JSON
document goes to stdout; progress goes to stderr.

    nice -n 10 python benchmarks/bench_scale.py --work /work/cache/scale > scale.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil
from _common import process_status_kb  # benchmarks/ is on sys.path as a script

from ecom_kfp import uri
from ecom_kfp.demo.serve import serve_directory

STAGES = ("ingest", "dedupe", "tfrecord-build")
#: Growth allowed from the smallest to the largest size (the issue's goals).
MAX_GROWTH = 1.25
#: Dedupe's peak memory goal at the largest size, in MB.
DEDUPE_MAX_MB = 1024
POLL_SECONDS = 0.25


@dataclass
class StageRun:
    """One stage on one catalog size (see the module docstring for each figure)."""

    stage: str
    products: int
    seconds: float
    cpu_seconds: float
    cpu_seconds_reaped: float
    products_per_second: float
    ms_per_product: float
    cpu_ms_per_product: float
    peak_rss_mb: float
    peak_pss_mb: float
    peak_anon_mb: float
    output_bytes: int
    exit_code: int


def _python() -> list[str]:
    return [sys.executable, "-m", "ecom_kfp.cli"]


def ingest_command(catalog: Path, images_base: str, out: Path) -> list[str]:
    """The one ingest invocation of the benchmark (source policies and flags go here)."""
    return [*_python(), "ingest", "--catalog", str(catalog / "catalog.jsonl"), "--images-base", images_base,
            "--business-value", str(catalog / "business_value.csv"), "--allow-private-networks", "--out", str(out),
            "--no-progress"]


def stage_commands(catalog: Path, images_base: str, outputs: Path) -> dict[str, tuple[list[str], Path]]:
    """Each stage's command line and output directory; each reads the previous stage's output."""
    ingest, dedupe, dataset = outputs / "ingest", outputs / "dedupe", outputs / "dataset"
    return {
        "ingest": (ingest_command(catalog, images_base, ingest), ingest),
        "dedupe": ([*_python(), "dedupe", "--products", str(ingest), "--out", str(dedupe), "--no-progress"], dedupe),
        "tfrecord-build": ([*_python(), "tfrecord-build", "--products", str(dedupe), "--out", str(dataset),
                            "--no-progress"], dataset),
    }


def ensure_catalog(work: Path, products: int, image_size: int, seed: int) -> Path:
    """The demo catalog of this size under ``work/catalogs``, generated unless a matching one is there."""
    root = work / "catalogs" / f"demo-{products}-{image_size}"
    report = root / "report.json"
    if report.exists():
        saved = json.loads(report.read_text())
        if saved.get("products") == products and saved.get("seed") == seed and \
                json.loads((root / "truth.json").read_text()).get("image_size") == image_size:
            return root
    shutil.rmtree(root, ignore_errors=True)
    subprocess.run([*_python(), "demo-catalog", "--out", str(root), "--products", str(products), "--seed", str(seed),
                    "--image-size", str(image_size), "--no-progress"], check=True, stdout=sys.stderr)
    return root


def _sample_tree(root: psutil.Process, cpu: dict[tuple[int, float], float]) -> tuple[float, float, float]:
    """Sums of proportional set sizes (all pages, and anonymous pages only) of ``root`` and its
    descendants, and the largest peak resident set (``VmHWM``) of any one of them, in MB; records
    each process's own CPU seconds in ``cpu`` (keyed by pid and start time, so a reused pid is
    another process)."""
    totals = {"Pss:": 0, "Pss_Anon:": 0}
    largest_hwm_kb = 0
    try:
        tree = [root, *root.children(recursive=True)]
    except psutil.Error:  # the stage has just ended
        return 0.0, 0.0, 0.0
    for proc in tree:
        try:
            times = proc.cpu_times()
            cpu[(proc.pid, proc.create_time())] = times.user + times.system
            largest_hwm_kb = max(largest_hwm_kb, process_status_kb("VmHWM", proc.pid))
            with open(f"/proc/{proc.pid}/smaps_rollup", encoding="ascii") as fh:
                for line in fh:
                    key, value, *_ = line.split()
                    if key in totals:
                        totals[key] += int(value) * 1024
        except (OSError, psutil.Error, StopIteration):  # StopIteration: a zombie's status has no VmHWM
            continue
    return totals["Pss:"] / 1e6, totals["Pss_Anon:"] / 1e6, largest_hwm_kb * 1024 / 1e6


def measure(stage: str, command: list[str], out: Path, products: int, log: Path) -> StageRun:
    """Run ``command`` to completion, polling its process tree's memory; its output goes to ``log``."""
    with open(log, "w", encoding="utf-8") as log_file:
        start = time.perf_counter()
        proc = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT)
        watched = psutil.Process(proc.pid)
        peak_pss = peak_anon = peak_rss = 0.0
        cpu: dict[tuple[int, float], float] = {}
        done = threading.Event()

        def poll() -> None:
            nonlocal peak_pss, peak_anon, peak_rss
            while not done.wait(POLL_SECONDS):
                pss, anon, rss = _sample_tree(watched, cpu)
                peak_pss, peak_anon, peak_rss = max(peak_pss, pss), max(peak_anon, anon), max(peak_rss, rss)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        # wait4 gives the child's own CPU time, its reaped children's included.
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        done.set()
        poller.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
    polled = sum(cpu.values())
    return StageRun(stage=stage, products=products, seconds=round(seconds, 2), cpu_seconds=round(polled, 2),
                    cpu_seconds_reaped=round(usage.ru_utime + usage.ru_stime, 2),
                    products_per_second=round(products / seconds, 1),
                    ms_per_product=round(1000 * seconds / products, 3),
                    cpu_ms_per_product=round(1000 * polled / products, 3),
                    peak_rss_mb=round(peak_rss, 1), peak_pss_mb=round(peak_pss, 1),
                    peak_anon_mb=round(peak_anon, 1),
                    output_bytes=_bytes_under(out), exit_code=proc.returncode)


def _bytes_under(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


def _phase_seconds(out: Path) -> dict[str, float]:
    """The stage's own per-phase wall times from its ``report.json`` (ingest calls them ``timings``)."""
    report = out / "report.json"
    if not report.exists():
        return {}
    saved = uri.read_json(str(report))
    return {k: round(v, 2) for k, v in (saved.get("seconds") or saved.get("timings") or {}).items()}


def run_size(work: Path, products: int, image_size: int, seed: int, keep: bool,
             stages: tuple[str, ...] = STAGES) -> dict:
    """Generate (or reuse) the catalog and measure ``stages`` (a prefix of :data:`STAGES`) on it."""
    catalog = ensure_catalog(work, products, image_size, seed)
    outputs = work / "runs" / f"size-{products}"
    shutil.rmtree(outputs, ignore_errors=True)
    outputs.mkdir(parents=True)
    runs: dict[str, dict] = {}
    try:
        with serve_directory(catalog / "images") as base_url:
            for stage, (command, out) in stage_commands(catalog, base_url, outputs).items():
                if stage not in stages:
                    break
                print(f"bench_scale: {products} products: {stage} ...", file=sys.stderr, flush=True)
                run = measure(stage, command, out, products, outputs / f"{stage}.log")
                if run.exit_code != 0:
                    raise RuntimeError(f"{stage} failed on {products} products; see {outputs / f'{stage}.log'}")
                runs[stage] = {**asdict(run), "phases": _phase_seconds(out)}
                print(f"bench_scale: {products} products: {stage} {run.seconds:.1f} s, "
                      f"{run.peak_pss_mb:.0f} MB", file=sys.stderr, flush=True)
    finally:
        if not keep:
            shutil.rmtree(outputs, ignore_errors=True)
    return {"products": products, "image_size": image_size, "stages": runs, "load_average": os.getloadavg(),
            "cpus": os.cpu_count()}


def growth(results: list[dict]) -> dict:
    """Per stage, largest-size figure / smallest-size figure of per-product time and of peak memory."""
    if len(results) < 2:
        return {}
    small, large = results[0], results[-1]
    out = {}
    for stage in STAGES:
        if stage not in small["stages"] or stage not in large["stages"]:
            continue
        a, b = small["stages"][stage], large["stages"][stage]
        out[stage] = {"from": small["products"], "to": large["products"],
                      "ms_per_product": round(b["ms_per_product"] / a["ms_per_product"], 3),
                      "cpu_ms_per_product": round(b["cpu_ms_per_product"] / a["cpu_ms_per_product"], 3),
                      "peak_pss": round(b["peak_pss_mb"] / a["peak_pss_mb"], 3),
                      "peak_anon": round(b["peak_anon_mb"] / a["peak_anon_mb"], 3),
                      "peak_rss": round(b["peak_rss_mb"] / a["peak_rss_mb"], 3)}
    return out


def goals(results: list[dict], grown: dict) -> dict:
    """The issue's goals, each with the figure it is judged on and whether it is met."""
    if not grown:
        return {}
    out = {}
    for stage, g in grown.items():
        out[f"{stage}: per-product time growth <= {MAX_GROWTH}"] = {
            "wall": g["ms_per_product"], "cpu": g["cpu_ms_per_product"],
            "met_wall": g["ms_per_product"] <= MAX_GROWTH, "met_cpu": g["cpu_ms_per_product"] <= MAX_GROWTH}
    for stage in ("ingest", "tfrecord-build"):
        if stage in grown:
            out[f"{stage}: peak memory growth <= {MAX_GROWTH}"] = {
                "anon": grown[stage]["peak_anon"], "pss": grown[stage]["peak_pss"],
                "met": grown[stage]["peak_anon"] <= MAX_GROWTH, "met_pss": grown[stage]["peak_pss"] <= MAX_GROWTH}
    if "dedupe" in grown:
        largest = results[-1]["stages"]["dedupe"]
        out[f"dedupe: peak memory <= {DEDUPE_MAX_MB} MB at {results[-1]['products']}"] = {
            "anon_mb": largest["peak_anon_mb"], "pss_mb": largest["peak_pss_mb"],
            "met": largest["peak_anon_mb"] <= DEDUPE_MAX_MB, "met_pss": largest["peak_pss_mb"] <= DEDUPE_MAX_MB}
    return out


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark; print and return its JSON document."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,50000,200000", help="catalog sizes, comma-separated, ascending")
    parser.add_argument("--image-size", type=int, default=320, help="side of the demo photos in pixels")
    parser.add_argument("--seed", type=int, default=0, help="demo catalog seed")
    parser.add_argument("--work", type=Path, default=Path("/tmp/ecom-kfp-bench-scale"),
                        help="where catalogs, stage outputs and per-size results go")
    parser.add_argument("--keep", action="store_true", help="keep the stage outputs")
    parser.add_argument("--reuse-results", action="store_true",
                        help="take a size's saved result from --work/results instead of running it")
    parser.add_argument("--stages", default=",".join(STAGES),
                        help="stages to measure, a prefix of ingest,dedupe,tfrecord-build (each reads the one before)")
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    stages = tuple(args.stages.split(","))
    if stages != STAGES[:len(stages)]:
        parser.error(f"--stages must be a prefix of {','.join(STAGES)}, got {args.stages}")
    saved = args.work / "results"
    saved.mkdir(parents=True, exist_ok=True)
    results = []
    for products in sizes:
        path = saved / f"size-{products}.json"
        if args.reuse_results and path.exists():
            results.append(json.loads(path.read_text()))
            continue
        result = run_size(args.work, products, args.image_size, args.seed, args.keep, stages)
        path.write_text(json.dumps(result, indent=2) + "\n")
        results.append(result)
    grown = growth(results)
    document = {"benchmark": "bench_scale", "sizes": results, "growth": grown, "goals": goals(results, grown)}
    print(json.dumps(document, indent=2))
    return document


if __name__ == "__main__":
    main()
