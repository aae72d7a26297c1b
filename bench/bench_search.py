"""Closest-speaker search latency: one query against 1,251 prototypes and 150,000 utterances.

What is measured: the time to find the top 5 of one L2-normalised 256-d query (the size
of a VoxCeleb embedding) in a gallery of random unit vectors of VoxCeleb1's sizes
(1,251 speaker prototypes; 148,642 + 4,874 = about 150,000 utterances), queried with
noisy copies of gallery rows (cosine about 0.7 to their row, like another clip of an
enrolled voice), for every search
back end of :mod:`keras_spkid.search.index`, one query at a time as the demo and
``closest_celeb.py query`` ask. The baseline is NumPy brute force (``gallery @ q`` then
``argpartition``) timed in the same repetition. Index build times are reported apart.
For context, the time to embed a 5 s clip with the built-in model is measured too: the
target (<= 5 ms) is for the search itself.

Run: ``.venv/bin/python bench/bench_search.py [--record]``
"""

from __future__ import annotations

import time

import _common  # first: it quiets TensorFlow's start-up logging
import numpy as np

from keras_spkid.inference.encoder import SpeakerEncoder
from keras_spkid.inference.model_io import load_embedding_model
from keras_spkid.search.index import make_index
from keras_spkid.vectors import l2_normalize


def numpy_topk(gallery, q, k=5):
    scores = gallery @ q
    top = np.argpartition(-scores, k)[:k]
    return top[np.argsort(-scores[top])]


def main(argv=None):
    parser = _common.base_parser(__doc__)
    parser.add_argument("--queries", type=int, default=200, help="single queries per timing")
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument(
        "--model",
        default="conv6",
        help="preset or .keras file (the recorded results are conv6's; the built-in default "
        "is campplus_zh_en)",
    )
    args = parser.parse_args(argv)
    env = _common.environment()
    env["model"] = args.model
    rng = np.random.default_rng(args.seed)

    model = load_embedding_model(args.model)
    embedder = SpeakerEncoder(model)
    clip = (0.1 * rng.normal(size=5 * 16000)).astype(np.float32)
    embedder([clip])
    embed_ms = 1e3 * _common.median([_common.timed(embedder, [clip])[0] for _ in range(20)])

    sections = []
    for label, size in (("1,251 prototypes", 1251), ("150,000 utterances", 150_000)):
        gallery = l2_normalize(rng.normal(size=(size, args.dim)).astype(np.float32))
        # a query is another clip of an enrolled voice: a noisy copy of a gallery row with
        # cosine about 0.7 to it (a typical same-speaker score), not a random direction
        rows = rng.choice(size, args.queries, replace=False)
        noise = 0.06 * rng.normal(size=(args.queries, args.dim)).astype(np.float32)
        queries = l2_normalize(gallery[rows] + noise)
        backends = ["sklearn", "tf", "faiss", "ivf"]
        build, indexes = {}, {}
        for name in backends:
            start = time.perf_counter()
            indexes[name] = make_index(gallery, name)
            build[name] = time.perf_counter() - start
        auto = make_index(gallery, "auto").name if size > 20_000 else "sklearn"
        exact = np.stack([numpy_topk(gallery, q) for q in queries])

        def run(fn):
            return lambda: [fn(q) for q in queries]

        functions = {"numpy brute force": run(lambda q: numpy_topk(gallery, q))}
        for name in backends:
            functions[name] = run(lambda q, i=indexes[name]: i.search(q[None], 5))
        for fn in functions.values():
            fn()  # warm-up
        times = _common.repeat_paired(functions, args.repeats)
        rows = []
        for name, t in times.items():
            per_query_ms = 1e3 * _common.median(t) / args.queries
            if name == "numpy brute force":
                recall, built, ratio = "exact", "-", "1 (baseline)"
            else:
                found = np.stack([indexes[name].search(q[None], 5)[1][0] for q in queries[:50]])
                recall = f"{np.mean(found[:, 0] == exact[:50, 0]):.2f}"
                built = f"{build[name]:.2f}"
                ratio = f"{_common.paired_ratio(times['numpy brute force'], t):.2f}"
            rows.append(
                [
                    name + (" (auto)" if name == auto else ""),
                    f"{per_query_ms:.3f}",
                    ratio,
                    recall,
                    built,
                ]
            )
        best = min(1e3 * _common.median(t) / args.queries for n, t in times.items() if n in (auto,))
        headers = ["back end", "ms per query", "speed-up vs numpy", "top-1 = exact", "build s"]
        sections.append(f"""**{label}** ({size} x {args.dim}); the automatic choice ({auto}) \
answers in {best:.3f} ms per query (target <= 5 ms: {"met" if best <= 5 else "not met"}).

{_common.table(headers, rows)}""")
    body = (
        f"Top-5 search of one query at a time ({args.queries} queries per timing). "
        f"Embedding a 5 s clip with the built-in model takes {embed_ms:.1f} ms "
        "(TensorFlow default threads), so a closest-speaker answer is dominated by "
        "the embedding, not the search.\n\n" + "\n\n".join(sections)
    )
    _common.finish(args, "search", "Closest-speaker search (`bench/bench_search.py`)", env, body)


if __name__ == "__main__":
    main()
