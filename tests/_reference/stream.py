"""Float64 NumPy transcriptions of Stream AC(lambda) and the streaming wrappers as the
authors' code computes them (Elsayed, Vasan and Mahmood 2024; `stream_ac_discrete.py`,
`optim.py` (ObGD), `normalization_wrappers.py`, `time_wrapper.py`), with gradients by
central finite differences, so nothing here shares code with what it checks."""

import numpy as np


def mlp(params, x):
    """`[Linear -> LayerNorm (no scale/shift, eps 1e-5) -> LeakyReLU(0.01)]* -> Linear`;
    `params` a list `[W1, b1, W2, b2, ...]`."""
    pairs = list(zip(params[::2], params[1::2], strict=True))
    for W, b in pairs[:-1]:
        x = W @ x + b
        x = (x - x.mean()) / np.sqrt(x.var() + 1e-5)
        x = np.where(x >= 0, x, 0.01 * x)
    W, b = pairs[-1]
    return W @ x + b


def numerical_gradient(f, params, h=1e-6):
    grads = []
    for p in params:
        g = np.zeros_like(p)
        for i in np.ndindex(p.shape):
            old = p[i]
            p[i] = old + h
            up = f(params)
            p[i] = old - h
            down = f(params)
            p[i] = old
            g[i] = (up - down) / (2 * h)
        grads.append(g)
    return grads


class ObGD:
    """optim.py's ObGD: the trace of the gradient of the *loss* (minus the objective),
    `p <- p - step delta e`."""

    def __init__(self, params, lr, gamma, lamda, kappa):
        self.e = [np.zeros_like(p) for p in params]
        self.lr, self.gamma, self.lamda, self.kappa = lr, gamma, lamda, kappa

    def step(self, params, loss_grads, delta, reset):
        z_sum = 0.0
        for e, g in zip(self.e, loss_grads, strict=True):
            e *= self.gamma * self.lamda
            e += g
            z_sum += np.abs(e).sum()
        dot = max(abs(delta), 1.0) * z_sum * self.lr * self.kappa
        step = self.lr / dot if dot > 1 else self.lr
        for p, e in zip(params, self.e, strict=True):
            p -= step * delta * e
            if reset:
                e[:] = 0


def stream_ac_update(
    actor, critic, opt_pi, opt_v, s, a, r, s_next, done, gamma, entropy_coeff, truncated=False
):
    """`StreamAC.update_params` of `stream_ac_discrete.py`, in place. `done`: `S'` is
    terminal (no bootstrap); `truncated`: a time limit cut the episode, so `S'` is
    bootstrapped from and the traces are reset after the update (Gymnasium's
    semantics; the authors' script passes `terminated or truncated` as `done`)."""
    v_s = float(np.ravel(mlp(critic, s))[0])
    v_next = float(np.ravel(mlp(critic, s_next))[0])
    delta = r + gamma * v_next * (0 if done else 1) - v_s

    def log_softmax(params):
        pref = mlp(params, s)
        return pref - pref.max() - np.log(np.exp(pref - pref.max()).sum())

    def policy_loss(params):
        logp = log_softmax(params)
        entropy = -(np.exp(logp) * logp).sum()
        return -logp[a] - entropy_coeff * entropy * np.sign(delta)

    grads_pi = numerical_gradient(policy_loss, actor)
    grads_v = numerical_gradient(lambda p: -float(np.ravel(mlp(p, s))[0]), critic)
    opt_pi.step(actor, grads_pi, delta, done or truncated)
    opt_v.step(critic, grads_v, delta, done or truncated)
    return delta


class SampleMeanStd:
    def __init__(self):
        self.mean, self.var, self.p, self.count = 0.0, 1.0, 1.0, 0

    def update(self, x):
        if self.count == 0:
            self.mean, self.p = x, np.zeros_like(x)
        count = self.count + 1
        mean = self.mean + (x - self.mean) / count
        self.p = self.p + (x - self.mean) * (x - mean)
        self.var = 1 if count < 2 else self.p / (count - 1)
        self.mean, self.count = mean, count


class Wrappers:
    """`AddTimeInfo(NormalizeObservation(ScaleReward(env)))` over recorded raw data."""

    def __init__(self, gamma, time_limit, eps=1e-8):
        self.obs, self.rew = SampleMeanStd(), SampleMeanStd()
        self.trace, self.gamma, self.eps, self.limit = 0.0, gamma, eps, time_limit

    def _normalize(self, o):
        self.obs.update(o)
        return (o - self.obs.mean) / np.sqrt(self.obs.var + self.eps)

    def reset(self, o):
        self.time = -0.5
        return np.append(self._normalize(o), self.time)

    def step(self, o, r, done):
        self.trace = self.trace * self.gamma * (1 - done) + r
        self.rew.update(np.array([self.trace]))
        r = r / np.sqrt(self.rew.var + self.eps)
        o = np.append(self._normalize(o), self.time)
        self.time += 1.0 / self.limit
        return o, float(np.ravel(r)[0])


def stream_q_update(
    net, opt, s, a, r, s_next, done, gamma, a_next=None, is_nongreedy=False, truncated=False
):
    """`StreamQ.update_params` (`a_next` None) or `StreamSARSA.update_params` of the
    authors' `stream_q.py` / `stream_sarsa.py`, in place; `done` and `truncated` as
    for `stream_ac_update`."""
    q_next = mlp(net, s_next)
    bootstrap = q_next.max() if a_next is None else q_next[a_next]
    delta = r + gamma * bootstrap * (0 if done else 1) - mlp(net, s)[a]
    grads = numerical_gradient(lambda p: -mlp(p, s)[a], net)
    opt.step(net, grads, delta, done or truncated or is_nongreedy)
    return delta
