"""The compiled kernels: the moment sums (src/gradfit/numerics/_kernels.c) and the L1/quantile interior
point (src/gradfit/solvers/ipm/_fnb.c, with its pass kernels in _passes.c); everything else is in pyproject.toml.

The extension is optional: where it cannot be built (no C compiler, an unsupported one) the
install goes on and gradfit uses its numpy/torch path instead (``gradfit.numerics.kernel.available()``).
"""
import sys

from setuptools import Extension, setup

flags = [] if sys.platform == "win32" else ["-O3", "-Wno-psabi", "-fno-math-errno"]  # sqrt of vectors: no errno
simd = ["src/gradfit/numerics/simd.h"]  # the vector type and AVX2 dispatch both kernels share
setup(ext_modules=[Extension("gradfit.numerics._kernels", ["src/gradfit/numerics/_kernels.c"], extra_compile_args=flags,
                             depends=simd, optional=True),
                   Extension("gradfit.solvers.ipm._fnb", ["src/gradfit/solvers/ipm/_fnb.c",
                                                         "src/gradfit/solvers/ipm/_passes.c"], extra_compile_args=flags,
                             depends=simd + ["src/gradfit/solvers/ipm/_passes_tile.h",
                                             "src/gradfit/solvers/ipm/_fnb_kernels.h"], optional=True)])
