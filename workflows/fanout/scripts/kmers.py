"""Count k-mers of one sample; write them most frequent first."""

from collections import Counter

k = int(snakemake.params.k)  # noqa: F821 (set by Snakemake)
counts: Counter[str] = Counter()
with open(snakemake.input[0]) as fastq:  # noqa: F821
    for i, line in enumerate(fastq):
        if i % 4 == 1:
            seq = line.strip().upper()
            counts.update(seq[j : j + k] for j in range(len(seq) - k + 1))
with open(snakemake.output[0], "w") as out:  # noqa: F821
    for kmer, n in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        out.write(f"{kmer}\t{n}\n")
