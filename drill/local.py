"""Throwaway local services for the drill and the data-plane tests.

A PostgreSQL 15 cluster on 127.0.0.1 run as the `postgres` user (PostgreSQL refuses root),
and moto's S3-compatible server on loopback. Both always stop by PID, also on failure.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from contextlib import closing, suppress
from dataclasses import dataclass, field
from pathlib import Path

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
PG_USER = "postgres"


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(cmd: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", PG_USER, "--", *cmd]
    return cmd


def _chown_to_postgres(path: Path) -> None:
    if os.geteuid() == 0:
        pw = pwd.getpwnam(PG_USER)
        os.chown(path, pw.pw_uid, pw.pw_gid)


@dataclass
class PgCluster:
    """One PostgreSQL cluster in its own directory, port and socket directory."""

    root: Path
    port: int = field(default_factory=free_port)
    settings: dict[str, str] = field(default_factory=dict)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "sock"

    @property
    def log_file(self) -> Path:
        return self.root / "postgres.log"

    def dsn(self, dbname: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={dbname}"

    def env(self) -> dict[str, str]:
        """libpq environment for client tools (pg_dump, psql) run as root over TCP."""
        return {"PGHOST": "127.0.0.1", "PGPORT": str(self.port), "PGUSER": "postgres"}

    @classmethod
    def create(cls, settings: dict[str, str] | None = None, root: Path | None = None) -> PgCluster:
        root = Path(root or tempfile.mkdtemp(prefix="pgcluster-"))
        root.mkdir(parents=True, exist_ok=True)
        root.chmod(0o755)
        _chown_to_postgres(root)
        cluster = cls(root=root, settings=dict(settings or {}))
        subprocess.run(
            _as_postgres(
                [
                    str(PG_BIN / "initdb"),
                    "-D",
                    str(cluster.data_dir),
                    "-U",
                    "postgres",
                    "-A",
                    "trust",
                    "--no-sync",
                    "-E",
                    "UTF8",
                    "--locale=C",
                ]
            ),
            check=True,
            capture_output=True,
        )
        cluster.socket_dir.mkdir(exist_ok=True)
        _chown_to_postgres(cluster.socket_dir)
        cluster.write_settings()
        return cluster

    @classmethod
    def empty(cls, settings: dict[str, str] | None = None, root: Path | None = None) -> PgCluster:
        """A cluster directory without a data directory yet: the target of a restore
        (barman-cloud-restore, pg_basebackup), which then calls `write_settings` and `start`."""
        root = Path(root or tempfile.mkdtemp(prefix="pgcluster-"))
        root.mkdir(parents=True, exist_ok=True)
        root.chmod(0o755)
        _chown_to_postgres(root)
        cluster = cls(root=root, settings=dict(settings or {}))
        cluster.socket_dir.mkdir(exist_ok=True)
        _chown_to_postgres(cluster.socket_dir)
        return cluster

    def adopt_data_dir(self) -> None:
        """Make a data directory written by root (a restore tool) usable by the server."""
        self.data_dir.chmod(0o700)
        if os.geteuid() == 0:
            pw = pwd.getpwnam(PG_USER)
            for dirpath, dirnames, filenames in os.walk(self.data_dir):
                os.chown(dirpath, pw.pw_uid, pw.pw_gid)
                for name in dirnames + filenames:
                    os.chown(os.path.join(dirpath, name), pw.pw_uid, pw.pw_gid, follow_symlinks=False)

    def write_settings(self, extra: dict[str, str] | None = None) -> None:
        """(Re)write the settings this cluster owns, last in postgresql.conf so they win."""
        self.settings.update(extra or {})
        base = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.socket_dir}'",
            "fsync": "off",  # a throwaway cluster: speed over durability of the test machine
        }
        lines = [f"{k} = {v}" for k, v in {**base, **self.settings}.items()]
        conf = self.data_dir / "postgresql.conf"
        text = conf.read_text().split("# --- pgcluster ---")[0]
        conf.write_text(text + "# --- pgcluster ---\n" + "\n".join(lines) + "\n")

    def start(self, timeout: int = 60) -> PgCluster:
        subprocess.run(
            _as_postgres(
                [
                    str(PG_BIN / "pg_ctl"),
                    "-D",
                    str(self.data_dir),
                    "-l",
                    str(self.log_file),
                    "-w",
                    "-t",
                    str(timeout),
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
        )
        return self

    @property
    def pid(self) -> int | None:
        pidfile = self.data_dir / "postmaster.pid"
        try:
            return int(pidfile.read_text().split("\n", 1)[0])
        except (FileNotFoundError, ValueError):
            return None

    def stop(self, mode: str = "fast") -> None:
        """Stop by PID (works even if pg_ctl or the data directory are in a bad state)."""
        pid = self.pid
        if pid is None:
            return
        sig = {"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}[mode]
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)

    def kill(self) -> None:
        """A hard crash: SIGKILL the postmaster (children exit when they notice)."""
        pid = self.pid
        if pid is not None:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def processes(self) -> list[int]:
        """The postmaster and all its descendants (walsender, checkpointer, and the shell and
        barman-cloud processes an archive_command or restore_command is running)."""
        pid = self.pid
        if pid is None:
            return []
        children: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                # Field 4 of /proc/PID/stat is the parent; the command may contain spaces.
                stat = (entry / "stat").read_text()
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
        found, todo = [], [pid]
        while todo:
            current = todo.pop()
            found.append(current)
            todo.extend(children.get(current, []))
        return found

    def crash(self) -> None:
        """A lost machine: SIGKILL the postmaster and all its descendants at once, so that no
        walsender survives to ship one more byte (`kill` leaves the children running)."""
        for pid in self.processes():
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PgCluster:
        return self

    def __exit__(self, *exc) -> None:
        self.destroy()


@dataclass
class MotoServer:
    """moto's AWS endpoint on loopback, reachable by subprocesses (pg hooks, barman-cloud)."""

    port: int = field(default_factory=free_port)
    _server: object = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MotoServer:
        import logging

        from moto.server import ThreadedMotoServer

        # werkzeug logs every request to stderr unless its logger already has a level.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        return self

    def reset(self) -> None:
        import urllib.request

        # The endpoint is our own loopback http:// URL, never user input.
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")  # noqa: S310
        urllib.request.urlopen(request, timeout=10).read()  # noqa: S310

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def client_env(self, region: str = "eu-west-3") -> dict[str, str]:
        """Environment for boto3 / barman-cloud subprocesses talking to this server."""
        return {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": region,
            "AWS_ENDPOINT_URL": self.endpoint,
        }

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
