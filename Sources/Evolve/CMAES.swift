import Foundation
import Numerics

/// A search strategy over the unit box [0, 1]ⁿ, asked for a generation of points and told their fitness
/// (lower is better). Everything it draws comes from one seeded `SplitMix64`, so a seed gives the same points.
public protocol SearchStrategy {
    var dimension: Int { get }
    /// The number of points `ask` returns.
    var populationSize: Int { get }
    /// The next generation, every coordinate in [0, 1].
    mutating func ask() -> [[Double]]
    /// The fitness of each point of the last `ask`, in order (+∞ for a failed candidate).
    mutating func tell(_ fitness: [Double])
}

/// Maps any real to [0, 1] by reflecting at the bounds (a triangle wave of period 2): the unbounded CMA-ES
/// works in ℝⁿ, and a step past a bound comes back inside instead of piling up on it.
public func reflectIntoUnit(_ y: Double) -> Double {
    guard y.isFinite else { return 0.5 }
    let r = y - 2 * (y / 2).rounded(.down)   // in [0, 2)
    return r <= 1 ? r : 2 - r
}

/// The standard (μ/μ_w, λ) CMA-ES (Hansen, "The CMA Evolution Strategy: A Tutorial", 2016): weighted recombination,
/// cumulative step-size adaptation, rank-one and rank-μ covariance updates, default strategy parameters. The
/// search runs in ℝⁿ from the centre of the box and points are reflected into [0, 1]ⁿ (`reflectIntoUnit`); the
/// covariance is eigendecomposed every generation with `SymmetricEigen` (cyclic Jacobi, exact enough for the tens
/// of dimensions a merge search has).
public struct CMAES: SearchStrategy {
    public let dimension: Int
    public let populationSize: Int
    let mu: Int
    let weights: [Double]
    let muEff: Double
    let cSigma, dSigma, cC, c1, cMu, chiN: Double
    public private(set) var mean: [Double]
    public private(set) var sigma: Double
    var pathSigma: [Double]
    var pathC: [Double]
    /// Covariance, row-major n×n, and its eigendecomposition C = B diag(D²) Bᵀ.
    var covariance: [Double]
    var basis: [Double]
    var scales: [Double]
    public private(set) var generation = 0
    var rng: SplitMix64
    /// The last generation's unreflected samples and their steps y = (x − m) / σ.
    var lastSamples: [[Double]] = []
    var lastSteps: [[Double]] = []

    /// - Parameters:
    ///   - start: the initial mean in the box (default: its centre).
    ///   - sigma0: initial step size in box units.
    ///   - population: λ (default 4 + ⌊3 ln n⌋).
    public init(dimension n: Int, sigma0: Double, population: Int? = nil, seed: UInt64, start: [Double]? = nil) {
        precondition(n >= 1, "CMA-ES needs at least one dimension")
        dimension = n
        let lambda = max(2, population ?? (4 + Int(3 * log(Double(n)))))
        populationSize = lambda
        mu = lambda / 2
        let raw = (0..<mu).map { log(Double(lambda + 1) / 2) - log(Double($0 + 1)) }
        let total = raw.reduce(0, +)
        weights = raw.map { $0 / total }
        muEff = 1 / weights.reduce(0) { $0 + $1 * $1 }
        let dn = Double(n)
        cSigma = (muEff + 2) / (dn + muEff + 5)
        dSigma = 1 + 2 * max(0, ((muEff - 1) / (dn + 1)).squareRoot() - 1) + cSigma
        cC = (4 + muEff / dn) / (dn + 4 + 2 * muEff / dn)
        c1 = 2 / ((dn + 1.3) * (dn + 1.3) + muEff)
        cMu = min(1 - c1, 2 * (muEff - 2 + 1 / muEff) / ((dn + 2) * (dn + 2) + muEff))
        chiN = dn.squareRoot() * (1 - 1 / (4 * dn) + 1 / (21 * dn * dn))
        mean = start ?? Array(repeating: 0.5, count: n)
        sigma = sigma0
        pathSigma = Array(repeating: 0, count: n)
        pathC = Array(repeating: 0, count: n)
        covariance = (0..<(n * n)).map { $0 / n == $0 % n ? 1 : 0 }
        basis = covariance
        scales = Array(repeating: 1, count: n)
        rng = SplitMix64(seed: seed, stream: "cma-es")
    }

    public mutating func ask() -> [[Double]] {
        let n = dimension
        lastSamples = []
        lastSteps = []
        for _ in 0..<populationSize {
            let z = (0..<n).map { _ in Double(rng.nextGaussian()) }
            var y = [Double](repeating: 0, count: n)
            for i in 0..<n {
                var s = 0.0
                for j in 0..<n { s += basis[i * n + j] * scales[j] * z[j] }
                y[i] = s
            }
            lastSteps.append(y)
            lastSamples.append((0..<n).map { mean[$0] + sigma * y[$0] })
        }
        return lastSamples.map { $0.map(reflectIntoUnit) }
    }

    public mutating func tell(_ fitness: [Double]) {
        precondition(fitness.count == lastSteps.count, "tell needs one fitness per asked point")
        let n = dimension
        // Sort by fitness; NaN counts as worst, ties keep sampling order.
        let order = fitness.indices.sorted { a, b in
            let fa = fitness[a].isNaN ? .infinity : fitness[a], fb = fitness[b].isNaN ? .infinity : fitness[b]
            return (fa, a) < (fb, b)
        }
        let best = order.prefix(mu).map { lastSteps[$0] }
        var yw = [Double](repeating: 0, count: n)
        for (w, y) in zip(weights, best) { for i in 0..<n { yw[i] += w * y[i] } }
        for i in 0..<n { mean[i] += sigma * yw[i] }

        // C^(-1/2) y_w = B D⁻¹ Bᵀ y_w.
        var inner = [Double](repeating: 0, count: n)
        for j in 0..<n {
            var s = 0.0
            for i in 0..<n { s += basis[i * n + j] * yw[i] }
            inner[j] = s / scales[j]
        }
        let cs = (cSigma * (2 - cSigma) * muEff).squareRoot()
        for i in 0..<n {
            var s = 0.0
            for j in 0..<n { s += basis[i * n + j] * inner[j] }
            pathSigma[i] = (1 - cSigma) * pathSigma[i] + cs * s
        }
        generation += 1
        let normSigma = pathSigma.reduce(0) { $0 + $1 * $1 }.squareRoot()
        let hSigma = normSigma / (1 - pow(1 - cSigma, Double(2 * generation))).squareRoot() < (1.4 + 2 / Double(n + 1)) * chiN
        let cc = (cC * (2 - cC) * muEff).squareRoot()
        for i in 0..<n { pathC[i] = (1 - cC) * pathC[i] + (hSigma ? cc * yw[i] : 0) }
        let correction = hSigma ? 0 : c1 * cC * (2 - cC)
        for i in 0..<n {
            for j in 0...i {
                var rankMu = 0.0
                for (w, y) in zip(weights, best) { rankMu += w * y[i] * y[j] }
                let v = (1 - c1 - cMu) * covariance[i * n + j] + c1 * (pathC[i] * pathC[j] + correction * covariance[i * n + j])
                    + cMu * rankMu
                covariance[i * n + j] = v
                covariance[j * n + i] = v
            }
        }
        sigma *= exp((cSigma / dSigma) * (normSigma / chiN - 1))
        let eigen = SymmetricEigen(covariance, dimension: n)
        basis = eigen.vectors
        // Guard against round-off making an eigenvalue ≤ 0.
        scales = eigen.values.map { max($0, 1e-20).squareRoot() }
    }
}

/// Uniform random search over the box: the baseline CMA-ES should beat.
public struct RandomSearch: SearchStrategy {
    public let dimension: Int
    public let populationSize: Int
    var rng: SplitMix64

    public init(dimension: Int, population: Int? = nil, seed: UInt64) {
        self.dimension = dimension
        populationSize = max(1, population ?? (4 + Int(3 * log(Double(max(dimension, 1))))))
        rng = SplitMix64(seed: seed, stream: "random-search")
    }

    public mutating func ask() -> [[Double]] {
        (0..<populationSize).map { _ in (0..<dimension).map { _ in rng.nextUnitDouble() } }
    }

    public mutating func tell(_ fitness: [Double]) {}
}
