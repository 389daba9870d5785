"""Who or what performs a state change, for history rows."""

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Actor:
    label: str
    user: Any = None  # a User instance, or None for the system

    @classmethod
    def system(cls, what: str = "system") -> "Actor":
        return cls(label=f"system:{what}")

    @classmethod
    def staff(cls, user: Any) -> "Actor":
        return cls(label=f"staff:{user.get_username()}", user=user)

    @classmethod
    def customer(cls, user: Any) -> "Actor":
        return cls(label=f"customer:{user.get_username()}", user=user)

    @classmethod
    def for_user(cls, user: Any) -> "Actor":
        return cls.staff(user) if user.is_staff else cls.customer(user)

    @classmethod
    def provider(cls, provider: str, reference: str) -> "Actor":
        return cls(label=f"{provider}:{reference}")

    def __str__(self) -> str:
        return self.label
