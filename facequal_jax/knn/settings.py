"""`SearchSettings`: how an exact k-NN search runs, validated once.

Every search entry point (`knn`, `streaming_knn`, `intrinsic_quality`, the
command's `knn` config section) takes one of these, or the same fields as
keyword arguments, which `SearchSettings.merged` folds into one. The settings
change how the work is done, never the answer: every valid combination returns
the exact float32 top-k with ties broken by lower row index.
"""
import dataclasses
from typing import Optional

import jax

from facequal_jax.errors import UsageError

PRECISIONS = ("float32", "bfloat16")
KERNELS = ("auto", "xla", "pallas", "pallas_interpret")


def _check_positive_int(name: str, value, minimum: int) -> None:
  if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
    raise UsageError(f"{name} must be an integer >= {minimum}, got {value!r}")


@dataclasses.dataclass(frozen=True)
class SearchSettings:
  """Options of the exact cosine k-NN search.

  Attributes:
    precision: "float32" (scores at HIGHEST float32 precision) or "bfloat16"
      (bf16 candidates rescored in float32 and certified; still exact).
    margin: extra bf16 candidates kept per row before rescoring.
    block: rows per query / database tile of the XLA path, and rows per
      rescoring tile of the fused Pallas kernel. The kernel itself walks its
      own fixed 128 × 256 blocks (the shape measured fastest on an H200, see
      `benchmarks/fused_tiles.py`) inside each chunk of `block · chunk_tiles`
      rows, so there `block` only sets how the work is chunked.
    chunk_tiles: query tiles per device per jitted call (progress granularity).
    symmetric: self searches score each pair of rows once for both (half the
      FLOPs, XLA path only; the Pallas kernel runs the ring path).
    kernel: "auto" (the fused Pallas kernel for bf16 on GPU when d is a power
      of two >= 16, else XLA), "xla", "pallas", or "pallas_interpret" (the
      kernel in Pallas interpret mode, for CPU tests).
  """
  precision: str = "float32"
  margin: int = 32
  block: int = 2048
  chunk_tiles: int = 4
  symmetric: bool = True
  kernel: str = "auto"

  def __post_init__(self):
    if self.precision not in PRECISIONS:
      raise UsageError(f"precision must be one of {', '.join(map(repr, PRECISIONS))}, got {self.precision!r}")
    if self.kernel not in KERNELS:
      raise UsageError(f"kernel must be one of {', '.join(map(repr, KERNELS))}, got {self.kernel!r}")
    if self.kernel.startswith("pallas") and self.precision != "bfloat16":
      raise UsageError(f"kernel={self.kernel!r} makes bf16 candidates: use precision='bfloat16' with it")
    _check_positive_int("margin", self.margin, 0)
    _check_positive_int("block", self.block, 16)
    _check_positive_int("chunk_tiles", self.chunk_tiles, 1)
    if not isinstance(self.symmetric, bool):
      raise UsageError(f"symmetric must be True or False, got {self.symmetric!r}")

  @classmethod
  def merged(cls, settings: Optional["SearchSettings"] = None, **overrides) -> "SearchSettings":
    """`settings` (default: the defaults) with every override that is not None applied, validated."""
    settings = settings or cls()
    if not isinstance(settings, cls):
      raise TypeError(f"settings must be a SearchSettings, got {type(settings).__name__}")
    unknown = set(overrides) - {field.name for field in dataclasses.fields(cls)}
    if unknown:
      raise TypeError(f"unknown search settings {sorted(unknown)}")
    return dataclasses.replace(settings, **{name: value for name, value in overrides.items() if value is not None})

  @property
  def bf16(self) -> bool:
    return self.precision == "bfloat16"

  def candidates_kept(self, k: int) -> int:
    """Candidates each row keeps while searching: k, or k + margin for bf16 (rescored afterwards)."""
    return k + self.margin if self.bf16 else k

  def kernel_for(self, dim: int) -> str:
    """The kernel that runs for d = `dim`: "auto" resolved for this backend."""
    if self.kernel != "auto":
      return self.kernel
    fits = dim >= 16 and dim & (dim - 1) == 0  # Triton's dot needs a power of two >= 16
    return "pallas" if self.bf16 and jax.default_backend() == "gpu" and fits else "xla"

  def float32_recompute(self) -> "SearchSettings":
    """The settings that recompute rows whose bf16 candidates were not certified."""
    return dataclasses.replace(self, precision="float32", kernel="xla")
