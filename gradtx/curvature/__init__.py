"""gradtx.curvature: matrix-free Hessian, Gauss-Newton and Fisher operators and their spectra,
sharpness and loss landscapes (gradtx's own namespace).

Each family lives in its own file; this file only gathers their names.
"""

from gradtx.curvature.estimators import (
    hutchinson_diagonal,
    hutchinson_trace,
)
from gradtx.curvature.kronecker import (
    KroneckerLayer,
    find_layers,
    kronecker_factors,
)
from gradtx.curvature.lanczos import (
    bottom_eigenvalues,
    lanczos,
    spectral_density,
    top_eigenvalues,
)
from gradtx.curvature.landscape import (
    filter_normalized_direction,
    interpolate,
    landscape_1d,
    landscape_2d,
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
    matrix_inverse_pth_root,
    power_iteration,
)
from gradtx.curvature.sharpness import (
    keskar_sharpness,
)

__all__ = [
    "CurvatureMonitorState",
    "KroneckerLayer",
    "LinearOperator",
    "bottom_eigenvalues",
    "curvature_monitor",
    "filter_normalized_direction",
    "find_layers",
    "fisher",
    "gauss_newton",
    "hessian",
    "hutchinson_diagonal",
    "hutchinson_trace",
    "interpolate",
    "keskar_sharpness",
    "kronecker_factors",
    "lanczos",
    "landscape_1d",
    "landscape_2d",
    "matrix_inverse_pth_root",
    "power_iteration",
    "spectral_density",
    "top_eigenvalues",
]
