"""byok8s: run a Snakemake workflow as one command, locally or on your own Kubernetes."""

__version__ = "0.1.0"
