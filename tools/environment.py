"""The environment the site build and the test suite run chapters in.

``single_threaded_blas()`` sets, where they are not set already, the variables that make
numpy's BLAS (OpenBLAS, MKL, or OpenMP builds) use one thread in every process started from
here: notebook kernels, milestone scripts. On a 2-core machine shared with other work, a
multi-threaded BLAS spends most of its time waiting for descheduled threads: the small
matrices of the chapters then run 5 to 30 times slower, unpredictably, and a page can exceed
its cell timeout. One thread gives every page the same, steady budget. Chapters that study
threads (17 Acceleration) set the count themselves with threadpoolctl.
"""
from __future__ import annotations

import os

BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def single_threaded_blas() -> None:
    """Default every BLAS thread variable to 1 for child processes (an explicit value wins)."""
    for name in BLAS_THREAD_VARIABLES:
        os.environ.setdefault(name, "1")
