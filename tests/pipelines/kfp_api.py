"""A loopback HTTP server answering the few KFP v2beta1 REST calls ``kfp.Client`` makes to submit.

A real Kubeflow Pipelines API server needs Kubernetes, MySQL and Argo Workflows, none of which can
run on these machines; this server speaks the same HTTP/JSON (healthz, list/create experiment,
create run) so ``kfp.Client`` is exercised for real over the network, and records what it
received so tests can check the pipeline spec and run parameters that were sent.
"""

from __future__ import annotations

import contextlib
import json
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ecom_kfp.testing.servers import LOOPBACK


@dataclass
class KfpApiState:
    """What the server holds and received."""

    experiments: list[dict] = field(default_factory=list)
    runs: list[dict] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)


def _handler(state: KfpApiState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep pytest output clean
            pass

        def _reply(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> dict:
            return json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")

        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            state.requests.append(("GET", url.path))
            if url.path == "/apis/v2beta1/healthz":
                return self._reply(200, {"multi_user": False})
            if url.path == "/apis/v2beta1/experiments":
                query = urllib.parse.parse_qs(url.query)
                wanted = [p["stringValue"] for f in query.get("filter", [])
                          for p in json.loads(f).get("predicates", [])
                          if p.get("key") == "display_name"]
                found = [e for e in state.experiments if not wanted or e["display_name"] in wanted]
                return self._reply(200, {"experiments": found, "total_size": len(found)})
            return self._reply(404, {"error": f"not served: {url.path}"})

        def do_POST(self) -> None:
            path = urllib.parse.urlsplit(self.path).path
            state.requests.append(("POST", path))
            body = self._body()
            if path == "/apis/v2beta1/experiments":
                experiment = {**body, "experiment_id": f"exp-{len(state.experiments) + 1}"}
                state.experiments.append(experiment)
                return self._reply(200, experiment)
            if path == "/apis/v2beta1/runs":
                run = {**body, "run_id": f"run-{len(state.runs) + 1}", "state": "PENDING"}
                state.runs.append(run)
                return self._reply(200, run)
            return self._reply(404, {"error": f"not served: {path}"})

    return Handler


@contextlib.contextmanager
def kfp_api_server() -> Iterator[tuple[str, KfpApiState]]:
    """Yield ``(host URL, state)`` of a server on 127.0.0.1 that stops on exit."""
    state = KfpApiState()
    server = ThreadingHTTPServer((LOOPBACK, 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{LOOPBACK}:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
