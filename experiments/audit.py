"""`rlreason-audit-rewards`: every registered reward against the built-in adversarial suite.

    rlreason-audit-rewards                                   # all rewards, table on stdout
    rlreason-audit-rewards --rewards math,format --json audit.json
    rlreason-audit-rewards --math-verify-python /tmp/mvenv2/bin/python

Prints the attack class × reward table of `rewards.audit` and one line per failure, then the
grader agreement of `rewards.grader_agreement` (math-verify from `--math-verify-python`, else
from this interpreter if it has it, else skipped with the reason). Exit status: 0 when every
reward accepts its controls and rejects its known-bad classes, 1 otherwise (a reward without
audit cases counts), 2 for bad arguments; the agreement never changes it. `--json PATH` writes
the audit and the agreement as JSON; `--no-agreement` skips the comparison.
Not here: the suite or the verdict logic (`rewards.audit_suite`, `rewards.audit`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="rlreason-audit-rewards",
        description="Run every registered reward against the built-in adversarial suite.",
    )
    p.add_argument("--rewards", help="comma-separated reward names (default: all registered)")
    p.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON")
    p.add_argument(
        "--math-verify-python",
        metavar="PYTHON",
        help="an interpreter with math_verify installed, for the grader agreement",
    )
    p.add_argument("--no-agreement", action="store_true", help="skip the grader agreement")
    args = p.parse_args(argv)

    from rewards.audit import format_table, run_audit
    from rewards.grader_agreement import Agreement, compare

    names = [n.strip() for n in args.rewards.split(",") if n.strip()] if args.rewards else None
    try:
        report = run_audit(names)
    except ValueError as exc:
        print(f"rlreason-audit-rewards: {exc}", file=sys.stderr)
        return 2
    print(format_table(report))
    failures = report.failures
    print(f"\n{len(failures)} failure(s)" + (":" if failures else ""))
    for line in failures:
        print(f"  FAIL {line}")
    agreement = (
        Agreement(skipped="--no-agreement")
        if args.no_agreement
        else compare(args.math_verify_python)
    )
    print("\n" + agreement.format())
    if args.json:
        payload = {**report.to_dict(), "agreement": agreement.to_dict()}
        args.json.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    return report.exit_code


if __name__ == "__main__":
    sys.exit(main())
