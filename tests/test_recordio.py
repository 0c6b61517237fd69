"""RecordIO: the writer round-trips, an independently assembled pack reads back, every cut is caught."""
import io
import struct

import numpy as np
import pytest
from PIL import Image

from facequal_jax.data import recordio
from facequal_jax.data.preprocess import decode
from facequal_jax.data.sources import RecordIOSource

MAGIC = struct.pack("<I", 0xCED7230A)


def _png(array):
  buffer = io.BytesIO()
  Image.fromarray(array).save(buffer, format="PNG")
  return buffer.getvalue()


@pytest.fixture(scope="module")
def faces():
  rng = np.random.default_rng(0)
  return [(int(label), rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)) for label in [3, 1, 3, 7, 1, 1]]


def test_face_pack_round_trip(tmp_path, faces):
  rec = str(tmp_path / "train.rec")
  recordio.write_face_pack(rec, [(label, _png(image)) for label, image in faces])
  source = RecordIOSource(rec)  # finds train.idx beside it
  assert len(source) == len(faces)
  # Stored grouped by label (stable): 1, 1, 1, 3, 3, 7.
  order = sorted(range(len(faces)), key=lambda i: faces[i][0])
  assert source.identity_names == ["1", "3", "7"]
  np.testing.assert_array_equal(source.labels, [0, 0, 0, 1, 1, 2])
  for i, j in enumerate(order):
    np.testing.assert_array_equal(np.asarray(decode(source.read(i))), faces[j][1])
  assert source.keys == [1, 2, 3, 4, 5, 6]


def test_a_grouped_stream_is_written_as_it_comes_with_its_header_and_identity_records(tmp_path, faces):
  rec = str(tmp_path / "stream.rec")
  grouped = sorted(faces, key=lambda face: face[0])
  recordio.write_face_pack(rec, ((label, _png(image)) for label, image in grouped), count=len(grouped))
  with recordio.RecordIOReader(rec) as reader:  # header: identity records at keys 7 … 9, each a key range
    assert recordio.unpack(reader.read(0))[0].label.tolist() == [7.0, 10.0]
    assert [recordio.unpack(reader.read(key))[0].label.tolist() for key in (7, 8, 9)] == [[1, 4], [4, 6], [6, 7]]
  source = RecordIOSource(rec)
  np.testing.assert_array_equal(source.labels, [0, 0, 0, 1, 1, 2])
  for i, (_, image) in enumerate(grouped):
    np.testing.assert_array_equal(np.asarray(decode(source.read(i))), image)
  with pytest.raises(ValueError, match="grouped by label"):
    recordio.write_face_pack(rec, ((label, _png(image)) for label, image in faces), count=len(faces))


def _assembled_pack():
  """A pack built byte by byte from the format description, not with the writer.

  Records: key 0, a plain image with scalar label 5.0; key 1, a vector label
  (flag 2: 9.0, 4.0) whose payload contains the magic number at an aligned
  position, so it is stored in two parts.
  """
  payload_a = _png(np.full((4, 4), 200, np.uint8))
  record_a = struct.pack("<IfQQ", 0, 5.0, 11, 0) + payload_a
  payload_b = b"PNG?" + MAGIC + b"tail-bytes"
  record_b = struct.pack("<IfQQ", 2, 0.0, 12, 0) + struct.pack("<ff", 9.0, 4.0) + payload_b
  blob = bytearray()
  offsets = [0]
  blob += MAGIC + struct.pack("<I", len(record_a)) + record_a + b"\0" * (-len(record_a) % 4)
  offsets.append(len(blob))
  cut = record_b.index(MAGIC)  # 24 + 8 + 4 = 36, 4-byte aligned
  first, second = record_b[:cut], record_b[cut + 4:]
  blob += MAGIC + struct.pack("<I", 1 << 29 | len(first)) + first + b"\0" * (-len(first) % 4)
  blob += MAGIC + struct.pack("<I", 3 << 29 | len(second)) + second + b"\0" * (-len(second) % 4)
  index = "".join(f"{key}\t{offset}\n" for key, offset in enumerate(offsets))
  return bytes(blob), index, [record_a, record_b], payload_a, payload_b


def test_hand_assembled_pack_reads_back_exactly(tmp_path):
  blob, index, records, payload_a, payload_b = _assembled_pack()
  (tmp_path / "hand.rec").write_bytes(blob)
  (tmp_path / "hand.idx").write_text(index)
  with recordio.RecordIOReader(str(tmp_path / "hand.rec")) as reader:
    assert reader.keys() == [0, 1]
    assert reader.read(0) == records[0] and reader.read(1) == records[1]
    assert [data for _, data in reader.scan()] == records
  header, payload = recordio.unpack(records[1])
  assert header.flag == 2 and header.id == 12 and payload == payload_b
  np.testing.assert_array_equal(header.label, [9.0, 4.0])
  assert recordio.image_label(header) == 9
  header, payload = recordio.unpack(records[0])
  assert (header.flag, header.label, header.id, payload) == (0, 5.0, 11, payload_a)


def test_writer_produces_the_hand_assembled_bytes(tmp_path):
  blob, index, records, _, _ = _assembled_pack()
  with recordio.RecordIOWriter(str(tmp_path / "w.rec"), str(tmp_path / "w.idx")) as writer:
    for key, record in enumerate(records):
      writer.write(key, record)
  assert (tmp_path / "w.rec").read_bytes() == blob
  assert (tmp_path / "w.idx").read_text() == index


def test_pack_without_index_is_scanned(tmp_path, faces):
  rec = str(tmp_path / "noidx.rec")
  with recordio.RecordIOWriter(rec) as writer:
    for key, (label, image) in enumerate(faces):
      writer.write(key, recordio.pack(recordio.ImageHeader(0, float(label), key), _png(image)))
  source = RecordIOSource(rec)
  assert len(source) == len(faces)
  np.testing.assert_array_equal(np.asarray(source.identity_names)[source.labels], [str(l) for l, _ in faces])
  np.testing.assert_array_equal(np.asarray(decode(source.read(3))), faces[3][1])


def test_every_truncation_gives_a_clear_error_or_a_clean_stop(tmp_path):
  blob, _, records, _, _ = _assembled_pack()
  boundaries = {0: 0, len(blob): 2}
  second_start = 8 + len(records[0]) + (-len(records[0]) % 4)
  boundaries[second_start] = 1
  path = tmp_path / "cut.rec"
  for size in range(len(blob) + 1):
    path.write_bytes(blob[:size])
    with recordio.RecordIOReader(str(path), idx_path=None) as reader:
      got = []
      try:
        for offset, data in reader.scan():
          got.append(data)
      except recordio.RecordIOError as error:
        assert size not in boundaries, f"cut at {size} is a record boundary"
        assert "cut.rec" in str(error) and "byte" in str(error)
        assert got == records[:len(got)]
        continue
      assert size in boundaries, f"cut at byte {size} was read without error"
      assert got == records[:boundaries[size]]


def test_bad_magic_names_the_offset(tmp_path):
  blob, _, _, _, _ = _assembled_pack()
  damaged = bytearray(blob)
  second = blob.index(MAGIC, 4)
  damaged[second] ^= 0xFF
  (tmp_path / "bad.rec").write_bytes(bytes(damaged))
  with recordio.RecordIOReader(str(tmp_path / "bad.rec"), idx_path=None) as reader:
    with pytest.raises(recordio.RecordIOError, match=f"bad magic 0x[0-9a-f]+ at byte {second}"):
      list(reader.scan())


def test_bad_index_lines(tmp_path):
  blob, _, _, _, _ = _assembled_pack()
  (tmp_path / "x.rec").write_bytes(blob)
  (tmp_path / "x.idx").write_text("0\t0\n1\tnot-a-number\n")
  with pytest.raises(recordio.RecordIOError, match="x.idx: line 2 is not 'key<TAB>offset'"):
    recordio.RecordIOReader(str(tmp_path / "x.rec"))
  (tmp_path / "x.idx").write_text(f"0\t0\n1\t{len(blob) + 10}\n")
  with pytest.raises(recordio.RecordIOError, match="line 2: offset .* is outside the .rec"):
    recordio.RecordIOReader(str(tmp_path / "x.rec"))


def test_index_into_a_truncated_pack(tmp_path, faces):
  rec = str(tmp_path / "t.rec")
  recordio.write_face_pack(rec, [(label, _png(image)) for label, image in faces])
  data = open(rec, "rb").read()
  open(rec, "wb").write(data[: len(data) // 2])
  with pytest.raises(recordio.RecordIOError, match="outside the .rec"):
    RecordIOSource(rec)


def test_missing_pack():
  with pytest.raises(FileNotFoundError, match="RecordIO file '/no/x.rec' does not exist"):
    recordio.RecordIOReader("/no/x.rec")


def test_concurrent_reads_from_many_threads(tmp_path, faces):
  import concurrent.futures  # pylint: disable=import-outside-toplevel
  rec = str(tmp_path / "many.rec")
  samples = [(label, _png(image)) for label, image in faces] * 30
  recordio.write_face_pack(rec, samples)
  source = RecordIOSource(rec)
  serial = [source.read(i) for i in range(len(source))]
  with concurrent.futures.ThreadPoolExecutor(8) as pool:
    assert list(pool.map(source.read, range(len(source)))) == serial
