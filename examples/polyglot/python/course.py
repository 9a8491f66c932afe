"""The course system's synthetic data, computed rather than stored so that every process, in
every language, agrees on it: the same rules as examples/course-data.ts."""

from __future__ import annotations

from dataclasses import dataclass

MAX_USER_ID = 1000
"""Highest existing user id; ids 1..MAX_USER_ID exist."""

MANUAL_REVIEW_THRESHOLD = 10_000
"""Payments above this amount go to a manual review that outlasts any caller's timeout."""

MANUAL_REVIEW_SECONDS = 5.0
"""How long a manual review takes, in seconds."""

_FIRST_NAMES = ["Alice", "Bob", "Charlie", "Dana", "Erin", "Farid", "Grace", "Hiro", "Ines", "Jonas"]
_LAST_NAMES = ["Smith", "Novak", "Okafor", "Garcia", "Kim", "Larsen", "Moreau", "Rossi", "Sato", "Weber"]


@dataclass(frozen=True)
class User:
    id: int
    name: str
    email: str


def find_user(user_id: int) -> User | None:
    """The user with this id, or None when it is not in 1..MAX_USER_ID."""
    if user_id < 1 or user_id > MAX_USER_ID:
        return None
    first = _FIRST_NAMES[user_id % len(_FIRST_NAMES)]
    last = _LAST_NAMES[(user_id // len(_FIRST_NAMES)) % len(_LAST_NAMES)]
    return User(user_id, f"{first} {last}", f"{first.lower()}.{last.lower()}.{user_id}@example.com")


def balance_of(user_id: int) -> tuple[float, str]:
    """The balance of a user in euros: a deterministic amount between 100 and 712.5."""
    return 100 + (abs(user_id) % 50) * 12.5, "EUR"
