"""The one error type of `svp_jax.data`."""


class DataError(Exception):
  """A dataset is missing, malformed or cannot be prepared here.

  The message says which dataset, where it was looked for and how to provide
  it, so that a run fails at once with something the user can act on.
  """
