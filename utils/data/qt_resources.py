"""Read the files packed in a Qt binary resource file (`.rcc`, as written by Qt's `rcc -binary`).

GCompris ships its activities' images this way. The format (Qt's qresource.cpp, versions 1-3), big-endian:
a header `qres`, version, tree offset, data offset, names offset (and flags from version 3); a tree of nodes
(14 bytes, 22 from version 2 with an 8-byte modification time), each a name offset, flags (1 zlib-compressed,
2 directory, 4 zstd-compressed), then either a child count and the first child's index (directories) or a
locale and a data offset (files); names as a 2-byte length, a 4-byte hash and UTF-16BE characters; file data
as a 4-byte length and the bytes, zlib-compressed ones behind a 4-byte uncompressed length (qCompress).

    for path, data in read_rcc("categorization.rcc"): ...
"""
from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

COMPRESSED, DIRECTORY, COMPRESSED_ZSTD = 1, 2, 4


class RccError(ValueError):
    """A file that is not a readable Qt resource file."""


def read_rcc(path) -> Iterator[tuple[str, bytes]]:
    """(path inside the resource, file bytes) for every file in a `.rcc`; zstd-compressed entries are skipped."""
    path = Path(path)
    blob = path.read_bytes()
    if len(blob) < 20 or blob[:4] != b"qres":
        raise RccError(f"{path}: not a Qt resource file (no 'qres' magic)")
    version, tree, data, names = struct.unpack_from(">4I", blob, 4)
    if version not in (1, 2, 3):
        raise RccError(f"{path}: Qt resource format version {version} is not supported (1-3)")
    node_size = 14 if version == 1 else 22

    def name_at(offset: int) -> str:
        (length,) = struct.unpack_from(">H", blob, names + offset)
        start = names + offset + 6
        return blob[start:start + 2 * length].decode("utf-16-be")

    def node(index: int) -> tuple[int, int, int, int]:
        return struct.unpack_from(">IHII", blob, tree + index * node_size)

    def walk(index: int, prefix: str, depth: int) -> Iterator[tuple[str, bytes]]:
        if depth > 64:
            raise RccError(f"{path}: resource tree deeper than 64 levels (corrupt file?)")
        name_off, flags, a, b = node(index)
        if flags & DIRECTORY:
            for child in range(b, b + a):
                c_name, c_flags = node(child)[:2]
                yield from walk(child, f"{prefix}/{name_at(c_name)}", depth + 1)
            return
        (size,) = struct.unpack_from(">I", blob, data + b)
        payload = blob[data + b + 4:data + b + 4 + size]
        if len(payload) != size:
            raise RccError(f"{path}: {prefix}: data runs past the end of the file")
        if flags & COMPRESSED_ZSTD:
            return
        if flags & COMPRESSED:
            try:
                payload = zlib.decompress(payload[4:])
            except zlib.error as err:
                raise RccError(f"{path}: {prefix}: bad zlib data ({err})") from None
        yield prefix.lstrip("/"), payload

    try:
        yield from walk(0, "", 0)
    except struct.error:
        raise RccError(f"{path}: truncated or corrupt resource tree") from None


def write_rcc(path, files: dict[str, bytes], compress: bool = True, version: int = 3) -> Path:
    """Write `files` ({'dir/name.ext': bytes}) as a Qt resource file: the format `read_rcc` reads, for tests and
    for packing a folder of your own (children sorted by name hash like Qt's, which `read_rcc` does not need)."""
    tree: dict = {}
    for name, content in files.items():
        parts = name.strip("/").split("/")
        d = tree
        for part in parts[:-1]:
            d = d.setdefault(part, {})
        d[parts[-1]] = content
    names_blob, data_blob, name_offsets = bytearray(), bytearray(), {}

    def name_offset(n: str) -> int:
        if n not in name_offsets:
            name_offsets[n] = len(names_blob)
            enc = n.encode("utf-16-be")
            names_blob.extend(struct.pack(">HI", len(n), 0) + enc)
        return name_offsets[n]

    nodes: list[bytes | None] = [None]   # breadth-first, as Qt writes: a directory's children are consecutive
    queue = [(0, "", tree)]
    node_size = 14 if version == 1 else 22
    while queue:
        index, name, content = queue.pop(0)
        noff = name_offset(name) if index else 0
        if isinstance(content, dict):
            first = len(nodes)
            children = sorted(content.items())
            nodes.extend([None] * len(children))
            for k, (child_name, child) in enumerate(children):
                queue.append((first + k, child_name, child))
            rec = struct.pack(">IHII", noff, DIRECTORY, len(children), first)
        else:
            payload, flags = content, 0
            if compress:
                payload, flags = struct.pack(">I", len(content)) + zlib.compress(content), COMPRESSED
            rec = struct.pack(">IHHHI", noff, flags, 0, 0, len(data_blob))
            data_blob.extend(struct.pack(">I", len(payload)) + payload)
        nodes[index] = rec + (b"" if version == 1 else b"\0" * 8)
    header_size = 20 if version < 3 else 24
    tree_blob = b"".join(nodes)
    tree_off = header_size
    data_off = tree_off + len(tree_blob)
    names_off = data_off + len(data_blob)
    header = b"qres" + struct.pack(">4I", version, tree_off, data_off, names_off)
    if version >= 3:
        header += struct.pack(">I", 0)
    path = Path(path)
    path.write_bytes(header + tree_blob + bytes(data_blob) + bytes(names_blob))
    return path


__all__ = ["RccError", "read_rcc", "write_rcc"]
