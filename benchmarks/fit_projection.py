"""Fit the projection that shortens USE vectors (`KB_EMBED_DIMENSIONS`) and write kb_service/data/use_projection.npy.

    python benchmarks/fit_projection.py            # fit on the sample SOPs and the lexicons, write the file

The projection is the top right singular vectors of USE's vectors of property-management text: every sentence of
the repository's sample SOPs (sops/) and every tenant phrasing of the colloquial lexicons (kb_service/data). It is
fitted once and shipped, so a vector depends only on its text (ids stay content-derived), whatever corpus is indexed.
It never sees eval/ (the labelled sets that measure it). A shortened vector is the first k columns, renormalised:
the columns come best first, so one file serves every k up to its width. Uncentred on purpose: cosines keep their
scale (the calibrated confidence and the chat's thresholds read them), where centring would lower them all.
"""

from __future__ import annotations

import argparse
import re

import numpy as np
import yaml
from _common import ROOT

from kb_service.embedding.embedders import PROJECTION, PROJECTION_WIDTH, UseEmbedder

_SENTENCE_END = re.compile(r"[。！？!?\n；;]")


def texts() -> list[str]:
    out: list[str] = []
    for path in sorted((ROOT / "sops").rglob("*.md")):
        for line in path.read_text(encoding="utf-8").splitlines():
            out += [s for s in _SENTENCE_END.split(line.strip("#>-*| \t")) if 3 <= len(s.strip()) <= 80]
    for path in sorted((ROOT / "kb_service" / "data").glob("colloquial*.yaml")):
        for entry in yaml.safe_load(path.read_text(encoding="utf-8")).get("entries", []) or []:
            out += [str(t).replace("…", "") for t in entry.get("says", [])]
    return list(dict.fromkeys(s.strip() for s in out if s.strip()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--width", type=int, default=PROJECTION_WIDTH)
    args = ap.parse_args()
    corpus = texts()
    embedder = UseEmbedder(threads=2)
    vectors = np.concatenate([embedder.embed(corpus[i : i + 256]) for i in range(0, len(corpus), 256)])
    _, singular, right = np.linalg.svd(vectors, full_matrices=False)
    share = np.cumsum(singular**2) / np.sum(singular**2)
    print(f"{len(corpus)} texts; energy kept: " + ", ".join(f"{k} {share[k - 1]:.3f}" for k in (64, 128, 192, 256)))
    np.save(PROJECTION, right[: args.width].T.astype(np.float32))
    print(f"wrote {PROJECTION} ({right.shape[1]} x {args.width})")


if __name__ == "__main__":
    main()
