"""Root rotation as a pure state machine over authority ids.

    stable(A)  --begin(B)-->  rotating: trust A+B, A signs
               --switch-->    switched: trust A+B, B signs
               --finish-->    stable(B)

Each step must reach every workload (new bundle, then new certs) before the next one, so
at any moment two workloads one step apart still trust each other's certificates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Phase = Literal["stable", "rotating", "switched"]


class RotationError(RuntimeError):
    """A rotation step asked for out of order; says which step comes next."""


@dataclass(frozen=True, slots=True)
class RotationState:
    signing: str
    trusted: tuple[str, ...]  # oldest first; at most two

    @property
    def phase(self) -> Phase:
        if len(self.trusted) == 1:
            return "stable"
        return "rotating" if self.signing == self.trusted[0] else "switched"

    def begin(self, new_id: str) -> RotationState:
        if self.phase != "stable":
            raise RotationError(f"a rotation is already in progress ({self.phase}); {_next(self)}")
        if new_id in self.trusted:
            raise RotationError(f"authority {new_id} is already trusted")
        return RotationState(self.signing, (*self.trusted, new_id))

    def switch(self) -> RotationState:
        if self.phase != "rotating":
            raise RotationError(f"cannot switch signing while {self.phase}; {_next(self)}")
        return RotationState(self.trusted[1], self.trusted)

    def finish(self) -> tuple[RotationState, str]:
        """The new state and the id of the retired authority."""
        if self.phase != "switched":
            raise RotationError(f"cannot finish rotation while {self.phase}; {_next(self)}")
        return RotationState(self.signing, (self.signing,)), self.trusted[0]

    def to_json(self) -> dict[str, object]:
        return {"signing": self.signing, "trusted": list(self.trusted)}

    @classmethod
    def from_json(cls, data: object) -> RotationState:
        if not isinstance(data, dict):
            raise ValueError("CA state must be a JSON object")
        signing, trusted = data.get("signing"), data.get("trusted")
        if not isinstance(signing, str) or not isinstance(trusted, list):
            raise ValueError("CA state needs 'signing' (string) and 'trusted' (list)")
        if not 1 <= len(trusted) <= 2 or not all(isinstance(t, str) for t in trusted):
            raise ValueError("CA state 'trusted' must list one or two authority ids")
        if signing not in trusted:
            raise ValueError(f"CA state: signing authority {signing} is not trusted")
        return cls(signing, tuple(trusted))


def _next(state: RotationState) -> str:
    return {
        "stable": "call begin_rotation first",
        "rotating": "next step is switch_signing",
        "switched": "next step is finish_rotation",
    }[state.phase]
