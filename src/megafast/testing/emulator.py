"""``MegaEmulator``: a MEGA API and storage server on loopback, for tests (like moto for AWS).

    with MegaEmulator() as emu:
        emu.create_account("alice@example.com", "secret")
        handle, key = emu.add_file("alice@example.com", b"hello", "hello.txt")
        # point any MEGA client at emu.api_url

Accounts are created the way a registering client creates them (so the emulator knows
their master keys, only for its seeding helpers); everything a client sends afterwards is
stored as it came: the server part never needs or sees file keys.

Behind the facade: ``_server`` (HTTP: ``/cs``, ``/sc``, ``/dl``, ``/ul``), ``_api`` (the
``/cs`` envelope) joining the command groups ``_accounts``, ``_nodes`` (listing, versions,
copies), ``_shares`` and ``_grants`` (transfer URLs); ``_changes`` and ``_packets`` (the
change log and MEGA's action packets); ``_store`` (SQLite and blobs); ``_seeding`` (the
helpers below that add folders, files and links); ``_faults`` (the knobs).
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from . import _crypto as C
from ._api import Service
from ._changes import encode_sn
from ._faults import FaultInjector, Faults
from ._seeding import Seeding
from ._server import EmulatorHTTPServer
from ._store import Store

__all__ = ["Account", "MegaEmulator"]


@dataclass(frozen=True)
class Account:
    """What the emulator's registering client knows about an account it created."""

    handle: str
    email: str | None
    password: str | None
    version: int  # 1, 2, or 0 for an ephemeral account
    master_key: bytes
    password_key: bytes
    mfa_secret: str | None = None

    def totp(self, at: float | None = None) -> str:
        """The current two-factor code (RFC 6238) of this account."""
        if not self.mfa_secret:
            raise ValueError("this account has no two-factor secret")
        return C.totp(self.mfa_secret, at)


class MegaEmulator(Seeding):
    """A faithful MEGA emulator serving HTTP on ``host`` (a free port unless ``port``).

    ``data_dir``: where state (SQLite) and blobs live; a temporary directory (removed on
    :meth:`stop`) when None. ``fresh_rsa_keys``: give every account its own RSA key pair
    (about 1 s each) instead of one shared per process. ``faults``: initial fault settings
    (a :class:`Faults` or a dict of its fields). ``storage_quota``: bytes per new account.
    ``sc_log_size``: action packets kept for ``/sc`` (an older ``sn`` gets ``-6``);
    ``sc_wait_timeout``: seconds a ``/sc`` wait URL holds the request when nothing happens
    (at most 40). Both can change later with :meth:`configure_sc`. ``tls``: serve HTTPS with
    a certificate from a fresh local authority whose certificate is :attr:`ca_file` (needs the
    ``cryptography`` package; see ``_tls``); every URL handed out is then ``https://``, except
    with ``plain_transfers``: download and upload URLs then point to a second, plain HTTP port
    (file content is encrypted anyway; MEGA's storage servers long served plain HTTP), so a
    benchmark measures the clients rather than the emulator's Python TLS.

    Every change (from any session's ``/cs`` commands or from the seeding helpers here) is
    logged as MEGA action packets, served by ``/sc?sn=...&sid=...``; ``f`` answers carry the
    current ``sn``.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        data_dir: str | os.PathLike | None = None,
        *,
        faults: Faults | dict | None = None,
        fresh_rsa_keys: bool = False,
        hashcash_easiness: int | None = None,
        storage_quota: int = 20 * 1024**3,
        sc_log_size: int = 100_000,
        sc_wait_timeout: float = 30.0,
        tls: bool = False,
        plain_transfers: bool = False,
    ) -> None:
        if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
            raise ValueError("port must be an integer 0-65535 (0: a free port)")
        self.host = host
        self._requested_port = port
        self._own_dir = data_dir is None
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.fresh_rsa_keys = fresh_rsa_keys
        if isinstance(faults, dict):
            faults = Faults(**faults)
        self._injector = FaultInjector(faults or Faults())
        self._storage_quota = storage_quota
        self._hashcash = hashcash_easiness
        self._sc = (sc_log_size, sc_wait_timeout)
        self.tls = tls
        self.plain_transfers = plain_transfers and tls
        self._plain: EmulatorHTTPServer | None = None  # plain_transfers: the HTTP server
        self._plain_thread: threading.Thread | None = None
        self.ca_file: Path | None = None  # with tls: the authority's certificate to trust
        self._server: EmulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._store: Store | None = None
        self._service: Service | None = None
        self.port = 0

    # --- life cycle --------------------------------------------------------------------

    def start(self) -> MegaEmulator:
        """Start serving in a background thread; returns self."""
        if self._server is not None:
            return self
        if self.data_dir is None:
            self.data_dir = Path(tempfile.mkdtemp(prefix="megafast-emulator-"))
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._store = Store(self.data_dir)
        self._service = Service(
            self._store, self._injector, lambda: self.api_url, storage_quota=self._storage_quota
        )
        if self._hashcash is not None:
            self._service.require_hashcash(self._hashcash)
        try:
            self._service.changes.configure(*self._sc)
            self._server = EmulatorHTTPServer((self.host, self._requested_port), self._service)
            if self.tls:
                from ._tls import make_certificates, server_context

                certs = make_certificates(self.data_dir / "tls", (self.host,))
                self._server.ssl_context = server_context(certs)
                self.ca_file = certs.ca_file
            if self.plain_transfers:
                self._plain = EmulatorHTTPServer((self.host, 0), self._service)
                self._service.transfer_base_url = lambda: self._url("http", self._plain)
        except BaseException:
            for server in (self._server, self._plain):
                if server is not None:
                    server.server_close()
            self._server = self._plain = None
            self._store.close()
            self._store = self._service = None
            if self._own_dir and self.data_dir is not None:
                shutil.rmtree(self.data_dir, ignore_errors=True)
                self.data_dir = None
            raise
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"megafast-emulator-{self.port}",
            daemon=True,
        )
        self._thread.start()
        if self._plain is not None:
            self._plain_thread = threading.Thread(
                target=self._plain.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"megafast-emulator-{self.port}-plain",
                daemon=True,
            )
            self._plain_thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close every connection, and remove a temporary data directory."""
        if self._server is None:
            return
        assert self._service is not None
        self._service.changes.close()  # wake the long polls
        for server, thread in ((self._server, self._thread), (self._plain, self._plain_thread)):
            if server is None:
                continue
            server.shutdown()
            server.close_all_connections()
            server.server_close()
            if thread is not None:
                thread.join(timeout=5)
        self._plain = self._plain_thread = None
        assert self._store is not None
        self._store.close()
        self._server = self._thread = self._store = self._service = None
        if self._own_dir and self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self.data_dir = None

    def __enter__(self) -> MegaEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def api_url(self) -> str:
        """``http://127.0.0.1:<port>`` (``https://`` with ``tls``; no trailing slash); clients
        POST ``{api_url}/cs``."""
        return self._url("https" if self.tls else "http", self._server)

    def _url(self, scheme: str, server: EmulatorHTTPServer | None) -> str:
        host = self.host if self.host not in ("", "0.0.0.0") else "127.0.0.1"
        port = server.server_address[1] if server is not None else self.port
        return f"{scheme}://{host}:{port}"

    @property
    def store(self) -> Store:
        if self._store is None:
            raise RuntimeError("the emulator is not running (use start() or a with block)")
        return self._store

    @property
    def service(self) -> Service:
        if self._service is None:
            raise RuntimeError("the emulator is not running (use start() or a with block)")
        return self._service

    # --- faults ------------------------------------------------------------------------

    @property
    def faults(self) -> Faults:
        """The current fault settings (read-only copy semantics: change with set_faults)."""
        return self._injector.faults

    @property
    def fault_counts(self) -> dict[str, int]:
        """How many times each fault fired: api_eagain, api_error, transfer_error, drop,
        corrupt."""
        return dict(self._injector.counts)

    def set_faults(self, **changes: object) -> Faults:
        """Change fault/throttle settings (names of :class:`Faults` fields); ValueError on nonsense."""
        return self._injector.update(**changes)

    def clear_faults(self) -> None:
        """Back to a well-behaved server (and reset the fault counters)."""
        self._injector.reset()

    def require_hashcash(self, easiness: int | None, limit: int | None = None) -> None:
        """New clients' first ``/cs`` request gets HTTP 402 with a challenge (None: off).

        A client is known once it sent a correct answer (by its connection, and by the
        sessions it opens afterwards). ``limit`` caps how many challenges are issued.
        """
        self.service.require_hashcash(easiness, limit)

    def stats(self) -> dict:
        """Counters of what the emulator has served: api_requests, api_answered,
        api_replayed (same id), api_eagain, api_http_error (the ``api_error`` fault before the
        batch ran), api_answers_lost (after), api_challenged (402), api_batch_refused (over
        ``max_batch``), connections_refused (over ``max_connections_per_ip``), sc_requests
        (``/sc`` polls), download_requests, download_bytes, upload_requests, upload_bytes,
        commands ({name: count}) and max_active_transfers (the most transfer requests in flight
        at once) and active_transfers (in flight now)."""
        return self.service.stats.snapshot()

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Wait until no transfer request is in flight (for example the requests of a client
        that was killed: their bytes are counted when the server notices the end)."""
        deadline = time.monotonic() + timeout
        while self.service.stats.snapshot()["active_transfers"]:
            if time.monotonic() > deadline:
                raise TimeoutError(f"transfers still in flight after {timeout:g} s")
            time.sleep(0.01)

    @property
    def request_log(self) -> list[dict]:
        """The last 10000 requests: ``{"kind": "api", "id", "commands", "outcome"}`` or
        ``{"kind": "download"|"upload", "token", "where" (range/offset), "status", "bytes"}``."""
        return list(self.service.stats.log)

    def reset_stats(self) -> None:
        """Zero the counters and empty the request log."""
        self.service.stats.reset()

    def expire_urls(self) -> None:
        """Make every download and upload URL issued so far expired (403 / -8)."""
        self.service.expire_urls()

    def configure_sc(self, log_size: int | None = None, wait_timeout: float | None = None) -> None:
        """Change how many action packets ``/sc`` keeps (trimming now; an ``sn`` from before
        the kept ones gets ``-6``) and how long its wait URL holds a request (<= 40 s)."""
        self.service.changes.configure(log_size, wait_timeout)  # validates first
        self._sc = (log_size or self._sc[0], wait_timeout or self._sc[1])

    @property
    def sn(self) -> str:
        """The current ``sn`` (as ``f`` and ``/sc`` give it)."""
        return encode_sn(self.service.changes.current())

    # --- accounts ----------------------------------------------------------------------

    def create_account(
        self,
        email: str,
        password: str,
        version: int = 2,
        mfa_secret: str | bool | None = None,
        *,
        name: str | None = None,
    ) -> Account:
        """Register a full account as MEGA's web client does (v1 or v2 password scheme).

        ``mfa_secret``: a base32 TOTP secret (or True for a fresh one) turns on 2FA.
        """
        if version not in (1, 2):
            raise ValueError("version must be 1 or 2")
        if not isinstance(email, str) or "@" not in email:
            raise ValueError("email must look like an email address")
        if not isinstance(password, str):
            raise TypeError("password must be a str")
        email = email.lower()
        store = self.store
        if store.user_by_email(email) is not None:
            raise ValueError("an account with that email already exists")
        if mfa_secret is True:
            mfa_secret = base64.b32encode(secrets.token_bytes(20)).decode().rstrip("=")
        elif mfa_secret is not None and not isinstance(mfa_secret, str):
            raise TypeError("mfa_secret must be a base32 str, True or None")
        if isinstance(mfa_secret, str):
            C.totp(mfa_secret)  # validates the base32 text
        master_key = secrets.token_bytes(16)
        salt = None
        if version == 1:
            password_key = C.prepare_key(C.str_to_a32_mega(password))
            uh = C.stringhash(email, password_key)
        else:
            salt = secrets.token_bytes(32)
            password_key, uh = C.derive_v2(password, salt)
        rsa = C.rsa_key(fresh=self.fresh_rsa_keys)
        handle = self._register(
            master_key,
            email=email,
            name=name,
            version=version,
            salt=C.b64encode(salt) if salt else None,
            uh=uh,
            k=C.b64encode(C.ecb_encrypt(password_key, master_key)),
            privk=C.b64encode(C.ecb_encrypt(master_key, rsa.privk_plain())),
            pubk=C.b64encode(rsa.pubk()),
            mfa=mfa_secret,
        )
        return Account(handle, email, password, version, master_key, password_key, mfa_secret)

    def create_ephemeral_account(self) -> Account:
        """An anonymous account, as ``up`` makes one; log in with ``us`` and its handle."""
        master_key = secrets.token_bytes(16)
        password_key = secrets.token_bytes(16)
        r = secrets.token_bytes(16)
        handle = self._register(
            master_key,
            email=None,
            version=0,
            k=C.b64encode(C.ecb_encrypt(password_key, master_key)),
            ts=C.b64encode(r + C.ecb_encrypt(master_key, r)),
        )
        return Account(handle, None, None, 0, master_key, password_key)

    def _register(self, master_key: bytes, **columns: object) -> str:
        """Add a user (``columns`` of its ``users`` row, plus the storage quota and the
        creation time) with its three roots, and keep its master key for the helpers;
        returns the new user handle."""
        names = ", ".join(["handle", *columns, "mstrg"])
        marks = ",".join("?" * (len(columns) + 2))
        store = self.store
        with store.transaction():
            handle = store.new_handle("users", "handle", 8)
            store.execute(
                f"INSERT INTO users({names}, since) VALUES({marks},strftime('%s','now'))",
                handle,
                *columns.values(),
                self._storage_quota,
            )
            store.execute(
                "INSERT INTO helper_keys(user, master_key) VALUES(?,?)",
                handle,
                C.b64encode(master_key),
            )
            store.create_roots(handle)
        return handle

    def account(self, email_or_handle: str) -> Account:
        """The account as its registering client knows it (KeyError when unknown)."""
        row = self._user(email_or_handle)
        mk = self._master_key(row["handle"])
        return Account(row["handle"], row["email"], None, row["version"], mk, b"", row["mfa"])

    def create_session(self, email_or_handle: str) -> str:
        """A session id for the account, as a successful login would give (tests only)."""
        row = self._user(email_or_handle)
        if row["email"] is None:
            self.store.execute(
                "INSERT OR IGNORE INTO sessions(sid, user, since) VALUES(?,?,strftime('%s','now'))",
                row["ts"],
                row["handle"],
            )
            return row["ts"]
        return self.service.new_session(row["handle"])

    def root_handle(self, email_or_handle: str, t: int = 2) -> str:
        """Handle of the account's Cloud Drive (t=2), Inbox (3) or Rubbish Bin (4)."""
        return self.store.root_node(self._user(email_or_handle)["handle"], t)

    def set_storage_quota(self, email_or_handle: str, total: int) -> None:
        """Change an account's storage quota (bytes)."""
        self.store.execute(
            "UPDATE users SET mstrg=? WHERE handle=?",
            int(total),
            self._user(email_or_handle)["handle"],
        )

    # --- transfers ---------------------------------------------------------------------

    def download_url(self, handle: str) -> str:
        """A temporary download URL for a file node, as ``g`` gives it."""
        node = self.store.node(handle)
        if node is None or node["t"] != 0:
            raise KeyError(f"no such file: {handle!r}")
        return self.service.grant_download(node["blob"], node["s"])

    def upload_url(self, email: str, size: int, *, raw_token: bool = False) -> str:
        """A temporary upload URL for ``size`` bytes, as ``u`` gives it."""
        if not isinstance(size, int) or size < 0:
            raise ValueError("size must be a non-negative int")
        return self.service.grant_upload(self._user(email)["handle"], size, raw_token)

    def stored_blob(self, handle: str) -> bytes:
        """The bytes stored for a file node, exactly as the uploader sent them (tests only)."""
        node = self.store.node(handle)
        if node is None or node["t"] != 0:
            raise KeyError(f"no such file: {handle!r}")
        return self.store.blob_path(node["blob"]).read_bytes()

    def node(self, handle: str) -> dict | None:
        """The stored record of a node (h, owner, parent, t, a, k, s, ts, blob), or None."""
        row = self.store.node(handle)
        return dict(row) if row is not None else None

    def nodes(self, email: str) -> list[dict]:
        """Every node the account owns, as stored."""
        owner = self._user(email)["handle"]
        return [
            dict(r) for r in self.store.all("SELECT * FROM nodes WHERE owner=? ORDER BY seq", owner)
        ]
