"""`dronefleet evidence verify FILE`: check an evidence package (or a recording directory) offline.

Exit 0: every listed file is present with its SHA-256, every signature is valid, nothing unlisted was added.
Exit 1: something was altered, removed or added (each finding is named). Exit 2: the input cannot be read.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from controller.evidence import manifest as mf
from controller.evidence.keys import key_id, load_public


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="evidence_command", metavar="ACTION", required=True)
    verify = sub.add_parser("verify", help="verify an exported evidence package (.zip) or a recording directory offline")
    verify.add_argument("file", type=Path, help="the export (.zip), a recording directory, or its manifest.json")
    verify.add_argument(
        "--key", default=None,
        help="the controller's public key to pin: a PEM file, or the base64 key `make run` prints; "
        "without it the key in the package is used and named",
    )
    verify.add_argument("-v", "--verbose", action="store_true", help="list every check that passed")


def main(args: argparse.Namespace) -> int:
    if not args.file.exists():
        print(f"dronefleet evidence verify: {args.file}: no such file or directory", file=sys.stderr)
        return 2
    pinned = None
    if args.key is not None:
        try:
            source = Path(args.key)
            pinned = load_public(source.read_bytes() if source.is_file() else args.key.encode())
        except (OSError, ValueError) as exc:
            print(f"dronefleet evidence verify: cannot read the key {args.key}: {exc}", file=sys.stderr)
            return 2
    report = mf.verify_path(args.file, pinned)
    if args.verbose:
        for line in report.checked:
            print(f"ok       {line}")
    for line in report.notes:
        print(f"note     {line}")
    for line in report.problems:
        print(f"FAILED   {line}")
    if report.ok:
        pinned_text = f"pinned key {key_id(pinned)}" if pinned else "the key it carries"
        print(f"VERIFIED {args.file}: {len(report.checked)} checks passed against {pinned_text}")
        return 0
    print(f"NOT VERIFIED {args.file}: {len(report.problems)} problem(s); the evidence was altered or is incomplete",
          file=sys.stderr)
    return 1
