"""Projections onto l1 and l2 balls and spheres of a whole pytree (one vector of all its leaves).

The l1 ones go through the simplex projection (signs times the projection of the magnitudes);
the l2 ones rescale. The arithmetic is optax 0.2.8's, so results are bit-identical to optax's.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from gradtx import tree as tree_math
from gradtx._checks import check_scalar
from gradtx.projections.simplex import projection_simplex

__all__ = [
    "projection_l1_ball",
    "projection_l1_sphere",
    "projection_l2_ball",
    "projection_l2_sphere",
]


def projection_l1_sphere(tree: Any, scale: Any = 1) -> Any:
  r"""Projection onto the l1 sphere of radius `scale`.

  The magnitudes are projected onto the simplex of sum `scale`, and the signs kept:

  .. math::
    \operatorname{argmin}_y \|x - y\|_2^2 \quad \text{subject to} \quad \|y\|_1 = \text{scale}
    \qquad\Longrightarrow\qquad y = \operatorname{sign}(x) \odot
    \Pi_{\Delta_\text{scale}}(|x|)

  (a minimiser; zero elements of :math:`x` stay 0, so :math:`x = 0` maps to 0, as optax).

  Args:
    tree: the pytree :math:`x` to project (at least one element).
    scale: the radius, a scalar > 0.

  Returns:
    The projection, a pytree of the structure and dtypes of `tree`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> gradtx.projections.projection_l1_sphere({'w': jnp.array([-2., 1.])})
    {'w': Array([-1.,  0.], dtype=float32)}

  References:
    J. Duchi, S. Shalev-Shwartz, Y. Singer and T. Chandra, `Efficient Projections onto the
    l1-Ball for Learning in High Dimensions <https://dl.acm.org/doi/10.1145/1390156.1390191>`_,
    ICML 2008 (section 4).
  """
  check_scalar("projections.projection_l1_sphere", "scale", scale, low=0, low_open=True)
  magnitudes = jax.tree.map(jnp.abs, tree)
  signs = jax.tree.map(jnp.sign, tree)
  return tree_math.mul(signs, projection_simplex(magnitudes, scale))


def projection_l1_ball(tree: Any, scale: Any = 1) -> Any:
  r"""Projection onto the l1 ball of radius `scale`.

  Inside the ball a point is its own projection; outside, it projects onto the sphere
  (`projection_l1_sphere`, through the simplex):

  .. math::
    \operatorname{argmin}_y \|x - y\|_2^2 \quad \text{subject to} \quad \|y\|_1 \le \text{scale}
    \qquad\Longrightarrow\qquad y = \begin{cases} x & \|x\|_1 \le \text{scale} \\
    \operatorname{sign}(x) \odot \Pi_{\Delta_\text{scale}}(|x|) & \text{else} \end{cases}

  Args:
    tree: the pytree :math:`x` to project (at least one element).
    scale: the radius, a scalar > 0.

  Returns:
    The projection, a pytree of the structure and dtypes of `tree`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> y = gradtx.projections.projection_l1_ball({'w': jnp.array([2.5, 3.2]), 'b': 0.5})
    >>> round(float(gradtx.tree.norm(y, ord=1)), 6)
    1.0

  References:
    J. Duchi, S. Shalev-Shwartz, Y. Singer and T. Chandra, `Efficient Projections onto the
    l1-Ball for Learning in High Dimensions <https://dl.acm.org/doi/10.1145/1390156.1390191>`_,
    ICML 2008 (section 4).
  """
  check_scalar("projections.projection_l1_ball", "scale", scale, low=0, low_open=True)
  l1_norm = tree_math.norm(tree, ord=1)
  return jax.lax.cond(l1_norm <= scale, lambda t: t, lambda t: projection_l1_sphere(t, scale),
                      tree)


def projection_l2_sphere(tree: Any, scale: Any = 1) -> Any:
  r"""Projection onto the l2 sphere of radius `scale`: the pytree rescaled to that norm.

  .. math::
    \operatorname{argmin}_y \|x - y\|_2^2 \quad \text{subject to} \quad \|y\|_2 = \text{scale}
    \qquad\Longrightarrow\qquad y = \frac{\text{scale}}{\|x\|_2}\, x

  Every point of the sphere is nearest to :math:`x = 0`, which gives NaN (as optax).

  Args:
    tree: the pytree :math:`x` to project.
    scale: the radius, a finite scalar >= 0.

  Returns:
    The projection, a pytree of the structure of `tree`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> gradtx.projections.projection_l2_sphere({'w': jnp.array([3., 4.])})
    {'w': Array([0.6, 0.8], dtype=float32)}

  References:
    N. Parikh and S. Boyd, `Proximal Algorithms
    <https://web.stanford.edu/~boyd/papers/prox_algs.html>`_, Foundations and Trends in
    Optimization 1(3), 2014, section 6.2 (projections onto balls).
  """
  check_scalar("projections.projection_l2_sphere", "scale", scale, low=0)
  factor = scale / tree_math.norm(tree)
  return tree_math.scale(factor, tree)


def projection_l2_ball(tree: Any, scale: Any = 1) -> Any:
  r"""Projection onto the l2 ball of radius `scale`: the pytree shrunk to that norm if longer.

  .. math::
    \operatorname{argmin}_y \|x - y\|_2^2 \quad \text{subject to} \quad \|y\|_2 \le \text{scale}
    \qquad\Longrightarrow\qquad
    y = \frac{\text{scale}}{\sqrt{\max(\|x\|_2^2, \text{scale}^2)}}\, x

  Args:
    tree: the pytree :math:`x` to project.
    scale: the radius, a finite scalar >= 0.

  Returns:
    The projection, a pytree of the structure of `tree`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> gradtx.projections.projection_l2_ball({'w': jnp.array([3., 4.])})
    {'w': Array([0.6, 0.8], dtype=float32)}

  References:
    N. Parikh and S. Boyd, `Proximal Algorithms
    <https://web.stanford.edu/~boyd/papers/prox_algs.html>`_, Foundations and Trends in
    Optimization 1(3), 2014, section 6.2 (projections onto balls).
  """
  check_scalar("projections.projection_l2_ball", "scale", scale, low=0)
  squared_norm = tree_math.norm(tree, squared=True)
  factor = scale / jnp.sqrt(jnp.maximum(squared_norm, scale**2))
  return tree_math.scale(factor, tree)
