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
        """All rows of ``key`` recorded for member ``i``, in order (None when empty)."""
        cache = getattr(self, "_gathered", None)
        if cache is None or cache[0] != len(self.chunks):
            cache = (len(self.chunks), self.gather())
            self._gathered = cache
        merged = cache[1]
        if key not in merged:
            return None
        member = merged["member"]
        sel = merged[key][(member == i).to(merged[key].device)]
        return sel if sel.shape[0] else None

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
