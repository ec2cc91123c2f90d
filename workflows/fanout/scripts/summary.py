"""Gather the per-sample tables into one summary table."""

rows = ["sample\treads\tbases\tgc\ttop_kmer\ttop_kmer_count"]
for qc_path, kmer_path in zip(snakemake.input.qc, snakemake.input.kmers):  # noqa: F821
    with open(qc_path) as qc, open(kmer_path) as kmers:
        top = kmers.readline().strip() or "-\t0"
        rows.append(f"{qc.readline().strip()}\t{top}")
with open(snakemake.output[0], "w") as out:  # noqa: F821
    out.write("\n".join(rows) + "\n")
