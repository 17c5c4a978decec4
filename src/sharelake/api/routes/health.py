"""`GET /health`: 200 once the database answers."""

from __future__ import annotations

from fastapi import APIRouter

from sharelake.api.deps import PUBLIC, LakeDep
from sharelake.domain.errors import Unavailable

router = APIRouter(tags=["health"], dependencies=[PUBLIC])


@router.get("/health", summary="Liveness: the database answers")
def health(lake: LakeDep) -> dict[str, str]:
    if not lake.ping():
        raise Unavailable("the database does not answer", code="database_unavailable")
    return {"status": "ok"}
