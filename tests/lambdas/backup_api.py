"""AWS Backup's restore-job validation API on loopback, for what moto does not serve.

moto implements no AWS Backup restore jobs (/work/shared/NOTES.md). The drill's validation
reports through one call, `PutRestoreValidationResult`; this server answers it as the API reference
documents it (PUT /restore-jobs/{restoreJobId}/validations, JSON body, 204 on success; 400
InvalidParameterValueException for a status outside FAILED | SUCCESSFUL | TIMED_OUT | VALIDATING;
404 ResourceNotFoundException for a job it does not know) and records what it was told. The real
boto3 client talks to it (AWS_ENDPOINT_URL_BACKUP), so the request is serialised by the service model.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STATUSES = {"FAILED", "SUCCESSFUL", "TIMED_OUT", "VALIDATING"}
_PATH = re.compile(r"^/restore-jobs/(?P<job>[^/]+)/validations$")


class BackupValidationApi:
    def __init__(self) -> None:
        self.jobs: set[str] = set()
        self.validations: list[dict] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def _answer(self, code: int, error: str | None = None, message: str = "") -> None:
                body = json.dumps({"__type": error, "Message": message}).encode() if error else b""
                self.send_response(code)
                if error:
                    self.send_header("x-amzn-ErrorType", error)
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_PUT(self) -> None:  # http.server's naming
                match = _PATH.match(self.path.split("?", 1)[0])
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                if match is None:
                    return self._answer(404, "ResourceNotFoundException", f"no route {self.path}")
                job = match["job"]
                if job not in api.jobs:
                    return self._answer(404, "ResourceNotFoundException", f"restore job {job} not found")
                if body.get("ValidationStatus") not in STATUSES:
                    return self._answer(400, "InvalidParameterValueException", "ValidationStatus")
                api.validations.append({"RestoreJobId": job, **body})
                return self._answer(204)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> BackupValidationApi:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
