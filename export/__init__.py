"""export: int8 TFLite, TFLite Micro arrays, and edgeprune's integer-only sparse C model.

Importing this package sets ``TF_USE_LEGACY_KERAS=1`` before TensorFlow loads
(``export._keras_env``). ``export`` does not import ``edgeprune`` (the dependency runs the
other way); it imports ``har_data.atomic``, the one atomic-write helper, from the lowest
layer.
"""

from export import _keras_env  # noqa: F401  (must run before TensorFlow is imported)
