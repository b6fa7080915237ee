"""Ingest's peak memory and speed on demo catalogs of two sizes: does memory stay flat (issue 24)?

For each catalog directory (written by ``ecom-kfp demo-catalog``, e.g. by ``bench_scale.py``) its
images are served on loopback and ingest runs as ``bench_scale.py`` runs it, in a subprocess. Per
size: wall seconds, products/s, CPU seconds of the process tree (steadier than wall time on a
shared machine), ``peak_pss_mb`` (the process tree's largest summed PSS, polled as in
``bench_scale.py``) and ``vmhwm_mb`` (the ingest process's own ``VmHWM`` read from
``/proc/self/status`` as it exits; ``ru_maxrss`` would inherit this script's peak across fork/exec).
Then the growth of each memory figure from the smallest to the largest catalog, against the
issue's goal of 1.25x.

``--baseline DIR`` runs the same on another copy of the package (a directory holding an
``ecom_kfp/``, e.g. ``git archive`` of an earlier commit) and prints both with the ratios ours /
baseline: the before/after comparison of benchmarks/README.md. ``--repeat K`` adds the last catalog
written K times over (distinct ids and image URLs, the same image files) as a larger size without
generating more photos. One JSON document goes to stdout.

    nice -n 10 python benchmarks/bench_ingest_memory.py \\
        --catalogs /work/cache/scale/final/catalogs/demo-2000-320,/work/cache/scale/final/catalogs/demo-10000-320
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from bench_scale import MAX_GROWTH, ingest_command, measure

from ecom_kfp.demo.serve import serve_directory

REPO = Path(__file__).resolve().parents[1]
#: Runs the CLI, then writes the process's own ``VmHWM`` (kB) to the file named by ``HWM_FILE``.
_WITH_HWM = ("import atexit, os, runpy\n"
             "def _hwm():\n"
             "    line = next(x for x in open('/proc/self/status') if x.startswith('VmHWM:'))\n"
             "    open(os.environ['HWM_FILE'], 'w').write(line.split()[1])\n"
             "atexit.register(_hwm)\n"
             "runpy.run_module('ecom_kfp.cli', run_name='__main__')\n")


def run_one(catalog: Path, package_root: Path, work: Path) -> dict:
    """Ingest ``catalog`` with the ``ecom_kfp`` found under ``package_root``; its figures."""
    products = json.loads((catalog / "report.json").read_text())["products"]
    out, hwm = work / "ingest", work / "vmhwm.kb"
    os.environ["PYTHONPATH"] = str(package_root)
    os.environ["HWM_FILE"] = str(hwm)
    os.chdir(work)  # ``python -c`` puts the working directory first: a checkout there would shadow PYTHONPATH
    with serve_directory(catalog / "images") as base_url:
        command = ingest_command(catalog, base_url, out)
        cli = command.index("ingest")
        run = measure("ingest", [sys.executable, "-c", _WITH_HWM, *command[cli:]], out, products, work / "ingest.log")
    if run.exit_code != 0:
        raise RuntimeError(f"ingest failed on {catalog}; see {work / 'ingest.log'}")
    report = json.loads((out / "report.json").read_text())
    return {"products": products, "seconds": run.seconds, "products_per_second": run.products_per_second,
            "cpu_seconds": run.cpu_seconds, "peak_pss_mb": run.peak_pss_mb, "vmhwm_mb": round(int(hwm.read_text()) / 1024, 1),
            "accepted": report["accepted"], "rejected": report["rejected"]}


def repeated(catalog: Path, times: int, work: Path) -> Path:
    """``catalog`` written ``times`` times over under ``work``, each copy's product ids and image URLs
    made distinct (``-r<k>``, ``?r=<k>``: the loopback server ignores the query), its images shared."""
    root = work / f"{catalog.name}-x{times}"
    root.mkdir(parents=True, exist_ok=True)
    (root / "images").unlink(missing_ok=True)
    (root / "images").symlink_to((catalog / "images").resolve())
    shutil.copy(catalog / "business_value.csv", root / "business_value.csv")
    lines = (catalog / "catalog.jsonl").read_text(encoding="utf-8").splitlines()
    with open(root / "catalog.jsonl", "w", encoding="utf-8") as out:
        for copy in range(times):
            for line in lines:
                try:
                    record = json.loads(line)
                except ValueError:  # the demo's planted malformed lines stay as they are
                    record = None
                if copy and isinstance(record, dict):
                    for key, suffix in (("product_id", f"-r{copy}"), ("image_url", f"?r={copy}")):
                        if isinstance(record.get(key), str) and record[key]:
                            record[key] += suffix
                out.write((json.dumps(record) if copy and isinstance(record, dict) else line) + "\n")
    (root / "report.json").write_text(json.dumps({"products": times * len(lines)}))
    return root


def series(catalogs: list[Path], package_root: Path) -> dict:
    """Every catalog ingested with one package, and the memory growth from the first to the last."""
    runs = []
    for catalog in catalogs:
        with tempfile.TemporaryDirectory(prefix="bench-ingest-memory-") as work:
            print(f"bench_ingest_memory: {package_root}: {catalog.name} ...", file=sys.stderr, flush=True)
            runs.append(run_one(catalog, package_root, Path(work)))
    small, large = runs[0], runs[-1]
    grown = {key: round(large[key] / small[key], 3) for key in ("peak_pss_mb", "vmhwm_mb")}
    return {"runs": runs, "memory_growth": grown, "goal_max_growth": MAX_GROWTH,
            "memory_flat": all(value <= MAX_GROWTH for value in grown.values())}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--catalogs", required=True,
                        help="demo catalog directories, comma-separated, smallest first")
    parser.add_argument("--repeat", type=int, default=1,
                        help="also ingest the last catalog repeated this many times (ids and URLs made distinct)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/ecom-kfp-bench-ingest-memory"),
                        help="where --repeat writes its catalog")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="directory holding another ecom_kfp/ to compare with (e.g. the code before a change)")
    args = parser.parse_args(argv)
    catalogs = [Path(c) for c in args.catalogs.split(",")]
    if args.repeat > 1:
        catalogs.append(repeated(catalogs[-1], args.repeat, args.work))
    result = {"ours": series(catalogs, REPO)}
    if args.baseline is not None:
        base = series(catalogs, args.baseline)
        result["baseline"] = base
        result["ratio_ours_to_baseline"] = [
            {"products": o["products"], **{key: round(o[key] / b[key], 3)
                                           for key in ("peak_pss_mb", "vmhwm_mb", "products_per_second", "cpu_seconds")}}
            for o, b in zip(result["ours"]["runs"], base["runs"], strict=True)]
    return result


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
