"""Allow `python -m monitor` as an alias of the `labormon` console script."""

from monitor.cli import main

main()
