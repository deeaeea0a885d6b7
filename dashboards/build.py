"""Build the boards into `dashboards/json/<uid>.json` (`make dashboards`).

    python -m dashboards.build           # write the JSON
    python -m dashboards.build --check   # exit 1 when the committed JSON is stale

The JSON is committed so that operators (and reviewers) get the boards without running
Python; the test suite fails when it differs from what this code builds.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from dashboards.boards import BOARDS
from dashboards.model import Json
from dashboards.schema import check_dashboard

JSON_DIR = Path(__file__).parent / "json"


class InvalidDashboard(ValueError):
    """A board failed the schema check; the message lists every problem."""


def build_all() -> dict[str, Json]:
    """File name -> dashboard JSON, checked against the panel schemas."""
    boards: dict[str, Json] = {}
    for make in BOARDS:
        dashboard = make().to_json()
        problems = check_dashboard(dashboard)
        if problems:
            raise InvalidDashboard(f"{dashboard['uid']}: " + "; ".join(problems))
        boards[f"{dashboard['uid']}.json"] = dashboard
    return boards


def render(dashboard: Json) -> str:
    # Chinese stays readable in the committed files and in diffs.
    return json.dumps(dashboard, ensure_ascii=False, indent=2) + "\n"


def stale_files(directory: Path = JSON_DIR) -> list[str]:
    """Names of files that are missing, different, or no longer built."""
    built = {name: render(board) for name, board in build_all().items()}
    existing = {p.name for p in directory.glob("*.json")} if directory.is_dir() else set()
    stale = [
        name
        for name, text in built.items()
        if name not in existing or (directory / name).read_text(encoding="utf-8") != text
    ]
    return sorted(stale + sorted(existing - set(built)))


def write_all(directory: Path = JSON_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    built = build_all()
    for old in directory.glob("*.json"):
        if old.name not in built:
            old.unlink()
    written = []
    for name, board in built.items():
        path = directory / name
        path.write_text(render(board), encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dashboards.build", description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the JSON is stale")
    parser.add_argument("--out", type=Path, default=JSON_DIR)
    args = parser.parse_args(argv)
    try:
        if args.check:
            stale = stale_files(args.out)
            if stale:
                print(
                    f"stale dashboard JSON in {args.out}: {', '.join(stale)}; "
                    "run `make dashboards`",
                    file=sys.stderr,
                )
                return 1
            print(f"dashboard JSON in {args.out} is up to date")
            return 0
        for path in write_all(args.out):
            print(path)
    except InvalidDashboard as exc:
        print(f"invalid dashboard: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
