import Architectures
import Checkpoints
import Foundation
import Host

// `crucible compare A B [--base C]`: how far apart two checkpoints of one architecture are, per layer and module.
//
// Definitions (docs/inspect.md has the same text):
// - Without a base, the vectors compared are a = A's tensor and b = B's tensor, flattened.
// - With a base C, they are the task vectors τa = A − C and τb = B − C.
// - cosine = a·b / (‖a‖ ‖b‖)
// - relative distance = ‖a − b‖ / ‖a‖: the difference relative to the size of A's tensor (or of A's task vector).
// - sign agreement = among elements where both a and b are non-zero, the fraction with the same sign.
// - task size (with a base) = ‖τa‖ / ‖C‖ and ‖τb‖ / ‖C‖.
// A module (or layer, or the whole model) aggregates its tensors as one concatenated vector: the sums below are
// added, then the metrics computed from the totals.

/// Element sums from which every comparison metric is computed, accumulated in Double.
public struct ComparisonSums: Sendable, Equatable {
    /// Σ a·b
    public var dot: Double = 0
    /// Σ a², Σ b²
    public var squaresA: Double = 0
    public var squaresB: Double = 0
    /// Σ (a − b)²
    public var squaresDifference: Double = 0
    /// Σ base² (with a base only)
    public var squaresBase: Double = 0
    /// Elements where a and b are both non-zero, and of those, where they have the same sign.
    public var bothNonZero: Int = 0
    public var sameSign: Int = 0
    public var elements: Int = 0

    public init() {}

    public static func + (x: ComparisonSums, y: ComparisonSums) -> ComparisonSums {
        var s = x
        s.dot += y.dot
        s.squaresA += y.squaresA
        s.squaresB += y.squaresB
        s.squaresDifference += y.squaresDifference
        s.squaresBase += y.squaresBase
        s.bothNonZero += y.bothNonZero
        s.sameSign += y.sameSign
        s.elements += y.elements
        return s
    }
}

/// The metrics of one tensor or group of tensors. A metric that is undefined (a zero vector, no element non-zero
/// in both, NaN or infinite weights) is nil, and `undefined` says why.
public struct SimilarityMetrics: Sendable, Equatable {
    public var cosine: Double?
    /// ‖a − b‖ / ‖a‖ (task vectors with a base).
    public var distance: Double?
    public var signAgreement: Double?
    /// ‖τa‖ / ‖base‖ and ‖τb‖ / ‖base‖; nil without a base.
    public var taskSizeA: Double?
    public var taskSizeB: Double?
    public var elements: Int
    /// Why metrics are missing (empty when all are defined).
    public var undefined: [String]

    public init(_ s: ComparisonSums, withBase: Bool) {
        elements = s.elements
        undefined = []
        let (a, b) = withBase ? ("A's task vector", "B's task vector") : ("A", "B")
        let finite = [s.dot, s.squaresA, s.squaresB, s.squaresDifference, s.squaresBase].allSatisfy(\.isFinite)
        guard finite else {
            var who: [String] = []
            if !s.squaresA.isFinite { who.append(withBase ? "A or the base" : "A") }
            if !s.squaresB.isFinite { who.append(withBase ? "B or the base" : "B") }
            if who.isEmpty { who.append(withBase ? "the base" : "A or B") }
            undefined = ["\(who.joined(separator: " and ")) hold NaN or infinite values"]
            return
        }
        let normA = s.squaresA.squareRoot(), normB = s.squaresB.squareRoot()
        if normA > 0, normB > 0 {
            cosine = min(1, max(-1, s.dot / (normA * normB)))
        } else {
            undefined.append("cosine: \(normA == 0 ? a : b) is zero")
        }
        if s.squaresDifference == 0 {
            distance = 0
        } else if normA > 0 {
            distance = s.squaresDifference.squareRoot() / normA
        } else {
            undefined.append("distance: \(a) is zero")
        }
        if s.bothNonZero > 0 {
            signAgreement = Double(s.sameSign) / Double(s.bothNonZero)
        } else {
            undefined.append("sign agreement: no element is non-zero in both")
        }
        if withBase {
            if s.squaresBase > 0 {
                let base = s.squaresBase.squareRoot()
                taskSizeA = normA / base
                taskSizeB = normB / base
            } else {
                undefined.append("task size: the base is zero")
            }
        }
    }
}

/// Which metric the table and the heatmap show.
public enum ComparisonMetric: String, Sendable, CaseIterable {
    case cosine, distance, agreement

    /// The metric's value in `m`.
    public func value(_ m: SimilarityMetrics) -> Double? {
        switch self {
        case .cosine: return m.cosine
        case .distance: return m.distance
        case .agreement: return m.signAgreement
        }
    }

    /// Whether a larger value means the models differ more (distance) rather than less (cosine, agreement).
    public var largerIsMoreDifferent: Bool { self == .distance }

    /// A short label (`cosine`, `relative distance`, `sign agreement`), prefixed for task vectors.
    public func title(withBase: Bool) -> String {
        switch self {
        case .cosine: return withBase ? "cosine of task vectors" : "cosine similarity"
        case .distance: return withBase ? "‖τA − τB‖ / ‖τA‖" : "‖A − B‖ / ‖A‖"
        case .agreement: return withBase ? "sign agreement of task vectors" : "sign agreement"
        }
    }
}

/// What went wrong comparing two checkpoints; every case names the files (and tensor) involved.
public enum CompareError: Error, CustomStringConvertible, Equatable, Sendable {
    case architectureMismatch(first: String, firstArchitecture: String, second: String, secondArchitecture: String)
    case layerCountMismatch(first: String, firstLayers: Int, second: String, secondLayers: Int)
    case shapeMismatch(tensor: String, first: String, firstShape: [Int], second: String, secondShape: [Int])
    case nothingToCompare(first: String, second: String)

    public var description: String {
        switch self {
        case let .architectureMismatch(f, fa, s, sa):
            return "\(f) is a \(fa) checkpoint but \(s) is \(sa): compare needs checkpoints of the same architecture"
        case let .layerCountMismatch(f, fl, s, sl):
            return "\(f) has \(fl) layers but \(s) has \(sl): compare needs the same layer count"
        case let .shapeMismatch(t, f, fs, s, ss):
            return "tensor '\(t)' has shape \(ReportText.shapeText(fs)) in \(f) but \(ReportText.shapeText(ss)) in \(s)"
        case let .nothingToCompare(f, s):
            return "\(f) and \(s) have no floating-point tensor in common"
        }
    }
}

/// One compared tensor.
public struct TensorComparison: Sendable, Equatable {
    /// The tensor's name (the names read may differ for a tied head: see `nameA`, `nameB`, `nameBase`).
    public var name: String
    /// The tensors read from A, B and the base (a tied model's embedding stands in for its missing head).
    public var nameA: String
    public var nameB: String
    public var nameBase: String?
    /// Layer index, nil for embeddings, final norm, head and other tensors outside the layer stack.
    public var layer: Int?
    /// Module label (`q`, `down`, `experts.gate`, `embed`…).
    public var module: String
    public var shape: [Int]
    /// Elements compared (fewer than the shape's when vocabulary rows are cropped to the common block).
    public var comparedElements: Int
    public var sums: ComparisonSums
    public var metrics: SimilarityMetrics
}

/// A model taking part in a comparison.
public struct ComparedModel: Sendable, Equatable {
    /// As given on the command line.
    public var reference: String
    public var path: String
}

/// Options of `ModelComparison.compare`.
public struct CompareOptions: Sendable {
    /// Worker threads (results do not depend on it).
    public var threads: Int = ProcessInfo.processInfo.activeProcessorCount
    /// Elements per block read (each worker holds two or three float32 blocks). Results depend on it only in
    /// the last bits of the sums, so it is fixed by default.
    public var blockElements: Int = 1 << 20

    public init(threads: Int? = nil) {
        if let threads { self.threads = max(1, threads) }
    }
}

/// The result of `crucible compare`: per-tensor sums and metrics, and their aggregates per layer and module.
public struct ModelComparison: Sendable {
    public var a: ComparedModel
    public var b: ComparedModel
    public var base: ComparedModel?
    /// Crucible's architecture table name (`llama`, `mixtral`…), or `unknown`.
    public var architecture: String
    public var layerCount: Int
    /// Module labels of layer tensors, in column order.
    public var modules: [String]
    /// Module labels of tensors outside the layer stack (`embed`, `final_norm`, `head`…), in order.
    public var otherModules: [String]
    public var tensors: [TensorComparison]
    public var notes: [String]
    public var threads: Int
    public var seconds: Double

    public var withBase: Bool { base != nil }

    /// Metrics of `module` in `layer`, nil if the layer has no such tensor.
    public func cell(layer: Int, module: String) -> SimilarityMetrics? {
        aggregate { $0.layer == layer && $0.module == module }
    }

    /// Metrics of all of a layer's tensors together.
    public func layerTotal(_ layer: Int) -> SimilarityMetrics? { aggregate { $0.layer == layer } }

    /// Metrics of one module over every layer (all its tensors as one vector).
    public func moduleTotal(_ module: String) -> SimilarityMetrics? { aggregate { $0.layer != nil && $0.module == module } }

    /// Metrics of a tensor group outside the layer stack.
    public func other(_ module: String) -> SimilarityMetrics? { aggregate { $0.layer == nil && $0.module == module } }

    /// Metrics of every compared tensor together.
    public var overall: SimilarityMetrics { aggregate { _ in true } ?? SimilarityMetrics(ComparisonSums(), withBase: withBase) }

    /// Sums of the matching tensors added in tensor order (so the result is the same on every run).
    public func aggregate(_ include: (TensorComparison) -> Bool) -> SimilarityMetrics? {
        var total = ComparisonSums()
        var any = false
        for t in tensors where include(t) {
            total = total + t.sums
            any = true
        }
        return any ? SimilarityMetrics(total, withBase: withBase) : nil
    }
}

extension ModelComparison {
    /// Compares the checkpoints `a` and `b` name (folders, `.gguf` files or cached hub ids), optionally as task
    /// vectors from `base`.
    /// - Throws: `ModelArgumentError`, `CheckpointError` (naming the file), `CompareError` (architectures, layer
    ///   counts or a tensor's shapes differ).
    public static func compare(_ a: String, _ b: String, base: String? = nil,
                               options: CompareOptions = CompareOptions()) throws -> ModelComparison {
        let ca = try ModelArgument.open(a)
        let cb = try ModelArgument.open(b)
        let cbase = try base.map { try ModelArgument.open($0) }
        return try compare(ca, cb, base: cbase, references: (a, b, base), options: options)
    }

    /// Compares opened checkpoints.
    public static func compare(_ a: Checkpoint, _ b: Checkpoint, base: Checkpoint? = nil,
                               references: (String, String, String?)? = nil,
                               options: CompareOptions = CompareOptions()) throws -> ModelComparison {
        let start = Date()
        var notes: [String] = []
        let models = [a, b] + (base.map { [$0] } ?? [])
        let labels = ["A", "B", "base"]

        // Architecture and layer count, from configs and names alone.
        let definitions = models.map { ArchitectureRegistry.table(config: $0.config, tensorNames: Set($0.source.tensorNames)) }
        let archNames = definitions.map { $0?.name ?? "unknown" }
        for i in 1..<models.count where archNames[i] != archNames[0] {
            throw CompareError.architectureMismatch(first: a.path, firstArchitecture: archNames[0],
                                                    second: models[i].path, secondArchitecture: archNames[i])
        }
        let definition = definitions[0]
        let layerCounts = zip(definitions, models).map { d, m in d?.layerCount(in: m.config) }
        if let l0 = layerCounts[0] {
            for i in 1..<models.count {
                if let li = layerCounts[i], li != l0 {
                    throw CompareError.layerCountMismatch(first: a.path, firstLayers: l0, second: models[i].path, secondLayers: li)
                }
            }
        }
        let layerPrefix = definition?.layerWeights.first.flatMap { t -> String? in
            guard let r = t.name.range(of: "${layer_index}") else { return nil }
            return String(t.name[..<r.lowerBound])
        }
        var vocabularyIndexed = Set<String>()
        var tiedTo: [String: String] = [:]
        for t in (definition?.preWeights ?? []) + (definition?.postWeights ?? []) {
            if t.isEmbed { vocabularyIndexed.insert(t.name) }
            if let tied = t.tiedTo { tiedTo[t.name] = tied }
        }

        // Pair the tensors and check shapes before reading anything. A head missing from one model (tied to
        // its embedding) is compared with that embedding, as the model uses it.
        struct Job { let comparison: TensorComparison; let names: [String] }
        var jobs: [Job] = []
        var onlyA: [String] = [], skipped: [String] = [], missingInBase: [String] = []
        let namesA = Set(a.source.tensorNames)
        func counterpart(_ name: String, in m: Checkpoint) -> String? {
            if m.source.info(name) != nil { return name }
            if let tied = tiedTo[name], m.source.info(tied) != nil { return tied }
            return nil
        }
        func pair(_ name: String, nameA: String, nameB: String) throws {
            var names = [nameA, nameB]
            if let base {
                guard let nb = counterpart(name, in: base) else { missingInBase.append(name); return }
                names.append(nb)
            }
            let infos = zip(models, names).map { $0.source.info($1)! }
            guard infos.allSatisfy({ $0.dtype.isFloatingPoint }) else { skipped.append(name); return }
            let first = infos[0]
            for (i, info) in infos.enumerated().dropFirst() where info.shape != first.shape {
                let vocab = vocabularyIndexed.contains(name) || vocabularyIndexed.contains(names[i])
                guard vocab, info.shape.count == first.shape.count, info.shape.count >= 1,
                      Array(info.shape.dropFirst()) == Array(first.shape.dropFirst()) else {
                    throw CompareError.shapeMismatch(tensor: names[0] == names[i] ? name : "\(names[0])' / '\(names[i])",
                        first: a.source.file(of: names[0]) ?? a.path, firstShape: first.shape,
                        second: models[i].source.file(of: names[i]) ?? models[i].path, secondShape: info.shape)
                }
            }
            var compared = first.elementCount
            if infos.contains(where: { $0.shape != first.shape }) {
                let rows = infos.map(\.rowCount).min() ?? 0
                compared = rows * first.rowLength
                let rowList = zip(labels, infos).map { "\($0) \($1.rowCount)" }.joined(separator: ", ")
                notes.append("\(name): vocabulary rows differ (\(rowList)); the first \(rows) rows are compared")
            }
            for (label, n) in zip(labels, names) where n != name {
                notes.append("\(name): \(label) has no such tensor (tied head); its \(n) is compared instead")
            }
            let (layer, module) = classify(name, layerPrefix: layerPrefix)
            let placeholder = ComparisonSums()
            jobs.append(Job(comparison: TensorComparison(
                name: name, nameA: names[0], nameB: names[1], nameBase: names.count > 2 ? names[2] : nil, layer: layer,
                module: module, shape: first.shape, comparedElements: compared, sums: placeholder,
                metrics: SimilarityMetrics(placeholder, withBase: base != nil)), names: names))
        }
        for name in ModelInspection.displayOrder(a.source.tensorNames, definition: definition, config: a.config) {
            guard let nameB = counterpart(name, in: b) else { onlyA.append(name); continue }
            try pair(name, nameA: name, nameB: nameB)
        }
        var onlyB: [String] = []
        for name in b.source.tensorNames where !namesA.contains(name) {
            if let tied = tiedTo[name], namesA.contains(tied) {
                try pair(name, nameA: tied, nameB: name)
            } else {
                onlyB.append(name)
            }
        }
        func list(_ names: [String]) -> String {
            names.prefix(5).joined(separator: ", ") + (names.count > 5 ? " and \(names.count - 5) more" : "")
        }
        if !onlyA.isEmpty { notes.append("\(onlyA.count) tensor(s) only in A, not compared: \(list(onlyA))") }
        if !onlyB.isEmpty { notes.append("\(onlyB.count) tensor(s) only in B, not compared: \(list(onlyB))") }
        if !missingInBase.isEmpty { notes.append("\(missingInBase.count) tensor(s) missing from the base, not compared: "
            + "\(list(missingInBase))") }
        if !skipped.isEmpty { notes.append("\(skipped.count) non-floating-point tensor(s) not compared: \(list(skipped))") }
        guard !jobs.isEmpty else { throw CompareError.nothingToCompare(first: a.path, second: b.path) }

        // Read block by block on all threads; sums per block, added in block order afterwards.
        let block = max(1, options.blockElements)
        var items: [(job: Int, range: Range<Int>)] = []
        for (j, job) in jobs.enumerated() {
            let n = job.comparison.comparedElements
            var lo = 0
            while lo < n {
                items.append((j, lo..<min(n, lo + block)))
                lo += block
            }
        }
        var remaining = [Int](repeating: 0, count: jobs.count)
        for item in items { remaining[item.job] += 1 }
        let sources = models.map(\.source)
        let results = UnsafeMutableBufferPointer<ComparisonSums>.allocate(capacity: items.count)
        results.initialize(repeating: ComparisonSums())
        defer { results.deallocate() }
        let lock = NSLock()
        var next = 0
        let workers = max(1, min(options.threads, items.count))
        let withBase = base != nil
        let jobNames = jobs.map(\.names)
        try parallelForThrowing(workers, threads: workers) { _ in
            let buffers = (0..<sources.count).map { _ in UnsafeMutablePointer<Float>.allocate(capacity: block) }
            defer { buffers.forEach { $0.deallocate() } }
            while true {
                lock.lock()
                let i = next
                next += 1
                lock.unlock()
                guard i < items.count else { return }
                let item = items[i]
                let names = jobNames[item.job]
                do {
                    for k in 0..<sources.count {
                        try sources[k].readFloats(names[k], range: item.range, into: buffers[k])
                    }
                } catch {
                    // Stop handing out work; parallelForThrowing rethrows the first error.
                    lock.lock()
                    next = items.count
                    lock.unlock()
                    throw error
                }
                results[i] = accumulate(buffers, count: item.range.count, withBase: withBase)
                lock.lock()
                remaining[item.job] -= 1
                let done = remaining[item.job] == 0
                lock.unlock()
                if done { for k in 0..<sources.count { sources[k].release(names[k]) } }
            }
        }

        var comparisons = jobs.map(\.comparison)
        for (i, item) in items.enumerated() { comparisons[item.job].sums = comparisons[item.job].sums + results[i] }
        for j in comparisons.indices {
            comparisons[j].sums.elements = comparisons[j].comparedElements
            comparisons[j].metrics = SimilarityMetrics(comparisons[j].sums, withBase: withBase)
            if !comparisons[j].metrics.undefined.isEmpty {
                notes.append("\(comparisons[j].name): " + comparisons[j].metrics.undefined.joined(separator: "; "))
            }
        }

        let layerModules = orderedModules(comparisons.filter { $0.layer != nil }.map(\.module))
        var others: [String] = []
        for c in comparisons where c.layer == nil && !others.contains(c.module) { others.append(c.module) }
        let maxLayer = comparisons.compactMap(\.layer).max().map { $0 + 1 } ?? 0
        let refs = references ?? (a.path, b.path, base?.path)
        return ModelComparison(
            a: ComparedModel(reference: refs.0, path: a.path), b: ComparedModel(reference: refs.1, path: b.path),
            base: base.map { ComparedModel(reference: refs.2 ?? $0.path, path: $0.path) },
            architecture: archNames[0], layerCount: layerCounts[0] ?? maxLayer, modules: layerModules, otherModules: others,
            tensors: comparisons, notes: notes, threads: workers, seconds: Date().timeIntervalSince(start))
    }

    /// Sums over one block: of a and b directly, or with a base (buffers[2]) of τa = a − base and τb = b − base,
    /// the differences formed in Double. Sign counts are branch-free (see `bit`).
    static func accumulate(_ buffers: [UnsafeMutablePointer<Float>], count n: Int, withBase: Bool) -> ComparisonSums {
        var dot = 0.0, aa = 0.0, bb = 0.0, dd = 0.0, cc = 0.0
        var nonZero = 0, same = 0
        let pa = buffers[0], pb = buffers[1]
        if withBase {
            let pc = buffers[2]
            for i in 0..<n {
                let c = Double(pc[i])
                let x = Double(pa[i]) - c, y = Double(pb[i]) - c
                dot += x * y; aa += x * x; bb += y * y
                let d = x - y
                dd += d * d; cc += c * c
                nonZero &+= bit(x != 0) & bit(y != 0)
                same &+= bit(x * y > 0)
            }
        } else {
            for i in 0..<n {
                let x = Double(pa[i]), y = Double(pb[i])
                dot += x * y; aa += x * x; bb += y * y
                let d = x - y
                dd += d * d
                nonZero &+= bit(x != 0) & bit(y != 0)
                same &+= bit(x * y > 0)
            }
        }
        var s = ComparisonSums()
        s.dot = dot; s.squaresA = aa; s.squaresB = bb; s.squaresDifference = dd; s.squaresBase = cc
        s.bothNonZero = nonZero; s.sameSign = same; s.elements = n
        return s
    }

    /// 0 or 1 without a branch: signs of task vectors are close to random, and a mispredicted branch per element
    /// made the loop five times slower.
    @inline(__always) static func bit(_ b: Bool) -> Int { Int(unsafeBitCast(b, to: UInt8.self)) }

    // MARK: Module labels

    /// Short labels of the usual Llama-family module names (the part after the layer number, `.weight` dropped).
    static let moduleLabels: [(String, String)] = [
        ("input_layernorm", "input_norm"),
        ("self_attn.q_proj", "q"), ("self_attn.k_proj", "k"), ("self_attn.v_proj", "v"), ("self_attn.o_proj", "o"),
        ("post_attention_layernorm", "post_norm"),
        ("mlp.gate_proj", "gate"), ("mlp.up_proj", "up"), ("mlp.down_proj", "down"),
        ("block_sparse_moe.gate", "router"), ("mlp.gate", "router"),
        ("block_sparse_moe.experts.w1", "experts.gate"), ("block_sparse_moe.experts.w3", "experts.up"),
        ("block_sparse_moe.experts.w2", "experts.down"),
        ("mlp.experts.gate_up_proj", "experts.gate_up"), ("mlp.experts.down_proj", "experts.down"),
    ]
    static let otherLabels: [String: String] = [
        "model.embed_tokens.weight": "embed", "model.norm.weight": "final_norm", "lm_head.weight": "head",
    ]

    /// The layer and module label of a tensor name. Expert numbers are dropped (all experts of a projection
    /// form one module); biases keep a `.bias` suffix (`q.bias`).
    static func classify(_ name: String, layerPrefix: String?) -> (layer: Int?, module: String) {
        if let label = otherLabels[name] { return (nil, label) }
        guard let prefix = layerPrefix, name.hasPrefix(prefix) else {
            return (nil, name.hasSuffix(".weight") ? String(name.dropLast(7)) : name)
        }
        let rest = name.dropFirst(prefix.count)
        guard let dot = rest.firstIndex(of: "."), let layer = Int(rest[..<dot]) else {
            return (nil, name.hasSuffix(".weight") ? String(name.dropLast(7)) : name)
        }
        var parts = rest[rest.index(after: dot)...].split(separator: ".").map(String.init)
        // Drop expert numbers: `experts.3.w1` → `experts.w1`.
        parts = parts.enumerated().filter { i, p in !(i > 0 && parts[i - 1] == "experts" && Int(p) != nil) }.map(\.element)
        var suffix = ""
        if parts.last == "weight" { parts.removeLast() } else if parts.last == "bias" { parts.removeLast(); suffix = ".bias" }
        let key = parts.joined(separator: ".")
        let label = moduleLabels.first { $0.0 == key }?.1 ?? key
        return (layer, label + suffix)
    }

    /// Known labels in table order, then others in order of appearance.
    static func orderedModules(_ labels: [String]) -> [String] {
        var seen: [String] = []
        for l in labels where !seen.contains(l) { seen.append(l) }
        let known = moduleLabels.map(\.1)
        func rank(_ l: String) -> (Int, Int, Int) {
            let base = l.hasSuffix(".bias") ? String(l.dropLast(5)) : l
            let k = known.firstIndex(of: base) ?? known.count
            return (k, l.hasSuffix(".bias") ? 1 : 0, seen.firstIndex(of: l)!)
        }
        return seen.sorted { rank($0) < rank($1) }
    }
}
