"""The optimiser every model here trains with: AdamW, linear warmup, cosine decay to 0."""
import ml_collections
import optax


def adamw_warmup_cosine(config: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """AdamW at `config.learning_rate` after `config.warmup_steps` of linear warmup, cosine-decayed to 0 at
  `config.steps`, with `config.weight_decay`."""
  schedule = optax.warmup_cosine_decay_schedule(0.0, config.learning_rate, config.warmup_steps,
                                                max(config.steps, config.warmup_steps + 1))
  return optax.adamw(schedule, weight_decay=config.weight_decay)
