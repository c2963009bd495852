"""NumPy float64 references transcribed from the papers. Imports neither jax nor gradtx.

Convention for every reference `name(params, grads, **hyperparameters)`:
  * `params`: list of float64 arrays (the pytree's leaves, in `jax.tree.leaves` order);
  * `grads`: list over steps of lists of float64 arrays shaped like `params`;
  * returns the list over steps of the *updates* (lists of arrays), as gradtx returns them
    (deltas to add), applying each step's update to its private copy of the params (so weight
    decay sees the evolving params, as in the gradtx test loop).
  * Schedules are Python callables of the 0-based step count `t`.
Each function cites the equation or algorithm it transcribes.
"""

import numpy as np


def _val(h, t):
  """A hyperparameter's value at 0-based step t (a schedule is called, a constant returned)."""
  return h(t) if callable(h) else h


def _loop(params, grads, step):
  """Runs `step(t, p, g) -> u` leaf by leaf for every step; updates params in place."""
  params = [np.array(p, dtype=np.float64) for p in params]
  out = []
  for t, gs in enumerate(grads):
    us = [step(t, i, p, np.asarray(g, np.float64)) for i, (p, g) in enumerate(zip(params, gs))]
    for p, u in zip(params, us):
      p += u
    out.append(us)
  return out


def scale(params, grads, step_size):
  """u = alpha g."""
  return _loop(params, grads, lambda t, i, p, g: step_size * g)


def scale_by_schedule(params, grads, step_size_fn):
  """u_t = alpha(t) g_t."""
  return _loop(params, grads, lambda t, i, p, g: _val(step_size_fn, t) * g)


def scale_by_learning_rate(params, grads, learning_rate, flip_sign=True):
  """u_t = -eta_t g_t."""
  sign = -1.0 if flip_sign else 1.0
  return _loop(params, grads, lambda t, i, p, g: sign * _val(learning_rate, t) * g)


def trace(params, grads, decay, nesterov=False):
  """Sutskever et al. 2013 / Ruder eq. (heavy ball): v_t = g_t + mu v_{t-1}; NAG: u = g + mu v_t."""
  v = [np.zeros_like(np.asarray(p, np.float64)) for p in params]

  def step(t, i, p, g):
    mu = _val(decay, t)
    v[i] = g + mu * v[i]
    return g + mu * v[i] if nesterov else v[i].copy()

  return _loop(params, grads, step)


def ema(params, grads, decay, debias=True):
  """m_t = (1-b) g + b m_{t-1}; debiased m_t / (1 - b^t) (Kingma & Ba, Alg. 1)."""
  m = [np.zeros_like(np.asarray(p, np.float64)) for p in params]

  def step(t, i, p, g):
    m[i] = (1 - decay) * g + decay * m[i]
    return m[i] / (1 - decay ** (t + 1)) if debias else m[i].copy()

  return _loop(params, grads, step)


# --- sign.py, clipping.py, decay.py ------------------------------------------------------------


def scale_by_sign(params, grads):
  """signSGD (Bernstein et al. 2018, Alg. 1): u = sign(g)."""
  return _loop(params, grads, lambda t, i, p, g: np.sign(g))


def _sign_rule(params, grads, beta, decay, rule):
  """Bello et al. 2017, Sec. 5: m_t = beta m_{t-1} + (1 - beta) g_t;
  u = rule(g, sign(g) sign(m_t), f(t))."""
  m = [np.zeros_like(np.asarray(p, np.float64)) for p in params]

  def step(t, i, p, g):
    m[i] = beta * m[i] + (1 - beta) * g
    f = 1.0 if decay is None else float(_val(decay, t))
    return rule(g, np.sign(g) * np.sign(m[i]), f)

  return _loop(params, grads, step)


def scale_by_powersign(params, grads, alpha=np.e, beta=0.9, decay=None):
  """PowerSign (Bello et al. 2017, Sec. 5): u = alpha^(f(t) sign(g) sign(m)) g."""
  return _sign_rule(params, grads, beta, decay, lambda g, s, f: alpha ** (f * s) * g)


def scale_by_addsign(params, grads, alpha=1.0, beta=0.9, decay=None):
  """AddSign (Bello et al. 2017, Sec. 5): u = (alpha + f(t) sign(g) sign(m)) g."""
  return _sign_rule(params, grads, beta, decay, lambda g, s, f: (alpha + f * s) * g)


def clip(params, grads, max_delta):
  """Element-wise clipping to [-max_delta, max_delta]."""
  return _loop(params, grads, lambda t, i, p, g: np.clip(g, -max_delta, max_delta))


def clip_by_global_norm(params, grads, max_norm):
  """Deep Learning with Theano, clip_norms: norm = sqrt(sum_i sum g_i^2);
  g * c / norm if norm >= c else g (all leaves at once)."""
  params = [np.array(p, dtype=np.float64) for p in params]
  out = []
  for gs in grads:
    gs = [np.asarray(g, np.float64) for g in gs]
    norm = np.sqrt(sum(np.sum(g**2) for g in gs))
    us = [g * max_norm / norm if norm >= max_norm else g for g in gs]
    for p, u in zip(params, us):
      p += u
    out.append(us)
  return out


def clip_by_block_rms(params, grads, threshold):
  """Per-leaf RMS clipping: u = g / max(1, rms(g) / threshold)."""
  return _loop(params, grads,
               lambda t, i, p, g: g / max(1.0, np.sqrt(np.mean(g**2)) / threshold))


def _flat_mask(mask):
  """A full-structure mask of bools (nested dicts / tuples / lists) as a list in jax leaf order
  (dict keys sorted, as jax flattens them)."""
  if isinstance(mask, dict):
    return [m for k in sorted(mask) for m in _flat_mask(mask[k])]
  if isinstance(mask, (tuple, list)):
    return [m for x in mask for m in _flat_mask(x)]
  return [bool(mask)]


def add_decayed_weights(params, grads, weight_decay=0.0, mask=None):
  """L2 / decoupled weight decay (Loshchilov & Hutter 2019, Alg. 2 line 12): u = g + lambda_t p,
  only on leaves where the (full-structure) mask is True."""
  flat = None if mask is None else _flat_mask(mask)

  def step(t, i, p, g):
    if flat is not None and not flat[i]:
      return g
    return g + _val(weight_decay, t) * p

  return _loop(params, grads, step)


# ---- adaptive.py: Adagrad, RMSprop, centered RMSprop, Adadelta and the Adam family ----


def _adaptive_full(params, value=0.0):
  return [np.full(np.shape(p), value, np.float64) for p in params]


def scale_by_rss(params, grads, initial_accumulator_value=0.1, eps=1e-7):
  """Adagrad (Duchi et al. 2011, Fig. 1 diagonal form; Ruder 2016 eq. 9):
  G_t = G_{t-1} + g_t^2 (G_0 = initial_accumulator_value), u_t = g_t / sqrt(G_t + eps), 0 where
  G_t = 0."""
  acc = _adaptive_full(params, initial_accumulator_value)

  def step(t, i, p, g):
    acc[i] = acc[i] + g * g
    positive = acc[i] > 0
    return np.where(positive, g / np.sqrt(np.where(positive, acc[i], 1.0) + eps), 0.0)

  return _loop(params, grads, step)


def scale_by_rms(params, grads, decay=0.9, eps=1e-8, initial_scale=0.0, eps_in_sqrt=True,
                 bias_correction=False):
  """RMSprop (Tieleman & Hinton 2012, lecture 6e; Ruder 2016 eq. 18):
  E[g^2]_t = decay E[g^2]_{t-1} + (1 - decay) g_t^2, u_t = g_t / sqrt(E[g^2]_t + eps) (or
  g_t / (sqrt(E[g^2]_t) + eps)); with bias_correction E[g^2]_t is divided by 1 - decay^t."""
  nu = _adaptive_full(params, initial_scale)

  def step(t, i, p, g):
    nu[i] = decay * nu[i] + (1 - decay) * g * g
    v = nu[i] / (1 - decay ** (t + 1)) if bias_correction else nu[i]
    return g / np.sqrt(v + eps) if eps_in_sqrt else g / (np.sqrt(v) + eps)

  return _loop(params, grads, step)


def scale_by_stddev(params, grads, decay=0.9, eps=1e-8, initial_scale=0.0, eps_in_sqrt=True,
                    bias_correction=False):
  """Centered RMSprop (Graves 2013, eqs. 38-41 without the momentum term):
  n_t = decay n_{t-1} + (1 - decay) g_t^2, m_t = decay m_{t-1} + (1 - decay) g_t,
  u_t = g_t / sqrt(n_t - m_t^2 + eps) (or / (sqrt(n_t - m_t^2) + eps)); bias_correction divides
  n_t and m_t by 1 - decay^t."""
  mu, nu = _adaptive_full(params), _adaptive_full(params, initial_scale)

  def step(t, i, p, g):
    mu[i] = decay * mu[i] + (1 - decay) * g
    nu[i] = decay * nu[i] + (1 - decay) * g * g
    c = 1 - decay ** (t + 1) if bias_correction else 1.0
    var = nu[i] / c - (mu[i] / c) ** 2
    return g / np.sqrt(var + eps) if eps_in_sqrt else g / (np.sqrt(var) + eps)

  return _loop(params, grads, step)


def scale_by_adadelta(params, grads, rho=0.9, eps=1e-6):
  """Adadelta (Zeiler 2012, Algorithm 1): E[g^2]_t = rho E[g^2]_{t-1} + (1 - rho) g_t^2,
  dx_t = RMS[dx]_{t-1} / RMS[g]_t g_t with RMS[y] = sqrt(E[y^2] + eps),
  E[dx^2]_t = rho E[dx^2]_{t-1} + (1 - rho) dx_t^2. Returned with a plus sign (the learning-rate
  step supplies the minus)."""
  e_g, e_x = _adaptive_full(params), _adaptive_full(params)

  def step(t, i, p, g):
    e_g[i] = rho * e_g[i] + (1 - rho) * g * g
    dx = np.sqrt(e_x[i] + eps) / np.sqrt(e_g[i] + eps) * g
    e_x[i] = rho * e_x[i] + (1 - rho) * dx * dx
    return dx

  return _loop(params, grads, step)


def scale_by_adam(params, grads, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, nesterov=False, **_):
  """Adam (Kingma & Ba 2015, Algorithm 1), t = 1, 2, ...:
  m_t = b1 m_{t-1} + (1 - b1) g_t, v_t = b2 v_{t-1} + (1 - b2) g_t^2,
  u_t = [m_t / (1 - b1^t)] / (sqrt(v_t / (1 - b2^t) + eps_root) + eps).
  A schedule b1 is the Theano chapter's "Adam with b1 decay": the moment uses b1_t = b1(t - 1)
  (= b1 lambda^(t-1) for b1(s) = b1 lambda^s), the bias correction the constant b1(0).
  nesterov (Dozat 2016, optax's form): m_hat = b1_{t+1} m_t / (1 - b1^(t+1))
  + (1 - b1_{t+1}) g_t / (1 - b1^t)."""
  m, v = _adaptive_full(params), _adaptive_full(params)

  def step(s, i, p, g):
    t, b1_t, b1_c = s + 1, _val(b1, s), _val(b1, 0)
    m[i] = b1_t * m[i] + (1 - b1_t) * g
    v[i] = b2 * v[i] + (1 - b2) * g * g
    if nesterov:
      b1_n = _val(b1, s + 1)
      m_hat = b1_n * m[i] / (1 - b1_c ** (t + 1)) + (1 - b1_n) * g / (1 - b1_c ** t)
    else:
      m_hat = m[i] / (1 - b1_c ** t)
    return m_hat / (np.sqrt(v[i] / (1 - b2 ** t) + eps_root) + eps)

  return _loop(params, grads, step)


def theano_adam(params, grads, learning_rate=1.0, b1=0.9, b2=0.999, l=1 - 1e-8):
  """The Theano chapter's Adam with b1 decay, verbatim (t is a float starting at 1):
  b1_t = b1 * l**(t-1); m_t = b1_t m + (1 - b1_t) g; v_t = b2 v + (1 - b2) g**2;
  p <- p - (learning_rate * m_t / (1 - b1**t)) / (sqrt(v_t / (1 - b2**t)) + 1e-6).
  Returns the parameter deltas (so learning_rate=1 gives minus gradtx's scale_by_adam updates)."""
  m, v = _adaptive_full(params), _adaptive_full(params)

  def step(s, i, p, g):
    t = float(s + 1)
    b1_t = b1 * l ** (t - 1)
    m[i] = b1_t * m[i] + (1 - b1_t) * g
    v[i] = b2 * v[i] + (1 - b2) * g ** 2
    return -(learning_rate * m[i] / (1 - b1 ** t)) / (np.sqrt(v[i] / (1 - b2 ** t)) + 1e-6)

  return _loop(params, grads, step)


def scale_by_adamax(params, grads, b1=0.9, b2=0.999, eps=1e-8):
  """AdaMax (Kingma & Ba 2015, Algorithm 2; Ruder 2016 eqs. 24-25): m_t = b1 m + (1 - b1) g,
  u_t = max(b2 u_{t-1}, |g_t| + eps) (eps inside the max, as optax),
  update m_t / (1 - b1^t) / u_t."""
  m, u = _adaptive_full(params), _adaptive_full(params)

  def step(s, i, p, g):
    m[i] = b1 * m[i] + (1 - b1) * g
    u[i] = np.maximum(b2 * u[i], np.abs(g) + eps)
    return m[i] / (1 - b1 ** (s + 1)) / u[i]

  return _loop(params, grads, step)


def scale_by_amsgrad(params, grads, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0,
                     bias_correction_mu=True, bias_correction_nu=True, **_):
  """AMSGrad (Reddi et al. 2018, Algorithm 2 with constant b1): m_t = b1 m + (1 - b1) g,
  v_t = b2 v + (1 - b2) g^2, v_max_t = max(v_max_{t-1}, v_t), update m_t / (sqrt(v_max_t) + eps).
  Both bias-correction flags False is the paper; True divides m_t by 1 - b1^t and v_t (before
  the max) by 1 - b2^t, as optax."""
  m, v, v_max = _adaptive_full(params), _adaptive_full(params), _adaptive_full(params)

  def step(s, i, p, g):
    t = s + 1
    m[i] = b1 * m[i] + (1 - b1) * g
    v[i] = b2 * v[i] + (1 - b2) * g * g
    m_hat = m[i] / (1 - b1 ** t) if bias_correction_mu else m[i]
    v_hat = v[i] / (1 - b2 ** t) if bias_correction_nu else v[i]
    v_max[i] = np.maximum(v_max[i], v_hat)
    return m_hat / (np.sqrt(v_max[i] + eps_root) + eps)

  return _loop(params, grads, step)


def scale_by_nadam(params, grads, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0,
                   momentum_decay=0.004, **_):
  """NAdam (Dozat 2016, Algorithm 2 with the warm-up schedule), as torch.optim.NAdam, t = 1, 2..:
  mu_t = b1 (1 - 0.5 * 0.96^(t psi)), m_t = b1 m + (1 - b1) g, v_t = b2 v + (1 - b2) g^2,
  u_t = [(1 - mu_t) / (1 - prod_{k<=t} mu_k) g_t + mu_{t+1} / (1 - prod_{k<=t+1} mu_k) m_t]
  / (sqrt(v_t / (1 - b2^t) + eps_root) + eps)."""
  m, v = _adaptive_full(params), _adaptive_full(params)
  mu = lambda t: b1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))

  def step(s, i, p, g):
    t = s + 1
    prod_t = np.prod([mu(k) for k in range(1, t + 1)])
    m[i] = b1 * m[i] + (1 - b1) * g
    v[i] = b2 * v[i] + (1 - b2) * g * g
    v_hat = v[i] / (1 - b2 ** t)
    num = (1 - mu(t)) / (1 - prod_t) * g + mu(t + 1) / (1 - prod_t * mu(t + 1)) * m[i]
    return num / (np.sqrt(v_hat + eps_root) + eps)

  return _loop(params, grads, step)


# ---------------------------------------------------------------------------------------------
# Aliases: whole optimizers transcribed from their papers' algorithms (independent of the
# primitive references above, so a wrong composition in gradtx/optimizers/ is caught).


def _zeros(params):
  return [np.zeros_like(np.asarray(p, np.float64)) for p in params]


def sgd(params, grads, learning_rate, momentum=None, nesterov=False, **_):
  """Theano chapter / Sutskever et al.: v = mu v - lr g; p += v (NAG: p += mu v - lr g)."""
  v = _zeros(params)

  def step(t, i, p, g):
    lr = _val(learning_rate, t)
    if momentum is None:
      return -lr * g
    mu = _val(momentum, t)
    v[i] = mu * v[i] - lr * g
    return mu * v[i] - lr * g if nesterov else v[i].copy()

  return _loop(params, grads, step)


def sgdw(params, grads, learning_rate, momentum=0.9, weight_decay=1e-4, nesterov=False, **_):
  """Loshchilov & Hutter, Algorithm 1 (eta_t = 1): m = b m + lr g; p -= m + lr w p."""
  assert not nesterov
  m = _zeros(params)

  def step(t, i, p, g):
    lr = _val(learning_rate, t)
    m[i] = _val(momentum, t) * m[i] + lr * g
    return -(m[i] + lr * _val(weight_decay, t) * p)

  return _loop(params, grads, step)


def adagrad(params, grads, learning_rate, initial_accumulator_value=0.1, eps=1e-7, **_):
  """Theano chapter: acc += g^2; p -= lr g / sqrt(acc + eps) (accumulator started at a0)."""
  acc = [np.full_like(np.asarray(p, np.float64), initial_accumulator_value) for p in params]

  def step(t, i, p, g):
    acc[i] = acc[i] + g**2
    return -_val(learning_rate, t) * g / np.sqrt(acc[i] + eps)

  return _loop(params, grads, step)


def adadelta(params, grads, learning_rate=1.0, rho=0.9, eps=1e-6, weight_decay=0.0, **_):
  """Zeiler Algorithm 1 / Theano chapter (coupled L2 decay added to the gradient first)."""
  acc, acc_delta = _zeros(params), _zeros(params)

  def step(t, i, p, g):
    g = g + _val(weight_decay, t) * p
    acc[i] = rho * acc[i] + (1 - rho) * g**2
    upd = g * np.sqrt(acc_delta[i] + eps) / np.sqrt(acc[i] + eps)
    acc_delta[i] = rho * acc_delta[i] + (1 - rho) * upd**2
    return -_val(learning_rate, t) * upd

  return _loop(params, grads, step)


def rmsprop(params, grads, learning_rate, decay=0.9, eps=1e-8, initial_scale=0.0,
            eps_in_sqrt=True, centered=False, momentum=None, nesterov=False,
            bias_correction=False, **_):
  """Tieleman & Hinton (Theano chapter); centered: Graves 2013 eq. 38-41; momentum on the step."""
  assert not bias_correction
  acc = [np.full_like(np.asarray(p, np.float64), initial_scale) for p in params]
  mg, mom = _zeros(params), _zeros(params)

  def step(t, i, p, g):
    acc[i] = decay * acc[i] + (1 - decay) * g**2
    mg[i] = decay * mg[i] + (1 - decay) * g
    var = acc[i] - mg[i] ** 2 if centered else acc[i]
    denom = np.sqrt(var + eps) if eps_in_sqrt else np.sqrt(var) + eps
    s = -_val(learning_rate, t) * g / denom
    if momentum is None:
      return s
    mom[i] = s + _val(momentum, t) * mom[i]
    return s + _val(momentum, t) * mom[i] if nesterov else mom[i].copy()

  return _loop(params, grads, step)


def _adam_core(params, grads, b1, b2, eps, eps_root, decoupled, learning_rate, weight_decay):
  m, v = _zeros(params), _zeros(params)

  def step(t, i, p, g):
    m[i] = b1 * m[i] + (1 - b1) * g
    v[i] = b2 * v[i] + (1 - b2) * g**2
    m_hat = m[i] / (1 - b1 ** (t + 1))
    v_hat = v[i] / (1 - b2 ** (t + 1))
    direction = m_hat / (np.sqrt(v_hat + eps_root) + eps)
    if decoupled:
      direction = direction + _val(weight_decay, t) * p
    return -_val(learning_rate, t) * direction

  return _loop(params, grads, step)


def adam(params, grads, learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0,
         nesterov=False, **_):
  """Kingma & Ba, Algorithm 1 (eps outside the root, eps_root inside)."""
  assert not nesterov
  return _adam_core(params, grads, b1, b2, eps, eps_root, False, learning_rate, 0.0)


def adamw(params, grads, learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0,
          weight_decay=1e-4, nesterov=False, **_):
  """Loshchilov & Hutter, Algorithm 2 with eta_t = lr: p -= lr (m_hat/(sqrt(v_hat)+eps) + w p)."""
  assert not nesterov
  return _adam_core(params, grads, b1, b2, eps, eps_root, True, learning_rate, weight_decay)


def adamax(params, grads, learning_rate, b1=0.9, b2=0.999, eps=1e-8, **_):
  """Kingma & Ba, Algorithm 2: u = max(b2 u, |g| + eps); p -= lr / (1 - b1^t) m / u."""
  m, u = _zeros(params), _zeros(params)

  def step(t, i, p, g):
    m[i] = b1 * m[i] + (1 - b1) * g
    u[i] = np.maximum(b2 * u[i], np.abs(g) + eps)
    return -_val(learning_rate, t) / (1 - b1 ** (t + 1)) * m[i] / u[i]

  return _loop(params, grads, step)


def amsgrad(params, grads, learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0,
            bias_correction_mu=True, bias_correction_nu=True, **_):
  """Reddi et al., Algorithm 2 (no bias correction when both flags are False)."""
  m, v, v_max = _zeros(params), _zeros(params), _zeros(params)

  def step(t, i, p, g):
    m[i] = b1 * m[i] + (1 - b1) * g
    v[i] = b2 * v[i] + (1 - b2) * g**2
    m_hat = m[i] / (1 - b1 ** (t + 1)) if bias_correction_mu else m[i]
    v_eff = v[i] / (1 - b2 ** (t + 1)) if bias_correction_nu else v[i]
    v_max[i] = np.maximum(v_max[i], v_eff)
    return -_val(learning_rate, t) * m_hat / (np.sqrt(v_max[i] + eps_root) + eps)

  return _loop(params, grads, step)


def nadam(params, grads, learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0,
          momentum_decay=None, **_):
  """Dozat 2016: m_bar = b1 m_hat_{t+1} + (1 - b1) g / (1 - b1^t); with momentum_decay, torch's
  NAdam (mu_t = b1 (1 - 0.5 * 0.96^(t psi)))."""
  m, v = _zeros(params), _zeros(params)
  prod = [1.0]

  def step(t, i, p, g):
    n = t + 1
    m[i] = b1 * m[i] + (1 - b1) * g
    v[i] = b2 * v[i] + (1 - b2) * g**2
    denom = np.sqrt(v[i] / (1 - b2**n) + eps_root) + eps
    if momentum_decay is None:
      m_bar = b1 * m[i] / (1 - b1 ** (n + 1)) + (1 - b1) * g / (1 - b1**n)
      return -_val(learning_rate, t) * m_bar / denom
    mu_t = b1 * (1 - 0.5 * 0.96 ** (n * momentum_decay))
    mu_next = b1 * (1 - 0.5 * 0.96 ** ((n + 1) * momentum_decay))
    if i == 0:
      prod[0] *= mu_t
    direction = ((1 - mu_t) / (1 - prod[0]) * g
                 + mu_next / (1 - prod[0] * mu_next) * m[i]) / denom
    return -_val(learning_rate, t) * direction

  return _loop(params, grads, step)


def _neg_lr_times(primitive_updates, learning_rate):
  return [[-_val(learning_rate, t) * u for u in us] for t, us in enumerate(primitive_updates)]


def powersign(params, grads, learning_rate, alpha=np.e, beta=0.9, decay=None, **_):
  """-lr * PowerSign direction (Bello et al. 2017); the direction is `scale_by_powersign`."""
  return _neg_lr_times(scale_by_powersign(params, grads, alpha=alpha, beta=beta, decay=decay),
                       learning_rate)


def addsign(params, grads, learning_rate, alpha=1.0, beta=0.9, decay=None, **_):
  """-lr * AddSign direction (Bello et al. 2017); the direction is `scale_by_addsign`."""
  return _neg_lr_times(scale_by_addsign(params, grads, alpha=alpha, beta=beta, decay=decay),
                       learning_rate)


def adamaxw(params, grads, learning_rate, b1=0.9, b2=0.999, eps=1e-8, weight_decay=1e-4, **_):
  """AdaMax (Kingma & Ba, Alg. 2) with decoupled decay: p -= lr (m_hat / u + w p)."""
  m, u = _zeros(params), _zeros(params)

  def step(t, i, p, g):
    m[i] = b1 * m[i] + (1 - b1) * g
    u[i] = np.maximum(b2 * u[i], np.abs(g) + eps)
    return -_val(learning_rate, t) * (m[i] / (1 - b1 ** (t + 1)) / u[i]
                                      + _val(weight_decay, t) * p)

  return _loop(params, grads, step)


def nadamw(params, grads, learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0,
           weight_decay=1e-4, **_):
  """Dozat's Nadam direction plus decoupled decay (Loshchilov & Hutter): p -= lr (d + w p)."""
  m, v = _zeros(params), _zeros(params)

  def step(t, i, p, g):
    n = t + 1
    m[i] = b1 * m[i] + (1 - b1) * g
    v[i] = b2 * v[i] + (1 - b2) * g**2
    m_bar = b1 * m[i] / (1 - b1 ** (n + 1)) + (1 - b1) * g / (1 - b1**n)
    d = m_bar / (np.sqrt(v[i] / (1 - b2**n) + eps_root) + eps)
    return -_val(learning_rate, t) * (d + _val(weight_decay, t) * p)

  return _loop(params, grads, step)


# ---- Schedules (gradtx/schedules.py) ------------------------------------------------------------
# Each returns the value at the 0-based step `t` (a Python int) in float64.


def linear_decay(t, eps_0, eps_tau, tau, begin=0):
  """Goodfellow, Bengio & Courville, Deep Learning, eq. (8.14): eps_k = (1 - a) eps_0 + a eps_tau,
  a = k / tau, held at eps_tau after step tau (k counted from `begin`)."""
  a = min(max(t - begin, 0) / tau, 1.0)
  return (1 - a) * eps_0 + a * eps_tau


def warm_restarts_schedule(t, init_value, first_period, period_multiplier=1.0, min_value=0.0,
                           decay_factor=1.0):
  """Loshchilov & Hutter 2017 (SGDR), eq. (5): eta = eta_min + (eta_max^i - eta_min)
  (1 + cos(pi T_cur / T_i)) / 2, walking the cycles one by one (T_{i+1} = m T_i,
  eta_max^i = eta_0 decay^i). With m == 1 the cycle index is t // T_0 (exact integers)."""
  if period_multiplier == 1:
    i = t // first_period
    start, period = i * first_period, first_period
  else:
    i, start, period = 0, 0, first_period
    while t >= start + period:
      start, period, i = start + period, period * period_multiplier, i + 1
  eta_max = init_value * decay_factor**i
  return min_value + (eta_max - min_value) * (1 + np.cos(np.pi * (t - start) / period)) / 2


def restart_steps(first_period, period_multiplier, last_step):
  """SGDR's restart steps S_1 < S_2 < ... <= last_step, in integer arithmetic:
  S_{i+1} = S_i + T_0 m^i (integer T_0 and m)."""
  starts, start, period = [], first_period, first_period * period_multiplier
  while start <= last_step:
    starts.append(start)
    start, period = start + period, period * period_multiplier
  return starts


def cyclic_schedule(t, base_value, max_value, step_size, mode="triangular", gamma=1.0):
  """Smith 2017, Sec. 3.1: cycle = floor(1 + t / 2s), x = |t / s - 2 cycle + 1|,
  lr = base + (max - base) max(0, 1 - x) scale, scale = 1 (triangular), 1 / 2^(cycle - 1)
  (triangular2) or gamma^t (exp_range)."""
  cycle = np.floor(1 + t / (2 * step_size))
  x = abs(t / step_size - 2 * cycle + 1)
  scale = {"triangular": 1.0, "triangular2": 1 / 2.0**(cycle - 1), "exp_range": gamma**t}[mode]
  return base_value + (max_value - base_value) * max(0.0, 1 - x) * scale


def transformer_schedule(t, d_model, warmup_steps=4000, scale=1.0):
  """Vaswani et al. 2017, eq. (3): d^-0.5 min(n^-0.5, n w^-1.5) with step_num n = t + 1."""
  n = t + 1
  return scale * d_model**-0.5 * min(n**-0.5, n * warmup_steps**-1.5)


def momentum_schedule(t, max_momentum=0.99, steps_per_stage=250):
  """Sutskever et al. 2013, Sec. 4.1: mu_t = min(1 - 2^(-1 - log2(floor(t / 250) + 1)), mu_max)."""
  return min(1 - 2.0**(-1 - np.log2(np.floor(t / steps_per_stage) + 1)), max_momentum)


def scale_learning_rate(learning_rate, batch_size, base_batch_size, rule="linear"):
  """Goyal et al. 2017 (linear: eta B / B_0); Krizhevsky 2014, Hoffer et al. 2017 (sqrt)."""
  ratio = batch_size / base_batch_size
  return learning_rate * (ratio if rule == "linear" else np.sqrt(ratio))


# ---- Decoupled weight decay in the paper's exact form (Loshchilov & Hutter, ICLR 2019) --------
# alpha = learning_rate is the base rate, eta_t = schedule_multiplier(t) the multiplier, evaluated
# at the 0-based count t (the paper's SetScheduleMultiplier(t) with t counted from 1).


def add_decayed_weights_multiplied(params, grads, weight_decay=0.0, mask=None,
                                   schedule_multiplier=None):
  """Loshchilov & Hutter 2019, Alg. 1 line 9's decay term: u = g + eta_t lambda_t p (eta_t = 1
  when None), only on leaves where the (full-structure) mask is True."""
  flat = None if mask is None else _flat_mask(mask)
  eta = 1.0 if schedule_multiplier is None else schedule_multiplier

  def step(t, i, p, g):
    if flat is not None and not flat[i]:
      return g
    return g + _val(eta, t) * _val(weight_decay, t) * p

  return _loop(params, grads, step)


def sgdw_algorithm1(params, grads, learning_rate, momentum=0.9, weight_decay=1e-4,
                    nesterov=False, mask=None, schedule_multiplier=None):
  """Loshchilov & Hutter 2019, Algorithm 1 (SGDW): m_t = b1 m_{t-1} + eta_t alpha g_t,
  theta_t = theta_{t-1} - m_t - eta_t lambda theta_{t-1}. Nesterov (not in the paper): the step
  is b1 m_t + eta_t alpha g_t instead of m_t."""
  flat = None if mask is None else _flat_mask(mask)
  m = _zeros(params)

  def step(t, i, p, g):
    eta = _val(schedule_multiplier, t)
    m[i] = _val(momentum, t) * m[i] + eta * _val(learning_rate, t) * g
    direction = (_val(momentum, t) * m[i] + eta * _val(learning_rate, t) * g if nesterov
                 else m[i])
    decay = 0.0 if flat is not None and not flat[i] else eta * _val(weight_decay, t) * p
    return -(direction + decay)

  return _loop(params, grads, step)


def adamw_algorithm2(params, grads, learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0,
                     weight_decay=1e-4, mask=None, schedule_multiplier=None, nesterov=False,
                     **_):
  """Loshchilov & Hutter 2019, Algorithm 2 (AdamW): m_hat, v_hat as Adam,
  theta_t = theta_{t-1} - eta_t (alpha m_hat / (sqrt(v_hat) + eps) + lambda theta_{t-1})."""
  assert not nesterov
  flat = None if mask is None else _flat_mask(mask)
  m, v = _zeros(params), _zeros(params)

  def step(t, i, p, g):
    m[i] = b1 * m[i] + (1 - b1) * g
    v[i] = b2 * v[i] + (1 - b2) * g**2
    m_hat = m[i] / (1 - b1 ** (t + 1))
    v_hat = v[i] / (1 - b2 ** (t + 1))
    decay = 0.0 if flat is not None and not flat[i] else _val(weight_decay, t) * p
    eta = _val(schedule_multiplier, t)
    return -eta * (_val(learning_rate, t) * m_hat / (np.sqrt(v_hat + eps_root) + eps) + decay)

  return _loop(params, grads, step)


def normalized_weight_decay(weight_decay_norm, batch_size, num_train_points, num_epochs):
  """Loshchilov & Hutter 2019, Sec. 3 / App. B.1: lambda = lambda_norm sqrt(b / (B T))."""
  return weight_decay_norm * np.sqrt(batch_size / (num_train_points * num_epochs))


def warm_restart_period(t, first_period, period_multiplier=1.0):
  """The length in steps of the SGDR cycle containing step t, walking the cycles one by one."""
  start, period = 0, first_period
  while t >= start + period:
    start, period = start + period, period * period_multiplier
  return period


# ---- Plateau and averaging (gradtx/wrappers.py reduce_on_plateau, gradtx/averaging.py) ---------


def reduce_on_plateau_states(values, factor=0.1, patience=10, rtol=1e-4, atol=0.0, cooldown=0,
                             accumulation_size=1, min_scale=0.0, mode="min"):
  """Bourez, "Deep Learning with Theano", update rules: reduce the learning rate by a factor when
  the loss stops improving; with optax's / PyTorch's counters. Averages `accumulation_size`
  values into one evaluation; it improves on `best` if avg < best - rtol |best| - atol ('min';
  mirrored for 'max'); `patience` evaluations without improvement multiply the scale by `factor`
  (floored at `min_scale`) and start `cooldown` evaluations in which plateaus are not counted.
  Returns, after every value, the dict (scale, best_value, plateau_count, cooldown_count, count,
  avg_value)."""
  sign = 1.0 if mode == "min" else -1.0
  s = dict(scale=1.0, best_value=sign * np.inf, plateau_count=0, cooldown_count=0, count=0,
           avg_value=0.0)
  out = []
  for v in values:
    s["avg_value"] = (s["count"] * s["avg_value"] + float(v)) / (s["count"] + 1)
    s["count"] += 1
    if s["count"] == accumulation_size:
      avg, best = s["avg_value"], s["best_value"]
      threshold = sign * best - (0.0 if np.isinf(best) else rtol * abs(best) + atol)
      if sign * avg < threshold:
        s["best_value"], s["plateau_count"] = avg, 0
      else:
        s["plateau_count"] += 1
      if s["cooldown_count"] > 0:
        s["cooldown_count"] -= 1
        s["plateau_count"] = 0
      elif s["plateau_count"] >= patience:
        s["scale"] = max(s["scale"] * factor, min_scale)
        s["plateau_count"], s["cooldown_count"] = 0, cooldown
      else:
        s["scale"] = max(s["scale"], min_scale)
      s["count"], s["avg_value"] = 0, 0.0
    out.append(dict(s))
  return out


def reduce_on_plateau(params, grads, values, **hyperparameters):
  """u_t = scale_t g_t with scale_t from `reduce_on_plateau_states(values)`."""
  scales = [s["scale"] for s in reduce_on_plateau_states(values, **hyperparameters)]
  return _loop(params, grads, lambda t, i, p, g: scales[t] * g)


def pass_through(params, grads, **_):
  """u_t = g_t: the averaging transformations return the updates unchanged."""
  return _loop(params, grads, lambda t, i, p, g: g.copy())


def polyak_average(thetas):
  """Polyak & Juditsky 1992; Deep Learning book eq. (8.39): theta_hat_t = (1/t) sum_{i<=t}
  theta_i, summed directly. `thetas` lists the iterates theta_1 .. theta_T (lists of arrays)."""
  return [[sum(th[j] for th in thetas[:t]) / t for j in range(len(thetas[0]))]
          for t in range(1, len(thetas) + 1)]


def ema_average(thetas, theta_0, decay, debias=True):
  """Deep Learning book eq. (8.40): m_t = decay m_{t-1} + (1 - decay) theta_t, with m_0 = 0 and
  Adam's bias correction m_t / (1 - decay^t) (Kingma & Ba, Alg. 1), or m_0 = theta_0 and no
  correction."""
  m = [np.zeros_like(p) if debias else np.array(p, np.float64) for p in theta_0]
  out = []
  for t, th in enumerate(thetas, start=1):
    m = [decay * mj + (1 - decay) * np.asarray(tj, np.float64) for mj, tj in zip(m, th)]
    out.append([mj / (1 - decay**t) for mj in m] if debias else [mj.copy() for mj in m])
  return out


def snapshot_ring(thetas, end_steps, num_snapshots):
  """Huang et al. 2017 (Snapshot Ensembles), Alg.: after the last step of each cycle (1-based
  step numbers `end_steps`, the SGDR restarts), save the params; keep the newest `num_snapshots`
  in slots 0, 1, ..., wrapping around. Returns after every step (slots as a list of param lists
  or None, number stored, next slot)."""
  slots, stored, nxt, out = [None] * num_snapshots, 0, 0, []
  for step, th in enumerate(thetas, start=1):
    if step in end_steps:
      slots[nxt] = [np.array(x, np.float64) for x in th]
      nxt, stored = (nxt + 1) % num_snapshots, min(stored + 1, num_snapshots)
    out.append((list(slots), stored, nxt))
  return out


# --- lookahead.py, conditional.py ---------------------------------------------------------------


def lookahead(params, grads, fast, sync_period, slow_step_size, reset_state=False):
  """Zhang et al. 2019 (arXiv:1907.08610), Algorithm 1: from theta_{t,0} = phi_t the fast
  optimizer takes k steps theta_{t,i} = theta_{t,i-1} + A(g); then phi_{t+1} = phi_t +
  alpha (theta_{t,k} - phi_t) and theta_{t+1,0} = phi_{t+1}.

  `fast(params, grads)` is the fast optimizer's reference (e.g. `adam` with its learning rate
  bound), whose updates must not depend on the params. With `reset_state` each inner loop starts
  the fast optimizer afresh (one call per loop); otherwise its state carries across loops (one
  call on the whole sequence). Returns the list over steps of (fast params, slow params), each a
  list of arrays, after each step's update.
  """
  k, alpha = sync_period, slow_step_size
  phi = [np.array(p, dtype=np.float64) for p in params]
  theta = [p.copy() for p in phi]
  all_updates = None if reset_state else fast(phi, grads)
  out = []
  for start in range(0, len(grads), k):
    chunk = grads[start:start + k]
    updates = fast(theta, chunk) if reset_state else all_updates[start:start + k]
    for i, us in enumerate(updates):
      theta = [th + np.asarray(u, np.float64) for th, u in zip(theta, us)]
      if i == k - 1:  # end of the inner loop: the slow step, and the fast weights restart
        phi = [ph + alpha * (th - ph) for ph, th in zip(phi, theta)]
        theta = [ph.copy() for ph in phi]
      out.append(([th.copy() for th in theta], [ph.copy() for ph in phi]))
  return out


def conditionally_apply(params, grads, inner, should_transform_fn, mask=False):
  """optax.conditionally_transform / conditionally_mask: `inner` (a reference whose updates do
  not depend on the params) runs on the steps t (0-based) where should_transform_fn(t) holds,
  as if the other steps did not exist; elsewhere u_t = g_t, or 0 with `mask`."""
  selected = [t for t in range(len(grads)) if should_transform_fn(t)]
  inner_updates = dict(zip(selected, inner(params, [grads[t] for t in selected])))
  out = []
  for t, gs in enumerate(grads):
    if t in inner_updates:
      out.append(inner_updates[t])
    else:
      out.append([np.zeros_like(np.asarray(g, np.float64)) if mask else np.asarray(g, np.float64)
                  for g in gs])
  return out


# ---- unitwise.py, constraints.py, failsafe.py ----


def _unitwise_norm(x):
  """Brock et al. 2021, Sec. 4.1: the norm of each output unit (a kernel's last axis indexes
  the units); a scalar or vector is one unit; broadcast to the leaf's shape."""
  x = np.asarray(x, np.float64)
  if np.squeeze(x).ndim <= 1:
    sq = np.sum(x**2, keepdims=True)
  elif x.ndim in (2, 3):
    sq = np.sum(x**2, axis=0, keepdims=True)  # (in, out) or (heads, in, out): axis 0
  elif x.ndim == 4:
    sq = np.sum(x**2, axis=(0, 1, 2), keepdims=True)
  else:
    sq = np.sum(x**2, axis=(0, 1, 2, 3), keepdims=True)
  return np.broadcast_to(np.sqrt(sq), x.shape)


def adaptive_grad_clip(params, grads, clipping, eps=1e-3):
  """Brock, De, Smith & Simonyan 2021, eq. 3: G_i <- lambda max(||W_i||, eps) / ||G_i|| G_i
  where ||G_i|| / max(||W_i||, eps) > lambda (unit-wise norms)."""

  def step(t, i, p, g):
    max_norm = np.maximum(_unitwise_norm(p), eps) * clipping
    g_norm = _unitwise_norm(g)
    return np.where(g_norm > max_norm, g * (max_norm / np.maximum(g_norm, 1e-6)), g)

  return _loop(params, grads, step)


def keep_params_nonnegative(params, grads):
  """Projection onto the non-negative orthant: u = -p where p + g < 0, else g."""
  return _loop(params, grads, lambda t, i, p, g: np.where(p + g < 0, -p, g))


def zero_nans(params, grads):
  """u = 0 where g is NaN, else g."""
  return _loop(params, grads, lambda t, i, p, g: np.where(np.isnan(g), 0.0, g))


# Losses take arrays, not the (params, grads) convention above.


def ctc_alpha(logprobs, labels, blank=0):
  """Graves, Fernandez, Gomez & Schmidhuber 2006 (CTC), eqs. 5-8, in probability space, for one
  sequence: `logprobs` (T, K) log-softmax of the unpadded frames, `labels` (L,) without padding.

  Returns `(alpha, loss)`: alpha (T, 2L + 1) over the blank-extended labels
  l' = (blank, l_1, blank, ..., l_L, blank), and -log p(l|x) (inf where no path fits).
  """
  y = np.exp(np.asarray(logprobs, np.float64))
  ext = [blank]
  for label in labels:
    ext += [int(label), blank]
  num_frames, num_states = len(y), len(ext)
  if num_frames == 0:
    return np.zeros((0, num_states)), 0.0 if num_states == 1 else np.inf
  alpha = np.zeros((num_frames, num_states))
  alpha[0, 0] = y[0, blank]  # eq. 5
  if num_states > 1:
    alpha[0, 1] = y[0, ext[1]]
  for t in range(1, num_frames):
    for s in range(num_states):
      a = alpha[t - 1, s] + (alpha[t - 1, s - 1] if s >= 1 else 0.0)  # eq. 6
      if s >= 2 and ext[s] != blank and ext[s] != ext[s - 2]:
        a += alpha[t - 1, s - 2]  # eq. 7: the skip over a blank between distinct labels
      alpha[t, s] = a * y[t, ext[s]]
  p = alpha[-1, -1] + (alpha[-1, -2] if num_states > 1 else 0.0)  # eq. 8
  return alpha, -np.log(p) if p > 0 else np.inf


def ctc_brute_force(logprobs, labels, blank=0):
  """-log p(l|x) = -log sum over every path pi of length T with B(pi) = l of prod_t y^t_{pi_t}
  (Graves et al. 2006, eqs. 2-3; B removes repeats, then blanks). K^T paths: tiny inputs only."""
  import itertools  # noqa: PLC0415 - only this reference needs it
  y = np.exp(np.asarray(logprobs, np.float64))
  num_frames, num_classes = y.shape
  target, total = [int(label) for label in labels], 0.0
  for path in itertools.product(range(num_classes), repeat=num_frames):
    collapsed = [k for i, k in enumerate(path) if (i == 0 or k != path[i - 1]) and k != blank]
    if collapsed == target:
      total += np.prod(y[np.arange(num_frames), path])
  return -np.log(total) if total > 0 else np.inf


# --- layer-wise and factored optimizers (issue 14: trust_ratio.py, normalization.py, sm3.py,
# factored.py; optimizers/layerwise.py, optimizers/factored.py)


def _norm64(x):
  return np.sqrt(np.sum(np.square(x)))


def _trust(u, p, min_norm=0.0, trust_coefficient=1.0, eps=0.0):
  """You et al. 2017, Eq. 6: u * eta max(|p|, m) / (max(|u|, m) + eps); 1 where a norm is 0."""
  pn, un = max(_norm64(p), min_norm), max(_norm64(u), min_norm)
  return u if pn == 0 or un == 0 else u * trust_coefficient * pn / (un + eps)


def scale_by_trust_ratio(params, grads, min_norm=0.0, trust_coefficient=1.0, eps=0.0):
  """You et al. 2017 (LARS), Eq. 6: the local learning rate eta |w| / (|g| + eps)."""
  return _loop(params, grads, lambda t, i, p, g: _trust(g, p, min_norm, trust_coefficient, eps))


def scale_by_param_block_norm(params, grads, min_scale=1e-3):
  """u = g max(|p|_2, s) per leaf."""
  return _loop(params, grads, lambda t, i, p, g: g * max(_norm64(p), min_scale))


def scale_by_param_block_rms(params, grads, min_scale=1e-3):
  """Shazeer & Stern 2018, Sec. 8 (relative step): u = g max(RMS(p), eps_2) per leaf."""
  return _loop(params, grads,
               lambda t, i, p, g: g * max(np.sqrt(np.mean(np.square(p))), min_scale))


def normalize_by_update_norm(params, grads, scale_factor=1.0, eps=1e-6):
  """Normalized gradient: u = c g / (|g| + eps), the norm over all leaves together."""
  out = []
  for gs in grads:
    n = np.sqrt(sum(np.sum(np.square(np.asarray(g, np.float64))) for g in gs))
    out.append([scale_factor * np.asarray(g, np.float64) / (n + eps) for g in gs])
  return out


def centralize(params, grads):
  """Yong et al. 2020, Eq. 1: g - mean of g over all axes but the first (rank >= 2 only)."""
  def step(t, i, p, g):
    return g - g.mean(axis=tuple(range(1, g.ndim)), keepdims=True) if g.ndim > 1 else g
  return _loop(params, grads, step)


def scale_by_sm3(params, grads, b1=0.9, b2=1.0, eps=1e-8):
  """Anil et al. 2019, SM3-II: nu(i) = c g(i)^2 + b2 min_{r} mu_r(i_r); mu_r(j) = max over the
  slice i_r = j of nu; m = (1 - b1) g / sqrt(nu + eps) + b1 m (c = 1 - b2, or 1 when b2 = 1).
  Each axis of a leaf is one family of covers; a vector or scalar keeps one accumulator per
  entry."""
  c = 1.0 if b2 == 1.0 else 1.0 - b2
  mus = [[np.zeros(n) for n in p.shape] if p.ndim >= 2 else [np.zeros(p.shape)] for p in params]
  m = _zeros(params)

  def step(t, i, p, g):
    if g.ndim >= 2:
      shapes = [[1] * r + [n] + [1] * (g.ndim - r - 1) for r, n in enumerate(g.shape)]
      prev = np.min(np.stack(np.broadcast_arrays(
          *[mu.reshape(s) for mu, s in zip(mus[i], shapes)])), axis=0)
    else:
      prev = mus[i][0]
    nu = c * g**2 + b2 * prev
    if g.ndim >= 2:
      mus[i] = [nu.max(axis=tuple(a for a in range(g.ndim) if a != r)) for r in range(g.ndim)]
    else:
      mus[i] = [nu]
    up = np.where(nu > 0, g / np.sqrt(nu + eps), 0.0)
    m[i] = (1 - b1) * up + b1 * m[i]
    return m[i].copy()

  return _loop(params, grads, step)


def sm3(params, grads, learning_rate, momentum=0.9):
  """SM3 with momentum, u = -lr m_t (Anil et al. 2019)."""
  return [[-_val(learning_rate, t) * u for u in us]
          for t, us in enumerate(scale_by_sm3(params, grads, b1=momentum))]


def _factored_step(g, state, beta, epsilon, factored, min_dim_size_to_factor):
  """Shazeer & Stern 2018, Algorithms 4/5 (lines 5-7): R, C running means of the squared
  gradient's rows/columns (the two largest axes), V = R C / mean(R); u = g / sqrt(V)."""
  g2 = np.square(g) + epsilon
  dims = None
  if factored and g.ndim >= 2:
    order = np.argsort(g.shape)
    if g.shape[order[-2]] >= min_dim_size_to_factor:
      dims = int(order[-2]), int(order[-1])
  if dims is None:
    state["v"] = beta * state.get("v", 0.0) + (1 - beta) * g2
    return g / np.sqrt(state["v"])
  d1, d0 = dims
  state["r"] = beta * state.get("r", 0.0) + (1 - beta) * g2.mean(axis=d0)
  state["c"] = beta * state.get("c", 0.0) + (1 - beta) * g2.mean(axis=d1)
  reduced_d1 = d1 - 1 if d1 > d0 else d1
  r = state["r"] / state["r"].mean(axis=reduced_d1, keepdims=True)
  v = np.expand_dims(r, d0) * np.expand_dims(state["c"], d1)
  return g / np.sqrt(v)


def scale_by_factored_rms(params, grads, factored=True, decay_rate=0.8, step_offset=0,
                          min_dim_size_to_factor=128, epsilon=1e-30, decay_rate_fn=None):
  """Shazeer & Stern 2018, Algorithms 4/5 with beta_2t = 1 - (t + 1 - offset)^(-c)."""
  assert decay_rate_fn is None
  states = [{} for _ in params]

  def step(t, i, p, g):
    beta = 1.0 - float(t - step_offset + 1) ** (-decay_rate)
    return _factored_step(g, states[i], beta, epsilon, factored, min_dim_size_to_factor)

  return _loop(params, grads, step)


def adafactor(params, grads, learning_rate=None, min_dim_size_to_factor=128, decay_rate=0.8,
              decay_offset=0, multiply_by_parameter_scale=True, clipping_threshold=1.0,
              momentum=None, weight_decay_rate=None, eps=1e-30, factored=True, **_):
  """Shazeer & Stern 2018, Algorithm 4/5: u = g / sqrt(V); u /= max(1, RMS(u) / d);
  step = -lr max(eps_2, RMS(p)) u (+ optional momentum and decoupled decay)."""
  states = [{} for _ in params]
  m = _zeros(params)

  def step(t, i, p, g):
    beta = 1.0 - float(t - decay_offset + 1) ** (-decay_rate)
    u = _factored_step(g, states[i], beta, eps, factored, min_dim_size_to_factor)
    if clipping_threshold is not None:
      u = u / max(1.0, np.sqrt(np.mean(np.square(u))) / clipping_threshold)
    if learning_rate is not None:
      u = _val(learning_rate, t) * u
    if multiply_by_parameter_scale:
      u = u * max(np.sqrt(np.mean(np.square(p))), 1e-3)
    if momentum is not None:
      m[i] = (1 - momentum) * u + momentum * m[i]
      u = m[i].copy()
    if weight_decay_rate is not None:
      u = u + _val(weight_decay_rate, t) * p
    return -u

  return _loop(params, grads, step)


def lamb(params, grads, learning_rate, b1=0.9, b2=0.999, eps=1e-6, eps_root=0.0,
         weight_decay=0.0, **_):
  """You et al. 2020, Algorithm 2: r = m_hat / (sqrt(v_hat) + eps) + lambda p;
  p -= lr |p| / |r| r (ratio 1 where a norm is 0)."""
  m, v = _zeros(params), _zeros(params)

  def step(t, i, p, g):
    m[i] = b1 * m[i] + (1 - b1) * g
    v[i] = b2 * v[i] + (1 - b2) * g**2
    m_hat, v_hat = m[i] / (1 - b1 ** (t + 1)), v[i] / (1 - b2 ** (t + 1))
    r = m_hat / (np.sqrt(v_hat + eps_root) + eps) + _val(weight_decay, t) * p
    return -_val(learning_rate, t) * _trust(r, p)

  return _loop(params, grads, step)


def lars(params, grads, learning_rate, weight_decay=0.0, trust_coefficient=0.001, eps=0.0,
         momentum=0.9, nesterov=False, **_):
  """You et al. 2017, Algorithm 1: local lr = eta |w| / (|g + beta w| + eps);
  v = m v + lr local_lr (g + beta w); p -= v (optax's trace form, the sign folded in)."""
  v = _zeros(params)

  def step(t, i, p, g):
    d = g + _val(weight_decay, t) * p
    u = -_val(learning_rate, t) * _trust(d, p, 0.0, trust_coefficient, eps)
    v[i] = u + momentum * v[i]
    return u + momentum * v[i] if nesterov else v[i].copy()

  return _loop(params, grads, step)


def fromage(params, grads, learning_rate, min_norm=1e-6):
  """Bernstein et al. 2020, Algorithm 1: p <- (p - lr |p| / |g| g) / sqrt(1 + lr^2);
  u = new p - p."""
  def step(t, i, p, g):
    lr = _val(learning_rate, t)
    return (p - lr * _trust(g, p, min_norm)) / np.sqrt(1 + lr**2) - p
  return _loop(params, grads, step)


# --- issue 14 zoo, slice cocob: DoG (per array and global), DoWG, COCOB, MoMo, MoMo-Adam ---------


def _global_loop(params, grads, step):
  """Runs `step(t, ps, gs) -> us` on all leaves at once (global-norm methods); updates params."""
  params = [np.array(p, dtype=np.float64) for p in params]
  out = []
  for t, gs in enumerate(grads):
    us = step(t, params, [np.asarray(g, np.float64) for g in gs])
    for p, u in zip(params, us):
      p += u
    out.append(us)
  return out


def _sqnorm(xs):
  return float(sum(np.sum(np.square(x)) for x in xs))


def scale_by_distance_over_gradients(params, grads, reps_rel=1e-6, eps=1e-8, global_scale=1.0,
                                     **_):
  """Ivgi et al. 2023, layer-wise DoG (Sec. 3 / App.): per array i,
  r_i = max(r_i, ||x_i - x_i0||) with r_i0 = reps_rel (1 + ||x_i0||), G_i += ||g_i||^2,
  u_i = s r_i / sqrt(G_i + eps) g_i."""
  x0 = [np.array(p, np.float64) for p in params]
  r = [reps_rel * (1 + np.sqrt(np.sum(np.square(p)))) for p in x0]
  G = [0.0] * len(params)

  def step(t, i, p, g):
    r[i] = max(r[i], np.sqrt(np.sum(np.square(p - x0[i]))))
    G[i] += np.sum(np.square(g))
    return global_scale * r[i] / np.sqrt(G[i] + eps) * g

  return _loop(params, grads, step)


def _decayed(ps, gs, weight_decay, t):
  wd = 0.0 if weight_decay is None else _val(weight_decay, t)
  return [g + wd * p for p, g in zip(ps, gs)]


def dog(params, grads, learning_rate=1.0, init_step=("heuristic", 1e-6), eps=1e-8,
        weight_decay=None, **_):
  """Ivgi et al. 2023, Algorithm 1 (DoG): r_t = max(r_{t-1}, ||x_t - x_0||),
  G_t = G_{t-1} + ||g_t||^2, eta_t = r_t / sqrt(G_t + eps) (eta_0 given with 'learning_rate'),
  x_{t+1} = x_t - lr eta_t g_t (g_t with decoupled decay wd x_t added)."""
  tag, value = init_step
  x0 = [np.array(p, np.float64) for p in params]
  st = dict(r={"distance": value, "heuristic": value * (1 + np.sqrt(_sqnorm(x0))),
               "learning_rate": 0.0}[tag], G=0.0)

  def step(t, ps, gs):
    gs = _decayed(ps, gs, weight_decay, t)
    st["r"] = max(st["r"], np.sqrt(_sqnorm([p - q for p, q in zip(ps, x0)])))
    st["G"] += _sqnorm(gs)
    eta = st["r"] / np.sqrt(st["G"] + eps)
    if tag == "learning_rate" and t == 0:
      eta = value
    return [-_val(learning_rate, t) * eta * g for g in gs]

  return _global_loop(params, grads, step)


def scale_by_dog(params, grads, init_step, eps=1e-8, **_):
  """DoG's step size alone (u_t = eta_t g_t)."""
  return dog(params, grads, -1.0, init_step, eps)


def dowg(params, grads, learning_rate=1.0, init_estim_sq_dist=None, eps=1e-4,
         weight_decay=None, **_):
  """Khaled et al. 2023, Algorithm 1 (DoWG): r2_t = max(r2_{t-1}, ||x_t - x_0||^2),
  v_t = v_{t-1} + r2_t ||g_t||^2, eta_t = r2_t / (sqrt(v_t) + eps), x_{t+1} = x_t - lr eta_t g_t."""
  x0 = [np.array(p, np.float64) for p in params]
  st = dict(r2=eps if init_estim_sq_dist is None else init_estim_sq_dist, v=0.0)

  def step(t, ps, gs):
    gs = _decayed(ps, gs, weight_decay, t)
    st["r2"] = max(st["r2"], _sqnorm([p - q for p, q in zip(ps, x0)]))
    st["v"] += st["r2"] * _sqnorm(gs)
    eta = st["r2"] / (np.sqrt(st["v"]) + eps)
    return [-_val(learning_rate, t) * eta * g for g in gs]

  return _global_loop(params, grads, step)


def scale_by_dowg(params, grads, init_estim_sq_dist=None, eps=1e-4, **_):
  """DoWG's step size alone (u_t = eta_t g_t)."""
  return dowg(params, grads, -1.0, init_estim_sq_dist, eps)


def cocob(params, grads, learning_rate=1.0, alpha=100.0, eps=1e-8, weight_decay=0.0, **_):
  """Orabona & Tommasi 2017, Algorithm 2 (COCOB-Backprop) on g = lr (grad + wd x):
  L = max(L, |g|), G += |g|, R = max(R - g (x - x0), 0), theta -= g,
  x_new = x0 + theta / (L max(G + L, alpha L)) (L + R)."""
  x0 = [np.array(p, np.float64) for p in params]
  L = [np.full_like(p, eps) for p in x0]
  G, R, theta = _zeros(params), _zeros(params), _zeros(params)

  def step(t, i, p, g):
    g = _val(learning_rate, t) * (g + _val(weight_decay, t) * p)
    L[i] = np.maximum(L[i], np.abs(g))
    G[i] = G[i] + np.abs(g)
    R[i] = np.maximum(R[i] - g * (p - x0[i]), 0)
    theta[i] = theta[i] - g
    return x0[i] + theta[i] / (L[i] * np.maximum(G[i] + L[i], alpha * L[i])) * (L[i] + R[i]) - p

  return _loop(params, grads, step)


def scale_by_cocob(params, grads, alpha=100.0, eps=1e-8, **_):
  return cocob(params, grads, 1.0, alpha, eps, 0.0)


def momo(params, grads, values, learning_rate=1.0, beta=0.9, lower_bound=0.0, weight_decay=0.0,
         adapt_lower_bound=False, b1=None, b2=None, eps=1e-8, adam=False, **_):
  """Schaipp et al. 2023, Algorithm 1 (MoMo) and Algorithm 3 (MoMo-Adam, `adam=True`), with
  weight decay lambda (Sec. 5) and the online lower bound (Sec. 4): f_bar, d, gamma are
  beta-averages of f, g, <g, x> (beta = 0 at the first MoMo step); D = eps + sqrt(v / (1-b2^t));
  tau = min(lr / rho, ((1 + lr lam)(f_bar - rho lb - gamma) + <d, x>)_+ / <d, d / D>);
  x_new = x / (1 + lr lam) - tau d / D (rho = 1 - b1^t for MoMo-Adam, 1 for MoMo)."""
  beta = b1 if adam else beta
  d, v = _zeros(params), _zeros(params)
  st = dict(fbar=0.0, gamma=0.0, lb=lower_bound)

  def step(t, ps, gs):
    bt = beta if (adam or t > 0) else 0.0
    st["fbar"] = bt * st["fbar"] + (1 - bt) * values[t]
    for i, g in enumerate(gs):
      d[i] = bt * d[i] + (1 - bt) * g
      v[i] = b2 * v[i] + (1 - b2) * g * g if adam else v[i]
    st["gamma"] = bt * st["gamma"] + (1 - bt) * sum(np.sum(g * p) for g, p in zip(gs, ps))
    D = [eps + np.sqrt(vi / (1 - b2 ** (t + 1))) if adam else np.ones_like(vi) for vi in v]
    rho = 1 - beta ** (t + 1) if adam else 1.0
    dnorm = sum(np.sum(di * di / Di) for di, Di in zip(d, D))
    iprod = sum(np.sum(di * p) for di, p in zip(d, ps))
    lr, lam = _val(learning_rate, t), _val(weight_decay, t)
    c = 1 + lr * lam
    if adapt_lower_bound:
      cap = c * (st["fbar"] - st["gamma"]) + iprod
      if cap < c * rho * st["lb"]:
        st["lb"] = max(cap / (2 * rho * c), lower_bound)
    t1 = max(c * (st["fbar"] - rho * st["lb"] - st["gamma"]) + iprod, 0.0) / dnorm
    tau = min(lr / rho, t1)
    if adapt_lower_bound:
      st["lb"] = max(((st["fbar"] + iprod - st["gamma"]) - tau * dnorm / 2) / rho, lower_bound)
    return [-(lr * lam) / c * p - tau * di / Di for p, di, Di in zip(ps, d, D)]

  return _global_loop(params, grads, step)


def momo_adam(params, grads, values, learning_rate=1e-2, b1=0.9, b2=0.999, eps=1e-8, **kwargs):
  return momo(params, grads, values, learning_rate, b1=b1, b2=b2, eps=eps, adam=True, **kwargs)


# --- sign slice (issue 14): lion, sign_sgd, signum, rprop, optimistic, polyak, asgd, block
# coordinate descent ---------------------------------------------------------------------------


def scale_by_lion(params, grads, b1=0.9, b2=0.99, mode="hard", smooth_beta=1.0, **_):
  """Chen et al. 2023, Alg. 2: c = b1 m + (1 - b1) g; u = sign(c); m = b2 m + (1 - b2) g."""
  m = _zeros(params)

  def step(t, i, p, g):
    c = b1 * m[i] + (1 - b1) * g
    m[i] = b2 * m[i] + (1 - b2) * g
    if mode == "smooth":
      return np.tanh(smooth_beta * c)
    if mode == "refined":
      return np.where(np.abs(c) < 1.0, c, np.sign(c))
    return np.sign(c)

  return _loop(params, grads, step)


def lion(params, grads, learning_rate, b1=0.9, b2=0.99, weight_decay=1e-3, **_):
  """Chen et al. 2023, Alg. 2 with decoupled decay: p -= lr (sign(c) + wd p)."""
  m = _zeros(params)

  def step(t, i, p, g):
    c = b1 * m[i] + (1 - b1) * g
    m[i] = b2 * m[i] + (1 - b2) * g
    return -_val(learning_rate, t) * (np.sign(c) + _val(weight_decay, t) * p)

  return _loop(params, grads, step)


def sign_sgd(params, grads, learning_rate):
  """Bernstein et al. 2018, Alg. 1: p -= lr sign(g)."""
  return _loop(params, grads, lambda t, i, p, g: -_val(learning_rate, t) * np.sign(g))


def signum(params, grads, learning_rate, beta=0.9, **_):
  """Bernstein et al. 2018, Alg. 3 (Signum): m = beta m + (1 - beta) g; p -= lr sign(m)."""
  m = _zeros(params)

  def step(t, i, p, g):
    m[i] = beta * m[i] + (1 - beta) * g
    return -_val(learning_rate, t) * np.sign(m[i])

  return _loop(params, grads, step)


def scale_by_rprop(params, grads, learning_rate, eta_minus=0.5, eta_plus=1.2,
                   min_step_size=1e-6, max_step_size=50.0, sign=1.0):
  """iRprop- (Igel & Huesken 2003, Fig. 2): grow the step on agreement, shrink and skip (storing
  g = 0) on a sign flip; u = step sign(g)."""
  delta = [np.full_like(np.asarray(p, np.float64), learning_rate) for p in params]
  prev = _zeros(params)

  def step(t, i, p, g):
    s = g * prev[i]
    delta[i] = np.where(s > 0, np.minimum(delta[i] * eta_plus, max_step_size),
                        np.where(s < 0, np.maximum(delta[i] * eta_minus, min_step_size),
                                 delta[i]))
    prev[i] = np.where(s < 0, 0.0, delta[i] * np.sign(g))
    return sign * prev[i]

  return _loop(params, grads, step)


def rprop(params, grads, learning_rate, **kwargs):
  """Rprop's descent step: -u of `scale_by_rprop`."""
  return scale_by_rprop(params, grads, learning_rate, sign=-1.0, **kwargs)


def scale_by_optimistic_gradient(params, grads, alpha=1.0, beta=1.0, lr=None):
  """Mokhtari et al. 2020, eq. (OGDA): u = (alpha + beta) g_t - beta g_{t-1}, g_0 = g_1."""
  prev = [None] * len(params)

  def step(t, i, p, g):
    g_prev = g if prev[i] is None else prev[i]
    prev[i] = g
    u = (alpha + beta) * g - beta * g_prev
    return u if lr is None else -_val(lr, t) * u

  return _loop(params, grads, step)


def optimistic_gradient_descent(params, grads, learning_rate, alpha=1.0, beta=1.0):
  """p -= lr ((alpha + beta) g_t - beta g_{t-1})."""
  return scale_by_optimistic_gradient(params, grads, alpha, beta, lr=learning_rate)


def polyak_sgd(params, grads, values, max_learning_rate=1.0, scaling=1.0, f_min=0.0, eps=0.0,
               variant="sps", sign=-1.0):
  """Loizou et al. 2021, SPS_max (eq. 5) on the scaled gradient s g (optax's chain):
  gamma = min((f - f*) / (||s g||^2 + eps), gamma_max); u = -gamma s g (`sign=1`, `scaling=1`:
  the primitive scale_by_polyak)."""
  out = []
  for t, gs in enumerate(grads):
    s = _val(scaling, t)
    sg = [s * np.asarray(g, np.float64) for g in gs]
    sq = sum(float(np.sum(x * x)) for x in sg)
    gap = values[t] - f_min
    if variant == "sps+":
      gap = max(gap, 0.0)
    gamma = 0.0 if sq + eps <= np.finfo(float).eps else min(gap / (sq + eps), max_learning_rate)
    out.append([sign * gamma * x for x in sg])
  return out


def scale_by_polyak(params, grads, values, **kwargs):
  """The Polyak step gamma g (no sgd scaling, no sign flip)."""
  return polyak_sgd(params, grads, values, sign=1.0, **kwargs)


def asgd(params, grads, learning_rate=1e-2, lambd=1e-4, alpha=0.75, t0=1e6, weight_decay=0.0,
         return_averages=False, **_):
  """torch.optim.ASGD (Polyak & Juditsky 1992; Bottou 2010): eta_t = lr / (1 + lambd lr (t-1))^alpha,
  p <- p (1 - lambd eta) - eta (g + wd p); ax <- p if mu = 1 else ax + mu (p - ax),
  mu_t = 1 / max(1, t - 1 - t0). Returns the updates (and the averages)."""
  ps = [np.array(p, np.float64) for p in params]
  ax = [np.zeros_like(p) for p in ps]
  out, avgs = [], []
  for t, gs in enumerate(grads):  # t = step - 1
    eta = learning_rate / (1 + lambd * learning_rate * t) ** alpha
    mu = 1.0 / max(1.0, t - t0)
    us = []
    for i, (p, g) in enumerate(zip(ps, gs)):
      new = p * (1 - lambd * eta) - eta * (np.asarray(g, np.float64) + weight_decay * p)
      us.append(new - p)
      ps[i] = new
      ax[i] = new.copy() if mu == 1 else ax[i] + mu * (new - ax[i])
    out.append(us)
    avgs.append([a.copy() for a in ax])
  return (out, avgs) if return_averages else out


def block_coordinate_descent_sgd_momentum(params, grads, leaf_blocks, n_blocks, learning_rate,
                                          momentum, steps_per_block=1):
  """Goodfellow et al., Sec. 8.7.2, cyclic blocks: block k_t = floor(t / s) mod K takes a heavy-
  ball step (v = g + mu v; u = -lr v); the other blocks get 0 and their v does not move.
  `leaf_blocks[i]` is leaf i's block index."""
  v = _zeros(params)

  def step(t, i, p, g):
    if leaf_blocks[i] != (t // steps_per_block) % n_blocks:
      return np.zeros_like(g)
    v[i] = g + momentum * v[i]
    return -learning_rate * v[i]

  return _loop(params, grads, step)


def scale_by_asgd(params, grads, learning_rate=1e-2, lambd=1e-4, alpha=0.75):
  """ASGD's step before the sign flip: u = eta_t (g + lambd p), eta_t as in `asgd`."""
  return _loop(params, grads, lambda t, i, p, g: learning_rate / (
      1 + lambd * learning_rate * t) ** alpha * (g + lambd * p))


# --- contrib: madgrad, acprop, ademamix, simplified_ademamix, adopt ---------------------------


def scale_by_madgrad(params, grads, learning_rate, momentum=0.9, eps=1e-6, weight_decay=0.0,
                     **_):
  """Defazio & Jelassi 2021, Algorithm 1 (with optax's / the PyTorch code's eps added to the rate):
  lambda_k = (lr_k + eps) sqrt(k + 1), s += lambda g, G += lambda g^2,
  z = x0 - s / (G^(1/3) + eps), x_new = (1 - c) z + c x, u = x_new - x.
  `weight_decay` (the alias) adds weight_decay * x to g first (L2)."""
  x0 = [np.array(p, np.float64) for p in params]
  s, G = _zeros(params), _zeros(params)

  def step(t, i, p, g):
    g = g + _val(weight_decay, t) * p
    lamb = (_val(learning_rate, t) + eps) * np.sqrt(t + 1)
    s[i] = s[i] + lamb * g
    G[i] = G[i] + lamb * g * g
    z = x0[i] - s[i] / (np.cbrt(G[i]) + eps)
    return (1 - momentum) * z + momentum * p - p

  return _loop(params, grads, step)


def madgrad(params, grads, learning_rate, momentum=0.9, weight_decay=0.0, eps=1e-6, **_):
  """MADGRAD with L2 decay on the gradient (optax's alias)."""
  return scale_by_madgrad(params, grads, learning_rate, momentum, eps, weight_decay)


def scale_by_acprop(params, grads, b1=0.9, b2=0.999, eps=1e-16, eps_root=1e-16,
                    learning_rate=None, weight_decay=0.0, **_):
  """Zhuang et al. 2021, Algorithm 2 (optax's form): m_t = b1 m + (1 - b1) g,
  s_t = b2 s + (1 - b2) (g - m_{t-1})^2 + eps_root, u_t = g / (sqrt(s_{t-1} / (1 - b2^(t-1)))
  + eps), with s_0-hat = 1 at t = 1. With a learning rate (the alias): -lr (u + wd p)."""
  m, s = _zeros(params), _zeros(params)

  def step(t, i, p, g):
    s_hat = np.ones_like(g) if t == 0 else s[i] / (1 - b2 ** t)
    u = g / (np.sqrt(s_hat) + eps)
    s[i] = b2 * s[i] + (1 - b2) * (g - m[i]) ** 2 + eps_root
    m[i] = b1 * m[i] + (1 - b1) * g
    if learning_rate is None:
      return u
    return -_val(learning_rate, t) * (u + _val(weight_decay, t) * p)

  return _loop(params, grads, step)


def acprop(params, grads, learning_rate, b1=0.9, b2=0.999, eps=1e-16, eps_root=1e-16,
           weight_decay=0.0, **_):
  return scale_by_acprop(params, grads, b1, b2, eps, eps_root, learning_rate, weight_decay)


def scale_by_ademamix(params, grads, b1=0.9, b2=0.999, b3=0.9999, alpha=6.0, eps=1e-8,
                      eps_root=0.0, learning_rate=None, weight_decay=0.0, **_):
  """Pagliardini et al. 2024, Algorithm 1: m1 = b1 m1 + (1 - b1) g, m2 = b3_t m2 + (1 - b3_t) g,
  nu = b2 nu + (1 - b2) g^2, u = (m1 / (1 - b1^t) + alpha_t m2) / (sqrt(nu / (1 - b2^t)
  + eps_root) + eps); b3_t, alpha_t are schedules of the 0-based step. Alias: -lr (u + wd p)."""
  m1, m2, nu = _zeros(params), _zeros(params), _zeros(params)

  def step(t, i, p, g):
    b3_t, alpha_t = _val(b3, t), _val(alpha, t)
    m1[i] = b1 * m1[i] + (1 - b1) * g
    m2[i] = b3_t * m2[i] + (1 - b3_t) * g
    nu[i] = b2 * nu[i] + (1 - b2) * g * g
    u = (m1[i] / (1 - b1 ** (t + 1)) + alpha_t * m2[i]) / (
        np.sqrt(nu[i] / (1 - b2 ** (t + 1)) + eps_root) + eps)
    if learning_rate is None:
      return u
    return -_val(learning_rate, t) * (u + _val(weight_decay, t) * p)

  return _loop(params, grads, step)


def ademamix(params, grads, learning_rate, b1=0.9, b2=0.999, b3=0.9999, alpha=5.0, eps=1e-8,
             eps_root=0.0, weight_decay=0.0, **_):
  return scale_by_ademamix(params, grads, b1, b2, b3, alpha, eps, eps_root, learning_rate,
                           weight_decay)


def scale_by_simplified_ademamix(params, grads, b1=0.99, b2=0.95, alpha=0.0, eps=1e-8,
                                 eps_root=0.0, learning_rate=None, weight_decay=0.0, **_):
  """Morwani et al. 2025: m = b1 m + g (no damping), n = b2 n + (1 - b2) g^2,
  u = (m + alpha_t g) / (sqrt(n / (1 - b2^t) + eps_root) + eps). Alias: -lr (u + wd p)."""
  m, n = _zeros(params), _zeros(params)

  def step(t, i, p, g):
    m[i] = b1 * m[i] + g
    n[i] = b2 * n[i] + (1 - b2) * g * g
    u = (m[i] + _val(alpha, t) * g) / (np.sqrt(n[i] / (1 - b2 ** (t + 1)) + eps_root) + eps)
    if learning_rate is None:
      return u
    return -_val(learning_rate, t) * (u + _val(weight_decay, t) * p)

  return _loop(params, grads, step)


def simplified_ademamix(params, grads, learning_rate, b1=0.99, b2=0.95, alpha=0.0, eps=1e-8,
                        eps_root=0.0, weight_decay=0.0, **_):
  return scale_by_simplified_ademamix(params, grads, b1, b2, alpha, eps, eps_root, learning_rate,
                                      weight_decay)


def scale_by_adopt(params, grads, b1=0.9, b2=0.9999, eps=1e-6, nesterov=False,
                   use_clipping=True, learning_rate=None, **_):
  """Taniguchi et al. 2024, Algorithm 2 with clipping c_t = t^(1/4) (t 0-based): v_0 = g_0^2,
  m_0 = 0, u_0 = 0; for t >= 1: g_hat = clip(g / max(sqrt(v_{t-1}), eps), c_t),
  m = b1 m + (1 - b1) g_hat, v = b2 v + (1 - b2) g^2, u = m (nesterov: b1 m + (1 - b1) g_hat)."""
  # optax's (and gradtx's) b1, b2 are float32 arrays (picked with jnp.where): 1 - float32(0.9999)
  # is 4.7e-5 relative off 1e-4, which an unclipped ADOPT amplifies; use the float32 values.
  b1, b2 = float(np.float32(b1)), float(np.float32(b2))
  m, v = _zeros(params), _zeros(params)

  def step(t, i, p, g):
    if t == 0:
      v[i] = g * g
      u = np.zeros_like(g)
    else:
      g_hat = g / np.maximum(np.sqrt(v[i]), eps)
      if use_clipping:
        g_hat = np.clip(g_hat, -t ** 0.25, t ** 0.25)
      m[i] = b1 * m[i] + (1 - b1) * g_hat
      v[i] = b2 * v[i] + (1 - b2) * g * g
      u = b1 * m[i] + (1 - b1) * g_hat if nesterov else m[i].copy()
    return u if learning_rate is None else -_val(learning_rate, t) * u

  return _loop(params, grads, step)


def adopt(params, grads, learning_rate, b1=0.9, b2=0.9999, eps=1e-6, nesterov=False,
          use_clipping=True, **_):
  return scale_by_adopt(params, grads, b1, b2, eps, nesterov, use_clipping, learning_rate)


# ---- belief.py, yogi.py, radam.py, adan.py, novograd.py and optimizers/adaptive.py ----
# Each `_<algo>_step` returns the per-leaf step closure (its moments live in the closure), so the
# primitive's reference is `_loop(params, grads, step)` and the alias's adds the weight decay and
# the learning rate around the same step.


def _belief_step(params, b1=0.9, b2=0.999, eps=1e-16, eps_root=1e-16, nesterov=False, **_):
  """AdaBelief (Zhuang et al. 2020, Algorithm 2), t = 1, 2, ...: m_t = b1 m + (1 - b1) g,
  s_t = b2 s + (1 - b2)(g - m_t)^2 + eps_root, u = m_hat / (sqrt(s_t / (1 - b2^t)) + eps);
  nesterov: m_hat = b1 m_t / (1 - b1^(t+1)) + (1 - b1) g / (1 - b1^t) (optax's form)."""
  m, s = _zeros(params), _zeros(params)

  def step(k, i, p, g):
    t = k + 1
    m[i] = b1 * m[i] + (1 - b1) * g
    s[i] = b2 * s[i] + (1 - b2) * (g - m[i]) ** 2 + eps_root
    if nesterov:
      m_hat = b1 * m[i] / (1 - b1 ** (t + 1)) + (1 - b1) * g / (1 - b1 ** t)
    else:
      m_hat = m[i] / (1 - b1 ** t)
    return m_hat / (np.sqrt(s[i] / (1 - b2 ** t)) + eps)

  return step


def scale_by_belief(params, grads, **hyperparameters):
  return _loop(params, grads, _belief_step(params, **hyperparameters))


def _yogi_step(params, b1=0.9, b2=0.999, eps=1e-3, eps_root=0.0, initial_accumulator_value=1e-6,
               **_):
  """Yogi (Zaheer et al. 2018, Algorithm 2): m = b1 m + (1 - b1) g,
  v = v - (1 - b2) sign(v - g^2) g^2, with optax's bias corrections and m_0 = v_0 = the initial
  accumulator value: u = [m / (1 - b1^t)] / (sqrt(v / (1 - b2^t) + eps_root) + eps)."""
  m = _adaptive_full(params, initial_accumulator_value)
  v = _adaptive_full(params, initial_accumulator_value)

  def step(k, i, p, g):
    t = k + 1
    m[i] = b1 * m[i] + (1 - b1) * g
    v[i] = v[i] - (1 - b2) * np.sign(v[i] - g * g) * g * g
    return m[i] / (1 - b1 ** t) / (np.sqrt(v[i] / (1 - b2 ** t) + eps_root) + eps)

  return step


def scale_by_yogi(params, grads, **hyperparameters):
  return _loop(params, grads, _yogi_step(params, **hyperparameters))


def _radam_step(params, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, threshold=5.0,
                nesterov=False, torch_form=False, **_):
  """RAdam (Liu et al. 2020, Algorithm 2): rho_inf = 2 / (1 - b2) - 1,
  rho_t = rho_inf - 2 t b2^t / (1 - b2^t); if rho_t >= threshold (torch: >),
  u = r_t m_hat / (sqrt(v_hat + eps_root) + eps) with
  r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t)), else m_hat.
  torch_form: torch.optim.RAdam's u = r_t m_hat sqrt(1 - b2^t) / (sqrt(v) + eps)."""
  m, v = _zeros(params), _zeros(params)
  rho_inf = 2 / (1 - b2) - 1

  def step(k, i, p, g):
    t = k + 1
    m[i] = b1 * m[i] + (1 - b1) * g
    v[i] = b2 * v[i] + (1 - b2) * g * g
    if nesterov:
      m_hat = b1 * m[i] / (1 - b1 ** (t + 1)) + (1 - b1) * g / (1 - b1 ** t)
    else:
      m_hat = m[i] / (1 - b1 ** t)
    rho = rho_inf - 2 * t * b2 ** t / (1 - b2 ** t)
    if not (rho > threshold if torch_form else rho >= threshold):
      return m_hat
    r = np.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
    if torch_form:
      return r * m_hat * np.sqrt(1 - b2 ** t) / (np.sqrt(v[i] + eps_root) + eps)
    return r * m_hat / (np.sqrt(v[i] / (1 - b2 ** t) + eps_root) + eps)

  return step


def scale_by_radam(params, grads, **hyperparameters):
  return _loop(params, grads, _radam_step(params, **hyperparameters))


def _adan_step(params, b1=0.98, b2=0.92, b3=0.99, eps=1e-8, eps_root=0.0, **_):
  """Adan (Xie et al., Algorithm 1, optax's convention b = the old average's weight):
  d = g - g_prev (0 at t = 1), m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) d,
  n = b3 n + (1 - b3) (g + (1 - b2) d)^2,
  u = (m_hat + (1 - b2) v_hat) / (sqrt(n_hat + eps_root) + eps), x_hat = x / (1 - b^t)."""
  m, v, n, prev = _zeros(params), _zeros(params), _zeros(params), _zeros(params)

  def step(k, i, p, g):
    t = k + 1
    d = np.zeros_like(g) if k == 0 else g - prev[i]
    prev[i] = g
    m[i] = b1 * m[i] + (1 - b1) * g
    v[i] = b2 * v[i] + (1 - b2) * d
    n[i] = b3 * n[i] + (1 - b3) * (g + (1 - b2) * d) ** 2
    m_hat, v_hat, n_hat = m[i] / (1 - b1 ** t), v[i] / (1 - b2 ** t), n[i] / (1 - b3 ** t)
    return (m_hat + (1 - b2) * v_hat) / (np.sqrt(n_hat + eps_root) + eps)

  return step


def scale_by_adan(params, grads, **hyperparameters):
  return _loop(params, grads, _adan_step(params, **hyperparameters))


def _novograd_step(params, b1=0.9, b2=0.25, eps=1e-8, eps_root=0.0, weight_decay=0.0, **_):
  """NovoGrad (Ginsburg et al. 2019, Algorithm 1), per leaf l: v_1 = ||g_1||^2,
  v_t = b2 v + (1 - b2) ||g_t||^2, d = g / (sqrt(v_t + eps_root) + eps) + wd w,
  m_1 = d, m_t = b1 m + d; u = m."""
  m, v = _zeros(params), [0.0 for _ in params]

  def step(k, i, p, g):
    norm_sq = float(np.sum(g * g))
    v[i] = norm_sq if k == 0 else b2 * v[i] + (1 - b2) * norm_sq
    d = g / (np.sqrt(v[i] + eps_root) + eps) + _val(weight_decay, k) * p
    m[i] = d if k == 0 else b1 * m[i] + d
    return m[i].copy()

  return step


def scale_by_novograd(params, grads, **hyperparameters):
  return _loop(params, grads, _novograd_step(params, **hyperparameters))


def _alias_loop(params, grads, step, learning_rate, weight_decay=0.0, decay_first=False):
  """u = -lr (step(g) + wd p) (decoupled), or -lr step(g + wd p) with `decay_first` (L2)."""
  def alias_step(k, i, p, g):
    wd = _val(weight_decay, k)
    direction = step(k, i, p, g + wd * p) if decay_first else step(k, i, p, g) + wd * p
    return -_val(learning_rate, k) * direction

  return _loop(params, grads, alias_step)


def adabelief(params, grads, learning_rate, **hyperparameters):
  return _alias_loop(params, grads, _belief_step(params, **hyperparameters), learning_rate)


def yogi(params, grads, learning_rate, **hyperparameters):
  return _alias_loop(params, grads, _yogi_step(params, **hyperparameters), learning_rate)


def radam(params, grads, learning_rate, weight_decay=None, decoupled_weight_decay=False,
          **hyperparameters):
  """optax's radam; with weight_decay: L2 before the moments, or (decoupled_weight_decay)
  torch's p (1 - lr wd) - lr u in torch's arithmetic."""
  step = _radam_step(params, torch_form=decoupled_weight_decay, **hyperparameters)
  return _alias_loop(params, grads, step, learning_rate, weight_decay or 0.0,
                     decay_first=not decoupled_weight_decay)


def radam_torch(params, grads, learning_rate, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0,
                decoupled_weight_decay=False, **_):
  """torch.optim.RAdam's documented algorithm (torch 2.x, _single_tensor_radam): the decay
  p *= 1 - lr wd (decoupled) or g += wd p; m, v as Adam; rho_t > 5:
  p -= lr m_hat sqrt(1 - b2^t) / (sqrt(v) + eps) r_t, else p -= lr m_hat. Returns p_new - p."""
  m, v = _zeros(params), _zeros(params)
  rho_inf = 2 / (1 - b2) - 1

  def step(k, i, p, g):
    t, lr, old = k + 1, _val(learning_rate, k), p.copy()
    if decoupled_weight_decay:
      p = p * (1 - lr * weight_decay)
    else:
      g = g + weight_decay * p
    m[i] = b1 * m[i] + (1 - b1) * g
    v[i] = b2 * v[i] + (1 - b2) * g * g
    bc1, bc2 = 1 - b1 ** t, 1 - b2 ** t
    rho = rho_inf - 2 * t * b2 ** t / bc2
    if rho > 5.0:
      rect = np.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
      p = p - m[i] / bc1 * lr * (np.sqrt(bc2) / (np.sqrt(v[i]) + eps)) * rect
    else:
      p = p - m[i] / bc1 * lr
    return p - old

  return _loop(params, grads, step)


def adan(params, grads, learning_rate, eps_root=1e-8, weight_decay=0.0, **hyperparameters):
  return _alias_loop(params, grads, _adan_step(params, eps_root=eps_root, **hyperparameters),
                     learning_rate, weight_decay)


def novograd(params, grads, learning_rate, eps=1e-6, **hyperparameters):
  return _alias_loop(params, grads, _novograd_step(params, eps=eps, **hyperparameters),
                     learning_rate)


# ---- Learning-rate-free optimizers (gradtx/contrib: schedule_free, prodigy, dadapt, mechanic) ----


def _warmup_value(learning_rate, warmup_steps, t):
  """optax's warmup_constant_schedule(0, lr, W) at step t: lr min(t, W) / W (lr when W is None)."""
  if warmup_steps is None:
    return _val(learning_rate, t)
  return learning_rate * min(t, warmup_steps) / warmup_steps if warmup_steps else learning_rate


def schedule_free(params, grads, learning_rate, b1=0.9, weight_lr_power=2.0, weight_decay=None,
                  warmup_steps=None, adam=False, b2=0.999, eps=1e-8, **_):
  """Defazio et al. 2024, "The Road Less Scheduled", Algorithm 1 (SGD) and the AdamW variant:
    y_t = (1 - b1) z_t + b1 x_t                         (the params, where gradients are taken)
    z_{t+1} = z_t - gamma_t (g_t + lambda y_t)          (SGD)
    z_{t+1} = z_t - gamma_t (g_t / (sqrt(v_t / (1 - b2^t)) + eps) + lambda y_t)    (AdamW, b1 = 0)
    c_{t+1} = gamma_max^r / sum_{i<=t} gamma_max,i^r,   x_{t+1} = (1 - c_{t+1}) x_t + c_{t+1} z_{t+1}
  gamma_max is the largest learning rate so far (the authors' code). As optax, the base step's
  schedule is read at the 0-based step t and the averaging weight's at the 1-based step t + 1.
  Returns the updates y_{t+1} - y_t."""
  y = [np.array(p, np.float64) for p in params]
  z = [p.copy() for p in y]
  x = [p.copy() for p in y]
  v = [np.zeros_like(p) for p in y]
  weight_sum, lr_max = 0.0, 0.0
  out = []
  for t, gs in enumerate(grads):
    gs = [np.asarray(g, np.float64) for g in gs]
    gamma = _warmup_value(learning_rate, warmup_steps, t)
    lr_max = max(lr_max, _warmup_value(learning_rate, warmup_steps, t + 1))
    weight = lr_max**weight_lr_power
    weight_sum += weight
    c = weight / weight_sum if weight_sum else 0.0
    lam = 0.0 if weight_decay is None else _val(weight_decay, t)
    new_y = []
    for i, g in enumerate(gs):
      if adam:
        v[i] = b2 * v[i] + (1 - b2) * g * g
        step = g / (np.sqrt(v[i] / (1 - b2**(t + 1))) + eps)
      else:
        step = g
      z[i] = z[i] - gamma * (step + lam * y[i])
      x[i] = (1 - c) * x[i] + c * z[i]
      new_y.append((1 - b1) * z[i] + b1 * x[i])
    out.append([ny - yi for ny, yi in zip(new_y, y)])
    y = new_y
  return out


def schedule_free_adamw(params, grads, **kw):
  """schedule_free with the AdamW base step (b1 = 0 Adam, bias-corrected v, eps outside)."""
  return schedule_free(params, grads, adam=True, **{"weight_decay": 0.0, **kw})


def _global_sum(tree):
  return float(sum(np.sum(x) for x in tree))


def prodigy(params, grads, learning_rate=1.0, betas=(0.9, 0.999), beta3=None, eps=1e-8,
            estim_lr0=1e-6, estim_lr_coef=1.0, weight_decay=0.0, safeguard_warmup=False, **_):
  """Mishchenko & Defazio 2024, "Prodigy", Algorithm 4 (Adam version), with the bias
  correction folded into eta_k as in the authors' code:
    eta_k = gamma_k sqrt(1 - b2^{k+1}) / (1 - b1^{k+1})
    m = b1 m + (1 - b1) d g,   v = b2 v + (1 - b2) d^2 g^2
    r = b3 r + (1 - b3) eta d^2 <g, x0 - x>,   s = b3 s + (1 - b3) eta d^2 g   (no eta: safeguard)
    d_{k+1} = max(d, c r / ||s||_1)
    x -= eta d (lambda x + m / (sqrt(v) + d_{k+1} eps))."""
  b1, b2 = betas
  b3 = np.sqrt(b2) if beta3 is None else beta3
  x = [np.array(p, np.float64) for p in params]
  x0 = [p.copy() for p in x]
  m = [np.zeros_like(p) for p in x]
  v = [np.zeros_like(p) for p in x]
  s = [np.zeros_like(p) for p in x]
  r, d = 0.0, float(estim_lr0)
  out = []
  for k, gs in enumerate(grads):
    gs = [np.asarray(g, np.float64) for g in gs]
    eta = _val(learning_rate, k) * np.sqrt(1 - b2**(k + 1)) / (1 - b1**(k + 1))
    r = b3 * r + (1 - b3) * eta * d**2 * _global_sum([g * (p0 - p) for g, p0, p in zip(gs, x0, x)])
    for i, g in enumerate(gs):
      m[i] = b1 * m[i] + (1 - b1) * d * g
      v[i] = b2 * v[i] + (1 - b2) * d**2 * g * g
      s[i] = b3 * s[i] + (1 - b3) * (1.0 if safeguard_warmup else eta) * d**2 * g
    d_new = max(d, estim_lr_coef * r / _global_sum([np.abs(si) for si in s]))
    wd = _val(weight_decay, k)
    us = [-eta * d * (wd * xi + mi / (np.sqrt(vi) + d_new * eps)) for xi, mi, vi in zip(x, m, v)]
    for xi, u in zip(x, us):
      xi += u
    d = d_new
    out.append(us)
  return out


def dadapt_adamw(params, grads, learning_rate=1.0, betas=(0.9, 0.999), eps=1e-8, estim_lr0=1e-6,
                 weight_decay=0.0, **_):
  """Defazio & Mishchenko 2023, "Learning-Rate-Free Learning by D-Adaptation", Algorithm 4
  (D-Adapt Adam), with the bias correction folded into the step as in the authors' code:
    lam_k = d_k gamma_k sqrt(1 - b2^{k+1}) / (1 - b1^{k+1})
    r = sqrt(b2) r + (1 - sqrt(b2)) lam <g, s / (sqrt(v) + eps)>     (previous s and v)
    m = b1 m + (1 - b1) lam g,  v = b2 v + (1 - b2) g^2,  s = sqrt(b2) s + (1 - sqrt(b2)) lam g
    d_{k+1} = max(d_k, r / ((1 - sqrt(b2)) ||s||_1))
    x -= omega lam x + m / (sqrt(v) + eps)."""
  b1, b2 = betas
  sb2 = np.sqrt(b2)
  x = [np.array(p, np.float64) for p in params]
  m = [np.zeros_like(p) for p in x]
  v = [np.zeros_like(p) for p in x]
  s = [np.zeros_like(p) for p in x]
  r, d = 0.0, float(estim_lr0)
  out = []
  for k, gs in enumerate(grads):
    gs = [np.asarray(g, np.float64) for g in gs]
    lam = d * _val(learning_rate, k) * np.sqrt(1 - b2**(k + 1)) / (1 - b1**(k + 1))
    r = sb2 * r + (1 - sb2) * lam * _global_sum(
        [g * si / (np.sqrt(vi) + eps) for g, si, vi in zip(gs, s, v)])
    for i, g in enumerate(gs):
      m[i] = b1 * m[i] + (1 - b1) * lam * g
      v[i] = b2 * v[i] + (1 - b2) * g * g
      s[i] = sb2 * s[i] + (1 - sb2) * lam * g
    d = max(d, r / ((1 - sb2) * _global_sum([np.abs(si) for si in s])))
    wd = _val(weight_decay, k)
    us = [-wd * lam * xi - mi / (np.sqrt(vi) + eps) for xi, mi, vi in zip(x, m, v)]
    for xi, u in zip(x, us):
      xi += u
    out.append(us)
  return out


def mechanize(params, grads, base_lr, weight_decay=1e-2, eps=1e-8, s_init=1e-6, num_betas=6,
              **_):
  """Cutkosky, Defazio & Mehta 2023, "Mechanic: A Learning Rate Tuner", Algorithm 1, around
  SGD (base update u_t = -base_lr g_t):
    g~ = g + lambda sum(s) ||g|| / (||x|| + eps) x,   Delta = (x0 - x) / (sum(s) + eps)
    h = <g~, Delta>;  per beta_j = 1 - 10^-j:  m_j = max(beta_j m_j, |h| + eps),
    v_j = beta_j^2 v_j + h^2,  r_j = beta_j r_j + clip(h, -m_j_old, m_j_old) s_j,
    s_j = ((s_init / n) m_j + max(0, r_j)) / (sqrt(v_j) + eps);  x = x0 - sum(s) (Delta - u)."""
  betas = np.array([1.0 - 0.1**j for j in range(1, num_betas + 1)])
  x = [np.array(p, np.float64) for p in params]
  x0 = [p.copy() for p in x]
  r, m, v = np.zeros(num_betas), np.zeros(num_betas), np.zeros(num_betas)
  s = np.full(num_betas, float(s_init))
  out = []
  for t, gs in enumerate(grads):
    gs = [np.asarray(g, np.float64) for g in gs]
    s_sum = s.sum()
    gnorm = np.sqrt(_global_sum([g * g for g in gs]))
    pnorm = np.sqrt(_global_sum([p * p for p in x]))
    gt = [g + _val(weight_decay, t) * s_sum * gnorm / (pnorm + eps) * p for g, p in zip(gs, x)]
    delta = [(a - p) / (s_sum + eps) for a, p in zip(x0, x)]
    h = _global_sum([a * b for a, b in zip(gt, delta)])
    clipped = np.clip(h, -m, m)
    m = np.maximum(betas * m, abs(h) + eps)
    v = betas**2 * v + h**2
    r = betas * r + clipped * s
    s = ((s_init / num_betas) * m + np.maximum(0.0, r)) / (np.sqrt(v) + eps)
    new_x = [a - s.sum() * (dl + base_lr * g) for a, dl, g in zip(x0, delta, gs)]
    out.append([nx - p for nx, p in zip(new_x, x)])
    x = new_x
  return out


# --- contrib: muon, galore, normalize (issue 14, slice "matrix") -------------------------------

def _spec_leaves(tree):
  """A pytree of dimension-number specs / None flattened in jax's leaf order (sorted dict keys)."""
  if tree is None or hasattr(tree, "_fields"):
    return [tree]
  if isinstance(tree, dict):
    return [s for k in sorted(tree) for s in _spec_leaves(tree[k])]
  return [s for sub in tree for s in _spec_leaves(sub)]


def _view(x, spec):
  """(to_matrix, from_matrix, fan_in, fan_out): `x` as (batch, reduction, output) matrices."""
  ax = lambda a: tuple(i % x.ndim for i in ((a,) if isinstance(a, int) else a))
  red, out = ax(spec.reduction_axis), ax(spec.output_axis)
  rest = tuple(i for i in range(x.ndim) if i not in red + out)
  perm = rest + red + out
  size = lambda axes: int(np.prod([x.shape[i] for i in axes]))
  shape = [x.shape[i] for i in perm]
  to = lambda y: y.transpose(perm).reshape(size(rest), size(red), size(out))
  back = lambda y: y.reshape(shape).transpose(np.argsort(perm))
  return to, back, size(red), size(out)


def newton_schulz(x, ns_coeffs=(3.4445, -4.7750, 2.0315), ns_steps=5, eps=1e-8):
  """Jordan 2024 (Muon): X_0 = G / (||G||_F + eps), X_{k+1} = a X + (b A + c A^2) X, A = X X^T,
  on the wide orientation of G (f(X^T) = f(X)^T)."""
  x = np.asarray(x, np.float64)
  transposed = x.shape[0] > x.shape[1]
  x = x.T if transposed else x
  x = x / (np.linalg.norm(x) + eps)
  coeffs = np.asarray(ns_coeffs, np.float64)
  for a, b, c in ([coeffs] * ns_steps if coeffs.ndim == 1 else coeffs):
    gram = x @ x.T
    x = a * x + (b * gram + c * gram @ gram) @ x
  return x.T if transposed else x


def _muon_leaf(m, g, t, beta, nesterov):
  """m_t = beta m + (1 - beta) g; nesterov mu_hat = beta m_t/(1-beta^{t+1}) + (1-beta) g/(1-beta^t)."""
  if nesterov:
    return beta * m / (1 - beta ** (t + 1)) + (1 - beta) * g / (1 - beta ** t)
  return m / (1 - beta ** t)


def scale_by_muon(params, grads, ns_coeffs=(3.4445, -4.7750, 2.0315), ns_steps=5, beta=0.95,
                  eps=1e-8, nesterov=True, weight_dimension_numbers=None, **_):
  """Muon's orthogonalized Nesterov momentum (Jordan 2024), batch axes independent."""
  specs = _spec_leaves(weight_dimension_numbers)
  m = [np.zeros_like(np.asarray(p, np.float64)) for p in params]

  def step(t, i, p, g):
    m[i] = beta * m[i] + (1 - beta) * g
    mu_hat = _muon_leaf(m[i], g, t + 1, beta, nesterov)
    if specs[i] is None:
      return mu_hat
    to, back, _, _ = _view(mu_hat, specs[i])
    return back(np.stack([newton_schulz(x, ns_coeffs, ns_steps, eps) for x in to(mu_hat)]))

  return _loop(params, grads, step)


def muon(params, grads, learning_rate, beta=0.95, eps=1e-8, adam_b1=0.9, adam_b2=0.999, **_):
  """optax's muon: Muon with width scaling sqrt(max(1, fan_out/fan_in)) on the 2-D leaves,
  Nesterov Adam on the others (Jordan 2024; Kingma & Ba with Dozat's Nesterov form)."""
  m = [np.zeros_like(np.asarray(p, np.float64)) for p in params]
  v = [np.zeros_like(np.asarray(p, np.float64)) for p in params]

  def step(t, i, p, g):
    n = t + 1
    if p.ndim == 2:
      m[i] = beta * m[i] + (1 - beta) * g
      u = newton_schulz(_muon_leaf(m[i], g, n, beta, True), eps=eps)
      return -learning_rate * np.sqrt(max(1.0, p.shape[1] / p.shape[0])) * u
    m[i] = adam_b1 * m[i] + (1 - adam_b1) * g
    v[i] = adam_b2 * v[i] + (1 - adam_b2) * g * g
    mu_hat = _muon_leaf(m[i], g, n, adam_b1, True)
    return -learning_rate * mu_hat / (np.sqrt(v[i] / (1 - adam_b2 ** n)) + eps)

  return _loop(params, grads, step)


def scale_by_galore(params, grads, rank=128, update_proj_gap=200, scale=1.0, weight_decay=0.0,
                    learning_rate=None, **_):
  """Zhao et al. 2024, Algorithm 1 with Adam: P = U[:, :r] (m >= n) or V[:, :r] of svd(G) every
  T steps, R = P^T G (or G P), N = Adam(R), u = scale P N (or N P^T); Adam on the non-2-D leaves.
  With `learning_rate`, galore's u = -lr (u + weight_decay p)."""
  b1, b2, eps = 0.9, 0.999, 1e-8
  state = {}

  def step(t, i, p, g):
    if p.ndim == 2:
      rows, cols = p.shape
      r = min(rank, rows, cols)
      if t % update_proj_gap == 0:
        u_, _, vh = np.linalg.svd(g, full_matrices=False)
        state[("P", i)] = u_[:, :r] if rows >= cols else vh[:r].T
      proj = state[("P", i)]
      low = proj.T @ g if rows >= cols else g @ proj
    else:
      low = g
    m = state.get(("m", i), 0.0) * b1 + (1 - b1) * low
    v = state.get(("v", i), 0.0) * b2 + (1 - b2) * low * low
    state[("m", i)], state[("v", i)] = m, v
    n = (m / (1 - b1 ** (t + 1))) / (np.sqrt(v / (1 - b2 ** (t + 1))) + eps)
    if p.ndim == 2:
      n = scale * (proj @ n if rows >= cols else n @ proj.T)
    if learning_rate is None:
      return n
    return -learning_rate * (n + weight_decay * p)

  return _loop(params, grads, step)


def galore(params, grads, learning_rate, **kw):
  """optax's galore: scale_by_galore, then decoupled weight decay and -learning_rate."""
  return scale_by_galore(params, grads, learning_rate=learning_rate, **kw)


def normalize(params, grads):
  """SAM's ascent direction (Foret et al. 2021, eq. 2): u = g / ||g||_2 over all leaves."""
  out = []
  for gs in grads:
    gs = [np.asarray(g, np.float64) for g in gs]
    total = np.sqrt(sum(np.sum(g * g) for g in gs))
    out.append([g / total for g in gs])
  return out


def curvature_monitor(params, grads, **_):
  """u_t = g_t: curvature_monitor only records the top eigenvalue and trace of the loss in its
  state (tested against eigh in tests/test_curvature_monitor.py) and passes updates through."""
  return _loop(params, grads, lambda t, i, p, g: g.copy())


# --- issue 16, curvature-based steps (gradtx/transforms/newton.py, least_squares.py) -----------
# Dense float64 references of one step, given the matrices (tests/test_newton.py builds problems
# whose Hessian or Jacobian is known in closed form).


def newton_cg_step(hess, g, damping=0.0):
  """The exact damped Newton direction d = (H + lambda I)^{-1} g (Nocedal and Wright, eq. 7.2):
  what truncated CG returns on a positive definite system solved to a tight tolerance."""
  hess, g = np.asarray(hess, np.float64), np.asarray(g, np.float64)
  return np.linalg.solve(hess + damping * np.eye(len(g)), g)


def saddle_free_newton_step(hess, g, damping):
  """Dauphin et al. 2014, Algorithm 1 with the whole space as the Krylov subspace:
  d = Q (|Lambda| + lambda I)^{-1} Q^T g, H = Q Lambda Q^T."""
  lam, q = np.linalg.eigh(np.asarray(hess, np.float64))
  return q @ ((q.T @ np.asarray(g, np.float64)) / (np.abs(lam) + damping))


def levenberg_marquardt_step(jac, residual, damping):
  """Marquardt 1963 / More 1978 eq. (2.3): d = (J^T J + lambda I)^{-1} J^T r (the step is -d),
  and the predicted decrease of 0.5 ||r||^2, g^T d - 0.5 ||J d||^2."""
  jac, residual = np.asarray(jac, np.float64), np.asarray(residual, np.float64)
  g = jac.T @ residual
  d = np.linalg.solve(jac.T @ jac + damping * np.eye(jac.shape[1]), g)
  return d, g @ d - 0.5 * np.sum((jac @ d) ** 2)


def more_damping_update(damping, rho):
  """The damping's response to the reduction ratio rho (More 1978, Algorithm 7.1 steps (c)-(d),
  radius updates applied to lambda ~ 1 / radius): rejected (rho <= 1e-4) x10, poor (< 1/4) x2,
  very good (> 3/4) / 2."""
  if rho <= 1e-4:
    return 10 * damping
  if rho < 0.25:
    return 2 * damping
  if rho > 0.75:
    return damping / 2
  return damping


# --- quasi-Newton directions (issue 16, "qn"): L-BFGS, dense BFGS, nonlinear CG -----------------
# The leaves are flattened into one vector (jax.tree.leaves order, as ravel_pytree does).

def _flat(leaves):
  return np.concatenate([np.ravel(np.asarray(x, np.float64)) for x in leaves])


def _unflat(vec, like):
  out, i = [], 0
  for x in like:
    n = np.size(x)
    out.append(vec[i:i + n].reshape(np.shape(x)))
    i += n
  return out


def _flat_loop(params, grads, step):
  """Runs `step(t, w, g) -> u` on the flattened params and gradients; w += u after each step."""
  w = _flat(params)
  out = []
  for t, gs in enumerate(grads):
    u = step(t, w.copy(), _flat(gs))
    w = w + u
    out.append(_unflat(u, params))
  return out


def scale_by_lbfgs(params, grads, memory_size=10, scale_init_precond=True):
  """Nocedal & Wright Algorithm 7.4 (two-loop recursion) over the last `memory_size` pairs
  s = w_k - w_{k-1}, y = g_k - g_{k-1} (rho = 1/<y, s>, 0 if <y, s> = 0; no pair is skipped, as
  optax), gamma_k = <s, y>/<y, y> of the newest pair, gamma_0 = min(1, 1/|g_0|)."""
  pairs, prev = [], None

  def step(t, w, g):
    nonlocal prev
    if t > 0:
      s, y = w - prev[0], g - prev[1]
      sy = float(y @ s)
      pairs.append((s, y, 0.0 if sy == 0.0 else 1.0 / sy))
      del pairs[:-memory_size]
    prev = (w, g)
    if not scale_init_precond:
      gamma = 1.0
    elif t == 0:
      gamma = min(1.0, 1.0 / np.linalg.norm(g))
    else:
      s, y, _ = pairs[-1]
      gamma = float(y @ s) / float(y @ y) if float(y @ y) > 0 else 1.0
    q, alphas = g.copy(), []
    for s, y, rho in reversed(pairs):
      a = rho * float(s @ q)
      q = q - a * y
      alphas.append(a)
    r = gamma * q
    for (s, y, rho), a in zip(pairs, reversed(alphas)):
      b = rho * float(y @ r)
      r = r + (a - b) * s
    return r

  return _flat_loop(params, grads, step)


def scale_by_bfgs(params, grads, scale_init_precond=False):
  """Nocedal & Wright eq. 6.17: H <- (I - rho s y^T) H (I - rho y s^T) + rho s s^T, skipped when
  <y, s> <= 0; H_0 = min(1, 1/|g_0|) I, reset before the first update to <y,s>/<y,y> I (eq. 6.20)
  or I; returns H g."""
  state = {}

  def step(t, w, g):
    n = g.size
    if t == 0:
      h = min(1.0, 1.0 / np.linalg.norm(g)) * np.eye(n)
    else:
      h = state["h"]
      s, y = w - state["w"], g - state["g"]
      sy = float(y @ s)
      if t == 1:
        yy = float(y @ y)
        h = (sy / yy if scale_init_precond and sy > 0 and yy > 0 else 1.0) * np.eye(n)
      if sy > 0:
        rho = 1.0 / sy
        v = np.eye(n) - rho * np.outer(s, y)
        h = v @ h @ v.T + rho * np.outer(s, s)
    state.update(h=h, w=w, g=g)
    return h @ g

  return _flat_loop(params, grads, step)


def scale_by_nonlinear_cg(params, grads, method="polak_ribiere", restart_period=None,
                          restart_threshold=None):
  """Nocedal & Wright Section 5.2: d_k = -g_k + beta_k d_{k-1}, returned as p = -d; beta of
  Fletcher-Reeves (5.41a), Polak-Ribiere+ (5.45), Hestenes-Stiefel (5.46), Dai-Yuan (5.49);
  restarts (beta = 0) at t = 0, every restart_period steps, by Powell's test (5.52), and when p is
  not a descent direction."""
  state = {}

  def step(t, w, g):
    if t == 0:
      beta = 0.0
    else:
      g0, p0 = state["g"], state["p"]
      y = g - g0
      ratio = lambda a, b: a / b if b != 0 else 0.0
      beta = {"fletcher_reeves": lambda: ratio(g @ g, g0 @ g0),
              "polak_ribiere": lambda: max(ratio(g @ y, g0 @ g0), 0.0),
              "hestenes_stiefel": lambda: ratio(g @ y, -(p0 @ y)),
              "dai_yuan": lambda: ratio(g @ g, -(p0 @ y))}[method]()
      if restart_period is not None and t % restart_period == 0:
        beta = 0.0
      if restart_threshold is not None and abs(g @ g0) >= restart_threshold * (g @ g):
        beta = 0.0
    p = g + beta * state["p"] if t > 0 else g.copy()
    if not p @ g > 0:
      p = g.copy()
    state.update(g=g, p=p)
    return p

  return _flat_loop(params, grads, step)



# --- issue 17 ("sophia"): adaptive SAM's ascent direction --------------------------------------

def scale_by_asam(params, grads, eta=0.01):
  """Kwon et al. 2021, eq. for eps_hat without rho: u = T^2 g / ||T g||_2, T = |w| + eta (the
  norm over all leaves); params advance by u each step."""
  params = [np.array(p, dtype=np.float64) for p in params]
  out = []
  for gs in grads:
    gs = [np.asarray(g, np.float64) for g in gs]
    ts = [np.abs(p) + eta for p in params]
    total = np.sqrt(sum(np.sum((t * g) ** 2) for t, g in zip(ts, gs)))
    us = [t * t * g / total for t, g in zip(ts, gs)]
    for p, u in zip(params, us):
      p += u
    out.append(us)
  return out


# --- gradtx.distributed: the sources' parallel SGD algorithms over n workers --------------------
# Each reference runs whole training loops on one leaf: worker i's gradient at x is
# g_i(x) = h_i (x - c_i) (`h` of shape (n,), `c` of shape (n, *leaf)); every worker starts at x0.
# They return the workers' params after `steps` steps, shape (n, *leaf). Float64.


def _dist_grads(x, c, h):
  return h.reshape((-1,) + (1,) * (c.ndim - 1)) * (x - c)


def dist_local_sgd(x0, c, h, steps, lr, k, start_step=0):
  """Local SGD (Stich 2019) / post-local SGD (Lin et al. 2020): SGD per worker, params averaged
  after step t when t <= start_step or (t - start_step) % k == 0."""
  x = np.broadcast_to(x0, c.shape).astype(np.float64)
  for t in range(1, steps + 1):
    x = x - lr * _dist_grads(x, c, h)
    if t <= start_step or (t - start_step) % k == 0:
      x = np.broadcast_to(x.mean(0), x.shape)
  return x


def dist_diloco(x0, c, h, steps, lr, k, outer_lr, momentum):
  """DiLoCo (Douillard et al. 2023, Algorithm 1) with inner SGD and outer Nesterov SGD (optax's
  form: trace = Delta + mu trace, step = -lr (Delta + mu trace))."""
  x = np.broadcast_to(x0, c.shape).astype(np.float64)
  anchor, trace = np.asarray(x0, np.float64), np.zeros(np.shape(x0))
  for t in range(1, steps + 1):
    x = x - lr * _dist_grads(x, c, h)
    if t % k == 0:
      delta = (anchor - x).mean(0)
      trace = delta + momentum * trace
      anchor = anchor - outer_lr * (delta + momentum * trace)
      x = np.broadcast_to(anchor, x.shape)
  return x


def dist_easgd(x0, c, h, steps, lr, alpha, k, staleness=0):
  """EASGD (Zhang et al. 2015, eqs. (5)-(6), Algorithm 1's order): at t % k == 0 the elastic
  move with the center read `staleness` rounds ago, then the SGD step with the gradient at the
  pre-move params. Returns (workers, center)."""
  x = np.broadcast_to(x0, c.shape).astype(np.float64)
  center = np.asarray(x0, np.float64)
  stale = [center] * staleness
  for t in range(steps):
    g = _dist_grads(x, c, h)
    pull = 0.0
    if t % k == 0:
      read = stale[0] if staleness else center
      pull = -alpha * (x - read)
      new_center = center + alpha * (x - center).sum(0)
      if staleness:
        stale = stale[1:] + [center]
      center = new_center
    x = x + pull - lr * g
  return x, center


def dist_downpour(x0, c, h, steps, lr, fetch_every, push_every):
  """Downpour SGD (Dean et al. 2012, section 4.1) with an SGD server applying the pushes one by
  one in worker order."""
  x = np.broadcast_to(x0, c.shape).astype(np.float64)
  w = np.asarray(x0, np.float64)
  acc = np.zeros(c.shape)
  for t in range(1, steps + 1):
    acc = acc + _dist_grads(x, c, h)
    if t % push_every == 0:
      for a in acc:
        w = w - lr * a
      acc = np.zeros(c.shape)
    if t % fetch_every == 0:
      x = np.broadcast_to(w, x.shape)
  return x


def dist_delay_tolerant_adagrad(x0, c, h, steps, alpha, z0):
  """AdaptiveRevision (McMahan & Streeter 2014): each round the server applies worker i's
  gradient with g_bck = the sum of workers 0..i-1's and eta_old = alpha / sqrt(z' at read)."""
  x = np.asarray(x0, np.float64)
  z = np.full(np.shape(x0), z0, np.float64)
  zmax = z.copy()
  for _ in range(steps):
    gs = _dist_grads(x, c, h)
    eta_old = alpha / np.sqrt(zmax)
    step, g_bck = np.zeros(np.shape(x0)), np.zeros(np.shape(x0))
    for g in gs:
      z = z + g * g + 2 * g * g_bck
      zmax = np.maximum(zmax, z)
      eta = alpha / np.sqrt(zmax)
      step = step - eta * g + (eta_old - eta) * g_bck
      g_bck = g_bck + g
    x = x + step
  return np.broadcast_to(x, c.shape)


def dist_hogwild(x0, c, mask, steps, lr):
  """Hogwild! (Recht et al. 2011, Algorithm 1), one round = every worker's sparse SGD write
  (gradient mask_i (x - c_i)) read from the same x, the writes adding up."""
  x = np.asarray(x0, np.float64)
  for _ in range(steps):
    x = x - lr * (mask * (x - c)).sum(0)
  return np.broadcast_to(x, c.shape)


def dist_delayed_sgd(x0, c, h, steps, lr, tau):
  """SGD with the gradient of tau steps ago (Agarwal & Duchi 2011), per worker."""
  x = np.broadcast_to(x0, c.shape).astype(np.float64)
  past = []
  for t in range(steps):
    past.append(_dist_grads(x, c, h))
    if t >= tau:
      x = x - lr * past[t - tau]
  return x


def dist_compressed_sgd(x0, c, h, steps, lr, compress, error_feedback=True, vote=False):
  """Data-parallel SGD on compressed gradients with error feedback (Stich et al. 2018; Seide et
  al. 2014; Karimireddy et al. 2019): a_i = g_i + e_i, sent c_i = compress(a_i), e_i = a_i - c_i,
  x -= lr mean_i c_i (signSGD majority vote: x -= lr sign(sum_i sign(a_i)))."""
  x = np.asarray(x0, np.float64)
  e = np.zeros(c.shape)
  for _ in range(steps):
    a = _dist_grads(x, c, h) + e
    sent = np.stack([compress(ai) for ai in a])
    if error_feedback:
      e = a - sent
    x = x - lr * (np.sign(np.sign(a).sum(0)) if vote else sent.mean(0))
  return np.broadcast_to(x, c.shape)


def top_k_compress(k):
  def compress(a):
    flat = a.ravel()
    keep = np.argsort(-np.abs(flat), kind="stable")[:k]
    out = np.zeros_like(flat)
    out[keep] = flat[keep]
    return out.reshape(a.shape)
  return compress


def sign_compress(a):
  return np.mean(np.abs(a)) * np.sign(a)


def dist_powersgd(x0, c, h, steps, lr, q0):
  """PowerSGD (Vogels et al. 2019, Algorithms 1-2) with error feedback on a matrix leaf:
  P = mean(M_i Q), P^ = orth(P), Q_i = M_i^T P^, Q = mean(Q_i), x -= lr P^ Q^T,
  e_i = M_i - P^ Q_i^T; Q warm-starts the next step."""
  x = np.asarray(x0, np.float64)
  e = np.zeros(c.shape)
  q = np.asarray(q0, np.float64)
  for _ in range(steps):
    m = _dist_grads(x, c, h) + e
    p_hat, _ = np.linalg.qr(np.mean([mi @ q for mi in m], 0))
    q_i = np.stack([mi.T @ p_hat for mi in m])
    q = q_i.mean(0)
    e = m - np.stack([p_hat @ qi.T for qi in q_i])
    x = x - lr * p_hat @ q.T
  return np.broadcast_to(x, c.shape)


# --- Shampoo and SOAP (issue 17, "shampoo") ------------------------------------------------------

class _Spec(tuple):
  """A (reduction_axis, output_axis) spec without gradtx (the 2-D leaves' default)."""
  reduction_axis, output_axis = 0, 1


def _matrix_spec(specs, i, p):
  """A leaf's spec: from the flattened spec tree, else the 2-D leaves' default."""
  if specs is not None:
    return specs[i]
  return _Spec() if np.ndim(p) == 2 else None


def inverse_root(a, p, ridge=1e-6):
  """(A + ridge lambda_max(A) I)^(-1/p) by a float64 eigendecomposition (the exact root that
  gradtx.matrix_inverse_pth_root's coupled Newton iterations approximate)."""
  w, v = np.linalg.eigh(np.asarray(a, np.float64))
  eps = ridge * max(w[-1], 1e-16)
  return (v * (w + eps) ** (-1.0 / p)) @ v.T


def scale_by_shampoo(params, grads, block_size=128, beta2=1.0, matrix_epsilon=1e-6,
                     graft="adagrad", graft_b2=0.999, eps=1e-8, preconditioning_compute_steps=1,
                     start_preconditioning_step=1, weight_dimension_numbers=None,
                     learning_rate=None, b1=0.0, weight_decay=0.0, **_):
  """Shampoo (Gupta et al. 2018, Algorithm 1 for order 2: L += G G^T, R += G^T G,
  u = L^{-1/4} G R^{-1/4}) with Anil et al.'s blocks of at most block_size (the last smaller),
  EMA statistics (beta2 < 1: weight 1 - beta2), roots recomputed when t >= t0 and
  (t - t0) % k == 0, and grafting u = ||D|| S / ||S|| with D the leaf's AdaGrad / RMSProp
  (bias-corrected) / SGD update (D alone before t0, and for the non-matrix leaves).
  With learning_rate: shampoo's chain, -lr (trace_b1(u) + weight_decay p)."""
  specs = _spec_leaves(weight_dimension_numbers) if weight_dimension_numbers is not None else None
  nu = [np.zeros_like(np.asarray(p, np.float64)) for p in params]
  mom = [np.zeros_like(np.asarray(p, np.float64)) for p in params]
  stats, roots = {}, {}
  t0, k = start_preconditioning_step, preconditioning_compute_steps

  def direction(s, i, p, g):
    t = s + 1
    b2 = _val(beta2, s)
    w = 1.0 if b2 == 1 else 1.0 - b2
    if graft == "sgd":
      d = g
    elif graft == "rmsprop":
      gb = _val(graft_b2, s)
      nu[i] = gb * nu[i] + (1 - gb) * g * g
      d = g / (np.sqrt(nu[i] / (1 - gb ** t)) + eps)
    else:
      nu[i] = nu[i] + g * g
      d = g / (np.sqrt(nu[i]) + eps)
    spec = _matrix_spec(specs, i, p)
    if spec is None:
      return d
    to, back, _, _ = _view(g, spec)
    mats = to(g)
    out = np.zeros_like(mats)
    for b in range(mats.shape[0]):
      for r in range(0, mats.shape[1], block_size):
        for c in range(0, mats.shape[2], block_size):
          key = (i, b, r, c)
          blk = mats[b, r:r + block_size, c:c + block_size]
          sl, sr = stats.get(key, (0.0, 0.0))
          sl, sr = b2 * sl + w * blk @ blk.T, b2 * sr + w * blk.T @ blk
          stats[key] = (sl, sr)
          if t >= t0 and (t - t0) % k == 0:
            roots[key] = (inverse_root(sl, 4, matrix_epsilon), inverse_root(sr, 4, matrix_epsilon))
          pl, pr = roots.get(key, (np.eye(blk.shape[0]), np.eye(blk.shape[1])))
          out[b, r:r + block_size, c:c + block_size] = pl @ blk @ pr
    s_ = back(out)
    if graft is None:
      return s_
    if t < t0:
      return d
    ns = np.linalg.norm(s_)
    return s_ * (np.linalg.norm(d) / ns) if ns > 0 else 0 * s_

  def step(s, i, p, g):
    u = direction(s, i, p, g)
    if learning_rate is None:
      return u
    mom[i] = u + _val(b1, s) * mom[i]
    return -_val(learning_rate, s) * (mom[i] + _val(weight_decay, s) * p)

  return _loop(params, grads, step)


def shampoo(params, grads, learning_rate, b1=0.9, **kw):
  """gradtx's shampoo: scale_by_shampoo, heavy-ball trace(b1), decoupled decay, -lr."""
  return scale_by_shampoo(params, grads, learning_rate=learning_rate, b1=b1, **kw)


def scale_by_soap(params, grads, b1=0.95, b2=0.95, eps=1e-8, shampoo_beta=None,
                  precondition_frequency=10, max_precond_dim=10000,
                  weight_dimension_numbers=None, learning_rate=None, weight_decay=0.0, **_):
  """SOAP (Vyas et al. 2024, Algorithm 3 as the authors' code): the first call only sets
  L = (1 - bs) G G^T, R likewise, Q = their eigenvectors (decreasing eigenvalues), u = 0; then,
  with t counted from the second call, G' = Q_L^T G Q_R, Adam's m, v on G',
  u = sqrt(1 - b2^t) / (1 - b1^t) Q_L m / (sqrt(v) + eps) Q_R^T, L, R updated, and when
  t % f == 0 (Algorithm 4): Q sorted by diag(Q^T L Q) decreasing (v's rows/columns alike),
  Q = qr(L Q), m rotated into the new basis. Sides longer than max_precond_dim: Q = I.
  Non-matrix leaves: the same Adam with Q = I. With learning_rate: -lr (u + weight_decay p)."""
  specs = _spec_leaves(weight_dimension_numbers) if weight_dimension_numbers is not None else None
  state = {}

  def direction(s, i, p, g):
    bs = _val(b2, s) if shampoo_beta is None else _val(shampoo_beta, s)
    spec = _matrix_spec(specs, i, p)
    if spec is None:
      to, back = (lambda x: np.reshape(x, (1, 1, -1))), (lambda x: np.reshape(x, np.shape(g)))
    else:
      to, back, _, _ = _view(g, spec)
    mats = to(g)
    nb, m, n = mats.shape
    left = spec is not None and m <= max_precond_dim
    right = spec is not None and n <= max_precond_dim
    if s == 0:
      st = dict(m=np.zeros_like(mats), v=np.zeros_like(mats), L=[], R=[], QL=[], QR=[])
      for b in range(nb):
        G = mats[b]
        L, R = (1 - bs) * G @ G.T, (1 - bs) * G.T @ G
        st["L"].append(L)
        st["R"].append(R)
        st["QL"].append(np.linalg.eigh(L)[1][:, ::-1] if left else np.eye(m))
        st["QR"].append(np.linalg.eigh(R)[1][:, ::-1] if right else np.eye(n))
      state[i] = st
      return np.zeros_like(g)
    st, t = state[i], s
    beta1, beta2 = _val(b1, s), _val(b2, s)
    out = np.zeros_like(mats)
    for b in range(nb):
      G, QL, QR = mats[b], st["QL"][b], st["QR"][b]
      Gr = QL.T @ G @ QR
      st["m"][b] = beta1 * st["m"][b] + (1 - beta1) * Gr
      st["v"][b] = beta2 * st["v"][b] + (1 - beta2) * Gr * Gr
      N = st["m"][b] / (np.sqrt(st["v"][b]) + eps)
      out[b] = np.sqrt(1 - beta2 ** t) / (1 - beta1 ** t) * (QL @ N @ QR.T)
      if spec is None:
        continue
      st["L"][b] = st["L"][b] + (1 - bs) * (G @ G.T - st["L"][b])
      st["R"][b] = st["R"][b] + (1 - bs) * (G.T @ G - st["R"][b])
      if t % precondition_frequency == 0:
        m_full = QL @ st["m"][b] @ QR.T
        if left:
          order = np.argsort(-np.diag(QL.T @ st["L"][b] @ QL), kind="stable")
          st["v"][b] = st["v"][b][order, :]
          QL = np.linalg.qr(st["L"][b] @ QL[:, order])[0]
        if right:
          order = np.argsort(-np.diag(QR.T @ st["R"][b] @ QR), kind="stable")
          st["v"][b] = st["v"][b][:, order]
          QR = np.linalg.qr(st["R"][b] @ QR[:, order])[0]
        st["QL"][b], st["QR"][b] = QL, QR
        st["m"][b] = QL.T @ m_full @ QR
    return back(out)

  def step(s, i, p, g):
    u = direction(s, i, p, g)
    if learning_rate is None:
      return u
    return -_val(learning_rate, s) * (u + _val(weight_decay, s) * p)

  return _loop(params, grads, step)


def soap(params, grads, learning_rate=3e-3, weight_decay=0.01, **kw):
  """gradtx's soap: scale_by_soap, decoupled weight decay, -lr."""
  return scale_by_soap(params, grads, learning_rate=learning_rate, weight_decay=weight_decay,
                       **kw)


# --- learned/lstm.py, learned/mlp.py (issue 19) ---------------------------------------------------


def _sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


def lstm_optimizer(grads, meta_params, *, hidden_size, preprocess=True, p=10.0,
                   output_scale=0.1):
  """Andrychowicz et al. (NeurIPS 2016), Sec. 2.1 and Appendix A: a coordinate-wise LSTM with
  shared weights, transcribed coordinate by coordinate. `grads`: list over steps of lists of
  arrays; `meta_params`: {"layers": [{"w", "b"}], "out": {"w", "b"}} as NumPy arrays (gates in
  the order input, forget, cell, output). Returns the updates, step by step."""
  layers = [(np.asarray(l["w"], np.float64), np.asarray(l["b"], np.float64))
            for l in meta_params["layers"]]
  w_out = np.asarray(meta_params["out"]["w"], np.float64)[:, 0]
  b_out = float(np.asarray(meta_params["out"]["b"], np.float64)[0])
  state = {}  # (leaf, coordinate) -> per-layer [h, c]
  out = []
  for gs in grads:
    step = []
    for i, g in enumerate(gs):
      g = np.asarray(g, np.float64)
      u = np.zeros_like(g)
      for idx in np.ndindex(g.shape):
        x = g[idx]
        if preprocess:  # Appendix A: (log|x|/p, sign x) if |x| >= e^-p else (-1, e^p x)
          inp = (np.array([np.log(abs(x)) / p, np.sign(x)]) if abs(x) >= np.exp(-p)
                 else np.array([-1.0, np.exp(p) * x]))
        else:
          inp = np.array([x])
        hc = state.setdefault((i, idx), [[np.zeros(hidden_size), np.zeros(hidden_size)]
                                         for _ in layers])
        for l, (w, b) in enumerate(layers):
          h, c = hc[l]
          z = np.concatenate([inp, h]) @ w + b
          gi, gf, gg, go = np.split(z, 4)
          c = _sigmoid(gf) * c + _sigmoid(gi) * np.tanh(gg)
          h = _sigmoid(go) * np.tanh(c)
          hc[l] = [h, c]
          inp = h
        u[idx] = output_scale * (inp @ w_out + b_out)  # theta_{t+1} = theta_t + g_t
      step.append(u)
    out.append(step)
  return out


def mlp_optimizer(params, grads, meta_params, *, decays, rms_decay, step_mult, exp_mult, eps):
  """The per-parameter MLP learned optimizer (Metz et al.'s MLPLOpt form): features
  (theta, g, m_k, g/sqrt(v+eps)) normalised by their RMS over each tensor, a ReLU MLP, and the
  step step_mult * d * exp(exp_mult * s). Applies each update to its own copy of the params."""
  layers = [(np.asarray(l["w"], np.float64), np.asarray(l["b"], np.float64))
            for l in meta_params["layers"]]
  params = [np.array(q, np.float64) for q in params]
  mus = [[np.zeros_like(q) for q in params] for _ in decays]
  nus = [np.zeros_like(q) for q in params]
  out = []
  for gs in grads:
    step = []
    for i, g in enumerate(gs):
      g = np.asarray(g, np.float64)
      for k, b in enumerate(decays):
        mus[k][i] = b * mus[k][i] + (1 - b) * g
      nus[i] = rms_decay * nus[i] + (1 - rms_decay) * g * g
      feats = [params[i], g] + [m[i] for m in mus] + [g / np.sqrt(nus[i] + eps)]
      x = np.stack([f.reshape(-1) for f in feats], axis=-1)
      x = x / np.sqrt(np.mean(x * x, axis=0) + eps)
      for j, (w, b) in enumerate(layers):
        x = x @ w + b
        if j < len(layers) - 1:
          x = np.maximum(x, 0.0)
      u = (step_mult * x[:, 0] * np.exp(exp_mult * x[:, 1])).reshape(g.shape)
      step.append(u)
    for q, u in zip(params, step):
      q += u
    out.append(step)
  return out
