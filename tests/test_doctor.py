"""`labormon doctor` against the real parts: a healthy installation is all ✓ (exit 0), and
each broken part is the one ✗ line naming it (exit 1). Fonts installed after matplotlib
cached its font list are found without deleting any cache."""

from __future__ import annotations

import asyncio
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from ingest.authfiles import generate, write_atomically
from monitor.context import Context
from tests.conftest import SECRET
from tests.support.broker import Broker
from tests.support.mail import MailSink
from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[1]
DOCTOR = [sys.executable, "-m", "monitor", "doctor"]
NOTO = Path("/usr/share/fonts/opentype/noto")
AS_ROOT = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root for a mount namespace"
)


@dataclass
class Site:
    config: Path
    key_file: Path
    broker: Broker
    mqtt_url: str
    smtp_url: str
    db_url: str
    home: Path

    def write(self, extra: str = "", **changes: str) -> Path:
        values = {"mqtt_url": self.mqtt_url, "smtp_url": self.smtp_url, **changes}
        self.config.write_text(
            f'[database]\nurl = "{self.db_url}"\n\n'
            f'[security]\nsecret_key_file = "{self.key_file}"\n\n'
            f'[mqtt]\nurl = "{values["mqtt_url"]}"\nclient_id = "labormon-doctor-test"\n\n'
            f'[smtp]\nurl = "{values["smtp_url"]}"\n\n'
            '[http]\npublic_url = "https://labormon.example.gov.cn"\n' + extra
        )
        return self.config

    def doctor(self, *args: str, wrap: list[str] | None = None, **env: str):
        base = {k: v for k, v in os.environ.items() if not k.startswith("LABORMON_")}
        return subprocess.run(
            [*(wrap or []), *DOCTOR, "--config", str(self.config), *args],
            cwd=self.home,
            env={**base, "PYTHONPATH": str(ROOT), **env},
            capture_output=True,
            text=True,
            timeout=120,
        )


@pytest.fixture
async def site(ctx: Context, own_broker: Broker, mail: MailSink, tmp_path: Path) -> Site:
    """An installation: migrated store with the key recorded, a broker locked down with
    the auth files of its accounts (the daemon's among them), an SMTP server."""
    from monitor.keycheck import verify_key

    await ctx.db.migrate()
    await verify_key(ctx.db, ctx.privacy, ctx.clock)
    daemon = await ctx.accounts.add(kind="daemon", account_id="labormon-d", region_code="430900")
    await ctx.accounts.add(kind="informant", account_id="inf-1", region_code="430902")
    files = await generate(ctx.db, ctx.accounts, "labormon/v1")
    auth = tmp_path / "auth"
    write_atomically(auth / "password_file", files.password_file)
    write_atomically(auth / "acl_file", files.acl_file)
    own_broker.use_auth(auth / "password_file", auth / "acl_file")
    own_broker.restart()
    key_file = tmp_path / "secret.key"
    key_file.write_text(SECRET + "\n")
    key_file.chmod(0o600)
    home = tmp_path / "home"
    home.mkdir()
    result = Site(
        config=tmp_path / "labormon.toml",
        key_file=key_file,
        broker=own_broker,
        mqtt_url=own_broker.url_for("labormon-d", daemon.mqtt_password or ""),
        smtp_url=mail.url,
        db_url=ctx.settings.database.url,
        home=home,
    )
    result.write()
    return result


def lines(result: subprocess.CompletedProcess[str]) -> tuple[list[str], list[str]]:
    out = result.stdout.splitlines()
    return [ln for ln in out if ln.startswith("✓")], [ln for ln in out if ln.startswith("✗")]


def one_failure(result: subprocess.CompletedProcess[str]) -> str:
    _ok, bad = lines(result)
    assert result.returncode == 1, result.stdout + result.stderr
    assert len(bad) == 1, result.stdout
    return bad[0]


async def test_a_healthy_installation_is_all_checks_passed(site: Site) -> None:
    result = await asyncio.to_thread(site.doctor)
    ok, bad = lines(result)
    assert result.returncode == 0, result.stdout + result.stderr
    assert bad == []
    names = [line.split(":")[0][2:] for line in ok]
    for name in ("secret key", "public url", "time", "database", "key check", "broker", "smtp"):
        assert name in names, result.stdout
    assert "CJK font" in names
    assert any("probe round trip ok" in line for line in ok)
    assert "fingerprint" in result.stdout
    quick = await asyncio.to_thread(site.doctor, "--quick")
    assert quick.returncode == 0, quick.stdout
    assert "broker" not in quick.stdout and "database" not in quick.stdout


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_the_broker_down(site: Site) -> None:
    site.broker.stop()
    line = one_failure(await asyncio.to_thread(site.doctor))
    assert line.startswith("✗ broker: no broker answers at 127.0.0.1:")
    assert "start Mosquitto" in line


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_the_wrong_daemon_password(site: Site) -> None:
    site.write(mqtt_url=site.broker.url_for("labormon-d", "wrong-password"))
    line = one_failure(await asyncio.to_thread(site.doctor))
    assert line.startswith("✗ broker: the broker at 127.0.0.1:")
    assert "refused user labormon-d" in line and "password" in line


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_an_acl_that_forbids_the_subscription(site: Site) -> None:
    acl = site.broker.acl_file
    assert acl is not None
    text = acl.read_text().replace("topic read labormon/v1/reports/+\n", "")
    write_atomically(acl, text)
    site.broker.restart()
    line = one_failure(await asyncio.to_thread(site.doctor))
    assert line.startswith(
        "✗ broker: the ACL forbids labormon-d to subscribe to labormon/v1/reports/+ (the probe"
    ), line


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_smtp_down(site: Site) -> None:
    site.write(smtp_url=f"smtp://127.0.0.1:{free_port()}")
    line = one_failure(await asyncio.to_thread(site.doctor))
    assert line.startswith("✗ smtp: no SMTP server answers at 127.0.0.1:"), line


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_a_secret_key_readable_by_others(site: Site) -> None:
    site.key_file.chmod(0o644)
    result = await asyncio.to_thread(site.doctor, "--quick")
    line = one_failure(result)
    assert line == (
        f"✗ secret key: {site.key_file} is readable by others (mode 0644); "
        f"fix: chmod 600 {site.key_file}"
    )


def hide_fonts() -> list[str]:
    """Run in a mount namespace where the Noto CJK directory is empty (as before
    `apt-get install fonts-noto-cjk`), without touching the machine."""
    script = f'mount -t tmpfs none {NOTO} && exec "$@"'
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh"]


@AS_ROOT
@pytest.mark.parametrize("backend", ["sqlite"])
async def test_no_cjk_font(site: Site, tmp_path: Path) -> None:
    assert NOTO.is_dir()
    result = await asyncio.to_thread(
        site.doctor, wrap=hide_fonts(), MPLCONFIGDIR=str(tmp_path / "mpl")
    )
    line = one_failure(result)
    assert line.startswith("✗ CJK font: no CJK font found"), line
    assert "fonts-noto-cjk" in line


def test_a_report_made_after_the_fonts_were_installed_works(tmp_path: Path) -> None:
    """matplotlib's font list cached before fonts-noto-cjk was installed: the next report
    still finds the font, and the cache is brought up to date (no hand deletion)."""
    mpl = tmp_path / "mpl"
    env = {**os.environ, "MPLCONFIGDIR": str(mpl), "PYTHONPATH": str(ROOT)}
    stale = (
        "import matplotlib; from pathlib import Path; from matplotlib import font_manager as fm\n"
        "m = fm.FontManager()\n"
        "m.ttflist = [f for f in m.ttflist if 'CJK' not in f.name]\n"
        "fm.json_dump(m, Path(matplotlib.get_cachedir(), "
        "f'fontlist-v{fm.FontManager.__version__}.json'))\n"
    )
    subprocess.run([sys.executable, "-c", stale], env=env, check=True, timeout=120)
    cache = next(mpl.glob("fontlist-*.json"))
    assert "CJK" not in cache.read_text()
    draw = (
        "import json\n"
        "from matplotlib.figure import Figure\n"
        "from monitor.report.charts import _drawing, _no_data, _save, cjk_font\n"
        "with _drawing():\n"
        "    fig = Figure(figsize=(3, 2))\n"
        "    _no_data(fig, '资阳区本月无信访')\n"
        "    png = _save(fig, 'png')\n"
        "print(json.dumps({'font': cjk_font(), 'bytes': len(png)}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", draw], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    drawn = json.loads(result.stdout)
    assert drawn["font"].startswith("Noto Sans CJK") and drawn["bytes"] > 1000
    assert "CJK" in cache.read_text()  # the next run reads the font from the cache


class _Robot(http.server.BaseHTTPRequestHandler):
    def do_HEAD(self) -> None:  # a vendor endpoint answers HEAD with 405 or 200
        self.send_response(405)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_alert_group_robots_reachable_or_not(site: Site) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Robot)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        group = (
            '\n[[alerting.groups]]\nid = "{id}"\nregion = "430902"\nkind = "webhook"\n'
            'url = "http://127.0.0.1:{port}/hook"\n'
        )
        site.write(extra=group.format(id="up", port=server.server_address[1]))
        result = await asyncio.to_thread(site.doctor)
        assert result.returncode == 0, result.stdout
        assert "✓ alert group up: webhook robot host 127.0.0.1:" in result.stdout
        site.write(extra=group.format(id="down", port=free_port()))
        line = one_failure(await asyncio.to_thread(site.doctor))
        assert line.startswith("✗ alert group down: webhook robot at 127.0.0.1:"), line
        assert "unreachable" in line
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
