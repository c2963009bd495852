"""gradtx.curvature: matrix-free Hessian, Gauss-Newton and Fisher operators and their spectra,
sharpness and loss landscapes (gradtx's own namespace).

Each family lives in its own file; this file only gathers their names.
"""

from gradtx.curvature.estimators import (
    hutchinson_diagonal,
    hutchinson_trace,
)
from gradtx.curvature.lanczos import (
    bottom_eigenvalues,
    lanczos,
    spectral_density,
    top_eigenvalues,
)
from gradtx.curvature.monitor import (
    CurvatureMonitorState,
    curvature_monitor,
)
from gradtx.curvature.operators import (
    LinearOperator,
    fisher,
    gauss_newton,
    hessian,
)
from gradtx.curvature.power import (
    power_iteration,
)

__all__ = [
    "CurvatureMonitorState",
    "LinearOperator",
    "bottom_eigenvalues",
    "curvature_monitor",
    "fisher",
    "gauss_newton",
    "hessian",
    "hutchinson_diagonal",
    "hutchinson_trace",
    "lanczos",
    "power_iteration",
    "spectral_density",
    "top_eigenvalues",
]
