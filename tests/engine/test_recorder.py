"""The recorder hands back each member's rows in recording order, however they were chunked."""

from __future__ import annotations

import torch

from fiberscope.engine.recorder import Recorder


def _brute(chunks: list[dict[str, torch.Tensor]], i: int, key: str) -> torch.Tensor | None:
    rows = [c[key][c["member"] == i] for c in chunks]
    out = torch.cat(rows)
    return out if out.shape[0] else None


def test_rows_match_a_mask_over_every_chunk_and_follow_new_chunks() -> None:
    g = torch.Generator().manual_seed(0)
    rec = Recorder(members=7)
    chunks = []
    for _ in range(5):
        c = int(torch.randint(1, 9, (1,), generator=g))
        member = torch.randint(0, 6, (c,), generator=g)  # member 6 never records a row
        x, y = torch.randn(c, 3, generator=g), torch.randn(c, 2, generator=g)
        cond = torch.randn(c, generator=g)
        rec.append(member, x, y, cond=cond)
        chunks.append({"member": member, "x": x, "y": y, "cond": cond})
        for i in range(7):
            for key in ("x", "y", "cond"):
                want, got = _brute(chunks, i, key), rec.rows(i, key)
                if want is None:
                    assert got is None
                else:
                    assert torch.equal(got, want), (i, key)
    assert rec.rows(6) is None and rec.rows(0, "nothing") is None and rec.rows(-1) is None
    # a caller that edits the rows it got does not change what the recorder holds
    first = rec.rows(0, "x")
    first.zero_()
    assert torch.equal(rec.rows(0, "x"), _brute(chunks, 0, "x"))


def test_rows_after_the_chunks_are_cut_back_and_regrown() -> None:
    # the engine cuts chunks back to a checkpoint and records new ones (same count)
    rec = Recorder(members=2)
    rec.append(torch.tensor([0, 1]), torch.zeros(2, 1), torch.zeros(2, 1))
    rec.append(torch.tensor([0]), torch.ones(1, 1), torch.ones(1, 1))
    assert rec.rows(0).flatten().tolist() == [0.0, 1.0]
    del rec.chunks[1:]
    rec.append(torch.tensor([1]), torch.full((1, 1), 5.0), torch.zeros(1, 1))
    assert rec.rows(0).flatten().tolist() == [0.0]
    assert rec.rows(1).flatten().tolist() == [0.0, 5.0]
