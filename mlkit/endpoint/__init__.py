"""Local emulation of the SageMaker TensorFlow Serving container (one model, one process).

Modules, in request order:

* :mod:`~mlkit.endpoint.server`: the HTTP server (``/ping``, ``/invocations``, payload cap, latencies);
* :mod:`~mlkit.endpoint.container`: the container's request path (``code/inference.py`` handlers, or
  nginx's conversions without them) and its error statuses;
* :mod:`~mlkit.endpoint.tfs`: TF Serving's REST predict API over the SavedModel's signature;
* :mod:`~mlkit.endpoint.model_dir`: unpacking ``model.tar.gz`` and validating its layout;
* :mod:`~mlkit.endpoint.stats`: per-request latencies for SageMaker's endpoint metrics;
* :mod:`~mlkit.endpoint.testing`: a tiny model with the kit's model contract, for tests.

Only ``tfs`` (and ``testing``) import TensorFlow, when a model is loaded.
"""

from mlkit.endpoint.model_dir import EndpointLoadError, ModelLayout, ModelLayoutError
from mlkit.endpoint.server import EndpointServer
from mlkit.endpoint.stats import EndpointStats, InvocationRecord, StatsSnapshot

__all__ = [
    "EndpointLoadError",
    "EndpointServer",
    "EndpointStats",
    "InvocationRecord",
    "ModelLayout",
    "ModelLayoutError",
    "StatsSnapshot",
]
