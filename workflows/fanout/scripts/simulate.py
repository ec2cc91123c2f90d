"""Write reproducible simulated reads for one sample as FASTQ."""

import random

sample = snakemake.wildcards.sample  # noqa: F821 (set by Snakemake)
params = snakemake.params  # noqa: F821
rng = random.Random(f"{params.seed}-{sample}")
with open(snakemake.output[0], "w") as out:  # noqa: F821
    for i in range(int(params.reads)):
        seq = "".join(rng.choice("ACGT") for _ in range(int(params.length)))
        out.write(f"@{sample}.{i}\n{seq}\n+\n{'I' * len(seq)}\n")
