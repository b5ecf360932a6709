# The agent-sessions image: one image for the operator (`agent-sessions run`, the default), the
# gateway (`agent-sessions gateway`) and, inside session pods, the runtime bridge and demo agent.
#
#   docker build -t ghcr.io/agent-session-operator/agent-sessions:0.1.0 .
#
# Dependencies are the pins of constraints.txt (scripts/lock-requirements.sh); the build fails
# when they no longer satisfy pyproject.toml. Pin PYTHON_IMAGE by digest for reproducible builds.
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
RUN python -m venv /opt/venv
WORKDIR /src
# Dependencies first: this layer is rebuilt only when the pins change. Binary wheels only, so
# no compiler is needed here either.
COPY constraints.txt ./
RUN /opt/venv/bin/pip install --only-binary=:all: --requirement constraints.txt
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN /opt/venv/bin/pip install --no-deps . \
 && /opt/venv/bin/pip check \
 && /opt/venv/bin/agent-sessions --version

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="agent-sessions" \
      org.opencontainers.image.description="Kubernetes-native AI agent sessions: operator, gateway, runtime bridge" \
      org.opencontainers.image.source="https://github.com/agent-session-operator/agent-session-operator" \
      org.opencontainers.image.licenses="Apache-2.0"
# A named non-root user: tools that look the user up (getpass, libtmux, ssh) need a passwd entry.
RUN groupadd --system --gid 65532 nonroot \
 && useradd --system --uid 65532 --gid 65532 --home-dir /home/nonroot --create-home \
      --shell /usr/sbin/nologin nonroot
COPY --from=build /opt/venv /opt/venv
# Bytecode was compiled at install time; the root filesystem is read-only in the cluster.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 65532:65532
WORKDIR /home/nonroot
EXPOSE 8080 9090
ENTRYPOINT ["agent-sessions"]
CMD ["run"]
