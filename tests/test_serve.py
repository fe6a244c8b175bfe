"""`shanzhi serve` as a newcomer runs it: embedded storage, demo data, clean shutdown."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _children_of(data_dir: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            if str(data_dir) in " ".join(process.info["cmdline"] or []):
                found.append(process)
        except psutil.Error:
            continue
    return found


class Served:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = _free_port()
        self.emulator_port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("SHANZHI_")}
        env.update(
            SHANZHI_DATA_DIR=str(data_dir),
            SHANZHI_PORT=str(self.port),
            SHANZHI_EMULATOR_PORT=str(self.emulator_port),
        )
        self.log = (data_dir.parent / f"serve-{self.port}.log").open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-c", "from backend.cli import main; main()", "serve"],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, as a terminal would give it
        )
        self.api = f"http://127.0.0.1:{self.port}"
        self.emulator = f"http://127.0.0.1:{self.emulator_port}"

    def wait_ready(self, timeout: float = 90) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            assert self.process.poll() is None, self.output()
            try:
                if httpx.get(f"{self.api}/readyz", timeout=2).status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"not ready in {timeout} s:\n{self.output()}")

    def stop(self, signum: int) -> None:
        os.killpg(self.process.pid, signum)
        self.process.wait(timeout=40)

    def output(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text()


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "data"
    path.mkdir()
    yield path
    for process in _children_of(path):
        process.kill()


def _login(served: Served, openid: str) -> dict[str, object]:
    code = httpx.post(f"{served.emulator}/emulator/login-code", json={"openid": openid}).json()
    response = httpx.post(f"{served.api}/v1/auth/wechat/login", json={"code": code["code"]})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_serve_starts_everything_keeps_data_and_stops_cleanly(data_dir: Path) -> None:
    served = Served(data_dir)
    try:
        seconds = served.wait_ready()
        assert seconds < 90
        banner = served.output()
        assert f"http://127.0.0.1:{served.port}/docs" in banner
        assert "demo-resident" in banner and "demo-grid-worker" in banner
        resident = _login(served, "demo-resident")
        staff = _login(served, "demo-district-admin")
        me = httpx.get(
            f"{served.api}/v1/me", headers={"Authorization": f"Bearer {staff['access_token']}"}
        ).json()
        assert me["roles"][0]["region_code"] == "gz.tianhe"
        # A running system has postgres and weed below the data directory.
        assert _children_of(data_dir)
    finally:
        served.stop(signal.SIGINT)
    assert served.process.returncode == 0, served.output()
    assert _children_of(data_dir) == [], "Ctrl-C left processes behind"

    again = Served(data_dir)
    try:
        again.wait_ready()
        # Same database: the resident logs in as the same user.
        assert _login(again, "demo-resident")["user"] == resident["user"]  # type: ignore[index]
    finally:
        again.stop(signal.SIGTERM)
    assert again.process.returncode == 0, again.output()
    assert _children_of(data_dir) == [], "SIGTERM left processes behind"
