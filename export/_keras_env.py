"""Put ``TF_USE_LEGACY_KERAS=1`` in force before TensorFlow is first imported.

tensorflow-model-optimization needs Keras 2 (the ``tf_keras`` package). ``export``
imports this module first and ``edgeprune`` imports it from here (``export`` is the lower
package: it never imports ``edgeprune``), so no user has to set the variable.
"""

import os
import sys
import warnings

if "tensorflow" in sys.modules and os.environ.get("TF_USE_LEGACY_KERAS") != "1":
    warnings.warn(
        "TensorFlow was imported before export / edgeprune without TF_USE_LEGACY_KERAS=1; "
        "import export or edgeprune first (or set TF_USE_LEGACY_KERAS=1) so tfmot uses "
        "tf_keras.",
        stacklevel=2,
    )
os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
