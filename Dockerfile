# bids-infantage: BIDS-App container image (infant brain age, 0-24 months).
#
# Build (Docker, CPU torch from the PyTorch CPU index):
#   docker build -t bids/infantage:dev .
# Build on this project's machines (podman, local base image, CPU wheel from /opt/wheels):
#   source ../shared/tools/oci-local-base.sh
#   $PODMAN build --network host \
#       -v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro \
#       -v /opt/wheels:/wheels:ro \
#       --build-arg BASE_IMAGE=$OCI_BASE -t bids/infantage:dev .
#   A folder mounted at /wheels during the build is used as a pip --find-links source
#   (`pip install --find-links /wheels torch==2.13.0`); the index is the fallback.
# CUDA-enabled torch (for --device cuda / apptainer --nv), e.g.:
#   docker build --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128 -t bids/infantage:dev-cuda .
#
# Run (nothing is downloaded at run time; TemplateFlow is not needed for the default outputs):
#   docker run --rm -v /data:/data:ro -v /out:/out bids/infantage:dev /data /out participant
#
# Build arguments:
#   BASE_IMAGE          Debian bookworm + Python 3.11 image (python:3.11-slim-bookworm, or
#                       localhost/bookworm-python:3.11 from ../shared/tools/oci-local-base.sh)
#   TORCH_INDEX         extra package index for a CUDA build of torch; empty = CPU build
#   PIP_CONSTRAINTS     space-separated pins (the versions the tests ran with); empty = none
#   EXTRA_APT_PACKAGES  Debian packages to add, e.g. "graphviz" (needed by --write-graph)
#
# An optional folder templateflow/ in the build context is copied to /opt/templateflow
# (TEMPLATEFLOW_HOME); otherwise an empty TemplateFlow stub is created there at build time.

ARG BASE_IMAGE=python:3.11-slim-bookworm

# --------------------------------------------------------------------------- builder
FROM ${BASE_IMAGE} AS builder

ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX=
ARG TORCH_CPU_INDEX=https://download.pytorch.org/whl/cpu
ARG BIDS_VALIDATOR_VERSION=3.0.2
ARG PIP_CONSTRAINTS="monai==1.6.1 safetensors==0.8.0 nipype==1.11.0 niworkflows==1.14.5 pybids==0.22.0 templateflow==25.1.2 SimpleITK==2.5.7 nibabel==5.4.2 numpy==2.4.6 scipy==1.17.1 pandas==3.1.1 matplotlib==3.11.2 statsmodels==0.15.0"

# The host CA bundle may be bind-mounted over the system one during the build (proxy CA);
# point pip at it instead of its own certifi bundle. Builder stage only.
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_DEFAULT_TIMEOUT=180 \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt

# Debian's venv ships pip 23.0; a newer pip reads current wheel metadata (PEP 639) reliably.
RUN python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install --upgrade "pip>=24.2"
ENV PATH=/opt/venv/bin:$PATH

# torch first (largest layer, changes least). Sources, in order of preference:
#   TORCH_INDEX given  -> that index (e.g. a CUDA build)
#   /wheels mounted    -> pip --find-links /wheels (the +cpu wheel sorts above PyPI's build)
#   otherwise          -> the PyPI CPU index of PyTorch
# The wheel's C++ unit-test programs (torch/test, torch/bin/test_*, *Test: about 125 MB) are
# never used from Python and are removed.
RUN set -eu; \
    if [ -n "${TORCH_INDEX}" ]; then \
        echo "torch ${TORCH_VERSION} from ${TORCH_INDEX}"; \
        pip install --extra-index-url "${TORCH_INDEX}" "torch==${TORCH_VERSION}"; \
    elif ls /wheels/torch-"${TORCH_VERSION}"*.whl >/dev/null 2>&1; then \
        echo "torch ${TORCH_VERSION} from /wheels (find-links)"; \
        pip install --find-links /wheels "torch==${TORCH_VERSION}"; \
    else \
        echo "torch ${TORCH_VERSION} from ${TORCH_CPU_INDEX}"; \
        pip install --extra-index-url "${TORCH_CPU_INDEX}" "torch==${TORCH_VERSION}"; \
    fi; \
    torch_dir=$(python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")/torch; \
    rm -rf "${torch_dir}/test"; \
    find "${torch_dir}/bin" -maxdepth 1 -type f \( -name 'test_*' -o -name '*Test' \) -delete; \
    python -W ignore -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"

# Dependencies (from pyproject.toml, with the pinned versions) and the BIDS validator, then the
# package itself (with its default model bundle as package data) without dependencies: a
# change to the code rebuilds only the last, small layer. bids-validator-deno is installed
# explicitly: the [test] extra is not wanted in the image.
COPY pyproject.toml /src/pyproject.toml
RUN set -eu; \
    : > /tmp/constraints.txt; \
    for pin in ${PIP_CONSTRAINTS}; do echo "$pin" >> /tmp/constraints.txt; done; \
    echo "torch==${TORCH_VERSION}" >> /tmp/constraints.txt; \
    python -c "import tomllib; p = tomllib.load(open('/src/pyproject.toml', 'rb')); \
print('\n'.join(p['project']['dependencies']))" > /tmp/requirements.txt; \
    FIND_LINKS=""; \
    if [ -d /wheels ]; then FIND_LINKS="--find-links /wheels"; fi; \
    pip install ${FIND_LINKS} -c /tmp/constraints.txt -r /tmp/requirements.txt \
        "bids-validator-deno==${BIDS_VALIDATOR_VERSION}"

COPY . /src
RUN set -eu; \
    pip install --no-deps /src; \
    pip check; \
    bids-infantage --version; \
    python -c "from bids_infantage.models.bundle.resolve import load_bundle; b = load_bundle(); \
print('default model bundle:', b.name, b.sha256, sorted(b.meta['configurations']))"

# TemplateFlow home: an optional local copy from the build context, else the empty stub that
# the templateflow package writes from its own files (no network: autoupdate is off).
# Everything must be readable by the image's user; only files that are not get a chmod (a
# blanket chmod -R would copy the whole venv, about 2 GB, into another builder layer).
RUN set -eu; \
    mkdir -p /opt/templateflow; \
    if [ -d /src/templateflow ]; then cp -a /src/templateflow/. /opt/templateflow/; fi; \
    TEMPLATEFLOW_HOME=/opt/templateflow TEMPLATEFLOW_AUTOUPDATE=0 \
        python -W ignore -c "import templateflow.conf" ; \
    find /opt/templateflow /opt/venv \( -type d -o \( -type f -perm /111 \) \) \
        ! -perm -555 -exec chmod a+rx {} + ; \
    find /opt/templateflow /opt/venv -type f ! -perm -444 -exec chmod a+r {} +

# --------------------------------------------------------------------------- final
FROM ${BASE_IMAGE}

ARG VERSION=0.4.0
ARG EXTRA_APT_PACKAGES=

LABEL org.opencontainers.image.title="bids-infantage" \
      org.opencontainers.image.description="BIDS-App estimating infant brain age (0-24 months) from T1w, T2w and the T1w/T2w ratio. Research use only." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/bids-infantage/bids-infantage" \
      org.opencontainers.image.documentation="https://github.com/bids-infantage/bids-infantage/tree/main/docs"

# libgomp1 (OpenMP runtime) is in the local base image; add it to bases that lack it.
RUN set -eu; \
    pkgs="${EXTRA_APT_PACKAGES}"; \
    if ! ldconfig -p | grep -q 'libgomp\.so\.1'; then pkgs="libgomp1 ${pkgs}"; fi; \
    if [ -n "$(echo ${pkgs})" ]; then \
        apt-get update -qq; \
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ${pkgs}; \
        rm -rf /var/lib/apt/lists/*; \
    fi

COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /opt/templateflow /opt/templateflow

RUN useradd --create-home --home-dir /home/infantage --uid 1000 --user-group \
        --shell /bin/bash infantage \
    && mkdir -p /tmp/matplotlib \
    && chmod 1777 /tmp/matplotlib

ENV PATH=/opt/venv/bin:$PATH \
    HOME=/home/infantage \
    LANG=C.UTF-8 \
    PYTHONUNBUFFERED=1 \
    PYTHONNOUSERSITE=1 \
    OMP_NUM_THREADS=1 \
    MKL_NUM_THREADS=1 \
    TEMPLATEFLOW_HOME=/opt/templateflow \
    TEMPLATEFLOW_AUTOUPDATE=0 \
    MPLCONFIGDIR=/tmp/matplotlib \
    NIPYPE_NO_ET=1 \
    NO_ET=1 \
    DENO_NO_UPDATE_CHECK=1 \
    BIDS_INFANTAGE_CONTAINER=bids/infantage

WORKDIR /tmp
USER infantage
ENTRYPOINT ["bids-infantage"]
