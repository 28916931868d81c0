"""Command line: `fedlingua run | compare | evaluate | predict | export | audit | data inspect |
model prepare | analyze distance`.

Overrides are dotted `key=value` pairs applied on top of the TOML config, e.g.
`fedlingua run federation.rounds=3 method.name=lora data.source=sib200`.
"""

from __future__ import annotations

import argparse
import os
import sys

from fedlingua.config import ConfigError, RunConfig


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fedlingua",
        description="Multilingual federated parameter-efficient fine-tuning.",
    )
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="run one experiment (or resume one)")
    r.add_argument("--config", help="TOML run config")
    r.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its last round")
    r.add_argument("overrides", nargs="*", help="dotted key=value overrides")

    c = sub.add_parser("compare", help="several paradigm:method rows on the same data")
    c.add_argument("--config", help="TOML run config shared by all rows")
    c.add_argument(
        "--rows",
        help="comma-separated paradigm:method rows (default: the config's compare.rows, else "
        "federated:prompt-encoder,monolingual:prompt-encoder,centralized:prompt-encoder)",
    )
    c.add_argument("overrides", nargs="*", help="dotted key=value overrides")

    _add_use_commands(sub)

    a = sub.add_parser(
        "audit",
        help="membership-inference leakage audit of a run's final model(s) (writes audit.json)",
    )
    a.add_argument("run_dir")
    a.add_argument("--which", choices=("final", "best"), default="final")
    a.add_argument("--bootstrap", type=int, default=1000, help="resamples for the AUC interval")

    d = sub.add_parser("data", help="data utilities")
    dsub = d.add_subparsers(dest="data_command", required=True)
    di = dsub.add_parser("inspect", help="languages, split sizes, labels, token lengths")
    di.add_argument("source", nargs="?", help="cldr (default), a preset, hf:<id> or a folder")
    di.add_argument("--root", help="data root for presets")
    di.add_argument("--languages", help="comma-separated subset")
    di.add_argument("--model", default=None, help="tokenizer for token-length percentiles")
    di.add_argument("--skip-bad-rows", action="store_true", help="skip and count bad rows")
    di.add_argument("--columns", help="column mapping, e.g. text=headline+text,label=category")
    di.add_argument("--quoting", choices=("csv", "none"), help="tsv/csv quoting of a folder")
    di.add_argument("--splits", help="split -> file stem, e.g. train=dev,dev=dev,test=test")
    di.add_argument("--config", help="read source, root, columns... from a run config's [data]")

    _add_analysis_commands(sub)

    m = sub.add_parser("model", help="model utilities")
    msub = m.add_subparsers(dest="model_command", required=True)
    mp = msub.add_parser("prepare", help="convert/cache a model and print its parameter counts")
    mp.add_argument("name", nargs="?", default="e5-small")
    mp.add_argument("--force", action="store_true", help="convert again even if cached")
    return p


def _add_use_commands(sub) -> None:
    """evaluate, predict, export: what uses a trained run."""
    e = sub.add_parser(
        "evaluate",
        help="score a run's saved model on its test split, or on another dataset (--data)",
    )
    e.add_argument("run_dir")
    e.add_argument("--which", choices=("final", "best"), default="final")
    e.add_argument("--data", metavar="SOURCE", help="another dataset: folder, preset, cldr, hf:")
    e.add_argument("--languages", help="comma-separated languages of --data (default: all)")
    e.add_argument("--columns", help="column mapping of --data, e.g. text=headline,label=topic")
    e.add_argument("--root", help="data root for a preset --data")
    e.add_argument("--quoting", choices=("csv", "none"), help="quoting of --data's tsv/csv")

    pr = sub.add_parser("predict", help="label texts with a trained run (JSON lines out)")
    pr.add_argument("run_dir", help="a run directory or a `fedlingua export` folder")
    pr.add_argument(
        "--input", metavar="FILE", help="tsv/csv/jsonl (run's columns), text lines, or -"
    )
    pr.add_argument("--text", action="append", help="a text to label (repeatable)")
    pr.add_argument("--lang", help="language of the texts (needed by monolingual runs)")
    pr.add_argument("--which", choices=("final", "best"), default="final")
    pr.add_argument("--top-k", type=int, default=None, help="keep the k most probable labels")
    pr.add_argument("--output", metavar="FILE", help="write JSON lines here (default: stdout)")
    pr.add_argument("--columns", help="column mapping of --input (default: the run's data.columns)")

    x = sub.add_parser("export", help="a run as a PEFT adapter + head + model card folder")
    x.add_argument("run_dir")
    x.add_argument("out_dir")
    x.add_argument("--which", choices=("final", "best"), default="final")


def _add_analysis_commands(sub) -> None:
    """analyze distance: what a finished comparison says beyond its table."""
    an = sub.add_parser("analyze", help="analyses of finished comparisons")
    asub = an.add_subparsers(dest="analyze_command", required=True)
    ad = asub.add_parser(
        "distance",
        help="federated-minus-monolingual gain per language vs URIEL+ language distance "
        "(needs the `analysis` extra)",
    )
    ad.add_argument("source", help="a `fedlingua compare` folder or a paper-table results JSON")
    ad.add_argument("--out", help="folder for distance.md/.json/.png (default: next to source)")


def _cmd_run(args) -> None:
    from fedlingua.engine import run

    if args.resume:
        if args.config or args.overrides:
            raise ConfigError("--resume takes no config or overrides: the run keeps its own")
        results = run(RunConfig(), resume=args.resume)
    else:
        results = run(RunConfig.load(args.config, args.overrides))
    print(open(os.path.join(results["run_dir"], "report.md"), encoding="utf-8").read())


def _cmd_compare(args) -> None:
    from fedlingua.compare import compare

    cfg = RunConfig.load(args.config, args.overrides)
    rows = [r.strip() for r in args.rows.split(",")] if args.rows else None
    _, table = compare(cfg, rows)
    print()
    print(table)


def _mapping(text: str | None, what: str) -> dict[str, str] | None:
    """`a=b,c=d` -> {"a": "b", "c": "d"}."""
    if not text:
        return None
    pairs = [part.partition("=") for part in text.split(",") if part.strip()]
    if any(not sep or not k.strip() or not v.strip() for k, sep, v in pairs):
        raise ConfigError(f"{what} {text!r}: write key=value pairs, e.g. text=headline,label=topic")
    return {k.strip(): v.strip() for k, _, v in pairs}


def _names(text: str | None) -> list[str] | None:
    return [x.strip() for x in text.split(",") if x.strip()] if text else None


def _cmd_evaluate(args) -> None:
    if args.data is None:
        from fedlingua.engine import evaluate_run

        scores = evaluate_run(args.run_dir, args.which)
        for lang, s in scores.items():
            print(f"{lang}\taccuracy {100 * s['accuracy']:.1f}\tmacro-F1 {100 * s['macro_f1']:.1f}")
        return
    from fedlingua.inference import evaluate_on, load, score_lines

    clf = load(args.run_dir, which=args.which)
    scores = evaluate_on(
        clf,
        args.data,
        languages=_names(args.languages),
        columns=_mapping(args.columns, "--columns"),
        root=args.root,
        quoting=args.quoting,
    )
    print("\n".join(score_lines(scores)))


def _cmd_predict(args) -> None:
    from fedlingua.inference import InputRow, load, predict_rows, read_inputs, write_jsonl

    clf = load(args.run_dir, which=args.which)
    if args.text:
        rows = [InputRow(t) for t in args.text]
    else:
        columns = _mapping(args.columns, "--columns") or clf.cfg.data.columns
        rows = read_inputs(args.input, columns=columns, quoting=clf.cfg.data.quoting)
    records = predict_rows(clf, rows, lang=args.lang, top_k=args.top_k, progress=None)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            n = write_jsonl(records, fh)
        print(f"{n} prediction(s) written to {args.output}", file=sys.stderr)
    else:
        write_jsonl(records, sys.stdout)


def _cmd_export(args) -> None:
    from fedlingua.export import export

    out = export(args.run_dir, args.out_dir, which=args.which)
    print(
        f"exported {args.run_dir} to {out} (load it with PeftModel.from_pretrained; see README.md)"
    )


def _cmd_audit(args) -> None:
    from fedlingua.privacy.audit import audit_run

    audit_run(args.run_dir, which=args.which, bootstrap=args.bootstrap)


def _cmd_data(args) -> None:
    from fedlingua.data import format_summary, load_dataset, summarize

    d = RunConfig.load(args.config).data if args.config else RunConfig().data
    ds = load_dataset(
        args.source or d.source,
        languages=_names(args.languages) or (d.languages if args.config else None),
        root=args.root or d.root,
        columns=_mapping(args.columns, "--columns") or d.columns,
        on_bad_rows="skip" if args.skip_bad_rows else d.on_bad_rows,
        quoting=args.quoting or d.quoting,
        splits=_mapping(args.splits, "--splits") or d.splits,
    )
    tokenizer, prefix = None, ""
    if args.model:
        from fedlingua.models import load_backbone

        backbone = load_backbone(args.model)
        tokenizer, prefix = backbone.tokenizer, backbone.text_prefix
    print(format_summary(summarize(ds, tokenizer, text_prefix=prefix)))


def _cmd_analyze(args) -> None:
    from pathlib import Path

    from fedlingua.report.distance import MD, analyze, read_gains, write

    source = Path(args.source)
    out = Path(args.out) if args.out else (source if source.is_dir() else source.parent)
    paths = write(analyze(read_gains(source)), out)
    print(open(out / MD, encoding="utf-8").read())
    print("wrote " + ", ".join(str(p) for p in paths), file=sys.stderr)


def _cmd_model(args) -> None:
    import time

    from fedlingua.models import (
        DEFAULT_MODEL,
        describe_backbone,
        load_backbone,
        prepare_default_model,
    )

    if args.name == DEFAULT_MODEL:
        t0 = time.perf_counter()
        path = prepare_default_model(force=args.force)
        print(f"{DEFAULT_MODEL}: cached at {path} ({time.perf_counter() - t0:.1f} s)")
    info = describe_backbone(load_backbone(args.name))
    for key, value in info.items():
        print(f"{key}: {value:,}" if isinstance(value, int) else f"{key}: {value}")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handlers = {
        "run": _cmd_run,
        "compare": _cmd_compare,
        "evaluate": _cmd_evaluate,
        "predict": _cmd_predict,
        "export": _cmd_export,
        "audit": _cmd_audit,
        "data": _cmd_data,
        "model": _cmd_model,
        "analyze": _cmd_analyze,
    }
    try:
        handlers[args.command](args)
    except KeyboardInterrupt:
        return 130
    except (ConfigError, FileNotFoundError, FileExistsError) as exc:
        print(f"fedlingua: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # data/model errors carry their own clear messages
        from fedlingua.data import DataError, DataUnavailableError
        from fedlingua.io import CorruptFileError
        from fedlingua.models import ModelUnavailableError
        from fedlingua.report.typology import DistanceAnalysisError

        clear = (
            DataError
            | DataUnavailableError
            | ModelUnavailableError
            | CorruptFileError
            | DistanceAnalysisError
        )
        if isinstance(exc, clear):
            print(f"fedlingua: error: {exc}", file=sys.stderr)
            return 2
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
