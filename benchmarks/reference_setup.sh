# Shared by the side-by-side setups (benchmarks/streamx_reference/setup.sh,
# benchmarks/upgd_reference/setup.sh), which source it: the authors' repository at a pinned
# commit, and a virtual environment of its own with CPU PyTorch. Never used by the tests or CI.

# checkout_pinned DIR SOURCE COMMIT PATTERN...: a sparse checkout of SOURCE (a URL, a local
# clone or a bare mirror) at COMMIT in DIR/upstream, holding only the files matching PATTERNs.
checkout_pinned() {
    local dir="$1" source="$2" commit="$3"
    shift 3
    if [ ! -d "$dir/upstream/.git" ]; then
        git clone --quiet --no-checkout "$source" "$dir/upstream"
        git -C "$dir/upstream" sparse-checkout set --no-cone "$@"
    fi
    git -C "$dir/upstream" -c advice.detachedHead=false checkout --quiet "$commit"
    echo "upstream/ at $(git -C "$dir/upstream" rev-parse HEAD)"
}

# torch_venv DIR PYTHON: DIR/.venv made with PYTHON, holding torch 2.13.0 for the CPU.
torch_venv() {
    local dir="$1" python="$2"
    if [ ! -x "$dir/.venv/bin/python" ]; then
        "$python" -m venv "$dir/.venv"
    fi
    # The CPU-only wheel: from a local wheel folder when one is configured (pip's
    # find-links), else from PyTorch's CPU index. The plain PyPI wheel also works but pulls
    # several GB of CUDA libraries.
    if ! "$dir/.venv/bin/pip" install --quiet "torch==2.13.0+cpu"; then
        "$dir/.venv/bin/pip" install --quiet "torch==2.13.0" \
            --index-url https://download.pytorch.org/whl/cpu
    fi
}
