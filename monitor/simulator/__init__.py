"""A realistic synthetic region of monitoring points, petitions and informant reports,
with ground-truth incidents (`labormon simulate`, `labormon evaluate`, the demo's stream).

    sim = Simulator(points=500, seed=1, start=date(2022, 1, 1))
    exporter = Exporter(sim)
    for batch in sim.months(36):          # month by month, vectorised over points
        for day, records in exporter.days(batch):      # or .stream(batch): one list
            for when, kind, record in records:         # interfaces §2 records in time order
                ...                                    # (kind: wage, petition, report)

`write_dataset()` writes the import files plus `incidents.csv`.
"""

from monitor.simulator.export import DatasetSummary, Exporter, default_start, write_dataset
from monitor.simulator.world import MonthBatch, Simulator

__all__ = [
    "DatasetSummary",
    "Exporter",
    "MonthBatch",
    "Simulator",
    "default_start",
    "write_dataset",
]
