import Recipes

extension ParameterDefinition {
    /// Whether the parameter is a true/false flag (its declared default is one); otherwise it is a number.
    public var isFlag: Bool {
        if case .bool? = defaultValue { return true }
        return false
    }

    /// Why `value` is not acceptable for this parameter, or nil when it is. The same rules the methods apply when
    /// they read the value (`number`, `flag`, `modelNumber`), checked once by the planner for every tensor.
    public func problem(with value: ParameterValue) -> String? {
        if isFlag {
            return value.bool == nil ? "must be true or false, got '\(value)'" : nil
        }
        guard let d = value.number, d.isFinite else { return "must be a finite number, got '\(value)'" }
        if let minimum {
            if minimumIsExclusive ? !(d > minimum) : !(d >= minimum) {
                return "must be \(minimumIsExclusive ? ">" : ">=") \(ParameterValue.number(minimum)), got \(ParameterValue.number(d))"
            }
        }
        return nil
    }
}
