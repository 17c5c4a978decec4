"""Views as documents (`/view/...`), and running one over the records its caller may Query."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from sqlalchemy import Engine

from sharelake.domain import records as wire
from sharelake.domain import scopes
from sharelake.domain import view_parse as pipelines
from sharelake.domain.errors import Forbidden, Invalid, NotFound
from sharelake.domain.principal import Principal
from sharelake.services.documents import Kind
from sharelake.services.sharing import Sharing
from sharelake.storage import documents as doc_store
from sharelake.storage import views as view_store


def normalize_view_data(data: Any, _principal: Principal) -> dict[str, Any]:
    """`data.query` must be a pipeline we can run (checked with its placeholders unfilled); the rest is free."""
    if not isinstance(data, dict) or "query" not in data:
        raise Invalid(
            'a view\'s data must be an object with a query: {"query": [{"$match": {…}}, …]}',
            code="invalid_view",
        )
    pipelines.parse(data["query"])
    return data


class Views:
    def __init__(self, engine: Engine, sharing: Sharing) -> None:
        self._engine = engine
        self._sharing = sharing

    def kind(self) -> Kind:
        return Kind(name="view", resource="VIEW", title="view", normalize=normalize_view_data)

    def run(
        self,
        principal: Principal,
        view_rec_type: str,
        view_id: str,
        source_rec_type: str | None,
        variables: Mapping[str, str],
    ) -> bytes:
        """Run the caller's view `view_id` over the records they may Query (of `source_rec_type` if given);
        the answer is the envelope, each output document one obj's `data`."""
        if not (
            scopes.allows(principal.scopes, "VIEW", "QUERY")
            or scopes.allows(principal.scopes, "SHARE", "QUERY")
        ):
            raise Forbidden(
                f"this {principal.kind} token's scope ({scopes.format(principal.scopes)}) does not allow running "
                "views: request a token with VIEW:QUERY or SHARE:QUERY",
                code="insufficient_scope",
            )
        wire.check_rec_type(view_rec_type)
        if source_rec_type is not None:
            wire.check_rec_type(source_rec_type)
        with self._engine.connect() as conn:
            doc = doc_store.get(conn, "view", view_id) if wire.is_record_id(view_id) else None
            if doc is None or doc.owner_user != principal.email or doc.rec_type != view_rec_type:
                raise NotFound(
                    f"no view {view_id[:64]!r} of recType {view_rec_type!r} in your account",
                    code="view_not_found",
                )
            pipeline = pipelines.parse(orjson.loads(doc.data).get("query"), variables)
            visible = self._sharing.visible(conn, principal, "Query", source_rec_type)
            result = view_store.run(conn, pipeline, visible, source_rec_type)
        objs = [{"recType": view_rec_type, "data": d} for d in result.docs]
        extra: dict[str, Any] = {"view": view_id}
        if result.truncated:
            extra["truncated"] = True
        return wire.envelope(objs, total_count=len(objs), per_page=result.limit, extra_meta=extra)
