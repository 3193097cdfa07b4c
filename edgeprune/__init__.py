"""edgeprune: Global Magnitude Pruning with a Minimum Threshold, from Keras to a microcontroller.

Importing this package sets ``TF_USE_LEGACY_KERAS=1`` before TensorFlow loads (the guard
lives in ``export._keras_env``); all Keras code in the project uses ``import tf_keras as keras``.
"""

from export import _keras_env  # noqa: F401  (must run before TensorFlow is imported)

__version__ = "0.1.0"
