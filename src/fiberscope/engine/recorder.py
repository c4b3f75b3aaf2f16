"""The recorder: accepted points of every member, appended in chunks, rebuilt per member."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor


@dataclass
class Recorder:
    """Points recorded by a run, one chunk per iteration (members interleaved).

    Attributes
    ----------
    members : int
        Number of members ``B``.
    chunks : list of dict
        Each chunk: ``"member"`` ``(c,)`` int64 and ``"x"``, ``"y"`` and extra per-row tensors.
    """

    members: int
    chunks: list[dict[str, Tensor]] = field(default_factory=list)

    def append(self, member: Tensor, x: Tensor, y: Tensor, **extra: Tensor) -> None:
        """Record rows ``x``/``y`` (and extras) for the members ``member``.

        Parameters
        ----------
        member : torch.Tensor
            ``(c,)`` member indices.
        x, y : torch.Tensor
            ``(c, n)``, ``(c, m)``.
        **extra : torch.Tensor
            ``(c, ...)`` per-row values (e.g. conditioning, energy).
        """
        if member.numel() == 0:
            return
        chunk = {"member": member, "x": x, "y": y, **extra}
        self.chunks.append(chunk)

    def __len__(self) -> int:
        return sum(int(c["member"].numel()) for c in self.chunks)

    def rows(self, i: int, key: str = "x") -> Tensor | None:
        """All rows of ``key`` recorded for member ``i``, in order (None when empty).

        The chunks are gathered once and their rows grouped by member (a stable sort), so
        reading every member's rows costs one pass over the rows, not one per member.
        """
        state = (len(self.chunks), id(self.chunks[-1]) if self.chunks else None)
        cache = getattr(self, "_grouped", None)
        if cache is None or cache[0] != state:
            merged = self.gather()
            if not merged:
                cache = (state, {}, None, None)
            else:
                member = merged["member"]
                order = torch.argsort(member, stable=True)
                size = max(self.members, int(member.max()) + 1 if member.numel() else 0)
                counts = torch.bincount(member, minlength=size).tolist()
                starts = [0]
                for c in counts:
                    starts.append(starts[-1] + c)
                cache = (state, merged, order, starts)
            self._grouped = cache
            self._sorted: dict[str, Tensor] = {}
        _, merged, order, starts = cache
        if key not in merged or not 0 <= i < len(starts) - 1:
            return None
        lo, hi = starts[i], starts[i + 1]
        if hi == lo:
            return None
        if key not in self._sorted:
            self._sorted[key] = merged[key][order.to(merged[key].device)]
        return self._sorted[key][lo:hi].clone()

    def count(self, i: int) -> int:
        """Rows recorded for member ``i``."""
        return sum(int((c["member"] == i).sum()) for c in self.chunks)

    def gather(self) -> dict[str, Tensor]:
        """Every chunk concatenated (one tensor per key, rows in recording order)."""
        if not self.chunks:
            return {}
        keys = set(self.chunks[0])
        for c in self.chunks[1:]:
            keys &= set(c)
        return {
            k: torch.cat([c[k].to(self.chunks[0][k].device) for c in self.chunks]) for k in keys
        }

    def export(self) -> tuple[dict[str, Tensor], dict[str, Any]]:
        """Tensors and facts that rebuild the recorder (one merged chunk).

        Returns
        -------
        tensors : dict of torch.Tensor
            CPU tensors by name.
        meta : dict
            The member count and keys.
        """
        merged = self.gather()
        return (
            {k: v.detach().cpu().contiguous() for k, v in merged.items()},
            {"members": self.members, "keys": sorted(merged)},
        )

    @classmethod
    def restore(
        cls, tensors: dict[str, Tensor], meta: dict[str, Any], device: torch.device
    ) -> Recorder:
        """Rebuild a recorder written by :meth:`export`.

        Parameters
        ----------
        tensors : dict of torch.Tensor
            As exported.
        meta : dict
            As exported.
        device : torch.device
            Where the rows go.

        Returns
        -------
        Recorder
            The recorder (one chunk).
        """
        rec = cls(members=int(meta["members"]))
        if tensors:
            chunk = {k: (v if k == "member" else v.to(device)) for k, v in tensors.items()}
            rec.chunks.append(chunk)
        return rec
