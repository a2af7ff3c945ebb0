"""The HTTP sessions of transfers: private copies of the caller's session with a pool of
their own size, which read the environment once instead of on every request."""

from __future__ import annotations

import os
import urllib.request

import requests
from requests.adapters import HTTPAdapter

__all__ = ["clone_session"]


def clone_session(http: requests.Session | None, pool: int) -> requests.Session:
    """A private session for one transfer with a connection pool of ``pool`` connections.

    It copies the caller's headers, proxies, TLS settings, auth and cookie jar, so the
    caller's session (shared with API calls) is never changed by a transfer.
    """
    session = requests.Session()
    if isinstance(http, requests.Session):
        session.headers.update(http.headers)
        session.proxies.update(http.proxies)
        session.verify = http.verify
        session.cert = http.cert
        session.auth = http.auth
        session.trust_env = http.trust_env
        session.cookies = http.cookies
    _settle_environment(session)
    adapter = HTTPAdapter(pool_connections=2, pool_maxsize=max(1, pool), max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _settle_environment(session: requests.Session) -> None:
    """Read once what requests would read from the environment on every request (a scan of
    ``os.environ`` per request, the biggest fixed cost of a small transfer after the round
    trips): with no proxy variables and no netrc file, the CA bundle variable (if any)
    becomes ``session.verify`` (where requests puts it when ``verify`` is the default) and
    the session stops looking."""
    if not session.trust_env or urllib.request.getproxies():
        return
    netrc = os.environ.get("NETRC")
    places = [netrc] if netrc is not None else ["~/.netrc", "~/_netrc"]
    if any(os.path.exists(os.path.expanduser(p)) for p in places):
        return
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle:
        if session.verify is not True:
            return  # the caller's own verify setting: left to requests as it was
        session.verify = bundle
    session.trust_env = False
