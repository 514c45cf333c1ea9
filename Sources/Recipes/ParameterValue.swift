/// A resolved scalar merge parameter: what a recipe's `weight: 0.5`, `normalize: true` or
/// `nuslerp_flatten: false` becomes once gradients and filters are evaluated for one tensor.
public enum ParameterValue: Sendable, Equatable, CustomStringConvertible {
    case number(Double)
    case bool(Bool)
    case string(String)

    /// Numbers as numbers; bools as 0/1 (as mergekit does); strings parse if numeric.
    public var number: Double? {
        switch self {
        case let .number(d): return d
        case let .bool(b): return b ? 1 : 0
        case let .string(s): return Double(s)
        }
    }

    public var bool: Bool? {
        switch self {
        case let .bool(b): return b
        case let .number(d): return d != 0
        case let .string(s):
            switch s.lowercased() {
            case "true", "yes", "on", "1": return true
            case "false", "no", "off", "0": return false
            default: return nil
            }
        }
    }

    public var description: String {
        switch self {
        case let .number(d):
            if d.rounded() == d && abs(d) < 1e15 { return String(Int64(d)) }
            return String(d)
        case let .bool(b): return b ? "true" : "false"
        case let .string(s): return s
        }
    }
}
