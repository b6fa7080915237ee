"""Start real servers on 127.0.0.1 for tests, benchmarks and the local demo.

- :func:`gcs_emulator`: ``gcp-storage-emulator`` speaking the GCS JSON API; sets
  ``STORAGE_EMULATOR_HOST`` so :mod:`ecom_kfp.uri` and google-cloud-storage talk to it.
- :func:`postgres_server`: a throwaway PostgreSQL cluster with the database ``mlflow``, trust
  authentication on loopback and no unix socket; as root (``initdb`` and ``postgres`` refuse it)
  it runs as ``nobody`` in a scratch data directory that user owns.
- :func:`mlflow_server`: ``mlflow server`` with a sqlite backend store, or the backend store URI
  it is given (e.g. :attr:`PostgresServer.uri`).
- :func:`dns_server`: an authoritative DNS server over UDP (a thread of this process) answering
  from a fixed table, for ingest's ``--dns-servers``: names that do not resolve, or resolve to
  loopback, without a query leaving the machine.

Each yields once the server answers and stops it on exit (a process: terminate, then kill).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import pwd
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

from ecom_kfp.scratch import scratch_dir

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A TCP port on loopback that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def wait_until(ready: Callable[[], object], what: str, timeout: float,
               process: subprocess.Popen | None = None) -> None:
    """Call ``ready`` until it returns without raising :class:`OSError` or ``timeout`` seconds pass.

    Args:
        ready: Raises an ``OSError`` (a refused connection, ...) while the server is not ready.
        what: What is awaited, for the messages (e.g. ``http://127.0.0.1:5000/health to answer``).
        timeout: Seconds to wait at most.
        process: The server; when it exits meanwhile, waiting stops at once.

    Raises:
        RuntimeError: ``process`` exited first.
        TimeoutError: ``ready`` still raised after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} while waiting for {what}")
        try:
            ready()
            return
        except OSError as exc:
            last = exc
            time.sleep(0.2)
    raise TimeoutError(f"waited {timeout}s for {what}: {last}")


def wait_http(url: str, timeout: float, process: subprocess.Popen | None = None) -> None:
    """Poll ``url`` until it answers (any HTTP status) or ``timeout`` seconds pass."""

    def answers() -> None:
        try:
            with urllib.request.urlopen(url, timeout=2):
                pass
        except urllib.error.HTTPError:
            pass  # an answer all the same

    wait_until(answers, f"{url} to answer", timeout, process)


def stop_process(process: subprocess.Popen) -> None:
    """Terminate a server process; kill it when it does not exit within 10 s."""
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _bin(name: str) -> str:
    """A console script from this interpreter's environment (works without an activated venv)."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else (shutil.which(name) or name)


@contextlib.contextmanager
def _process(cmd: list[str], wait: Callable[[subprocess.Popen], None], log_path: Path,
             env: Mapping[str, str] | None = None) -> Iterator[subprocess.Popen]:
    """Run ``cmd`` with its output in ``log_path``; yield once ``wait(process)`` returns, stop it on exit."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                   env={**os.environ, **(env or {})}, start_new_session=True)
        try:
            try:
                wait(process)
            except Exception as exc:
                raise RuntimeError(f"{cmd[0]} failed to start; log:\n{log_path.read_text()[-3000:]}") from exc
            yield process
        finally:
            stop_process(process)


@dataclass(frozen=True)
class GcsEmulator:
    """A running emulator: ``endpoint`` is what ``STORAGE_EMULATOR_HOST`` is set to."""

    endpoint: str

    def create_bucket(self, name: str) -> str:
        """Create ``name`` (idempotent); returns ``gs://name``."""
        from google.api_core.exceptions import Conflict

        from ecom_kfp import uri

        try:
            uri.gcs_client().create_bucket(name)
        except Conflict:
            pass
        return f"gs://{name}"


@contextlib.contextmanager
def gcs_emulator(workdir: Path, port: int | None = None) -> Iterator[GcsEmulator]:
    """Run ``gcp-storage-emulator`` (in memory) and point google-cloud-storage at it."""
    port = port or free_port()
    endpoint = f"http://{LOOPBACK}:{port}"
    cmd = [_bin("gcp-storage-emulator"), "start", "--host", LOOPBACK, "--port", str(port), "--in-memory"]
    previous = os.environ.get("STORAGE_EMULATOR_HOST")
    with _process(cmd, lambda process: wait_http(f"{endpoint}/storage/v1/b", 60, process),
                  workdir / "gcs-emulator.log"):
        os.environ["STORAGE_EMULATOR_HOST"] = endpoint
        try:
            yield GcsEmulator(endpoint)
        finally:
            if previous is None:
                os.environ.pop("STORAGE_EMULATOR_HOST", None)
            else:
                os.environ["STORAGE_EMULATOR_HOST"] = previous


#: The PostgreSQL programs :func:`postgres_server` runs, all from one directory.
POSTGRES_PROGRAMS = ("initdb", "postgres", "pg_isready", "createdb")


def postgres_bin_dir() -> Path:
    """The directory with :data:`POSTGRES_PROGRAMS`: that of ``postgres`` on PATH, else the newest
    ``/usr/lib/postgresql/<version>/bin`` (Debian keeps the server programs off PATH).

    Raises:
        FileNotFoundError: no such directory; the message says what to install.
    """
    on_path = shutil.which("postgres")
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True,
                      key=lambda d: [int(n) for n in d.parent.name.split(".") if n.isdigit()])
    for directory in ([Path(on_path).resolve().parent] if on_path else []) + versions:
        if all((directory / name).is_file() for name in POSTGRES_PROGRAMS):
            return directory
    raise FileNotFoundError(f"PostgreSQL programs {', '.join(POSTGRES_PROGRAMS)} are neither on PATH nor in "
                            "/usr/lib/postgresql/*/bin: install the PostgreSQL server (Debian: apt-get install "
                            "postgresql, which scripts/setup.sh does)")


def _run(cmd: list[str], error: type[Exception] = RuntimeError, **kwargs) -> None:
    """Run ``cmd`` to its end; raise ``error`` with its output when it fails."""
    done = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if done.returncode:
        raise error(f"{' '.join(cmd)} exited with {done.returncode}: {done.stdout}{done.stderr}")


def _unprivileged(data_dir: str) -> list[str]:
    """The command prefix that runs PostgreSQL's server programs, which refuse to run as root: as root,
    ``setpriv`` to ``nobody``, who is given ``data_dir``; otherwise none.

    ``setpriv`` execs the program, so the signals :func:`stop_process` sends reach ``postgres`` itself
    (``runuser`` would stay in between as its parent).
    """
    if os.geteuid() != 0:
        return []
    nobody = pwd.getpwnam("nobody")
    os.chown(data_dir, nobody.pw_uid, nobody.pw_gid)
    return [shutil.which("setpriv") or "setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}",
            "--clear-groups", "--"]


@dataclass(frozen=True)
class PostgresServer:
    """A running PostgreSQL cluster; ``user`` is its superuser, trusted on loopback without a password."""

    host: str
    port: int
    user: str
    database: str

    @property
    def uri(self) -> str:
        """``database`` as a SQLAlchemy URI, what ``mlflow server --backend-store-uri`` takes.

        It names the driver, psycopg2: SQLAlchemy 2.1 takes a bare ``postgresql://`` to mean psycopg 3.
        """
        return f"postgresql+psycopg2://{self.user}@{self.host}:{self.port}/{self.database}"


@contextlib.contextmanager
def postgres_server(workdir: Path, port: int | None = None, database: str = "mlflow") -> Iterator[PostgresServer]:
    """Run a new PostgreSQL cluster listening on loopback only, with ``database`` created; its data
    is deleted on exit.

    Authentication is ``trust``: any local user may connect while it runs, so it is for test data
    only. The data directory is a scratch directory (:func:`ecom_kfp.scratch.scratch_dir`), not one
    under ``workdir``: run as root, the cluster belongs to ``nobody``, who cannot enter pytest's
    private temporary directories. The server's log is ``workdir/postgres.log``.

    Raises:
        FileNotFoundError: PostgreSQL is not installed (the message says what to install).
        RuntimeError: ``initdb`` or ``createdb`` failed, or the server did not start (with its log).
    """
    programs = postgres_bin_dir()
    port = port or free_port()
    server = PostgresServer(LOOPBACK, port, "mlflow", database)
    client = ["-h", LOOPBACK, "-p", str(port), "-U", server.user]
    with scratch_dir("postgres") as data:
        as_owner = _unprivileged(data)
        _run([*as_owner, str(programs / "initdb"), "-D", data, "-U", server.user, "--auth=trust",
              "--encoding=UTF8", "--locale=C", "--no-sync"], cwd=data)
        # No unix socket (-k ''): Debian's default directory, /var/run/postgresql, is not nobody's to
        # write, and one of the test's own would be a second way in; clients use TCP on loopback.
        cmd = [*as_owner, str(programs / "postgres"), "-D", data, "-h", LOOPBACK, "-p", str(port), "-k", ""]
        is_ready = [str(programs / "pg_isready"), *client, "-d", "postgres"]

        def accepting(process: subprocess.Popen) -> None:
            wait_until(lambda: _run(is_ready, ConnectionError), f"PostgreSQL on {LOOPBACK}:{port}", 60, process)

        with _process(cmd, accepting, workdir / "postgres.log"):
            _run([str(programs / "createdb"), *client, database])
            yield server


@dataclass(frozen=True)
class MlflowServer:
    """A running tracking server with its model registry."""

    tracking_uri: str
    backend_store_uri: str
    artifacts_root: str


@contextlib.contextmanager
def mlflow_server(workdir: Path, port: int | None = None, backend_store_uri: str = "",
                  artifacts_destination: str = "", options: Sequence[str] = ("--workers", "1"),
                  env: Mapping[str, str] | None = None) -> Iterator[MlflowServer]:
    """Run ``mlflow server`` on loopback with its model registry; artifacts are proxied by the server.

    Args:
        workdir: Where the server's log goes, and the default backend store and artifacts.
        port: The port to listen on; default: a free one.
        backend_store_uri: Where runs and the registry are stored; default: sqlite under ``workdir``.
        artifacts_destination: Where the server keeps artifacts (a directory or ``gs://``); default:
            a directory under ``workdir``.
        options: Further ``mlflow server`` options, e.g. ``--workers`` or ``--allowed-hosts``; default:
            one worker.
        env: Variables for the server, on top of this process's environment.
    """
    port = port or free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    backend = backend_store_uri or f"sqlite:///{(workdir / 'mlflow.db').resolve()}"
    artifacts = artifacts_destination or str((workdir / "artifacts").resolve())
    cmd = [_bin("mlflow"), "server", "--host", LOOPBACK, "--port", str(port),
           "--backend-store-uri", backend, "--artifacts-destination", artifacts, "--serve-artifacts", *options]
    url = f"http://{LOOPBACK}:{port}"
    # Job execution (on by default in the pinned MLflow) starts a job runner and seven huey consumer
    # processes for GenAI jobs, which tracking and the registry never use. Off, a start and 20 s
    # idle cost 11 CPU-seconds instead of 42.
    with _process(cmd, lambda process: wait_http(f"{url}/health", 120, process), workdir / "mlflow-server.log",
                  env={"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **(env or {})}):
        yield MlflowServer(url, backend, artifacts)


@dataclass
class DnsServer:
    """A running :func:`dns_server`: ``address`` is what ``--dns-servers`` takes.

    ``queries`` lists every question asked, as (name, record type), in arrival order.
    """

    address: str
    queries: list[tuple[str, str]] = field(default_factory=list)


def _dns_answer(query: dns.message.Message, records: Mapping[str, Sequence[str]]) -> bytes:
    """The response to ``query``: ``records``' addresses of the asked type, or NXDOMAIN."""
    response = dns.message.make_response(query)
    question = query.question[0]
    addresses = records.get(question.name.to_text(omit_final_dot=True).lower())
    if addresses is None:
        response.set_rcode(dns.rcode.NXDOMAIN)
        return response.to_wire()
    wanted = {dns.rdatatype.A: 4, dns.rdatatype.AAAA: 6}.get(question.rdtype)
    matching = [a for a in addresses if ipaddress.ip_address(a).version == wanted]
    if matching:
        response.answer.append(dns.rrset.from_text_list(question.name, 60, "IN", question.rdtype, matching))
    return response.to_wire()


@contextlib.contextmanager
def dns_server(records: Mapping[str, Sequence[str]]) -> Iterator[DnsServer]:
    """Answer DNS queries on a loopback UDP port from ``records`` (name -> IPv4/IPv6 addresses).

    Names not in ``records`` get NXDOMAIN, as a real name server answers for a name that does not
    exist; a name present with no address of the asked type gets an empty answer.
    """
    table = {name.rstrip(".").lower(): list(addresses) for name, addresses in records.items()}
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((LOOPBACK, 0))
    sock.settimeout(0.1)  # how soon the thread sees the stop request
    server = DnsServer(f"{LOOPBACK}:{sock.getsockname()[1]}")
    stopping = threading.Event()

    def serve() -> None:
        while not stopping.is_set():
            try:
                wire, peer = sock.recvfrom(4096)
            except TimeoutError:
                continue
            try:
                query = dns.message.from_wire(wire)
                question = query.question[0]
                server.queries.append((question.name.to_text(omit_final_dot=True),
                                       dns.rdatatype.to_text(question.rdtype)))
                sock.sendto(_dns_answer(query, table), peer)
            except Exception:  # a malformed datagram is dropped, as a name server does
                continue

    thread = threading.Thread(target=serve, name="dns-server", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        stopping.set()
        thread.join()
        sock.close()
