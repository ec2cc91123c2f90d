"""Per-sample read statistics: sample, reads, bases, GC fraction."""

sample = snakemake.wildcards.sample  # noqa: F821 (set by Snakemake)
reads = bases = gc = 0
with open(snakemake.input[0]) as fastq:  # noqa: F821
    for i, line in enumerate(fastq):
        if i % 4 == 1:
            seq = line.strip().upper()
            reads += 1
            bases += len(seq)
            gc += seq.count("G") + seq.count("C")
fraction = gc / bases if bases else 0.0
with open(snakemake.output[0], "w") as out:  # noqa: F821
    out.write(f"{sample}\t{reads}\t{bases}\t{fraction:.4f}\n")
