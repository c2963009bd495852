"""Update rules written in Bello et al.'s grammar, compiled into gradient transformations.

An expression such as ``"exp(sign(g) * sign(m)) * g"`` (PowerSign) is tokenized, parsed by a
recursive-descent parser (no ``eval``) into a small tree of operands, unary functions and binary
operations, and evaluated element-wise on every leaf of the updates. The same table of
primitives drives `search_update_rules`'s vmapped interpreter, so a rule found by the search and
the same rule compiled from its string compute the same numbers.
"""

from __future__ import annotations

import math
import re
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from gradtx import _checks, tree
from gradtx._trees import is_none
from gradtx.base import GradientTransformation
from gradtx.numerics import safe_increment

__all__ = ["ScaleByUpdateRuleState", "update_rule"]

_FN = "learned.update_rule"


# --- the grammar's primitives ---------------------------------------------------------------

class _Leaf(NamedTuple):
  """What an expression sees at one leaf: the gradient, both moments (raw and bias-corrected),
  the step `t` (0-based), the decays, `eps` and the leaf's random key (for `drop`)."""

  g: jax.Array
  mu: jax.Array
  nu: jax.Array
  mu_hat: jax.Array
  nu_hat: jax.Array
  eps: Any
  decays: dict
  key: jax.Array


def _adam(c: _Leaf) -> jax.Array:
  return c.mu_hat / (jnp.sqrt(c.nu_hat) + c.eps)  # Kingma & Ba: m_hat / (sqrt(v_hat) + eps)


# Operands: name -> value at a leaf. `g2`/`g3` are powers of the gradient, `m`/`v` the moving
# averages of g and g^2 (rates b1, b2), `mhat`/`vhat` their bias-corrected forms (Bello et al.'s
# operands), `adam` and `rmsprop` the paper's composite operands, `ld`/`cd`/`rd` its decays.
OPERANDS: dict[str, Callable[[_Leaf], Any]] = {
    "g": lambda c: c.g,
    "g2": lambda c: c.g * c.g,
    "g3": lambda c: c.g * c.g * c.g,
    "m": lambda c: c.mu,
    "v": lambda c: c.nu,
    "mhat": lambda c: c.mu_hat,
    "vhat": lambda c: c.nu_hat,
    "adam": _adam,
    "rmsprop": lambda c: c.g / (jnp.sqrt(c.nu_hat) + c.eps),
    "eps": lambda c: c.eps,
    "ld": lambda c: c.decays["ld"],
    "cd": lambda c: c.decays["cd"],
    "rd": lambda c: c.decays["rd"],
}
DECAYS = ("cd", "ld", "rd")


def drop_uniform(key: jax.Array, like: jax.Array) -> jax.Array:
  """The uniforms a `drop` compares with its probability (one draw per drop site and leaf)."""
  return jax.random.uniform(key, jnp.shape(like), jnp.float32)


def _drop(x: jax.Array, p: float, u: jax.Array) -> jax.Array:
  # Bello et al.'s drop(x, p): each entry is zeroed with probability p (no rescaling).
  return jnp.where(u >= p, x, jnp.zeros_like(x))


# Unary functions: name -> (f(x, argument, uniforms), whether it takes a numeric second argument).
# The paper's Table 1: x, -x, e^x, log|x|, sqrt|x|, clip(x, a), drop(x, p), sign(x); plus abs.
UNARY: dict[str, tuple[Callable[..., Any], bool]] = {
    "neg": (lambda x, a, k: -x, False),
    "exp": (lambda x, a, k: jnp.exp(x), False),
    "log": (lambda x, a, k: jnp.log(jnp.abs(x)), False),
    "sqrt": (lambda x, a, k: jnp.sqrt(jnp.abs(x)), False),
    "sign": (lambda x, a, k: jnp.sign(x), False),
    "abs": (lambda x, a, k: jnp.abs(x), False),
    "clip": (lambda x, a, k: jnp.clip(x, -a, a), True),
    "drop": (lambda x, a, k: _drop(x, a, k), True),
}

# Binary operations: the infix + - * / ^ and the functions max, min.
BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "+": lambda x, y: x + y,
    "-": lambda x, y: x - y,
    "*": lambda x, y: x * y,
    "/": lambda x, y: x / y,
    "^": lambda x, y: jnp.power(x, y),
    "max": jnp.maximum,
    "min": jnp.minimum,
}
_BINARY_FUNCTIONS = ("max", "min")


# --- tokenizer and recursive-descent parser ---------------------------------------------------

_TOKEN = re.compile(r"\s*(?:(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)|(?P<name>[A-Za-z_]\w*)"
                    r"|(?P<op>[-+*/^(),]))")


class _Tok(NamedTuple):
  kind: str  # "num", "name", "op" or "end"
  text: str
  pos: int


def _syntax_error(expr: str, tok: _Tok, what: str) -> ValueError:
  shown = "end of expression" if tok.kind == "end" else f"token {tok.text!r}"
  return ValueError(
      f"gradtx.{_FN}: {what}: {shown} at position {tok.pos} in {expr!r}\n  {expr}\n  "
      f"{' ' * tok.pos}^\nOperands: {', '.join(OPERANDS)} and numbers; functions: "
      f"{', '.join(list(UNARY) + list(_BINARY_FUNCTIONS))}; infix + - * / ^ and parentheses.")


def _tokenize(expr: str) -> list[_Tok]:
  toks, pos = [], 0
  while pos < len(expr):
    if expr[pos:].strip() == "":
      break
    match = _TOKEN.match(expr, pos)
    if match is None or match.end() == pos:
      start = pos + len(expr[pos:]) - len(expr[pos:].lstrip())
      raise _syntax_error(expr, _Tok("op", expr[start], start), "character outside the grammar")
    kind = match.lastgroup
    toks.append(_Tok(kind, match.group(kind), match.start(kind)))
    pos = match.end()
  toks.append(_Tok("end", "", len(expr)))
  return toks


# AST nodes: ("num", value) | ("operand", name) | ("unary", name, child, argument, drop_index)
# | ("binary", op, left, right).

class _Parser:
  """expr := term (('+' | '-') term)*;  term := factor (('*' | '/') factor)*;
  factor := '-' factor | power;  power := atom ('^' factor)?;
  atom := number | operand | name '(' expr [',' number] ')' | '(' expr ')'."""

  def __init__(self, expr: str):
    self.expr, self.toks, self.i, self.drops = expr, _tokenize(expr), 0, 0

  def peek(self) -> _Tok:
    return self.toks[self.i]

  def take(self) -> _Tok:
    tok = self.toks[self.i]
    self.i += 1
    return tok

  def expect(self, text: str) -> None:
    tok = self.take()
    if tok.text != text or tok.kind == "end":
      raise _syntax_error(self.expr, tok, f"expected {text!r}")

  def parse(self):
    if self.peek().kind == "end":
      raise _syntax_error(self.expr, self.peek(), "empty expression")
    node = self.sum()
    if self.peek().kind != "end":
      raise _syntax_error(self.expr, self.peek(), "unexpected")
    return node

  def sum(self):
    node = self.product()
    while self.peek().text in ("+", "-") and self.peek().kind == "op":
      op = self.take().text
      node = ("binary", op, node, self.product())
    return node

  def product(self):
    node = self.factor()
    while self.peek().text in ("*", "/") and self.peek().kind == "op":
      op = self.take().text
      node = ("binary", op, node, self.factor())
    return node

  def factor(self):
    if self.peek().text == "-" and self.peek().kind == "op":
      self.take()
      return ("unary", "neg", self.factor(), None, None)
    return self.power()

  def power(self):
    node = self.atom()
    if self.peek().text == "^" and self.peek().kind == "op":
      self.take()
      node = ("binary", "^", node, self.factor())  # right-associative, binds tighter than -x
    return node

  def number(self) -> float:
    tok = self.take()
    if tok.kind != "num":
      raise _syntax_error(self.expr, tok, "expected a number")
    return float(tok.text)

  def atom(self):
    tok = self.take()
    if tok.kind == "num":
      return ("num", float(tok.text))
    if tok.kind == "op" and tok.text == "(":
      node = self.sum()
      self.expect(")")
      return node
    if tok.kind == "name":
      if tok.text in OPERANDS:
        return ("operand", tok.text)
      if tok.text in UNARY or tok.text in _BINARY_FUNCTIONS:
        if self.peek().text != "(":
          raise _syntax_error(self.expr, self.peek(), f"expected '(' after {tok.text!r}")
        self.take()
        if tok.text in _BINARY_FUNCTIONS:
          left = self.sum()
          self.expect(",")
          node = ("binary", tok.text, left, self.sum())
        else:
          drop_index = None
          if tok.text == "drop":
            drop_index, self.drops = self.drops, self.drops + 1
          child, argument = self.sum(), None
          if UNARY[tok.text][1]:
            self.expect(",")
            argument = self.number()
          node = ("unary", tok.text, child, argument, drop_index)
        self.expect(")")
        return node
      raise _syntax_error(self.expr, tok, "unknown name")
    raise _syntax_error(self.expr, tok, "unexpected")


def parse(expr: str):
  """Parses `expr` into the grammar's tree (nested tuples); raises a ValueError naming the
  offending token and its position for anything outside the grammar."""
  if not isinstance(expr, str):
    raise TypeError(f"gradtx.{_FN}: expr must be a string, got {type(expr).__name__}.")
  return _Parser(expr).parse()


def _walk(node):
  yield node
  for child in node[2:4] if node[0] == "binary" else node[2:3] if node[0] == "unary" else ():
    yield from _walk(child)


def evaluate(node, c: _Leaf) -> Any:
  """The value of a parsed expression at one leaf."""
  kind = node[0]
  if kind in ("num", "operand"):  # every operand a full leaf-shaped array (as the interpreter's)
    value = node[1] if kind == "num" else OPERANDS[node[1]](c)
    return jnp.broadcast_to(jnp.asarray(value, c.g.dtype), c.g.shape)
  if kind == "unary":
    _, name, child, argument, drop_index = node
    x = evaluate(child, c)
    u = None if drop_index is None else drop_uniform(jax.random.fold_in(c.key, drop_index), x)
    return UNARY[name][0](x, argument, u)
  return BINARY[node[1]](evaluate(node[2], c), evaluate(node[3], c))


# --- the transformation -------------------------------------------------------------------

class ScaleByUpdateRuleState(NamedTuple):
  """State of `update_rule`: the step count and both moving averages.

  Both moments are always kept, whatever the rule uses, so every rule has the same state
  structure and a batch of rules vmaps.

  Attributes:
    count: int32 scalar, the number of updates so far.
    mu: the running average of the gradients (the grammar's ``m``), params-shaped.
    nu: the running average of the squared gradients (the grammar's ``v``), params-shaped.
  """

  count: jax.Array  # int32 scalar
  mu: Any
  nu: Any


def _decays(count: jax.Array, total_steps: int | None, num_periods: int) -> dict:
  """Bello et al.'s decays of the 0-based step t over T = total_steps steps with n periods."""
  if total_steps is None:
    return {}
  t, T, n = count.astype(jnp.float32), float(total_steps), float(num_periods)
  return {
      "ld": 1.0 - t / T,  # linear decay: 1 - t / T
      "cd": 0.5 * (1.0 + jnp.cos(2.0 * math.pi * n * t / T)),  # cyclical: n cosine periods
      "rd": 0.5 * (1.0 + jnp.cos(math.pi * jnp.mod(n * t, T) / T)),  # n restarts
  }


def check_rule_args(fn: str, b1: Any, b2: Any, eps: Any, total_steps: Any, num_periods: Any,
                    seed: Any) -> None:
  """The shared argument checks of `update_rule` and the search."""
  _checks.check_scalar(fn, "b1", b1, low=0, high=1, high_open=True)
  _checks.check_scalar(fn, "b2", b2, low=0, high=1, high_open=True)
  _checks.check_scalar(fn, "eps", eps, low=0)
  if total_steps is not None:
    _checks.check_int(fn, "total_steps", total_steps, 1)
  _checks.check_int(fn, "num_periods", num_periods, 1)
  _checks.check_int(fn, "seed", seed, 0)


def rule_transformation(fn: str, leaf_fn: Callable[[_Leaf], Any], b1: Any, b2: Any, eps: Any,
                        total_steps: int | None, num_periods: int, seed: int
                        ) -> GradientTransformation:
  """A transformation whose update at each leaf is `leaf_fn(_Leaf(...))` (shared by the compiled
  rules and the search's interpreter)."""

  def init_fn(params):
    return ScaleByUpdateRuleState(count=jnp.zeros([], jnp.int32), mu=tree.zeros_like(params),
                                  nu=tree.zeros_like(params))

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    _checks.check_same_structure(fn, "updates", updates, "state.mu", state.mu)
    mu = tree.update_moment(updates, state.mu, b1, 1)  # m_t = b1 m + (1 - b1) g
    nu = tree.update_moment_per_elem_norm(updates, state.nu, b2, 2)  # v_t = b2 v + (1 - b2) g^2
    count_inc = safe_increment(state.count)
    mu_hat = tree.bias_correction(mu, b1, count_inc)  # m_t / (1 - b1^t)
    nu_hat = tree.bias_correction(nu, b2, count_inc)  # v_t / (1 - b2^t)
    decays = _decays(state.count, total_steps, num_periods)
    key = jax.random.fold_in(jax.random.key(seed), state.count)
    leaves, treedef = jax.tree.flatten(updates, is_leaf=is_none)
    rest = [treedef.flatten_up_to(t) for t in (mu, nu, mu_hat, nu_hat)]
    out = []
    for i, (g, m, v, mh, vh) in enumerate(zip(leaves, *rest)):
      if g is None:
        out.append(None)
        continue
      leaf_decays = {k: d.astype(g.dtype) for k, d in decays.items()}
      c = _Leaf(g, m.astype(g.dtype), v.astype(g.dtype), mh.astype(g.dtype), vh.astype(g.dtype),
                _checks.as_dtype(eps, g), leaf_decays, jax.random.fold_in(key, i))
      u = jnp.asarray(leaf_fn(c))
      out.append(jnp.broadcast_to(u, g.shape).astype(g.dtype))
    out = jax.tree.unflatten(treedef, out)
    return out, ScaleByUpdateRuleState(count=count_inc, mu=tree.moment_like(mu, state.mu),
                                       nu=tree.moment_like(nu, state.nu))

  return GradientTransformation(init_fn, update_fn)


def update_rule(
    expr: str,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    *,
    total_steps: int | None = None,
    num_periods: int = 1,
    seed: int = 0,
) -> GradientTransformation:
  r"""Compiles an update rule of Bello et al.'s grammar into a gradient transformation.

  Neural optimizer search writes an optimizer as an expression over a few operands; this
  parses one (a tokenizer and a recursive-descent parser, never ``eval``) and returns a
  ``scale_by_*``-style transformation whose update is the expression's value, element-wise, with
  no learning rate and no sign flip: chain ``scale(-learning_rate)`` after it.

  .. math::
      m_t = \beta_1 m_{t-1} + (1 - \beta_1) g_t, \quad v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2,
      \quad \hat m_t = \frac{m_t}{1 - \beta_1^t}, \quad \hat v_t = \frac{v_t}{1 - \beta_2^t},
      \quad u_t = \mathrm{expr}(g_t, m_t, v_t, \hat m_t, \hat v_t, t)

  Grammar: operands ``g``, ``g2``, ``g3`` (powers of the gradient), ``m``, ``v`` (moving
  averages of g and g^2), ``mhat``, ``vhat`` (bias corrected), ``adam`` (``mhat / (sqrt(vhat) +
  eps)``), ``rmsprop`` (``g / (sqrt(vhat) + eps)``), ``eps``, numbers, and with `total_steps` the
  decays of the 0-based step t: ``ld`` = 1 - t/T, ``cd`` = (1 + cos(2 pi n t / T)) / 2 and
  ``rd`` = (1 + cos(pi (n t mod T) / T)) / 2 (n = `num_periods`). Unary functions ``neg``,
  ``exp``, ``log`` (of \|x\|), ``sqrt`` (of \|x\|), ``sign``, ``abs``, ``clip(x, a)`` (to
  [-a, a]), ``drop(x, p)`` (zero each entry with probability p); binary ``max(x, y)``,
  ``min(x, y)`` and infix ``+ - * / ^`` with the usual precedence, and parentheses. PowerSign
  is ``exp(sign(g) * sign(m)) * g``, AddSign ``(1 + sign(g) * sign(m)) * g``.

  Args:
    expr: the rule, a string of the grammar above.
    b1: decay of the moving average ``m`` of g, in [0, 1); a float or scalar array.
    b2: decay of the moving average ``v`` of g^2, in [0, 1); a float or scalar array.
    eps: the constant ``eps`` (>= 0); also inside ``adam`` and ``rmsprop``.
    total_steps: the horizon T of the decays; required if `expr` uses ``ld``, ``cd`` or ``rd``.
    num_periods: the decays' number of cycles / restarts n over T.
    seed: seeds ``drop``'s masks, drawn from ``fold_in(key(seed), count)`` and the leaf index.

  Returns:
    A `GradientTransformation` with state `ScaleByUpdateRuleState(count, mu, nu)` (both
    moments always, whatever the rule uses). Unknown keyword arguments of ``update`` are ignored.

  Example:
    >>> import jax.numpy as jnp
    >>> from gradtx import learned
    >>> tx = learned.update_rule("(1 + sign(g) * sign(m)) * g")  # AddSign
    >>> tx.update(jnp.asarray([1.0, -0.5]), tx.init(jnp.zeros(2)))[0].tolist()
    [2.0, -1.0]

  References:
    Bello, Zoph, Vasudevan & Le, "Neural Optimizer Search with Reinforcement Learning", ICML
    2017. https://arxiv.org/abs/1709.07417
  """
  check_rule_args(_FN, b1, b2, eps, total_steps, num_periods, seed)
  node = parse(expr)
  used = {n[1] for n in _walk(node) if n[0] == "operand"}
  if used & set(DECAYS) and total_steps is None:
    raise ValueError(f"gradtx.{_FN}: the decays {sorted(used & set(DECAYS))} in {expr!r} need "
                     f"total_steps (the horizon T), e.g. update_rule(expr, total_steps=1000).")
  return rule_transformation(_FN, lambda c: evaluate(node, c), b1, b2, eps, total_steps,
                             num_periods, seed)
