"""KServe's own two-process churn pipeline (transformer → HTTP → predictor), the benchmark's peer.

The two scripts here run under the ``kserve`` package from PyPI in its own venv
(``.bench/kserve-venv``); ``benchmarks/_servers.py`` installs it and starts them.
"""
