"""Streaming: compress + checksum into fixed-size parts, and the reverse, in flat memory.

Backup: raw dump bytes -> zstd (multi-threaded, frame checksum) -> SHA-256 over the
stored bytes -> parts of exactly `part_size` (the last one shorter) -> uploaded by a
small pool, at most `in_flight` parts buffered. Memory is about
part_size * (in_flight + 1) plus zstd's window, whatever the database size.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import BinaryIO

import zstandard

READ_SIZE = 1 << 20
# zstd's multi-threaded job size: its default (8 MiB at level 3) buffers ~95 MB with two
# workers; 2 MiB jobs keep ~60 MB for a few % of ratio (bench/README.md).
JOB_SIZE = 2 << 20
ALGORITHM = "zstd"


@dataclass
class StreamStats:
    raw_bytes: int = 0
    stored_bytes: int = 0
    parts: int = 0
    _sha: object = field(default_factory=hashlib.sha256, repr=False)

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()


class PartCompressor:
    """Feed raw bytes, get compressed parts of exactly part_size; hashes what it emits."""

    def __init__(self, part_size: int, level: int = 3, threads: int = 0) -> None:
        extra = {"job_size": JOB_SIZE} if threads > 0 else {}
        params = zstandard.ZstdCompressionParameters.from_level(level, threads=threads, write_checksum=1, **extra)
        cctx = zstandard.ZstdCompressor(compression_params=params)
        self._chunker = cctx.chunker(chunk_size=part_size)
        self.stats = StreamStats()

    def _emit(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            self.stats._sha.update(chunk)
            self.stats.stored_bytes += len(chunk)
            self.stats.parts += 1
            yield chunk

    def feed(self, data: bytes) -> Iterator[bytes]:
        self.stats.raw_bytes += len(data)
        return self._emit(self._chunker.compress(data))

    def finish(self) -> Iterator[bytes]:
        return self._emit(self._chunker.finish())


def upload_stream(
    source: BinaryIO,
    upload_part: Callable[[int, bytes], None],
    *,
    part_size: int,
    level: int = 3,
    threads: int = 0,
    in_flight: int = 2,
    read_size: int = READ_SIZE,
) -> StreamStats:
    """Read `source` to EOF, upload compressed parts; raise the first part failure at once."""
    comp = PartCompressor(part_size, level, threads)
    slots = threading.BoundedSemaphore(in_flight)
    pending: list[Future] = []
    number = 0

    def check() -> None:
        for f in [f for f in pending if f.done()]:
            pending.remove(f)
            f.result()  # re-raises the part's error in this thread

    with ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="part") as pool:
        try:

            def submit(part: bytes) -> None:
                nonlocal number
                number += 1
                slots.acquire()
                check()
                future = pool.submit(upload_part, number, part)
                future.add_done_callback(lambda _f: slots.release())
                pending.append(future)

            while data := source.read(read_size):
                for part in comp.feed(data):
                    submit(part)
                check()
            for part in comp.finish():
                submit(part)
            for f in list(pending):
                f.result()
        finally:
            for f in pending:
                f.cancel()
    return comp.stats


class VerifyingReader:
    """Iterate stored chunks: hash and count them, decompress, hand raw bytes on."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self.stats = StreamStats()
        self._dobj = zstandard.ZstdDecompressor().decompressobj()
        self.decompress_error: str | None = None

    @property
    def complete_frame(self) -> bool:
        return self._dobj.eof

    def raw(self) -> Iterator[bytes]:
        """Decompressed bytes; stops (recording why) at the first decompression error."""
        for chunk in self._chunks:
            self.stats._sha.update(chunk)
            self.stats.stored_bytes += len(chunk)
            if self.decompress_error is not None:
                continue
            try:
                out = self._dobj.decompress(chunk)
            except zstandard.ZstdError as exc:
                self.decompress_error = str(exc)
                continue
            if out:
                self.stats.raw_bytes += len(out)
                yield out

    def drain(self) -> None:
        """Hash whatever is left without decompressing (after the consumer gave up)."""
        for chunk in self._chunks:
            self.stats._sha.update(chunk)
            self.stats.stored_bytes += len(chunk)
