import Foundation
import Host
import Numerics

/// How distinct the router rows of one layer are. Rows that are nearly parallel (or zero) make the router unable to
/// tell those experts apart: mergekit warns when the condition number of a layer's gate matrix exceeds 5.
public struct GateLayerDiagnosis: Sendable, Equatable {
    public let layer: Int
    /// σ_max / σ_min of the `[experts × hidden]` matrix (infinite when the rows are linearly dependent).
    public let conditionNumber: Double
    /// The two experts whose rows are most alike, and the cosine of their rows.
    public let closestPair: (Int, Int)?
    public let closestCosine: Double?
    /// Experts whose row is zero (positive and negative prompts gave the same vector).
    public let zeroRows: [Int]

    public static func == (a: GateLayerDiagnosis, b: GateLayerDiagnosis) -> Bool {
        a.layer == b.layer && a.conditionNumber == b.conditionNumber && a.closestPair?.0 == b.closestPair?.0
            && a.closestPair?.1 == b.closestPair?.1 && a.closestCosine == b.closestCosine && a.zeroRows == b.zeroRows
    }
}

public enum GateDiagnostics {
    /// mergekit's threshold on the condition number.
    public static let threshold = 5.0

    /// Diagnoses one layer's rows (`rows` = experts × hidden, row-major).
    public static func diagnose(layer: Int, rows: [Float], experts: Int, hidden: Int) -> GateLayerDiagnosis {
        var gram = [Double](repeating: 0, count: experts * experts)
        for a in 0..<experts {
            for b in a..<experts {
                var dot = 0.0
                for i in 0..<hidden { dot += Double(rows[a * hidden + i]) * Double(rows[b * hidden + i]) }
                gram[a * experts + b] = dot
                gram[b * experts + a] = dot
            }
        }
        // Singular values of G are the square roots of the eigenvalues of G·Gᵀ (experts × experts, symmetric).
        // As torch.linalg.cond: σ_1 / σ_min(experts, hidden).
        let eigen = SymmetricEigen(gram, dimension: experts).values.sorted(by: >).prefix(min(experts, hidden))
        let largest = eigen.first ?? 0, smallest = eigen.last ?? 0
        let tolerance = max(largest, 1e-300) * 1e-12
        let condition = smallest <= tolerance ? Double.infinity : (largest / smallest).squareRoot()
        var best: (Int, Int)? = nil
        var bestCos: Double? = nil
        var zero: [Int] = []
        for a in 0..<experts where gram[a * experts + a] <= 1e-24 { zero.append(a) }
        for a in 0..<experts {
            for b in (a + 1)..<max(a + 1, experts) {
                let na = gram[a * experts + a], nb = gram[b * experts + b]
                guard na > 1e-24, nb > 1e-24 else { continue }
                let cosine = gram[a * experts + b] / (na * nb).squareRoot()
                if bestCos == nil || cosine > bestCos! { bestCos = cosine; best = (a, b) }
            }
        }
        return GateLayerDiagnosis(layer: layer, conditionNumber: condition, closestPair: best, closestCosine: bestCos, zeroRows: zero)
    }

    /// One warning for the layers whose condition number exceeds the threshold (as mergekit warns once), naming
    /// them, the worst layer's condition number and its closest pair of experts, and any zero rows.
    public static func warnings(_ gates: GateRows, expertLabels: [String]) -> [String] {
        let e = expertLabels.count
        guard e > 1 else { return [] }
        let bad = gates.routed.enumerated()
            .map { diagnose(layer: $0.offset, rows: $0.element, experts: e, hidden: gates.hiddenSize) }
            .filter { $0.conditionNumber > threshold }
        guard let worst = bad.max(by: { $0.conditionNumber < $1.conditionNumber }) else { return [] }
        let layers = bad.count == gates.routed.count ? "every layer"
            : (bad.count == 1 ? "layer " : "layers ") + compactRanges(bad.map(\.layer))
        var s = "\(layers): the router rows are nearly degenerate (condition number > \(Int(threshold)); worst "
            + (worst.conditionNumber.isFinite ? String(format: "%.1f", worst.conditionNumber) : "infinite") + " at layer \(worst.layer)"
        if let (a, b) = worst.closestPair, let cosine = worst.closestCosine {
            s += String(format: ", where %@ and %@ are closest, cosine %.4f", expertLabels[a], expertLabels[b], cosine)
        }
        s += ")"
        let zero = Set(bad.flatMap(\.zeroRows)).sorted()
        if !zero.isEmpty {
            s += "; zero rows for " + zero.map { expertLabels[$0] }.joined(separator: ", ") + " (positive and negative prompts give the "
                + "same vector)"
        }
        return [s + ": these experts' prompts are too similar for the router to tell them apart; give them more distinct prompts"]
    }

}
