"""Dedupe's peak memory and time against catalog size, on one real ingest output (issue 24).

The ingest output's products are repeated ``k`` times under new product ids (``<id>-r<k>``, the
same images), for each ``k`` of ``--repeats``, and dedupe runs on each as its own
``python -m ecom_kfp.cli dedupe`` subprocess, measured like ``bench_scale.py`` (wall seconds, peak
PSS of the process tree, largest ``VmHWM`` of one of its processes). The repeats are byte-identical copies, so every
product of a repeated catalog is in a duplicate group: the matching and grouping work grows with
the catalog as hashing does. What the stage holds per product, and so the growth of peak memory
from the smallest to the largest catalog, is the figure of interest: the slope in MB per 1000
products projects the 200k catalog. One JSON document goes to stdout.

    nice -n 10 python benchmarks/bench_dedupe_memory.py --products /work/cache/dedupemem/ingest10k \\
        --work /work/cache/dedupemem/bench --repeats 1,4
"""

from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import asdict
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from bench_scale import _python, measure  # benchmarks/ is on sys.path as a script

from ecom_kfp.contracts.layouts import IngestLayout

#: Products the 200k projection is made for (the issue's goal: dedupe at most 1 GB there).
PROJECTED = 200_000


def repeated_products(source: Path, repeats: int, out: Path) -> int:
    """Write ``source``'s products ``repeats`` times (new ids, same images) as an ingest output at ``out``."""
    table = pq.read_table(IngestLayout(str(source)).products)
    copies = [table] if repeats == 1 else [
        table.set_column(0, "product_id", pc.binary_join_element_wise(table["product_id"], pa.scalar(f"-r{k}"), ""))
        for k in range(repeats)]
    out.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.concat_tables(copies), IngestLayout(str(out)).products, compression="zstd")
    return table.num_rows * repeats


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark; print and return its JSON document."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", type=Path, required=True, help="an ingest output directory (absolute image URIs)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/ecom-kfp-bench-dedupe-memory"))
    parser.add_argument("--repeats", default="1,4", help="copies of the catalog per run, comma-separated, ascending")
    args = parser.parse_args(argv)
    runs = []
    for repeats in sorted(int(r) for r in args.repeats.split(",")):
        source, out = args.work / f"x{repeats}" / "ingest", args.work / f"x{repeats}" / "dedupe"
        products = repeated_products(args.products, repeats, source)
        shutil.rmtree(out, ignore_errors=True)
        command = [*_python(), "dedupe", "--products", str(source), "--out", str(out), "--no-progress"]
        run = measure("dedupe", command, out, products, args.work / f"x{repeats}" / "dedupe.log")
        runs.append(asdict(run))
    first, last = runs[0], runs[-1]
    slope = (last["peak_pss_mb"] - first["peak_pss_mb"]) / max(last["products"] - first["products"], 1)
    document = {"benchmark": "bench_dedupe_memory", "runs": runs,
                "pss_mb_per_1000_products": round(1000 * slope, 2),
                "projected_pss_mb_at_200k": round(last["peak_pss_mb"] + slope * (PROJECTED - last["products"]), 1),
                "ms_per_product_growth": round(last["ms_per_product"] / first["ms_per_product"], 3)}
    print(json.dumps(document, indent=2))
    return document


if __name__ == "__main__":
    main()
