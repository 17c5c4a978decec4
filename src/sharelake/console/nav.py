"""The console's navigation: one entry per section, in the order the header shows them.

A new section is an entry here, a page module in `pages/` and its name in `routes.py`.
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
    Section("Rules", "/console/rules"),
    Section("Devices", "/console/devices"),
    Section("Device clusters", "/console/clusters"),
    Section("Robots", "/console/robots"),
    Section("Alerts", "/console/alerts"),
    Section("Keys", "/console/keys"),
    Section("Tokens", "/console/tokens"),
)
