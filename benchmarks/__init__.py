"""Benchmarks: our Ray Serve pipeline against KServe's own two-process pipeline (``make bench``)."""
