"""Local by default: the app as ./scripts/run.sh starts it listens on loopback only, and uploads are capped.

The server is started the way scripts/run.sh ends (`streamlit run app.py` in the checkout, no address
given), and the kernel's table of listening sockets says which addresses it took.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def listening_addresses(port: int) -> set[str]:
    """The local addresses of the sockets listening on `port`, from /proc/net/tcp and tcp6 (hex, as the kernel
    writes them: 0100007F is 127.0.0.1, 00000000 is every IPv4 address, all zeros in tcp6 every address)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not Path(table).exists():
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].split(":")
            if fields[3] == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN.
                found.add(address)
    return found


def test_run_sh_starts_streamlit_from_the_checkout_without_an_address():
    script = (ROOT / "scripts" / "run.sh").read_text()
    assert 'cd "$(dirname "$0")/.."' in script  # So .streamlit/config.toml of the checkout applies.
    assert "streamlit run app.py" in script and "--server.address" not in script


def test_the_config_listens_on_loopback_and_caps_uploads_near_the_kaggle_zip():
    server = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())["server"]
    assert server["address"] == "127.0.0.1"
    # The Kaggle FER2013 zip (about 60 MB) and fer2013.csv (about 290 MB) fit; a gigabyte does not.
    assert 300 <= server["maxUploadSize"] <= 400


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's /proc/net/tcp")
def test_streamlit_run_app_listens_on_loopback_only(tmp_path):
    port = free_port()
    env = {**os.environ, "FER_STUDIO_HOME": str(tmp_path), "STREAMLIT_SERVER_FILE_WATCHER_TYPE": "none"}
    env.pop("STREAMLIT_SERVER_ADDRESS", None)
    log = tmp_path / "streamlit.log"
    with open(log, "w") as output:
        server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                                   "--server.headless", "true"], cwd=ROOT, env=env, stdout=output,
                                  stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 90
        while time.time() < deadline and server.poll() is None:
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.3)
        else:
            pytest.fail(f"streamlit did not answer on 127.0.0.1:{port}:\n{log.read_text()}")
        assert listening_addresses(port) == {"0100007F"}, log.read_text()
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
