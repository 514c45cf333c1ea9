
extension ParameterSetting {
    /// The value this setting gives one tensor at layer position `t` (mergekit's `evaluate_setting`), or nil when it is a
    /// conditional list none of whose entries applies (lookup then falls through to the next precedence level).
    ///
    /// - Gradient `[v0 … v(n−1)]`: `s = t·(n−1)`, `i0 = ⌊s⌋`, `i1 = min(n−1, i0+1)`, `f = s − i0`,
    ///   value `(1−f)·v[i0] + f·v[i1]`.
    /// - Step list (a list with text in it): `v[⌊t·(n−1)⌋]`.
    /// - Conditional list: the first entry whose filter is absent, `*`, or a plain substring of `tensorName` (no globs or
    ///   regular expressions) decides; its value is evaluated in turn.
    ///
    /// `t` is clamped to [0, 1] so a caller's rounding cannot index past either end of a list.
    public func evaluate(tensorName: String, t: Double) -> ParameterValue? {
        switch self {
        case .scalar(let value):
            return value
        case .gradient(let values):
            guard let first = values.first else { return nil }
            let n = values.count
            if n == 1 { return .number(first) }
            let s = Self.clampUnit(t) * Double(n - 1)
            let i0 = min(n - 1, max(0, Int(s.rounded(.down))))
            let i1 = min(n - 1, i0 + 1)
            let f = s - Double(i0)
            return .number((1 - f) * values[i0] + f * values[i1])
        case .steps(let values):
            guard !values.isEmpty else { return nil }
            let index = Int((Self.clampUnit(t) * Double(values.count - 1)).rounded(.down))
            return values[min(values.count - 1, max(0, index))]
        case .conditional(let entries):
            for entry in entries where entry.applies(to: tensorName) {
                return entry.value.evaluate(tensorName: tensorName, t: t)
            }
            return nil
        }
    }

    /// The value of parameter `name` from the first level that yields one; `levels` run from highest precedence down
    /// (slice source, slice, then top-level `parameters`, as mergekit orders them). Nil: no level sets it for this tensor,
    /// and the method's default applies.
    public static func resolve(_ name: String, levels: [[String: LocatedSetting]], tensorName: String, t: Double) -> ParameterValue? {
        for level in levels {
            if let value = level[name]?.setting.evaluate(tensorName: tensorName, t: t) { return value }
        }
        return nil
    }

    /// As `resolve(_:levels:tensorName:t:)`, with a tensor name per level: mergekit matches filters of per-model
    /// parameters against that input model's tensor name and those of slice and global parameters against the output name.
    public static func resolve(_ name: String, levels: [(settings: [String: LocatedSetting], tensorName: String)],
                               t: Double) -> ParameterValue? {
        for level in levels {
            if let value = level.settings[name]?.setting.evaluate(tensorName: level.tensorName, t: t) { return value }
        }
        return nil
    }

    /// The gradient position of layer `index` within a slice of `count` layers: `index/(count−1)`, or 1 for a one-layer
    /// slice (as mergekit does). Positions restart at 0 in every slice; with `models:` the single slice spans the whole depth.
    /// Tensors outside the layer stack (embeddings, final norm, `lm_head`) use t = 0, like current mergekit; that is the
    /// caller's choice, not this function's.
    public static func layerPosition(index: Int, count: Int) -> Double {
        guard count > 1 else { return 1 }
        return Double(index) / Double(count - 1)
    }

    /// The position used for tensors outside the layer stack (embeddings, final norm, `lm_head`): current mergekit
    /// evaluates them at t = 0, so they take a gradient's first value (before March 2025 post-weights used t = 1).
    public static let nonLayerPosition: Double = 0

    private static func clampUnit(_ t: Double) -> Double {
        guard t.isFinite else { return t > 0 ? 1 : 0 }
        return min(1, max(0, t))
    }
}

extension ConditionalSetting {
    /// Whether this entry applies to a tensor: no filter, `*`, or the filter is a plain substring of the name.
    public func applies(to tensorName: String) -> Bool {
        guard let filter, filter != "*" else { return true }
        return filter.isEmpty || tensorName.contains(filter)
    }
}
