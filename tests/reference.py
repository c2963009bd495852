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


def curvature_monitor(params, grads, **_):
  """u_t = g_t: curvature_monitor only records the top eigenvalue and trace of the loss in its
  state (tested against eigh in tests/test_curvature_monitor.py) and passes updates through."""
  return _loop(params, grads, lambda t, i, p, g: g.copy())
