"""gradtx.curvature: matrix-free Hessian, Gauss-Newton and Fisher operators and their spectra
(filled by the curvature issue)."""

__all__: list[str] = []
