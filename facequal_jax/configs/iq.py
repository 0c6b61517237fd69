r"""Intrinsic Quality of one data set: the config of `python -m facequal_jax` (its built-in default).

Built-in default (the bundled ORL faces, detected, aligned and embedded by the pretrained face network):

  python -m facequal_jax --workdir=/tmp/iq_orl

Your own embeddings (an .npz with `embeddings` [N, d] and `labels` [N]), on a
10k-sample stratified identity subset, bf16 candidates:

  python -m facequal_jax --workdir=/tmp/iq --config.data.embeddings=emb.npz \
      --config.subset.size=10000 --config.knn.precision=bfloat16

`python -m facequal_jax --print_config` lists every field with its default and
the comment beside it here.
"""
import ml_collections


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  """`arg` is unused; every field can be overridden with --config.FIELD=VALUE."""
  del arg
  config = ml_collections.ConfigDict()

  config.data = ml_collections.ConfigDict()  # at most one source; with none, the bundled ORL faces are scored
  config.data.embeddings = ""  # .npz with `embeddings` [N, d] (float), `labels` [N] (int), optional `names`
  config.data.images = ""  # image folder ROOT/<identity>/<image> (identities = sorted folder names), or a .lst
  config.data.rec = ""  # insightface / MXNet RecordIO pack (.idx beside it gives random access)
  config.data.tfds = ""  # TFDS dataset name with `image` and `label` features (needs the `tfds` extra)
  config.data.tfds_dir = ""  # the folder holding the prepared TFDS dataset
  config.data.tfds_split = "train"  # TFDS split
  config.data.label_noise = 0.0  # share of labels flipped to another identity on purpose (exact count)
  config.data.max_images_per_identity = 0  # cap per identity; 0 = none
  config.data.noise_seed = 0  # seed of the flips and the cap

  config.preprocess = ml_collections.ConfigDict()
  # "detect" (dlib's detector + five landmarks; centred crop where no face is found), "arcface" (crops
  # already aligned to the ArcFace template), "centre", or "auto": "arcface" for .rec packs, else "detect".
  config.preprocess.align = "auto"
  config.preprocess.size = 0  # output side in pixels; 0 = the encoder's (the face network's chip: 150)
  config.preprocess.crop = 0  # centre path: centred square of this many source pixels; 0 = largest
  config.preprocess.channels = "rgb"  # "rgb" or "grey"

  config.encoder = ml_collections.ConfigDict()
  # "face_resnet" (the pretrained face network; eigenfaces without the extra `faces`), "eigenfaces", "paco_fr"
  # (the bundled PaCo-FR encoder), the path of an encoder.msgpack from train/pretrain.py, or your own face
  # network's .onnx file (the `onnx` extra; its conventions below)
  config.encoder.name = "face_resnet"
  config.encoder.dim = 128  # eigenfaces: components kept
  config.encoder.fit_images = 2000  # eigenfaces: images they are fitted on (saved as WORKDIR/encoder.npz)
  config.encoder.onnx = ml_collections.ConfigDict()  # an .onnx face network's input; insightface's by default
  config.encoder.onnx.template = "arcface"  # where it expects the face: "arcface" (template) or "chip" (dlib's)
  config.encoder.onnx.channels = "rgb"  # colour order of its input: "rgb" or "bgr"
  config.encoder.onnx.mean = 127.5  # its input is (pixel − mean) / std, pixels in 0–255
  config.encoder.onnx.std = 127.5  # (insightface: 127.5 and 127.5; a network taking x / 255: 0 and 255)
  config.encoder.onnx.dtype = "float32"  # or "bfloat16" (computed in bfloat16; agreement in docs/onnx.md)

  config.extract = ml_collections.ConfigDict()
  config.extract.batch_size = 256  # images per encoder call
  config.extract.chunk_rows = 4096  # images per resumable chunk file
  config.extract.workers = 0  # decoding and detection threads; 0 = one per core
  config.extract.dir = ""  # where the resumable chunks go; "" = WORKDIR/embeddings
  # also score each face's quality (docs/face_quality.md): the encoder runs again on the mirror images, and
  # dlib's detector on each face in the decoding threads
  config.extract.quality = True

  config.k = 10  # neighbours per sample
  config.alpha = 0.2  # IQ = alpha · Consis + (1 − alpha) · r̃
  config.singletons = "exclude"  # identities with one sample: left out of Consis ("exclude") or kept ("include")

  config.subset = ml_collections.ConfigDict()
  config.subset.size = 0  # 0 = every row; else a stratified identity subset of about this many rows
  config.subset.images_per_identity = 0  # cap per identity in the subset; 0 = k + 1
  config.subset.min_images = 2  # identities with fewer samples are not sampled
  config.subset.seed = 0  # subset seed

  config.knn = ml_collections.ConfigDict()  # the fields of facequal_jax.SearchSettings
  config.knn.precision = "float32"  # or "bfloat16": bf16 candidates rescored in float32 (the same exact answer)
  config.knn.margin = 32  # extra bf16 candidates per row
  config.knn.block = 2048  # rows per tile (the fused Pallas kernel keeps its own blocks; there it sets the chunks)
  config.knn.chunk_tiles = 4  # query tiles per device per jitted step (progress granularity)
  config.knn.symmetric = True  # self search scores each pair once for both rows (half the FLOPs)
  config.knn.kernel = "auto"  # "xla", "pallas" (fused kernel, bf16), "auto" = Pallas for bf16 on GPU

  config.diagnostics = ml_collections.ConfigDict()  # the fields of facequal_jax.Thresholds
  # a suspect: its suspicion score (nearest other identity's centroid cosine − its own identity's without it, plus
  # a quarter of its neighbours' foreign share and twice that cosine's lead over the runners-up) is at least this
  config.diagnostics.suspect_score = 0.3
  config.diagnostics.duplicate_similarity = 0.95  # cosine of cross-identity near-duplicate candidates
  # a candidate is a near-duplicate when its two images are one photograph: their pixel detail correlates at least
  # this much (resized, recompressed or slightly cropped copies; different photos stay well below)
  config.diagnostics.copy_similarity = 0.9
  config.diagnostics.outlier_z = -3.5  # robust z of the mean neighbour cosine below which a sample is an outlier
  config.diagnostics.merge_links = 1  # mutual cross-identity nearest-neighbour pairs for a merge candidate
  config.diagnostics.merge_similarity = 0.95  # cosine of the two identities' centroids a merge candidate needs
  config.diagnostics.low_information_std = 8.0  # pixel std (0–255) below which a face is near-uniform
  config.diagnostics.low_quality = 0.2  # face quality score (0–1) below which a face is listed as low quality
  config.diagnostics.max_items = 1000  # longest list per finding in report.json and the page (findings.csv: all)

  config.overlap = ml_collections.ConfigDict()  # identities shared with another data set (`--overlap_with=OTHER`)
  config.overlap.source = ""  # the other set: an image folder, .lst, .rec or .npz of embeddings (same encoder)
  config.overlap.centroid_similarity = 0.7  # centred cosine of the two identities' centroids a shared pair needs
  config.overlap.margin = 0.1  # how far that cosine must stand above either identity's next-nearest one
  config.overlap.image_share = 0.5  # share of their images whose nearest image in the other set is the other's
  config.overlap.candidate_similarity = 0.5  # mutual-nearest pairs from this centred cosine are listed

  config.decisions = ml_collections.ConfigDict()  # what decisions.csv proposes (the fields of facequal_jax.Policy)
  config.decisions.suspects = "drop"  # suspected mislabelled samples: "drop", "relabel" (to the suggestion), "none"
  config.decisions.suspect_min_score = 0.35  # suspects from this score are accepted, the others left for review
  config.decisions.duplicates = "drop_one"  # near-duplicates across identities: drop the copy with the lower c_i
  config.decisions.merge_min_similarity = 0.95  # merge candidates from this centroid cosine (smaller joins larger)
  config.decisions.overlap = "drop"  # identities shared with overlap.source: "drop" or "none"
  config.decisions.low_quality = "drop"  # low-quality faces: "drop" (for review unless accepted below) or "none"
  config.decisions.accept = ("suspects", "duplicates", "overlap")  # written apply=yes; the rest apply=no (review)

  config.demo_noise_rates = (0.1, 0.2)  # the built-in default is also scored with these label-flip rates

  config.mesh = ml_collections.ConfigDict()
  config.mesh.num_devices = 0  # devices in the 1-D mesh; 0 = all (of all processes)
  return config
