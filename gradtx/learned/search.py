"""Neural optimizer search (Bello et al., ICML 2017): a controller samples update rules of the
grammar, each rule is scored by short training runs of a task, and the controller learns from
the scores (REINFORCE), with random and evolutionary search as baselines.

Each candidate has the paper's fixed shape ``b(u1(op1), u2(op2))``: five integer codes (two
operands, two unary functions, one binary operation) that a `lax.switch` interpreter evaluates,
so one jitted function scores a whole batch of rules, vmapped over the rules, the learning
rates and the task's problem instances. A rule's string (`SearchResult.rules`) compiles with
`update_rule` into the same numbers.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from gradtx import _checks
from gradtx.learned import update_rule as _rules  # the module (imported before the name)
from gradtx.learned.lstm import lstm_cell
from gradtx.learned.tasks import Task
from gradtx.update import apply_updates

__all__ = ["SearchResult", "evaluate_update_rules", "search_update_rules"]

# The search space: Bello et al.'s operands, unary functions and binary operations (Table 1,
# without the noise and weight-decay operands), each a template of `update_rule`'s grammar.
OPERANDS = ("g", "g2", "g3", "mhat", "vhat", "sign(g)", "sign(m)", "1", "2", "eps", "adam",
            "rmsprop", "ld", "cd", "rd")
UNARY = ("{x}", "neg({x})", "exp({x})", "log({x})", "sqrt({x})", "sign({x})", "clip({x}, 1e-05)",
         "clip({x}, 0.0001)", "clip({x}, 0.001)", "drop({x}, 0.1)", "drop({x}, 0.3)",
         "drop({x}, 0.5)")
BINARY = ("{x} + {y}", "{x} - {y}", "{x} * {y}", "{x} / {y}", "{x} ^ {y}", "{x}")
VOCAB = (len(OPERANDS), len(OPERANDS), len(UNARY), len(UNARY), len(BINARY))  # op1 op2 u1 u2 b
METHODS = ("reinforce", "random", "evolution")
FAILED = -10.0  # the score of a run that diverged (a loss that is not finite)


def decode(codes: Sequence[int]) -> str:
  """The rule string of five codes (op1, op2, u1, u2, b)."""
  o1, o2, u1, u2, b = (int(c) for c in codes)
  return BINARY[b].format(x=UNARY[u1].format(x=OPERANDS[o1]), y=UNARY[u2].format(x=OPERANDS[o2]))


_OPERAND_NODES = [_rules.parse(s) for s in OPERANDS]
_UNARY_NODES = [_rules.parse(s.format(x="g")) for s in UNARY]  # ("unary", name, _, arg, _) or g
_DROP = np.asarray([n[0] == "unary" and n[1] == "drop" for n in _UNARY_NODES])


def _interpret(codes: jax.Array, c: Any) -> jax.Array:
  """The value of the rule `codes` at one leaf: a `lax.switch` per slot, over the same
  primitives `update_rule` compiles (so both give the same numbers)."""
  def operand(code):
    return jax.lax.switch(code, [
        lambda n=n: _rules.evaluate(n, c) for n in _OPERAND_NODES])

  def unary(code, x, drop_index):
    # `update_rule` numbers drops left to right; one draw serves every drop branch of a slot.
    u = _rules.drop_uniform(jax.random.fold_in(c.key, drop_index), x)

    def branch(n):
      if n[0] != "unary":
        return lambda: x
      return lambda: _rules.UNARY[n[1]][0](x, n[3], u)

    return jax.lax.switch(code, [branch(n) for n in _UNARY_NODES])

  x = unary(codes[2], operand(codes[0]), 0)
  y = unary(codes[3], operand(codes[1]), jnp.asarray(_DROP)[codes[2]].astype(jnp.int32))
  binaries = [lambda f=_rules.BINARY[s.split()[1]]: f(x, y) for s in BINARY[:-1]] + [lambda: x]
  return jax.lax.switch(codes[4], binaries)


def _program(codes: jax.Array, b1: Any, b2: Any, eps: Any, total_steps: int, num_periods: int,
             seed: int):
  """The interpreter's transformation for (possibly traced) codes: equal to
  `update_rule(decode(codes), ...)`."""
  return _rules.rule_transformation("learned.search_update_rules",
                                    lambda c: _interpret(codes, c), b1, b2, eps, total_steps,
                                    num_periods, seed)


class SearchResult(NamedTuple):
  """The rules a search evaluated, best first.

  Attributes:
    rules: the distinct rules, as `update_rule` strings, ranked by score (best first).
    scores: each rule's score, the mean over problem instances of log10(initial loss / final
      loss) at its best learning rate (higher is better; a diverged run counts -10).
    learning_rates: each rule's best learning rate.
    codes: each rule's five codes (op1, op2, u1, u2, b), an int array of shape (n, 5).
    history: the best score found after each round of the search.
  """

  rules: tuple
  scores: np.ndarray
  learning_rates: np.ndarray
  codes: np.ndarray
  history: np.ndarray


def _score_fn(task: Task, num_steps: int, make_tx: Any):
  """`(rule_args, problems, params0, lrs, keys) -> scores[num_lrs]`: trains each problem
  instance from its start with `chain(make_tx(rule_args), scale(-lr))` for `num_steps` steps."""

  def run(rule_args, problem, params0, lr, keys):
    tx = make_tx(rule_args)

    def step(carry, k):
      params, state = carry
      loss, grads = jax.value_and_grad(task.loss)(params, problem, k)
      updates, state = tx.update(grads, state, params)
      return (apply_updates(params, jax.tree.map(lambda u: -lr * u, updates)), state), loss

    (params, _), losses = jax.lax.scan(step, (params0, tx.init(params0)), keys[:-1])
    final = task.loss(params, problem, keys[-1])
    ratio = jnp.log10(losses[0] / final)  # orders of magnitude the loss fell
    return jnp.where(jnp.isfinite(ratio), jnp.clip(ratio, FAILED, -FAILED), FAILED)

  def scores(rule_args, problems, params0, lrs, keys):
    per_problem = jax.vmap(run, (None, 0, 0, None, None))
    return jax.vmap(lambda lr: jnp.mean(per_problem(rule_args, problems, params0, lr, keys)))(lrs)

  return scores


def _setup(fn, task, key, num_steps, num_problems, learning_rates):
  if not isinstance(task, Task):
    raise TypeError(f"gradtx.{fn}: task must be a learned.Task, got {type(task).__name__}.")
  if not (isinstance(key, jax.Array) and key.shape == ()):
    raise TypeError(f"gradtx.{fn}: key must be a scalar jax.random.key, got {key!r}.")
  _checks.check_int(fn, "num_steps", num_steps, 1)
  _checks.check_int(fn, "num_problems", num_problems, 1)
  lrs = np.asarray(learning_rates, np.float32)
  if lrs.ndim != 1 or lrs.size == 0 or not np.all(np.isfinite(lrs)) or np.any(lrs <= 0):
    raise ValueError(f"gradtx.{fn}: learning_rates must be a non-empty sequence of positive "
                     f"numbers, got {learning_rates!r}.")
  k_problem, k_init, k_steps = jax.random.split(key, 3)
  problems = jax.vmap(task.sample)(jax.random.split(k_problem, num_problems))
  params0 = jax.vmap(task.init_params)(jax.random.split(k_init, num_problems), problems)
  keys = jax.random.split(k_steps, num_steps + 1)
  return problems, params0, jnp.asarray(lrs), keys


def evaluate_update_rules(
    task: Task,
    rules: Sequence[str],
    *,
    key: jax.Array,
    num_steps: int = 100,
    num_problems: int = 8,
    learning_rates: Sequence[float] = (1e-3, 1e-2, 1e-1),
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    num_periods: int = 1,
) -> np.ndarray:
  r"""Scores update rules of any shape by short training runs, as `search_update_rules` does.

  Each rule (an `update_rule` string) trains ``num_problems`` instances of the task for
  ``num_steps`` steps at each learning rate; its score at a rate is the mean over instances of
  :math:`\log_{10}(L_0 / L_T)`, the orders of magnitude the loss fell (a diverged run counts
  -10). With the same key and settings the numbers are those of `search_update_rules`, so the
  searched rules can be ranked against hand-written ones (Adam, PowerSign, AddSign).

  Args:
    task: a `learned.Task`.
    rules: expression strings; the decays ``ld``, ``cd``, ``rd`` span ``num_steps``.
    key: draws the problem instances, starting points and the task's minibatches.
    num_steps: training steps per run.
    num_problems: problem instances per run (vmapped).
    learning_rates: the rates tried for every rule (vmapped).
    b1, b2, eps, num_periods: as in `update_rule`.

  Returns:
    A NumPy array of shape ``(len(rules), len(learning_rates))`` of scores (higher is better).

  Example:
    >>> import jax
    >>> from gradtx import learned
    >>> s = learned.evaluate_update_rules(learned.quadratic_task(3), ["adam", "g"],
    ...                                   key=jax.random.key(0), num_steps=5, num_problems=2)
    >>> s.shape
    (2, 3)

  References:
    Bello, Zoph, Vasudevan & Le, "Neural Optimizer Search with Reinforcement Learning", ICML
    2017. https://arxiv.org/abs/1709.07417
  """
  fn = "learned.evaluate_update_rules"
  if isinstance(rules, str):
    raise TypeError(f"gradtx.{fn}: rules must be a sequence of strings, got one string; "
                    f"pass [{rules!r}].")
  rules = list(rules)
  for rule in rules:
    _rules.parse(rule)  # a syntax error names the rule's token before anything compiles
  problems, params0, lrs, keys = _setup(fn, task, key, num_steps, num_problems, learning_rates)
  out = np.zeros((len(rules), len(lrs)), np.float32)
  # Rules of the search's shape are scored by its compiled interpreter (one batch, padded to a
  # power of two so few shapes compile); the others compile one by one (cached per rule).
  searchable = [i for i, rule in enumerate(rules) if encode(rule) is not None]
  if searchable:
    n = max(4, 1 << (len(searchable) - 1).bit_length())
    codes = np.zeros((n, len(VOCAB)), np.int32)
    codes[:len(searchable)] = [encode(rules[i]) for i in searchable]
    scorer = _batch_scorer(task, num_steps, b1, b2, eps, num_periods)
    out[searchable] = np.asarray(scorer(jnp.asarray(codes), problems, params0, lrs, keys)
                                 )[:len(searchable)]
  for i, rule in enumerate(rules):
    if i not in searchable:
      scorer = _rule_scorer(task, rule, num_steps, b1, b2, eps, num_periods)
      out[i] = np.asarray(scorer(None, problems, params0, lrs, keys))
  return out


@functools.lru_cache(maxsize=1)
def _unary_strings() -> dict:
  table = {}
  for o, operand in enumerate(OPERANDS):
    for u, unary in enumerate(UNARY):
      table.setdefault(unary.format(x=operand), (o, u))
  return table


def encode(rule: str) -> tuple | None:
  """Codes (op1, op2, u1, u2, b) that `decode` to `rule`, or None outside the search's shape."""
  units = _unary_strings()
  if rule in units:
    (o, u) = units[rule]
    return (o, 0, u, 0, len(BINARY) - 1)
  for b, template in enumerate(BINARY[:-1]):
    sep = template[3:-3]  # " + ", " - ", ...
    start = rule.find(sep)
    while start >= 0:
      left, right = rule[:start], rule[start + len(sep):]
      if left in units and right in units:
        return (units[left][0], units[right][0], units[left][1], units[right][1], b)
      start = rule.find(sep, start + 1)
  return None


@functools.lru_cache(maxsize=64)
def _rule_scorer(task, rule, num_steps, b1, b2, eps, num_periods):
  tx = _rules.update_rule(rule, b1, b2, eps, total_steps=num_steps, num_periods=num_periods)
  return jax.jit(_score_fn(task, num_steps, lambda _: tx))


# --- the controller: a small autoregressive RNN over the five slots (Bello et al., Fig. 2) ---

def _controller_init(key: jax.Array, hidden: int) -> dict:
  ks = jax.random.split(key, 4 + len(VOCAB))
  bound = 1.0 / np.sqrt(hidden)  # PyTorch's LSTM initialisation U(-1/sqrt(H), 1/sqrt(H))
  return {
      "start": 0.1 * jax.random.normal(ks[0], (hidden,)),
      # One LSTM layer, gates (input, forget, cell, output) as `lstm_optimizer`'s.
      "lstm": {"w": jax.random.uniform(ks[1], (2 * hidden, 4 * hidden), minval=-bound,
                                       maxval=bound),
               "b": jnp.zeros(4 * hidden)},
      "embed": [0.1 * jax.random.normal(k, (v, hidden)) for k, v in zip(ks[4:], VOCAB)],
      "head": [jnp.zeros((hidden, v)) for v in VOCAB],  # zero heads: a uniform first policy
      "head_b": [jnp.zeros(v) for v in VOCAB],
  }


def _controller_run(params: dict, noise: list | None, tokens: jax.Array | None, batch: int):
  """Samples (Gumbel `noise`, one (batch, vocab) array per slot, drawn on the host: no random
  bits to compile) or scores (`tokens`) a batch of rules: (tokens, log-probs, entropies).

  The controller is an LSTM (as Bello et al.'s) that emits the five tokens one by one, each
  step reading the previous token's embedding; `lstm_cell` takes the batch as its last axis."""
  x = jnp.broadcast_to(params["start"], (batch, params["start"].shape[0]))
  h = c = jnp.zeros((x.shape[1], batch), x.dtype)  # (hidden, batch)
  out, logp, entropy = [], 0.0, 0.0
  for slot, v in enumerate(VOCAB):
    h, c = lstm_cell(params["lstm"], x.T, h, c)
    logits = jax.nn.log_softmax(h.T @ params["head"][slot] + params["head_b"][slot])
    if tokens is None:
      tok = jnp.argmax(logits + noise[slot], 1)  # Gumbel-max: a sample of softmax(logits)
    else:
      tok = tokens[:, slot]
    onehot = jax.nn.one_hot(tok, v)
    logp += jnp.sum(onehot * logits, 1)
    entropy -= jnp.sum(jnp.exp(logits) * logits, 1)
    out.append(tok)
    x = onehot @ params["embed"][slot]
  return jnp.stack(out, 1).astype(jnp.int32), logp, entropy


@jax.jit
def _controller_sample(params: dict, noise: list) -> jax.Array:
  return _controller_run(params, noise, None, noise[0].shape[0])[0]


def _reinforce_loss(params, tokens, advantages, entropy_weight):
  _, logp, entropy = _controller_run(params, None, tokens, tokens.shape[0])
  return -jnp.mean(advantages * logp) - entropy_weight * jnp.mean(entropy)


def _meta_optimizer(learning_rate):
  from gradtx.optimizers.adam import adam  # deferred: the aliases import the transforms
  return adam(learning_rate)


@jax.jit
def _controller_step(controller, opt_state, tokens, advantages, entropy_weight, learning_rate):
  grads = jax.grad(_reinforce_loss)(controller, tokens, advantages, entropy_weight)
  updates, opt_state = _meta_optimizer(learning_rate).update(grads, opt_state, controller)
  return apply_updates(controller, updates), opt_state


@functools.lru_cache(maxsize=8)
def _batch_scorer(task, num_steps, b1, b2, eps, num_periods):
  """One jitted scorer per task and settings, shared by searches (compiled once per shape)."""
  score = _score_fn(task, num_steps, lambda codes: _program(codes, b1, b2, eps, num_steps,
                                                            num_periods, 0))
  return jax.jit(jax.vmap(score, (0, None, None, None, None)))


def search_update_rules(
    task: Task,
    budget: int,
    method: str = "reinforce",
    *,
    key: jax.Array,
    num_steps: int = 100,
    num_problems: int = 8,
    learning_rates: Sequence[float] = (1e-3, 1e-2, 1e-1),
    batch_size: int = 32,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    num_periods: int = 1,
    controller_learning_rate: float = 0.01,
    entropy_weight: float = 0.01,
    hidden_size: int = 32,
    tournament_size: int = 4,
) -> SearchResult:
  r"""Neural optimizer search: finds update rules of the grammar that train a task fast.

  Candidates have Bello et al.'s shape :math:`b(u_1(o_1), u_2(o_2))` over the operands
  ``g g2 g3 mhat vhat sign(g) sign(m) 1 2 eps adam rmsprop ld cd rd``, the unary functions
  identity, ``neg exp log sqrt sign``, ``clip`` (1e-5, 1e-4, 1e-3), ``drop`` (0.1, 0.3, 0.5)
  and the binary ``+ - * / ^`` and "keep the left". Each round scores ``batch_size`` rules in
  one jitted call (a `lax.switch` interpreter of the five codes, vmapped over rules, learning
  rates and problem instances; see `evaluate_update_rules` for the score), for
  ``budget // batch_size`` rounds:

  * ``"reinforce"`` (the paper's method): an LSTM controller (one layer of ``hidden_size``)
    emits the five tokens one by one, each step reading the previous token's embedding; after
    each round it takes an Adam step on the REINFORCE objective
    :math:`\nabla J = \mathbb{E}[(R - b) / \operatorname{sd}(R)\, \nabla \log p(\text{rule})]`
    with :math:`R = \max(\text{score}, 0)`, an exponential moving baseline :math:`b`, the
    round's reward spread :math:`\operatorname{sd}(R)` and an entropy bonus. Simplified from
    the paper: one controller, no distributed workers, a training-loss reward (not validation
    accuracy), depth-one rules.
  * ``"random"``: rules drawn uniformly.
  * ``"evolution"``: a population of ``batch_size`` rules; each child mutates one slot of the
    winner of a random tournament, and the best ``batch_size`` of parents and children survive.

  Args:
    task: a `learned.Task` (e.g. `learned.quadratic_task()`).
    budget: the most rules evaluated (an int >= 1); ``budget // batch_size`` rounds run.
    method: ``"reinforce"``, ``"random"`` or ``"evolution"``.
    key: makes the search deterministic (problems, starting points, sampling).
    num_steps, num_problems, learning_rates: each rule's training runs (`evaluate_update_rules`).
    batch_size: rules per round (capped at `budget`).
    b1, b2, eps, num_periods: as in `update_rule`.
    controller_learning_rate, entropy_weight, hidden_size: the REINFORCE controller's.
    tournament_size: the evolutionary search's tournament.

  Returns:
    A `SearchResult`: the distinct rules evaluated, best first, with scores and best rates.

  Example:
    >>> import jax
    >>> from gradtx import learned
    >>> r = learned.search_update_rules(learned.quadratic_task(3), 4, "random",
    ...     key=jax.random.key(0), num_steps=5, num_problems=2, batch_size=4)
    >>> bool(len(r.rules) <= 4 and r.scores[0] == r.scores.max())
    True

  References:
    Bello, Zoph, Vasudevan & Le, "Neural Optimizer Search with Reinforcement Learning", ICML
    2017. https://arxiv.org/abs/1709.07417
  """
  fn = "learned.search_update_rules"
  _checks.check_int(fn, "budget", budget, 1)
  _checks.check_choice(fn, "method", method, METHODS)
  _checks.check_int(fn, "batch_size", batch_size, 1)
  _checks.check_int(fn, "hidden_size", hidden_size, 1)
  _checks.check_int(fn, "tournament_size", tournament_size, 1)
  _checks.check_scalar(fn, "controller_learning_rate", controller_learning_rate, low=0,
                       low_open=True)
  _checks.check_scalar(fn, "entropy_weight", entropy_weight, low=0)
  _rules.check_rule_args(fn, b1, b2, eps, None, num_periods, 0)
  problems, params0, lrs, keys = _setup(fn, task, key, num_steps, num_problems, learning_rates)
  batch_size = min(int(batch_size), int(budget))
  rounds = int(budget) // batch_size
  score_batch = _batch_scorer(task, num_steps, b1, b2, eps, num_periods)
  vocab = np.asarray(VOCAB)
  k_search = jax.random.fold_in(key, 1)
  # Host-side draws (no small jitted ops to compile), seeded by the key: deterministic.
  rng = np.random.default_rng(np.asarray(jax.random.key_data(k_search)).ravel().tolist())

  def uniform(n):
    return jnp.asarray(rng.integers(0, vocab, (n, len(VOCAB))), jnp.int32)

  if method == "reinforce":
    controller = _controller_init(jax.random.fold_in(key, 2), hidden_size)
    opt_state = _meta_optimizer(controller_learning_rate).init(controller)

  seen: dict[str, tuple] = {}
  history, baseline = [], None
  population = None
  for r in range(rounds):
    if method == "random" or (method == "evolution" and population is None):
      codes = uniform(batch_size)
    elif method == "reinforce":
      noise = [jnp.asarray(rng.gumbel(size=(batch_size, v)), jnp.float32) for v in VOCAB]
      codes = _controller_sample(controller, noise)
    else:
      pop_codes, pop_scores = population
      entrants = rng.integers(0, len(pop_scores), (batch_size, tournament_size))
      parents = pop_codes[entrants[np.arange(batch_size), np.argmax(pop_scores[entrants], 1)]]
      slot = rng.integers(0, len(VOCAB), batch_size)
      shift = 1 + rng.integers(0, np.maximum(vocab[slot] - 1, 1))
      children = parents.copy()
      children[np.arange(batch_size), slot] = (parents[np.arange(batch_size), slot] + shift
                                               ) % vocab[slot]
      codes = jnp.asarray(children, jnp.int32)
    per_lr = score_batch(codes, problems, params0, lrs, keys)
    rewards = jnp.max(per_lr, axis=1)
    best_lr = lrs[jnp.argmax(per_lr, axis=1)]
    for c, s, lr in zip(np.asarray(codes), np.asarray(rewards), np.asarray(best_lr)):
      seen.setdefault(decode(c), (float(s), float(lr), tuple(int(x) for x in c)))
    if method == "reinforce":
      # The reward is bounded below by 0 (a rule whose runs diverged or did not reduce the loss
      # scores 0, as the paper's accuracy reward is bounded): FAILED's -10 would otherwise
      # dominate the gradient and the controller only learns to avoid failures. Advantages are
      # divided by the round's reward spread, so `controller_learning_rate` does not depend on
      # the task's reward scale.
      reward = jnp.maximum(rewards, 0.0)
      baseline = jnp.mean(reward) if baseline is None else 0.8 * baseline + 0.2 * jnp.mean(
          reward)
      advantages = (reward - baseline) / (jnp.std(reward) + 1e-3)  # (R - b) / sd(R)
      controller, opt_state = _controller_step(controller, opt_state, codes, advantages,
                                               entropy_weight, controller_learning_rate)
    elif method == "evolution":
      new_codes, new_scores = np.asarray(codes), np.asarray(rewards)
      if population is not None:
        new_codes = np.concatenate([population[0], new_codes])
        new_scores = np.concatenate([population[1], new_scores])
      keep = np.argsort(-new_scores, kind="stable")[:batch_size]
      population = (new_codes[keep], new_scores[keep])
    history.append(max(v[0] for v in seen.values()))

  ranked = sorted(seen.items(), key=lambda item: -item[1][0])  # stable: ties keep their order
  return SearchResult(
      rules=tuple(rule for rule, _ in ranked),
      scores=np.asarray([v[0] for _, v in ranked], np.float32),
      learning_rates=np.asarray([v[1] for _, v in ranked], np.float32),
      codes=np.asarray([v[2] for _, v in ranked], np.int32).reshape(-1, len(VOCAB)),
      history=np.asarray(history, np.float32))
