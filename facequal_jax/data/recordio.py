"""MXNet RecordIO packs (`train.rec` + `train.idx`), read and written without MXNet.

Byte layout (dmlc-core RecordIO), all integers little-endian:

  record part := magic:uint32 = 0xced7230a
                 lrecord:uint32 = cflag << 29 | length
                 data[length], then zero padding to a multiple of 4 bytes
  cflag 0: a whole record. A record whose data contains the magic number at a
  4-byte-aligned position is split there into parts (cflag 1 = first, 2 =
  middle, 3 = last); the magic itself is dropped and re-inserted between parts
  on reading.

An image record's data (MXNet `recordio.pack`):

  header := flag:uint32, label:float32, id:uint64, id2:uint64   (24 bytes)
  if flag > 0: flag float32 labels follow (a vector label; `label` is 0)
  then the encoded image (JPEG / PNG …)

The `.idx` file has one text line per record: `key<TAB>byte offset of its first part`.

insightface face packs (MS1M, Glint360K, WebFace42M) put a header record at key
0 with flag 2 and label (a, b): image records are keys 1 … a − 1 and keys a …
b − 1 are one record per identity whose label (start, end) is that identity's
range of image keys.
"""
import dataclasses
import os
import struct
from typing import Iterable, Iterator, Optional, Sequence, Tuple

import numpy as np

from facequal_jax.errors import DataError, MissingFile

MAGIC = 0xCED7230A
_MAGIC_BYTES = struct.pack("<I", MAGIC)
_LENGTH_MASK = (1 << 29) - 1
_HEADER = struct.Struct("<IfQQ")


class RecordIOError(DataError):
  """A malformed pack; the message names the file and byte offset."""


@dataclasses.dataclass(frozen=True)
class ImageHeader:
  """Header of an image record: `label` is a float, or float32 [flag] when flag > 0."""
  flag: int
  label: object
  id: int = 0
  id2: int = 0


def pack(header: ImageHeader, payload: bytes) -> bytes:
  """Record data for `header` and encoded image bytes (MXNet `recordio.pack`)."""
  if header.flag > 0:
    labels = np.asarray(header.label, np.float32).ravel()
    if len(labels) != header.flag:
      raise ValueError(f"flag {header.flag} needs {header.flag} labels, got {len(labels)}")
    return _HEADER.pack(header.flag, 0.0, header.id, header.id2) + labels.tobytes() + payload
  return _HEADER.pack(0, float(header.label), header.id, header.id2) + payload


def unpack(data: bytes, where: str = "record") -> Tuple[ImageHeader, bytes]:
  """Splits record data into (ImageHeader, payload bytes)."""
  if len(data) < _HEADER.size:
    raise RecordIOError(f"{where}: {len(data)} bytes, shorter than the {_HEADER.size}-byte image header")
  flag, label, id_, id2 = _HEADER.unpack_from(data)
  start = _HEADER.size
  if flag > 0:
    end = start + 4 * flag
    if len(data) < end:
      raise RecordIOError(f"{where}: header announces {flag} labels but the record ends first")
    label = np.frombuffer(data[start:end], np.float32).copy()
    start = end
  return ImageHeader(flag, label, id_, id2), data[start:]


def _parts(data: bytes) -> Sequence[bytes]:
  """Splits data at 4-byte-aligned occurrences of the magic number."""
  parts, begin = [], 0
  for i in range(0, len(data) - 3, 4):
    if data[i:i + 4] == _MAGIC_BYTES:
      parts.append(data[begin:i])
      begin = i + 4
  parts.append(data[begin:])
  return parts


def framed(data: bytes) -> bytes:
  """One record as it lies in a `.rec` file: each part behind the magic and its length, padded to 4 bytes."""
  parts = _parts(data)
  out = []
  for i, part in enumerate(parts):
    cflag = 0 if len(parts) == 1 else (1 if i == 0 else (3 if i == len(parts) - 1 else 2))
    out += [_MAGIC_BYTES, struct.pack("<I", cflag << 29 | len(part)), part, b"\0" * (-len(part) % 4)]
  return b"".join(out)


class RecordIOWriter:
  """Writes records to `path` and, if `idx_path` is given, their offsets to it (`append`: after what they hold)."""

  def __init__(self, path: str, idx_path: Optional[str] = None, append: bool = False):
    self._file = open(path, "ab" if append else "wb")
    self._idx = open(idx_path, "a" if append else "w") if idx_path else None

  def flush(self) -> Tuple[int, int]:
    """Pushes what was written to disk; returns the byte sizes of the `.rec` and the `.idx` so far."""
    for file in filter(None, (self._file, self._idx)):
      file.flush()
      os.fsync(file.fileno())
    return self._file.tell(), self._idx.tell() if self._idx else 0

  def write(self, key: int, data: bytes) -> None:
    offset = self._file.tell()
    self._file.write(framed(data))
    if self._idx:
      self._idx.write(f"{key}\t{offset}\n")

  def close(self) -> None:
    self._file.close()
    if self._idx:
      self._idx.close()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()


class RecordIOReader:
  """Reads a `.rec`: random access by key through its `.idx`, or a sequential scan.

  Args:
    path: the `.rec` file.
    idx_path: its index; default `path` with `.idx` in place of `.rec` when
      that file exists, else none (only `scan` is then possible).
  """

  def __init__(self, path: str, idx_path: Optional[str] = None):
    if not os.path.exists(path):
      raise MissingFile(f"RecordIO file {path!r} does not exist")
    self.path = path
    self.size = os.path.getsize(path)
    self._file = open(path, "rb")
    if idx_path is None:
      candidate = os.path.splitext(path)[0] + ".idx"
      idx_path = candidate if os.path.exists(candidate) else None
    self.idx_path = idx_path
    self.offsets = _read_index(idx_path, self.size) if idx_path else None

  def close(self) -> None:
    self._file.close()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()

  def keys(self) -> Sequence[int]:
    if self.offsets is None:
      raise ValueError(f"{self.path!r} has no .idx: keys need the index (use scan())")
    return list(self.offsets)

  def read(self, key: int) -> bytes:
    """The data of record `key` (needs the index)."""
    if self.offsets is None:
      raise ValueError(f"{self.path!r} has no .idx: random access needs the index (use scan())")
    if key not in self.offsets:
      raise KeyError(f"{self.idx_path!r} has no key {key}")
    return self.read_at(self.offsets[key])

  def read_at(self, offset: int) -> bytes:
    """The data of the record whose first part starts at byte `offset`."""
    data, _ = self._read_at(offset)
    return data

  def scan(self) -> Iterator[Tuple[int, bytes]]:
    """Yields (offset, data) for every record in file order; stops cleanly at the end."""
    offset = 0
    while offset < self.size:
      data, next_offset = self._read_at(offset)
      yield offset, data
      offset = next_offset

  def _read_at(self, offset: int) -> Tuple[bytes, int]:
    """Reads the record whose first part starts at `offset`; returns (data, next offset).

    Positional reads (`os.pread`) share no file position, so threads may read
    records concurrently.
    """
    chunks, position, expect_continuation = [], offset, False
    descriptor = self._file.fileno()
    while True:
      head = os.pread(descriptor, 8, position)
      if len(head) < 8:
        raise RecordIOError(f"{self.path}: truncated record header at byte {position} "
                            f"(file ends at {self.size})")
      magic, lrecord = struct.unpack("<II", head)
      if magic != MAGIC:
        raise RecordIOError(f"{self.path}: bad magic 0x{magic:08x} at byte {position} (expected 0x{MAGIC:08x})")
      cflag, length = lrecord >> 29, lrecord & _LENGTH_MASK
      if cflag > 3 or (cflag in (0, 1)) == expect_continuation:
        raise RecordIOError(f"{self.path}: unexpected part flag {cflag} at byte {position}")
      padded = length + (-length % 4)
      if position + 8 + padded > self.size:
        raise RecordIOError(f"{self.path}: record part at byte {position} needs {length} bytes "
                            f"but the file ends at {self.size}")
      chunks.append(os.pread(descriptor, length, position + 8))
      position += 8 + padded
      if cflag in (0, 3):
        return _MAGIC_BYTES.join(chunks), position
      expect_continuation = True


def _read_index(idx_path: str, rec_size: int) -> dict:
  """{key: offset} from an `.idx` file, checked line by line."""
  offsets = {}
  with open(idx_path) as f:
    for line_number, line in enumerate(f, 1):
      fields = line.split("\t")
      try:
        key, offset = int(fields[0]), int(fields[1])
      except (IndexError, ValueError):
        raise RecordIOError(f"{idx_path}: line {line_number} is not 'key<TAB>offset': {line.strip()!r}") from None
      if not 0 <= offset < rec_size:
        raise RecordIOError(f"{idx_path}: line {line_number}: offset {offset} is outside the .rec "
                            f"({rec_size} bytes)")
      offsets[key] = offset
  return offsets


def write_face_pack(rec_path: str, samples: Iterable[Tuple[int, bytes]], idx_path: Optional[str] = None,
                    count: Optional[int] = None) -> None:
  """Writes an insightface-style pack: header record, images grouped by identity, identity records.

  Args:
    rec_path: output `.rec`; the index goes to `idx_path` (default: `.idx` beside it).
    samples: (integer label, encoded image bytes) pairs; they are stored grouped
      by label (stable order within a label).
    count: with it, `samples` is a stream of `count` pairs already grouped by label (labels never decrease),
      written as they come (a pack of millions of images is never held in memory); without it, a sequence
      in any order.
  """
  idx_path = idx_path or os.path.splitext(rec_path)[0] + ".idx"
  if count is None:
    samples = sorted(samples, key=lambda sample: sample[0])
    count = len(samples)
  first_identity_key = count + 1
  starts, previous = {}, None  # label → its first image key, in order; the last label written
  with RecordIOWriter(rec_path, idx_path) as writer:
    writer.write(0, pack(ImageHeader(2, [0, 0]), b""))  # the header's place: rewritten once the identities are known
    key = 0
    for key, (label, payload) in enumerate(samples, 1):
      if previous is not None and label < previous:
        raise ValueError(f"write_face_pack: label {label} of image {key} comes after label {previous}: "
                         "a stream must be grouped by label")
      starts.setdefault(label, key)
      previous = label
      writer.write(key, pack(ImageHeader(0, float(label), key), payload))
    if key != count:
      raise ValueError(f"write_face_pack: {key} images, but count = {count}")
    ends = list(starts.values())[1:] + [count + 1]
    for identity_key, (start, end) in enumerate(zip(starts.values(), ends), first_identity_key):
      writer.write(identity_key, pack(ImageHeader(2, [start, end]), b""))
  with open(rec_path, "r+b") as rec:  # the same length as the placeholder: two float labels
    rec.write(framed(pack(ImageHeader(2, [first_identity_key, first_identity_key + len(starts)]), b"")))
def image_label(header: ImageHeader) -> int:
  """The identity of an image record: the scalar label, or the first of a vector."""
  value = header.label[0] if header.flag > 0 else header.label
  if not float(value).is_integer():
    raise RecordIOError(f"label {value} of record id {header.id} is not an integer")
  return int(value)
