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
/// Every selection here is defined on one total order: elements sorted by key ascending, equal keys in index
/// order (a stable sort). "The k largest" is the rank window [n−k, n) of that order, so the result never depends
/// on thread scheduling, and equal magnitudes at a cut-off are resolved by position.
enum RankSelect {
    private static let buckets = 1 << 16

    /// Histogram of the high 16 bits of every key.
    static func highHistogram(_ keys: UnsafeBufferPointer<UInt32>, threads: Int) -> [Int] {
        let chunking = Chunking(keys.count, threads: threads)
        var perWorker = [UInt32](repeating: 0, count: buckets * chunking.workers)
        perWorker.withUnsafeMutableBufferPointer { h in
            chunking.run { worker, chunks in
                let hist = h.baseAddress! + worker * buckets
                for c in chunks {
                    for i in chunking.range(c) { hist[Int(keys[i] >> 16)] &+= 1 }
                }
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
        let chunking = Chunking(keys.count, threads: threads)
        var perWorker = [UInt32](repeating: 0, count: buckets * chunking.workers)
        perWorker.withUnsafeMutableBufferPointer { h in
            chunking.run { worker, chunks in
                let hist = h.baseAddress! + worker * buckets
                for c in chunks {
                    for i in chunking.range(c) where keys[i] >> 16 == b {
                        hist[Int(keys[i] & 0xFFFF)] &+= 1
                    }
                }
            }
        }
        var low = [Int](repeating: 0, count: buckets)
        for w in 0..<chunking.workers {
            for l in 0..<buckets { low[l] += Int(perWorker[w * buckets + l]) }
        }
        var less = below
        var l = 0
        while less + low[l] <= rank {
            less += low[l]
            l += 1
        }
        return (b << 16 | UInt32(l), less, low[l])
    }

    /// Sets in `mask` exactly the elements whose stable ascending rank lies in `window`.
    /// `high` may be passed when the caller already built the high-bits histogram while producing the keys.
    static func markWindow(_ keys: UnsafeBufferPointer<UInt32>, window: Range<Int>, into mask: Bitset,
                           threads: Int, high: [Int]? = nil) {
        let n = keys.count
        let lo = max(0, window.lowerBound)
        let hi = min(n, window.upperBound)
        guard lo < hi else { return }
        let chunking = Chunking(n, threads: threads)
        if lo == 0 && hi == n {
            mask.withWords { w in
                for i in 0..<n { w[i >> 6] |= 1 << UInt64(i & 63) }
            }
            return
        }
        let hist = high ?? highHistogram(keys, threads: threads)
        // Lower bound: keys above kLo pass; of the keys equal to kLo, those with ordinal >= skipLo pass.
        var kLo: UInt32 = 0, skipLo = 0, eqLo = 0, hasLo = false
        if lo > 0 {
            let s = orderStatistic(keys, rank: lo, high: hist, threads: threads)
            kLo = s.key; skipLo = lo - s.less; eqLo = s.equal; hasLo = true
        }
        // Upper bound: keys below kHi pass; of the keys equal to kHi, those with ordinal < takeHi pass.
        var kHi: UInt32 = 0, takeHi = 0, eqHi = 0, hasHi = false
        if hi < n {
            let s = orderStatistic(keys, rank: hi - 1, high: hist, threads: threads)
            kHi = s.key; takeHi = hi - s.less; eqHi = s.equal; hasHi = true
        }
        let allLoEqual = !hasLo || skipLo == 0
        let allHiEqual = !hasHi || takeHi == eqHi

        // Pass 1 (parallel): everything strictly inside, plus boundary ties that are kept in full.
        mask.withWords { w in
            let words = w
            chunking.forEach { r in
                for i in r {
                    let k = keys[i]
                    var keep = true
                    if hasLo {
                        keep = k > kLo || (k == kLo && allLoEqual)
                    }
                    if keep && hasHi {
                        keep = k < kHi || (k == kHi && allHiEqual)
                    }
                    if keep { words[i >> 6] |= 1 << UInt64(i & 63) }
                }
            }
        }
        if allLoEqual && allHiEqual { return }

        // Pass 2 (sequential, touches only what it must): boundary ties kept in part, by index order.
        mask.withWords { w in
            if hasLo && hasHi && kLo == kHi {
                // One key spans the whole window: ordinals skipLo ..< takeHi.
                var ordinal = 0
                var i = 0
                while i < n && ordinal < takeHi {
                    if keys[i] == kLo {
                        if ordinal >= skipLo { w[i >> 6] |= 1 << UInt64(i & 63) }
                        ordinal += 1
                    }
                    i += 1
                }
                return
            }
            if !allLoEqual {
                // Keep the equal keys from ordinal skipLo on: walk backwards, keeping the last eqLo − skipLo.
                // (kLo < kHi here, so these elements also satisfy the upper bound.)
                var remaining = eqLo - skipLo
                var i = n - 1
                while i >= 0 && remaining > 0 {
                    if keys[i] == kLo {
                        w[i >> 6] |= 1 << UInt64(i & 63)
                        remaining -= 1
                    }
                    i -= 1
                }
            }
            if !allHiEqual {
                var remaining = takeHi
                var i = 0
                while i < n && remaining > 0 {
                    if keys[i] == kHi {
                        w[i >> 6] |= 1 << UInt64(i & 63)
                        remaining -= 1
                    }
                    i += 1
                }
            }
        }
    }
}
