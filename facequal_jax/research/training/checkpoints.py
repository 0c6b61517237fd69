"""Orbax checkpoints of a training state: the last three kept, saved every `checkpoint_every` steps."""
import orbax.checkpoint as ocp


def manager(directory: str, checkpoint_every: int) -> ocp.CheckpointManager:
  """A synchronous manager of `directory` (an absolute path) keeping the newest three states."""
  options = ocp.CheckpointManagerOptions(save_interval_steps=checkpoint_every, max_to_keep=3,
                                         enable_async_checkpointing=False)
  return ocp.CheckpointManager(directory, options=options)


def save(checkpoints: ocp.CheckpointManager, state, force: bool = False) -> None:
  """Saves `state` (a pytree with an integer `step`) when its step is due, or now with `force`."""
  checkpoints.save(int(state.step), args=ocp.args.StandardSave(state), force=force)


def restore_latest(checkpoints: ocp.CheckpointManager, state):
  """The newest saved state (shaped and sharded like `state`), or `state` itself if none was saved."""
  step = checkpoints.latest_step()
  if step is None:
    return state
  return checkpoints.restore(step, args=ocp.args.StandardRestore(state))
