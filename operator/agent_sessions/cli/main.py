"""`agent-sessions`: one console script, one subcommand per job (§2)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from agent_sessions import __version__


def _cmd_crds(args: argparse.Namespace) -> int:
    from agent_sessions.api.crd import generated_files

    files = generated_files()
    if args.stdout:
        sys.stdout.write("---\n".join(files.values()))
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (out / name).write_text(text, encoding="utf-8")
        print(f"wrote {out / name}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agent-sessions",
        description="Kubernetes-native AI agent sessions: operator, gateway and tools.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    crds = commands.add_parser(
        "crds",
        help="write the CustomResourceDefinitions generated from the API models",
        description="Write crds/agentsessions.yaml and crds/sessiontemplates.yaml, generated from the "
        "pydantic models (the only schema of the API).",
    )
    crds.add_argument("--out", default="crds", help="directory to write into (default: %(default)s)")
    crds.add_argument("--stdout", action="store_true", help="print a multi-document YAML stream instead")
    crds.set_defaults(func=_cmd_crds)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
