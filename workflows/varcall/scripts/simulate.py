"""A random reference, SNPs planted at known positions, and single-end reads of
each sample drawn from the mutated copy (both strands, no errors): small enough to
ship nothing and call in seconds."""

import random

p = snakemake.params  # noqa: F821 (given by Snakemake)
out = snakemake.output  # noqa: F821
rng = random.Random(p.seed)
BASES = "ACGT"
genome = [rng.choice(BASES) for _ in range(p.length)]
# Evenly spread, away from the ends (where coverage thins out), at least 200 apart.
margin = 2 * p.read_length
step = (p.length - 2 * margin) // p.snps
positions = [margin + i * step + rng.randrange(step // 2) for i in range(p.snps)]
mutated = list(genome)
with open(out.truth, "w") as truth:
    truth.write("chrom\tpos\tref\talt\n")
    for pos in positions:
        alt = rng.choice([b for b in BASES if b != genome[pos]])
        mutated[pos] = alt
        truth.write(f"chr1\t{pos + 1}\t{genome[pos]}\t{alt}\n")
with open(out.ref, "w") as ref:
    ref.write(">chr1\n")
    for i in range(0, p.length, 60):
        ref.write("".join(genome[i : i + 60]) + "\n")
sample_genome = "".join(mutated)
complement = str.maketrans("ACGT", "TGCA")
count = p.coverage * p.length // p.read_length
for sample, path in zip(p.samples, out.reads):
    with open(path, "w") as fq:
        for n in range(count):
            start = rng.randrange(p.length - p.read_length + 1)
            read = sample_genome[start : start + p.read_length]
            if rng.random() < 0.5:
                read = read.translate(complement)[::-1]
            fq.write(f"@{sample}_{n}\n{read}\n+\n{'I' * p.read_length}\n")
