"""Argon2id password hashing, with a constant-cost answer for unknown accounts."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


class Passwords:
    def __init__(self, *, time_cost: int, memory_cost: int) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_cost, parallelism=1)
        self._dummy: str | None = None

    @property
    def dummy(self) -> str:
        """Verifying against this when the account does not exist costs the same as a real check, so
        response time does not reveal which e-mails have accounts. Made on first use: hashing takes
        the full Argon2 memory, which a server that never sees a login need not spend at start."""
        if self._dummy is None:
            self._dummy = self._hasher.hash("not a real password, only here to spend the same time")
        return self._dummy

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored_hash: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(stored_hash or self.dummy, password) and stored_hash is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored_hash: str) -> bool:
        return self._hasher.check_needs_rehash(stored_hash)
