"""Derive the simulator's calibration constants from China Labour Bulletin's strike map.

    python bench/calibrate_clb.py [tests/data/clb_strike_map_2011_2014.csv]

Prints the `CALIBRATION` dict to paste into monitor/simulator/calibration.py;
tests/test_simulator.py fails when the constants there no longer match the file.
"""

from __future__ import annotations

import pprint
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor.simulator.calibration import derive  # noqa: E402


def main() -> None:
    path = (
        Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "tests/data/clb_strike_map_2011_2014.csv"
    )
    print("CALIBRATION: dict[str, Any] = ", end="")
    pprint.pprint(derive(path), sort_dicts=False, width=96)


if __name__ == "__main__":
    main()
