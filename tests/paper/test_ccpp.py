"""The paper III CCPP network: the authors' data loading (with their bugs) and training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import fiberscope as fs
from paper import ccpp


def test_loader_skips_row_0_normalises_and_splits_in_file_order() -> None:
    raw = np.loadtxt(ccpp.DATA_FILE, delimiter=";", dtype=np.float32)
    assert raw.shape == (9568, 5)
    d = ccpp.load_ccpp("rh")
    assert d.rows == 9567  # the first data row is dropped as if it were a header
    assert d.X_train.shape == (6696, 4) and d.X_val.shape == (2871, 4)
    assert d.X_train.dtype == torch.float32
    lo, hi = raw[1:].min(0), raw[1:].max(0)
    np.testing.assert_array_equal(d.minimum, lo.astype(np.float64))
    first = (raw[1] - lo) / (hi - lo)
    np.testing.assert_array_equal(d.X_train[0].numpy(), first[:4])
    both = torch.cat([d.X_train, d.X_val])
    assert float(both.min()) == 0.0 and float(both.max()) == 1.0
    np.testing.assert_allclose(d.denormalise(d.X_train[0].numpy()), raw[1, :4], rtol=1e-5)


def test_the_authors_target_is_an_input_and_pe_is_not() -> None:
    rh, pe = ccpp.load_ccpp("rh"), ccpp.load_ccpp("pe")
    assert torch.equal(rh.y_train[:, 0], rh.X_train[:, 3])  # their bug: RH predicts RH
    assert torch.equal(pe.X_train, rh.X_train)
    assert not torch.equal(pe.y_train[:, 0], pe.X_train[:, 3])
    with pytest.raises(fs.InputError, match="unknown CCPP target 'at'"):
        ccpp.load_ccpp("at")  # type: ignore[arg-type]


def test_network_shapes_and_architecture() -> None:
    net = ccpp.CCPPNet()
    assert net(torch.zeros(4)).shape == (1,) and net(torch.zeros(5, 4)).shape == (5, 1)
    sizes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert sizes["linear1.weight"] == (32, 4) and sizes["linear2A.weight"] == (32, 32)
    assert sizes["linear2B.weight"] == (1, 32) and sizes["lstm.weight_ih"] == (4, 1)
    assert sizes["linear_lstm.weight"] == (32, 1) and sizes["linear3.weight"] == (1, 32)
    out = net(torch.randn(50, 4))
    assert bool(((out > 0) & (out < 1)).all())


def test_training_learns_and_is_bit_reproducible() -> None:
    data = ccpp.load_ccpp("pe")
    a = ccpp.train_ccpp("pe", epochs=3, data=data)
    b = ccpp.train_ccpp("pe", epochs=3, data=data)
    for (ka, va), (kb, vb) in zip(
        a.model.state_dict().items(), b.model.state_dict().items(), strict=True
    ):
        assert ka == kb and torch.equal(va, vb)
    assert a.history == b.history and len(a.history) == 3
    assert a.history[-1] < a.history[0]
    assert a.val_mae_units > 0 and not a.model.training
    with pytest.raises(fs.InputError, match="must be positive"):
        ccpp.train_ccpp("pe", epochs=0, data=data)
