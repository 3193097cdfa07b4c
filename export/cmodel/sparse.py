"""Sparse storage formats of int8 matrices, their exact byte counts, and the picker.

A matrix ``M`` here is stored with rows = outputs and cols = inputs, so that the C kernel
computes ``y[r] = sum_c M[r, c] * x[c]`` as a tight dot product over each row's nonzeros.
The formats (tags as in ``export/c/ep_kernels.h``):

``dense``   values ``rows*cols`` int8, no index; in each row, every full group of 4 columns
            is stored in the order (0, 2, 1, 3) (the SMLAD pairs of the C kernel), the
            last ``cols % 4`` in order (``dense_order``).
``csr8``    uint8 index ``count[rows]`` then ``col[nnz]``; needs ``cols <= 256`` and every
            row count ``<= 255``.
``csr16``   uint16 index ``count[rows]`` then ``col[nnz]``.
``rowmask`` one mask byte per row (bit ``c`` = column ``c`` is nonzero; ``cols <= 8``) +
            the nonzero values: ``uint8 mask[rows]``.
``csr8n``   csr8 with 4-bit row counts: uint8 index ``count`` nibbles (``ceil(rows/2)``
            bytes, low nibble first) then ``col[nnz]``; needs ``cols <= 256`` and every row
            count ``<= 15``.
``bitmask`` one bit per element of the row-major matrix (LSB first) + the nonzero values.
``rle4``    4-bit run-length codes over the row-major matrix, two per byte, low nibble
            first: code ``n < 15`` skips ``n`` zeros then takes a value, ``15`` skips 15
            zeros and takes none.

Byte counts are exact: the bytes of the values array plus the index array (what the
generator emits). The picker takes the smallest; ties go to the earlier format in
``FORMATS`` (the faster kernel). With ``speed_slack > 0`` it takes the fastest format
(by ``estimate_instructions``) among those costing at most ``(1 + speed_slack)`` times the
smallest. ``COST_MODEL`` / ``estimate_instructions`` give the per-format instruction
estimates (fitted to Cortex-M4 counts) that ``pick_formats_within`` also trades against a
byte budget (the fastest combination that fits).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

FORMATS: tuple[str, ...] = ("dense", "csr8", "csr16", "bitmask", "rle4", "csr8n", "rowmask")
FORMAT_TAGS: dict[str, str] = {
    "dense": "EP_FMT_DENSE",
    "csr8": "EP_FMT_CSR8",
    "csr16": "EP_FMT_CSR16",
    "bitmask": "EP_FMT_BITMASK",
    "rle4": "EP_FMT_RLE4",
    "csr8n": "EP_FMT_CSR8N",
    "rowmask": "EP_FMT_ROWMASK",
}
_MAX_DIM = 65535


@dataclass(frozen=True)
class SparseMatrix:
    """An int8 matrix (rows = outputs, cols = inputs) encoded in one storage format.

    ``values`` holds the nonzeros in row-major order (all elements for ``dense``);
    ``index`` is the format's index array (uint8 or uint16; empty for ``dense``).
    """

    format: str
    rows: int
    cols: int
    nnz: int
    values: np.ndarray
    index: np.ndarray

    @property
    def nbytes(self) -> int:
        """Exact bytes of the emitted values and index arrays."""
        return int(self.values.nbytes + self.index.nbytes)

    def to_dense(self) -> np.ndarray:
        """Decode back to the dense int8 ``(rows, cols)`` matrix (what the C kernel sees)."""
        return decode(self)


def _check(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m)
    if m.ndim != 2:
        raise ValueError(f"sparse matrix must be 2-D, got shape {m.shape}")
    if m.dtype != np.int8:
        if not np.issubdtype(m.dtype, np.integer) or m.size and (m.min() < -128 or m.max() > 127):
            raise ValueError(f"sparse matrix must hold int8 values, got dtype {m.dtype}")
        m = m.astype(np.int8)
    if m.shape[0] > _MAX_DIM or m.shape[1] > _MAX_DIM:
        raise ValueError(f"matrix shape {m.shape} exceeds {_MAX_DIM} rows or cols")
    if np.count_nonzero(m) > _MAX_DIM:
        raise ValueError(f"matrix has {np.count_nonzero(m)} nonzeros, more than {_MAX_DIM}")
    return m


def dense_order(rows: int, cols: int) -> np.ndarray:
    """Flat row-major positions of the stored ``dense`` values, in storage order."""
    g = cols // 4 * 4
    per_row = np.concatenate([(np.arange(0, g, 4)[:, None] + np.array([0, 2, 1, 3])).ravel(),
                              np.arange(g, cols)]).astype(np.int64)
    return (np.arange(rows, dtype=np.int64)[:, None] * cols + per_row).ravel()


def _rle4_codes(m: np.ndarray) -> np.ndarray:
    codes: list[int] = []
    nxt = 0
    for pos in np.flatnonzero(m.reshape(-1)):
        gap = int(pos) - nxt
        while gap >= 15:
            codes.append(15)
            gap -= 15
        codes.append(gap)
        nxt = int(pos) + 1
    return np.asarray(codes, dtype=np.uint8)


def _pack_nibbles(values: np.ndarray) -> np.ndarray:
    """4-bit ``values`` two per byte, low nibble first (a last odd one padded with 0)."""
    if values.size % 2:
        values = np.append(values, np.uint8(0))
    return (values[0::2] | (values[1::2] << 4)).astype(np.uint8)


def format_sizes(m: np.ndarray) -> dict[str, int | None]:
    """Exact bytes (values + index) of ``m`` in every format; ``None`` where not applicable."""
    m = _check(m)
    rows, cols = m.shape
    nnz = int(np.count_nonzero(m))
    counts = np.count_nonzero(m, axis=1)
    csr8_ok = cols <= 256 and (rows == 0 or int(counts.max(initial=0)) <= 255)
    csr8n_ok = cols <= 256 and (rows == 0 or int(counts.max(initial=0)) <= 15)
    return {
        "dense": rows * cols,
        "csr8": nnz + rows + nnz if csr8_ok else None,
        "csr16": nnz + 2 * rows + 2 * nnz,
        "bitmask": nnz + (rows * cols + 7) // 8,
        "rle4": nnz + (len(_rle4_codes(m)) + 1) // 2,
        "csr8n": nnz + (rows + 1) // 2 + nnz if csr8n_ok else None,
        "rowmask": nnz + rows if cols <= 8 else None,
    }


def pick_format(m: np.ndarray, speed_slack: float = 0.0) -> str:
    """The format with the fewest bytes for ``m`` (ties: earliest in ``FORMATS``); with
    ``speed_slack > 0``, the fastest (``estimate_instructions``; ties: fewer bytes) of
    the formats costing at most ``(1 + speed_slack)`` times those bytes."""
    sizes = format_sizes(m)
    best = min((s, i, f) for i, (f, s) in enumerate(sizes.items()) if s is not None)
    if speed_slack <= 0:
        return best[2]
    near = [(estimate_instructions(m, f), s, i, f) for i, (f, s) in enumerate(sizes.items())
            if s is not None and s <= (1.0 + speed_slack) * best[0]]
    return min(near)[3]


#: Instructions per ``y = M x`` on a Cortex-M4 (arm-none-eabi-gcc -Os), as
#: (per nonzero, per row, per element) for each format, fitted to exact QEMU counts of
#: the HAR-2 FastGRNN kernels. ``bitmask`` depends on the row length (kernels for
#: rows of <= 5 and <= 24 columns, and for rows of a multiple of 8 columns: by mask bit,
#: or by nibble from 35% nonzeros on); ``rle4`` is costed per 4-bit code instead.
#: ``csr8`` rows of more than 15 nonzeros take those beyond 15 one at a time
#: (``_CSR8_PER_EXTRA`` more per nonzero, ``_CSR8_PER_LONG_ROW`` more per such row).
COST_MODEL: dict[str, tuple[float, float, float]] = {
    "dense": (0.0, 12.0, 2.0),
    "csr8": (4.0, 8.5, 0.0),
    "csr8n": (4.0, 7.0, 0.0),
    "csr16": (7.0, 11.0, 0.0),
    "bitmask": (13.0, 10.0, 0.5),
    "bitmask/8": (8.0, 8.0, 0.625),
    "bitmask/8n": (3.0, 6.0, 2.4),
    "bitmask<=24": (8.0, 13.0, 0.0),
    "bitmask<=5": (2.0, 25.0, 0.0),
    "rowmask": (8.0, 10.0, 0.0),
    "rowmask<=5": (2.0, 7.5, 0.0),
    "rle4": (0.0, 2.0, 0.0),
}
_RLE4_PER_CODE = 13.0
_CSR8_PER_EXTRA = 2.0
_CSR8_PER_LONG_ROW = 3.0


def estimate_instructions(m: np.ndarray, fmt: str) -> float | None:
    """Estimated Cortex-M4 instructions of one ``M x`` with ``m`` in ``fmt`` (COST_MODEL);
    ``None`` where the format cannot store ``m``."""
    m = _check(m)
    if format_sizes(m)[fmt] is None:
        return None
    rows, cols = m.shape
    nnz = int(np.count_nonzero(m))
    key = fmt
    if fmt == "bitmask" and cols <= 24:
        key = "bitmask<=5" if cols <= 5 else "bitmask<=24"
    elif fmt == "bitmask" and cols % 8 == 0:  # nibble kernel from 35% nonzero
        key = "bitmask/8n" if nnz * 20 >= rows * cols * 7 else "bitmask/8"
    elif fmt == "rowmask" and cols <= 5:
        key = "rowmask<=5"
    per_nnz, per_row, per_elem = COST_MODEL[key]
    cost = per_nnz * nnz + per_row * rows + per_elem * rows * cols
    if fmt == "rle4":
        cost += _RLE4_PER_CODE * len(_rle4_codes(m))
    elif fmt == "csr8":
        extra = np.count_nonzero(m, axis=1) - 15
        cost += _CSR8_PER_EXTRA * float(extra[extra > 0].sum())
        cost += _CSR8_PER_LONG_ROW * int((extra > 0).sum())
    return cost


def pick_formats_within(mats: dict[str, np.ndarray], budget: int,
                        weights: dict[str, float] | None = None,
                        fixed: dict[str, str] | None = None) -> dict[str, str]:
    """Formats for several matrices together: the combination with the fewest estimated
    instructions (``sum weights[k] * estimate_instructions``, weight 1 by default) whose
    total bytes are at most ``budget``; ties go to fewer bytes. ``fixed`` pins formats.
    If even the smallest formats exceed ``budget``, each matrix gets its smallest
    (``pick_format``). Exhaustive (at most 6 formats per matrix; meant for a handful)."""
    fixed = dict(fixed or {})
    weights = dict(weights or {})
    names = list(mats)
    options: list[list[tuple[str, int, float]]] = []
    for k in names:
        sizes = format_sizes(mats[k])
        fmts = [fixed[k]] if k in fixed else [f for f in FORMATS if sizes[f] is not None]
        options.append([(f, int(sizes[f] or 0),
                         weights.get(k, 1.0) * (estimate_instructions(mats[k], f) or 0.0))
                        for f in fmts])
    best: tuple[float, int, tuple[str, ...]] | None = None
    for combo in itertools.product(*options):
        nbytes = sum(c[1] for c in combo)
        if nbytes > budget:
            continue
        key = (sum(c[2] for c in combo), nbytes, tuple(c[0] for c in combo))
        if best is None or key[:2] < best[:2]:
            best = key
    if best is None:
        return {k: fixed.get(k) or pick_format(mats[k]) for k in names}
    return dict(zip(names, best[2], strict=True))


def encode(m: np.ndarray, fmt: str | None = None, speed_slack: float = 0.0) -> SparseMatrix:
    """Encode int8 ``m`` in ``fmt`` (default: the picker's choice with ``speed_slack``)."""
    m = _check(m)
    if fmt is None:
        fmt = pick_format(m, speed_slack)
    if fmt not in FORMATS:
        raise ValueError(f"unknown sparse format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if format_sizes(m)[fmt] is None:
        raise ValueError(f"format {fmt!r} cannot store a {m.shape} matrix with these row counts")
    rows, cols = m.shape
    flat = m.reshape(-1)
    nz = flat[flat != 0].astype(np.int8)
    nnz = int(nz.size)
    if fmt == "dense":
        return SparseMatrix(fmt, rows, cols, nnz, flat[dense_order(rows, cols)],
                            np.zeros(0, np.uint8))
    if fmt in ("csr8", "csr16"):
        dt = np.uint8 if fmt == "csr8" else np.uint16
        counts = np.count_nonzero(m, axis=1)
        col = np.nonzero(m)[1]
        index = np.concatenate([counts.astype(dt), col.astype(dt)])
        return SparseMatrix(fmt, rows, cols, nnz, nz, index)
    if fmt == "rowmask":
        bits = (m != 0).astype(np.uint32) << np.arange(cols, dtype=np.uint32)
        return SparseMatrix(fmt, rows, cols, nnz, nz, bits.sum(axis=1).astype(np.uint8))
    if fmt == "csr8n":
        counts = _pack_nibbles(np.count_nonzero(m, axis=1).astype(np.uint8))
        index = np.concatenate([counts, np.nonzero(m)[1].astype(np.uint8)])
        return SparseMatrix(fmt, rows, cols, nnz, nz, index)
    if fmt == "bitmask":
        mask = np.packbits((flat != 0).astype(np.uint8), bitorder="little")
        return SparseMatrix(fmt, rows, cols, nnz, nz, mask.astype(np.uint8))
    return SparseMatrix(fmt, rows, cols, nnz, nz, _pack_nibbles(_rle4_codes(m)))


def decode(s: SparseMatrix) -> np.ndarray:
    """The dense int8 ``(rows, cols)`` matrix an encoding stands for (mirrors the C kernel)."""
    out = np.zeros(s.rows * s.cols, dtype=np.int8)
    if s.format == "dense":
        out[dense_order(s.rows, s.cols)] = s.values
        return out.reshape(s.rows, s.cols)
    if s.format in ("csr8", "csr16", "csr8n"):
        if s.format == "csr8n":
            nib = np.stack([s.index & 15, s.index >> 4], axis=1).reshape(-1)
            counts = nib[: s.rows].astype(np.int64)
            cols = s.index[(s.rows + 1) // 2 :].astype(np.int64)
        else:
            counts = s.index[: s.rows].astype(np.int64)
            cols = s.index[s.rows :].astype(np.int64)
        row_of = np.repeat(np.arange(s.rows), counts)
        out[row_of * s.cols + cols] = s.values
    elif s.format == "rowmask":
        bits = (s.index[:, None].astype(np.int64) >> np.arange(s.cols)) & 1
        out[np.flatnonzero(bits.reshape(-1))] = s.values
    elif s.format == "bitmask":
        bits = np.unpackbits(s.index, bitorder="little")[: s.rows * s.cols]
        out[np.flatnonzero(bits)] = s.values
    elif s.format == "rle4":
        codes = np.stack([s.index & 15, s.index >> 4], axis=1).reshape(-1)
        pos, taken = 0, 0
        for n in codes:
            if taken == s.nnz:
                break
            pos += int(n)
            if n != 15:
                out[pos] = s.values[taken]
                taken += 1
                pos += 1
    else:
        raise ValueError(f"unknown sparse format {s.format!r}")
    return out.reshape(s.rows, s.cols)
