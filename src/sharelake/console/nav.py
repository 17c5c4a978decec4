"""The console's navigation: one entry per section, in the order the header shows them.

Rules, device clusters and robots get an entry here (and a page module in `pages/`, included by
`routes.py`) when their services land; nothing else needs to change for them to appear.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Section:
    label: str
    path: str

    def holds(self, path: str) -> bool:
        return path == self.path or path.startswith(self.path + "/")


SECTIONS: tuple[Section, ...] = (
    Section("Data", "/console/data"),
    Section("Keys", "/console/keys"),
    Section("Tokens", "/console/tokens"),
)
