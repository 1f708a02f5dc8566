"""What every Ray worker imports before it takes work, when the cluster was started with
``RAY_preload_python_modules=pipelines._ray.preload`` (``pipelines/serve.env``).

A replica then starts on a warm worker (:mod:`pipelines._ray.warm`) with Serve's replica code,
isvc and the default runtime (scikit-learn) already imported: ~3 s of imports on this machine
that a cold start no longer waits for. Each worker pays them once at its own start, in the
background (≈ 230 MB resident with them). Another runtime's libraries load at model load as
before; set ``RAY_preload_python_modules`` yourself to add them (a value in the environment
wins over serve.env).
"""

import ray.serve._private.replica  # noqa: F401 - the replica actor's own module
import sklearn.ensemble  # noqa: F401
import sklearn.linear_model  # noqa: F401
import sklearn.pipeline  # noqa: F401
import sklearn.preprocessing  # noqa: F401

import pipelines._ray.deployments  # noqa: F401
