"""Float64 NumPy transcriptions of the authors' MinAtar network and of their Gaussian
policy (Elsayed, Vasan and Mahmood 2024; `stream_q_minatar.py`'s `nn.Sequential` and
`LayerNormalization`, `stream_ac_continuous.py`'s `Actor` and `Normal`), written from
PyTorch's definitions of the layers, sharing no code with what they check."""

import math

import numpy as np


def conv2d(x, weight, bias):
    """PyTorch's `nn.Conv2d` with stride 1 and no padding: a cross-correlation.
    `x` is `(in, H, W)`, `weight` `(out, in, k, k)`, `bias` `(out,)`."""
    out_channels, _, k, _ = weight.shape
    height, width = x.shape[1] - k + 1, x.shape[2] - k + 1
    y = np.empty((out_channels, height, width))
    for o in range(out_channels):
        for i in range(height):
            for j in range(width):
                y[o, i, j] = np.sum(weight[o] * x[:, i : i + k, j : j + k]) + bias[o]
    return y


def layer_norm(x):
    """`F.layer_norm(x, x.size())`: over the whole tensor, biased variance, eps 1e-5."""
    return (x - x.mean()) / np.sqrt(x.var() + 1e-5)


def leaky_relu(x):
    return np.where(x >= 0, x, 0.01 * x)


def minatar_network(conv_w, conv_b, hidden_w, hidden_b, out_w, out_b, observation):
    """The authors' network on an observation `(H, W, C)`: `torch.moveaxis(x, -1, 0)`,
    Conv2d -> LayerNorm -> LeakyReLU -> Flatten(start_dim=0) -> Linear -> LayerNorm ->
    LeakyReLU -> Linear."""
    x = np.moveaxis(observation, -1, 0)
    x = leaky_relu(layer_norm(conv2d(x, conv_w, conv_b)))
    x = leaky_relu(layer_norm(hidden_w @ x.reshape(-1) + hidden_b))
    return out_w @ x + out_b


def sparse_zero_count_conv(in_channels, kernel_size, sparsity):
    """`sparse_init.py` for a 4-D tensor: per output channel, `ceil(sparsity * fan_in)`
    zeros with `fan_in = in_channels * kernel_size ** 2`."""
    return math.ceil(sparsity * in_channels * kernel_size**2)


def softplus(x):
    return np.log1p(np.exp(x))


def gaussian_log_prob_entropy(outputs, action):
    """`Normal(mu, softplus(pre_std))`'s `log_prob(action).sum()` and `entropy().sum()`
    for the actor's outputs `[mu, pre_std]`."""
    d = len(action)
    mu, std = outputs[:d], softplus(outputs[d:])
    log_prob = -((action - mu) ** 2) / (2 * std**2) - np.log(std) - 0.5 * np.log(2 * np.pi)
    entropy = 0.5 + 0.5 * np.log(2 * np.pi) + np.log(std)
    return log_prob.sum(), entropy.sum()
