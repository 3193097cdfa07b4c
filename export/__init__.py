"""export: int8 TFLite, TFLite Micro arrays, and edgeprune's integer-only sparse C model."""

from edgeprune import _keras_env  # noqa: F401  (must run before TensorFlow is imported)
