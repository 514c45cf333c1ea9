import Host

/// Fixed-size chunks of a flat tensor. Reductions keep one partial sum per chunk and add them in chunk
/// order, so results are identical whatever the number of threads.
struct Chunking {
    /// Elements per chunk: a multiple of 64 so that chunks own whole words of a `Bitset`.
    static let size = 1 << 16
    /// Tensors smaller than this are processed on the calling thread.
    static let parallelThreshold = 1 << 18

    let n: Int
    let count: Int
    let workers: Int

    init(_ n: Int, threads: Int) {
        self.n = n
        count = max(1, (n + Chunking.size - 1) / Chunking.size)
        workers = n >= Chunking.parallelThreshold ? max(1, min(threads, count)) : 1
    }

    func range(_ chunk: Int) -> Range<Int> {
        let lo = chunk * Chunking.size
        return lo..<min(n, lo + Chunking.size)
    }

    /// Runs `body(worker, chunks)` once per worker; each worker gets a contiguous run of chunk indices.
    func run(_ body: (Int, Range<Int>) -> Void) {
        if workers == 1 {
            body(0, 0..<count)
            return
        }
        let w = workers
        let c = count
        parallelFor(w, threads: w) { worker in
            body(worker, (c * worker / w)..<(c * (worker + 1) / w))
        }
    }

    /// Runs `body(chunkRange)` for every chunk, in parallel when the tensor is large.
    func forEach(_ body: (Range<Int>) -> Void) {
        run { _, chunks in
            for c in chunks { body(range(c)) }
        }
    }

    /// Sums `body(chunkRange)` over all chunks in a thread-count-independent order.
    func sum(_ body: (Range<Int>) -> Double) -> Double {
        var partial = [Double](repeating: 0, count: count)
        partial.withUnsafeMutableBufferPointer { p in
            run { _, chunks in
                for c in chunks { p[c] = body(range(c)) }
            }
        }
        return partial.reduce(0, +)
    }

    /// Like `sum`, for several quantities at once (`width` of them per chunk).
    func sums(width: Int, _ body: (Range<Int>, UnsafeMutableBufferPointer<Double>) -> Void) -> [Double] {
        var partial = [Double](repeating: 0, count: count * width)
        partial.withUnsafeMutableBufferPointer { p in
            run { _, chunks in
                for c in chunks {
                    body(range(c), UnsafeMutableBufferPointer(rebasing: p[(c * width)..<((c + 1) * width)]))
                }
            }
        }
        var total = [Double](repeating: 0, count: width)
        for c in 0..<count {
            for k in 0..<width { total[k] += partial[c * width + k] }
        }
        return total
    }
}

/// One bit per element: which entries of a task vector survive sparsification.
/// The words live in manually allocated memory so hot loops can hold a plain pointer to them.
final class Bitset {
    let count: Int
    let words: UnsafeMutableBufferPointer<UInt64>

    init(count: Int) {
        self.count = count
        words = .allocate(capacity: max(1, (count + 63) / 64))
        words.initialize(repeating: 0)
    }

    deinit { words.deallocate() }

    @inline(__always) func contains(_ i: Int) -> Bool {
        (words[i >> 6] >> UInt64(i & 63)) & 1 != 0
    }

    @inline(__always) func insert(_ i: Int) {
        words[i >> 6] |= 1 << UInt64(i & 63)
    }

    /// Number of set bits.
    var population: Int {
        var total = 0
        for w in words { total += w.nonzeroBitCount }
        return total
    }
}

/// Runs `body(chunkIndex, chunkRange)` for the `Chunking` chunks of a block (a block starts on a chunk boundary),
/// in parallel when the block is large; chunk indices and ranges are those of the whole tensor.
enum StreamingChunks {
    static func forEach(_ blk: Range<Int>, threads: Int, _ body: (Int, Range<Int>) -> Void) {
        let sub = Chunking(blk.count, threads: threads)
        let first = blk.lowerBound / Chunking.size, s = blk.lowerBound
        sub.run { _, chunks in
            for c in chunks {
                let r = sub.range(c)
                body(first + c, (r.lowerBound + s)..<(r.upperBound + s))
            }
        }
    }

    static func forEachWithWorker(_ blk: Range<Int>, threads: Int, _ body: (Int, Int, Range<Int>) -> Void) {
        let sub = Chunking(blk.count, threads: threads)
        let first = blk.lowerBound / Chunking.size, s = blk.lowerBound
        sub.run { worker, chunks in
            for c in chunks {
                let r = sub.range(c)
                body(worker, first + c, (r.lowerBound + s)..<(r.upperBound + s))
            }
        }
    }
}
