import Evolve
import Numerics
import XCTest

final class CMAESTests: XCTestCase {
    func testJacobiEigenReconstructsTheMatrix() {
        let n = 4
        let a: [Double] = [4, 1, 0.5, 0, 1, 3, 0.2, 0.1, 0.5, 0.2, 2, 0.3, 0, 0.1, 0.3, 1]
        let e = SymmetricEigen(a, dimension: n)
        for i in 0..<n {
            for j in 0..<n {
                var s = 0.0
                for k in 0..<n { s += e.vectors[i * n + k] * e.values[k] * e.vectors[j * n + k] }
                XCTAssertEqual(s, a[i * n + j], accuracy: 1e-10)
                // Orthonormal columns.
                var d = 0.0
                for k in 0..<n { d += e.vectors[k * n + i] * e.vectors[k * n + j] }
                XCTAssertEqual(d, i == j ? 1 : 0, accuracy: 1e-10)
            }
        }
        XCTAssertEqual(e.values.reduce(0, +), 10, accuracy: 1e-10)   // the trace
    }

    func testReflectionStaysInTheBox() {
        XCTAssertEqual(reflectIntoUnit(0.3), 0.3)
        XCTAssertEqual(reflectIntoUnit(1.2), 0.8, accuracy: 1e-12)
        XCTAssertEqual(reflectIntoUnit(-0.25), 0.25, accuracy: 1e-12)
        XCTAssertEqual(reflectIntoUnit(2.1), 0.1, accuracy: 1e-12)
        XCTAssertEqual(reflectIntoUnit(.nan), 0.5)
    }

    /// Runs a strategy on `f` for `generations` and returns the best point and value.
    func minimize(_ s: inout some SearchStrategy, generations: Int, _ f: ([Double]) -> Double) -> ([Double], Double) {
        var best = ([Double](), Double.infinity)
        for _ in 0..<generations {
            let xs = s.ask()
            let fs = xs.map(f)
            for (x, v) in zip(xs, fs) where v < best.1 { best = (x, v) }
            s.tell(fs)
        }
        return best
    }

    func testCMAESFindsTheMinimumOfAnIllConditionedQuadratic() {
        let target = [0.2, 0.7, 0.45, 0.9]
        let f: ([Double]) -> Double = { x in
            zip(zip(x, target), [1.0, 10, 100, 3]).reduce(0) { $0 + $1.1 * ($1.0.0 - $1.0.1) * ($1.0.0 - $1.0.1) }
        }
        var cma = CMAES(dimension: 4, sigma0: 0.3, seed: 3)
        let (x, v) = minimize(&cma, generations: 120, f)
        XCTAssertLessThan(v, 1e-8)
        for (a, b) in zip(x, target) { XCTAssertEqual(a, b, accuracy: 1e-3) }
        // Random search with the same number of evaluations is far worse: the comparison the baseline exists for.
        var random = RandomSearch(dimension: 4, population: cma.populationSize, seed: 3)
        let (_, rv) = minimize(&random, generations: 120, f)
        XCTAssertGreaterThan(rv, 100 * v)
    }

    func testSameSeedSameCandidates() {
        var a = CMAES(dimension: 3, sigma0: 0.3, seed: 11), b = CMAES(dimension: 3, sigma0: 0.3, seed: 11)
        var c = CMAES(dimension: 3, sigma0: 0.3, seed: 12)
        for g in 0..<5 {
            let xa = a.ask(), xb = b.ask(), xc = c.ask()
            XCTAssertEqual(xa, xb)
            if g == 0 { XCTAssertNotEqual(xa, xc) }
            let f = xa.map { $0.reduce(0, +) }
            a.tell(f)
            b.tell(f)
            c.tell(xc.map { $0.reduce(0, +) })
        }
        XCTAssertTrue(a.ask().allSatisfy { $0.allSatisfy { (0...1).contains($0) } })
    }

    func testDefaultPopulation() {
        XCTAssertEqual(CMAES(dimension: 1, sigma0: 0.3, seed: 0).populationSize, 4)
        XCTAssertEqual(CMAES(dimension: 10, sigma0: 0.3, seed: 0).populationSize, 10)
        XCTAssertEqual(CMAES(dimension: 10, sigma0: 0.3, population: 6, seed: 0).populationSize, 6)
    }
}
