r"""Intrinsic Quality of one embedding set.

Built-in default (the bundled ORL faces, detected, aligned and embedded by the pretrained face network):

  python -m facequal_jax --config=configs/iq.py --workdir=/tmp/iq_orl

Your own embeddings (an .npz with `embeddings` [N, d] and `labels` [N]), on a
10k-sample stratified identity subset, bf16 candidates:

  python -m facequal_jax --config=configs/iq.py --workdir=/tmp/iq \
      --config.data.embeddings=emb.npz --config.subset.size=10000 \
      --config.knn.precision=bfloat16
"""
import ml_collections


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  """`arg` is unused; every field can be overridden with --config.FIELD=VALUE."""
  del arg
  config = ml_collections.ConfigDict()

  config.data = ml_collections.ConfigDict()
  config.data.embeddings = ""  # .npz path; if no source is given: bundled ORL faces.
  # Face images instead (exactly one): an image folder ROOT/<identity>/<image>,
  # an insightface/MXNet .rec pack, or a TFDS dataset name with its data_dir.
  config.data.images = ""
  config.data.rec = ""
  config.data.tfds = ""
  config.data.tfds_dir = ""
  config.data.tfds_split = "train"
  config.data.label_noise = 0.0  # fraction of labels flipped to another identity.
  config.data.max_images_per_identity = 0  # 0 = no cap.
  config.data.noise_seed = 0

  config.preprocess = ml_collections.ConfigDict()
  # "detect" (dlib's detector + five landmarks; centred crop where no face is found), "arcface" (crops already
  # aligned to the ArcFace template), "centre", or "auto": "arcface" for .rec packs, else "detect".
  config.preprocess.align = "auto"
  config.preprocess.size = 150  # output side in pixels (the face network's chip).
  config.preprocess.crop = 0  # centred square of this many source pixels; 0 = largest.
  config.preprocess.channels = "rgb"  # or "grey".

  config.encoder = ml_collections.ConfigDict()
  # "face_resnet" (the pretrained face network; eigenfaces without the extra `faces`), "eigenfaces", or the
  # path of an encoder.msgpack from train/pretrain.py.
  config.encoder.name = "face_resnet"
  config.encoder.dim = 128  # eigenfaces kept.
  config.encoder.fit_images = 2000  # images the eigenfaces are fitted on.

  config.extract = ml_collections.ConfigDict()
  config.extract.batch_size = 256
  config.extract.chunk_rows = 4096  # images per resumable chunk file.
  config.extract.workers = 0  # decoding threads; 0 = one per core.
  config.extract.dir = ""  # where the resumable chunks go; "" = WORKDIR/embeddings (the result always goes there).

  config.k = 10  # neighbours per sample.
  config.alpha = 0.2  # IQ = alpha · Consis + (1 − alpha) · r̃.
  config.singletons = "exclude"  # or "include": single-image identities in Consis.

  config.subset = ml_collections.ConfigDict()
  config.subset.size = 0  # 0 = every row; else a stratified identity subset.
  config.subset.images_per_identity = 0  # 0 = k + 1.
  config.subset.min_images = 2
  config.subset.seed = 0

  config.knn = ml_collections.ConfigDict()  # the fields of facequal_jax.SearchSettings, validated before any work
  config.knn.precision = "float32"  # or "bfloat16" (rescored, still exact).
  config.knn.margin = 32  # extra bf16 candidates per row.
  config.knn.block = 2048  # rows per tile (the Pallas kernel keeps its own blocks; there it sets the chunks).
  config.knn.chunk_tiles = 4  # query tiles per device per step (progress granularity).
  config.knn.symmetric = True  # score each pair once for both rows (half the FLOPs).
  config.knn.kernel = "auto"  # "auto" (fused Pallas for bf16 on GPU), "xla", "pallas".

  config.diagnostics = ml_collections.ConfigDict()  # see facequal_jax.diagnostics.Thresholds
  config.diagnostics.mislabel_share = 0.5  # one foreign identity holds at least this share of the k slots.
  config.diagnostics.duplicate_similarity = 0.98  # cosine of cross-identity near-duplicates.
  config.diagnostics.outlier_z = -3.5  # robust z of the mean neighbour cosine.
  config.diagnostics.merge_links = 1  # mutual cross-identity nearest-neighbour pairs for a merge candidate,
  config.diagnostics.merge_similarity = 0.95  # and the cosine its identities' centroids need at least.
  config.diagnostics.low_information_std = 8.0  # pixel std (0-255) below which a face is near-uniform.
  config.diagnostics.max_items = 1000  # longest list per finding.
  # The built-in default is also scored with these label-flip rates injected, to show what noise does.
  config.demo_noise_rates = (0.1, 0.2)

  config.mesh = ml_collections.ConfigDict()
  config.mesh.num_devices = 0  # 0 = all devices (of all processes).
  return config
