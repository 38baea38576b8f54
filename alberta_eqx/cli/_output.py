"""What the commands share for output: the output folder, figures, the progress bar,
and the device named in a run's record."""

import os
import sys
from typing import Any

from alberta_eqx.cli._options import fail
from alberta_eqx.experiments.export import atomic_write
from alberta_eqx.experiments.segments import Rate


def output_folder(path: str) -> str:
    """Create `path` if needed and check it can be written; one line otherwise."""
    if os.path.exists(path) and not os.path.isdir(path):
        fail(f"--out {path!r} is a file, not a folder")
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, ".alberta-eqx-write-test")
        with open(probe, "w"):
            pass
        os.remove(probe)
    except OSError as error:
        raise SystemExit(
            f"alberta-eqx: error: cannot write to --out {path!r}: {error.strerror}"
        ) from None
    return path


def pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        fail("plots need matplotlib: pip install 'alberta_eqx[plots]' (or pass --no-plot)")
    return plt


def save_figure(fig: Any, out: str, name: str, outputs: list[str]) -> None:
    path = os.path.join(out, name)
    atomic_write(path, lambda p: fig.savefig(p, dpi=120, format="png"))
    pyplot().close(fig)
    outputs.append(name)
    print(f"wrote {path}")


class Bar:
    """A tqdm bar on stderr whose rate counts only compiled segments (the first
    segment of each size compiles; its time is left out of the rate) and whose time
    estimate adds the compilations still to come at their measured mean."""

    def __init__(self, total: int, label: str, enabled: bool):
        from tqdm import tqdm

        self.rate = Rate()
        self.enabled = enabled  # without a bar, a run is one compiled call
        self.total = total
        self.done = 0
        self.bar = tqdm(
            total=total,
            desc=label,
            unit=" steps",
            unit_scale=True,
            disable=not enabled,
            file=sys.stderr,
            bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} "
            "[{elapsed}{postfix}]",
        )

    def __call__(self, steps: int) -> None:
        self.done += steps
        eta = self.rate.eta(self.total - self.done)
        if eta is not None:
            rate = self.rate.per_second or 0.0
            self.bar.set_postfix_str(f"{rate:,.0f} steps/s, ~{_duration(eta)} left", refresh=False)
        else:
            self.bar.set_postfix_str("compiling", refresh=False)
        self.bar.update(steps)

    def close(self) -> None:
        self.bar.close()


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f}min"
    return f"{seconds / 3600:.1f}h"


def _device() -> str:
    import jax

    return str(jax.devices()[0].device_kind)
