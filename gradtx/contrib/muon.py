"""Muon: momentum orthogonalized by Newton-Schulz (optax.contrib's `muon`)."""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from gradtx import _checks
from gradtx._matrix import map_with_specs, matrix_view, resolve_specs
from gradtx._trees import is_none
from gradtx.base import (
    EmptyState,
    GradientTransformation,
    GradientTransformationExtraArgs,
    MaskOrFn,
    ScalarOrSchedule,
)
from gradtx.combine import chain, partition
from gradtx.numerics import safe_increment
from gradtx.optimizers.adam import adamw
from gradtx.transforms.decay import add_decayed_weights
from gradtx.transforms.scaling import scale_by_learning_rate
from gradtx.tree.moments import bias_correction, update_moment

__all__ = [
    "MuonDimensionNumbers",
    "MuonState",
    "muon",
    "scale_by_muon",
]

_PRECONDITIONINGS = ("frobenius", "spectral", "aol", "schatten")
_DEFAULT_NS_COEFFS = (3.4445, -4.7750, 2.0315)
_NS_COEFFS_PRESETS = {
    "standard": _DEFAULT_NS_COEFFS,
    "dion": (
        (4.0848, -6.8946, 2.9270),
        (3.9505, -6.3029, 2.6377),
        (3.7418, -5.5913, 2.3037),
        (2.8769, -3.1427, 1.2046),
        (2.8366, -3.0525, 1.2012),
    ),
}


class MuonDimensionNumbers(NamedTuple):
  """Which axes of a weight form the matrix of `x W = y`: reduction (input) and output axes.

  Each is an axis or a sequence of axes (negative axes count from the end); several axes are
  flattened together in the order given. The axes named by neither are batch axes, treated as
  independent matrices where the method allows it (Muon), rejected where it does not (GaLore).
  One class for both optax names: `GaLoreDimensionNumbers` is bound to it (optax keeps two
  identical classes); the shared reshaping code is in `gradtx/_matrix.py`.

  Attributes:
    reduction_axis: the input axis or axes of the matrix.
    output_axis: the output axis or axes of the matrix.

  Example:
    >>> from gradtx.contrib import MuonDimensionNumbers
    >>> MuonDimensionNumbers(reduction_axis=0, output_axis=(1, 2))
    MuonDimensionNumbers(reduction_axis=0, output_axis=(1, 2))
  """

  reduction_axis: Sequence[int] | int = 0
  output_axis: Sequence[int] | int = 1


def _check_ns_coeffs(fn: str, ns_coeffs: Any, ns_steps: Any) -> None:
  try:
    shape = np.shape(np.asarray(ns_coeffs, dtype=np.float64))
  except (TypeError, ValueError) as e:
    raise TypeError(f"gradtx.{fn}: ns_coeffs must be 3 numbers or a sequence of triples, got "
                    f"{ns_coeffs!r}.") from e
  if len(shape) not in (1, 2) or shape[-1] != 3:
    raise ValueError(f"gradtx.{fn}: ns_coeffs must have shape (3,) or (n, 3), got {shape}.")
  if len(shape) == 2 and shape[0] > ns_steps:
    raise ValueError(f"gradtx.{fn}: ns_coeffs has {shape[0]} rows of coefficients, more than "
                     f"ns_steps={ns_steps} (one row per Newton-Schulz step).")


# One Newton-Schulz step f(X) = c0 X + (c1 A + c2 A^2) X with A = X X^H (odd quintic in X).
def _ns_step(x, c):
  a = x @ x.T.conj()
  b = c[1] * a + c[2] * a @ a
  return c[0] * x + b @ x


def _aol_first_step(x, c, eps=1e-8):
  # "Almost orthogonal layer" rescaling of the rows before the first step (Boissin et al.).
  a = x @ x.T.conj()
  s = jnp.expand_dims(jax.lax.rsqrt(jnp.clip(jnp.abs(a).sum(axis=-1), min=eps)), -1)
  x, a = x * s, a * s * s.transpose(-1, -2)
  b = c[1] * a + c[2] * a @ a
  return c[0] * x + b @ x


def _schatten_first_step(x, c, eps=1e-8):
  # Schatten-4 rescaling before the first step: ||X||_S4^2 = ||X X^T||_F (Grishina et al.).
  a = x @ x.T
  s = jnp.expand_dims(jax.lax.rsqrt(jnp.clip(jnp.linalg.norm(a, ord="fro", axis=(-2, -1)),
                                             min=eps)), (0, -1))
  x, a = x * s, a * s ** 2
  b = c[1] * a + c[2] * a @ a
  return c[0] * x + b @ x


def _first_step_then_ns(first):
  return lambda i, x, c: jax.lax.cond(i == 0, lambda x: first(x, c), lambda x: _ns_step(x, c), x)


_ITERATORS = {
    "frobenius": lambda i, x, c: _ns_step(x, c),
    "spectral": lambda i, x, c: _ns_step(x, c),
    "aol": _first_step_then_ns(_aol_first_step),
    "schatten": _first_step_then_ns(_schatten_first_step),
}


def _orthogonalize(x: jax.Array, ns_coeffs: jax.Array, ns_steps: int, preconditioning: str,
                   eps: Any) -> jax.Array:
  """Newton-Schulz orthogonalization of one matrix (optax's order of operations)."""
  transposed = x.shape[0] > x.shape[1]
  if transposed:  # f(X) = f(X^T)^T: iterate on the wide side, A = X X^T is the smaller Gram.
    x = x.T
  if preconditioning == "frobenius":
    x /= jnp.linalg.norm(x, ord="fro") + eps  # X_0 = G / (||G||_F + eps)
  elif preconditioning == "spectral":
    x /= jnp.linalg.norm(x, ord=2) + eps  # X_0 = G / (||G||_2 + eps)
  step = _ITERATORS[preconditioning]
  coeffs = ns_coeffs.astype(x.dtype)
  if coeffs.ndim == 1:
    x = jax.lax.fori_loop(0, ns_steps, lambda i, x: step(i, x, coeffs), x, unroll=True)
  else:  # one row of coefficients per step
    def body(carry, c):
      i, x = carry
      return (i + 1, step(i, x, c)), None
    (_, x), _ = jax.lax.scan(body, (jnp.asarray(0, jnp.int32), x), coeffs)
  return x.T if transposed else x


def _same_spec(x: jax.Array, spec: Any) -> Any:
  """`weight_dimension_numbers=None` (or one spec): the same spec for every leaf."""
  del x
  return MuonDimensionNumbers() if spec is None else spec


class MuonState(NamedTuple):
  """State of `scale_by_muon`: step count, momentum and the Newton-Schulz coefficients.

  Attributes:
    count: int32 scalar, the step count.
    mu: the momentum, shaped like the params.
    ns_coeffs: the Newton-Schulz coefficients, shape (3,) or (n, 3).
  """

  count: jax.Array  # int32 scalar
  mu: Any  # momentum, shaped like the params
  ns_coeffs: jax.Array  # (3,) or (n, 3)


def scale_by_muon(
    ns_coeffs: Any = _DEFAULT_NS_COEFFS,
    ns_steps: int = 5,
    beta: float = 0.95,
    eps: float = 1e-8,
    mu_dtype: Any = None,
    *,
    nesterov: bool = True,
    adaptive: bool = False,
    preconditioning: str = "frobenius",
    weight_dimension_numbers: Any = None,
) -> GradientTransformationExtraArgs:
  r"""Orthogonalizes the (Nesterov) momentum of each matrix leaf by Newton-Schulz iterations.

  Muon does steepest descent under the spectral norm: it replaces the momentum :math:`M =
  U S V^T` by (approximately) :math:`U V^T`, computed without an SVD by a quintic iteration
  whose coefficients maximise the slope at zero (singular values end near 1, in about
  [0.7, 1.2], rather than exactly 1).

  .. math::
      m_t = \beta m_{t-1} + (1-\beta) g_t, \quad
      \hat m_t = \beta \frac{m_t}{1-\beta^{t+1}} + (1-\beta) \frac{g_t}{1-\beta^t}
      \;(\text{nesterov; else } \hat m_t = m_t / (1-\beta^t)), \\
      X_0 = \hat m_t / (\|\hat m_t\|_F + \epsilon), \quad
      X_{k+1} = a X_k + (b A_k + c A_k^2) X_k,\; A_k = X_k X_k^T, \quad u_t = X_K

  with :math:`(a, b, c)` = `ns_coeffs`, :math:`K` = `ns_steps`, :math:`\beta` = `beta`;
  `adaptive` scales :math:`u_t` by :math:`\langle \hat m_t, u_t \rangle` (the dual norm).

  Args:
    ns_coeffs: the coefficients :math:`(a, b, c)`, or one triple per step (shape `(n, 3)`,
      `n <= ns_steps`; then `ns_steps` is ignored).
    ns_steps: the number :math:`K \ge 0` of Newton-Schulz steps.
    beta: momentum decay in [0, 1).
    eps: added to the norm before dividing, >= 0.
    mu_dtype: dtype of the momentum (default: the params').
    nesterov: Nesterov momentum.
    adaptive: scale by the dual norm (Bernstein & Newhouse 2024).
    preconditioning: the rescaling before the iterations: 'frobenius', 'spectral', 'aol'
      (rows rescaled, Boissin et al.) or 'schatten' (Schatten-4 norm, Grishina et al.).
    weight_dimension_numbers: a `MuonDimensionNumbers`, a pytree of them (None: a leaf that is
      not a matrix, which gets the momentum without orthogonalization) or a function of the
      params returning one; the axes not named are batch axes. None: every leaf is a 2-D
      matrix.

  Returns:
    A `GradientTransformationExtraArgs` with state `MuonState(count, mu, ns_coeffs)`.

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.contrib.scale_by_muon()
    >>> u, _ = tx.update(jnp.eye(3), tx.init(jnp.zeros((3, 3))))
    >>> bool(jnp.allclose(jnp.diag(u), jnp.diag(u)[0]))
    True

  References:
    Jordan, "modded-nanogpt: Speedrunning the NanoGPT baseline", 2024.
    https://github.com/KellerJordan/modded-nanogpt

    Bernstein & Newhouse, "Old Optimizer, New Norm: An Anthology", 2024.
    https://arxiv.org/abs/2409.20325
  """
  fn = "scale_by_muon"
  _checks.check_int(fn, "ns_steps", ns_steps, 0)
  _check_ns_coeffs(fn, ns_coeffs, ns_steps)
  _checks.check_scalar(fn, "beta", beta, low=0, high=1, high_open=True)
  _checks.check_scalar(fn, "eps", eps, low=0)
  mu_dtype = _checks.check_dtype(fn, "mu_dtype", mu_dtype)
  _checks.check_bool(fn, "nesterov", nesterov)
  _checks.check_bool(fn, "adaptive", adaptive)
  _checks.check_choice(fn, "preconditioning", preconditioning, _PRECONDITIONINGS)
  coeffs_np = np.asarray(ns_coeffs)
  if coeffs_np.ndim == 2:
    coeffs_np = coeffs_np[-ns_steps:]

  def init_fn(params):
    mu = jax.tree.map(lambda p: jnp.zeros_like(p, dtype=mu_dtype), params)
    return MuonState(count=jnp.zeros([], jnp.int32), mu=mu, ns_coeffs=jnp.asarray(coeffs_np))

  # Compiled (inlined under an outer jit) so that eager calls give jit's (and optax's) values:
  # op by op, the float32 iteration rounds differently in the last bits.
  @functools.partial(jax.jit, inline=True)
  def batched(xs, ns):
    return jax.vmap(lambda x: _orthogonalize(x, ns, ns_steps, preconditioning, eps))(xs)

  def orthogonalize(path, spec, x, ns):
    if spec is None:
      return x
    view = matrix_view(fn, path, x.shape, spec)
    return view.from_matrix(batched(view.to_matrix(x), ns))

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    _checks.check_same_structure(fn, "updates", updates, "state.mu", state.mu)
    specs = resolve_specs(fn, "weight_dimension_numbers", weight_dimension_numbers, updates,
                          _same_spec)
    mu = update_moment(updates, state.mu, beta, 1)  # m_t = beta m_{t-1} + (1 - beta) g_t
    count_inc = safe_increment(state.count)
    if nesterov:  # mu_hat = beta m_t / (1 - beta^(t+1)) + (1 - beta) g_t / (1 - beta^t)
      mu_hat = jax.tree.map(
          lambda m, g: None if g is None else beta * m + (1 - beta) * g,
          bias_correction(mu, beta, safe_increment(count_inc)),
          bias_correction(updates, beta, count_inc), is_leaf=is_none)
    else:
      mu_hat = bias_correction(mu, beta, count_inc)
    new = map_with_specs(lambda p, s, x: orthogonalize(p, s, x, state.ns_coeffs), specs, mu_hat)
    if adaptive:  # u_t <- <mu_hat, u_t> u_t
      new = jax.tree.map(lambda x, y: None if x is None else jnp.sum(x.conj() * y) * y,
                         mu_hat, new, is_leaf=is_none)
    if mu_dtype is not None:
      mu = jax.tree.map(lambda m: None if m is None else m.astype(mu_dtype), mu, is_leaf=is_none)
    mu = jax.tree.map(lambda m, old: old if m is None else m, mu, state.mu, is_leaf=is_none)
    return new, MuonState(count=count_inc, mu=mu, ns_coeffs=state.ns_coeffs)

  return GradientTransformationExtraArgs(init_fn, update_fn)


def _scale_by_shape(weight_dimension_numbers: Any, consistent_rms: Any
                    ) -> GradientTransformationExtraArgs:
  """Muon's shape scaling of each matrix leaf (stateless; private in optax too):
  :math:`\\sqrt{\\max(1, n_{out}/n_{in})}`, or :math:`\\sqrt{\\max(n_{in}, n_{out})}\\,r` with
  `consistent_rms` :math:`r` (Liu et al. 2025)."""
  fn = "muon"

  def scale(path, spec, x):
    if spec is None:
      return x
    view = matrix_view(fn, path, x.shape, spec)
    fan_in, fan_out = view.fan_in, view.fan_out
    if consistent_rms is None:
      return jnp.sqrt(jnp.maximum(1, fan_out / fan_in)) * x
    return jnp.sqrt(jnp.maximum(fan_in, fan_out)) * consistent_rms * x

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    specs = resolve_specs(fn, "muon_weight_dimension_numbers", weight_dimension_numbers,
                          updates, _same_spec)
    return map_with_specs(scale, specs, updates), state

  return GradientTransformationExtraArgs(lambda params: EmptyState(), update_fn)


def muon(
    learning_rate: ScalarOrSchedule,
    ns_coeffs: Any = _DEFAULT_NS_COEFFS,
    ns_steps: int = 5,
    beta: float = 0.95,
    eps: float = 1e-8,
    weight_decay: ScalarOrSchedule = 0.0,
    weight_decay_mask: MaskOrFn | Callable | None = None,
    mu_dtype: Any = None,
    *,
    nesterov: bool = True,
    adaptive: bool = False,
    preconditioning: str = "frobenius",
    adam_b1: float = 0.9,
    adam_b2: float = 0.999,
    adam_eps_root: float = 0.0,
    adam_weight_decay: ScalarOrSchedule = 0.0,
    adam_learning_rate: ScalarOrSchedule | None = None,
    muon_weight_dimension_numbers: Any = None,
    consistent_rms: float | None = None,
    nu_dtype: Any = None,
) -> GradientTransformationExtraArgs:
  r"""Muon: Momentum Orthogonalized by Newton-Schulz, with AdamW for the non-matrix leaves.

  Builds `partition({'muon': chain(scale_by_muon(...), <shape scaling>,
  add_decayed_weights(weight_decay, weight_decay_mask), scale_by_learning_rate(learning_rate)),
  'adam': adamw(adam_learning_rate, adam_b1, adam_b2, eps, adam_eps_root, mu_dtype,
  adam_weight_decay, nesterov=nesterov)}, labels)`, as optax. The matrix leaves (those with a
  spec in `muon_weight_dimension_numbers`; by default every 2-D leaf) get `scale_by_muon`
  (see there for the update) scaled by :math:`\sqrt{\max(1, n_{out}/n_{in})}` (or
  :math:`\sqrt{\max(n_{in}, n_{out})}\,r` with `consistent_rms` :math:`r`); the others AdamW.

  Args:
    learning_rate: a float, array or schedule.
    ns_coeffs, ns_steps, beta, eps, mu_dtype, nesterov, adaptive, preconditioning: as in
      `scale_by_muon`; `ns_coeffs` may also name a preset: 'standard' or 'dion'. `eps`,
      `mu_dtype` and `nesterov` also go to AdamW.
    weight_decay: decoupled weight decay of the matrix leaves (a float, array or schedule).
    weight_decay_mask: which matrix leaves to decay (a pytree of bools or a function).
    adam_b1, adam_b2, adam_eps_root, adam_weight_decay: AdamW's hyperparameters.
    adam_learning_rate: AdamW's learning rate; None: `learning_rate`.
    muon_weight_dimension_numbers: a `MuonDimensionNumbers`, a pytree of them with None for the
      AdamW leaves, or a function of the params returning one; None: the 2-D leaves.
    consistent_rms: None (width scaling) or :math:`r \ge 0` (0.2 matches AdamW's RMS).
    nu_dtype: dtype of AdamW's second moment (gradtx addition; default the params').

  Returns:
    A `GradientTransformationExtraArgs` with `PartitionState` (optax's layout).

  Example:
    >>> import jax.numpy as jnp, gradtx
    >>> tx = gradtx.contrib.muon(0.1)
    >>> params = {'w': jnp.ones((2, 3)), 'b': jnp.zeros(3)}
    >>> u, _ = tx.update(params, tx.init(params), params)
    >>> u['b'].shape, u['w'].shape
    ((3,), (2, 3))

  References:
    Jordan, "modded-nanogpt: Speedrunning the NanoGPT baseline", 2024.
    https://github.com/KellerJordan/modded-nanogpt

    Liu et al., "Muon is Scalable for LLM Training", 2025. https://arxiv.org/abs/2502.16982
  """
  fn = "muon"
  _checks.check_scalar(fn, "learning_rate", learning_rate, schedule=True)
  _checks.check_scalar(fn, "adam_learning_rate", adam_learning_rate, schedule=True,
                       optional=True)
  _checks.check_scalar(fn, "consistent_rms", consistent_rms, low=0, optional=True)
  if isinstance(ns_coeffs, str):
    _checks.check_choice(fn, "ns_coeffs", ns_coeffs, tuple(_NS_COEFFS_PRESETS))
    ns_coeffs = _NS_COEFFS_PRESETS[ns_coeffs]
  if adam_learning_rate is None:
    adam_learning_rate = learning_rate
  user_specs = muon_weight_dimension_numbers

  def specs(tree):  # the user's specs, or a spec for each 2-D leaf
    return resolve_specs(fn, "muon_weight_dimension_numbers", user_specs, tree,
                         lambda x, s: (s or MuonDimensionNumbers()) if (
                             s is not None or x.ndim == 2) else None)

  def labels(params):
    return jax.tree.map(lambda p, s: "adam" if s is None else "muon", params, specs(params))

  return partition(
      {
          "muon": chain(
              scale_by_muon(ns_coeffs, ns_steps, beta, eps, mu_dtype, nesterov=nesterov,
                            adaptive=adaptive, preconditioning=preconditioning,
                            weight_dimension_numbers=specs),
              _scale_by_shape(specs, consistent_rms),
              add_decayed_weights(weight_decay, weight_decay_mask),
              scale_by_learning_rate(learning_rate),
          ),
          "adam": adamw(adam_learning_rate, adam_b1, adam_b2, eps, adam_eps_root, mu_dtype,
                        adam_weight_decay, nesterov=nesterov, nu_dtype=nu_dtype),
      },
      labels,
  )
