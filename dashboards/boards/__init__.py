"""The four boards, one module each; `BOARDS` is the order they are built and pushed in."""

from __future__ import annotations

from collections.abc import Callable

from dashboards.boards import alerts, overview, petitions, wages
from dashboards.model import Board

BOARDS: tuple[Callable[[], Board], ...] = (
    overview.board,
    wages.board,
    petitions.board,
    alerts.board,
)
