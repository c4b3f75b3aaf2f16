"""Seeded mutations of model files for the loader fuzz tests (deterministic, no hypothesis).

Each generator yields ``(case_id, bytes)``; the same seed always gives the same files, so a
failure names a case that can be rebuilt with :func:`case`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator

BAD_NUMBERS = [
    "nan",
    "inf",
    "-inf",
    "1e309",
    "1e-320",
    "0x10",
    "",
    "abc",
    "1,5",
    "--1",
    "9" * 400,
    "1e999999",
    "٣",
    "\x00",
]


def mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    """One random byte-level mutation: flip, delete, insert, truncate, duplicate, zero, swap."""
    b = bytearray(data)
    n = len(b)
    op = rng.randrange(7)
    if op == 0 and n:  # flip 1-8 bytes
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(n)] ^= 1 << rng.randrange(8)
    elif op == 1 and n:  # delete a slice
        i = rng.randrange(n)
        del b[i : i + rng.randint(1, 64)]
    elif op == 2:  # insert random bytes
        i = rng.randrange(n + 1)
        b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 32)))
    elif op == 3:  # truncate
        del b[rng.randrange(n + 1) :]
    elif op == 4 and n:  # duplicate a slice
        i = rng.randrange(n)
        piece = b[i : i + rng.randint(1, 256)]
        j = rng.randrange(n + 1)
        b[j:j] = piece
    elif op == 5 and n:  # overwrite a run with 0x00 / 0xFF
        i = rng.randrange(n)
        k = rng.randint(1, 16)
        b[i : i + k] = bytes([rng.choice([0, 255])]) * len(b[i : i + k])
    elif n > 2:  # swap two slices
        i, j = sorted(rng.sample(range(n), 2))
        k = rng.randint(1, min(32, j - i))
        b[i : i + k], b[j : j + k] = b[j : j + k], b[i : i + k]
    return bytes(b)


def mutate_csv_text(text: str, rng: random.Random) -> str:
    """One token/line-level mutation of a paper weights-CSV text."""
    lines = text.splitlines()
    op = rng.randrange(9)
    if op == 0:  # a number becomes something bad
        i = rng.randrange(len(lines))
        toks = lines[i].split("\t")
        toks[rng.randrange(len(toks))] = rng.choice(BAD_NUMBERS)
        lines[i] = "\t".join(toks)
    elif op == 1:  # header sizes change
        heads = [i for i, line in enumerate(lines) if "FC_LAYER" in line] or [0]
        i = rng.choice(heads)
        toks = lines[i].split("\t")
        k = rng.randrange(max(1, len(toks) - 1))
        toks[k] = str(
            rng.choice([0, -1, 1, 2, 7, 10**9, int(toks[k]) + 1 if toks[k].isdigit() else 3])
        )
        lines[i] = "\t".join(toks)
    elif op == 2 and len(lines) > 1:  # drop a line
        del lines[rng.randrange(len(lines))]
    elif op == 3:  # duplicate a line
        i = rng.randrange(len(lines))
        lines.insert(i, lines[i])
    elif op == 4 and len(lines) > 2:  # swap two lines
        i, j = rng.sample(range(len(lines)), 2)
        lines[i], lines[j] = lines[j], lines[i]
    elif op == 5:  # layer type
        heads = [i for i, line in enumerate(lines) if "FC_LAYER" in line] or [0]
        i = rng.choice(heads)
        toks = lines[i].split("\t")
        toks[-1] = rng.choice(["FC_LAYER_XX", "fc_layer_sg", "", "FC_LAYER_SM", "FC_LAYER_SP"])
        lines[i] = "\t".join(toks)
    elif op == 6:  # layer count
        lines[0] = rng.choice(["0", "-1", "2", "5", "999999999", "x", "1 1", ""])
    elif op == 7:  # trailing junk
        lines.append(rng.choice(["junk", "1\t2", "\x00\x01", "   ", "1e400"]))
    else:  # separators and line endings
        sep = rng.choice([" ", ",", ";", "  "])
        i = rng.randrange(len(lines))
        lines[i] = lines[i].replace("\t", sep)
    return rng.choice(["\n", "\r\n"]).join(lines) + rng.choice(["\n", "", "\n\n"])


def mutate_onnx_graph(data: bytes, rng: random.Random) -> bytes:
    """One structure-aware mutation of an ONNX model (through the onnx API)."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load_model_from_string(data)
    g = model.graph
    op = rng.randrange(12)
    if op == 0 and len(g.node):  # another operator
        node = g.node[rng.randrange(len(g.node))]
        node.op_type = rng.choice(
            ["Relu", "Sigmoid", "Tanh", "Abs", "Neg", "Exp", "Log", "Sqrt", "Softmax",
             "Identity", "Foo", "Gemm", "MatMul", "Add", "Mul", "Div", "Flatten", "Erf"]
        )  # fmt: skip
    elif op == 1 and len(g.node):  # remove a node
        del g.node[rng.randrange(len(g.node))]
    elif op == 2 and len(g.initializer):  # remove a weight
        del g.initializer[rng.randrange(len(g.initializer))]
    elif op == 3 and len(g.initializer):  # change a weight's shape
        t = g.initializer[rng.randrange(len(g.initializer))]
        if len(t.dims):
            t.dims[rng.randrange(len(t.dims))] = rng.choice([0, 1, 3, 7, 2**31])
    elif op == 4 and len(g.initializer):  # change a weight's dtype
        t = g.initializer[rng.randrange(len(g.initializer))]
        t.data_type = rng.choice([TensorProto.FLOAT, TensorProto.INT64, TensorProto.STRING, 0, 99])
    elif op == 5 and len(g.initializer):  # garbage weight bytes
        t = g.initializer[rng.randrange(len(g.initializer))]
        values = list(t.double_data) or [0.0]
        t.ClearField("double_data")
        t.raw_data = bytes(rng.randrange(256) for _ in range(8 * len(values) + rng.choice([0, 3])))
    elif op == 6:  # input shape
        dims = g.input[0].type.tensor_type.shape.dim
        if len(dims):
            dims[rng.randrange(len(dims))].dim_value = rng.choice([0, 1, 3, 10**6])
    elif op == 7 and len(g.output):  # drop or rename an output
        if rng.random() < 0.5:
            del g.output[0]
        else:
            g.output[0].name = "nowhere"
    elif op == 8 and len(g.node):  # an attribute
        node = g.node[rng.randrange(len(g.node))]
        node.attribute.append(
            helper.make_attribute(
                rng.choice(["transB", "transA", "alpha", "axis"]), rng.choice([5, -3, 0.0])
            )
        )
    elif op == 9:  # opset / IR versions
        if rng.random() < 0.5:
            model.opset_import[0].version = rng.choice([1, 6, 999])
        else:
            model.ir_version = rng.choice([0, 1, 999])
    elif op == 10 and len(g.node) > 1:  # a cycle / dangling edge
        g.node[0].input[0] = g.node[-1].output[0]
    else:  # an extra node using an unknown domain
        g.node.append(helper.make_node("Frob", ["y"], ["z"], domain=rng.choice(["", "x.y"])))
    return model.SerializeToString()


Generator = Callable[[random.Random], bytes]


def cases(
    base: bytes | str, mutate: Callable, count: int, seed: int
) -> Iterator[tuple[int, bytes]]:
    """``count`` mutated files of ``base``, case ``i`` from ``Random(seed * 100003 + i)``."""
    for i in range(count):
        yield i, case(base, mutate, seed, i)


def case(base: bytes | str, mutate: Callable, seed: int, i: int) -> bytes:
    """Rebuild mutated case ``i`` (see :func:`cases`)."""
    rng = random.Random(seed * 100003 + i)
    out = mutate(base, rng)
    return out.encode("utf-8", "surrogatepass") if isinstance(out, str) else out
