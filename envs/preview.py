"""Preview an env's rendered prompts with their references, and validate JSONL files.

    python -m envs.preview arithmetic -n 3 --set digits=2 --template r1_zero
    python -m envs.preview jsonl --set path=envs/data/gsm8k_sample.jsonl --set format=gsm8k
    python -m envs.preview --validate envs/data/math_sample.jsonl --format hendrycks_math

`--set key=value` values are read as JSON when they parse (numbers, booleans, lists), else kept
as text. The `chat` template needs a tokenizer and is not available here.

This module only prints; it does not sample from a model or score anything.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from envs.base import build_env
from envs.jsonl import PARSERS, read_jsonl
from envs.templates import TEMPLATES, render


def preview(
    name: str, n: int = 5, *, split: str = "train", template: str | None = None, **env_kwargs: Any
) -> str:
    """The first `n` tasks of a split, rendered, each followed by its reference."""
    env = build_env(name, **env_kwargs)
    tasks = {"train": env.train, "eval": env.eval}[split][:n]
    template = template or env.template
    blocks = [
        f"# {env.name}: train={len(env.train)} eval={len(env.eval)} "
        f"rewards={env.rewards} template={template}"
    ]
    for t in tasks:
        ref = t.answer if t.answer is not None else json.dumps(t.tests, ensure_ascii=False)
        blocks.append(
            f"--- {t.meta.get('id', '')} difficulty={t.meta.get('difficulty')}\n"
            f"{render(template, t)}\n>>> reference: {ref}"
        )
    return "\n".join(blocks)


def validate_file(path: str, format: str = "math") -> tuple[bool, str]:
    """(ok, report) for a JSONL file: counts, and every bad line with file and line number."""
    result = read_jsonl(path, format, skip_bad=True)
    lines = [
        f"{path}: {len(result.tasks)} valid records, {result.skipped} bad lines",
        *result.errors,
    ]
    return result.skipped == 0, "\n".join(lines)


def _parse_sets(pairs: list[str]) -> dict[str, Any]:
    out = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep:
            raise SystemExit(f"--set expects key=value, got {pair!r}")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
        if isinstance(out[key], list):
            out[key] = tuple(out[key])
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m envs.preview", description=__doc__.split("\n")[0])
    ap.add_argument("env", nargs="?", help="registered env name")
    ap.add_argument("-n", type=int, default=5)
    ap.add_argument("--split", choices=("train", "eval"), default="train")
    ap.add_argument("--template", choices=sorted(TEMPLATES))
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--validate", metavar="FILE.jsonl")
    ap.add_argument("--format", choices=sorted(PARSERS), default="math")
    args = ap.parse_args(argv)
    if args.validate:
        ok, report = validate_file(args.validate, args.format)
        print(report)
        return 0 if ok else 1
    if not args.env:
        ap.error("give an env name or --validate FILE")
    try:
        print(
            preview(
                args.env, args.n, split=args.split, template=args.template, **_parse_sets(args.set)
            )
        )
    except (ValueError, TypeError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
