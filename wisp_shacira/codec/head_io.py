"""The CONFIG and WEIGHTS sections of a ``.shac`` file, in every format version.

- CONFIG: zlib-compressed JSON; from version 5 compressed against a preset dictionary
  (:data:`CONFIG_DICTIONARY_V5`, frozen: the keys and the packaged configs' values of
  every task's CONFIG, no benchmark's names or sizes), which takes a Kodak file's CONFIG
  from 251 to 45 bytes.
- WEIGHTS: named tensors. Versions 1-4 store every tensor raw; version 5 stores a
  zlib-compressed list of the tensors (names, types, shapes, the raw values of float
  and int8 tensors) followed by the integers of every int32 tensor, entropy-coded
  against a two-sided geometric law fitted to that tensor (the law of
  :mod:`wisp_shacira.codec.context` with one context, its integer parameters in the
  list). Field-format details: ``docs/bitstream.md``.
"""
from __future__ import annotations

import json
import zlib

import numpy as np

from wisp_shacira.codec import limits
from wisp_shacira.codec.coder import BlockDecoder, encode_blocks
from wisp_shacira.codec.container import CODER_EXACT, WEIGHTS_VERSION, Reader, encode_varint
from wisp_shacira.codec.context import DimModel, context_table
from wisp_shacira.codec.context_io import fit_dim, pack_dim, read_dim

DTYPES = {0: np.dtype("<f2"), 1: np.dtype("<f4"), 2: np.dtype("<i4"), 3: np.dtype("i1")}
_CODED = np.dtype("<i4")
WEIGHT_PRECISION = 16
"""Bits of the frequency tables that code int32 weights (version 5)."""

CONFIG_DICTIONARY_V5 = "".join((
    '{"task":"wisp_nerf","grid":{"num_levels":16,"min_res":16,"max_res":2048,',
    '"log2_table_size":19,"feature_dim":2,"latent_dim":1,"latent_init":0.1,"compressed":true,',
    '"prior_init_scale":10.0,"decoder_init":null,"latent_step":null,',
    '"entropy_model":"factorized","latent_coder":"auto","weight_precision":4},',
    '"nef":{"pos_embedder":"none","view_embedder":"positional","pos_multires":10,',
    '"view_multires":4,"position_input":false,"activation_type":"relu","layer_type":"linear",',
    '"hidden_dim":128,"num_layers":1,"bias":true},"wisp":{"format":2,"multiscale_type":"cat",',
    '"app":{"nef":{"hidden_dim":64}}},',
    '{"task":"nerf","grid":{"num_levels":16,"min_res":16,"max_res":512,"log2_table_size":15,',
    '"feature_dim":2,"latent_dim":1,"latent_init":0.1,"compressed":true,',
    '"prior_init_scale":10.0,"decoder_init":null,"latent_step":null,',
    '"entropy_model":"factorized","latent_coder":"auto","weight_precision":4},',
    '"nef":{"hidden_dim":64,"num_layers":1,"geo_feat_dim":15,"color_hidden_dim":64,',
    '"color_num_layers":2,"view_encoding":"sh","view_degree":4,',
    '"density_activation":"trunc_exp"},"tracer":{"num_samples":64,"bg_color":[1.0,1.0,1.0],',
    '"use_occupancy":true,"chunk_size":8192,"jitter":true,"segments":4,',
    '"early_stop_eps":0.0001},"occupancy":{"resolution":64,"subsamples":2,',
    '"threshold":2.956033378250884},"scene":{"name":"scene","format":"blender","mip":0,',
    '"height":800,"width":800,"scale":0.8,"offset":[0.0,0.0,0.0]},"camera":{"fx":',
    '"fy":,"cx":400.0,"cy":400.0,"orbit_radius":4.0,"orbit_height":',
    '{"task":"video","grid":{"num_levels":16,"min_res":16,"max_res":256,"log2_table_size":14,',
    '"feature_dim":2,"latent_dim":2,"latent_init":0.1,"compressed":true,',
    '"prior_init_scale":10.0,"decoder_init":null,"latent_step":null,',
    '"entropy_model":"factorized","latent_coder":"auto","weight_precision":4},',
    '"nef":{"hidden_dim":32,"num_layers":1},"video":{"name":"video","num_frames":32,',
    '"height":256,"width":256,"fps":25.0}}',
    '{"task":"image","grid":{"num_levels":24,"min_res":16,"max_res":512,"log2_table_size":12,',
    '"feature_dim":1,"latent_dim":1,"latent_init":0.1,"compressed":true,',
    '"prior_init_scale":10.0,"decoder_init":null,"latent_step":null,',
    '"entropy_model":"factorized","latent_coder":"auto","weight_precision":4},',
    '"nef":{"hidden_dim":32,"num_layers":2},"image":{"name":"image","height":1024,',
    '"width":1024,"channels":3,"bit_depth":8}}',
)).encode()
"""zlib preset dictionary of version-5 CONFIG sections (keys and default values of the
packaged configs; names and sizes neutral). Never change it: every
version-5 file was compressed against these exact bytes (a new dictionary needs a new
format version)."""


def _dictionary(version: int) -> bytes | None:
    return CONFIG_DICTIONARY_V5 if version >= WEIGHTS_VERSION else None


def pack_config(config: dict, version: int) -> bytes:
    """The CONFIG payload of a file of ``version``."""
    raw = json.dumps(config, separators=(",", ":")).encode()
    zdict = _dictionary(version)
    deflater = (zlib.compressobj(9) if zdict is None
                else zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS, 9, zlib.Z_DEFAULT_STRATEGY,
                                      zdict))
    return deflater.compress(raw) + deflater.flush()


def _inflate(payload: bytes, bound: int, what: str, zdict: bytes | None = None) -> bytes:
    """One zlib stream of at most ``bound`` bytes decompressed (no zlib bombs)."""
    inflater = zlib.decompressobj() if zdict is None else zlib.decompressobj(zdict=zdict)
    raw = inflater.decompress(payload, bound + 1)
    if len(raw) > bound or not inflater.eof or inflater.unused_data:
        raise ValueError(f"{what} is not one zlib stream of at most {bound} bytes")
    return raw


def read_config(payload: bytes, version: int) -> dict:
    """The CONFIG JSON object of a file of ``version``."""
    raw = _inflate(payload, limits.MAX_CONFIG_BYTES, "config section", _dictionary(version))
    config = json.loads(raw.decode("utf-8"))
    if not isinstance(config, dict) or not isinstance(config.get("task"), str):
        raise ValueError("config is not a JSON object with a task name")
    return config


_CODES = {dtype: code for code, dtype in DTYPES.items()}


def _describe(name: str, array: np.ndarray) -> bytes:
    dtype = array.dtype.newbyteorder("<")
    if dtype not in _CODES:
        raise ValueError(f"weight {name!r}: unsupported dtype {array.dtype}")
    raw_name = name.encode()
    out = encode_varint(len(raw_name)) + raw_name + bytes([_CODES[dtype], array.ndim])
    return out + b"".join(encode_varint(size) for size in array.shape)


def _pack_raw(weights: dict[str, np.ndarray]) -> bytes:
    """Versions 1-4: every tensor's description and raw little-endian values."""
    out = bytearray(encode_varint(len(weights)))
    for name, array in weights.items():
        array = np.ascontiguousarray(array)
        out += _describe(name, array) + array.astype(array.dtype.newbyteorder("<")).tobytes()
    return bytes(out)


def fit_law(values: np.ndarray) -> DimModel:
    """The law (one context) that codes the integers ``values`` of an int32 weight."""
    symbols = np.asarray(values, dtype=np.int64).ravel()
    span = int(symbols.max() - symbols.min()) + 1 if symbols.size else 1
    if span >= 1 << WEIGHT_PRECISION:
        raise ValueError(f"integers spanning {span} values, above the "
                         f"{(1 << WEIGHT_PRECISION) - 1} a table codes")
    return fit_dim(symbols, np.zeros_like(symbols), WEIGHT_PRECISION)


def _pack_coded(weights: dict[str, np.ndarray]) -> bytes:
    """Version 5: the zlib-compressed list, then the int32 tensors entropy-coded."""
    head, blocks = bytearray(encode_varint(len(weights))), []
    for name, array in weights.items():
        array = np.asarray(array)
        head += _describe(name, array)
        if array.dtype.newbyteorder("<") == _CODED:
            try:
                law = fit_law(array)
            except ValueError as exc:
                raise ValueError(f"weight {name!r}: {exc} (lower grid.weight_precision)") from exc
            head += pack_dim(law)
            blocks.append((array.ravel(), context_table(law, 0, WEIGHT_PRECISION)))
        else:
            head += array.astype(array.dtype.newbyteorder("<")).tobytes(order="C")
    packed = zlib.compress(bytes(head), 9)
    return encode_varint(len(packed)) + packed + encode_blocks(blocks, CODER_EXACT, "weight")


def pack_weights(weights: dict[str, np.ndarray], version: int) -> bytes:
    """The WEIGHTS payload of a file of ``version``."""
    return _pack_coded(weights) if version >= WEIGHTS_VERSION else _pack_raw(weights)


def _read_description(reader: Reader, side: int) -> tuple[str, np.dtype, list[int]]:
    length = reader.varint(limits.MAX_WEIGHT_NAME, "a weight name's length")
    try:
        name = reader.take(length).decode()
    except UnicodeDecodeError as exc:
        raise ValueError("a weight name is not UTF-8") from exc
    code, ndim = reader.u8(), reader.u8()
    if code not in DTYPES or ndim > limits.MAX_WEIGHT_NDIM:
        raise ValueError(f"weight {name!r}: unknown dtype code {code} or {ndim} dimensions")
    shape = [reader.varint(side, f"a dimension of weight {name!r}")
             for _ in range(ndim)]
    return name, DTYPES[code], shape


def _read_values(reader: Reader, name: str, dtype: np.dtype, shape: list[int]) -> np.ndarray:
    nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if nbytes > len(reader.data):
        raise ValueError(f"weight {name!r} of shape {shape} is larger than its section")
    array = np.frombuffer(reader.take(nbytes), dtype=dtype).reshape(shape).copy()
    if dtype.kind == "f" and not np.all(np.isfinite(array)):
        raise ValueError(f"weight {name!r} holds NaN or infinite values")
    return array


def _add(weights: dict[str, np.ndarray], name: str, array: np.ndarray) -> None:
    if name in weights:
        raise ValueError(f"weight {name!r} appears twice")
    weights[name] = array


def _unpack_raw(data: bytes) -> dict[str, np.ndarray]:
    reader = Reader(data, "weights section")
    weights: dict[str, np.ndarray] = {}
    for _ in range(reader.varint(limits.MAX_WEIGHTS, "the weight count")):
        name, dtype, shape = _read_description(reader, len(data))
        _add(weights, name, _read_values(reader, name, dtype, shape))
    reader.finish()
    return weights


def split_coded(data: bytes) -> tuple[bytes, bytes]:
    """A version-5 WEIGHTS payload as (the compressed weight list, the coded integers)."""
    outer = Reader(data, "weights section")
    packed = outer.take(outer.varint(len(data), "the weight list's length"))
    return packed, data[outer.pos:]


def _unpack_coded(data: bytes) -> dict[str, np.ndarray]:
    packed, coded_part = split_coded(data)
    reader = Reader(_inflate(packed, limits.MAX_WEIGHT_LIST_BYTES, "the weight list"),
                    "weight list")
    weights: dict[str, np.ndarray] = {}
    coded: list[tuple[str, list[int], DimModel]] = []
    values = symbols = 0
    for _ in range(reader.varint(limits.MAX_WEIGHTS, "the weight count")):
        name, dtype, shape = _read_description(reader, limits.MAX_WEIGHT_VALUES)
        if dtype != _CODED:
            _add(weights, name, _read_values(reader, name, dtype, shape))
            continue
        law = read_dim(reader, WEIGHT_PRECISION, f"weight {name!r}")
        values += int(np.prod(shape, dtype=object))
        symbols += law.num_symbols
        if values > limits.MAX_WEIGHT_VALUES or symbols > limits.MAX_WEIGHT_LAW_SYMBOLS:
            raise ValueError(f"the coded weights of {name!r} and before hold {values} values "
                             f"with {symbols} symbols (limits {limits.MAX_WEIGHT_VALUES}, "
                             f"{limits.MAX_WEIGHT_LAW_SYMBOLS})")
        if law.num_contexts != 1:
            raise ValueError(f"weight {name!r}: a law of {law.num_contexts} contexts (expected 1)")
        coded.append((name, shape, law))
        _add(weights, name, np.empty(0, np.int32))
    reader.finish()
    decoder = BlockDecoder(coded_part, CODER_EXACT)
    for name, shape, law in coded:
        count = int(np.prod(shape, dtype=object))
        decoded = decoder.decode(count, context_table(law, 0, WEIGHT_PRECISION))
        weights[name] = decoded.astype(np.int32).reshape(shape)
    decoder.finish()
    return weights


def unpack_weights(data: bytes, version: int) -> dict[str, np.ndarray]:
    """The named tensors of a WEIGHTS payload of a file of ``version``."""
    return _unpack_coded(data) if version >= WEIGHTS_VERSION else _unpack_raw(data)
