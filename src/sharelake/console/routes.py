"""Console pages. The e-mailed verification link lands on `/console/verify`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Form
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from sharelake.api.deps import LakeDep
from sharelake.domain.errors import SharelakeError

HERE = Path(__file__).parent
STATIC = HERE / "static"
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(prefix="/console", include_in_schema=False)


@router.get("/verify")
async def verify_form(request: Request, token: str = "") -> Response:
    return templates.TemplateResponse(request, "verify.html", {"token": token, "error": None})


@router.post("/verify")
async def verify_submit(
    request: Request,
    lake: LakeDep,
    token: Annotated[str, Form(max_length=256)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    password_again: Annotated[str, Form(max_length=1024)] = "",
) -> Response:
    error = None
    if password != password_again:
        error = "The two passwords differ."
    else:
        try:
            user = await run_in_threadpool(lake.accounts.verify, token, password)
        except SharelakeError as exc:
            error = exc.message
        else:
            return templates.TemplateResponse(request, "verified.html", {"email": user.email})
    return templates.TemplateResponse(
        request, "verify.html", {"token": token, "error": error}, status_code=400
    )
