"""The client: one authenticated HTTP session and the share API's calls on it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

if TYPE_CHECKING:
    import pandas
    import polars

Record = dict[str, Any]
When = datetime | int | str
"""A time bound: an aware datetime, epoch milliseconds, or an ISO-8601 string sent as is."""


class SharelakeError(Exception):
    """A call the server refused: its HTTP status and the API's stable error code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class Client:
    """A session with a sharelake (or Microshare) server.

    Give either a `token` (a bearer token you already hold) or `api_key`, `username` and `password`,
    which log in with the password grant; such a session renews its token with the refresh token when
    the server says it expired. `auth_url` is where `/oauth2/token` lives when that is another host, as
    on Microshare (`https://auth.microshare.io`); sharelake serves it on `url` itself.
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        api_key: str | None = None,
        username: str | None = None,
        password: str | None = None,
        scope: str = "ALL:ALL",
        auth_url: str | None = None,
        timeout: float = 30.0,
        http: httpx.Client | None = None,
    ) -> None:
        login = (api_key, username, password)
        if token is None and None in login:
            raise ValueError("give a token, or api_key, username and password")
        if token is not None and any(part is not None for part in login):
            raise ValueError("give a token or api_key/username/password, not both")
        self._http = http if http is not None else httpx.Client(base_url=url.rstrip("/"), timeout=timeout)
        self._owns_http = http is None
        self._auth_url = (auth_url or "").rstrip("/")
        self._api_key, self._username, self._password, self._scope = api_key, username, password, scope
        self._refresh: str | None = None
        try:
            self._token = token if token is not None else self._password_grant()
        except BaseException:
            self.close()
            raise

    # --- session -----------------------------------------------------------------------------------

    @property
    def token(self) -> str:
        """The bearer token this session sends."""
        return self._token

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def _grant(self, form: Mapping[str, str]) -> dict[str, Any]:
        answer = self._http.post(f"{self._auth_url}/oauth2/token", data=dict(form))
        body: dict[str, Any] = _checked(answer)
        return body

    def _password_grant(self) -> str:
        body = self._grant(
            {
                "grant_type": "password",
                "username": self._username or "",
                "password": self._password or "",
                "client_id": self._api_key or "",
                "scope": self._scope,
            }
        )
        self._refresh = body.get("refresh_token")
        return str(body["access_token"])

    def _renew(self) -> bool:
        """A new access token after a 401: by the refresh token, else by logging in again."""
        if self._api_key is None:
            return False
        if self._refresh is not None:
            try:
                body = self._grant(
                    {
                        "grant_type": "refresh_token",
                        "refresh_token": self._refresh,
                        "client_id": self._api_key,
                    }
                )
            except SharelakeError:
                self._refresh = None
            else:
                self._refresh = body.get("refresh_token", self._refresh)
                self._token = str(body["access_token"])
                return True
        self._token = self._password_grant()
        return True

    def _call(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None, json: Any = None
    ) -> Any:
        for attempt in (1, 2):
            answer = self._http.request(
                method, path, params=params, json=json, headers={"Authorization": f"Bearer {self._token}"}
            )
            if answer.status_code == 401 and attempt == 1 and self._renew():
                continue
            return _checked(answer)
        raise AssertionError("unreachable")  # pragma: no cover

    # --- records -----------------------------------------------------------------------------------

    def records(
        self,
        rec_type: str,
        start: When | None = None,
        end: When | None = None,
        dev_eui: str | None = None,
        tags: Sequence[str] | None = None,
        *,
        per_page: int = 1000,
    ) -> Iterator[Record]:
        """Every record of `rec_type` you may see, oldest first, fetched a page at a time.

        `start` and `end` bound `tstamp` (both inclusive), `dev_eui` keeps one device's uplinks, `tags`
        keeps records that carry all of them. Pages follow sharelake's cursor (`meta.next`), which stays
        fast at any depth; against a server without cursors (Microshare) they follow `page=`.
        """
        if not 1 <= per_page <= 10000:
            raise ValueError("per_page must be between 1 and 10000")
        path = _share_path(rec_type, tags)
        params: dict[str, Any] = {"perPage": per_page, "details": "true", "count": "false"}
        if start is not None:
            params["from"] = _when(start)
        if end is not None:
            params["to"] = _when(end)
        if dev_eui is not None:
            params["devEui"] = dev_eui
        page = 1
        while True:
            body = self._call("GET", path, params=params)
            objs: list[Record] = body.get("objs") or []
            yield from objs
            meta: dict[str, Any] = body.get("meta") or {}
            if "next" in meta:
                if meta["next"] is None:
                    return
                params["cursor"] = meta["next"]
                continue
            if not objs or int(meta.get("currentPage", page)) >= int(meta.get("totalPages", 0)):
                return
            page += 1
            params["page"] = page

    def record(self, rec_type: str, record_id: str) -> Record:
        """One record by its id."""
        body = self._call("GET", f"/share/{_segment(rec_type)}/{_segment(record_id)}")
        objs: list[Record] = body["objs"]
        if not objs:
            raise SharelakeError(404, "record_not_found", f"no record {record_id} of {rec_type}")
        return objs[0]

    def post(
        self,
        rec_type: str,
        data: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        tags: Sequence[str] = (),
    ) -> list[Record]:
        """Store one record (a mapping) or several (a list of mappings, one request); the short objects."""
        body = data if isinstance(data, Mapping) else list(data)
        answer = self._call("POST", _share_path(rec_type, tags or None), json=body)
        objs: list[Record] = answer.get("objs") or []
        return objs

    def delete(self, rec_type: str, record_id: str) -> None:
        """Delete one record (yours, or one a rule lets you delete)."""
        self._call("DELETE", f"/share/{_segment(rec_type)}/{_segment(record_id)}")

    # --- frames ------------------------------------------------------------------------------------

    def to_pandas(
        self,
        rec_type: str,
        start: When | None = None,
        end: When | None = None,
        dev_eui: str | None = None,
        tags: Sequence[str] | None = None,
    ) -> pandas.DataFrame:
        """The records as a pandas DataFrame: `id, recType, createDate (UTC), tstamp, tags, owner`, then
        `data.*` and `uplink.*` flattened by dotted path. Needs the `pandas` extra."""
        import pandas

        rows = [_flat_row(r) for r in self.records(rec_type, start, end, dev_eui, tags)]
        frame = pandas.json_normalize(rows, sep=".") if rows else pandas.DataFrame(columns=list(_BASE))
        frame["createDate"] = pandas.to_datetime(frame["createDate"], utc=True)
        return frame

    def to_polars(
        self,
        rec_type: str,
        start: When | None = None,
        end: When | None = None,
        dev_eui: str | None = None,
        tags: Sequence[str] | None = None,
    ) -> polars.DataFrame:
        """The records as a polars DataFrame, columns as in `to_pandas`. Needs the `polars` extra."""
        import polars

        rows = [_flat_row(r) for r in self.records(rec_type, start, end, dev_eui, tags)]
        if not rows:
            return polars.DataFrame(schema=dict.fromkeys(_BASE, polars.String))
        frame = polars.json_normalize(rows, separator=".", infer_schema_length=None)
        return frame.with_columns(polars.col("createDate").str.to_datetime(time_zone="UTC"))

    # --- tokens ------------------------------------------------------------------------------------

    def tokens(self) -> list[Record]:
        """Your tokens (`id, kind, scope, appid, createDate, expires, lastUsed`; never a secret)."""
        return list(self._pages("/tokens"))

    def revoke_token(self, token_id: str) -> None:
        """Revoke one of your tokens; it fails at once."""
        self._call("DELETE", f"/tokens/{_segment(token_id)}")

    def pipe_token(self) -> str:
        """A new pipe token (`SHARE:WRITE`, no expiry) for a network server; needs the password login."""
        if self._api_key is None:
            raise ValueError("a pipe token needs api_key, username and password")
        body = self._grant(
            {
                "grant_type": "pipe",
                "username": self._username or "",
                "password": self._password or "",
                "client_id": self._api_key,
            }
        )
        return str(body["access_token"])

    def _pages(self, path: str) -> Iterator[Record]:
        page = 1
        while True:
            body = self._call("GET", path, params={"page": page, "perPage": 1000})
            objs: list[Record] = body.get("objs") or []
            yield from objs
            meta: dict[str, Any] = body.get("meta") or {}
            if not objs or int(meta.get("currentPage", page)) >= int(meta.get("totalPages", 0)):
                return
            page += 1


_BASE = ("id", "recType", "createDate", "tstamp", "tags", "owner")


def _flat_row(record: Record) -> Record:
    row: Record = {
        "id": record.get("id"),
        "recType": record.get("recType"),
        "createDate": record.get("createDate"),
        "tstamp": record.get("tstamp"),
        "tags": record.get("tags") or [],
        "owner": (record.get("owner") or {}).get("user"),
    }
    for part in ("data", "uplink"):
        value = record.get(part)
        if isinstance(value, dict) and value:
            row[part] = value
    return row


def _checked(answer: httpx.Response) -> Any:
    if answer.is_success:
        return answer.json() if answer.content else {}
    code, message = f"http_{answer.status_code}", answer.text[:500]
    try:
        error = answer.json()["error"]
        code, message = str(error["code"]), str(error["message"])
    except (ValueError, KeyError, TypeError):
        pass
    raise SharelakeError(answer.status_code, code, message)


def _segment(value: str) -> str:
    if not value:
        raise ValueError("an empty path segment")
    return quote(value, safe="")


def _share_path(rec_type: str, tags: Iterable[str] | None) -> str:
    path = f"/share/{_segment(rec_type)}"
    if tags:
        path += "/tags/" + "/".join(_segment(tag) for tag in tags)
    return path


def _when(value: When) -> str:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("give an aware datetime (e.g. datetime(..., tzinfo=UTC))")
        utc = value.astimezone(UTC)
        return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
    if isinstance(value, bool):
        raise TypeError("a time bound is a datetime, epoch milliseconds or an ISO-8601 string")
    if isinstance(value, int):
        return str(value)
    return value
