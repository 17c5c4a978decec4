"""Records: the one door they are written by (`write`) and the queries that read them (`read`)."""

from sharelake.storage.records.read import (
    COLUMNS,
    count,
    delete_ids,
    get,
    get_by_id,
    get_by_ids,
    latest,
    list_,
    rec_types,
)
from sharelake.storage.records.write import NewRecord, Repeat, Written, insert, row

__all__ = [
    "COLUMNS",
    "NewRecord",
    "Repeat",
    "Written",
    "count",
    "delete_ids",
    "get",
    "get_by_id",
    "get_by_ids",
    "insert",
    "latest",
    "list_",
    "rec_types",
    "row",
]
