"""A loopback test double of the Hugging Face Hub HTTP protocol, for dataset and model repos.

This is a small, real HTTP server (``http.server.ThreadingHTTPServer`` on 127.0.0.1, a free port,
a background thread) that speaks the part of the Hub protocol that ``huggingface_hub`` uses to create
a dataset or model repo and upload a folder to it, and that ``datasets.load_dataset("OWNER/NAME")`` and
``hf_hub_download`` use to read it back. It is a double of the *Hub*, not a mock of our code: the client libraries run
unmodified and talk HTTP to it, so a test passes only if the bytes on the wire are right.

What it implements (``{repo}`` is ``OWNER/NAME``, ``{rev}`` a branch name or a commit sha, ``{kind}``
``datasets`` or ``models``; model repos have no ``datasets/`` prefix in git and download paths, as on the Hub)::

    POST /api/repos/create                                  create (409 if it exists); records `private` and
                                                            the type (no `type`: a model repo; no
                                                            `organization`: the token's user, `HubServer.user`)
    POST /api/validate-yaml                                 checks the README front matter parses
    GET  /api/agent-harnesses                               an empty registry (client telemetry)
    GET  /api/{kind}/{repo}[/revision/{rev}]                repo info (404 + X-Error-Code: RepoNotFound)
    GET  /api/{kind}/{repo}/tree/{rev}[/{path}]             tree listing (404 + X-Error-Code: EntryNotFound)
    POST /api/{kind}/{repo}/paths-info/{rev}                info on given paths (HfApi.get_paths_info)
    POST /api/{kind}/{repo}/preupload/{rev}                 upload mode per file ("lfs" or "regular")
    POST [/datasets]/{repo}.git/info/lfs/objects/batch      LFS batch API, "basic" transfer only
    PUT  /lfs-upload/{sha256}                               where the batch API tells clients to PUT
    POST /api/{kind}/{repo}/commit/{rev}                    NDJSON commit (file, lfsFile, deletedFile/Folder)
    GET  [/datasets]/{repo}/resolve/{rev}/{path}            file download (HEAD too; Range supported)

Anything else is answered 404 and recorded with ``route=None`` (see :meth:`HubServer.unknown_requests`),
which is how the list above was found, and how a test notices a client that starts using a new endpoint.
Xet storage is not implemented: clients must run with ``HF_HUB_DISABLE_XET=1`` (or
``huggingface_hub.constants.HF_HUB_DISABLE_XET = True`` in-process), which makes them use LFS. Also
left out: multipart LFS, paginated listings, branches other than ``main``, pull requests, Space repos,
a model and a dataset repo with the same id, and the ``refs/convert/parquet`` revision (answered 404 RevisionNotFound, as for any
unknown revision).

Access rules follow the Hub: writes need the expected bearer token (401 otherwise); reading a private
repo without it is a 401 with ``X-Error-Code: RepoNotFound``; a wrong token is a 401 with
``X-Error-Message: Invalid credentials in Authorization header``. Only the ``main`` branch exists.

Every request is recorded (:class:`RecordedRequest`) with its headers, except that the Authorization
header is reduced to two booleans: whether a token was sent and whether it was the expected one. The
token itself is held in memory only; nothing the server writes to disk contains it.

Example:
    >>> from huggingface_hub import HfApi
    >>> with HubServer(token="hf_test") as hub:
    ...     api = HfApi(endpoint=hub.url, token="hf_test")
    ...     url = api.create_repo("alice/demo", repo_type="dataset", private=True)
    ...     hub.repos["alice/demo"].private
    True
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

if TYPE_CHECKING:
    from typing_extensions import Self

# Files the Hub would route to LFS for a dataset repo (its default .gitattributes covers these).
LFS_SUFFIXES = (".parquet", ".arrow", ".bin", ".gz", ".zip", ".npy", ".pt", ".safetensors")
GITATTRIBUTES = "".join(f"*{suffix} filter=lfs diff=lfs merge=lfs -text\n" for suffix in LFS_SUFFIXES)
DEFAULT_BRANCH = "main"


# --- what the server stores ------------------------------------------------------------------


@dataclass(frozen=True)
class StoredFile:
    """One file of a commit: its git blob id, its size, and (for LFS files) its sha256."""

    blob: Path  # where the content lies on disk
    size: int
    git_oid: str  # sha1 of the git object (for LFS files: of the pointer file), as the Hub reports it
    sha256: str | None = None  # set for LFS files

    def entry(self, path: str) -> dict:
        """The JSON object the tree and paths-info endpoints return for this file."""
        out = {"type": "file", "path": path, "size": self.size, "oid": self.git_oid}
        if self.sha256 is not None:
            out["lfs"] = {"oid": self.sha256, "size": self.size, "pointerSize": len(_lfs_pointer(self))}
        return out


@dataclass
class Repo:
    """A dataset or model repo: its visibility and the snapshot of files at each commit."""

    repo_id: str
    private: bool
    repo_type: str = "dataset"  # "dataset" or "model"
    commits: dict[str, dict[str, StoredFile]] = field(default_factory=dict)  # sha -> {path: file}
    head: str = ""  # sha of the tip of `main`

    def snapshot(self, rev: str) -> dict[str, StoredFile] | None:
        """Files at branch ``main`` or at a commit sha; None if the revision does not exist."""
        return self.commits.get(self.head if rev == DEFAULT_BRANCH else rev)


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server saw it, with the Authorization header redacted."""

    method: str
    path: str  # path and query string, as sent
    route: str | None  # name of the route that handled it; None for an unknown endpoint
    headers: dict[str, str]  # every header except Authorization
    had_token: bool  # an `Authorization: Bearer ...` header was sent
    token_ok: bool  # ... and it was the expected token
    status: int = 0


class HubError(Exception):
    """Raised inside a handler to answer with a Hub-style error."""

    def __init__(self, status: int, message: str, code: str | None = None, **extra):
        super().__init__(message)
        self.status, self.message, self.code, self.extra = status, message, code, extra


# --- the server ---------------------------------------------------------------------------


class HubServer:
    """Context manager running the Hub double on ``127.0.0.1`` in a background thread.

    Args:
        token: the bearer token that grants write access and access to private repos.
        errors: route name -> HTTP status to answer instead of handling it (e.g. ``{"commit": 500}``),
            to test how clients behave when the Hub fails. Route names are the first column of ``ROUTES``.
        root: folder for stored blobs; a temporary folder (removed on exit) when None.
        user: the token owner's name: the namespace of a repo created without an organization.

    Attributes:
        url: the endpoint to give clients, e.g. ``http://127.0.0.1:54321``.
        repos: repo id -> :class:`Repo`.
        requests: every :class:`RecordedRequest`, in arrival order.
        root: where blobs are stored (every file the server writes is under it).
    """

    def __init__(self, token: str = "hf_test_token", errors: dict[str, int] | None = None, root=None,
                 user: str = "alice"):
        self._token = token
        self.user = user
        self.errors = dict(errors or {})
        self._own_root = root is None
        self.root = Path(tempfile.mkdtemp(prefix="hub-double-") if root is None else root)
        self.repos: dict[str, Repo] = {}
        self.requests: list[RecordedRequest] = []
        self._pending_uploads: set[str] = set()  # sha256s announced by the LFS batch API
        self._lock = threading.RLock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    # --- lifecycle ---
    def __enter__(self) -> Self:
        server = self

        class Handler(_Handler):
            hub = server

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.05,), name="hub-double", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    # --- helpers for tests ---
    def file_bytes(self, repo_id: str, path: str, rev: str = DEFAULT_BRANCH) -> bytes:
        """Content of ``path`` in ``repo_id`` at ``rev``, read from the server's storage."""
        return self.repos[repo_id].snapshot(rev)[path].blob.read_bytes()

    def files(self, repo_id: str, rev: str = DEFAULT_BRANCH) -> list[str]:
        """Sorted paths of the files in ``repo_id`` at ``rev``."""
        return sorted(self.repos[repo_id].snapshot(rev))

    def unknown_requests(self) -> list[RecordedRequest]:
        """Requests for endpoints this double does not implement."""
        return [r for r in self.requests if r.route is None]

    # --- storage ---
    def _store(self, content: bytes) -> Path:
        blob = self.root / "blobs" / hashlib.sha256(content).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        if not blob.exists():
            blob.write_bytes(content)
        return blob

    def _new_commit(self, repo: Repo, files: dict[str, StoredFile], message: str) -> str:
        listing = "\n".join(f"{path} {f.git_oid}" for path, f in sorted(files.items()))
        sha = hashlib.sha1(f"{repo.head}\n{message}\n{time.time_ns()}\n{listing}".encode()).hexdigest()
        repo.commits[sha] = files
        repo.head = sha
        return sha

    def _regular_file(self, content: bytes) -> StoredFile:
        return StoredFile(blob=self._store(content), size=len(content), git_oid=_git_oid(content))

    # --- request plumbing ---
    def _check_token(self, headers) -> tuple[bool, bool]:
        auth = headers.get("Authorization", "")
        had = auth.lower().startswith("bearer ")
        return had, had and auth[len("bearer ") :].strip() == self._token

    def _repo(self, repo_id: str, token_ok: bool, kind: str | None = None) -> Repo:
        """The repo, checked for existence, access and (with ``kind``: datasets/models) type."""
        repo = self.repos.get(repo_id)
        if repo is None or (kind is not None and repo.repo_type != _KINDS.get(kind, kind)):
            raise HubError(404, f"Repository {repo_id} not found", "RepoNotFound")
        if repo.private and not token_ok:
            # The Hub does not tell anonymous users whether a private repo exists.
            raise HubError(401, f"Repository {repo_id} not found", "RepoNotFound")
        return repo

    def _snapshot(self, repo: Repo, rev: str) -> tuple[str, dict[str, StoredFile]]:
        files = repo.snapshot(rev)
        if files is None:
            raise HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        return (repo.head if rev == DEFAULT_BRANCH else rev), files


def _git_oid(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def _lfs_pointer(f: StoredFile) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{f.sha256}\nsize {f.size}\n".encode()


def _lfs_file(blob: Path, sha256: str) -> StoredFile:
    """An LFS file: git stores (and the Hub reports the oid of) a small pointer file, not the content."""
    size = blob.stat().st_size
    pointer = _lfs_pointer(StoredFile(blob, size, "", sha256))
    return StoredFile(blob, size, _git_oid(pointer), sha256)


def _is_lfs(path: str, sample: bytes) -> bool:
    return path.endswith(LFS_SUFFIXES) or b"\0" in sample


def _directories(files: dict[str, StoredFile]) -> set[str]:
    return {str(Path(p).parents[i]) for p in files for i in range(len(Path(p).parents) - 1)}


def _entries(files: dict[str, StoredFile], paths) -> list[dict]:
    """Tree entries (files and directories) for ``paths``, in order, skipping missing ones."""
    dirs = _directories(files)
    out = []
    for path in paths:
        if path in files:
            out.append(files[path].entry(path))
        elif path in dirs:
            out.append({"type": "directory", "path": path, "size": 0, "oid": _git_oid(path.encode())})
    return out


# --- handlers: one method per route -----------------------------------------------------------

REPO = r"(?P<repo>[^/]+/[^/]+?)"
REV = r"(?P<rev>[^/]+)"
KIND = r"(?P<kind>datasets|models)"  # in /api/ paths
PREFIX = r"(?:/(?P<kind>datasets))?"  # in git and download paths: models have none
_KINDS = {"datasets": "dataset", "models": "model"}


class _Handler(BaseHTTPRequestHandler):
    hub: HubServer  # set by HubServer.__enter__
    protocol_version = "HTTP/1.1"

    #: (name, method, path regex, handler, needs write access). Paths are matched before unquoting,
    #: so a revision like ``refs%2Fpr%2F1`` stays one segment.
    ROUTES: ClassVar[list[tuple[str, str, str, str, bool]]] = [
        ("create", "POST", r"/api/repos/create", "create_repo", True),
        ("validate-yaml", "POST", r"/api/validate-yaml", "validate_yaml", False),
        ("agent-harnesses", "GET", r"/api/agent-harnesses", "agent_harnesses", False),
        ("info", "GET", rf"/api/{KIND}/{REPO}(?:/revision/{REV})?", "repo_info", False),
        ("tree", "GET", rf"/api/{KIND}/{REPO}/tree/{REV}(?:/(?P<path>.*))?", "tree", False),
        ("paths-info", "POST", rf"/api/{KIND}/{REPO}/paths-info/{REV}", "paths_info", False),
        ("preupload", "POST", rf"/api/{KIND}/{REPO}/preupload/{REV}", "preupload", True),
        ("lfs-batch", "POST", rf"{PREFIX}/{REPO}\.git/info/lfs/objects/batch", "lfs_batch", True),
        ("lfs-upload", "PUT", r"/lfs-upload/(?P<sha256>[0-9a-f]{64})", "lfs_upload", False),
        ("commit", "POST", rf"/api/{KIND}/{REPO}/commit/{REV}", "commit", True),
        ("resolve", "GET", rf"{PREFIX}/{REPO}/resolve/{REV}/(?P<path>.+)", "resolve", False),
        ("resolve", "HEAD", rf"{PREFIX}/{REPO}/resolve/{REV}/(?P<path>.+)", "resolve", False),
    ]

    def log_message(self, format, *args):  # keep test output clean
        pass

    def do_GET(self):
        self._dispatch()

    def do_HEAD(self):
        self._dispatch()

    def do_POST(self):
        self._dispatch()

    def do_PUT(self):
        self._dispatch()

    # --- dispatch ---
    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        self.query = parse_qs(url.query)
        self.body = self._read_body()
        had_token, token_ok = self.hub._check_token(self.headers)
        self.token_ok = token_ok
        name, handler, match, writes = None, None, None, False
        for route, method, pattern, method_name, needs_write in self.ROUTES:
            m = re.fullmatch(pattern, url.path)
            if m and method == self.command:
                name, handler, match, writes = route, getattr(self, method_name), m, needs_write
                break
        status = 500
        try:
            if name in self.hub.errors:
                raise HubError(self.hub.errors[name], f"injected failure for route {name!r}")
            if handler is None:
                raise HubError(404, f"not implemented by the Hub double: {self.command} {url.path}")
            if had_token and not token_ok:
                raise HubError(401, "Invalid credentials in Authorization header")
            if writes and not token_ok:
                raise HubError(401, "You must be authenticated to do this", "Unauthorized")
            args = {k: unquote(v) for k, v in match.groupdict().items() if v is not None}
            if "repo" in args:
                args["kind"] = match.groupdict().get("kind") or "models"  # no prefix: a model repo
            status = handler(**args)
        except HubError as err:
            status = err.status
            self._send_json({"error": err.message, **err.extra}, err.status, err.code, err.message)
        except Exception as err:  # a bug in the double: answer, so that the client does not hang
            status = 500
            self._send_json({"error": f"Hub double crashed: {err!r}"}, 500)
            raise
        finally:
            headers = {k: v for k, v in self.headers.items() if k.lower() != "authorization"}
            record = RecordedRequest(self.command, self.path, name, headers, had_token, token_ok, status)
            with self.hub._lock:
                self.hub.requests.append(record)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()  # blank line after the last chunk
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes, content_type: str, headers: dict | None = None) -> int:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        return status

    def _send_json(self, obj, status: int = 200, code: str | None = None, message: str | None = None) -> int:
        headers = {}
        if code:
            headers["X-Error-Code"] = code
        if message:
            headers["X-Error-Message"] = message
        return self._send(status, json.dumps(obj).encode(), "application/json", headers)

    def _json_body(self):
        try:
            return json.loads(self.body or b"{}")
        except json.JSONDecodeError as err:
            raise HubError(400, f"request body is not JSON: {err}") from None

    # --- repos ---
    def create_repo(self) -> int:
        payload = self._json_body()
        repo_type = payload.get("type") or "model"  # the client sends no type for a model repo
        if repo_type not in ("dataset", "model"):
            raise HubError(400, "the Hub double only hosts dataset and model repos")
        repo_id = f"{payload.get('organization') or self.hub.user}/{payload['name']}"
        url = f"{self.hub.url}/datasets/{repo_id}" if repo_type == "dataset" else f"{self.hub.url}/{repo_id}"
        with self.hub._lock:
            if repo_id in self.hub.repos:
                # The Hub's 409 carries the url: create_repo(exist_ok=True) reads it.
                raise HubError(409, f"You already created this {repo_type} repo", url=url)
            repo = Repo(
                repo_id, private=payload.get("visibility") == "private" or bool(payload.get("private")),
                repo_type=repo_type,
            )
            # Like the Hub, a new repo starts with one commit holding a .gitattributes.
            initial = {".gitattributes": self.hub._regular_file(GITATTRIBUTES.encode())}
            self.hub._new_commit(repo, initial, "initial commit")
            self.hub.repos[repo_id] = repo
        return self._send_json({"url": url, "name": repo_id, "id": repo_id})

    def validate_yaml(self) -> int:
        content = self._json_body().get("content", "")
        match = re.match(r"---\n(.*?)\n---", content, flags=re.DOTALL)
        if match:
            try:
                yaml.safe_load(match.group(1))
            except yaml.YAMLError as err:
                return self._send_json({"errors": [{"message": str(err)}]}, 400)
        return self._send_json({"errors": [], "warnings": []})

    def agent_harnesses(self) -> int:
        # huggingface_hub fetches this registry (best effort) to tell agents from people; none here.
        return self._send_json({"standardEnvVars": [], "harnesses": {}})

    def repo_info(self, repo: str, kind: str, rev: str = DEFAULT_BRANCH) -> int:
        with self.hub._lock:
            r = self.hub._repo(repo, self.token_ok, kind)
            sha, files = self.hub._snapshot(r, rev)
        owner = repo.split("/")[0]
        return self._send_json(
            {
                "_id": hashlib.sha1(repo.encode()).hexdigest()[:24],
                "id": repo,
                "author": owner,
                "sha": sha,
                "private": r.private,
                "gated": False,
                "disabled": False,
                "downloads": 0,
                "likes": 0,
                "tags": [],
                "lastModified": "2024-01-01T00:00:00.000Z",
                "createdAt": "2024-01-01T00:00:00.000Z",
                "siblings": [{"rfilename": path} for path in sorted(files)],
            }
        )

    # --- listing ---
    def tree(self, repo: str, kind: str, rev: str, path: str = "") -> int:
        with self.hub._lock:
            _, files = self.hub._snapshot(self.hub._repo(repo, self.token_ok, kind), rev)
        path = path.strip("/")
        if path and path not in _directories(files):
            raise HubError(404, f"{path} does not exist on {rev}", "EntryNotFound")
        recursive = self.query.get("recursive", ["false"])[0].lower() in ("1", "true")
        prefix = f"{path}/" if path else ""
        below = sorted(p for p in set(files) | _directories(files) if p.startswith(prefix))
        if not recursive:
            below = [p for p in below if "/" not in p[len(prefix) :]]
        return self._send_json(_entries(files, below))

    def paths_info(self, repo: str, kind: str, rev: str) -> int:
        with self.hub._lock:
            _, files = self.hub._snapshot(self.hub._repo(repo, self.token_ok, kind), rev)
        content_type = self.headers.get("Content-Type", "")
        if content_type.startswith("application/json"):
            paths = self._json_body().get("paths", [])
        else:  # application/x-www-form-urlencoded
            paths = parse_qs(self.body.decode()).get("paths", [])
        return self._send_json(_entries(files, [p.strip("/") for p in paths]))

    # --- upload ---
    def preupload(self, repo: str, kind: str, rev: str) -> int:
        with self.hub._lock:
            _, existing = self.hub._snapshot(self.hub._repo(repo, self.token_ok, kind), rev)
        out = []
        for item in self._json_body().get("files", []):
            path, sample = item["path"], base64.b64decode(item.get("sample", ""))
            lfs = _is_lfs(path, sample)
            old = existing.get(path)
            oid = None if old is None else (old.sha256 if old.sha256 else old.git_oid)
            out.append(
                {"path": path, "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False, "oid": oid}
            )
        return self._send_json({"files": out, "commitOid": None})

    def lfs_batch(self, repo: str, kind: str) -> int:
        with self.hub._lock:
            self.hub._repo(repo, self.token_ok, kind)
        payload = self._json_body()
        if payload.get("operation") != "upload" or "basic" not in payload.get("transfers", ["basic"]):
            raise HubError(400, "the Hub double supports LFS uploads with the basic transfer only")
        objects = []
        for obj in payload.get("objects", []):
            entry = {"oid": obj["oid"], "size": obj["size"]}
            blob = self.hub.root / "blobs" / obj["oid"]
            if not blob.exists():  # already-stored objects get no action, as with real LFS
                with self.hub._lock:
                    self.hub._pending_uploads.add(obj["oid"])
                entry["actions"] = {"upload": {"href": f"{self.hub.url}/lfs-upload/{obj['oid']}"}}
            objects.append(entry)
        return self._send_json({"transfer": "basic", "objects": objects, "hash_algo": "sha256"})

    def lfs_upload(self, sha256: str) -> int:
        # Stands in for a pre-signed storage URL: no token, but only for objects the batch API announced.
        with self.hub._lock:
            if sha256 not in self.hub._pending_uploads:
                raise HubError(403, "no upload was requested for this object")
        if hashlib.sha256(self.body).hexdigest() != sha256:
            raise HubError(400, "uploaded content does not match its sha256")
        self.hub._store(self.body)  # idempotent: two files with the same content may both be PUT
        return self._send(200, b"", "text/plain")

    def commit(self, repo: str, kind: str, rev: str) -> int:
        if rev != DEFAULT_BRANCH:
            raise HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        lines = [json.loads(line) for line in self.body.splitlines() if line.strip()]
        with self.hub._lock:
            r = self.hub._repo(repo, self.token_ok, kind)
            files = dict(r.commits[r.head])
            message = "commit"
            for line in lines:
                key, value = line["key"], line["value"]
                if key == "header":
                    message = value.get("summary") or message
                    parent = value.get("parentCommit")
                    if parent and parent != r.head:
                        raise HubError(412, "A commit has happened since. Please refresh and try again.")
                elif key == "file":
                    content = base64.b64decode(value["content"])
                    files[value["path"]] = self.hub._regular_file(content)
                elif key == "lfsFile":
                    blob = self.hub.root / "blobs" / value["oid"]
                    if not blob.exists():
                        raise HubError(
                            422, f"LFS object {value['oid']} of {value['path']} was never uploaded"
                        )
                    files[value["path"]] = _lfs_file(blob, value["oid"])
                elif key == "deletedFile":
                    files.pop(value["path"], None)
                elif key == "deletedFolder":
                    prefix = value["path"].rstrip("/") + "/"
                    files = {p: f for p, f in files.items() if not p.startswith(prefix)}
                else:
                    raise HubError(400, f"unsupported commit operation {key!r}")
            sha = self.hub._new_commit(r, files, message)
        url = f"{self.hub.url}/{'datasets/' if kind == 'datasets' else ''}{repo}/commit/{sha}"
        return self._send_json({"success": True, "commitOid": sha, "commitUrl": url, "pullRequestUrl": None})

    # --- download ---
    def resolve(self, repo: str, kind: str, rev: str, path: str) -> int:
        with self.hub._lock:
            sha, files = self.hub._snapshot(self.hub._repo(repo, self.token_ok, kind), rev)
        stored = files.get(path)
        if stored is None:
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound")
        content = stored.blob.read_bytes()
        etag = stored.sha256 or stored.git_oid
        headers = {"X-Repo-Commit": sha, "ETag": f'"{etag}"', "Accept-Ranges": "bytes"}
        if stored.sha256:
            headers.update({"X-Linked-Etag": f'"{stored.sha256}"', "X-Linked-Size": str(stored.size)})
        status, content = _apply_range(self.headers.get("Range"), content, headers)
        return self._send(status, content, "application/octet-stream", headers)


def _apply_range(range_header: str | None, content: bytes, headers: dict) -> tuple[int, bytes]:
    """Serve ``bytes=START-END`` (or ``bytes=-N``) ranges as 206, as the Hub's storage does."""
    match = re.fullmatch(r"bytes=(\d*)-(\d*)", (range_header or "").strip())
    if not match or match.group() == "bytes=-":
        return 200, content
    start, end = match.groups()
    size = len(content)
    if start == "":
        first, last = max(size - int(end), 0), size - 1
    else:
        first, last = int(start), min(int(end) if end else size - 1, size - 1)
    if first >= size:
        raise HubError(416, "Requested range not satisfiable")
    headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    return 206, content[first : last + 1]
