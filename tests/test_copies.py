"""Near-duplicates are copies of one photograph: the pixel check against planted copies and different photos of
one person (ORL, LFW-dev), and the IQ job finding planted copies, LFW's known copies, and nothing else."""
import io
import itertools
import os

import numpy as np
import pytest
from PIL import Image

import faces
import shared_data
from facequal_jax.configs import iq
from facequal_jax.data import orl
from facequal_jax.data.copies import COPY_SIMILARITY, photo_similarity
from facequal_jax.data.preprocess import decode
from facequal_jax.jobs import run

LFW = shared_data.path("lfw_dev")
KNOWN_COPIES = [("Carlos_Beltran/Carlos_Beltran_0001.jpg", "Raul_Ibanez/Raul_Ibanez_0001.jpg"),
                ("Emmy_Rossum/Emmy_Rossum_0001.jpg", "Eva_Amurri/Eva_Amurri_0001.jpg")]


def _copy(image: Image.Image, how: str) -> Image.Image:
  """One photograph made again: resized to 60 %, recompressed as JPEG at quality 40, cropped by 4 %, or all."""
  if how == "resized":
    return image.resize((int(image.width * 0.6), int(image.height * 0.6)), Image.BILINEAR)
  if how == "recompressed":
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=40)
    return decode(buffer.getvalue())
  if how == "cropped":
    cut = int(0.04 * image.width)
    return image.crop((cut, cut, image.width - cut, image.height - cut))
  return _copy(_copy(_copy(image, "cropped"), "resized"), "recompressed")


def _darkened_tight(image: Image.Image) -> Image.Image:
  """A crop without margin, one side in shadow (the light of Extended Yale B)."""
  grey = np.asarray(image.convert("L"), np.float64)
  height, width = grey.shape
  grey = grey[height // 8: height - height // 8, width // 8: width - width // 8]
  return Image.fromarray(np.clip(grey * np.linspace(1.0, 0.05, grey.shape[1])[None, :], 0, 255).astype(np.uint8))


def _orl_photos():
  images, labels = orl.load_orl()[:2]
  return [decode(image) for image in images], labels


@pytest.mark.parametrize("how", ["resized", "recompressed", "cropped"])
def test_copies_of_orl_faces_are_one_photograph(how):
  photos, _ = _orl_photos()
  assert min(photo_similarity(photos[i], _copy(photos[i], how)) for i in range(0, 400, 40)) >= COPY_SIMILARITY


def test_confirm_keeps_the_copies_and_reads_each_photograph_once():
  """Pairs among ORL face 0, its copy (twice over), and faces 1 and 2 of that person: the pairs of one
  photograph are kept in their order with their similarity, the others counted; each photograph is read once
  however many pairs it is in."""
  from facequal_jax.data.copies import confirm  # pylint: disable=import-outside-toplevel
  photos, _ = _orl_photos()
  rows = {0: photos[0], 1: _copy(photos[0], "resized"), 2: _copy(photos[0], "cropped"), 3: photos[1], 4: photos[2]}
  reads = []
  pairs = [dict(sample_a=a, sample_b=b) for a, b in ((0, 1), (0, 3), (1, 2), (3, 4), (0, 2), (2, 4))]
  kept, rejected = confirm(pairs, lambda row: reads.append(row) or rows[row])
  assert [(p["sample_a"], p["sample_b"]) for p in kept] == [(0, 1), (1, 2), (0, 2)] and rejected == 3
  assert all(p["photo_similarity"] >= COPY_SIMILARITY for p in kept)
  assert sorted(reads) == [0, 1, 2, 3, 4]


def test_different_photos_of_one_person_are_not():
  """ORL's same-session photos of one person (their embeddings reach cosine 0.98), and the same photos cropped
  tight with one side in shadow: every pair of eight identities, those with the closest photos among them,
  stays below the line."""
  photos, labels = _orl_photos()
  for identity in (3, 4, 7, 16, 18, 30, 33, 34):
    rows = np.flatnonzero(labels == identity)
    for a, b in itertools.combinations(rows, 2):
      assert photo_similarity(photos[a], photos[b]) < COPY_SIMILARITY, (identity, a, b)
      assert photo_similarity(_darkened_tight(photos[a]), _darkened_tight(photos[b])) < COPY_SIMILARITY


@shared_data.needs("lfw_dev")
def test_lfw_copies_known_and_planted_and_its_photos_of_one_person():
  read = lambda path: decode(open(os.path.join(LFW, path), "rb").read())
  for a, b in KNOWN_COPIES:
    assert photo_similarity(read(a), read(b)) >= COPY_SIMILARITY, (a, b)
  people = [name for name in sorted(os.listdir(LFW)) if len(os.listdir(os.path.join(LFW, name))) >= 4][:8]
  for name in people:
    photos = [read(os.path.join(name, file)) for file in sorted(os.listdir(os.path.join(LFW, name)))[:4]]
    for how in ("resized", "recompressed", "cropped", "all three"):
      assert photo_similarity(photos[0], _copy(photos[0], how)) >= COPY_SIMILARITY, (name, how)
    assert max(photo_similarity(a, b) for a, b in itertools.combinations(photos, 2)) < COPY_SIMILARITY, name


def _write(folder, name: str, image: Image.Image) -> None:
  os.makedirs(os.path.dirname(os.path.join(folder, name)), exist_ok=True)
  image.convert("RGB").save(os.path.join(folder, name), "PNG")


def _near_duplicates(tmp_path, folder, **fields):
  faces.require()
  config = iq.get_config()
  config.data.images = str(folder)
  config.demo_noise_rates = ()
  config.update_from_flattened_dict(fields)
  _, findings = run.run(config, str(tmp_path / "work"))
  return {frozenset(os.path.relpath(pair[side], folder) for side in ("file_a", "file_b"))
          for pair in findings["near_duplicates"]}, findings


def test_the_job_finds_planted_copies_among_orl_faces_and_no_other_pair(tmp_path):
  """12 ORL identities, three of their photos copied into another identity's folder; then the same folder with
  10 % of the labels flipped on purpose, whose same-person photos across two labels are no copies."""
  photos, labels = _orl_photos()
  folder = tmp_path / "faces"
  for row in np.flatnonzero(labels < 12):
    _write(folder, f"s{labels[row] + 1}/{row % 10 + 1}.png", photos[row])
  planted = {(0, "resized", 2), (31, "recompressed", 5), (72, "cropped", 10)}
  for row, how, into in planted:
    _write(folder, f"s{into}/copy_{row}.png", _copy(photos[row], how))
  want = {frozenset((f"s{labels[row] + 1}/{row % 10 + 1}.png", f"s{into}/copy_{row}.png")) for row, _, into in planted}
  found, findings = _near_duplicates(tmp_path, folder)
  assert found == want and findings.near_duplicates_rejected > 0  # look-alike candidates, two photographs each
  found, findings = _near_duplicates(tmp_path / "noisy", folder, **{"data.label_noise": 0.1})
  assert found <= want and findings.near_duplicates_rejected > 0  # flips make same-person pairs across labels


@shared_data.needs("lfw_dev")
def test_the_job_finds_lfws_known_copies_and_a_planted_one(tmp_path):
  folder = tmp_path / "faces"
  names = sorted({os.path.dirname(path) for pair in KNOWN_COPIES for path in pair})
  names += [name for name in sorted(os.listdir(LFW)) if len(os.listdir(os.path.join(LFW, name))) >= 6][:6]
  for name in names:
    for file in sorted(os.listdir(os.path.join(LFW, name)))[:6]:
      _write(folder, os.path.join(name, file), Image.open(os.path.join(LFW, name, file)))
  planted = os.path.join(names[-1], sorted(os.listdir(os.path.join(LFW, names[-1])))[0])
  _write(folder, os.path.join(names[-2], "copy.png"), _copy(Image.open(os.path.join(LFW, planted)), "all three"))
  found, _ = _near_duplicates(tmp_path, folder)
  assert found == {frozenset(pair) for pair in KNOWN_COPIES} | {frozenset((planted, os.path.join(names[-2],
                                                                                                  "copy.png")))}


def test_hard_light_tight_crops_yield_no_copies_and_no_decision_on_weak_evidence(tmp_path):
  """12 ORL identities cropped tight with one side in shadow (many faces then go undetected), two photos made
  nearly black, 10 % of the labels flipped: no near-duplicate among these different photographs, and no
  decision that would be carried out rests on an image without a found face or a near-uniform one."""
  from facequal_jax.cleaning import decisions  # pylint: disable=import-outside-toplevel
  photos, labels = _orl_photos()
  folder = tmp_path / "faces"
  for row in np.flatnonzero(labels < 12):
    image = _darkened_tight(photos[row])
    if row in (5, 47):
      image = Image.fromarray((np.asarray(image, np.float64) * 0.02).astype(np.uint8))
    _write(folder, f"s{labels[row] + 1}/{row % 10 + 1}.png", image)
  found, findings = _near_duplicates(tmp_path, folder, **{"data.label_noise": 0.1})
  assert found == set()
  weak = {item["file"] for item in findings.no_face_found} | {item["file"] for item in findings["low_information"]}
  assert len(findings.no_face_found) > 10 and len(findings["low_information"]) == 2
  read = decisions.read(str(tmp_path / "work" / "decisions.csv"))
  assert read.decisions  # the flips are proposed …
  for row in read.decisions:  # … but nothing resting on a weak image is accepted
    if row.apply:
      assert os.path.join(folder, row.item) not in weak, row
    elif os.path.join(folder, row.item) in weak and not row.reason.startswith("low-quality face"):
      assert "for review only" in row.reason  # (a low-quality face's own drop is for review by the policy)
