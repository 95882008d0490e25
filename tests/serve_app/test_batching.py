"""serve_app.batching as plain asyncio / Python: natural batches, token chunks, thread derivation."""

from __future__ import annotations

import asyncio

import numpy as np

import pytest

from serve_app.batching import NaturalBatcher, token_chunks, torch_threads_for


class Recorder:
    """A batched function that records its batches and takes ``delay`` seconds per batch."""

    def __init__(self, delay: float = 0.05):
        self.delay = delay
        self.batches: list[list] = []
        self.running = 0
        self.most_running = 0

    async def __call__(self, values: list) -> list:
        self.batches.append(list(values))
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        await asyncio.sleep(self.delay)
        self.running -= 1
        return [v * 10 for v in values] if values and isinstance(values[0], int) else [len(v) for v in values]


def run(coro):
    return asyncio.run(coro)


def test_a_lone_call_runs_at_once():
    async def main():
        fn = Recorder(delay=0.0)
        b = NaturalBatcher(fn, max_batch_size=32)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        assert await b.submit(3) == 30
        return loop.time() - t0, fn.batches

    elapsed, batches = run(main())
    assert batches == [[3]]
    assert elapsed < 0.005  # no batch wait: Serve's default would have waited 10 ms


def test_under_load_the_next_batch_is_what_queued_meanwhile():
    async def main():
        fn = Recorder(delay=0.05)
        b = NaturalBatcher(fn, max_batch_size=32)
        first = asyncio.ensure_future(b.submit(0))
        await asyncio.sleep(0.01)  # the first batch (of one) is running
        rest = [asyncio.ensure_future(b.submit(i)) for i in range(1, 11)]
        results = await asyncio.gather(first, *rest)
        return results, fn

    results, fn = run(main())
    assert results == [i * 10 for i in range(11)]
    assert fn.batches == [[0], list(range(1, 11))]  # ten calls that queued during batch 1 -> one batch
    assert fn.most_running == 1


def test_limits_calls_and_items_per_batch():
    async def main():
        fn = Recorder(delay=0.02)
        b = NaturalBatcher(fn, max_batch_size=3, max_batch_items=5, size_of=len)
        blocker = asyncio.ensure_future(b.submit(["x"]))
        await asyncio.sleep(0.005)
        values = [["a"] * 2, ["b"] * 2, ["c"] * 2, ["d"], ["e"], ["f"], ["g"], ["h"] * 9]
        out = await asyncio.gather(blocker, *(b.submit(v) for v in values))
        return out, fn.batches

    out, batches = run(main())
    assert out == [1, 2, 2, 2, 1, 1, 1, 1, 9]
    sizes = [[len(v) for v in batch] for batch in batches]
    # items cap 5: [2, 2] (+2 would be 6), then [2, 1, 1] (3 calls), then [1, 1], then the 9 alone
    assert sizes == [[1], [2, 2], [2, 1, 1], [1, 1], [9]]


def test_concurrent_batches():
    async def main():
        fn = Recorder(delay=0.03)
        b = NaturalBatcher(fn, max_batch_size=2, max_concurrent_batches=2)
        await asyncio.gather(*(b.submit(i) for i in range(8)))
        return fn

    fn = run(main())
    assert fn.most_running == 2 and sorted(v for batch in fn.batches for v in batch) == list(range(8))


def test_errors_reach_every_caller_of_the_batch_and_the_next_batch_still_runs():
    async def main():
        calls = []

        async def fn(values):
            calls.append(list(values))
            await asyncio.sleep(0.01)
            if 99 in values:
                raise ValueError("bad batch")
            return values

        b = NaturalBatcher(fn, max_batch_size=8)
        first = asyncio.ensure_future(b.submit(99))
        await asyncio.sleep(0.001)
        second = asyncio.ensure_future(b.submit(1))
        r = await asyncio.gather(first, second, return_exceptions=True)
        again = await b.submit(2)
        return r, again, calls

    r, again, calls = run(main())
    assert isinstance(r[0], ValueError) and r[1] == 1 and again == 2
    assert calls == [[99], [1], [2]]


def test_a_wrong_result_count_is_an_error_not_a_hang():
    async def main():
        async def fn(values):
            return values[:-1]

        b = NaturalBatcher(fn)
        return await asyncio.wait_for(asyncio.gather(b.submit(1), return_exceptions=True), 1.0)

    (err,) = run(main())
    assert isinstance(err, RuntimeError) and "0 results for 1 calls" in str(err)


def test_a_cancelled_queued_call_never_runs():
    async def main():
        fn = Recorder(delay=0.03)
        b = NaturalBatcher(fn, max_batch_size=8)
        first = asyncio.ensure_future(b.submit(1))
        await asyncio.sleep(0.005)
        doomed = asyncio.ensure_future(b.submit(2))
        kept = asyncio.ensure_future(b.submit(3))
        await asyncio.sleep(0.001)
        doomed.cancel()
        await asyncio.gather(first, kept)
        return fn.batches

    assert run(main()) == [[1], [3]]


def test_a_wait_timeout_collects_more_when_asked():
    async def main():
        fn = Recorder(delay=0.0)
        b = NaturalBatcher(fn, max_batch_size=4, batch_wait_timeout_s=0.03)
        first = asyncio.ensure_future(b.submit(1))
        await asyncio.sleep(0.01)
        await asyncio.gather(first, b.submit(2))
        full = await asyncio.gather(*(b.submit(i) for i in range(4)))  # full at once: no wait
        return fn.batches, full

    batches, full = run(main())
    assert batches == [[1, 2], [0, 1, 2, 3]] and full == [0, 10, 20, 30]


def test_reconfigure_and_bad_limits():
    b = NaturalBatcher(Recorder())
    b.configure(4, 100, 2, 0.0)
    assert (b.max_batch_size, b.max_batch_items, b.max_concurrent_batches) == (4, 100, 2)
    with pytest.raises(ValueError):
        b.configure(0)
    with pytest.raises(ValueError):
        b.configure(4, batch_wait_timeout_s=-1)


def test_token_chunks_sort_and_cap_padded_tokens():
    lengths = [10, 200, 12, 11, 190, 9]
    chunks = token_chunks(lengths, max_tokens=400)
    assert chunks == [[1, 4], [2, 3, 0, 5]]  # 2 x 200 = 400; then the short ones together
    assert sorted(i for c in chunks for i in c) == list(range(6))
    for c in chunks:
        assert len(c) * max(lengths[i] for i in c) <= 400
    # One text over the budget gets a chunk of its own; max_size caps the count.
    assert token_chunks([1000, 5, 5], max_tokens=100) == [[0], [1, 2]]
    assert token_chunks([5] * 5, max_tokens=10**6, max_size=2) == [[0, 1], [2, 3], [4]]
    assert token_chunks([], 10) == []
    with pytest.raises(ValueError):
        token_chunks([1], 0)


def test_padding_saved_on_a_mixed_batch():
    lengths = [256, 20, 22, 25, 30, 18, 21, 24]
    padded_one_pass = len(lengths) * max(lengths)
    padded = sum(len(c) * max(lengths[i] for i in c) for c in token_chunks(lengths, 512))
    assert padded < padded_one_pass / 3


@pytest.mark.parametrize(
    "cpus, requested, threads",
    [(None, None, 1), (0.25, None, 1), (0.5, 4, 1), (1.0, None, 1), (2.0, None, 2), (1.999999999999, None, 2), (2.0, 1, 1),
     (4.0, 8, 4), (3.5, None, 3)],
)
def test_torch_threads_never_exceed_the_cpus_held(cpus, requested, threads):
    assert torch_threads_for(cpus, requested) == threads


class _WordTokenizer:
    """TEST DOUBLE of a Hugging Face tokenizer: one token per word, plus 2 special tokens."""

    def __call__(self, texts, add_special_tokens=True, truncation=True, max_length=512):
        return {"input_ids": [[0] * min(max_length, len(t.split()) + 2) for t in texts]}


class _ChunkRecordingRouter:
    """TEST DOUBLE of the Embedder's router: the hashing encoder behind a fake tokenizer; records
    every encoder call so the test sees the chunks."""

    def __init__(self):
        from types import SimpleNamespace

        from router.embeddings.hashing import HashingEncoder

        self.hashing = HashingEncoder(16)
        self.encoder = SimpleNamespace(model=SimpleNamespace(tokenizer=_WordTokenizer(), max_seq_length=256))
        self.calls: list[list[str]] = []

    def embed(self, texts):
        self.calls.append(list(texts))
        return self.hashing.encode(texts)


def test_embedder_encodes_a_mixed_batch_in_token_chunks_and_keeps_the_order():
    from types import SimpleNamespace

    from serve_app.config import EmbedderBatchingConfig
    from serve_app.deployments import Embedder, _token_lengths

    router = _ChunkRecordingRouter()
    long_text = " ".join(f"w{i}" for i in range(200))
    texts = ["short one", long_text, "a b c", "another short prompt here", long_text + " x"]
    me = SimpleNamespace(router=router, _lengths=_token_lengths(router.encoder),
                         batching=EmbedderBatchingConfig(max_batch_tokens=300))
    out = Embedder.func_or_class._encode(me, texts)
    assert np.allclose(out, router.hashing.encode(texts))  # same vectors, input order
    # the two long prompts (202-203 tokens) each alone under 300 padded tokens; the short ones together
    assert sorted(len(c) for c in router.calls) == [1, 1, 3]
    router.calls.clear()
    me.batching = EmbedderBatchingConfig(max_batch_tokens=None)
    Embedder.func_or_class._encode(me, texts)
    assert [len(c) for c in router.calls] == [5]  # one pass when not capped
    assert _token_lengths(router.hashing) is None  # no tokenizer: nothing to bucket
