"""``ecom-kfp``: every stage and pipeline action as a CLI verb (docs/design.md rule 3).

Each verb lives next to its stage in ``ecom_kfp/<stage>/cli.py`` with a ``register(subparsers)``
function; this module only wires them up. Stage modules are imported when their verb runs, not
before, so ``ecom-kfp --help`` does not pay for TensorFlow.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from ecom_kfp import __version__
from ecom_kfp.console import quiet_terminal

#: verb -> (module with ``register(subparsers)``, one-line help)
VERBS: dict[str, tuple[str, str]] = {
    "demo-catalog": ("ecom_kfp.demo.cli", "write the deterministic demo catalog (and serve it)"),
    "ingest": ("ecom_kfp.ingest.cli", "read a catalog, fetch images, write a clean products table"),
    "dedupe": ("ecom_kfp.dedupe.cli", "find exact and near duplicate products, keep one per group"),
    "tfrecord-build": ("ecom_kfp.tfrecord_build.cli", "split, label, embed titles and write TFRecord shards"),
    "train": ("ecom_kfp.train.cli", "train the classifier with Horovod (horovodrun --np N)"),
    "ensemble": ("ecom_kfp.ensemble.cli", "average trained models into one served model"),
    "evaluate": ("ecom_kfp.evaluate.cli", "score a model, write plots and the blessing decision"),
    "push": ("ecom_kfp.push.cli", "register a blessed model in MLflow and copy it for serving"),
    "predict": ("ecom_kfp.predict.cli", "score a products table with a trained, pushed or registered model"),
    "compile": ("ecom_kfp.pipelines.cli", "compile pipelines and components to YAML"),
    "validate": ("ecom_kfp.pipelines.cli", "strictly validate compiled pipeline/component YAML"),
    "run-local": ("ecom_kfp.pipelines.cli", "run the training pipeline locally with kfp.local"),
    "submit": ("ecom_kfp.pipelines.cli", "submit a compiled pipeline to a Kubeflow Pipelines host"),
}


#: Verbs that load TensorFlow, gensim, MLflow or kfp.local: their chatter goes to the log file.
QUIET_VERBS = frozenset(VERBS) - {"compile", "validate", "submit"}

DESCRIPTION = "E-commerce catalog -> registered product-category classifier, stage by stage."
EPILOG = ("verbs:\n" + "\n".join(f"  {v:<16} {h}" for v, (_, h) in VERBS.items())
          + "\n\nRun 'ecom-kfp VERB --help' for a verb's flags.")


def _add_output_flags(parser: argparse.ArgumentParser, default: object) -> None:
    parser.add_argument("-v", "--verbose", action="store_true", default=default,
                        help="show library and child-process output on the terminal, not only in the log file")
    parser.add_argument("--log-file", metavar="PATH", default=default,
                        help="where library and child-process output goes (default: ecom-kfp.log in the verb's "
                             "local --out directory, else ./ecom-kfp-VERB.log)")


def _top_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ecom-kfp", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"ecom-kfp {__version__}")
    _add_output_flags(parser, default=None)
    return parser


def build_parser(verb: str | None = None) -> argparse.ArgumentParser:
    """The CLI parser; with ``verb``, only that verb's module is imported and registered."""
    parser = _top_parser()
    subparsers = parser.add_subparsers(dest="verb", metavar="VERB")
    modules = [VERBS[verb][0]] if verb in VERBS else sorted({m for m, _ in VERBS.values()})
    for module in modules:
        importlib.import_module(module).register(subparsers)
    for verb_parser in subparsers.choices.values():
        # Also after the verb (``ecom-kfp run-local --verbose``); SUPPRESS keeps a value given before it.
        _add_output_flags(verb_parser, default=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ecom-kfp`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    verb = next((a for a in argv if not a.startswith("-")), None)
    if verb is None:
        _top_parser().parse_args(argv)  # handles --help / --version
        _top_parser().print_help()
        return 2
    if verb not in VERBS:
        print(f"ecom-kfp: unknown verb {verb!r}; choose from: {', '.join(VERBS)}", file=sys.stderr)
        return 2
    args = build_parser(verb).parse_args(argv)
    if verb in QUIET_VERBS:
        log = Path(log_file(verb, args)).resolve()
        new_dir = not log.parent.exists()
        with quiet_terminal(log, verbose=args.verbose, stdout_to_log=verb == "run-local"):
            code = int(args.func(args) or 0)
        if code and new_dir and [p.name for p in log.parent.iterdir()] == [log.name]:
            # A verb refused on its flags leaves no output directory behind, not even for its log.
            shutil.rmtree(log.parent)
        return code
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return int(args.func(args) or 0)


def log_file(verb: str, args: argparse.Namespace) -> str:
    """``--log-file``, else ``ecom-kfp.log`` in a local ``--out`` directory, else ``./ecom-kfp-VERB.log``."""
    if args.log_file:
        return args.log_file
    out = getattr(args, "out", None) or getattr(args, "out_uri", None) or ""
    if out and "://" not in out:
        return str(Path(out) / "ecom-kfp.log")
    return f"ecom-kfp-{verb}.log"


if __name__ == "__main__":
    sys.exit(main())
