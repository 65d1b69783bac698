"""``mdseg``: the library's entry points, one subcommand per workflow stage."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mdseg.inference import Inference


def _synth(args: argparse.Namespace) -> None:
    from mdseg.synthetic import generate_dataset

    counts = {"train": args.train, "holdout": args.holdout, "val": args.val}
    counts = {k: n for k, n in counts.items() if n}
    generate_dataset(
        args.dataset, args.out, seed=args.seed, image_size=args.image_size, counts=counts
    )


def _prepare(args: argparse.Namespace) -> None:
    import logging

    from mdseg.datasets.real.prepare import prepare_dataset

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    manifest = prepare_dataset(
        args.dataset, args.source, args.out, allow_incomplete=args.allow_incomplete, jobs=args.jobs
    )
    counts = ", ".join(f"{s} {v['count']}" for s, v in manifest["splits"].items())
    print(f"{args.dataset}: {counts} -> {args.out}")


def _download(args: argparse.Namespace) -> None:
    import logging

    from mdseg.datasets.real.download import download_dataset, extract, parse_options

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    options = parse_options(args.options, args.dataset)
    archives = download_dataset(args.dataset, args.out, options)
    print("\n".join(map(str, archives)))
    if args.extract_to:
        print(f"extracted into {extract(archives, args.extract_to)}")


def _encode(args: argparse.Namespace) -> None:
    from mdseg.labels.encode import encode_datasets
    from mdseg.labels.encoders import build_encoder

    encoder = build_encoder(args.encoder, args.path or None, device=args.device)
    encode_datasets(args.datasets, encoder, args.out)


def _weights(args: argparse.Namespace) -> None:
    from mdseg.io import write_json
    from mdseg.weights import fetch_imagenet, fetch_snapshot

    fetch = fetch_imagenet if args.kind == "backbone" else fetch_snapshot
    record = fetch(args.name)
    if args.out:
        write_json(args.out, record)
    print(json.dumps(record, indent=2, sort_keys=True))


def _train(args: argparse.Namespace) -> None:
    from mdseg.experiments import check_experiment
    from mdseg.io import read_json
    from mdseg.train import train

    experiment = read_json(args.experiment)
    check_experiment(experiment, args.experiment)
    dirs = {k: args.datasets_dir / k for k in experiment["train"]}
    train(experiment, dirs, args.out, args.text_features, args.init, args.relations)


def _relations(args: argparse.Namespace) -> None:
    from mdseg.relations import compute_relations

    compute_relations(
        args.model, args.datasets_dir, args.out, args.statistic, args.images, args.device
    )


def _inference(args: argparse.Namespace) -> Inference:
    from mdseg.inference import Inference

    return Inference(
        args.window or None,
        args.stride,
        args.flip,
        args.resize_height or None,
        args.resize_short_side or None,
    )


def _evaluate(args: argparse.Namespace) -> None:
    from mdseg.evaluate import Scoring, evaluate_many

    for result in evaluate_many(
        args.model,
        args.datasets,
        args.datasets_dir,
        args.out,
        split=args.split,
        inference=_inference(args),
        device=args.device,
        threads=args.threads,
        workers=args.workers,
        scoring=Scoring(args.score_at, args.empty_union, args.aliases),
    ):
        outcome = f"skipped: {result['skipped']}" if result["skipped"] else f"mIoU {result['miou']}"
        print(f"{result['experiment']} on {result['dataset']}: {outcome}")


def _export_wilddash(args: argparse.Namespace) -> None:
    from mdseg.export import export_wilddash

    archive = export_wilddash(args.model, args.images, args.out, _inference(args), args.device)
    print(archive)


def _tables(args: argparse.Namespace) -> None:
    from mdseg.io import read_json
    from mdseg.tables.build import build_tables

    config = read_json(args.config)
    for path in build_tables(config, args.eval_dir, args.datasets_dir, args.models_dir, args.out):
        print(path)


def _launch(args: argparse.Namespace) -> None:
    from mdseg.launch import launch

    command = args.command_line[1:] if args.command_line[:1] == ["--"] else args.command_line
    if not command:
        raise ValueError("mdseg launch: give the command to start, e.g. mdseg launch -- train ...")
    code = launch(command, args.rdzv_port)
    if code:
        raise SystemExit(code)


def _plan(args: argparse.Namespace) -> None:
    from mdseg import plan
    from mdseg.cluster import settings
    from mdseg.experiments import expand_experiments
    from mdseg.io import read_json

    config = read_json(args.config)
    cluster = settings(config)
    table = plan.read_table(cluster["throughput"])
    rows = plan.plan_rows(expand_experiments(config), cluster, table)
    text = plan.format_table(rows)
    print(text)
    if args.out:
        plan.write_csv(rows, args.out)
    if args.text:
        args.text.write_text(text + "\n")


def _inference_options(s: argparse.ArgumentParser) -> None:
    s.add_argument(
        "--window", type=int, default=None, help="sliding-window size (0 or absent: whole image)"
    )
    s.add_argument("--stride", type=float, default=2 / 3, help="window stride, a fraction of it")
    s.add_argument("--flip", action="store_true", help="add the mirrored image's scores")
    s.add_argument(
        "--resize-short-side", type=int, default=None, help="inference short side (AutoUniSeg: 512)"
    )


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mdseg", description=__doc__)
    p.add_argument(
        "--debug", action="store_true", help="show the traceback of an error (default: one line)"
    )
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("synth", help="generate one synthetic dataset into the results contract")
    s.add_argument("dataset")
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--image-size", type=int, default=64)
    s.add_argument("--train", type=int, default=0, help="training images (0: an unseen dataset)")
    s.add_argument(
        "--holdout", type=int, default=0, help="held-out images (statistics training must not see)"
    )
    s.add_argument("--val", type=int, default=40)
    s.set_defaults(func=_synth)

    s = sub.add_parser("download", help="fetch a real dataset's archives (resumable, verified)")
    s.add_argument("dataset")
    s.add_argument("--out", type=Path, required=True, help="folder for the archives")
    s.add_argument(
        "--options",
        default="{}",
        help="config real.<dataset> as JSON (archives, links_file, credentials_file); secrets "
        "go in the files it names, never here",
    )
    s.add_argument("--extract-to", type=Path, default=None, help="unpack the archives here")
    s.set_defaults(func=_download)

    s = sub.add_parser(
        "prepare", help="convert an extracted real dataset into the results contract"
    )
    s.add_argument("dataset")
    s.add_argument("--source", type=Path, required=True, help="the extracted official download")
    s.add_argument("--out", type=Path, required=True)
    s.add_argument(
        "--allow-incomplete", action="store_true", help="convert a partial copy (shortfall warns)"
    )
    s.add_argument("--jobs", type=int, default=1, help="worker processes")
    s.set_defaults(func=_prepare)

    s = sub.add_parser("encode", help="encode the label descriptions of datasets")
    s.add_argument("datasets", nargs="+", help="dataset keys")
    s.add_argument("--encoder", default="minilm")
    s.add_argument("--path", default=None, help="local model folder or cached hub id")
    s.add_argument("--device", default="cpu")
    s.add_argument("--out", type=Path, required=True)
    s.set_defaults(func=_encode)

    s = sub.add_parser(
        "weights", help="fill the hub cache with pretrained weights (run where the network is)"
    )
    s.add_argument("kind", choices=["backbone", "encoder"])
    s.add_argument("name", help="backbone (ImageNet weights from timm) or text encoder hub id")
    s.add_argument("--out", type=Path, default=None, help="JSON record: revision, files, sha256")
    s.set_defaults(func=_weights)

    s = sub.add_parser("train", help="train one experiment")
    s.add_argument("--experiment", type=Path, required=True, help="experiment.json")
    s.add_argument("--datasets-dir", type=Path, default=Path("results/datasets"))
    s.add_argument("--out", type=Path, required=True)
    s.add_argument(
        "--text-features", type=Path, default=None, help="features.pt (methods reading label text)"
    )
    s.add_argument("--init", type=Path, default=None, help="model.pt to start from (its init)")
    s.add_argument("--relations", type=Path, default=None, help="relations.pt (C-R BCE)")
    s.set_defaults(func=_train)

    s = sub.add_parser("relations", help="UniSeg's class relations (eq. 6-7) from a cosine model")
    s.add_argument("--model", type=Path, required=True, help="the cosine model's model.pt")
    s.add_argument("--datasets-dir", type=Path, default=Path("results/datasets"))
    s.add_argument("--out", type=Path, required=True, help="folder for relations.pt and CSVs")
    s.add_argument("--statistic", choices=["cosine", "sigmoid"], default="cosine")
    s.add_argument("--images", type=int, default=None, help="per dataset (default: all)")
    s.add_argument("--device", default="auto")
    s.set_defaults(func=_relations)

    s = sub.add_parser("evaluate", help="evaluate a model on datasets (one JSON each)")
    s.add_argument("--model", type=Path, required=True)
    s.add_argument("--datasets", nargs="+", required=True, help="the workflow passes one")
    s.add_argument("--datasets-dir", type=Path, default=Path("results/datasets"))
    s.add_argument("--split", default="val")
    s.add_argument("--resize-height", type=int, default=None, help="inference rows (UniSeg: 1080)")
    _inference_options(s)
    s.add_argument("--device", default="auto")
    s.add_argument("--threads", type=int, default=1)
    s.add_argument("--workers", type=int, default=0, help="DataLoader processes decoding images")
    s.add_argument(
        "--score-at",
        choices=["label", "inference"],
        default="label",
        help="compare at the labels' size, or at the scored size (UniSeg: labels resized there)",
    )
    s.add_argument(
        "--empty-union",
        choices=["skip", "zero"],
        default="skip",
        help="classes with an empty union: left out of the mean, or IoU 0 (UniSeg's evaluator)",
    )
    s.add_argument(
        "--aliases",
        choices=["max", "one_channel"],
        default="max",
        help="a class matching several model classes: best of them, or one (UniSeg's evaluator)",
    )
    s.add_argument("--out", type=Path, required=True, help="folder for <dataset>.json")
    s.set_defaults(func=_evaluate)

    s = sub.add_parser(
        "export-wilddash", help="write a model's WildDash 2 benchmark submission (PNG ids + zip)"
    )
    s.add_argument("--model", type=Path, required=True)
    s.add_argument("--images", type=Path, required=True, help="folder of WildDash 2 test images")
    s.add_argument("--out", type=Path, required=True, help="folder for the PNGs; <out>.zip beside")
    s.add_argument(
        "--resize-height", type=int, default=1080, help="inference height (0: native size)"
    )
    _inference_options(s)
    s.add_argument("--device", default="auto")
    s.set_defaults(func=_export_wilddash)

    s = sub.add_parser("tables", help="write the papers' tables with our numbers beside them")
    s.add_argument("--config", type=Path, required=True, help="the workflow config as JSON")
    s.add_argument("--eval-dir", type=Path, default=Path("results/eval"))
    s.add_argument("--datasets-dir", type=Path, default=Path("results/datasets"))
    s.add_argument("--models-dir", type=Path, default=Path("results/models"))
    s.add_argument("--out", type=Path, default=Path("results/tables"))
    s.set_defaults(func=_tables)

    s = sub.add_parser(
        "launch", help="start an mdseg command on the GPUs this job holds (torchrun when > 1)"
    )
    s.add_argument("--rdzv-port", type=int, default=29500, help="rendezvous port (several nodes)")
    s.add_argument("command_line", nargs=argparse.REMAINDER, help="-- then the mdseg command")
    s.set_defaults(func=_launch)

    s = sub.add_parser(
        "plan", help="GPUs, images, GPU-hours, wall time and SLURM jobs of each experiment"
    )
    s.add_argument("--config", type=Path, required=True, help="the workflow config as JSON")
    s.add_argument("--out", type=Path, default=None, help="write the plan as CSV")
    s.add_argument("--text", type=Path, default=None, help="write the printed table")
    s.set_defaults(func=_plan)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; an expected failure is one ``error:`` line and exit status 1."""
    args = parser().parse_args(argv)
    try:
        args.func(args)
    except KeyboardInterrupt:
        print(f"mdseg {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if args.debug:
            raise
        print(f"mdseg {args.command}: error: {_message(err)}", file=sys.stderr)
        return 1
    return 0


def _message(err: Exception) -> str:
    """One line for the user; any URL in it is redacted (signed links are secrets)."""
    from mdseg.errors import EXPECTED, one_line
    from mdseg.secrets import redact

    if isinstance(err, EXPECTED):
        return redact(one_line(err))
    return (
        f"{type(err).__name__}: {redact(one_line(err))} (unexpected; rerun with --debug for "
        "the traceback, and please report it)"
    )


if __name__ == "__main__":
    sys.exit(main())
