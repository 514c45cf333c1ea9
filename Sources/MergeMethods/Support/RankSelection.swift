/// Order-preserving 32-bit keys for floats, so that selection can work on integers.
enum FloatKey {
    /// Key of |x|: clearing the sign bit leaves an integer that orders non-negative floats (NaN sorts above +inf).
    @inline(__always) static func magnitude(_ x: Float) -> UInt32 { x.bitPattern & 0x7FFF_FFFF }

    /// Key of x that orders all floats, negatives included.
    @inline(__always) static func ordered(_ x: Float) -> UInt32 {
        let b = x.bitPattern
        return b & 0x8000_0000 != 0 ? ~b : b | 0x8000_0000
    }

    /// The float whose `ordered` key is `key`.
    @inline(__always) static func value(ofOrdered key: UInt32) -> Float {
        Float(bitPattern: key & 0x8000_0000 != 0 ? key & 0x7FFF_FFFF : ~key)
    }
}

/// Selection by rank in O(n): a two-level radix select (16 high bits, then 16 low bits) instead of a sort.
///
/// Every selection here is defined on one total order, the reverse of a stable descending sort: keys ascending,
/// and among equal keys the earlier position counts as the larger. "The k largest" is the rank window [n−k, n)
/// of that order (so TIES keeps the first of equal magnitudes, like a stable descending argsort), the result never
/// depends on thread scheduling, and equal magnitudes at a cut-off are resolved by position. (torch's unstable
/// sort leaves such ties implementation-defined; the one tie in the fixtures, in `breadcrumbs`, agrees with this order.)
enum RankSelect {
    private static let buckets = 1 << 16

    /// Histogram of the high 16 bits of every key.
    static func highHistogram(_ keys: UnsafeBufferPointer<UInt32>, threads: Int) -> [Int] {
        histogram(count: keys.count, threads: threads) { r, hist in
            for i in r { hist[Int(keys[i] >> 16)] &+= 1 }
        }
    }

    /// A 2^16-bucket histogram filled chunk by chunk (`fill(range, counts)`), one set of counts per worker, added up.
    private static func histogram(count: Int, threads: Int,
                                  _ fill: (Range<Int>, UnsafeMutablePointer<UInt32>) -> Void) -> [Int] {
        let chunking = Chunking(count, threads: threads)
        var perWorker = [UInt32](repeating: 0, count: buckets * chunking.workers)
        perWorker.withUnsafeMutableBufferPointer { h in
            chunking.run { worker, chunks in
                for c in chunks { fill(chunking.range(c), h.baseAddress! + worker * buckets) }
            }
        }
        var total = [Int](repeating: 0, count: buckets)
        for w in 0..<chunking.workers {
            for b in 0..<buckets { total[b] += Int(perWorker[w * buckets + b]) }
        }
        return total
    }

    /// The key at ascending position `rank` (0-based), with the number of keys below it and equal to it.
    static func orderStatistic(_ keys: UnsafeBufferPointer<UInt32>, rank: Int, high: [Int], threads: Int)
        -> (key: UInt32, less: Int, equal: Int) {
        var below = 0
        var bucket = 0
        while below + high[bucket] <= rank {
            below += high[bucket]
            bucket += 1
        }
        let b = UInt32(bucket)
        let low = histogram(count: keys.count, threads: threads) { r, hist in
            RankSelect.lowHistogram(keys.baseAddress! + r.lowerBound, r.count, high: b, into: hist)
        }
        var less = below
        var l = 0
        while less + low[l] <= rank {
            less += low[l]
            l += 1
        }
        return (b << 16 | UInt32(l), less, low[l])
    }

    /// Sets in `mask` exactly the elements whose ascending rank lies in `window`.
    ///
    /// Equal keys are ordered by `residual` when given (the part of the exact value the 32-bit key rounded away,
    /// e.g. |x − b| in double minus its float32 rounding), then by position, later positions first. `high` may be passed when the caller
    /// already built the high-bits histogram. `inexact`, when given, has a bit set for every element whose residual may be
    /// non-zero; `residual` is then only called for those (streaming methods read the values back one by one).
    static func markWindow(_ keys: UnsafeBufferPointer<UInt32>, window: Range<Int>, into mask: Bitset,
                           threads: Int, high: [Int]? = nil, residual: ((Int) -> Double)? = nil,
                           inexact: UnsafePointer<UInt64>? = nil) {
        let n = keys.count
        let lo = max(0, window.lowerBound)
        let hi = min(n, window.upperBound)
        guard lo < hi else { return }
        let words = mask.words
        let chunking = Chunking(n, threads: threads)
        if lo == 0 && hi == n {
            for i in 0..<n { words[i >> 6] |= 1 << UInt64(i & 63) }
            return
        }
        let hist = high ?? highHistogram(keys, threads: threads)
        // Lower bound: keys above kLo pass; of the keys equal to kLo, ordinals >= skipLo pass.
        var kLo: UInt32 = 0, skipLo = 0, eqLo = 0, hasLo = false
        if lo > 0 {
            let s = orderStatistic(keys, rank: lo, high: hist, threads: threads)
            kLo = s.key; skipLo = lo - s.less; eqLo = s.equal; hasLo = true
        }
        // Upper bound: keys below kHi pass; of the keys equal to kHi, ordinals < takeHi pass.
        var kHi: UInt32 = 0, takeHi = 0, eqHi = 0, hasHi = false
        if hi < n {
            let s = orderStatistic(keys, rank: hi - 1, high: hist, threads: threads)
            kHi = s.key; takeHi = hi - s.less; eqHi = s.equal; hasHi = true
        }
        let allLoEqual = !hasLo || skipLo == 0
        let allHiEqual = !hasHi || takeHi == eqHi

        // Pass 1 (parallel): everything strictly inside, plus boundary ties that are kept in full. The bounds become
        // inclusive integer ranges so each element costs two compares and no branch; words are built in registers.
        // (Signed 64-bit, so that "below key 0" is the empty range rather than an overflow.)
        let lowest: Int64 = !hasLo ? 0 : (allLoEqual ? Int64(kLo) : Int64(kLo) + 1)
        let highest: Int64 = !hasHi ? Int64(UInt32.max) : (allHiEqual ? Int64(kHi) : Int64(kHi) - 1)
        chunking.forEach { r in
            var i = r.lowerBound
            while i < r.upperBound {
                let end = min(i + 64, r.upperBound)
                var word: UInt64 = 0
                var bit: UInt64 = 0
                for j in i..<end {
                    let k = Int64(keys[j])
                    let inside: UInt64 = (k >= lowest && k <= highest) ? 1 : 0
                    word |= inside << bit
                    bit += 1
                }
                words[i >> 6] |= word
                i = end
            }
        }
        // Pass 2: boundary ties kept in part.
        if hasLo && hasHi && kLo == kHi {
            if !(allLoEqual && allHiEqual) {
                markTies(keys, key: kLo, ordinals: skipLo..<takeHi, words: words, residual: residual, inexact: inexact, threads: threads)
            }
            return
        }
        if !allLoEqual { markTies(keys, key: kLo, ordinals: skipLo..<eqLo, words: words, residual: residual, inexact: inexact,
                                  threads: threads) }
        if !allHiEqual { markTies(keys, key: kHi, ordinals: 0..<takeHi, words: words, residual: residual, inexact: inexact,
                                  threads: threads) }
    }

    /// Sets the bits of the elements whose key equals `key` and whose ordinal among them lies in `ordinals`,
    /// ordering them by residual, then by position descending. Elements with a zero residual (the common case:
    /// the key was exact, e.g. bf16 parents) are never sorted: each chunk counts them in parallel, and a second
    /// parallel pass numbers them from the chunk's offset, so heavy ties cost two parallel scans.
    private static func markTies(_ keys: UnsafeBufferPointer<UInt32>, key: UInt32, ordinals: Range<Int>,
                                 words: UnsafeMutableBufferPointer<UInt64>, residual: ((Int) -> Double)?,
                                 inexact: UnsafePointer<UInt64>? = nil, threads: Int) {
        let n = keys.count
        let chunking = Chunking(n, threads: threads)
        @inline(__always) func set(_ i: Int) { words[i >> 6] |= 1 << UInt64(i & 63) }
        @inline(__always) func mayBeInexact(_ i: Int) -> Bool { inexact.map { ($0[i >> 6] >> UInt64(i & 63)) & 1 != 0 } ?? true }
        @inline(__always) func isZero(_ i: Int) -> Bool {
            guard let residual, mayBeInexact(i) else { return true }
            return residual(i) == 0
        }

        // Pass A: per chunk, the number of zero-residual ties and the (rare) non-zero ones. Equal keys are counted
        // with a branch-free loop; residuals are only evaluated where they may be non-zero (all ties without `inexact`,
        // only the flagged elements with it).
        var zeroCounts = [Int](repeating: 0, count: chunking.count)
        var others = [[(Double, Int)]](repeating: [], count: chunking.count)
        zeroCounts.withUnsafeMutableBufferPointer { zc in
            others.withUnsafeMutableBufferPointer { ot in
                let k = keys.baseAddress!
                chunking.run { _, chunks in
                    for c in chunks {
                        let r = chunking.range(c)
                        var count = RankSelect.countEqual(k + r.lowerBound, r.count, key)
                        if let residual {
                            if let inexact {
                                for w in (r.lowerBound >> 6)..<((r.upperBound + 63) >> 6) {
                                    var bits = inexact[w]
                                    while bits != 0 {
                                        let i = w << 6 + bits.trailingZeroBitCount
                                        bits &= bits &- 1
                                        guard i < r.upperBound, k[i] == key else { continue }
                                        let v = residual(i)
                                        if v != 0 { ot[c].append((v, -i)); count -= 1 }
                                    }
                                }
                            } else if count > 0 {
                                for i in r where k[i] == key {
                                    let v = residual(i)
                                    if v != 0 { ot[c].append((v, -i)); count -= 1 }
                                }
                            }
                        }
                        zc[c] = count
                    }
                }
            }
        }
        let nonZero = others.joined().sorted { $0 < $1 }
        let negative = nonZero.filter { $0.0 < 0 }
        let positive = nonZero.filter { $0.0 > 0 }
        for (o, e) in negative.enumerated() where ordinals.contains(o) { set(-e.1) }
        let zeroStart = negative.count
        let zeros = zeroCounts.reduce(0, +)
        if ordinals.overlaps(zeroStart..<(zeroStart + zeros)) {
            // Ordinals run from the last position backwards: chunk c starts after all zero ties of later chunks.
            var after = [Int](repeating: 0, count: chunking.count)
            var running = 0
            for c in stride(from: chunking.count - 1, through: 0, by: -1) {
                after[c] = running
                running += zeroCounts[c]
            }
            chunking.forEach { r in
                let c = r.lowerBound / Chunking.size
                let first = zeroStart + after[c]
                guard zeroCounts[c] > 0, ordinals.overlaps(first..<(first + zeroCounts[c])) else { return }
                // Word by word from the end: a word's zero-residual ties are numbered together unless the ordinal
                // window starts or ends inside it.
                var ordinal = first
                let k = keys.baseAddress!
                var w = (r.upperBound - 1) >> 6
                while w >= r.lowerBound >> 6 && ordinal < ordinals.upperBound {
                    let lo = w << 6, hi = min(lo + 64, r.upperBound)
                    var m: UInt64 = 0
                    for j in lo..<hi { m |= (k[j] == key ? 1 : 0) << UInt64(j - lo) }
                    if residual != nil {
                        var candidates = inexact.map { m & $0[w] } ?? m
                        while candidates != 0 {
                            let t = candidates.trailingZeroBitCount
                            candidates &= candidates &- 1
                            if !isZero(lo + t) { m &= ~(1 << UInt64(t)) }
                        }
                    }
                    let tied = m.nonzeroBitCount
                    if ordinal + tied <= ordinals.lowerBound {
                        ordinal += tied
                    } else if ordinal >= ordinals.lowerBound && ordinal + tied <= ordinals.upperBound {
                        words[w] |= m
                        ordinal += tied
                    } else {
                        while m != 0 && ordinal < ordinals.upperBound {
                            let t = 63 - m.leadingZeroBitCount
                            m &= ~(1 << UInt64(t))
                            if ordinal >= ordinals.lowerBound { words[w] |= 1 << UInt64(t) }
                            ordinal += 1
                        }
                    }
                    w -= 1
                }
            }
        }
        let positiveStart = zeroStart + zeros
        for (o, e) in positive.enumerated() where ordinals.contains(positiveStart + o) { set(-e.1) }
    }

    /// How many of `count` keys equal `key` (a plain counting loop the compiler vectorises).
    @inline(never)
    static func countEqual(_ keys: UnsafePointer<UInt32>, _ count: Int, _ key: UInt32) -> Int {
        var total = 0
        var j = 0
        while j < count {
            total &+= keys[j] == key ? 1 : 0
            j &+= 1
        }
        return total
    }

    /// Adds the low 16 bits of the keys whose high 16 bits are `high` to `hist`.
    @inline(never)
    /// Keys with all low bits zero (common: differences of bf16 values are often bf16) are counted in a register, so
    /// runs of them do not serialise on one histogram slot.
    static func lowHistogram(_ keys: UnsafePointer<UInt32>, _ count: Int, high: UInt32, into hist: UnsafeMutablePointer<UInt32>) {
        let round = high << 16
        var roundCount: UInt32 = 0
        var j = 0
        while j < count {
            let key = keys[j]
            if key == round {
                roundCount &+= 1
            } else if key >> 16 == high {
                hist[Int(key & 0xFFFF)] &+= 1
            }
            j &+= 1
        }
        hist[0] &+= roundCount
    }
}
