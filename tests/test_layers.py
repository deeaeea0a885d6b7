"""Imports point down only, and stages talk through rows, not each other's code.

Layers, bottom to top (STYLE habit 1, docs/DEVELOPING.md):

0. the platform: the modules directly in `monitor/` (config, db, models, clock, bus, ...)
   and `monitor.migrations`;
1. `monitor.simulator`, the synthetic world (the detectors learn their first words from
   its texts);
2. the stages: `ingest`, `detectors`, `monitor.alerting`, `monitor.report`, `dashboards`,
   none of which imports another;
3. the web face, `monitor.web`;
4. `monitor.daemon`, which alone wires the stages and the web face together;
5. `monitor.demo`;
6. the command line, `monitor.cli`.

The graph is grimp's (import-linter's engine): every import counts, including those
inside functions and under `TYPE_CHECKING`, because each is a dependency all the same.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("monitor", "ingest", "detectors", "dashboards")
STAGES = ("ingest", "detectors", "monitor.alerting", "monitor.report", "dashboards")
#: (prefix, layer name, height); the first match wins, anything else is the platform.
LAYERS = (
    ("monitor.cli", "cli", 6),
    ("monitor.__main__", "cli", 6),
    ("monitor.demo", "demo", 5),
    ("monitor.daemon", "daemon", 4),
    ("monitor.web", "web", 3),
    *((stage, stage, 2) for stage in STAGES),
    ("monitor.simulator", "simulator", 1),
)


def layer_of(module: str) -> tuple[str, int]:
    for prefix, name, height in LAYERS:
        if module == prefix or module.startswith(prefix + "."):
            return name, height
    return "platform", 0


def violations(graph: grimp.ImportGraph) -> list[str]:
    """Each import that points up a layer, or from one stage into another."""
    found = []
    for importer in sorted(graph.modules):
        (own, height) = layer_of(importer)
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            (other, other_height) = layer_of(imported)
            if other_height > height:
                found.append(f"{importer} ({own}) imports {imported} ({other}): upward")
            elif height == other_height == 2 and own != other:
                found.append(f"{importer} imports {imported}: another stage's code, not its rows")
    return found


def cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    modules = graph.modules
    for root in sorted(modules):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = []
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        work.append((root, iter(sorted(graph.find_modules_directly_imported_by(root)))))
        while work:
            node, children = work[-1]
            child = next((c for c in children if c in modules), None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append(
                        (child, iter(sorted(graph.find_modules_directly_imported_by(child))))
                    )
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def build() -> grimp.ImportGraph:
    return grimp.build_graph(*PACKAGES, cache_dir=None)


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return build()


def test_imports_point_down_and_stages_keep_apart(graph: grimp.ImportGraph) -> None:
    assert violations(graph) == []


def test_there_are_no_import_cycles(graph: grimp.ImportGraph) -> None:
    assert len(graph.modules) > 100  # the graph really is the tree
    assert cycles(graph) == []


def test_the_rule_catches_an_upward_import_and_a_cycle() -> None:
    """A temporary platform module that imports the web face, and a pair of temporary
    modules importing each other: both are found, so the checks above can fail."""
    tag = uuid.uuid4().hex[:8]
    upward = ROOT / "monitor" / f"_probe_up_{tag}.py"
    first = ROOT / "monitor" / f"_probe_a_{tag}.py"
    second = ROOT / "monitor" / f"_probe_b_{tag}.py"
    stage = ROOT / "ingest" / f"_probe_stage_{tag}.py"
    upward.write_text("from monitor.web import app  # noqa: F401\n")
    first.write_text(f"import monitor._probe_b_{tag}  # noqa: F401\n")
    second.write_text(f"import monitor._probe_a_{tag}  # noqa: F401\n")
    stage.write_text("def f() -> None:\n    from detectors import severity  # noqa: F401\n")
    try:
        graph = build()
        found = violations(graph)
        assert f"monitor._probe_up_{tag} (platform) imports monitor.web.app (web): upward" in found
        assert any(f"ingest._probe_stage_{tag} imports detectors.severity" in v for v in found)
        assert [f"monitor._probe_a_{tag}", f"monitor._probe_b_{tag}"] in cycles(graph)
    finally:
        for path in (upward, first, second, stage):
            path.unlink()
        for name in list(sys.modules):
            if tag in name:
                del sys.modules[name]


def test_the_alert_stage_and_the_web_face_are_folders() -> None:
    """`ls monitor` shows the platform modules and one folder per stage or face."""
    folders = {p.name for p in (ROOT / "monitor").iterdir() if p.is_dir() and p.name[0] != "_"}
    assert folders == {"alerting", "web", "report", "cli", "simulator", "demo", "migrations"}
    modules = {p.stem for p in (ROOT / "monitor").glob("*.py")}
    stage_words = {"alert", "escalat", "outbox", "notif", "digest", "silence", "console", "api"}
    assert not {m for m in modules if any(w in m for w in stage_words)}
