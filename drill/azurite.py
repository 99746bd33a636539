"""Azurite, the Azure Storage emulator (npm `azurite`), as a throwaway loopback service.

Only its blob service is started, on 127.0.0.1, with its data in a temporary directory; it
always stops by PID. `.ci/run` installs it under /opt/azurite (node_modules outside the
repository); AZURITE_BLOB names another `azurite-blob` executable.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from contextlib import closing, suppress
from dataclasses import dataclass, field
from pathlib import Path

from drill.local import free_port

# The emulator's well-known development account (published in Azurite's README; not a secret).
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
DEFAULT_INSTALL = Path("/opt/azurite/node_modules/.bin/azurite-blob")


def azurite_blob() -> str:
    """The `azurite-blob` executable: $AZURITE_BLOB, /opt/azurite, or PATH."""
    for candidate in (os.environ.get("AZURITE_BLOB"), str(DEFAULT_INSTALL), shutil.which("azurite-blob")):
        if candidate and Path(candidate).exists():
            return candidate
    raise RuntimeError(
        "azurite-blob not found: install it with `npm install --prefix /opt/azurite azurite@3.35.0` "
        "(what .ci/run does; needs Node 18+), or set AZURITE_BLOB to its path")


def azurite_version(executable: str | None = None) -> str:
    """The installed Azurite's version, from its package.json (`--version` takes seconds)."""
    path = Path(executable or azurite_blob()).resolve()
    for parent in path.parents:
        manifest = parent / "package.json"
        if manifest.exists():
            meta = json.loads(manifest.read_text())
            if meta.get("name") == "azurite":
                return str(meta.get("version", "?"))
    return "?"


@dataclass
class AzuriteServer:
    port: int = field(default_factory=free_port)
    location: Path | None = None
    proc: subprocess.Popen | None = None

    @property
    def account_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/{ACCOUNT}"

    def connection_string(self, key: str = ACCOUNT_KEY) -> str:
        return (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={key};"
                f"BlobEndpoint={self.account_url};")

    def version(self) -> str:
        return azurite_version()

    def start(self, timeout: float = 30.0) -> AzuriteServer:
        self.location = Path(self.location or tempfile.mkdtemp(prefix="azurite-"))
        self.location.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [azurite_blob(), "--blobHost", "127.0.0.1", "--blobPort", str(self.port), "--location",
             str(self.location), "--silent", "--skipApiVersionCheck"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"azurite-blob exited with {self.proc.returncode}: "
                                   f"{self.proc.stderr.read().decode(errors='replace')[-2000:]}")
            with closing(socket.socket()) as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"azurite-blob did not listen on 127.0.0.1:{self.port} within {timeout:.0f} s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self.proc is not None and self.proc.stderr:
            self.proc.stderr.close()
        if self.location is not None:
            shutil.rmtree(self.location, ignore_errors=True)

    def reset(self) -> None:
        """Delete every container (the emulator keeps state on disk between tests)."""
        from azure.storage.blob import BlobServiceClient

        svc = BlobServiceClient.from_connection_string(self.connection_string())
        for c in svc.list_containers():
            svc.delete_container(c.name)
