// The 256-element k-quant super-blocks, quantized as ggml's `quantize_row_q{2,3,4,5,6}_K_ref` do (no importance
// matrix). Each super-block is cut into 16 or 8 sub-blocks; each sub-block gets its own scale (and min) by a
// small search for the least weighted error, and those scales are themselves quantized to 4, 6 or 8 bits against
// the f16 super-block scale. The quants are then recomputed from the rounded scales. The searches below follow
// ggml's float32 arithmetic step by step (same operations, same order), so that the bytes are identical.

private let groupMaxEps: Float = 1e-15

/// ggml's `nearest_int`: round to nearest, ties to even, by the 1.5·2^23 trick (|f| < 2^22).
@inline(__always)
func nearestInt(_ f: Float) -> Int {
    let v = f + 12_582_912
    return Int(Int32(bitPattern: v.bitPattern) & 0x007F_FFFF) - 0x0040_0000
}

/// The first of `n` values with the largest magnitude, with its sign; nil (and all levels 0) for an all-zero group.
private func largestMagnitude(_ n: Int, _ x: UnsafePointer<Float>, _ L: UnsafeMutablePointer<Int8>) -> Float? {
    var maxv: Float = 0
    var amax: Float = 0
    for i in 0..<n {
        let ax = abs(x[i])
        if ax > amax { amax = ax; maxv = x[i] }
    }
    if amax < groupMaxEps {
        for i in 0..<n { L[i] = 0 }
        return nil
    }
    return maxv
}

/// The x²-weighted sums Σw·x·l and Σw·l² of the levels l = clamp(nearest(iscale·x), −nmax, nmax−1), in ggml's order;
/// with `L`, each level plus `offset` is stored there too.
@inline(__always)
private func weightedSums(_ n: Int, _ nmax: Int, _ x: UnsafePointer<Float>, iscale: Float,
                          storing L: UnsafeMutablePointer<Int8>?, offset: Int = 0) -> (sumlx: Float, suml2: Float) {
    var sumlx: Float = 0
    var suml2: Float = 0
    for i in 0..<n {
        let l = max(-nmax, min(nmax - 1, nearestInt(iscale * x[i])))
        L?[i] = Int8(l + offset)
        let w = x[i] * x[i]
        sumlx += w * x[i] * Float(l)
        suml2 += w * Float(l) * Float(l)
    }
    return (sumlx, suml2)
}

/// A symmetric scale for `n` values onto levels −nmax..nmax−1 (stored as L + nmax), ggml's `make_qx_quants`
/// with x²-weighted least squares (rmse_type 1) and a search over 18 nearby scales.
private func makeQXQuants(_ n: Int, _ nmax: Int, _ x: UnsafePointer<Float>, _ L: UnsafeMutablePointer<Int8>) -> Float {
    guard let maxv = largestMagnitude(n, x, L) else { return 0 }
    var (sumlx, suml2) = weightedSums(n, nmax, x, iscale: Float(-nmax) / maxv, storing: L, offset: nmax)
    var scale: Float = suml2 != 0 ? sumlx / suml2 : 0
    var best = scale * sumlx
    for step in -9...9 where step != 0 {
        let iscale = -(Float(nmax) + 0.1 * Float(step)) / maxv
        (sumlx, suml2) = weightedSums(n, nmax, x, iscale: iscale, storing: nil)
        if suml2 > 0 && sumlx * sumlx > best * suml2 {
            for i in 0..<n { L[i] = Int8(nmax + max(-nmax, min(nmax - 1, nearestInt(iscale * x[i])))) }
            scale = sumlx / suml2
            best = scale * sumlx
        }
    }
    return scale
}

/// ggml's `make_q3_quants` with `do_rmse`: a symmetric scale onto −nmax..nmax−1, then up to five passes that move
/// single quants while the x²-weighted fit improves. L holds the levels plus nmax.
private func makeQ3Quants(_ n: Int, _ nmax: Int, _ x: UnsafePointer<Float>, _ L: UnsafeMutablePointer<Int8>) -> Float {
    guard let maxv = largestMagnitude(n, x, L) else { return 0 }
    var (sumlx, suml2) = weightedSums(n, nmax, x, iscale: Float(-nmax) / maxv, storing: L)
    for _ in 0..<5 {
        var changed = 0
        for i in 0..<n {
            let w = x[i] * x[i]
            let li = Float(L[i])
            var slx = sumlx - w * x[i] * li
            if slx > 0 {
                var sl2 = suml2 - w * li * li
                let newL = max(-nmax, min(nmax - 1, nearestInt(x[i] * sl2 / slx)))
                if newL != Int(L[i]) {
                    slx += w * x[i] * Float(newL)
                    sl2 += w * Float(newL) * Float(newL)
                    if sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2 {
                        L[i] = Int8(newL)
                        sumlx = slx
                        suml2 = sl2
                        changed += 1
                    }
                }
            }
        }
        if changed == 0 { break }
    }
    for i in 0..<n { L[i] += Int8(nmax) }
    return suml2 > 0 ? sumlx / suml2 : 0
}

/// ggml's `make_qkx2_quants`: an affine fit x ≈ scale·L − min onto 0...nmax, minimising the weighted squared
/// (or absolute, `mad`) error over `nstep + 1` candidate scales. Returns the scale; `theMin` receives −min ≥ 0.
private func makeQKX2Quants(_ n: Int, _ nmax: Int, _ x: UnsafePointer<Float>, _ weights: UnsafePointer<Float>,
                            _ L: UnsafeMutablePointer<UInt8>, _ theMin: inout Float, _ Laux: UnsafeMutablePointer<UInt8>,
                            rmin: Float, rdelta: Float, nstep: Int, mad: Bool) -> Float {
    var lo = x[0]
    var hi = x[0]
    var sumW = weights[0]
    var sumX = sumW * x[0]
    for i in 1..<n {
        if x[i] < lo { lo = x[i] }
        if x[i] > hi { hi = x[i] }
        let w = weights[i]
        sumW += w
        sumX += w * x[i]
    }
    if lo > 0 { lo = 0 }
    if hi == lo {
        for i in 0..<n { L[i] = 0 }
        theMin = -lo
        return 0
    }
    var iscale = Float(nmax) / (hi - lo)
    var scale = 1 / iscale
    var bestError: Float = 0
    for i in 0..<n {
        let l = max(0, min(nmax, nearestInt(iscale * (x[i] - lo))))
        L[i] = UInt8(l)
        var diff = scale * Float(l) + lo - x[i]
        diff = mad ? abs(diff) : diff * diff
        bestError += weights[i] * diff
    }
    if nstep < 1 {
        theMin = -lo
        return scale
    }
    for step in 0...nstep {
        iscale = (rmin + rdelta * Float(step) + Float(nmax)) / (hi - lo)
        var sumL: Float = 0
        var sumL2: Float = 0
        var sumXL: Float = 0
        for i in 0..<n {
            let l = max(0, min(nmax, nearestInt(iscale * (x[i] - lo))))
            Laux[i] = UInt8(l)
            let w = weights[i]
            let fl = Float(l)
            sumL += w * fl
            sumL2 += w * fl * fl
            sumXL += w * fl * x[i]
        }
        let D = sumW * sumL2 - sumL * sumL
        if D > 0 {
            var thisScale = (sumW * sumXL - sumX * sumL) / D
            var thisMin = (sumL2 * sumX - sumL * sumXL) / D
            if thisMin > 0 {
                thisMin = 0
                thisScale = sumXL / sumL2
            }
            var curError: Float = 0
            for i in 0..<n {
                var diff = thisScale * Float(Laux[i]) + thisMin - x[i]
                diff = mad ? abs(diff) : diff * diff
                curError += weights[i] * diff
            }
            if curError < bestError {
                for i in 0..<n { L[i] = Laux[i] }
                bestError = curError
                scale = thisScale
                lo = thisMin
            }
        }
    }
    theMin = -lo
    return scale
}

/// The 6-bit scale and min of sub-block j from a Q4_K/Q5_K `scales[12]` array.
@inline(__always)
private func scaleMin(_ j: Int, _ q: UnsafeMutableRawPointer) -> (UInt8, UInt8) {
    let b = q.assumingMemoryBound(to: UInt8.self)
    if j < 4 { return (b[j] & 63, b[j + 4] & 63) }
    return ((b[j + 4] & 0xF) | ((b[j - 4] >> 6) << 4), (b[j + 4] >> 4) | ((b[j] >> 6) << 4))
}

/// Packs 256 2-bit values: byte l of each 32-byte group holds elements l, l+32, l+64, l+96 of its 128 half.
private func pack2Bit(_ L: UnsafePointer<UInt8>, into q: UnsafeMutableRawPointer) {
    for j in stride(from: 0, to: 256, by: 128) {
        for l in 0..<32 {
            let v = L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6)
            q.storeBytes(of: v, toByteOffset: j / 4 + l, as: UInt8.self)
        }
    }
}

/// Q2_K: scales[16] (4-bit scale | 4-bit min << 4), qs[64], f16 d, f16 dmin.
func quantizeQ2_K(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
    var L = [UInt8](repeating: 0, count: 256)
    var Laux = [UInt8](repeating: 0, count: 16)
    var weights = [Float](repeating: 0, count: 16)
    var mins = [Float](repeating: 0, count: 16)
    var scales = [Float](repeating: 0, count: 16)
    let q4scale: Float = 15
    var maxScale: Float = 0
    var maxMin: Float = 0
    for j in 0..<16 {
        for l in 0..<16 { weights[l] = abs(x[16 * j + l]) }
        scales[j] = L.withUnsafeMutableBufferPointer { lb in
            Laux.withUnsafeMutableBufferPointer { ab in
                makeQKX2Quants(16, 3, x + 16 * j, weights, lb.baseAddress! + 16 * j, &mins[j], ab.baseAddress!,
                               rmin: -0.5, rdelta: 0.1, nstep: 15, mad: true)
            }
        }
        if scales[j] > maxScale { maxScale = scales[j] }
        if mins[j] > maxMin { maxMin = mins[j] }
    }
    let sc = y.assumingMemoryBound(to: UInt8.self)
    if maxScale > 0 {
        let iscale = q4scale / maxScale
        for j in 0..<16 { sc[j] = UInt8(truncatingIfNeeded: nearestInt(iscale * scales[j])) }
        storeHalf(maxScale / q4scale, y, 80)
    } else {
        for j in 0..<16 { sc[j] = 0 }
        storeHalf(0, y, 80)
    }
    if maxMin > 0 {
        let iscale = q4scale / maxMin
        for j in 0..<16 { sc[j] |= UInt8(truncatingIfNeeded: nearestInt(iscale * mins[j]) << 4) }
        storeHalf(maxMin / q4scale, y, 82)
    } else {
        storeHalf(0, y, 82)
    }
    let dAll = half(y, 80)
    let dminAll = half(y, 82)
    for j in 0..<16 {
        let d = dAll * Float(sc[j] & 0xF)
        if d == 0 { continue }
        let dm = dminAll * Float(sc[j] >> 4)
        for ii in 0..<16 { L[16 * j + ii] = UInt8(max(0, min(3, nearestInt((x[16 * j + ii] + dm) / d)))) }
    }
    L.withUnsafeBufferPointer { pack2Bit($0.baseAddress!, into: y + 16) }
}

/// Q3_K: hmask[32] (third bit), qs[64] (low 2 bits), scales[12] (sixteen 6-bit signed scales), f16 d.
func quantizeQ3_K(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
    var L = [Int8](repeating: 0, count: 256)
    var scales = [Float](repeating: 0, count: 16)
    var maxScale: Float = 0
    var amax: Float = 0
    L.withUnsafeMutableBufferPointer { lb in
        for j in 0..<16 {
            scales[j] = makeQ3Quants(16, 4, x + 16 * j, lb.baseAddress! + 16 * j)
            let s = abs(scales[j])
            if s > amax { amax = s; maxScale = scales[j] }
        }
    }
    let sc = (y + 96).assumingMemoryBound(to: UInt8.self)
    for j in 0..<12 { sc[j] = 0 }
    if maxScale != 0 {
        let iscale = -32 / maxScale
        for j in 0..<16 {
            var l = Int8(truncatingIfNeeded: nearestInt(iscale * scales[j]))
            l = max(-32, min(31, l)) + 32
            if j < 8 { sc[j] = UInt8(l & 0xF) } else { sc[j - 8] |= UInt8(l & 0xF) << 4 }
            l >>= 4
            sc[j % 4 + 8] |= UInt8(l) << (2 * (j / 4))
        }
        storeHalf(1 / iscale, y, 108)
    } else {
        storeHalf(0, y, 108)
    }
    let dAll = half(y, 108)
    for j in 0..<16 {
        let low = j < 8 ? sc[j] & 0xF : sc[j - 8] >> 4
        let s = Int(low | (((sc[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32
        let d = dAll * Float(s)
        if d == 0 { continue }
        for ii in 0..<16 { L[16 * j + ii] = Int8(max(-4, min(3, nearestInt(x[16 * j + ii] / d))) + 4) }
    }
    let hmask = y.assumingMemoryBound(to: UInt8.self)
    for j in 0..<32 { hmask[j] = 0 }
    var m = 0
    var hm: UInt8 = 1
    var low = [UInt8](repeating: 0, count: 256)
    for j in 0..<256 {
        var v = L[j]
        if v > 3 {
            hmask[m] |= hm
            v -= 4
        }
        low[j] = UInt8(v)
        m += 1
        if m == 32 { m = 0; hm <<= 1 }
    }
    low.withUnsafeBufferPointer { pack2Bit($0.baseAddress!, into: y + 32) }
}

/// The per-sub-block affine fits shared by Q4_K and Q5_K: eight 32-element sub-blocks weighted by
/// rms(x) + |x|, their scales and mins quantized to 6 bits into `scales[12]` at byte 4, f16 d and dmin at 0 and 2,
/// then the quants recomputed from the rounded scales (0...nmax) into L.
private func quantizeAffineK(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, nmax: Int, rmin: Float, nstep: Int,
                             _ L: UnsafeMutablePointer<UInt8>) {
    var Laux = [UInt8](repeating: 0, count: 32)
    var weights = [Float](repeating: 0, count: 32)
    var mins = [Float](repeating: 0, count: 8)
    var scales = [Float](repeating: 0, count: 8)
    var maxScale: Float = 0
    var maxMin: Float = 0
    for j in 0..<8 {
        var sumX2: Float = 0
        for l in 0..<32 { sumX2 += x[32 * j + l] * x[32 * j + l] }
        let avX = (sumX2 / 32).squareRoot()
        for l in 0..<32 { weights[l] = avX + abs(x[32 * j + l]) }
        scales[j] = Laux.withUnsafeMutableBufferPointer { ab in
            makeQKX2Quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], ab.baseAddress!,
                           rmin: rmin, rdelta: 0.1, nstep: nstep, mad: false)
        }
        if scales[j] > maxScale { maxScale = scales[j] }
        if mins[j] > maxMin { maxMin = mins[j] }
    }
    let invScale: Float = maxScale > 0 ? 63 / maxScale : 0
    let invMin: Float = maxMin > 0 ? 63 / maxMin : 0
    let sc = (y + 4).assumingMemoryBound(to: UInt8.self)
    for j in 0..<8 {
        let ls = min(63, UInt8(truncatingIfNeeded: nearestInt(invScale * scales[j])))
        let lm = min(63, UInt8(truncatingIfNeeded: nearestInt(invMin * mins[j])))
        if j < 4 {
            sc[j] = ls
            sc[j + 4] = lm
        } else {
            sc[j + 4] = (ls & 0xF) | ((lm & 0xF) << 4)
            sc[j - 4] |= (ls >> 4) << 6
            sc[j] |= (lm >> 4) << 6
        }
    }
    storeHalf(maxScale / 63, y, 0)
    storeHalf(maxMin / 63, y, 2)
    let dAll = half(y, 0)
    let dminAll = half(y, 2)
    for j in 0..<8 {
        let (s, m) = scaleMin(j, y + 4)
        let d = dAll * Float(s)
        if d == 0 { continue }
        let dm = dminAll * Float(m)
        for ii in 0..<32 { L[32 * j + ii] = UInt8(max(0, min(nmax, nearestInt((x[32 * j + ii] + dm) / d)))) }
    }
}

/// Q4_K: f16 d, f16 dmin, scales[12], qs[128]; each 64-element group is 32 bytes, low nibbles first half.
func quantizeQ4_K(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
    var L = [UInt8](repeating: 0, count: 256)
    L.withUnsafeMutableBufferPointer { lb in
        let L = lb.baseAddress!
        quantizeAffineK(x, y, nmax: 15, rmin: -1, nstep: 20, L)
        for g in 0..<4 {
            for l in 0..<32 {
                y.storeBytes(of: L[64 * g + l] | (L[64 * g + l + 32] << 4), toByteOffset: 16 + 32 * g + l, as: UInt8.self)
            }
        }
    }
}

/// Q5_K: f16 d, f16 dmin, scales[12], qh[32] (fifth bits, two per 64-element group), qs[128] as in Q4_K.
func quantizeQ5_K(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
    var L = [UInt8](repeating: 0, count: 256)
    L.withUnsafeMutableBufferPointer { lb in
        let L = lb.baseAddress!
        quantizeAffineK(x, y, nmax: 31, rmin: -0.5, nstep: 15, L)
        let qh = (y + 16).assumingMemoryBound(to: UInt8.self)
        for j in 0..<32 { qh[j] = 0 }
        var m1: UInt8 = 1
        var m2: UInt8 = 2
        for g in 0..<4 {
            for j in 0..<32 {
                var l1 = L[64 * g + j]
                if l1 > 15 { l1 -= 16; qh[j] |= m1 }
                var l2 = L[64 * g + j + 32]
                if l2 > 15 { l2 -= 16; qh[j] |= m2 }
                y.storeBytes(of: l1 | (l2 << 4), toByteOffset: 48 + 32 * g + j, as: UInt8.self)
            }
            m1 <<= 2
            m2 <<= 2
        }
    }
}

/// Q6_K: ql[128] (low 4 bits), qh[64] (high 2 bits), scales[16] (int8), f16 d.
func quantizeQ6_K(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
    var L = [Int8](repeating: 0, count: 256)
    var scales = [Float](repeating: 0, count: 16)
    var maxScale: Float = 0
    var maxAbsScale: Float = 0
    L.withUnsafeMutableBufferPointer { lb in
        for ib in 0..<16 {
            let scale = makeQXQuants(16, 32, x + 16 * ib, lb.baseAddress! + 16 * ib)
            scales[ib] = scale
            if abs(scale) > maxAbsScale { maxAbsScale = abs(scale); maxScale = scale }
        }
    }
    if maxAbsScale < groupMaxEps {
        y.initializeMemory(as: UInt8.self, repeating: 0, count: 210)
        return
    }
    let iscale = -128 / maxScale
    storeHalf(1 / iscale, y, 208)
    let sc = (y + 192).assumingMemoryBound(to: Int8.self)
    for ib in 0..<16 { sc[ib] = Int8(truncatingIfNeeded: min(127, nearestInt(iscale * scales[ib]))) }
    let dAll = half(y, 208)
    for j in 0..<16 {
        let d = dAll * Float(sc[j])
        if d == 0 { continue }
        for ii in 0..<16 { L[16 * j + ii] = Int8(max(-32, min(31, nearestInt(x[16 * j + ii] / d))) + 32) }
    }
    for g in 0..<2 {
        for l in 0..<32 {
            let base = 128 * g + l
            let q1 = UInt8(L[base]) & 0xF, q2 = UInt8(L[base + 32]) & 0xF
            let q3 = UInt8(L[base + 64]) & 0xF, q4 = UInt8(L[base + 96]) & 0xF
            y.storeBytes(of: q1 | (q3 << 4), toByteOffset: 64 * g + l, as: UInt8.self)
            y.storeBytes(of: q2 | (q4 << 4), toByteOffset: 64 * g + l + 32, as: UInt8.self)
            let h = (UInt8(L[base]) >> 4) | ((UInt8(L[base + 32]) >> 4) << 2)
                | ((UInt8(L[base + 64]) >> 4) << 4) | ((UInt8(L[base + 96]) >> 4) << 6)
            y.storeBytes(of: h, toByteOffset: 128 + 32 * g + l, as: UInt8.self)
        }
    }
}
