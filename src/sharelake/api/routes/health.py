"""`GET /health`: 200 once the database answers."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from sharelake.api.deps import LakeDep
from sharelake.domain.errors import Unavailable

router = APIRouter(tags=["health"])


@router.get("/health", summary="Liveness: the database answers")
def health(lake: LakeDep) -> dict[str, str]:
    try:
        with lake.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError:
        raise Unavailable("the database does not answer", code="database_unavailable") from None
    return {"status": "ok"}
