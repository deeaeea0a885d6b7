"""`labormon import`: valid rows stored once, every bad row reported and kept, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from openpyxl import Workbook
from typer.testing import CliRunner

from bench.gen_dataset import generate
from monitor.cli import app
from tests.conftest import SECRET
from tests.support.database import fetch_all

# The installation's key (a PostgreSQL store refuses to make one of its own).
runner = CliRunner(env={"LABORMON_SECRET_KEY": SECRET})

WAGE_HEADER = (
    "report_id,point_id,period,headcount,frontline_headcount,avg_frontline_wage,wages_paid_on,"
    "arrears_amount,arrears_workers,arrears_months,social_insurance_arrears_months,"
    "layoffs_planned,production_status,overtime_hours_avg\n"
)
POINTS = (
    "point_id,name,region_code,industry,headcount\n"
    "P1,资阳建工有限公司,430902,construction,320\n"
    "P2,赫山电子厂,430903,manufacturing,150\n"
)


def cli(*args: str, db: str) -> tuple[int, str, str]:
    result = runner.invoke(app, [*args, "--db", db])
    return result.exit_code, result.stdout, result.stderr


def stats(db: str) -> dict:
    code, out, _ = cli("stats", "--json", db=db)
    assert code == 0
    return json.loads(out)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    """The issue's size: 2,000 monitoring points x 36 months."""
    out = tmp_path_factory.mktemp("dataset")
    return out, generate(2000, 36, out, seed=11)


def test_large_import_counts_exactly_and_reimport_stores_nothing(
    dataset: tuple[Path, dict[str, int]], db_url: str, settings: object
) -> None:
    path, counts = dataset
    code, _, err = cli("import", str(path), db=db_url)
    assert code == 0, err
    expected = {
        "points": counts["points"],
        "wage_reports": counts["wages"],
        "petitions": counts["petitions"],
        "informant_reports": counts["reports"],
        "rejected": 0,
    }
    got = stats(db_url)
    assert {k: got[k] for k in expected} == expected
    assert counts["wages"] == 72_000
    code, _, err = cli("import", str(path), db=db_url)
    assert code == 0, err
    assert stats(db_url) == got


def write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_malformed_files_are_rejected_row_by_row(
    tmp_path: Path, db_url: str, settings: object
) -> None:
    write(
        tmp_path / "points.csv",
        POINTS + "P3,沅江某厂,439999,manufacturing,40\nP4,南县某厂,430921,farming,-3\n",
    )
    good = "W1,P1,2024-11,320,280,4500,2024-12-10,0,0,0,0,0,normal,36\n"
    write(
        tmp_path / "wages.csv",
        WAGE_HEADER
        + good
        + "W2,P1,2024-13,320,280,4500,,0,0,0,0,0,normal,\n"  # bad month
        + "W3,P2,2024-11,-5,0,4000,,0,0,0,0,0,normal,\n"  # negative headcount
        + "W4,P2,2024-12,150,120,4000,2025-1-40,0,0,0,0,0,normal,\n"  # bad date
        + "W5,P2,2024-10,150,120,4000,,0,0,0,0,0,normal,\n"
        + "W5,P2,2024-10,150,120,4100,,0,0,0,0,0,normal,\n"  # same id, other contents
        + "W6,P9,2024-10,150,120,4000,,0,0,0,0,0,normal,\n",  # unknown point
    )
    write(
        tmp_path / "petitions.csv",
        b"petition_id,received_at,channel,region_code,people_involved,summary\n"
        b"Q1,2025-01-10T10:00:00+08:00,visit,430902,12,\xe5\xb7\xa5\xe8\xb5\x84\n"
        b"Q2,2025-01-10T10:00:00+08:00,visit,430902,3,\xff\xfe broken\n"
        b"Q3,2025-01-10 10:00,visit,430902,3,x\n",
    )
    write(tmp_path / "reports.jsonl", "")
    code, _, err = cli("import", str(tmp_path), db=db_url)
    assert code == 1
    lines = [line for line in err.splitlines() if line.startswith("rejected ")]
    expected = [
        "rejected points.csv:4: region_code: unknown region code 439999",
        "rejected points.csv:5: industry: must be one of",
        "rejected points.csv:5: headcount: Input should be greater than or equal to 0",
        "rejected wages.csv:3: period: must be a month written YYYY-MM",
        "rejected wages.csv:4: headcount: Input should be greater than or equal to 0",
        "rejected wages.csv:5: wages_paid_on:",
        "rejected wages.csv:6: report_id: W5 appears on lines 6, 7 with different contents",
        "rejected wages.csv:7: report_id: W5 appears on lines 6, 7 with different contents",
        "rejected wages.csv:8: point_id: unknown monitoring point P9",
        "rejected petitions.csv:3: summary: not valid UTF-8 (byte 0xFF)",
        "rejected petitions.csv:4: received_at: needs a UTC offset",
        "rejected reports.jsonl: empty file",
    ]
    for want in expected:
        assert any(line.startswith(want) for line in lines), (want, lines)
    got = stats(db_url)
    assert (got["points"], got["wage_reports"], got["petitions"]) == (2, 1, 1)
    # Every rejected row (and the empty file) is kept for inspection, masked.
    assert got["rejected"] == 11


def test_reimport_of_rejected_file_changes_nothing_else(
    tmp_path: Path, db_url: str, settings: object
) -> None:
    write(tmp_path / "points.csv", POINTS)
    write(tmp_path / "wages.csv", WAGE_HEADER + "W1,P1,2024-11,320,280,4500,,0,0,0,0,0,normal,\n")
    assert cli("import", str(tmp_path), db=db_url)[0] == 0
    before = stats(db_url)
    # The same id now with other contents: refused, and the stored row is untouched.
    write(tmp_path / "wages.csv", WAGE_HEADER + "W1,P1,2024-11,320,280,9999,,0,0,0,0,0,normal,\n")
    code, _, err = cli("import", str(tmp_path / "wages.csv"), db=db_url)
    assert code == 1
    assert "already stored with different contents" in err
    after = stats(db_url)
    assert after["wage_reports"] == before["wage_reports"] == 1
    assert after["rejected"] == before["rejected"] + 1


def test_wrong_columns_and_usage_errors(tmp_path: Path, db_url: str, settings: object) -> None:
    write(tmp_path / "points.csv", "id,name\nP1,x\n")
    code, _, err = cli("import", str(tmp_path), db=db_url)
    assert code == 1
    assert "points.csv: missing column(s) point_id, region_code, industry, headcount" in err
    code, _, err = cli("import", str(tmp_path / "nope"), db=db_url)
    assert code == 2
    assert "does not exist" in err
    write(tmp_path / "misc.csv", "a,b\n")
    code, _, err = cli("import", str(tmp_path / "misc.csv"), db=db_url)
    assert code == 2
    assert "cannot tell what it holds" in err


def test_xlsx_gbk_and_single_files(tmp_path: Path, db_url: str, settings: object) -> None:
    write(tmp_path / "points.csv", POINTS)
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(
        ["petition_id", "received_at", "channel", "region_code", "people_involved", "summary"]
    )
    from datetime import datetime

    # Excel keeps no offsets: a naive cell is local (China) time.
    sheet.append(["X1", datetime(2025, 1, 9, 9, 30), "hotline_12351", "430903", 6, "拖欠工资"])
    book.save(tmp_path / "petitions.xlsx")
    gbk = (WAGE_HEADER + "W1,P1,2024-11,320,280,4500,,0,0,0,0,0,normal,\n").encode("gb18030")
    write(tmp_path / "wages-2024-11.csv", gbk)
    assert cli("import", str(tmp_path / "points.csv"), db=db_url)[0] == 0
    assert cli("import", str(tmp_path / "petitions.xlsx"), db=db_url)[0] == 0
    assert (
        cli("import", str(tmp_path / "wages-2024-11.csv"), "--encoding", "gb18030", db=db_url)[0]
        == 0
    )
    got = stats(db_url)
    assert (got["points"], got["petitions"], got["wage_reports"]) == (2, 1, 1)


def test_rejected_rows_keep_no_personal_data(tmp_path: Path, settings: object, db_url: str) -> None:
    write(
        tmp_path / "petitions.csv",
        "petition_id,received_at,channel,region_code,people_involved,summary,petitioner_name,petitioner_phone\n"
        "Q1,2025-01-10T10:00:00+08:00,fax,430902,2,x,张三丰,13812345678\n",
    )
    assert cli("import", str(tmp_path), db=db_url)[0] == 1
    [(origin, field, payload)] = fetch_all(
        db_url, "SELECT origin, field, payload FROM rejected_messages"
    )
    assert (origin, field) == ("petitions.csv:2", "channel")
    assert isinstance(payload, str)
    assert "张三丰" not in payload
    assert "13812345678" not in payload
    assert "138****5678" in payload
